"""QuatrixLM mixer ablation: one recipe, one data order, every causal mixer side by side in one process.

For each mixer (SAO = qcompass, SAVO, rank-matched MHA, full MHA, Q-Delta, and Q-Delta with its query
feedback off, λ = 0: the Gated DeltaNet update with the same gates and parameters) it trains a byte-level
QuatrixLM with the same width, depth, steps, batches and schedule, then reports validation
perplexity (per byte), training tokens/s, and decode tokens/s at a 2k context with the decoding
cache against recomputing the prefix. Full MHA gets ffn_mult 3 instead of 4 so its parameter budget
stays within ~7 % of SAVO's (its 4H² projections would otherwise add 29 %); every count is printed.

Corpus: the Python language reference (``pydoc_data.topics``) plus the standard library's own
sources, both shipped with every Python (no download); the last 5 % is validation.

Run (GPU): ``PYTHONPATH=. python3 benchmarks/lm_ablation.py --out results.json``;
CPU smoke: ``--device cpu --steps 5 --hidden 64 --layers 2 --seq 64 --batch 4 --corpus-mb 1``;
``--steps 0`` skips training (decode speed only: untrained weights decode at the same speed).
Imports only torch, numpy and nanog1 (core, models) so it runs on the device image.
"""

from __future__ import annotations

import argparse
import json
import math
import sysconfig
import time
from pathlib import Path

import numpy as np
import torch

from nanog1.zoo.corpus import default_corpus, split_tokens, unigram_cross_entropy
from nanog1.zoo.text import QuatrixLM, TextConfig, lm_loss

MIXERS = [("SAO (qcompass)", "qcompass", 4), ("SAVO", "savo", 4), ("rank-matched MHA", "mha_rank", 4),
          ("full MHA (ffn 3)", "mha", 3), ("Q-Delta", "qdelta", 4),
          ("Q-Delta λ = 0 (Gated DeltaNet update)", "qdelta_l0", 4)]


def corpus_bytes(megabytes: float) -> np.ndarray:
    """pydoc topics then stdlib .py sources in sorted order, as uint8 bytes, cut at ``megabytes``."""
    parts = [default_corpus().encode()]
    limit = int(megabytes * 2 ** 20)
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).rglob("*.py")):
        if sum(map(len, parts)) >= limit:
            break
        if "site-packages" not in path.parts and "test" not in path.parts:
            parts.append(path.read_bytes())
    return np.frombuffer(b"\n".join(parts)[:limit], dtype=np.uint8).astype(np.int64)


