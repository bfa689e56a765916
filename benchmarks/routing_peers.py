"""The fwd+bwd peers of the routing-kernel profile (routing_profile.py), at routing_kernel.py shapes."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from routing_kernel import HEADS, RANK, TOKENS, WIDTH
from torch.nn.attention import SDPBackend, sdpa_kernel

from nanog1.core.kernels import routing_attention


def peers(length: int, causal: bool = True) -> dict:
    """name -> (fn, leaf inputs) at one L: MHA on SDPA flash and cuDNN, SAVO's op on cuDNN at its own narrow
    q/k width (the fused block's attention up to 4k), and the rank-r kernel for SAVO and Q-Compass."""
    b, d, dqk = TOKENS // length, WIDTH // HEADS, RANK // HEADS

    def leaf(*shape):
        return torch.randn(*shape, device="cuda", dtype=torch.bfloat16).requires_grad_()

    def on(backend, scale=None):
        def fn(q_, k_, v_):
            with sdpa_kernel(backend):
                return F.scaled_dot_product_attention(q_, k_, v_, is_causal=causal, scale=scale)
        return fn

    def ours(q_, k_, v_):
        return routing_attention(q_, k_, v_, causal=causal, key_padding_mask=None, scale=dqk**-0.5)

    q, k = leaf(b, HEADS, length, dqk), leaf(b, HEADS, length, dqk)
    return {
        "mha_flash": (on(SDPBackend.FLASH_ATTENTION), [leaf(b, HEADS, length, d) for _ in range(3)]),
        "mha_cudnn": (on(SDPBackend.CUDNN_ATTENTION), [leaf(b, HEADS, length, d) for _ in range(3)]),
        "savo_cudnn_narrow": (on(SDPBackend.CUDNN_ATTENTION, dqk**-0.5), [q, k, leaf(b, HEADS, length, d)]),
        "kernel_savo": (ours, [q, k, leaf(b, 1, length, RANK)]),
        "kernel_qcompass": (ours, [q, k, leaf(b, HEADS, length, d)]),
    }
