"""The Q-Compass / SAVO block as one autograd node on cuDNN attention or the rank-r kernel: lean on host time.

Why: at the encoders' short sequences (L ≤ 2k, 32k tokens per batch) the eager block is bound by host
time, not by the GPU (BENCHMARKS.md, issue 30, round 2: SAVO's step replayed from a CUDA graph beats
MHA on SDPA's fastest backend, eager it lost 0.69-0.89×). Through autograd the SAVO block records
about twenty nodes and 85 aten calls per fwd+bwd (MHA's: 67). Here the whole block — W_s·x and W_a·x
in one GEMM, the Q-value product and W_c, cuDNN's attention, W_o — is one ``autograd.Function`` whose
backward calls the kernels directly (65 aten calls, 31 Python-level torch calls, counted on CPU):

- q and k are strided (B, L, h, d) views of the one [N, 2r] projection, v a view of the content, and
  the output feeds W_o as a view: cuDNN takes these layouts as they are, so no transposing copies;
- dQ and dK land in one stacked [N, 2r] gradient, with the Q-value product's terms (its gradient reaches
  the state through the action and back): the Triton kernel writes dQ, dK there and two in-place
  ``addcmul_`` add the terms; cuDNN's dQ, dK and the terms are summed by two ``addcmul(out=)`` straight
  into it (no stacking copy); then one GEMM each for W_s/W_a's gradient and the input's, and the bias
  gradient as a GEMV;
- no SDPA dispatch logic per call: the cuDNN ops are called as SDPA's dispatch and autograd formula
  call them; weights' gradients leave in the compute dtype and the engine casts them in C++.

Numerics are autocast's: bf16/fp16 operands, the same GEMMs and the same attention kernel, weight
gradients formed in the compute dtype and cast to the parameters' dtype, as autocast's cast-backward does.

Where it runs (:func:`fused_dtype`): CUDA, sm_90+, bf16/fp16 compute (autocast or native), linear state
projection, no padding mask, no ragged batch, no returned weights, SAVO routing its content (h·r ≥ H),
q/k narrower than v, and an attention for the shape (:func:`block_attention`): the rank-r Triton kernel
where route()'s dispatch table picks it for unmasked batches (on Hopper past L = 4096, any length), else
cuDNN where it takes the narrow q/k (head widths multiples of 8, cuDNN attention enabled,
L ≤ ``NARROW_MAX_LEN``) — the same choice :func:`nanog1.core.routing.route` makes. Everything else takes
the module's autograd path. ``NANOG1_FUSED_BLOCK=0`` switches it off; ``NANOG1_ROUTE=kernel`` (forcing the
Triton kernel) does too, and ``NANOG1_ROUTE=sdpa`` keeps it on cuDNN. Parameters and state_dict keys are
the modules' own: checkpoints load unchanged.
"""

from __future__ import annotations

import os
import warnings

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nanog1.core.kernels import kernel_supports
from nanog1.core.route_dispatch import device_major, forced_path, table_path
from nanog1.core.routing import cudnn_narrow_supported

_CUDNN_FWD = torch.ops.aten._scaled_dot_product_cudnn_attention.default
_CUDNN_BWD = torch.ops.aten._scaled_dot_product_cudnn_attention_backward.default
_LOW = (torch.bfloat16, torch.float16)


class CudnnAttention:
    """SDPA's cuDNN backend, called as SDPA's dispatch and autograd formula call it (no mask, no dropout)."""

    @staticmethod
    def forward(q: Tensor, k: Tensor, v: Tensor, causal: bool, scale: float) -> tuple[Tensor, tuple]:
        out = _CUDNN_FWD(q, k, v, None, True, 0.0, causal, False, scale=scale)
        return out[0], out[1:8]  # logsumexp, cum_seq_q/k, max_q/k, philox seed/offset

    @staticmethod
    def backward(do: Tensor, q: Tensor, k: Tensor, v: Tensor, o: Tensor, saved: tuple, causal: bool,
                 scale: float, dqk: Tensor) -> Tensor:
        lse, cum_q, cum_k, max_q, max_k, seed, offset = saved
        dq, dk, dv = _CUDNN_BWD(do, q, k, v, o, lse, seed, offset, None, cum_q, cum_k, max_q, max_k, 0.0,
                                causal, scale=scale)
        return dq, dk, dv


def _stack_into(dqk: Tensor, dq: Tensor, dk: Tensor) -> None:
    """dq, dk [B, h, L, d] into dqk [B, L, 2, h, d] (one stacking kernel)."""
    torch.stack((dq.transpose(1, 2), dk.transpose(1, 2)), 2, out=dqk)


