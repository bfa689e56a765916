"""The Q-Compass / SAVO block as one autograd node on cuDNN attention: the eager path, lean on host time.

Why: at the encoders' short sequences (L ≤ 2k, 32k tokens per batch) the eager block is bound by host
time, not by the GPU (BENCHMARKS.md, issue 30, round 2: SAVO's step replayed from a CUDA graph beats
MHA on SDPA's fastest backend, eager it lost 0.69-0.89×). Through autograd the SAVO block records
about twenty nodes, and autocast casts each weight on its own. Here the whole block — W_s·x and W_a·x
in one GEMM, the Q-value product and W_c, cuDNN's attention, W_o — is one ``autograd.Function`` whose
backward calls the kernels directly:

- every weight (and W_o's bias) is cast to the compute dtype by one ``cat`` into a flat buffer, and
  their gradients are written into one flat buffer cast back by one copy (autocast: a cast per weight
  forward and a cast per gradient backward);
- q and k are strided views of the one [N, 2r] projection, v a strided view of the content, and the
  output feeds W_o as a view: cuDNN takes the (B, L, h, d) layouts as they are, so no transposing
  copies; its gradients are written back through views (``addcmul`` into the [N, 2r] gradient);
- no SDPA dispatch logic per call: the cuDNN ops are called as SDPA's own dispatch would call them.

Numerics are autocast's: bf16/fp16 operands, the same GEMMs and the same attention kernel; gradients of
weights are formed in the compute dtype and cast once, as autocast's cast-backward does.

Where it runs (:func:`fused_eligible`): CUDA, sm_90+, cuDNN attention enabled, bf16/fp16 compute
(autocast or native), linear state projection, no padding mask, no ragged batch, no returned weights,
SAVO routing its content (h·r ≥ H), head widths multiples of 8 with q/k narrower than v and
L ≤ ``NARROW_MAX_LEN`` — the shapes on which :func:`nanog1.core.routing.route` itself hands the
narrow q/k to cuDNN. Everything else takes the module's autograd path. ``NANOG1_FUSED_BLOCK=0``
switches it off; ``NANOG1_ROUTE=kernel`` (forcing the Triton kernel) does too.
"""

from __future__ import annotations

import os
import warnings

import torch
from torch import Tensor, nn

from nanog1.core.route_dispatch import forced_path
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
                 scale: float) -> tuple[Tensor, Tensor, Tensor]:
        lse, cum_q, cum_k, max_q, max_k, seed, offset = saved
        return _CUDNN_BWD(do, q, k, v, o, lse, seed, offset, None, cum_q, cum_k, max_q, max_k, 0.0, causal,
                          scale=scale)


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
                 scale: float) -> tuple[Tensor, Tensor, Tensor]:
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


