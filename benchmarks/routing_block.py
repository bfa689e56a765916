"""The mixer block as the models use it, fwd+bwd: SAVO / Q-Compass per routing path vs MHA (cuDNN, flash).

GPU only. Run from the repo root:
    PYTHONUNBUFFERED=1 PYTHONPATH=. python3 benchmarks/routing_block.py [--skip qdelta,masks]
Shapes: H = 512, 8 heads, r = 64 (q/k 8 wide per head, values 64), bf16 autocast over fp32 weights,
32k tokens per batch (B = 32768 // L), input gradient on (a block inside a stack). Every row is the
whole mixer module (projections included), forward and backward, do_bench median in ms, all rows in
one process. Paths: ``sdpa`` / ``kernel`` force route()'s path (NANOG1_ROUTE), ``auto`` is the
dispatch table's choice, ``unfused`` SDPA through the modules' autograd path (the one-node
block of nanog1.core.fused_block off; ``sdpa`` and ``auto`` take that block where it applies).
MHA peers: the same MHA module on SDPA's default dispatch (cuDNN on an H100) and pinned
to the flash backend. ``best MHA`` is the faster of the two; ratios are best-MHA time ÷ ours.
Sections: ``causal`` and ``bidir`` (no padding), ``masks`` (right / irregular padding at 2k),
``qdelta`` (the Q-Delta layer against its op and its projections, with a profile).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os

import torch
import triton
from routing_kernel import captured
from torch.nn.attention import SDPBackend, sdpa_kernel
from triton.testing import do_bench

from nanog1.core import build_mixer

HIDDEN, HEADS, RANK, TOKENS = 512, 8, 64, 32768


def bench(fn) -> float:
    return do_bench(fn, warmup=30, rep=150, return_mode="median")


@contextlib.contextmanager
def route_env(path: str):
    """Force route()'s path for the rows inside (NANOG1_ROUTE is read per call); ``unfused`` is SDPA with
    the one-node block (nanog1.core.fused_block) switched off (NANOG1_FUSED_BLOCK=0): the autograd path."""
    env = {"NANOG1_ROUTE": "sdpa", "NANOG1_FUSED_BLOCK": "0"} if path == "unfused" else {"NANOG1_ROUTE": path}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k)
            else:
                os.environ[k] = v


def block_step(module, batch: int, length: int, mask: torch.Tensor | None):
    """fwd+bwd closure of one mixer module under bf16 autocast (fp32 weights), input gradient on."""
    x = torch.randn(batch, length, HIDDEN, device="cuda", requires_grad=True)
    grad = torch.randn(batch, length, HIDDEN, device="cuda")

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            y = module(x, mask)
        y.backward(grad)
        x.grad = None
        for p in module.parameters():
            p.grad = None
    return step


def graphed(step) -> float:
    """Median ms of ``step`` replayed from a CUDA graph: its device time without the host's."""
    return bench(captured(step).replay)


