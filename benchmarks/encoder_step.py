"""The catalogue encoder's training step on the GPU, graphed (nanog1.core.step_graph) vs eager, per mixer.

GPU only. Run from the repo root:
    PYTHONUNBUFFERED=1 PYTHONPATH=. python3 benchmarks/encoder_step.py [--mixers savo,mha] [--batch 64]
The step is `nanog1.encoder.loop.train_step` itself (forward, class-weighted type loss, backward, clipping,
fused capturable AdamW under bf16 autocast), on a MutationEncoder of the catalogue view (every sample has the
layout's N_CHANNELS tokens + CLS, so one batch shape) with the last 12 channels key-padded as an unmeasured
set. Each row reports ms per step (median of `--repeat` do_bench medians) and how the steps ran (captured
graphs, replays, eager steps and, for a shape left eager, why): a model whose step syncs with the host
(MHA's SDPA route checks its key mask on the host) stays eager, as it does in training.
"""

from __future__ import annotations

import argparse
import json
import os

import torch
from triton.testing import do_bench

from nanog1.core.step_graph import ENV, capturable_kwargs
from nanog1.encoder.config import TrainConfig
from nanog1.encoder.inference import LossContext
from nanog1.encoder.loop import train_step
from nanog1.encoder.model import MutationEncoder, MutationEncoderConfig
from nanog1.optim import build_optimizer
from nanog1.schema import N_CHANNELS


def batch(n: int, types: int) -> dict:
    """A catalogue batch as Collate builds it (counts, labels, indices, no exposures)."""
    return {"index": torch.arange(n), "counts": torch.poisson(torch.full((n, N_CHANNELS), 3.0)),
            "labels": torch.randint(0, types, (n,)), "exposures": {}}


def time_row(mixer: str, graphed: bool, args) -> dict:
    """ms per training step of one encoder, graphed or eager (NANOG1_STEP_GRAPH set accordingly)."""
    os.environ[ENV] = "1" if graphed else "0"
    torch.manual_seed(0)
    cfg = TrainConfig(mixer=mixer, hidden=args.hidden, layers=args.layers, rank=args.rank, heads=args.heads,
                      dropout=0.1, batch_size=args.batch)
    ecfg = MutationEncoderConfig(hidden=cfg.hidden, layers=cfg.layers, rank=cfg.rank, heads=cfg.heads,
                                 mixer=mixer, dropout=0.1, n_types=20)
    model = MutationEncoder(ecfg).cuda()
    opt, sched = build_optimizer(model, 1e-3, 0.01, 10, 10_000, **capturable_kwargs(True))
    padding = torch.zeros(N_CHANNELS, dtype=torch.bool, device="cuda")
    padding[-12:] = True
    ctx = LossContext(task="cancer_type", view="catalogue", channel_padding=padding,
                      class_weights=torch.rand(20, device="cuda") + 0.5)
    step = train_step(model, opt, ctx, cfg, torch.device("cuda"), graphed=True)
    model.train()
    data = [batch(args.batch, 20) for _ in range(4)]

    def one(i=[0]):  # noqa: B006 — a counter across calls: rotate the batches
        i[0] += 1
        out = step(data[i[0] % len(data)])
        sched.step()
        return out
    for _ in range(5):
        one()
    times = sorted(do_bench(one, warmup=20, rep=200, return_mode="median") for _ in range(args.repeat))
    stats = step.stats
    return {"mixer": mixer, "graphed": graphed, "ms": times[len(times) // 2], "min_ms": times[0],
            "max_ms": times[-1], "tokens": args.batch * (N_CHANNELS + 1), "captured": stats.captured,
            "replays": stats.replays, "eager": stats.eager, "reasons": list(stats.reasons.values())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mixers", default="savo,qcompass,mha")
    parser.add_argument("--batch", type=int, default=127, help="samples per batch (127: 32,766 tokens)")
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--rank", type=int, default=64)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", default=os.path.join(os.environ.get("OUT", "."), "encoder_step.json"))
    args = parser.parse_args()
    print(torch.cuda.get_device_name(), "torch", torch.__version__, flush=True)
    rows = []
    for mixer in args.mixers.split(","):
        for graphed in (False, True):
            rows.append(time_row(mixer, graphed, args))
            print(json.dumps(rows[-1]), flush=True)
    with open(args.out, "w") as fh:
        json.dump(rows, fh, indent=1)
    eager = {r["mixer"]: r["ms"] for r in rows if not r["graphed"]}
    print("\n| mixer | eager ms (min–max) | as trained (step_graph on) ms (min–max) "
          "| graphs / replays / eager | eager ÷ as trained | real tokens/s as trained |")
    print("| --- " * 6 + "|")
    for r in rows:
        if r["graphed"]:
            e = next(x for x in rows if x["mixer"] == r["mixer"] and not x["graphed"])
            print(f"| {r['mixer']} | {e['ms']:.3f} ({e['min_ms']:.3f}–{e['max_ms']:.3f}) | {r['ms']:.3f} "
                  f"({r['min_ms']:.3f}–{r['max_ms']:.3f}) | {r['captured']} / {r['replays']} / {r['eager']} "
                  f"| {eager[r['mixer']] / r['ms']:.2f}× | {r['tokens'] / r['ms'] * 1e3 / 1e6:.2f} M |")


if __name__ == "__main__":
    main()