def fused_eligible(mixer: nn.Module, x: Tensor, padding_mask, ragged, return_weights: bool) -> bool:
    """Whether ``mixer``'s forward on x may run as one :class:`RoutedBlock` node (see the module doc)."""
    if padding_mask is not None or ragged is not None or return_weights or _broken:
        return False
    if os.environ.get("NANOG1_FUSED_BLOCK", "1") == "0" or forced_path(None) == "kernel":
        return False
    if not isinstance(mixer.state_proj, nn.Linear) or getattr(mixer, "route_qvalue", False):
        return False
    dtype = compute_dtype(x)
    if dtype not in _LOW or x.dim() != 3 or mixer.out_proj.bias is None:
        return False
    h = mixer.heads
    return cudnn_narrow_supported(mixer.rank // h, mixer.hidden_size // h, x.shape[1], x.device)


def fused_forward(mixer: nn.Module, x: Tensor, attention=CudnnAttention) -> Tensor | None:
    """The mixer's forward [B, L, H] -> [B, L, H] as one node (SAVO when it has a W_c, else Q-Compass).

    None (and the block off for the rest of the process, with a warning) if the attention call fails:
    a torch whose private cuDNN ops take other arguments; the caller then runs its autograd path."""
    try:
        return _apply(mixer, x, attention)
    except torch.OutOfMemoryError:
        raise
    except (RuntimeError, TypeError) as err:
        _broken.append(str(err))
        warnings.warn(f"fused routing block off (the mixers' autograd path runs): {err}", stacklevel=2)
        return None


def _apply(mixer: nn.Module, x: Tensor, attention) -> Tensor:
    content = getattr(mixer, "content_proj", None)
    return RoutedBlock.apply(x, mixer.state_proj.weight, mixer.action_proj.weight,
                             None if content is None else content.weight, mixer.out_proj.weight,
                             mixer.out_proj.bias, mixer.heads, mixer.scale, mixer.causal, compute_dtype(x),
                             attention)


class RoutedBlock(torch.autograd.Function):
    """y = W_o·route(q = x·W_s, k = x·W_a, v = content) + b; content = (x·W_s ⊙ x·W_a)·W_c (SAVO) or x."""

    @staticmethod
    def forward(ctx, x, w_s, w_a, w_c, w_o, b_o, heads, scale, causal, dtype, attention):
        weights = [w_s, w_a, w_o, b_o] if w_c is None else [w_s, w_a, w_c, w_o, b_o]
        shapes = [w.shape for w in weights]
        flat = torch.cat([w.reshape(-1) for w in weights]).to(dtype)  # two launches for every weight
        w_sa, w_c_, w_o_, b_ = _unflatten(flat, shapes)
        batch, length, hidden = x.shape
        rank, dk, dv = w_s.shape[0], w_s.shape[0] // heads, hidden // heads
        xb = x.reshape(batch * length, hidden).to(dtype)
        sa = torch.mm(xb, w_sa.t())  # [N, 2r]: state | action
        sa5 = sa.view(batch, length, 2, heads, dk)
        q, k = sa5[:, :, 0].transpose(1, 2), sa5[:, :, 1].transpose(1, 2)
        qv = c = None
        if w_c is None:
            c = xb
        else:
            qv = sa[:, :rank] * sa[:, rank:]
            c = torch.mm(qv, w_c_.t())
        v = c.view(batch, length, heads, dv).transpose(1, 2)
        o, saved = attention.forward(q, k, v, causal, scale)
        o2 = o.transpose(1, 2).reshape(batch * length, hidden)
        y = torch.addmm(b_, o2, w_o_.t())
        ctx.xb, ctx.flat, ctx.sa, ctx.qv, ctx.c, ctx.o, ctx.saved = xb, flat, sa, qv, c, o, saved
        ctx.weights = (w_sa, w_c_, w_o_)
        ctx.shapes = shapes
        ctx.param_dtype, ctx.meta = w_s.dtype, (heads, scale, causal, attention, w_c is not None)
        return y.view(batch, length, hidden)

    @staticmethod
    def backward(ctx, gy):
        xb = ctx.xb
        heads, scale, causal, attention, savo = ctx.meta
        flat, sa, o = ctx.flat, ctx.sa, ctx.o
        batch, length, hidden = gy.shape
        n, rank = batch * length, sa.shape[1] // 2
        dk, dv = rank // heads, hidden // heads
        g = gy.reshape(n, hidden).to(flat.dtype)
        gflat = torch.empty_like(flat)
        grads = _unflatten(gflat, ctx.shapes)
        w_sa, w_c, w_o = ctx.weights
        o2 = o.transpose(1, 2).reshape(n, hidden)
        torch.mm(g.t(), o2, out=grads[2])
        torch.sum(g, 0, out=grads[3])
        do = torch.mm(g, w_o).view(batch, length, heads, dv).transpose(1, 2)
        sa5 = sa.view(batch, length, 2, heads, dk)
        q, k = sa5[:, :, 0].transpose(1, 2), sa5[:, :, 1].transpose(1, 2)
        v = ctx.c.view(batch, length, heads, dv).transpose(1, 2)
        dq, dkey, dval = attention.backward(do, q, k, v, o, ctx.saved, causal, scale)
        dc = dval.transpose(1, 2).reshape(n, hidden)
        dsa = torch.empty_like(sa)
        d5 = dsa.view(batch, length, 2, heads, dk)
        if savo:
            torch.mm(dc.t(), ctx.qv, out=grads[1])
            dqv = torch.mm(dc, w_c).view(batch, length, heads, dk)
            torch.addcmul(dq.transpose(1, 2), dqv, sa5[:, :, 1], out=d5[:, :, 0])
            torch.addcmul(dkey.transpose(1, 2), dqv, sa5[:, :, 0], out=d5[:, :, 1])
        else:
            torch.stack([dq.transpose(1, 2), dkey.transpose(1, 2)], dim=2, out=d5)
        torch.mm(dsa.t(), xb, out=grads[0])
        dx = None
        if ctx.needs_input_grad[0]:
            dx = torch.mm(dsa, w_sa) if savo else torch.addmm(dc, dsa, w_sa)
            dx = dx.view(batch, length, hidden)
        w_sa_grad, *rest = _unflatten(gflat.to(ctx.param_dtype), ctx.shapes)  # one cast for all
        return (dx, w_sa_grad[:rank], w_sa_grad[rank:], *rest, None, None, None, None, None)


def _unflatten(flat: Tensor, shapes: list) -> list:
    """[W_s; W_a] as one [2r, H] view, then W_c (None for Q-Compass), W_o and b as views of ``flat``."""
    views, start = [], 0
    for shape in shapes:
        size = 1
        for d in shape:
            size *= d
        views.append(flat[start:start + size].view(shape))
        start += size
    sa = flat[:views[0].numel() * 2].view(2 * shapes[0][0], shapes[0][1])
    return [sa, *views[2:]] if len(shapes) == 5 else [sa, None, *views[2:]]
