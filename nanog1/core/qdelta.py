"""Q-Delta mixer (mixer kind "qdelta"): a linear-time, query-conditioned delta-rule layer.

Park, Kim, Park, "Q-Delta: Beyond Key–Value Associative State Evolution" (ICML 2026,
arXiv 2606.08804), Sec. 3: the state update uses the mixed key–query prediction error,
S_t = α_t S_{t−1} + β_t (v_t − α_t S_{t−1}(k_t + λ_t q_t)) k_tᵀ, read out as o_t = S_t q_t, with
α_t = exp(−e^{A} softplus(a_t + b)) (data-dependent decay), β_t = σ(·), query feedback λ_t = σ(·)
and L2-normalised q, k after a short causal convolution and SiLU. The sequence is run by the
fused Triton kernels on CUDA (`qdelta_fused`; `NANOG1_QDELTA_KERNEL=chunked` forces the other path)
and elsewhere by the chunked PyTorch form (`qdelta_chunk`); `step` runs the recurrence
(`qdelta_reference`) with an O(1) state for decoding.

Bidirectional use (causal=False, e.g. the mutation encoder): the same causal recurrence is run
once over the sequence and once over its reversal, sharing every projection and gate; the two
read-outs are summed per position before the per-head RMSNorm. Padding is skipped by both scans.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nanog1.core.qdelta_chunk import pick_scan, qdelta_chunked
from nanog1.core.qdelta_reference import qdelta_step
from nanog1.core.ragged import Ragged, repack, unpack


def _use_fused(q: Tensor, v: Tensor, chunk_size: int) -> bool:
    """Whether the fused Triton kernels run this scan: CUDA, Triton importable, chunk 64, d_k ≤ 128."""
    if not q.is_cuda or chunk_size != 64 or os.environ.get("NANOG1_QDELTA_KERNEL") == "chunked":
        return False
    try:
        from nanog1.core.qdelta_fused import fused_supported
    except ImportError:
        return False
    return fused_supported(q, v)


def _fused_conv(z: Tensor) -> bool:
    """Whether the short convolution runs on its Triton kernels: CUDA, Triton, not forced off."""
    if not z.is_cuda or os.environ.get("NANOG1_QDELTA_CONV") == "torch":
        return False
    from nanog1.core.kernels.routing import triton_importable

    return triton_importable()


def _fused_decode(x_t: Tensor) -> bool:
    """Whether `step` runs the one-kernel decode step: CUDA, Triton, not forced off
    (NANOG1_QDELTA_DECODE=torch). 11.2 µs per step against 39.6 µs for the PyTorch step and fla's
    16.3 µs at batch 64 on an H100 (BENCHMARKS.md, issue 30)."""
    if not x_t.is_cuda or os.environ.get("NANOG1_QDELTA_DECODE", "fused") == "torch":
        return False
    from nanog1.core.kernels.routing import triton_importable

    return triton_importable()


@dataclass
class QDeltaCache:
    """Decoding state of one QDelta layer: O(1) in the sequence length."""

    state: Tensor  # h = Sᵀ per head: [B, heads, d_k, d_v]
    conv: Tensor | None  # last conv_size − 1 projected inputs of the short convolution: [B, K − 1, 2r + H]


@dataclass
class _Streams:
    """Per-head inputs of the recurrence: q, k [B, h, L, d_k], v [B, h, L, d_v], gates [B, h, L]."""

    q: Tensor
    k: Tensor
    v: Tensor
    beta: Tensor
    lam: Tensor
    g: Tensor

    def flipped(self) -> _Streams:
        """The same streams in reverse time order (for the backward scan)."""
        return _Streams(*(x.flip(2) for x in (self.q, self.k, self.v, self.beta, self.lam, self.g)))


class QDelta(nn.Module):
    """Q-Delta token mixer: [B, L, H] -> [B, L, H], rank r split over heads for q/k, H for v.

    query_feedback=False fixes λ_t = 0 (the Gated DeltaNet update) for ablations.
    """

    def __init__(
        self,
        hidden_size: int,
        rank: int,
        heads: int,
        causal: bool,
        query: str = "linear",
        conv_size: int = 4,
        chunk_size: int = 64,
        query_feedback: bool = True,
        lam_bias: float = 0.9,
        norm_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        if query != "linear":
            raise ValueError(f"QDelta supports query='linear' only, got {query!r}")
        if rank % heads or hidden_size % heads:
            raise ValueError(f"rank ({rank}) and hidden_size ({hidden_size}) must divide by heads ({heads})")
        self.hidden_size, self.rank, self.heads, self.causal = hidden_size, rank, heads, causal
        self.d_k, self.d_v = rank // heads, hidden_size // heads
        self.chunk_size, self.query_feedback = chunk_size, query_feedback
        width = 2 * rank + hidden_size
        self.qkv = nn.Linear(hidden_size, width, bias=False)
        self.conv = nn.Conv1d(width, width, conv_size, groups=width, bias=False) if conv_size > 1 else None
        self.gates = nn.Linear(hidden_size, 3 * heads, bias=True)
        self.a_log = nn.Parameter(torch.empty(heads).uniform_(1.0, 16.0).log())
        self.out_gate = nn.Linear(hidden_size, hidden_size, bias=False)
        self.norm = nn.RMSNorm(self.d_v, eps=norm_eps)
        self.out = nn.Linear(hidden_size, hidden_size, bias=False)
        self._init_gates(lam_bias)

    def _init_gates(self, lam_bias: float) -> None:
        """β starts near 1/2, λ near σ(−lam_bias), decay rates Mamba-style (dt in [1e-3, 1e-1])."""
        nn.init.zeros_(self.gates.bias)
        h = self.heads
        dt = torch.exp(torch.rand(h) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3)).clamp_min(1e-4)
        with torch.no_grad():
            self.gates.bias[h : 2 * h].fill_(-lam_bias)
            self.gates.bias[2 * h :] = dt + torch.log(-torch.expm1(-dt))

    def _streams(self, z: Tensor, x: Tensor) -> _Streams:
        """Split conv-ed projections z [B, L, 2r + H] and gate logits of x into per-head streams."""
        b, length, _ = z.shape
        q, k, v = z.split([self.rank, self.rank, self.hidden_size], dim=-1)
        q = F.normalize(q.reshape(b, length, self.heads, self.d_k), dim=-1).transpose(1, 2)
        k = F.normalize(k.reshape(b, length, self.heads, self.d_k), dim=-1).transpose(1, 2)
        v = v.reshape(b, length, self.heads, self.d_v).transpose(1, 2)
        beta, lam, a = self.gates(x).transpose(1, 2).chunk(3, dim=1)
        lam = lam.sigmoid() if self.query_feedback else torch.zeros_like(lam)
        g = -self.a_log.exp()[:, None] * F.softplus(a.to(torch.promote_types(a.dtype, torch.float32)))
        return _Streams(q, k, v, beta.sigmoid(), lam, g)

    def _conv_full(self, z: Tensor) -> Tensor:
        """Causal depthwise convolution + SiLU over a whole sequence [B, L, C].

        On CUDA one Triton kernel each way (`qdelta_conv`; NANOG1_QDELTA_CONV=torch forces conv1d).
        """
        if self.conv is not None and _fused_conv(z):
            from nanog1.core.qdelta_conv import causal_conv_silu

            return causal_conv_silu(z, self.conv.weight[:, 0, :])
        if self.conv is not None:
            pad = self.conv.kernel_size[0] - 1
            z = self.conv(F.pad(z.transpose(1, 2), (pad, 0))).transpose(1, 2)
        return F.silu(z)

    def _conv_step(self, z_t: Tensor, conv_state: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """One step of the causal convolution: z_t [B, 1, C] with the last K − 1 inputs."""
        if self.conv is None or conv_state is None:
            return F.silu(z_t), conv_state
        window = torch.cat([conv_state, z_t], dim=1)
        y = torch.einsum("bkc,ck->bc", window, self.conv.weight[:, 0, :])[:, None]
        return F.silu(y), window[:, 1:]

    def _scan(self, s: _Streams, pad: Tensor | None) -> Tensor:
        """Q-Delta over the streams outside autocast: [B, h, L, d_v].

        The fused kernels take q, k, v as they come (bf16 under autocast: tensor-core products, fp32
        state); the chunked PyTorch form computes in float32.
        """
        with torch.autocast(device_type=s.q.device.type, enabled=False):
            if _use_fused(s.q, s.v, self.chunk_size):
                from nanog1.core.qdelta_fused import qdelta_fused

                return qdelta_fused(s.q, s.k, s.v, s.beta, s.lam, s.g, pad_mask=pad)[0]
            ins = [x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
                   for x in (s.q, s.k, s.v, s.beta, s.lam, s.g)]
            o, _ = qdelta_chunked(*ins, pad_mask=pad, chunk_size=self.chunk_size, scan=pick_scan(ins[0]))
        return o

    def _project(self, o: Tensor, x: Tensor, pad: Tensor | None) -> Tensor:
        """Per-head RMSNorm, SiLU output gate and output projection of read-outs o [B, h, L, d_v]."""
        b, _, length, _ = o.shape
        o = self.norm(o.transpose(1, 2).to(x.dtype)).reshape(b, length, self.hidden_size)
        y = self.out(o * F.silu(self.out_gate(x)))
        return y if pad is None else y.masked_fill(pad[..., None], 0.0)

    def forward(self, x: Tensor, padding_mask: Tensor | None = None, return_weights: bool = False,
                ragged: Ragged | None = None) -> Tensor:
        """Mix x [B, L, H] (padding_mask bool [B, L], True = padding) into [B, L, H].

        ``ragged``: x is a packed [1, T, H] batch; it runs padded to its longest sequence (the scan
        kernels take no offsets yet) and comes back packed.
        """
        if return_weights:
            raise ValueError("QDelta keeps no L×L attention map: return_weights is not supported")
        if ragged is not None:
            padded, mask = unpack(x, ragged)
            return repack(self.forward(padded, mask), mask)
        if padding_mask is not None:
            x = x.masked_fill(padding_mask[..., None], 0.0)
        s = self._streams(self._conv_full(self.qkv(x)), x)
        o = self._scan(s, padding_mask)
        if not self.causal:
            back_pad = padding_mask.flip(1) if padding_mask is not None else None
            o = o + self._scan(s.flipped(), back_pad).flip(2)
        return self._project(o, x, padding_mask)

    def init_cache(
        self, batch_size: int, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> QDeltaCache:
        """Empty decoding state (zeros) for `step`; the recurrent state is at least float32."""
        ref = self.out.weight
        device, dtype = device or ref.device, dtype or ref.dtype
        state_dtype = torch.promote_types(dtype, torch.float32)
        state = torch.zeros(batch_size, self.heads, self.d_k, self.d_v, device=device, dtype=state_dtype)
        conv = None
        if self.conv is not None:
            conv = torch.zeros(batch_size, self.conv.kernel_size[0] - 1, self.conv.in_channels,
                               device=device, dtype=dtype)
        return QDeltaCache(state, conv)

    def step(self, x_t: Tensor, cache: QDeltaCache) -> tuple[Tensor, QDeltaCache]:
        """Decode one token x_t [B, 1, H] -> (y_t [B, 1, H], updated cache); causal layers only."""
        if not self.causal:
            raise ValueError("QDelta.step needs causal=True: a bidirectional layer has no decoding order")
        z, conv = self._conv_step(self.qkv(x_t), cache.conv)
        s = self._streams(z, x_t)
        dt = cache.state.dtype
        step = qdelta_step
        if dt == torch.float32 and _fused_decode(x_t):
            from nanog1.core import qdelta_decode  # one kernel per step (fp32 state)

            step = qdelta_decode.qdelta_step_fused
        o, state = step(cache.state, *(x[:, :, 0].to(dt) for x in (s.q, s.k, s.v, s.beta, s.lam, s.g)))
        return self._project(o[:, :, None], x_t, None), QDeltaCache(state, conv)
