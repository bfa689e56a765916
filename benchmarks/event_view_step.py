"""The product's event-view encoder, one whole training step, packed vs padded vs MHA (issue 30).

`benchmarks/ragged_encoder.py` times a bare 2-layer stack; this times what `nanog1 train --view events`
runs: `MutationEncoder(view="events")` with its token embeddings (class, consequence, gene), the CLS
token read from the catalogue summary and a gene bag, the stack, the type head, label-smoothed
cross-entropy, backward and a fused AdamW step, in bf16 autocast. Tumour lengths are drawn from the
per-tumour count histograms in ``benchmarks/data/mutation_lengths.json`` (TCGA MC3 exomes; PCAWG
genomes clipped at ``--clip`` tokens) and cut into batches by LengthBucketSampler under a token budget
(packed batches count real tokens, padded ones tumours x longest). Every method trains on batches of
the same tumours. Methods:

- ``savo packed``: the product's default on CUDA (`MutationEncoderConfig.packed`): the real tokens in one
  ragged row (the ragged routing kernel);
- ``savo padded``: the same model with `packed=False` (the kernel with a key mask);
- ``mha padded``: the same model with `mixer="mha"` on SDPA's default dispatch with a key mask;
- ``mha packed``: `mixer="mha"` with `packed=True`: route()'s nested (jagged) SDPA, torch's varlen kernels.

Batches come ``random`` (tumours in random order: the plain loader) or ``bucketed`` (sorted by length:
what `nanog1 train` does with `batch_tokens`). Real tokens/s counts tumours' mutations only (not CLS or
padding). GPU only; from the repo root:

    PYTHONUNBUFFERED=1 PYTHONPATH=.:benchmarks python3 benchmarks/event_view_step.py
"""

from __future__ import annotations

import argparse
import json
import os
import time

from ragged_encoder import sample_lengths

FIELDS = {"channel": 96 + 78 + 83, "consequence": 23, "gene": 20_000}


def build(mixer: str, packed: bool, args):
    """A MutationEncoder event view at the benchmark's shape (random init, seed 0) and its optimiser."""
    import torch

    from nanog1.encoder.model import MutationEncoder, MutationEncoderConfig

    torch.manual_seed(0)
    vocab = {k: [f"{k}{i}" for i in range(n)] for k, n in FIELDS.items()}
    cfg = MutationEncoderConfig(view="events", event_vocab=vocab, hidden=args.hidden, layers=args.layers,
                                rank=args.rank, heads=args.heads, dropout=0.0, n_types=32, mixer=mixer,
                                gene_bag=[f"gene{i}" for i in range(300)], packed=packed)
    model = MutationEncoder(cfg).cuda()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)
    return model, opt


def make_batch(lengths: list[int], gen):
    """One batch on the GPU: right-padded event ids, padding mask, catalogue counts, gene bag, labels."""
    import torch

    from nanog1.schema import N_CHANNELS

    n = max(lengths)
    lens = torch.tensor(lengths, device="cuda")
    padding = torch.arange(n, device="cuda")[None] >= lens[:, None]
    events = {k: torch.randint(3, 3 + size, (len(lengths), n), device="cuda", generator=gen)
              .masked_fill(padding, 0) for k, size in FIELDS.items()}
    counts = torch.poisson(lens[:, None].float().expand(-1, N_CHANNELS) / N_CHANNELS, generator=gen)
    bag = (torch.rand(len(lengths), 300, device="cuda", generator=gen) < 0.02).float()
    labels = torch.randint(0, 32, (len(lengths),), device="cuda", generator=gen)
    return dict(counts=counts, padding_mask=padding, events=events, gene_bag=bag), labels


