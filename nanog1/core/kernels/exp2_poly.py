"""2^x without the exponential unit: a degree-3 polynomial on the FMA pipes, for part of a tile's scores.

An H100's SM issues 16 MUFU exponentials per clock against 128 fp32 FMAs, and a rank-r routing pass, whose
scores cost an eighth of MHA's multiply-adds, issues as many exponentials as MHA: the exponential unit, not
the tensor cores, can bound it. Computing some of the exponentials with FMAs (the idea of FlashAttention-4's
exponential emulation) moves work to idle pipes. The kernels (:mod:`nanog1.core.kernels.routing_triton`)
run it as inline PTX on one element of every two or four; this module holds the constants, the PTX and a
torch emulation of the same steps (for tests on CPUs).

2^x = 2^n · 2^f with n = round(x) (read off the float's bits after adding 1.5·2²³, so no conversion
instruction) and f = x − n in [−½, ½]; 2^f ≈ c0 + c1·f + c2·f² + c3·f³ (minimax in relative error:
7.5e-5, far below bf16's 3.9e-3, which is what P is cast to); n goes into the exponent field by an integer
add. x < −126 gives exactly 0 (so −inf, a masked score, is 0 as with ex2). Imports neither torch nor Triton.
"""

from __future__ import annotations

import struct

# 2^f on [-1/2, 1/2], minimax in relative error (max 7.49e-5 in float32 Horner form), as float32 values.
COEFFS = (0.9999281167984009, 0.6932609677314758, 0.24261054396629333, 0.055171363055706024)
MAGIC = 12582912.0  # 1.5 · 2^23: x + MAGIC rounds x to an integer held in the mantissa's low bits
FLOOR = -126.0  # below this the result is 0 (2^-126 is float32's smallest normal number)
MAX_REL_ERROR = 7.5e-5


def ptx_float(value: float) -> str:
    """A float32 immediate as PTX writes it (``0f3F800000`` for 1.0)."""
    return f"0f{struct.unpack('<I', struct.pack('<f', value))[0]:08X}"


def _poly_lines(src: str, dst: str) -> list[str]:
    """PTX for dst = 2^src by the polynomial (fp32 registers given as ``$i`` operands)."""
    c0, c1, c2, c3 = (ptx_float(c) for c in COEFFS)
    magic, floor = ptx_float(MAGIC), ptx_float(FLOOR)
    return [
        f"add.rn.ftz.f32 j, {src}, {magic};",  # round(x) + MAGIC
        f"sub.rn.ftz.f32 n, j, {magic};",  # round(x)
        f"sub.rn.ftz.f32 f, {src}, n;",  # f in [-1/2, 1/2]
        f"fma.rn.ftz.f32 r, f, {c3}, {c2};",
        "fma.rn.ftz.f32 r, r, f, " + c1 + ";",
        "fma.rn.ftz.f32 r, r, f, " + c0 + ";",
        "mov.b32 e, j;",
        "shl.b32 e, e, 23;",  # round(x) into the exponent field (the magic's bits shift out)
        "mov.b32 b, r;",
        "add.s32 b, b, e;",
        f"setp.lt.ftz.f32 under, {src}, {floor};",
        f"selp.b32 {dst}, 0, b, under;",
    ]


def ptx(pack: int) -> str:
    """Inline PTX for Triton's ``inline_asm_elementwise`` over ``pack`` fp32 elements ($0.. out, $pack.. in):
    the last element by the polynomial, the others on the exponential unit (``ex2.approx.ftz.f32``)."""
    if pack < 2:
        raise ValueError(f"pack must be at least 2, got {pack}")
    lines = ["{", ".reg .f32 j, n, f, r;", ".reg .b32 e, b;", ".reg .pred under;"]
    lines += [f"ex2.approx.ftz.f32 ${i}, ${pack + i};" for i in range(pack - 1)]
    lines += _poly_lines(f"${2 * pack - 1}", f"${pack - 1}")
    lines.append("}")
    return "\n".join(lines)


def constraints(pack: int) -> str:
    """``=r`` per output, ``r`` per input: fp32 values in 32-bit registers."""
    return ",".join(["=r"] * pack + ["r"] * pack)


def exp2_poly_torch(x):
    """The same steps in torch (float32 in, float32 out), for tests: rounding, polynomial, exponent add."""
    import torch

    x = x.float()
    j = x + MAGIC
    f = x - (j - MAGIC)
    c0, c1, c2, c3 = COEFFS
    r = ((f * c3 + c2) * f + c1) * f + c0
    bits = r.view(torch.int32).long() + (j.view(torch.int32).long() << 23)
    bits = bits & 0xFFFFFFFF
    out = torch.where(bits >= 2**31, bits - 2**32, bits).to(torch.int32).view(torch.float32)
    return torch.where(x < FLOOR, torch.zeros_like(out), out)
