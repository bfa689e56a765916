"""Q-Delta beside λ = 0 (Gated DeltaNet update), SAVO and MHA on multi-query associative recall (CPU).

A small causal LM (token embedding → `nanog1.core.Stack` → vocabulary head) reads n key–value pairs and
then n queried keys; at each queried key it must emit that key's value. Loss and accuracy count only
those answer positions. Every mixer gets the same data stream, widths, optimiser and steps. Run:

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/qdelta_recall.py --steps 600
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nanog1.core import Stack, StackConfig


@dataclass
class RecallTask:
    """Key and value vocabularies (values follow keys in token ids) and pairs per sequence."""

    keys: int = 64
    values: int = 64
    pairs: int = 16

    def batch(self, size: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
        """Tokens [B, 3n] (k v pairs, then n queried keys) and targets [B, 3n] (-100 off the answers)."""
        keys = torch.stack([torch.randperm(self.keys, generator=gen)[: self.pairs] for _ in range(size)])
        vals = torch.randint(self.values, (size, self.pairs), generator=gen) + self.keys
        order = torch.randint(self.pairs, (size, self.pairs), generator=gen)
        context = torch.stack([keys, vals], dim=-1).reshape(size, -1)
        queries = keys.gather(1, order)
        tokens = torch.cat([context, queries], dim=1)
        targets = torch.full_like(tokens, -100)
        targets[:, 2 * self.pairs :] = vals.gather(1, order)
        return tokens, targets


class RecallLM(nn.Module):
    """Embedding, a causal stack of the chosen mixer, and a vocabulary head."""

    def __init__(self, vocab: int, config: StackConfig, query_feedback: bool = True, chunk: int = 16):
        super().__init__()
        self.embed = nn.Embedding(vocab, config.hidden_size)
        self.stack = Stack(config)
        self.head = nn.Linear(config.hidden_size, vocab)
        for block in self.stack.blocks:
            if hasattr(block.mixer, "query_feedback"):  # Q-Delta: λ on/off, chunk fitted to short L
                block.mixer.query_feedback = query_feedback
                block.mixer.chunk_size = chunk

    def forward(self, tokens: Tensor) -> Tensor:
        return self.head(self.stack(self.embed(tokens)))


def run(name: str, mixer: str, feedback: bool, args: argparse.Namespace) -> dict:
    """Train one model on the shared stream; return final loss, answer accuracy and seconds."""
    task = RecallTask(keys=args.vocab, values=args.vocab, pairs=args.pairs)
    torch.manual_seed(args.seed)
    config = StackConfig(hidden_size=args.hidden, layers=args.layers, rank=args.rank, heads=args.heads,
                         mixer=mixer, causal=True, norm="rmsnorm")
    model = RecallLM(task.keys + task.values, config, feedback)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.steps, pct_start=0.1)
    gen = torch.Generator().manual_seed(args.seed)
    start, losses = time.perf_counter(), []
    for _ in range(args.steps):
        tokens, targets = task.batch(args.batch, gen)
        loss = F.cross_entropy(model(tokens).flatten(0, 1), targets.flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    tokens, targets = task.batch(1024, torch.Generator().manual_seed(10_000 + args.seed))
    with torch.no_grad():
        pred = model(tokens).argmax(-1)
    answer = targets != -100
    acc = (pred[answer] == targets[answer]).float().mean().item()
    tail = losses[-50:]
    return {"name": name, "loss": sum(tail) / len(tail), "acc": acc, "s": time.perf_counter() - start}


def main() -> None:
    """Train each mixer in turn and print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__)
    for flag, default in (("steps", 600), ("batch", 32), ("pairs", 16), ("hidden", 64), ("layers", 2),
                          ("rank", 32), ("heads", 2), ("seed", 0), ("vocab", 64)):
        parser.add_argument(f"--{flag}", type=int, default=default)
    parser.add_argument("--lr", type=float, default=3e-3)
    args = parser.parse_args()
    runs = [("Q-Delta", "qdelta", True), ("Q-Delta λ=0 (Gated DeltaNet update)", "qdelta", False),
            ("SAVO", "savo", True), ("MHA", "mha", True)]
    print("| mixer | train loss (last 50 steps) | answer accuracy (1,024 fresh sequences) | s |")
    print("| --- | --- | --- | --- |")
    for name, mixer, feedback in runs:
        r = run(name, mixer, feedback, args)
        print(f"| {r['name']} | {r['loss']:.3f} | {r['acc']:.3f} | {r['s']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
