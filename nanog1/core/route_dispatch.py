"""Which routing path runs a call: the rank-r Triton kernel or SDPA, from a table of measurements.

The choice is keyed on the device's compute capability (major), the head widths (q/k narrower than
v — Q-Compass and SAVO at r < H — or equal, MHA), causal or bidirectional, the mask kind (none, a
key-padding mask of any pattern, or a ragged batch) and the sequence length. Each entry of
:data:`DISPATCH` lists (longest L, path) steps, read in order; the first whose bound covers L wins.
The numbers behind the entries are in BENCHMARKS.md ("Routing dispatch in the model path"): the
whole mixer block, fwd+bwd, bf16, against MHA on SDPA's cuDNN and flash backends.

Forcing a path: the ``path`` argument of :func:`nanog1.core.routing.route`, or the environment
variable ``NANOG1_ROUTE`` = ``kernel`` | ``sdpa`` | ``auto`` (default; read per call). A forced
``kernel`` still falls back to SDPA where the kernel cannot take the inputs (CPU, fp32, widths
it does not support: :func:`nanog1.core.kernels.kernel_available`).

Padding classification (right / left / irregular, which costs host syncs) matters only to the SDPA
path; the kernel takes any key-padding mask as it is, so a kernel choice needs no sync.
"""

from __future__ import annotations

import os

import torch
from torch import Tensor

from nanog1.core.kernels import kernel_available

ROUTE_PATHS = ("auto", "kernel", "sdpa")
MASK_KINDS = ("none", "mask", "ragged")
_INF = 1 << 62

# (capability major, narrow q/k, causal, mask kind) -> ((longest L, path), ...). Hopper (sm_90):
# the SAVO and Q-Compass blocks (H = 512, 8 heads, r = 64, bf16 autocast, 32k tokens, fwd+bwd),
# 2026-12-06, BENCHMARKS.md "Routing dispatch in the model path" (runs B1 on an H100, B2 on an H200).
# SDPA (q/k zero-padded to the value width, cuDNN) against the kernel, SAVO block, ms, B1 / B2:
# causal 257: 1.68 / 2.41 and 1.98 / 2.28; 512: 2.23 / 2.04 and 1.91 / 2.54; 2k: 1.91 / 1.59 and
# 2.16 / 2.53; 8k: 2.88 / 2.90; 32k: 9.19 / 9.74; bidirectional 257: 2.02 / 2.11 and 2.52 / 1.99;
# 512: 1.73 / 1.86 and 2.32 / 2.14; 2k: 2.15 / 1.92; 8k: 4.67 / 5.26; 32k: 16.15 / 19.89. Up to 2k
# the eager step is host-bound and the two machines order the paths differently; from 8k SDPA is
# level or faster. So unmasked batches kept SDPA (until round 5, below). With a key mask the kernel
# wins where measured (bidirectional right-padded 512: 2.26 / 1.89, 2k: 2.72 / 2.29; causal irregular
# 2k, where SDPA needs an L×L mask: 3.40 / 1.78) and needs no host sync to classify the padding, so
# masks take the kernel; ragged batches take it always. Equal widths (MHA) keep SDPA (the defaults below).
# Round 5 (calls F1, F2, H100; BENCHMARKS.md, issue 30, round 5). With the dK/dV pass retuned the op beats
# cuDNN at SAVO's narrow widths from 2k in device time (F2, fwd+bwd µs, kernel / cuDNN narrow: causal 2k
# 679 / 698, 8k 2019 / 2356, 32k 7489 / 8671; bidirectional 2k 1067 / 1110, 8k 3776 / 4106, 32k 14510 /
# 16047). In the one-node block (strided token-major q/k/v; training step as a CUDA graph, ms, kernel /
# SDPA) it pays from 8k — causal 8k 2.667 / 2.914, 32k 8.466 / 9.094; bidirectional 8k 4.504 / 4.660,
# 32k 16.070 / 16.152 — but not at 2k (causal 1.249 / 1.187, bidirectional 1.658 / 1.603, SDPA there
# being cuDNN at the narrow widths). So unmasked batches take the kernel past NARROW_MAX_LEN (4096).
DISPATCH: dict[tuple[int, bool, bool, str], tuple[tuple[int, str], ...]] = {
    (9, True, True, "none"): ((4096, "sdpa"), (_INF, "kernel")),
    (9, True, False, "none"): ((4096, "sdpa"), (_INF, "kernel")),
    (9, True, True, "mask"): ((_INF, "kernel"),),
    (9, True, False, "mask"): ((_INF, "kernel"),),
    (9, True, True, "ragged"): ((_INF, "kernel"),),
    (9, True, False, "ragged"): ((_INF, "kernel"),),
}
# Unmeasured keys (other devices, equal widths): SDPA (nested varlen SDPA for ragged batches on CUDA).
_DEFAULT = {"none": "sdpa", "mask": "sdpa", "ragged": "sdpa"}


def forced_path(path: str | None) -> str:
    """The requested path: the argument, else NANOG1_ROUTE, else "auto"; rejects unknown names."""
    chosen = path if path is not None else os.environ.get("NANOG1_ROUTE", "auto")
    if chosen not in ROUTE_PATHS:
        raise ValueError(f"routing path must be one of {ROUTE_PATHS}, got {chosen!r} "
                         f"(argument path= or NANOG1_ROUTE)")
    return chosen


def table_path(capability: int, narrow: bool, causal: bool, mask_kind: str, length: int) -> str:
    """The measured choice for this key (see :data:`DISPATCH`), or the default for unmeasured keys."""
    steps = DISPATCH.get((capability, narrow, causal, mask_kind))
    if steps is None:
        return _DEFAULT[mask_kind]
    for bound, path in steps:
        if length <= bound:
            return path
    return steps[-1][1]


def choose_path(q: Tensor, k: Tensor, v: Tensor, *, causal: bool, mask_kind: str, length: int,
                path: str | None = None) -> str:
    """"kernel" or "sdpa" for route(): forced if asked (where the kernel can run), else by the table."""
    chosen = forced_path(path)
    if not kernel_available(q, k, v):
        return "sdpa"
    if chosen != "auto":
        return chosen
    narrow = q.shape[-1] < v.shape[-1]
    return table_path(device_major(q.device), narrow, causal, mask_kind, length)


def device_major(device: torch.device) -> int:
    """The CUDA device's compute capability major (9 on Hopper)."""
    from nanog1.core.kernels.routing import _capability

    return _capability(device.index)[0]
