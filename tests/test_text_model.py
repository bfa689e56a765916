"""QuatrixLM: Berry-Q0 parameter count, causality, cached vs recomputed generation, sampling, checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nanog1.core import MIXER_KINDS
from nanog1.zoo.sampling import filter_logits, sample_next
from nanog1.zoo.text import (
    QuatrixLM,
    TextConfig,
    berry_q0_config,
    complete,
    lm_loss,
    load_checkpoint,
    save_checkpoint,
)
from nanog1.zoo.tokenizer import ByteTokenizer
from nanog1.zoo.vision import VisionConfig

SMALL = dict(vocab_size=61, hidden_size=32, layers=2, rank=8, heads=2, max_len=96)


def small_lm(mixer: str = "savo", seed: int = 0, **extra) -> QuatrixLM:
    torch.manual_seed(seed)
    return QuatrixLM(TextConfig(**(SMALL | {"mixer": mixer} | extra))).eval()


def block_params(h: int, r: int, ffn: int, mixer: str) -> int:
    """Independent count of one pre-norm block: two LayerNorms, the mixer, the GELU FFN."""
    mixers = {"qcompass": 2 * h * r + h * h + h, "savo": 3 * h * r + h * h + h}
    return 4 * h + mixers[mixer] + (h * ffn * h + ffn * h) + (ffn * h * h + h)


@pytest.mark.parametrize("mixer", ["qcompass", "savo"])
def test_berry_q0_parameter_count(mixer):
    cfg = berry_q0_config(mixer)
    counts = QuatrixLM(cfg).parameter_counts()
    h, v, w = cfg.hidden_size, cfg.vision, cfg.vision.hidden_size
    lm = cfg.vocab_size * h + cfg.max_len * h + cfg.layers * block_params(h, cfg.rank, 4, mixer) + 2 * h
    vision = (v.channels * v.patch_size ** 2 * w + w + v.num_patches * w
              + v.layers * block_params(w, v.rank, v.ffn_mult, "qcompass") + 2 * w + w * v.num_classes
              + v.num_classes)
    proj = v.merge * w * h + h
    assert counts == {"lm": lm, "vision": vision, "projection": proj, "total": lm + vision + proj}
    assert (cfg.hidden_size, cfg.layers, cfg.rank, cfg.max_len) == (512, 7, 64, 5120)
    if mixer == "qcompass":  # the paper's split: 44 M + 5.5 M + 0.4 M ≈ 50 M
        assert round(counts["lm"] / 1e6, 1) == 44.0
        assert round(counts["vision"] / 1e6, 1) == 5.5
        assert round(counts["projection"] / 1e6, 1) == 0.4
        assert abs(counts["total"] - 50e6) < 0.2e6


def test_head_is_tied_and_logits_shape():
    model = small_lm()
    assert model.head.weight is model.token_emb.weight
    ids = torch.randint(0, 61, (3, 20))
    assert model(ids).shape == (3, 20, 61)


@pytest.mark.parametrize("mixer", MIXER_KINDS)
def test_future_tokens_never_change_past_logits(mixer):
    model = small_lm(mixer)
    ids = torch.randint(0, 61, (2, 40))
    changed = ids.clone()
    changed[:, 25:] = torch.randint(0, 61, (2, 15))
    a, b = model(ids), model(changed)
    torch.testing.assert_close(a[:, :25], b[:, :25])
    assert not torch.allclose(a[:, 25:], b[:, 25:])


@pytest.mark.parametrize("mixer", MIXER_KINDS)
def test_cached_greedy_generation_equals_recompute(mixer):
    model = small_lm(mixer, seed=1)
    prompt = torch.randint(0, 61, (2, 7))
    cached = model.generate(prompt, 30, temperature=0)
    recomputed = model.generate(prompt, 30, temperature=0, use_cache=False)
    assert cached.shape == (2, 37)
    assert torch.equal(cached[:, :7], prompt)
    assert torch.equal(cached, recomputed)


def test_cached_sampling_equals_recompute_with_the_same_generator():
    model = small_lm("savo", seed=2).double()
    prompt = torch.randint(0, 61, (3, 5))
    runs = [model.generate(prompt, 25, temperature=0.9, top_k=20, top_p=0.9, use_cache=use,
                           generator=torch.Generator().manual_seed(7)) for use in (True, False)]
    assert torch.equal(runs[0], runs[1])


def test_image_prefix_conditions_text_and_caches_identically():
    vision = VisionConfig(image_size=8, channels=1, patch_size=2, hidden_size=16, layers=1, rank=4, heads=2,
                          num_classes=0, lm_hidden=32, merge=2)
    model = small_lm("qcompass", seed=3, vision=vision)
    ids, pixels = torch.randint(0, 61, (2, 12)), torch.rand(2, 1, 8, 8)
    with_image = model(ids, pixel_values=pixels)
    assert with_image.shape == (2, 12, 61)
    assert not torch.allclose(with_image, model(ids, pixel_values=torch.rand(2, 1, 8, 8)))
    cached = model.generate(ids[:, :4], 12, temperature=0, pixel_values=pixels)
    assert torch.equal(cached, model.generate(ids[:, :4], 12, temperature=0, pixel_values=pixels,
                                              use_cache=False))
    with pytest.raises(ValueError, match="without vision"):
        small_lm()(ids, pixel_values=pixels)


def test_context_limit_is_enforced():
    model = small_lm()
    with pytest.raises(ValueError, match="exceed"):
        model(torch.zeros(1, 97, dtype=torch.long))
    with pytest.raises(ValueError, match="exceed"):
        model.generate(torch.zeros(1, 90, dtype=torch.long), 7)


def test_gradient_checkpointing_gives_the_same_loss_and_gradients():
    ids = torch.randint(0, 61, (2, 24))
    grads = []
    for checkpointing in (False, True):
        model = small_lm("savo", seed=4, checkpointing=checkpointing, dropout=0.0).train()
        loss = lm_loss(model(ids), ids)
        loss.backward()
        grads.append((loss.detach(), [p.grad.clone() for p in model.parameters()]))
    torch.testing.assert_close(grads[0][0], grads[1][0])
    for a, b in zip(grads[0][1], grads[1][1], strict=True):
        torch.testing.assert_close(a, b)


def test_lm_loss_matches_a_per_position_reference():
    logits, ids = torch.randn(2, 6, 11), torch.randint(0, 11, (2, 6))
    log_p = torch.log_softmax(logits, dim=-1)
    reference = -np.mean([log_p[b, t, ids[b, t + 1]].item() for b in range(2) for t in range(5)])
    assert lm_loss(logits, ids).item() == pytest.approx(reference, rel=1e-5)


def test_top_k_and_top_p_filtering_against_a_reference():
    torch.manual_seed(5)
    logits = torch.randn(4, 30)
    kept = filter_logits(logits, top_k=5).isfinite()
    for row, keep in zip(logits, kept, strict=True):
        assert set(torch.nonzero(keep).flatten().tolist()) == set(torch.topk(row, 5).indices.tolist())
    kept = filter_logits(logits, top_p=0.6).isfinite()
    for row, keep in zip(logits, kept, strict=True):
        probs = torch.softmax(row, -1).numpy()
        order = np.argsort(-probs)
        n = int(np.searchsorted(np.cumsum(probs[order]), 0.6) + 1)  # smallest prefix with mass ≥ 0.6
        assert set(torch.nonzero(keep).flatten().tolist()) == set(order[:n].tolist())
    assert torch.equal(sample_next(logits, temperature=0), logits.argmax(-1))
    drawn = sample_next(logits, temperature=1.0, top_k=1, generator=torch.Generator().manual_seed(0))
    assert torch.equal(drawn, logits.argmax(-1))


def test_routing_map_is_causal_and_normalised():
    model = small_lm("savo")
    weights = model.routing_map(torch.randint(0, 61, (1, 10)), layer=1)
    assert weights.shape == (1, 2, 10, 10)
    torch.testing.assert_close(weights.sum(-1), torch.ones(1, 2, 10))
    assert torch.all(weights.triu(1) == 0)


def test_checkpoint_round_trip(tmp_path):
    model = small_lm("qcompass", vocab_size=256)
    path = tmp_path / "run" / "model.pt"
    save_checkpoint(path, model, ByteTokenizer(), {"val_loss": 1.5})
    loaded = load_checkpoint(path)
    ids = torch.randint(0, 256, (2, 9))
    torch.testing.assert_close(loaded.model(ids), model(ids))
    assert loaded.metrics == {"val_loss": 1.5}
    assert isinstance(complete(loaded, "ab", 5, temperature=0), str)
    assert [p.name for p in path.parent.iterdir()] == ["model.pt"]  # no temp file left behind
