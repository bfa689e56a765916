"""Event-encoder training step on ragged mutation sequences: packed (ragged kernel) vs padded vs MHA varlen.

One token per mutation, so a batch of tumours is a batch of very unequal lengths: exomes (TCGA MC3)
carry 1–20,000 variants per tumour (median 68), genomes (PCAWG) 20–2,400,000 SBS (median 5,300).
Lengths are drawn from the per-tumour count histograms in ``benchmarks/data/mutation_lengths.json``
(derived from ../shared/data by ``--derive``: counts only), genomes clipped at ``--clip`` tokens.
The tumours are cut into batches of ≤ ``--max-tokens`` real tokens by LengthBucketSampler (packed
budget) and every method trains on the same batches: a 2-layer bidirectional encoder stack
(H = 512, 8 heads, r = 64, FFN 4×, bf16 autocast), fwd+bwd + nothing else. Methods:

- ``savo packed``: the sequences packed into [1, T, H] with offsets (the ragged routing kernel);
- ``savo padded``: each batch padded to its longest sequence (the kernel with a key mask);
- ``mha padded``: MHA on SDPA's default dispatch, padded (a key mask: the memory-efficient backend);
- ``mha varlen``: MHA on the packed batches through route()'s nested-tensor SDPA (flash/cuDNN varlen).

Batches (LengthBucketSampler, ≤ ``--max-tokens``): ``random`` = tumours in random order (the plain
loader), ``bucketed`` = sorted by length; packed methods count real tokens against the budget,
padded ones n × longest.

Real tokens/s counts unpadded tokens only. GPU only; run from the repo root:
    PYTHONUNBUFFERED=1 PYTHONPATH=. python3 benchmarks/ragged_encoder.py
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
HIST = HERE / "data" / "mutation_lengths.json"
SHARED = HERE.parent.parent / "shared" / "data"


def derive() -> None:
    """Write the per-tumour count histograms (powers-of-two bins) from ../shared/data."""
    import numpy as np
    import pandas as pd

    maf = pd.read_csv(SHARED / "tcga/mc3/mutations.maf.gz", sep="\t", usecols=["Tumor_Sample_Barcode"])
    wgs = pd.read_csv(SHARED / "pcawg7/WGS_PCAWG.96.csv")
    counts = {"tcga_mc3_exome": maf["Tumor_Sample_Barcode"].value_counts().to_numpy(),
              "pcawg_wgs_sbs": wgs.iloc[:, 2:].sum(0).to_numpy()}
    edges = [2 ** i for i in range(24)]
    out = {"about": "Per-tumour mutation counts binned by powers of two [2^i, 2^(i+1)), derived by "
                    "benchmarks/ragged_encoder.py --derive from ../shared/data (TCGA MC3 exomes: variants "
                    "per Tumor_Sample_Barcode; PCAWG WGS: SBS96 catalogue totals per sample). Counts only."}
    for name, c in counts.items():
        out[name] = {"bin_lo": edges[:-1], "tumours": np.histogram(c, bins=edges)[0].tolist()}
    tmp = HIST.with_suffix(".tmp")
    tmp.write_text(json.dumps(out, indent=1) + "\n")
    os.replace(tmp, HIST)
    print(f"wrote {HIST}")


def sample_lengths(name: str, tokens: int, clip: int, seed: int = 0) -> list[int]:
    """Tumour lengths drawn from the histogram (log-uniform inside a bin) until their sum reaches tokens."""
    hist = json.loads(HIST.read_text())[name]
    rng = random.Random(seed)
    bins = [(lo, n) for lo, n in zip(hist["bin_lo"], hist["tumours"], strict=True) if n]
    lengths, total = [], 0
    while total < tokens:
        lo = rng.choices([b[0] for b in bins], weights=[b[1] for b in bins])[0]
        n = min(clip, int(math.exp(rng.uniform(math.log(lo), math.log(2 * lo)))))
        lengths.append(max(1, n))
        total += lengths[-1]
    return lengths


def run(args) -> None:
    import torch
    import triton

    from nanog1.core import Stack, StackConfig
    from nanog1.core.ragged import LengthBucketSampler, Ragged

    def stack(mixer: str):
        torch.manual_seed(0)
        cfg = StackConfig(hidden_size=512, layers=2, rank=64, heads=8, causal=False, mixer=mixer)
        return Stack(cfg).cuda()

    def step_packed(model, lengths):
        x = torch.randn(1, sum(lengths), 512, device="cuda")
        r = Ragged.from_lengths(lengths, "cuda")
        return lambda: model(x, ragged=r)

    def step_padded(model, lengths):
        n = max(lengths)
        x = torch.randn(len(lengths), n, 512, device="cuda")
        mask = torch.arange(n, device="cuda")[None] >= torch.tensor(lengths, device="cuda")[:, None]
        return lambda: model(x, padding_mask=mask)

    def epoch_ms(model, make, batches) -> float:
        steps = [make(model, b) for b in batches]

        def once():
            for s in steps:
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    y = s()
                y.float().square().mean().backward()
                for p in model.parameters():
                    p.grad = None
        once()  # compiles, autotunes (once per length octave)
        torch.cuda.synchronize()
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            once()
            torch.cuda.synchronize()
            times.append((time.perf_counter() - t0) * 1e3)
        return sorted(times)[len(times) // 2]

    print(torch.cuda.get_device_name(), "torch", torch.__version__, "triton", triton.__version__, flush=True)
    print("mha varlen path:", nested_sdpa_works(), flush=True)
    results = []
    for name, clip in (("tcga_mc3_exome", args.clip), ("pcawg_wgs_sbs", args.clip)):
        lengths = sample_lengths(name, args.tokens, clip)
        sets = {}
        for padded in (False, True):
            for bucket in (False, True):
                sampler = LengthBucketSampler(lengths, args.max_tokens, padded=padded, bucket=bucket, seed=0)
                sets[padded, bucket] = [[lengths[i] for i in b] for b in sampler]
        real = sum(lengths)
        info = dict(dist=name, tumours=len(lengths), real_tokens=real,
                    median_len=sorted(lengths)[len(lengths) // 2], max_len=max(lengths))
        print(json.dumps(info), flush=True)
        methods = [("savo packed, random", "savo", step_packed, sets[False, False]),
                   ("savo packed, bucketed", "savo", step_packed, sets[False, True]),
                   ("savo padded, random", "savo", step_padded, sets[True, False]),
                   ("savo padded, bucketed", "savo", step_padded, sets[True, True]),
                   ("mha padded, random", "mha", step_padded, sets[True, False]),
                   ("mha padded, bucketed", "mha", step_padded, sets[True, True]),
                   ("mha varlen (nested SDPA), random", "mha", step_packed,
                    sets[False, False])]
        for label, mixer, make, batches in methods:
            padded_tokens = sum(len(b) * max(b) for b in batches)
            row = dict(info, method=label, batches=len(batches), padded_tokens=padded_tokens)
            try:
                ms = epoch_ms(stack(mixer), make, batches)
                row.update(ms=ms, real_tok_per_s=real / ms * 1e3)
            except (RuntimeError, torch.OutOfMemoryError) as err:
                row["error"] = str(err).splitlines()[0][:120]
            results.append(row)
            print(json.dumps(row), flush=True)
            torch.cuda.empty_cache()
    with open(os.path.join(os.environ.get("OUT", "."), "ragged_encoder.json"), "w") as fh:
        json.dump(results, fh, indent=1)
    print("\n| lengths | method | batches | padded ÷ real tokens | ms per pass | real tokens/s "
          "| savo packed (random) ÷ this, time |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        base = next(x for x in results if x["dist"] == r["dist"] and x["method"] == "savo packed, random")
        waste = r["padded_tokens"] / r["real_tokens"] if "padded" in r["method"] else 1.0
        if "ms" in r and "ms" in base:
            print(f"| {r['dist']} | {r['method']} | {r['batches']} | {waste:.2f} | {r['ms']:.1f} "
                  f"| {r['real_tok_per_s']:.3g} | {r['ms'] / base['ms']:.2f} |")
        else:
            err = r.get("error", "-")
            print(f"| {r['dist']} | {r['method']} | {r['batches']} | {waste:.2f} | {err} | | |")


def nested_sdpa_works() -> str:
    """Whether route()'s nested-tensor SDPA runs here (else MHA varlen loops over sequences)."""
    import torch

    from nanog1.core import routing
    from nanog1.core.ragged import Ragged

    r = Ragged.from_lengths([100, 3], "cuda")
    q = torch.randn(1, 8, 103, 64, device="cuda", dtype=torch.bfloat16)
    try:
        routing._route_nested(q, q, q, scale=0.125, causal=False, ragged=r)
    except RuntimeError as err:
        return f"per-sequence SDPA loop (nested SDPA refused: {str(err).splitlines()[0][:80]})"
    return "nested (jagged) SDPA"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--derive", action="store_true", help="rewrite the length histograms from ../shared")
    parser.add_argument("--tokens", type=int, default=600_000, help="real tokens sampled per distribution")
    parser.add_argument("--max-tokens", type=int, default=32768, help="token budget per batch")
    parser.add_argument("--clip", type=int, default=65536, help="longest sequence kept (genomes)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.derive:
        derive()
        return
    run(args)


if __name__ == "__main__":
    main()
