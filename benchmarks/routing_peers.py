"""The fwd+bwd peers of the routing-kernel profile (routing_profile.py), at routing_kernel.py shapes."""

from __future__ import annotations

import torch
from routing_kernel import HEADS, RANK, TOKENS, WIDTH
from torch.nn.attention import SDPBackend, sdpa_kernel

from nanog1.core.kernels import routing_attention


def peers(length: int) -> dict:
    """name -> (fn, leaf inputs) at one L."""
    b, d, dqk = TOKENS // length, WIDTH // HEADS, RANK // HEADS

    def leaf(*shape):
        return torch.randn(*shape, device="cuda", dtype=torch.bfloat16).requires_grad_()

    def flash(q_, k_, v_):
        with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
            return torch.nn.functional.scaled_dot_product_attention(q_, k_, v_, is_causal=True)

    def ours(q_, k_, v_):
        return routing_attention(q_, k_, v_, causal=True, key_padding_mask=None, scale=dqk**-0.5)

    q, k = leaf(b, HEADS, length, dqk), leaf(b, HEADS, length, dqk)
    return {
        "mha_flash": (flash, [leaf(b, HEADS, length, d) for _ in range(3)]),
        "kernel_savo": (ours, [q, k, leaf(b, 1, length, RANK)]),
        "kernel_qcompass": (ours, [q, k, leaf(b, HEADS, length, d)]),
    }
