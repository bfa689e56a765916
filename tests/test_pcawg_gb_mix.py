"""The encoder + gradient boosting mixture of benchmarks/pcawg_gb_mix.py: the weight chosen on validation
genomes follows which model is informative, and mixtures are probability tables."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from pcawg_gb_mix import FORMS, choose_weight, job_models, log_loss, mix  # noqa: E402

N, K = 300, 6


def informative(y: np.ndarray, p_true: float, rng: np.random.Generator) -> np.ndarray:
    """Probabilities putting `p_true` on the true type and the rest spread at random over the others."""
    rest = rng.dirichlet(np.ones(K - 1), len(y)) * (1.0 - p_true)
    out = np.zeros((len(y), K))
    for i, label in enumerate(y):
        out[i, np.arange(K) != label] = rest[i]
        out[i, label] = p_true
    return out


@pytest.fixture
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels, a fair encoder (0.5 on the true type) and noise (random tables unrelated to the labels)."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, K, N)
    return y, informative(y, 0.5, rng), rng.dirichlet(np.ones(K), N)


@pytest.mark.parametrize("form", FORMS)
def test_perfect_gb_gets_all_the_weight(data, form: str) -> None:
    y, enc, _ = data
    gb = informative(y, 0.99, np.random.default_rng(1))
    w, losses = choose_weight(enc, gb, y, form)
    assert w == 1.0
    assert losses[-1] < losses[0]


@pytest.mark.parametrize("form", FORMS)
def test_noise_gb_gets_no_weight(data, form: str) -> None:
    y, enc, noise = data
    w, losses = choose_weight(enc, noise, y, form)
    assert w == 0.0
    assert min(losses) == losses[0]


def test_two_halves_informative_mix_in_between() -> None:
    """Each model right on a different half of the genomes: the linear mixture beats both ends."""
    rng = np.random.default_rng(2)
    y = rng.integers(0, K, N)
    good, bad = informative(y, 0.9, rng), informative((y + 1) % K, 0.9, rng)
    half = np.arange(N) < N // 2
    enc = np.where(half[:, None], good, bad)
    gb = np.where(half[:, None], bad, good)
    w, losses = choose_weight(enc, gb, y, "linear")
    assert 0.0 < w < 1.0
    assert min(losses) < min(losses[0], losses[-1])


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("w", [0.0, 0.3, 1.0])
def test_mixture_is_a_probability_table(data, form: str, w: float) -> None:
    _, enc, noise = data
    p = mix(enc, noise, w, form)
    assert p.shape == enc.shape
    assert (p >= 0).all()
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-9)
    if w == 0.0:
        np.testing.assert_allclose(p, enc, atol=1e-9)


def test_geometric_differs_from_linear(data) -> None:
    y, enc, noise = data
    assert log_loss(mix(enc, noise, 0.5, "geometric"), y) != pytest.approx(log_loss(mix(enc, noise, 0.5), y))
    with pytest.raises(ValueError, match="unknown mixture form"):
        mix(enc, noise, 0.5, "arithmetic")


def test_weight_chosen_on_validation_not_test(data) -> None:
    """job_models picks w from the validation rows alone: test rows where GB is perfect do not move it."""
    y, enc, noise = data
    rows = np.arange(N)
    val, test = rows[: N // 2], rows[N // 2 :]
    gb = noise.copy()
    gb[test] = informative(y[test], 0.99, np.random.default_rng(3))
    p = {"val": val, "test": test, "enc_val": enc[val], "enc_test": enc[test], "gb_val": gb[val],
         "gb_test": gb[test]}
    models, chosen = job_models(p, y)
    assert chosen["linear"]["w"] == 0.0 and chosen["geometric"]["w"] == 0.0
    np.testing.assert_allclose(models["mix_linear"][1], enc[test])


def test_nested_transfer_weight_never_sees_its_own_split(data) -> None:
    """A LOSO split's w comes from the other splits' test genomes: GB perfect on split A's test genomes
    only moves the weights of B and C (and of the 12-project job only when A is outside the 12)."""
    from pcawg_gb_mix import nested_transfer_weights

    y, enc, noise = data
    gb = noise.copy()
    parts = np.array_split(np.arange(N), 3)
    gb[parts[0]] = informative(y[parts[0]], 0.99, np.random.default_rng(4))
    probas = {f"loso_{name}": {"test": rows, "enc_test": enc[rows], "gb_test": gb[rows]}
              for name, rows in zip("ABC", parts, strict=True)}
    probas["transfer12"] = {}
    w = nested_transfer_weights(probas, {"labels": y, "held_out_projects": np.array(["B"])})
    assert w["loso_A"] == {"linear": 0.0, "geometric": 0.0}
    assert w["loso_B"]["linear"] > 0.0 and w["loso_C"]["linear"] > 0.0
    assert w["transfer12"]["linear"] > 0.0
    w = nested_transfer_weights(probas, {"labels": y, "held_out_projects": np.array(["A"])})
    assert w["transfer12"] == {"linear": 0.0, "geometric": 0.0}
