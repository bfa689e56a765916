"""Block and Stack: reference block, padded batches, cached decoding, routing maps, checkpointing."""

from __future__ import annotations

import core_reference as ref
import pytest
import torch

from nanog1.core import Block, RoutingCache, Stack, StackConfig

KINDS = ["qcompass", "savo", "mha", "mha_rank"]


def stack(kind: str, causal: bool, **overrides) -> Stack:
    torch.manual_seed(0)
    config = StackConfig(hidden_size=16, layers=2, rank=8, heads=2, mixer=kind, causal=causal, **overrides)
    return Stack(config).double()


@pytest.mark.parametrize("kind", KINDS)
def test_block_matches_reference(kind):
    torch.manual_seed(3)
    b = Block(StackConfig(hidden_size=16, layers=1, rank=8, heads=2, mixer=kind, causal=True)).double()
    with torch.no_grad():
        b.norm_mix.weight.uniform_(0.5, 1.5)
        b.norm_ffn.bias.uniform_(-0.5, 0.5)
    x = torch.randn(2, 7, 16, dtype=torch.float64)
    y = b(x)
    for i in range(2):
        torch.testing.assert_close(y[i], ref.block(b, x[i]), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("kind", KINDS)
def test_stack_padded_batch_equals_samples_alone(kind, causal):
    s = stack(kind, causal, norm="rmsnorm")
    x = torch.randn(3, 8, 16, dtype=torch.float64)
    lengths = [8, 5, 2]
    pad = torch.arange(8)[None, :] >= torch.tensor(lengths)[:, None]
    y = s(x, pad)
    assert torch.isfinite(y).all()
    for b, n in enumerate(lengths):
        torch.testing.assert_close(y[b, :n], s(x[b:b + 1, :n])[0], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("kind", KINDS)
def test_stack_step_equals_forward(kind):
    s = stack(kind, causal=True, query="nonlinear").eval()
    x = torch.randn(2, 7, 16, dtype=torch.float64)
    caches = s.init_cache(2, dtype=torch.float64)
    assert len(caches) == 2 and all(isinstance(c, RoutingCache) for c in caches)
    outs = []
    for t in range(7):
        y_t, caches = s.step(x[:, t:t + 1], caches)
        outs.append(y_t)
    torch.testing.assert_close(torch.cat(outs, dim=1), s(x), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("layer", [0, 1, -1])
def test_return_weights_layer(layer):
    s = stack("savo", causal=True)
    x = torch.randn(2, 6, 16, dtype=torch.float64)
    y, w = s(x, return_weights_layer=layer)
    torch.testing.assert_close(y, s(x), rtol=1e-10, atol=1e-10)
    assert w.shape == (2, 2, 6, 6)
    assert (w.triu(1) == 0).all()
    h = x
    for block in s.blocks[: layer % 2]:
        h = block(h)
    _, expected = s.blocks[layer % 2].mixer(s.blocks[layer % 2].norm_mix(h), return_weights=True)
    torch.testing.assert_close(w, expected)
    with pytest.raises(ValueError, match="out of range"):
        s(x, return_weights_layer=2)


def test_checkpointing_gives_the_same_output_and_gradients():
    x = torch.randn(2, 6, 16, dtype=torch.float64)
    grads = []
    for checkpointing in (False, True):
        s = stack("qcompass", causal=False, checkpointing=checkpointing).train()
        s(x).pow(2).sum().backward()
        grads.append([p.grad for p in s.parameters()])
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_dropout_only_in_training():
    s = stack("mha", causal=False, dropout=0.5)
    x = torch.randn(1, 6, 16, dtype=torch.float64)
    s.eval()
    torch.testing.assert_close(s(x), s(x))
    s.train()
    assert not torch.allclose(s(x), s(x))


@pytest.mark.parametrize("bad", [dict(mixer="rnn"), dict(query="cubic"), dict(norm="batchnorm"),
                                 dict(layers=0), dict(dropout=1.0)])
def test_stack_config_rejects_bad_values(bad):
    with pytest.raises(ValueError, match="StackConfig"):
        StackConfig(**{**dict(hidden_size=16, layers=2, rank=8, heads=2), **bad})
