"""The one routing primitive every mixer shares: softmax(q·kᵀ·scale)·v on fused SDPA kernels.

Q-Compass, SAVO and MHA differ only in what they route (raw x, the Q-value, a value projection),
so all of them call :func:`route`. It never materialises the L×L weight matrix except where the
padding pattern forces an explicit mask (causal with left or irregular padding) and in
:func:`route_explicit`, the visualisation path that returns the weights.

Which SDPA backend runs (``torch.nn.functional.scaled_dot_product_attention``):

- Narrow q/k (Q-Compass, SAVO) without a mask on Hopper, L ≤ ``NARROW_MAX_LEN``: q/k go to cuDNN's
  attention at their own width (it takes q/k narrower than v; 1.2-1.6× the padded form's speed at
  L ≤ 2k, level from 8k), unless an ``sdpa_kernel`` scope has disabled cuDNN.
- Otherwise q, k and v are zero-padded to one head width (a multiple of 8) with the scale passed explicitly,
  so the dot products are unchanged. Without this, torch's CPU kernel falls back to the math path
  (L×L memory) and CUDA's flash kernel refuses the inputs (it needs equal widths, multiples of 8).
  For Q-Compass at r = H/8 the padded q/k make QKᵀ cost what MHA's does: attention time equals
  MHA-flash's and the saving is in the projections. A kernel taking q/k narrower than v would
  cut QKᵀ's work by H/r; torch's flash backend does not take unequal widths (not written here).
- No padding, or causal with right padding: no mask, ``is_causal`` only. On an H100 with torch
  2.11, the default dispatch picks cuDNN attention (checked with ``torch._fused_sdp_choice``
  for every kind; flash runs it too when cuDNN is disabled, see tests' gpu test); CPU runs its
  fused flash kernel. bf16 fwd+bwd then costs what MHA on the same backend does (BENCHMARKS.md).
- Bidirectional with padding: a broadcast key mask [B, 1, 1, L]. CUDA runs the memory-efficient
  kernel; torch ≥ 2.13's CPU flash kernel accepts it too (measured: +20 MB at L = 8k, 8 heads).
- Causal with left or irregular padding: a [B, 1, L, L] boolean mask (O(L²) bits), unless the kernel
  runs it. Bucket or right-pad long sequences on CPU.
- Ragged batches (``ragged``: sequences packed into one [1, h, T, d] row with offsets, see
  :mod:`nanog1.core.ragged`): the kernel, or SDPA one sequence at a time.

In the Q-Compass and SAVO modules, the unmasked narrow-q/k case on Hopper (bf16/fp16) does not come
through here: the whole block runs as one autograd node on the attention this module would pick (the
kernel past L = 4096, cuDNN up to it; :mod:`nanog1.core.fused_block`, fewer host calls;
``NANOG1_FUSED_BLOCK=0`` turns it off).

On CUDA the rank-r Triton kernel of :mod:`nanog1.core.kernels` (q/k narrower than v, any key-padding
mask, ragged batches) takes a call where :mod:`nanog1.core.route_dispatch`'s measured table says it
is faster (on Hopper: masked and ragged batches, and unmasked ones past L = 4096; shorter unmasked
ones stay on SDPA's cuDNN backend); ``path=`` or ``NANOG1_ROUTE`` forces either path.
Decoding (:func:`route_step`) on CUDA runs the kernels' split-context decode, which reads SAVO's
compressed cache (action + Q-value) directly: 6.2× an MHA step on SDPA's default (cuDNN) at 32k context,
batch 64 (BENCHMARKS.md, issue 30).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from nanog1.core.kernels import kernel_available, routing_attention, routing_decode
from nanog1.core.ragged import Ragged
from nanog1.core.route_dispatch import choose_path, device_major, forced_path


def split_heads(t: Tensor, heads: int) -> Tensor:
    """[B, L, h·d] -> [B, h, L, d]."""
    b, length, width = t.shape
    return t.view(b, length, heads, width // heads).transpose(1, 2)


def merge_heads(t: Tensor) -> Tensor:
    """[B, h, L, d] -> [B, L, h·d]."""
    b, h, length, d = t.shape
    return t.transpose(1, 2).reshape(b, length, h * d)


def _equal_widths(q: Tensor, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Zero-pad q, k and v on the last axis to one head width, a multiple of 8 (dot products unchanged).

    Flash kernels take one width for q, k and v, a multiple of 8; the caller slices the output back.
    """
    dq, dv = q.shape[-1], v.shape[-1]
    width = -(-max(dq, dv) // 8) * 8
    if dq < width:
        q, k = F.pad(q, (0, width - dq)), F.pad(k, (0, width - dq))
    if dv < width:
        v = F.pad(v, (0, width - dv))
    return q, k, v


def _is_right_padded(padding_mask: Tensor) -> bool:
    """True when every row's padding is a suffix (False … False True … True)."""
    return bool((padding_mask[:, 1:] >= padding_mask[:, :-1]).all())


def full_allowed_mask(padding_mask: Tensor | None, batch: int, length: int, causal: bool,
                      device: torch.device) -> Tensor:
    """Bool [B, 1, L, L], True where query i may read key j.

    Padded keys are hidden; a query row left with no key (a padded query) reads itself only, so its
    output stays finite. Real query rows never read padding.
    """
    allowed = torch.ones(batch, 1, length, length, dtype=torch.bool, device=device)
    if causal:
        allowed = allowed & torch.ones(length, length, dtype=torch.bool, device=device).tril()
    if padding_mask is not None:
        allowed = allowed & ~padding_mask[:, None, None, :]
        eye = torch.eye(length, dtype=torch.bool, device=device)
        allowed = allowed | (eye & padding_mask[:, None, :, None])
    return allowed


def _fused_mask(padding_mask: Tensor | None, batch: int, length: int, causal: bool,
                device: torch.device) -> tuple[Tensor | None, bool]:
    """(attn_mask, is_causal) for SDPA, as small as the padding pattern allows."""
    if padding_mask is None or not bool(padding_mask.any()):
        return None, causal
    if not causal:
        keys = ~padding_mask
        keys = keys | ~keys.any(dim=1, keepdim=True)  # an all-padding row reads everything: finite
        return keys[:, None, None, :], False
    if _is_right_padded(padding_mask):
        return None, True  # real rows never reach the trailing padding under the causal mask
    return full_allowed_mask(padding_mask, batch, length, causal, device), False


def route(q: Tensor, k: Tensor, v: Tensor, *, scale: float, causal: bool,
          padding_mask: Tensor | None = None, ragged: Ragged | None = None,
          path: str | None = None) -> Tensor:
    """softmax(q·kᵀ·scale [masked])·v; q, k [B, h, L, dk], v [B, h|1, L, dv] -> [B, h, L, dv].

    ``padding_mask`` is bool [B, L], True at padding; it hides padded keys. ``ragged``: B = 1 and the
    L axis packs sequences back to back (no padding); each attends only inside itself. ``path``:
    "kernel", "sdpa" or "auto" (default: NANOG1_ROUTE, else the measured table).
    """
    mask_kind = "ragged" if ragged is not None else "none" if padding_mask is None else "mask"
    length = ragged.max_len if ragged is not None else q.shape[2]
    if choose_path(q, k, v, causal=causal, mask_kind=mask_kind, length=length, path=path) == "kernel":
        if ragged is not None:
            return routing_attention(q, k, v, causal=causal, key_padding_mask=None, scale=scale,
                                     cu_seqlens=ragged.cu_seqlens, max_len=ragged.max_len)
        return routing_attention(q, k, v, causal=causal, key_padding_mask=padding_mask, scale=scale)
    if ragged is not None:
        return _route_each(q, k, v, scale=scale, causal=causal, ragged=ragged)
    if mask_kind == "mask" and causal and forced_path(path) == "auto" and kernel_available(q, k, v) \
            and bool(padding_mask.any()) and not _is_right_padded(padding_mask):
        # SDPA would need an O(L²) mask for causal left / irregular padding
        return routing_attention(q, k, v, causal=True, key_padding_mask=padding_mask, scale=scale)
    return _route_sdpa(q, k, v, scale=scale, causal=causal, padding_mask=padding_mask)


def _route_each(q: Tensor, k: Tensor, v: Tensor, *, scale: float, causal: bool, ragged: Ragged) -> Tensor:
    """A ragged batch through SDPA: on CUDA as one nested (jagged) batch, which runs SDPA's varlen
    kernels; elsewhere, or if torch refuses the nested call, one sequence at a time."""
    if q.is_cuda and min(ragged.lengths, default=0) > 0:
        try:
            return _route_nested(q, k, v, scale=scale, causal=causal, ragged=ragged)
        except RuntimeError:  # a torch without nested SDPA for these inputs: the loop below
            pass
    parts, start = [], 0
    for n in ragged.lengths:
        if n:
            sl = slice(start, start + n)
            parts.append(_route_sdpa(q[:, :, sl], k[:, :, sl], v[:, :, sl], scale=scale, causal=causal,
                                     padding_mask=None))
        start += n
    return torch.cat(parts, dim=2) if parts else q.new_zeros(*q.shape[:3], v.shape[-1])


def _route_nested(q: Tensor, k: Tensor, v: Tensor, *, scale: float, causal: bool, ragged: Ragged) -> Tensor:
    """SDPA over torch's jagged nested tensors (flash/cuDNN varlen): [1, h, T, d] -> [1, h, T, dv]."""
    dv = v.shape[-1]
    if v.shape[1] != q.shape[1]:
        v = v.expand(-1, q.shape[1], -1, -1)
    q, k, v = _equal_widths(q, k, v)
    offsets = ragged.cu_seqlens.long()
    nested = [torch.nested.nested_tensor_from_jagged(t[0].transpose(0, 1).contiguous(), offsets,
                                                     max_seqlen=ragged.max_len)
              .transpose(1, 2) for t in (q, k, v)]
    y = F.scaled_dot_product_attention(*nested, is_causal=causal, scale=scale)
    return y.transpose(1, 2).values().transpose(0, 1)[None, ..., :dv]


# Longest L at which unmasked narrow q/k go to cuDNN unpadded (see _narrow_cudnn). SAVO's op, bf16 fwd+bwd,
# 32k tokens, H100, 2026-12-06 (BENCHMARKS.md, issue 30, call C1), ms narrow / padded: causal 512 0.39 /
# 0.62, 2k 0.79 / 0.88, 8k 2.39 / 2.40, 32k 8.69 / 8.69; bidirectional 512 0.46 / 0.56, 2k 1.22 / 1.26,
# 8k 4.14 / 4.08, 32k 15.95 / 15.38.
NARROW_MAX_LEN = 4096


def _narrow_cudnn(q: Tensor, v: Tensor, mask: Tensor | None) -> bool:
    """Whether SDPA gets q/k at their own width (narrower than v) instead of zero-padded.

    cuDNN's attention (SDPA's default on Hopper) takes q/k widths unlike v's (multiples of 8, bf16/fp16,
    no mask); flash refuses them and the memory-efficient kernel is 2-4× slower. So only where cuDNN is
    enabled (not excluded by an ``sdpa_kernel`` scope), on sm_90+, and short L, where it is faster.
    """
    return (mask is None and q.is_cuda and q.dtype in (torch.bfloat16, torch.float16)
            and cudnn_narrow_supported(q.shape[-1], v.shape[-1], q.shape[2], q.device))


def cudnn_narrow_supported(dq: int, dv: int, length: int, device: torch.device) -> bool:
    """The shape and device half of :func:`_narrow_cudnn` (head widths dq < dv, multiples of 8, L ≤
    ``NARROW_MAX_LEN``, sm_90+ CUDA with cuDNN attention enabled); also the fused block's condition."""
    return (dq < dv and dq % 8 == 0 and dv % 8 == 0 and length <= NARROW_MAX_LEN and device.type == "cuda"
            and torch.backends.cuda.cudnn_sdp_enabled() and device_major(device) >= 9)


def _route_sdpa(q: Tensor, k: Tensor, v: Tensor, *, scale: float, causal: bool,
                padding_mask: Tensor | None) -> Tensor:
    """route() on SDPA: the smallest mask the padding pattern allows; q/k at their own width on cuDNN
    where that pays (:func:`_narrow_cudnn`), else equal widths by zero padding."""
    dv = v.shape[-1]
    if v.shape[1] != q.shape[1]:
        v = v.expand(-1, q.shape[1], -1, -1)
    mask, is_causal = _fused_mask(padding_mask, q.shape[0], q.shape[2], causal, q.device)
    if _narrow_cudnn(q, v, mask):
        try:
            return F.scaled_dot_product_attention(q, k, v.contiguous(), is_causal=is_causal, scale=scale)
        except RuntimeError:  # no backend took unequal widths here: pad below
            pass
    q, k, v = _equal_widths(q, k, v)
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal, scale=scale)
    return y if y.shape[-1] == dv else y[..., :dv]  # no slice node (its backward copies) when unpadded


