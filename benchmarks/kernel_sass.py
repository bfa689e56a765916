"""Instruction mix of each loop of a routing kernel, cross-compiled for sm_90 (no GPU needed).

Triton compiles for a GPU target on any machine and ships ptxas and nvdisasm, so the SASS of a kernel
can be read on a CPU box. The routing kernels' inner loops are issue-bound (BENCHMARKS.md, run 20), so
instructions per loop iteration predict what a change buys before a GPU is spent on it.

    PYTHONPATH=. python3 benchmarks/kernel_sass.py _bwd_kernel 64 128 8 2

Arguments: kernel name in nanog1.core.kernels.routing_triton, BLOCK_M, BLOCK_N, num_warps, num_stages.
Shapes as benchmarks/routing_kernel.py (d_qk 8, d_v 64, bf16, causal, no padding); integer arguments
are declared divisible by 16 (as Triton specialises them at run time), `heads` not.
"""

from __future__ import annotations

import argparse
import collections
import re
import subprocess
import tempfile
from pathlib import Path

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

import nanog1.core.kernels.routing_triton as rt

_BF16 = {"Q", "K", "V", "DO", "DK", "DV", "O"}
_FP32 = {"Bias", "LSE", "DELTA", "DQ"}


def compile_sass(name: str, block_m: int, block_n: int, warps: int, stages: int, atomic: bool,
                 exp: str = "fp32") -> str:
    """SASS text of one routing kernel at one config and exponential mode (rt.EXP_MODES)."""
    fn = getattr(rt, name).fn
    sig = {}
    for arg in fn.arg_names:
        if arg in _BF16 or (arg == "DQ" and name == "_dq_kernel"):
            sig[arg] = "*bf16"
        elif arg in _FP32:
            sig[arg] = "*fp32"
        elif arg in ("qk_scale", "sm_scale"):
            sig[arg] = "fp32"
        elif arg.isupper() or arg.startswith("BLOCK") or arg in ("D_QK", "D_V"):
            sig[arg] = "constexpr"
        else:
            sig[arg] = "i32"
    consts = dict(D_QK=8, D_V=64, BLOCK_DQK=16, CAUSAL=True, HAS_BIAS=False, ATOMIC_DQ=atomic,
                  EXP_MODE=rt.EXP_MODES[exp], FWD_EXP=rt.EXP_MODES[exp], BLOCK_M=block_m, BLOCK_N=block_n,
                  VARLEN=False)
    consts = {k: v for k, v in consts.items() if k in fn.arg_names}
    attrs = {(i,): [["tt.divisibility", 16]] for i, a in enumerate(fn.arg_names)
             if sig[a] not in ("constexpr", "fp32") and a != "heads"}
    source = ASTSource(fn=fn, signature=sig, constexprs=consts, attrs=attrs)
    kernel = triton.compile(source, target=GPUTarget("cuda", 90, 32),
                            options=dict(num_warps=warps, num_stages=stages))
    nvdisasm = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "nvdisasm"
    with tempfile.NamedTemporaryFile(suffix=".cubin") as cubin:
        cubin.write(kernel.asm["cubin"])
        cubin.flush()
        return subprocess.run([str(nvdisasm), "-c", "-g", cubin.name], capture_output=True, text=True,
                              check=True).stdout


def loops(sass: str) -> list[tuple[int, int, collections.Counter]]:
    """(start, end, opcode counts) of every backward-branch loop in the SASS."""
    labels, insts, pending = {}, [], []
    for line in sass.splitlines():
        label = re.match(r"\s*\.(L_x_\d+):", line)
        if label:
            pending.append(label.group(1))
            continue
        inst = re.search(r"/\*([0-9a-f]{4,})\*/\s+(.*?);", line)
        if inst:
            addr = int(inst.group(1), 16)
            labels.update({p: addr for p in pending})
            pending = []
            insts.append((addr, inst.group(2)))
    found = []
    for addr, text in insts:
        target = re.search(r"BRA.*`\(\.(L_x_\d+)\)", text)
        if target and labels.get(target.group(1), addr + 1) < addr:
            start = labels[target.group(1)]
            ops = [re.sub(r"^@!?U?P\w+\s+", "", t.strip()).split()[0].split(".")[0]
                   for a, t in insts if start <= a <= addr]
            found.append((start, addr, collections.Counter(ops)))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kernel", choices=["_fwd_kernel", "_dq_kernel", "_bwd_kernel"])
    parser.add_argument("config", nargs=4, type=int, metavar=("BLOCK_M", "BLOCK_N", "WARPS", "STAGES"))
    parser.add_argument("--atomic", action="store_true", help="the dK/dV kernel with dQ by atomics")
    parser.add_argument("--exp", default="fp32", choices=list(rt.EXP_MODES),
                        help="exponential mode (NANOG1_ROUTING_EXP, _FWD_EXP; bf16x2: backward only)")
    args = parser.parse_args()
    block_m, block_n, warps, _ = args.config
    scores = block_m * block_n / (32 * warps)  # score elements per thread per iteration
    for start, end, ops in loops(compile_sass(args.kernel, *args.config, args.atomic, args.exp)):
        total = sum(ops.values())
        print(f"loop {start:#x}-{end:#x}: {total} instructions, {total / scores:.1f} per score per thread")
        print("   ", dict(ops.most_common(14)))


if __name__ == "__main__":
    main()
