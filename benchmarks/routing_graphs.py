"""Routing kernel vs MHA-flash fwd+bwd, timed eagerly and as CUDA-graph replays (launch overhead removed).

GPU only. `PYTHONPATH=. python3 benchmarks/routing_graphs.py [--lengths 512,2048,8192,32768]`. Same shapes
as benchmarks/routing_kernel.py. At short L the kernel's own device time is far below MHA-flash's, but an
eager step is bound by the host launching four Triton/ATen kernels through Python; a captured graph
replays the same kernels without that, as a training step under CUDA graphs would. MHA-flash is
timed eagerly only (see main).
"""

from __future__ import annotations

import argparse

import torch
from routing_graphs_peers import peers
from routing_kernel import fwd_bwd
from triton.testing import do_bench


def graphed(fn, inputs: list[torch.Tensor]):
    """A CUDA graph of one fwd+bwd step (grads allocated inside the graph's pool), warmed on a side stream."""
    out = fn(*inputs)
    g = torch.randn_like(out)

    def step():
        fn(*inputs).backward(g)

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            for t in inputs:
                t.grad = None
            step()
    torch.cuda.current_stream().wait_stream(side)
    for t in inputs:
        t.grad = None
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step()
    return graph.replay


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lengths", default="512,2048,8192,32768")
    args = ap.parse_args()
    print(torch.cuda.get_device_name(), torch.__version__, flush=True)
    print("| L | peer | eager ms | graph ms | flash graph ÷ this graph |")
    for length in (int(x) for x in args.lengths.split(",")):
        times = {}
        for name, (fn, inputs) in peers(length).items():
            e = do_bench(fwd_bwd(fn, inputs), warmup=50, rep=300, grad_to_none=inputs, return_mode="median")
            # SDPA's flash backward does not capture in torch 2.11 (it invalidates the capture and the
            # RNG state); flash is device-bound at every L here (eager = its kernels' sum), so its eager
            # time stands in for its graph time.
            gr = e if name == "mha_flash" else do_bench(graphed(fn, inputs), warmup=50, rep=300,
                                                        return_mode="median")
            times[name] = (e, gr)
        for name, (e, gr) in times.items():
            ratio = times['mha_flash'][1] / gr
            print(f"| {length} | {name} | {e:.3f} | {gr:.3f} | {ratio:.2f}× |", flush=True)


if __name__ == "__main__":
    main()