class TritonAttention:
    """The rank-r Triton kernel (:mod:`nanog1.core.kernels.routing_triton`) under the same contract: q/k at
    their own width, the (B, L, h, d) views taken as they are, the output written token-major, and dQ, dK
    written by the kernels straight into the block's stacked [N, 2r] gradient (no copy after)."""

    @staticmethod
    def forward(q: Tensor, k: Tensor, v: Tensor, causal: bool, scale: float) -> tuple[Tensor, tuple]:
        from nanog1.core.kernels.routing_triton import attention_forward

        out, lse = attention_forward(q, k, v, causal, scale)
        return out, (lse,)

    @staticmethod
    def backward(do: Tensor, q: Tensor, k: Tensor, v: Tensor, o: Tensor, saved: tuple, causal: bool,
                 scale: float, dqk: Tensor) -> Tensor:
        from nanog1.core.kernels.routing_triton import attention_backward

        dq, dk = (t.transpose(1, 2) for t in dqk.unbind(2))
        return None, None, attention_backward(do, q, k, v, o, saved[0], causal, scale, into=(dq, dk))[2]


class MathAttention:
    """The same contract in plain torch (softmax weights materialised): the reference the CPU tests run
    the fused block's algebra on, in float64."""

    @staticmethod
    def _weights(q: Tensor, k: Tensor, causal: bool, scale: float) -> Tensor:
        logits = torch.matmul(q, k.transpose(-2, -1)) * scale
        if causal:
            length = q.shape[2]
            future = torch.ones(length, length, dtype=torch.bool, device=q.device).triu(1)
            logits = logits.masked_fill(future, float("-inf"))
        return torch.softmax(logits, dim=-1)

    @staticmethod
    def forward(q: Tensor, k: Tensor, v: Tensor, causal: bool, scale: float) -> tuple[Tensor, tuple]:
        return torch.matmul(MathAttention._weights(q, k, causal, scale), v), ()

    @staticmethod
    def backward(do: Tensor, q: Tensor, k: Tensor, v: Tensor, o: Tensor, saved: tuple, causal: bool,
                 scale: float, dqk: Tensor) -> Tensor:
        p = MathAttention._weights(q, k, causal, scale)
        dp = torch.matmul(do, v.transpose(-2, -1))
        ds = p * (dp - (do * o).sum(-1, keepdim=True))
        return torch.matmul(ds, k) * scale, torch.matmul(ds.transpose(-2, -1), q) * scale, \
            torch.matmul(p.transpose(-2, -1), do)


def compute_dtype(x: Tensor) -> torch.dtype:
    """The dtype the block computes in: autocast's for x's device when it is on, else x's own."""
    kind = x.device.type
    return torch.get_autocast_dtype(kind) if torch.is_autocast_enabled(kind) else x.dtype


_broken: list[str] = []  # the first error of the cuDNN call, if this torch refused it: the block stays off


def fused_dtype(mixer: nn.Module, x: Tensor, padding_mask, ragged,
                return_weights: bool) -> torch.dtype | None:
    """The compute dtype if ``mixer``'s forward on x may run as one :class:`RoutedBlock` node, else None."""
    if padding_mask is not None or ragged is not None or return_weights or _broken:
        return None
    if os.environ.get("NANOG1_FUSED_BLOCK", "1") == "0" or forced_path(None) == "kernel":
        return None
    if not isinstance(mixer.state_proj, nn.Linear) or getattr(mixer, "route_qvalue", False):
        return None
    dtype = compute_dtype(x)
    if dtype not in _LOW or x.dim() != 3 or mixer.out_proj.bias is None:
        return None
    return dtype if block_attention(mixer, x) is not None else None


def block_attention(mixer: nn.Module, x: Tensor) -> type | None:
    """The attention the block runs on x [B, L, H]: the rank-r Triton kernel where route()'s dispatch table
    picks the kernel for an unmasked batch of this L (and no path is forced), else cuDNN at the narrow
    widths where it takes them (:func:`nanog1.core.routing.cudnn_narrow_supported`), else None."""
    h, length = mixer.heads, x.shape[1]
    d_qk, d_v = mixer.rank // h, mixer.hidden_size // h
    if (forced_path(None) == "auto" and d_qk < d_v and kernel_supports(d_qk, d_v, x.device)
            and table_path(device_major(x.device), True, mixer.causal, "none", length) == "kernel"):
        return TritonAttention
    return CudnnAttention if cudnn_narrow_supported(d_qk, d_v, length, x.device) else None


def fused_forward(mixer: nn.Module, x: Tensor, dtype: torch.dtype, attention=None) -> Tensor | None:
    """The mixer's forward [B, L, H] -> [B, L, H] as one node (SAVO when it has a W_c, else Q-Compass),
    computing in ``dtype`` (:func:`fused_dtype`), on ``attention`` (default :func:`block_attention`'s).

    None (and the block off for the rest of the process, with a warning) if the attention call fails:
    a torch whose private cuDNN ops take other arguments; the caller then runs its autograd path."""
    try:
        return _apply(mixer, x, dtype, attention or block_attention(mixer, x))
    except torch.OutOfMemoryError:
        raise
    except (RuntimeError, TypeError) as err:
        _broken.append(str(err))
        warnings.warn(f"fused routing block off (the mixers' autograd path runs): {err}", stacklevel=2)
        return None