def epoch_ms(model, opt, batches, repeats: int) -> float:
    """Median wall time of one pass over the batches (fwd + bwd + AdamW each), after a warm pass."""
    import torch
    import torch.nn.functional as F

    def once():
        for inputs, labels in batches:
            with torch.autocast("cuda", dtype=torch.bfloat16):
                out = model(**inputs)
            loss = F.cross_entropy(out.type_logits.float(), labels, label_smoothing=0.1)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

    once()  # compiles and autotunes the kernels (once per length octave)
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        once()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1e3)
    return sorted(times)[len(times) // 2]


def run(args) -> list[dict]:
    import torch
    import triton

    from nanog1.core.ragged import LengthBucketSampler

    print(torch.cuda.get_device_name(), "torch", torch.__version__, "triton", triton.__version__, flush=True)
    methods = [("savo packed", "savo", True, False), ("savo padded", "savo", False, True),
               ("mha padded", "mha", False, True), ("mha packed (nested SDPA)", "mha", True, False)]
    results = []
    for dist in args.dists.split(","):
        lengths = sample_lengths(dist, args.tokens, args.clip)
        real = sum(lengths)
        info = dict(dist=dist, tumours=len(lengths), real_tokens=real, max_len=max(lengths),
                    median_len=sorted(lengths)[len(lengths) // 2], hidden=args.hidden, heads=args.heads,
                    rank=args.rank, layers=args.layers)
        print(json.dumps(info), flush=True)
        for order in ("random", "bucketed"):
            for label, mixer, packed, padded in methods:
                sampler = LengthBucketSampler(lengths, args.max_tokens, padded=padded, seed=0,
                                              bucket=order == "bucketed", max_batch=args.max_batch)
                gen = torch.Generator(device="cuda").manual_seed(0)
                batches = [make_batch([lengths[i] for i in b], gen) for b in sampler]
                padded_tokens = sum(int(x["padding_mask"].numel()) for x, _ in batches)
                row = dict(info, method=label, order=order, batches=len(batches),
                           padded_over_real=padded_tokens / real)
                try:
                    model, opt = build(mixer, packed, args)
                    ms = epoch_ms(model, opt, batches, args.repeats)
                    row.update(ms=ms, real_tok_per_s=real / ms * 1e3)
                except (RuntimeError, torch.OutOfMemoryError) as err:
                    row["error"] = str(err).splitlines()[0][:160]
                results.append(row)
                print(json.dumps(row), flush=True)
                del batches
                torch.cuda.empty_cache()
    return results


def table(results: list[dict]) -> str:
    """Markdown rows: time per pass and real tokens/s, each against savo packed on the same batches order."""
    lines = ["| lengths | order | method | batches | padded ÷ real | ms per pass | real tokens/s | "
             "this ÷ savo packed, time |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        base = next(x for x in results if x["dist"] == r["dist"] and x["order"] == r["order"]
                    and x["method"] == "savo packed")
        if "ms" in r and "ms" in base:
            lines.append(f"| {r['dist']} | {r['order']} | {r['method']} | {r['batches']} | "
                         f"{r['padded_over_real']:.2f} | {r['ms']:.1f} | {r['real_tok_per_s']:.3g} | "
                         f"{r['ms'] / base['ms']:.2f} |")
        else:
            lines.append(f"| {r['dist']} | {r['order']} | {r['method']} | {r['batches']} | "
                         f"{r['padded_over_real']:.2f} | {r.get('error', '-')} | | |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dists", default="tcga_mc3_exome,pcawg_wgs_sbs",
                        help="length histograms of benchmarks/data/mutation_lengths.json, comma-separated")
    parser.add_argument("--tokens", type=int, default=300_000, help="real tokens sampled per distribution")
    parser.add_argument("--max-tokens", type=int, default=32768, help="token budget per batch")
    parser.add_argument("--max-batch", type=int, default=512, help="tumours per batch at most")
    parser.add_argument("--clip", type=int, default=32768, help="longest tumour kept (genomes)")
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--rank", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    results = run(args)
    path = os.path.join(os.environ.get("OUT", "."), "event_view_step.json")
    with open(path, "w") as fh:
        json.dump(results, fh, indent=1)
    print("\n" + table(results))


if __name__ == "__main__":
    main()