def training_step_times(module, batch: int, length: int, mask: torch.Tensor | None, repeat: int) -> dict:
    """ms of one whole training step of the block as the encoders now run it (nanog1.core.step_graph):
    forward + backward (input gradient on) + fused, capturable AdamW; eager (``step_eager_ms``) and
    replayed from its CUDA graph (``step_graph_ms``), median of ``repeat`` timings each."""
    from nanog1.core.step_graph import GraphedStep, capturable_kwargs

    opt = torch.optim.AdamW(module.parameters(), lr=1e-4, weight_decay=0.01, **capturable_kwargs(True))
    x = torch.randn(batch, length, HIDDEN, device="cuda", requires_grad=True)
    grad = torch.randn(batch, length, HIDDEN, device="cuda")

    def step(_batch: dict) -> dict:
        x.grad = None
        with torch.autocast("cuda", dtype=torch.bfloat16):
            y = module(x, mask)
        y.backward(grad)
        opt.step()
        return {}
    out = {}
    for name, enabled in (("step_eager_ms", False), ("step_graph_ms", True)):
        stepper = GraphedStep(step, opt, "cuda", enabled=enabled)
        for _ in range(4):  # two warm-up steps, the capture, a replay
            stepper({})
        if enabled and stepper.stats.captured != 1:
            raise RuntimeError(f"the step was not captured: {stepper.stats.reasons}")
        times = sorted(bench(lambda s=stepper: s({})) for _ in range(repeat))
        out[name] = times[len(times) // 2]
        out[name.replace("_ms", "_min_ms")], out[name.replace("_ms", "_max_ms")] = times[0], times[-1]
    return out


def rows_at(length: int, causal: bool, mask_kind: str | None = None, kinds=("savo", "qcompass"),
            paths=("sdpa", "kernel", "auto"), repeat: int = 1, graph: bool = False,
            step_graph: bool = False) -> list[dict]:
    """One row per (mixer, path) at this L; with ``repeat`` > 1 each is timed that many times (median
    kept, min and max too: at short L the eager step is host-bound and moves between timings);
    ``graph`` adds the step's CUDA-graph replay time (``graph_ms``: device time, host time taken out);
    ``step_graph`` times only the whole training step with AdamW, eager and graphed
    (:func:`training_step_times`), not the fwd+bwd closure."""
    batch = max(1, TOKENS // length)
    mask = padding_mask(mask_kind, batch, length)
    out = []
    peers = [("mha", "sdpa-default", contextlib.nullcontext), ("mha", "sdpa-flash",
             lambda: sdpa_kernel([SDPBackend.FLASH_ATTENTION]))]
    ours = [(kind, path, lambda p=path: route_env(p)) for kind in kinds for path in paths]
    for kind, path, scope in peers + ours:
        torch.manual_seed(0)
        module = build_mixer(kind, HIDDEN, RANK, HEADS, causal).cuda()
        row = dict(kind=kind, path=path, L=length, B=batch, causal=causal, mask=mask_kind or "none")
        try:
            with scope():
                if step_graph:
                    row.update(training_step_times(module, batch, length, mask, repeat))
                    out.append(row)
                    print(json.dumps(row), flush=True)
                    continue
                step = block_step(module, batch, length, mask)
                times = sorted(bench(step) for _ in range(repeat))
                row.update(ms=times[len(times) // 2], min_ms=times[0], max_ms=times[-1])
                if graph:
                    row["graph_ms"] = graphed(step)
        except RuntimeError as err:  # e.g. flash refusing a mask: report, keep the table
            row["error"] = str(err).splitlines()[0][:100]
        out.append(row)
        print(json.dumps(row), flush=True)
        del module
        torch.cuda.empty_cache()
    return out


def padding_mask(kind: str | None, batch: int, length: int) -> torch.Tensor | None:
    """None, right padding (row i keeps L − i·L/(2B) tokens) or irregular (30 % random, first kept)."""
    if kind is None:
        return None
    if kind == "right":
        keep = length - torch.arange(batch, device="cuda") * (length // (2 * batch))
        return torch.arange(length, device="cuda")[None] >= keep[:, None]
    mask = torch.rand(batch, length, device="cuda") < 0.3
    mask[:, 0] = False
    return mask


def mha_peers(rows: list[dict], row: dict, field: str) -> list[dict]:
    """The MHA rows timed at ``row``'s shape (L, causal, mask) that carry ``field``."""
    return [p for p in rows if p["kind"] == "mha" and field in p
            and (p["L"], p["causal"], p["mask"]) == (row["L"], row["causal"], row["mask"])]


def print_step_table(rows: list[dict]) -> None:
    """The whole training step (fwd+bwd+AdamW), eager and graphed; ratios = the faster MHA ÷ ours, graphed
    against graphed (as the encoders now run on CUDA) and eager against eager."""
    print("\n| L | causal | mask | mixer | path | step eager ms (min–max) | step graph ms (min–max) "
          "| MHA cuDNN eager / graph | MHA flash eager / graph | best MHA ÷ ours, graph | same, eager |")
    print("| --- " * 11 + "|")
    for r in rows:
        if r["kind"] == "mha" or "step_graph_ms" not in r:
            continue
        peers = {p["path"]: p for p in mha_peers(rows, r, "step_graph_ms")}
        if not peers:
            continue
        best_g = min(p["step_graph_ms"] for p in peers.values())
        best_e = min(p["step_eager_ms"] for p in peers.values())

        def pair(p):
            return f"{p['step_eager_ms']:.3f} / {p['step_graph_ms']:.3f}" if p else "–"
        print(f"| {r['L']} | {r['causal']} | {r['mask']} | {r['kind']} | {r['path']} "
              f"| {r['step_eager_ms']:.3f} ({r['step_eager_min_ms']:.3f}–{r['step_eager_max_ms']:.3f}) "
              f"| {r['step_graph_ms']:.3f} ({r['step_graph_min_ms']:.3f}–{r['step_graph_max_ms']:.3f}) "
              f"| {pair(peers.get('sdpa-default'))} | {pair(peers.get('sdpa-flash'))} "
              f"| **{best_g / r['step_graph_ms']:.2f}×** | {best_e / r['step_eager_ms']:.2f}× |")


def print_table(rows: list[dict]) -> None:
    print("\n| L | B | causal | mask | MHA cuDNN | MHA flash | SAVO sdpa | SAVO kernel | SAVO auto "
          "| Q-Compass sdpa | Q-Compass kernel | Q-Compass auto | best MHA ÷ SAVO auto "
          "| best MHA ÷ Q-Compass auto |")
    print("| --- " * 14 + "|")
    keys = sorted({(r["L"], r["causal"], r["mask"]) for r in rows}, key=lambda k: (k[2], not k[1], k[0]))
    for key in keys:
        got = {(r["kind"], r["path"]): r.get("ms", float("nan")) for r in rows
               if (r["L"], r["causal"], r["mask"]) == key}
        got = {k: got.get(k, float("nan")) for k in [("mha", "sdpa-default"), ("mha", "sdpa-flash")]
               + [(kind, p) for kind in ("savo", "qcompass") for p in ("sdpa", "kernel", "auto")]} | got
        b = next(r["B"] for r in rows if (r["L"], r["causal"], r["mask"]) == key)
        best = min(got[("mha", "sdpa-default")], got[("mha", "sdpa-flash")])
        cells = [got.get(k, float("nan")) for k in [("mha", "sdpa-default"), ("mha", "sdpa-flash"),
                 ("savo", "sdpa"), ("savo", "kernel"), ("savo", "auto"), ("qcompass", "sdpa"),
                 ("qcompass", "kernel"), ("qcompass", "auto")]]
        print(f"| {key[0]} | {b} | {key[1]} | {key[2]} | " + " | ".join(f"{c:.3f}" for c in cells)
              + f" | {best / got[('savo', 'auto')]:.2f}× | {best / got[('qcompass', 'auto')]:.2f}× |")


def print_graph_table(rows: list[dict]) -> None:
    """Eager ms and CUDA-graph ms per row (host-bound rows shrink in the graph)."""
    for r in rows:
        if "graph_ms" in r:
            print(f"graph {r['kind']:8s} {r['path']:12s} L={r['L']:6d} causal={r['causal']!s:5} "
                  f"mask={r['mask']:9s} eager {r['ms']:.3f} ms  graph {r['graph_ms']:.3f} ms")


def print_ratio_table(rows: list[dict]) -> None:
    """Per row of ours: eager and graph ms and best MHA ÷ ours (> 1: ours faster), each in one process."""
    print("\n| L | causal | mask | mixer | path | ms eager | ms graph | best MHA eager | best MHA graph "
          "| best MHA ÷ ours, eager | same, graph |")
    print("| --- " * 11 + "|")
    for r in rows:
        if r["kind"] == "mha" or "ms" not in r:
            continue
        peers = mha_peers(rows, r, "ms")
        best = min(p["ms"] for p in peers)
        best_g = min((p["graph_ms"] for p in peers if "graph_ms" in p), default=float("nan"))
        g = r.get("graph_ms", float("nan"))
        print(f"| {r['L']} | {r['causal']} | {r['mask']} | {r['kind']} | {r['path']} | {r['ms']:.3f} "
              f"| {g:.3f} | {best:.3f} | {best_g:.3f} | {best / r['ms']:.2f}× | {best_g / g:.2f}× |")


def qdelta_rows(lengths: list[int]) -> list[dict]:
    """The Q-Delta layer fwd+bwd vs its op (both scans when bidirectional) and its projections alone."""
    from nanog1.core.qdelta import QDelta
    from nanog1.core.qdelta_fused import qdelta_fused

    out = []
    for causal in (True, False):
        for length in lengths:
            batch = max(1, TOKENS // length)
            torch.manual_seed(0)
            layer = QDelta(HIDDEN, RANK, HEADS, causal).cuda()
            row = dict(L=length, B=batch, causal=causal)
            row["layer_ms"] = bench(block_step(layer, batch, length, None))
            os.environ["NANOG1_QDELTA_CONV"] = "torch"
            row["layer_conv1d_ms"] = bench(block_step(layer, batch, length, None))
            os.environ.pop("NANOG1_QDELTA_CONV")
            row["op_ms"] = bench(op_step(layer, batch, length, causal, qdelta_fused))
            row["proj_ms"] = bench(projection_step(layer, batch, length))
            row["ratio"] = row["layer_ms"] / (row["op_ms"] + row["proj_ms"])
            out.append(row)
            print(json.dumps(row), flush=True)
    profile_layer(QDelta(HIDDEN, RANK, HEADS, True).cuda(), 4, 8192)
    return out


def profile_blocks(length: int) -> None:
    """CPU (host) and CUDA time of the SAVO block on each path and of MHA, 5 eager steps at L."""
    for kind, path in (("mha", "auto"), ("savo", "sdpa"), ("savo", "unfused")):
        module = build_mixer(kind, HIDDEN, RANK, HEADS, True).cuda()
        with route_env(path):
            profile_steps(block_step(module, TOKENS // length, length, None), 5,
                          f"block profile {kind} path={path} L={length}")


def profile_steps(step, n: int, title: str) -> None:
    """Print the profiler's table (host and CUDA time per op) of n eager steps after one warm step."""
    step()
    torch.cuda.synchronize()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA,
                                            torch.profiler.ProfilerActivity.CPU]) as prof:
        for _ in range(n):
            step()
        torch.cuda.synchronize()
    print(f"--- {title}, {n} steps")
    print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=14, max_name_column_width=50))


def sdpa_rows(lengths: list[int]) -> list[dict]:
    """SAVO's routing op alone on SDPA (bf16 fwd+bwd, 8 heads, q/k 8 wide, one shared 64-wide value head,
    32k tokens): the forms route() could hand to SDPA, per backend, with the backend torch picks.

    ``padded+expand``: q/k zero-padded to 64, v expanded over the heads (stride 0); ``padded+copy``: v
    copied to 8 heads; ``narrow``: q/k left 8 wide (unequal widths), v copied. MHA rows: q, k, v 64 wide.
    """
    from torch.nn.attention import SDPBackend

    backends = {"default": None, "cudnn": SDPBackend.CUDNN_ATTENTION, "flash": SDPBackend.FLASH_ATTENTION,
                "efficient": SDPBackend.EFFICIENT_ATTENTION}
    out = []
    for causal in (True, False):
        for length in lengths:
            for form in ("padded+expand", "padded+copy", "narrow", "mha"):
                for name, backend in backends.items():
                    row = dict(form=form, backend=name, L=length, B=max(1, TOKENS // length), causal=causal)
                    try:
                        row.update(sdpa_time(form, backend, row["B"], length, causal))
                    except RuntimeError as err:
                        row["error"] = str(err).splitlines()[0][:90]
                    out.append(row)
                    print(json.dumps(row), flush=True)
            torch.cuda.empty_cache()
    return out


def sdpa_time(form: str, backend, batch: int, length: int, causal: bool) -> dict:
    """ms of one SDPA form's fwd+bwd (see :func:`sdpa_rows`) and, on the default dispatch, torch's pick."""
    import torch.nn.functional as F
    from torch.nn.attention import sdpa_kernel

    def leaf(*shape):
        return torch.randn(*shape, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    if form == "mha":
        q, k, v = (leaf(batch, HEADS, length, 64) for _ in range(3))
    else:
        q, k, v = leaf(batch, HEADS, length, 8), leaf(batch, HEADS, length, 8), leaf(batch, 1, length, 64)

    def make():
        if form == "mha":
            return q, k, v
        wide = v.expand(-1, HEADS, -1, -1)
        if form == "padded+expand":
            return F.pad(q, (0, 56)), F.pad(k, (0, 56)), wide
        if form == "padded+copy":
            return F.pad(q, (0, 56)), F.pad(k, (0, 56)), wide.contiguous()
        return q, k, wide.contiguous()

    def step():
        with contextlib.nullcontext() if backend is None else sdpa_kernel([backend]):
            y = F.scaled_dot_product_attention(*make(), is_causal=causal, scale=8 ** -0.5)
        y.backward(torch.ones_like(y))
    step()
    row = {"ms": bench(step)}
    if backend is None:
        row["picked"] = int(torch._fused_sdp_choice(*[t.detach() for t in make()], is_causal=causal))
    return row


def op_step(layer, batch: int, length: int, causal: bool, qdelta_fused):
    """fwd+bwd of the fused Q-Delta op alone on the layer's own streams (both scans if bidirectional)."""
    x = torch.randn(batch, length, HIDDEN, device="cuda")
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        s = layer._streams(layer._conv_full(layer.qkv(x)), x)
    streams = [t.detach().requires_grad_() for t in (s.q, s.k, s.v, s.beta, s.lam, s.g)]
    d_o = torch.randn_like(s.v)

    def op():
        o = qdelta_fused(*streams)[0]
        if not causal:
            o = o + qdelta_fused(*(t.flip(2) for t in streams))[0].flip(2)
        torch.autograd.grad(o, streams, d_o)
    return op


def projection_step(layer, batch: int, length: int):
    """fwd+bwd of the layer's four linear projections alone (bf16 autocast)."""
    lins = [layer.qkv, layer.gates, layer.out_gate, layer.out]
    xin = torch.randn(batch, length, HIDDEN, device="cuda", requires_grad=True)

    def proj():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            total = sum(lin(xin).float().sum() for lin in lins)
        total.backward()
    return proj


def profile_layer(layer, batch: int, length: int) -> None:
    """Top CUDA kernels of the Q-Delta layer's fwd+bwd (new conv, then conv1d): where the time goes."""
    for conv in ("triton", "torch"):
        os.environ["NANOG1_QDELTA_CONV"] = conv
        profile_steps(block_step(layer, batch, length, None), 3,
                      f"Q-Delta layer profile, conv={conv}, L={length}, B={batch}")
    os.environ.pop("NANOG1_QDELTA_CONV")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", default="257,512,2048,8192,32768")
    parser.add_argument("--qdelta-lengths", default="512,2048,8192")
    parser.add_argument("--skip", default="", help="comma list of: causal, bidir, masks, qdelta")
    parser.add_argument("--kinds", default="savo,qcompass")
    parser.add_argument("--paths", default="sdpa,kernel,auto")
    parser.add_argument("--repeat", type=int, default=1, help="timings per row (median, min, max kept)")
    parser.add_argument("--profile-block", type=int, default=0, help="profile the blocks at this L")
    parser.add_argument("--graph", action="store_true", help="also time each block as a CUDA-graph replay")
    parser.add_argument("--step-graph", action="store_true",
                        help="time the whole training step (fwd+bwd+AdamW) eager and as the CUDA graph the "
                             "encoders now replay (nanog1.core.step_graph), instead of the fwd+bwd closure")
    parser.add_argument("--sdpa-lengths", default="", help="time SAVO's op on each SDPA form at these L")
    parser.add_argument("--out", default=os.path.join(os.environ.get("OUT", "."), "routing_block.json"))
    args = parser.parse_args()
    skip = set(args.skip.split(","))
    print(torch.cuda.get_device_name(), "torch", torch.__version__, "triton", triton.__version__, flush=True)
    lengths = [int(n) for n in args.lengths.split(",")]
    rows: list[dict] = []
    sel = dict(kinds=args.kinds.split(","), paths=args.paths.split(","), repeat=args.repeat, graph=args.graph,
               step_graph=args.step_graph)
    sdpa = sdpa_rows([int(n) for n in args.sdpa_lengths.split(",")]) if args.sdpa_lengths else []
    for causal, name in ((True, "causal"), (False, "bidir")):
        if name not in skip:
            for length in lengths:
                rows += rows_at(length, causal, **sel)
    if "masks" not in skip:
        masked = sel if args.step_graph else {}
        rows += rows_at(2048, False, "right", **masked) + rows_at(2048, True, "irregular", **masked)
        rows += rows_at(512, False, "right", **masked)
    qd = [] if "qdelta" in skip else qdelta_rows([int(n) for n in args.qdelta_lengths.split(",")])
    if args.profile_block:
        profile_blocks(args.profile_block)
    with open(args.out, "w") as fh:
        json.dump({"block": rows, "qdelta": qd, "sdpa": sdpa}, fh, indent=1)
    if args.step_graph:
        print_step_table(rows)
    elif rows:
        print_table(rows)
    print_graph_table(rows)
    print_ratio_table(rows)
    for r in sdpa:
        print(f"sdpa {r['form']:14s} {r['backend']:9s} L={r['L']:6d} causal={r['causal']!s:5} "
              + (f"{r['ms']:.3f} ms" if "ms" in r else r["error"]) + f"  picked={r.get('picked', '')}")
    print("\n| Q-Delta L | B | causal | layer ms | layer, conv1d ms | op ms | projections ms "
          "| layer ÷ (op + proj) |")
    print("| --- " * 8 + "|")
    for r in qd:
        print(f"| {r['L']} | {r['B']} | {r['causal']} | {r['layer_ms']:.3f} | {r['layer_conv1d_ms']:.3f} "
              f"| {r['op_ms']:.3f} | {r['proj_ms']:.3f} | {r['ratio']:.2f} |")


if __name__ == "__main__":
    main()
