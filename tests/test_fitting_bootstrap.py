"""Bootstrap exposure intervals: resampling, coverage of simulated true exposures, presence, low burden."""

from __future__ import annotations

import numpy as np
import pytest

from nanog1.fitting import FitConfig, fit_signatures
from nanog1.fitting.bootstrap import BootstrapConfig, bootstrap_exposures, candidate_pool, resample
from nanog1.genomics.signatures import load_reference
from nanog1.genomics.simulate import simulate_cohort


@pytest.fixture(scope="module")
def fitted():
    sim = simulate_cohort(80, seed=1, burden_scale=0.1)
    ref = load_reference()
    cat = sim.channel_set("SBS96")
    res = fit_signatures(cat, ref, FitConfig())
    return sim, ref, cat, res


def test_resample_keeps_totals_and_is_unbiased():
    rng = np.random.default_rng(0)
    counts = rng.poisson(rng.random((7, 96)) * 5).astype(float)
    counts[2] = 0.0
    draws = resample(counts, 400, np.random.default_rng(1))
    assert draws.shape == (400, 7, 96) and (draws >= 0).all()
    np.testing.assert_array_equal(draws.sum(-1), np.broadcast_to(counts.sum(-1), (400, 7)))
    assert (draws[:, 2] == 0).all()
    se = np.sqrt(counts * (1 - counts / counts.sum(1, keepdims=True).clip(1)) / 400) + 1e-9
    assert (np.abs(draws.mean(0) - counts) < 5 * se + 1e-9).all()


def test_intervals_cover_true_exposures_near_nominal(fitted):
    sim, ref, cat, res = fitted
    truth = sim.exposures["SBS96"].to_numpy()
    share = truth / truth.sum(1, keepdims=True).clip(1)
    main = (truth > 0) & (share >= 0.1)
    coverage = {}
    for level in (0.5, 0.95):
        boot = bootstrap_exposures(
            cat, ref, res.exposures, FitConfig(), BootstrapConfig(draws=100, level=level)
        )
        lo, hi = boot.lo.to_numpy(), boot.hi.to_numpy()
        assert (lo <= hi + 1e-9).all()
        coverage[level] = ((lo <= truth) & (truth <= hi))[main].mean()
    assert coverage[0.95] >= 0.85
    assert coverage[0.5] < coverage[0.95] - 0.2  # intervals are informative, not trivially wide
    width = (hi - lo)[main] / truth[main]
    assert np.median(width) < 1.0


def test_presence_and_low_burden_flags(fitted):
    sim, ref, cat, res = fitted
    small = cat.copy()
    rng = np.random.default_rng(3)
    small.iloc[:5] = [rng.multinomial(20, row / row.sum()) for row in cat.iloc[:5].to_numpy(float)]
    point = fit_signatures(small, ref, FitConfig()).exposures
    boot = bootstrap_exposures(small, ref, point, FitConfig(), BootstrapConfig(draws=40, min_burden=50))
    assert boot.low_burden.iloc[:5].all()
    big = small.sum(1).to_numpy() >= 50
    assert boot.low_burden[big].mean() < 0.3
    pres = boot.presence.to_numpy()
    chosen = point.to_numpy() > 0
    assert pres[chosen].mean() > 0.8 and pres[~chosen].mean() < 0.05


def test_candidate_pool_keeps_support_and_limits_size(fitted):
    _, ref, cat, res = fitted
    V, P = cat[list(ref.index)].to_numpy(float), res.exposures.to_numpy()
    pool = candidate_pool(ref, V, P, 6)
    assert pool[P > 0].all() and (pool.sum(1) <= (P > 0).sum(1) + 12).all()
    assert candidate_pool(ref, V, P, None) is None


def test_bad_settings_rejected(fitted):
    _, ref, cat, res = fitted
    with pytest.raises(ValueError, match="draws"):
        bootstrap_exposures(cat, ref, res.exposures, FitConfig(), BootstrapConfig(draws=0))


def test_candidate_restriction_is_respected_and_close_to_unrestricted(fitted):
    import torch

    from nanog1.fitting.selection import SelectionConfig, select_signatures

    _, ref, cat, res = fitted
    W = torch.tensor(ref.to_numpy())
    V = torch.tensor(cat[list(ref.index)].to_numpy(float))
    allowed = torch.tensor(np.random.default_rng(0).random((len(cat), ref.shape[1])) < 0.2)
    X = select_signatures(W, V, SelectionConfig(permanent=(0, 4)), candidates=allowed).numpy()
    allowed[:, [0, 4]] = True
    assert (X[~allowed.numpy()] == 0).all()
    sub, point = cat.iloc[:20], res.exposures.iloc[:20]
    full = bootstrap_exposures(sub, ref, point, FitConfig(), BootstrapConfig(draws=50, candidates=None))
    pooled = bootstrap_exposures(sub, ref, point, FitConfig(), BootstrapConfig(draws=50, candidates=12))
    scale = point.sum(1).to_numpy()[:, None]
    assert np.median(np.abs(full.hi - pooled.hi).to_numpy().sum(1) / scale[:, 0]) < 0.1


def test_sample_page_shows_intervals_and_low_burden_warning(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from nanog1.dashboard.config import ENV_COHORT, app_dir
    from nanog1.fitting.cohort import CohortFitOptions, fit_cohort
    from nanog1.genomics.cohort import write_cohort
    from nanog1.genomics.simulate import simulated_anndata

    adata = simulated_anndata(simulate_cohort(8, seed=2, burden_scale=0.1))
    adata.X[0, :96] = 0
    adata.X[0, 20] = 7  # seven SBS mutations: a low-burden sample
    fit_cohort(adata, channel_sets=["SBS96"], options=CohortFitOptions(bootstrap=BootstrapConfig(draws=20)))
    path = tmp_path / "boot.h5ad"
    write_cohort(adata, path)
    monkeypatch.setenv(ENV_COHORT, str(path))
    for sample, warned in ((adata.obs_names[0], True), (adata.obs_names[3], False)):
        at = AppTest.from_file(str(app_dir() / "Home.py"), default_timeout=120)
        at.query_params["sample"] = sample
        at = at.switch_page("views/sample.py").run()
        assert not at.exception, [e.value for e in at.exception]
        table = at.dataframe[0].value
        assert {"interval", "presence"} <= set(table.columns)
        assert any("burden too low" in w.value for w in at.warning) == warned
