"""QuatrixLM training on a text corpus: random windows, AdamW + warm-up/cosine, MLflow-tracked.

The default corpus is the Python language reference embedded in every Python install; validation is
the last ``val_fraction`` of the token stream, read in fixed non-overlapping windows, and every
evaluation is logged beside the unigram baseline the model must beat.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from nanog1.checkpoint import seed_everything
from nanog1.optim import build_optimizer
from nanog1.progress import report
from nanog1.tracking import flat_params, tracked_run
from nanog1.zoo.corpus import load_corpus, split_tokens, unigram_cross_entropy
from nanog1.zoo.loop import evaluating, finish_run, optimise
from nanog1.zoo.text import QuatrixLM, TextConfig, lm_loss, save_checkpoint
from nanog1.zoo.tokenizer import build_tokenizer


@dataclass
class LMTrainConfig:
    """One LM training run; ``model.vocab_size`` and ``model.max_len`` follow the tokeniser and seq_len."""

    corpus: str | None = None
    tokenizer: str = "byte"
    bpe_vocab: int = 2048
    steps: int = 800
    batch_size: int = 16
    seq_len: int = 128
    lr: float = 3e-3
    weight_decay: float = 0.1
    warmup: int = 50
    grad_clip: float = 1.0
    val_fraction: float = 0.1
    eval_every: int = 200
    eval_windows: int = 256
    seed: int = 0
    experiment: str = "lm/text"
    model: TextConfig = field(default_factory=TextConfig)


@dataclass
class LMResult:
    """What a finished run reports: losses in nats/token, its MLflow run id and checkpoint path."""

    val_loss: float
    unigram_loss: float
    train_loss: float
    tokens_per_s: float
    run_id: str
    checkpoint: Path


def random_windows(tokens: np.ndarray, batch_size: int, seq_len: int,
                   rng: np.random.Generator) -> torch.Tensor:
    """``batch_size`` random windows of ``seq_len`` consecutive tokens -> int64 [B, seq_len]."""
    starts = rng.integers(0, len(tokens) - seq_len + 1, size=batch_size)
    return torch.from_numpy(np.stack([tokens[s:s + seq_len] for s in starts]))


def fixed_windows(tokens: np.ndarray, seq_len: int, limit: int) -> torch.Tensor:
    """Up to ``limit`` non-overlapping windows evenly spread over ``tokens`` -> [N, seq_len]."""
    n = len(tokens) // seq_len
    if n < 1:
        raise ValueError(f"{len(tokens)} validation tokens are fewer than seq_len {seq_len}")
    picks = np.linspace(0, n - 1, num=min(n, limit)).astype(int)
    return torch.from_numpy(np.stack([tokens[i * seq_len:(i + 1) * seq_len] for i in picks]))


@torch.no_grad()
def evaluate_lm(model: QuatrixLM, windows: torch.Tensor, batch_size: int) -> float:
    """Mean next-token cross-entropy (nats/token) over the windows."""
    with evaluating(model):
        losses = [lm_loss(model(chunk), chunk).item() for chunk in windows.split(batch_size)]
    return float(np.mean(losses))


def prepare_tokens(cfg: LMTrainConfig):
    """The tokeniser (BPE trained on the training text only) and the train/validation token arrays."""
    text = load_corpus(cfg.corpus)
    cut = int(len(text) * (1.0 - cfg.val_fraction))
    tokenizer = build_tokenizer(cfg.tokenizer, text[:cut], cfg.bpe_vocab)
    train, val = split_tokens(tokenizer.encode(text), cfg.val_fraction)
    return tokenizer, train, val


def train_lm(cfg: LMTrainConfig, out: Path, tracking_uri: str | None = None) -> LMResult:
    """Train QuatrixLM per ``cfg``; writes ``out``/model.pt and logs one MLflow run."""
    seed_everything(cfg.seed)
    tokenizer, train, val = prepare_tokens(cfg)
    cfg = replace(cfg, model=replace(cfg.model, vocab_size=tokenizer.vocab_size, max_len=cfg.seq_len))
    model = QuatrixLM(cfg.model)
    opt, sched = build_optimizer(model, cfg.lr, cfg.weight_decay, cfg.warmup, cfg.steps)
    val_windows = fixed_windows(val, cfg.seq_len, cfg.eval_windows)
    unigram = unigram_cross_entropy(train, val, tokenizer.vocab_size)
    rng = np.random.default_rng(cfg.seed)
    params = flat_params(asdict(cfg)) | {"train_tokens": len(train), "val_tokens": len(val),
                                 "parameters": model.parameter_counts()["total"]}
    with tracked_run(out, cfg.experiment, tracking_uri, params) as tracker:
        val_loss = float("nan")

        def evaluate(step: int, losses: dict[str, float]) -> None:
            nonlocal val_loss
            if step % cfg.eval_every == 0 or step == cfg.steps:
                val_loss = evaluate_lm(model, val_windows, cfg.batch_size)
                tracker.log_metrics({"train_loss": losses["total"], "val_loss": val_loss,
                                     "unigram_loss": unigram}, step)
                report(f"step {step}/{cfg.steps}  train_loss {losses['total']:.4g}  val_loss {val_loss:.4g}")

        batches = (random_windows(train, cfg.batch_size, cfg.seq_len, rng) for _ in range(cfg.steps))
        done = optimise(model, batches, lambda batch: lm_loss(model(batch), batch), opt, sched,
                        cfg.grad_clip, evaluate, desc="lm train", total=cfg.steps)
        train_loss, elapsed = done.last.get("total", float("nan")), done.seconds
        tokens_per_s = cfg.steps * cfg.batch_size * cfg.seq_len / elapsed
        metrics = {"val_loss": val_loss, "unigram_loss": unigram, "train_loss": train_loss,
                   "train_tokens_per_s": tokens_per_s}
        ckpt = finish_run(tracker, out, metrics, cfg.steps,
                          lambda path: save_checkpoint(path, model, tokenizer, metrics))
        return LMResult(val_loss, unigram, train_loss, tokens_per_s, tracker.run_id, ckpt)
