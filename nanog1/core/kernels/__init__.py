"""Fused routing kernels: narrow-q/k flash attention (Triton, CUDA) and the batched SAVO decode step.

Public API: :func:`routing_attention`, :func:`kernel_available` and :func:`kernel_supports` (training /
prefill), and
:func:`routing_decode` (one new query per sequence over a narrow key cache, pure PyTorch).
"""

from nanog1.core.kernels.routing import (
    kernel_available,
    kernel_supports,
    ragged_reference_attention,
    reference_attention,
    routing_attention,
)
from nanog1.core.kernels.routing_decode import decode_reference, routing_decode

__all__ = [
    "decode_reference",
    "kernel_available",
    "kernel_supports",
    "ragged_reference_attention",
    "reference_attention",
    "routing_attention",
    "routing_decode",
]