def _apply(mixer: nn.Module, x: Tensor, dtype: torch.dtype, attention) -> Tensor:
    content = mixer.content_proj.weight if isinstance(mixer, _savo_type()) else None
    return RoutedBlock.apply(x, mixer.state_proj.weight, mixer.action_proj.weight, content,
                             mixer.out_proj.weight, mixer.out_proj.bias, mixer.heads, mixer.scale,
                             mixer.causal, dtype, attention)


def _savo_type() -> type:
    from nanog1.core.savo import SAVO  # savo imports this module

    return SAVO


class RoutedBlock(torch.autograd.Function):
    """y = W_o·route(q = x·W_s, k = x·W_a, v = content) + b; content = (x·W_s ⊙ x·W_a)·W_c (SAVO) or x.

    Written for few host calls: 2-D GEMMs over N = B·L rows, (B, L, h, d) views for the attention, and
    gradients returned in the compute dtype (the autograd engine casts them to the parameters' dtype in
    C++, as it does autocast's)."""

    @staticmethod
    def forward(ctx, x, w_s, w_a, w_c, w_o, b_o, heads, scale, causal, dtype, attention):
        batch, length, hidden = x.shape
        xb = x.to(dtype).reshape(-1, hidden)
        w_sa = torch.cat((w_s, w_a)).to(dtype)
        sa = F.linear(xb, w_sa)  # [N, 2r]: state | action
        s4, a4 = sa.view(batch, length, 2, heads, -1).unbind(2)  # [B, L, h, r/h] views
        q, k = s4.transpose(1, 2), a4.transpose(1, 2)
        w_c_ = qv = None
        if w_c is None:
            c = xb
        else:
            w_c_ = w_c.to(dtype)
            qv = (s4 * a4).reshape(-1, w_s.shape[0])
            c = F.linear(qv, w_c_)
        v = c.view(batch, length, heads, -1).transpose(1, 2)
        o, saved = attention.forward(q, k, v, causal, scale)
        o2 = o.transpose(1, 2).reshape(-1, hidden)  # a view: cuDNN writes o in (B, L, h, d) order
        w_o_ = w_o.to(dtype)
        y = F.linear(o2, w_o_, b_o.to(dtype))
        ctx.tensors = xb, w_sa, s4, a4, q, k, v, qv, w_c_, o, o2, w_o_, saved
        ctx.meta = scale, causal, attention, dtype
        return y.view(batch, length, hidden)

    @staticmethod
    def backward(ctx, gy):
        xb, w_sa, s4, a4, q, k, v, qv, w_c, o, o2, w_o, saved = ctx.tensors
        scale, causal, attention, dtype = ctx.meta
        batch, length, hidden = gy.shape
        g = gy.to(dtype).reshape(-1, hidden)
        # the bias gradient as a GEMV against ones: at 32k x 512 on an H100 about 9 µs, where the column
        # reduction g.sum(0) took 48 µs (BENCHMARKS, issue 30, round 8)
        d_wo, d_b = torch.mm(g.t(), o2), torch.mv(g.t(), g.new_ones(g.shape[0]))
        do = torch.mm(g, w_o).view(o2.shape[0] // length, length, q.shape[1], -1).transpose(1, 2)
        dqk = s4.new_empty(batch, length, 2, *s4.shape[2:])  # [B, L, 2, h, r/h]: the stacked gradient
        dq_a, dk_a, dv = attention.backward(do, q, k, v, o, saved, causal, scale, dqk)
        dc = dv.transpose(1, 2).reshape(-1, hidden)
        d_wc = None
        if w_c is None:
            if dq_a is not None:
                _stack_into(dqk, dq_a, dk_a)
        else:  # qv = s ⊙ a feeds W_c: its gradient reaches s through a and a through s
            d_wc = torch.mm(dc.t(), qv)
            dqv = torch.mm(dc, w_c).view(s4.shape)
            dq, dk = dqk.unbind(2)
            if dq_a is None:  # the kernel wrote dQ, dK into dqk: add the Q-value terms in place
                dq.addcmul_(dqv, a4)
                dk.addcmul_(dqv, s4)
            else:  # one pass each: attention's gradient + the Q-value term, written into dqk
                torch.addcmul(dq_a.transpose(1, 2), dqv, a4, out=dq)
                torch.addcmul(dk_a.transpose(1, 2), dqv, s4, out=dk)
        dsa = dqk.view(-1, w_sa.shape[0])
        d_ws, d_wa = torch.mm(dsa.t(), xb).chunk(2)
        dx = None
        if ctx.needs_input_grad[0]:
            dx = (torch.mm(dsa, w_sa) if w_c is not None else torch.addmm(dc, dsa, w_sa)).view(gy.shape)
        return dx, d_ws, d_wa, d_wc, d_wo, d_b, None, None, None, None, None