def lr_at(step: int, warmup: int, total: int) -> float:
    """Linear warm-up then cosine to 5 % (the same shape as nanog1.optim)."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * progress))


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


@torch.no_grad()
def val_loss(model: QuatrixLM, val: np.ndarray, seq: int, windows: int, device: str, dtype) -> float:
    n = min(windows, len(val) // seq)
    starts = np.linspace(0, len(val) - seq, num=n).astype(int)
    batch = torch.from_numpy(np.stack([val[s:s + seq] for s in starts])).to(device)
    model.eval()
    with torch.autocast(device, dtype=dtype, enabled=dtype != torch.float32):
        losses = [lm_loss(model(chunk), chunk).float().item() for chunk in batch.split(16)]
    model.train()
    return float(np.mean(losses))


def train(model: QuatrixLM, train_ids: np.ndarray, args, device: str, dtype) -> float:
    """Same seeded batches for every mixer; returns median training tokens/s after 10 warm-up steps."""
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.1, betas=(0.9, 0.95))
    rng = np.random.default_rng(args.seed)
    times = []
    for step in range(args.steps):
        for group in opt.param_groups:
            group["lr"] = args.lr * lr_at(step, args.warmup, args.steps)
        starts = rng.integers(0, len(train_ids) - args.seq, size=args.batch)
        batch = torch.from_numpy(np.stack([train_ids[s:s + args.seq] for s in starts])).to(device)
        sync(device)
        t0 = time.perf_counter()
        with torch.autocast(device, dtype=dtype, enabled=dtype != torch.float32):
            loss = lm_loss(model(batch), batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sync(device)
        times.append(time.perf_counter() - t0)
    return args.batch * args.seq / float(np.median(times[10:] or times)) if times else float("nan")


@torch.no_grad()
def decode_speed(model: QuatrixLM, context: int, new: int, device: str) -> dict:
    """Tokens/s for ``new`` greedy tokens after a ``context``-token prompt: cache vs recompute (fp32)."""
    model.eval()
    prompt = torch.randint(0, model.config.vocab_size, (1, context), device=device)
    caches = model.stack.init_cache(1, device=device, dtype=torch.float32)
    sync(device)
    t0 = time.perf_counter()
    emb = model.embed_tokens(prompt)
    for i in range(context):
        h, caches = model.stack.step(emb[:, i:i + 1], caches)
    sync(device)
    t1 = time.perf_counter()
    token = model.head(h[:, -1]).argmax(-1)
    for k in range(new):
        h, caches = model.stack.step(model.embed_tokens(token[:, None], context + k), caches)
        token = model.head(h[:, -1]).argmax(-1)
    sync(device)
    t2 = time.perf_counter()
    ids = prompt
    for _ in range(new):
        ids = torch.cat([ids, model(ids)[:, -1].argmax(-1, keepdim=True)], dim=1)
    sync(device)
    t3 = time.perf_counter()
    return {"prefill_s": t1 - t0, "cache_tok_s": new / (t2 - t1), "recompute_tok_s": new / (t3 - t2)}


@torch.no_grad()
def cache_matches(model: QuatrixLM, device: str) -> bool:
    """Greedy generation with the cache equals recompute-the-prefix generation (fp32, 16 + 24 tokens)."""
    prompt = torch.randint(0, model.config.vocab_size, (2, 16), device=device,
                           generator=torch.Generator(device).manual_seed(1))
    cached = model.generate(prompt, 24, temperature=0, use_cache=True)
    return bool((cached == model.generate(prompt, 24, temperature=0, use_cache=False)).all())


def run_one(kind: str, ffn: int, args, data, device: str, dtype) -> dict:
    train_ids, val_ids = data
    torch.manual_seed(args.seed)
    cfg = TextConfig(vocab_size=256, hidden_size=args.hidden, layers=args.layers, rank=args.rank,
                     heads=args.heads, mixer=kind.removesuffix("_l0"), max_len=args.context + args.new,
                     ffn_mult=ffn)
    model = QuatrixLM(cfg).to(device)
    if kind == "qdelta_l0":
        from nanog1.core.qdelta import QDelta

        layers = [m for m in model.modules() if isinstance(m, QDelta)]
        assert layers, "no Q-Delta layer to switch λ off in"
        for layer in layers:
            layer.query_feedback = False
    counts = model.parameter_counts()
    tok_s = train(model, train_ids, args, device, dtype)
    loss = val_loss(model, val_ids, args.seq, args.val_windows, device, dtype)
    row = {"params": counts["total"], "val_loss": loss, "val_ppl": math.exp(loss), "train_tok_s": tok_s,
           "cache_equals_recompute": cache_matches(model, device)}
    return row | decode_speed(model, args.context, args.new, device)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, default in [("steps", 600), ("batch", 32), ("seq", 512), ("hidden", 512), ("layers", 6),
                          ("rank", 64), ("heads", 8), ("warmup", 50), ("context", 2048), ("new", 64),
                          ("val_windows", 256)]:
        p.add_argument(f"--{name.replace('_', '-')}", type=int, default=default)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0, help="weights and batch order (the same for every mixer)")
    p.add_argument("--corpus-mb", type=float, default=24.0)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--mixers", default="qcompass,savo,mha_rank,mha,qdelta,qdelta_l0")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    device = args.device
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    ids = corpus_bytes(args.corpus_mb)
    data = split_tokens(ids, 0.05)
    unigram = unigram_cross_entropy(data[0], data[1], 256)
    print(f"corpus {len(ids):,} bytes; unigram val loss {unigram:.4f} (ppl {math.exp(unigram):.2f}); "
          f"{device} {torch.cuda.get_device_name(0) if device == 'cuda' else ''} torch {torch.__version__}",
          flush=True)
    results = {}
    for label, kind, ffn in MIXERS:
        if kind not in args.mixers.split(","):
            continue
        try:
            results[label] = run_one(kind, ffn, args, data, device, dtype)
        except Exception as exc:  # one mixer failing must not lose the others' rows
            results[label] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
        print(label, json.dumps(results[label]), flush=True)
        if args.out:
            args.out.write_text(json.dumps({"args": vars(args) | {"out": str(args.out)}, "unigram": unigram,
                                            "results": results}, indent=1))
    print("\n| mixer | params | val ppl (byte) | train tok/s | decode tok/s cache | recompute "
          "| cache==recompute |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for label, r in results.items():
        if "error" in r:
            print(f"| {label} | {r['error']} | | | | | |")
            continue
        print(f"| {label} | {r['params'] / 1e6:.2f} M | {r['val_ppl']:.3f} | {r['train_tok_s']:,.0f} | "
              f"{r['cache_tok_s']:,.0f} | {r['recompute_tok_s']:,.1f} | {r['cache_equals_recompute']} |")


if __name__ == "__main__":
    main()