def route_step(q: Tensor, k: Tensor, v: Tensor, *, scale: float) -> Tensor:
    """One decoding step: q [B, h, 1, dk] reads every cached key (all are in the past) -> [B, h, 1, dv].

    Explicit matmuls, not SDPA: with one query row the weights are only [B, h, 1, T], no padding of
    the cache to equal widths is needed, and no backend re-plans for each new cache length (SDPA's
    default cuDNN backend on an H100 took 40-50 ms per step at T = 8k that way; these take < 1 ms).
    """
    if q.is_cuda:
        return routing_decode(q[:, :, 0], k, v, None, scale)[:, :, None]
    logits = torch.matmul(q, k.transpose(-2, -1)) * scale
    wide = torch.float32 if logits.dtype in (torch.float16, torch.bfloat16) else logits.dtype
    return torch.matmul(torch.softmax(logits, dim=-1, dtype=wide).to(v.dtype), v)


def routing_weights(q: Tensor, k: Tensor, *, scale: float, causal: bool,
                    padding_mask: Tensor | None = None) -> Tensor:
    """The explicit [B, h, L, L] softmax weights (materialised: only for small L, e.g. routing maps)."""
    batch, _, length, _ = q.shape
    logits = torch.matmul(q, k.transpose(-2, -1)) * scale
    allowed = full_allowed_mask(padding_mask, batch, length, causal, q.device)
    return torch.softmax(logits.masked_fill(~allowed, float("-inf")), dim=-1)


def route_explicit(q: Tensor, k: Tensor, v: Tensor, *, scale: float, causal: bool,
                   padding_mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Same as :func:`route` on the non-fused path; also returns the [B, h, L, L] weights."""
    weights = routing_weights(q, k, scale=scale, causal=causal, padding_mask=padding_mask)
    if v.shape[1] != q.shape[1]:
        v = v.expand(-1, q.shape[1], -1, -1)
    return torch.matmul(weights, v), weights
