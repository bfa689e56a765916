"""A one-program Triton kernel that applies the routing kernels' 2^x (``_exp2``) to a vector (GPU tests only:
imports Triton and the kernels)."""

import torch
import triton
import triton.language as tl

import nanog1.core.kernels.routing_triton as rt


@triton.jit
def _probe(X, Y, MODE: tl.constexpr, N: tl.constexpr):
    offs = tl.arange(0, N)
    tl.store(Y + offs, rt._exp2(tl.load(X + offs), MODE))


def exp2_by_mode(x: torch.Tensor, mode: str) -> torch.Tensor:
    """2^x of a float32 CUDA vector (length a power of two) by the kernels' exponential ``mode``."""
    y = torch.empty_like(x)
    _probe[(1,)](x, y, MODE=rt.EXP_MODES[mode], N=x.numel())
    return y
