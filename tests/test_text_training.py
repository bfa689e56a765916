"""Tokenisers, corpus helpers, the LM training loop with MLflow, and the `nanog1 lm` commands."""

from __future__ import annotations

import math

import mlflow
import numpy as np
import pytest
from typer.testing import CliRunner

from nanog1.cli import app
from nanog1.zoo.corpus import default_corpus, load_corpus, split_tokens, unigram_cross_entropy
from nanog1.zoo.text import TextConfig, load_checkpoint
from nanog1.zoo.tokenizer import BPETokenizer, ByteTokenizer, build_tokenizer, tokenizer_from_spec
from nanog1.zoo.train_text import LMTrainConfig, train_lm

TEXT = "héllo wörld — Q-Compass ✓\nsecond line\ttab"


def structured_corpus(n_lines: int = 400, seed: int = 0) -> str:
    """Lines from a tiny grammar: context-predictable, far below the unigram entropy."""
    rng = np.random.default_rng(seed)
    subjects, verbs = ["the cat", "a dog", "my bird"], ["sat on the mat", "ran home", "sang a song"]
    return "".join(f"{subjects[i]} {verbs[i]}.\n" for i in rng.integers(0, 3, n_lines))


def test_byte_tokenizer_round_trips_unicode():
    tok = ByteTokenizer()
    ids = tok.encode(TEXT)
    assert max(ids) < 256 and tok.decode(ids) == TEXT
    assert tokenizer_from_spec(tok.to_spec()).encode(TEXT) == ids


def test_bpe_is_trained_locally_and_restored_from_its_spec():
    corpus = default_corpus()[:60_000]
    tok = build_tokenizer("bpe", corpus, 400)
    assert isinstance(tok, BPETokenizer) and 256 < tok.vocab_size <= 400
    sample = corpus[1000:3000]
    ids = tok.encode(sample)
    assert tok.decode(ids) == sample
    assert len(ids) < len(sample.encode())  # merges compress
    assert tokenizer_from_spec(tok.to_spec()).encode(sample) == ids
    with pytest.raises(ValueError, match="exceed"):
        build_tokenizer("bpe", corpus, 200)


def test_default_corpus_is_the_python_reference():
    text = default_corpus()
    assert len(text) > 100_000 and "yield" in text
    assert load_corpus(None) == text


def test_load_corpus_names_the_file_and_line_of_bad_bytes(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine\nstill fine\nbroken \xff here\n")
    with pytest.raises(ValueError, match=r"bad.txt:3"):
        load_corpus(bad)


def test_split_and_unigram_baseline_against_a_reference():
    train, val = split_tokens(list(range(10)), 0.3)
    assert train.tolist() == list(range(7)) and val.tolist() == [7, 8, 9]
    rng = np.random.default_rng(0)
    tr, va = rng.integers(0, 5, 200), rng.integers(0, 5, 50)
    counts = np.array([np.sum(tr == k) + 1 for k in range(6)], dtype=float)
    reference = -np.mean([math.log(counts[t] / counts.sum()) for t in va])
    assert unigram_cross_entropy(tr, va, 6) == pytest.approx(reference)


def test_train_lm_beats_unigram_and_logs_to_mlflow(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(structured_corpus())
    cfg = LMTrainConfig(corpus=str(corpus), steps=200, batch_size=8, seq_len=48, eval_every=100, lr=3e-3,
                        warmup=5, model=TextConfig(hidden_size=32, layers=2, rank=8, heads=2))
    result = train_lm(cfg, tmp_path / "run")
    assert result.val_loss < 0.6 * result.unigram_loss
    run = mlflow.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.metrics["val_loss"] == pytest.approx(result.val_loss)
    assert run.data.params["model.mixer"] == "savo"
    loaded = load_checkpoint(result.checkpoint)
    assert loaded.model.config.vocab_size == 256 and loaded.model.config.max_len == 48
    assert loaded.metrics["val_loss"] == pytest.approx(result.val_loss)


def test_lm_cli_train_then_generate(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(structured_corpus(200))
    runner = CliRunner()
    out = tmp_path / "lm"
    res = runner.invoke(app, ["lm", "train", "--out", str(out), "--corpus", str(corpus), "--steps", "4",
                              "--hidden", "16", "--layers", "1", "--rank", "4", "--heads", "2",
                              "--seq-len", "32", "--batch-size", "4", "--tokenizer", "bpe",
                              "--bpe-vocab", "300", "--mixer", "qcompass"])
    assert res.exit_code == 0, res.output
    assert "unigram baseline" in res.output and "mlflow run:" in res.output
    assert "step 4/4  train_loss " in res.stderr and " val_loss " in res.stderr  # progress on stderr
    res = runner.invoke(app, ["lm", "generate", "--model", str(out / "model.pt"), "--prompt", "the ",
                              "--max-new-tokens", "5", "--temperature", "0"])
    assert res.exit_code == 0, res.output
    assert res.output.startswith("the ")
