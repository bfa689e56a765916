"""Issue 28's missing benchmark rows: Q-Delta in benchmarks/tcga_events.py and the catalogue-view encoder
on the saved folds (benchmarks/tcga_catalogue.py)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str):
    sys.path.insert(0, str(BENCH))  # tcga_catalogue imports pcawg_typing beside it
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # its dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def test_qdelta_rows_planned_and_chunk_is_exact(monkeypatch):
    """`--mixers qdelta` plans Q-Delta fine-tuning jobs at SAVO's rank (mha_rank alone is rank-matched),
    the model's every Q-Delta layer takes --qdelta-chunk, and the chunk changes no output."""
    from nanog1.core.qdelta import QDelta
    from nanog1.encoder.model import MutationEncoder

    ev = _load("tcga_events")
    args = type("A", (), dict(fractions="1.0", seeds=2, sources="mc3,firehose", folds=2, mixers="savo,qdelta",
                              inits="scratch", gene_bag=300, window="random", predict_windows=1, hotspots=5,
                              hotspot_key="site", embed_bags="", bag_dropout=0.0, tag="L8", logit_adjust=0.0,
                              class_weight_power=0.5, label_smoothing=0.1))()  # fmt: skip
    plan = ev.jobs(args)
    assert len(plan) == 2 * 2 * 2 * 2 and {j["mixer"] for j in plan} == {"savo", "qdelta"}
    first = [j for j in plan if j["mixer"] == "qdelta"][0]
    assert ev.job_name(first).startswith("events_qdelta_scratch_bag300")
    peers = _load("tcga_typing")._peers("events_qdelta_scratch_bag300_hot5_L8_p100_s0")  # vs its SAVO row
    assert peers["SAVO"] == "events_savo_scratch_bag300_hot5_L8_p100_s0"

    torch.manual_seed(0)
    sizes = {"channel": 20, "gene": 40, "consequence": 8, "chrom": 27, "bin": 50, "vaf": 13}
    vocab = {k: [f"{k}{i}" for i in range(n - 3)] for k, n in sizes.items()}
    data = type("D", (), {"vocab": {"values": vocab}, "summary": np.zeros((1, 5))})()
    shape = type("S", (), dict(hidden=16, layers=2, rank=8, heads=2, dropout=0.0, gene_top_k=8, gene_bag=0,
                               embed_bags="", bag_dropout=0.0))()  # fmt: skip
    qd, mha = (ev.model_config(shape, data, m, n_types=3) for m in ("qdelta", "mha_rank"))
    assert (qd.mixer, qd.rank) == ("qdelta", 8) and mha.rank != 8  # MHA-r's rank moves to match SAVO's size
    assert (qd.view, qd.summary, qd.n_summary) == ("events", False, 5)  # the npz summary, not the catalogue
    model = MutationEncoder(qd).eval()
    ids = {k: torch.randint(3, n, (4, 7)) for k, n in sizes.items()}
    ids = {k: v.masked_fill(torch.arange(7) >= torch.tensor([[7], [5], [2], [6]]), 0) for k, v in ids.items()}
    summ = torch.randn(4, 5)
    with torch.no_grad():
        before = ev.run_model(model, ids, summ).type_logits
        ev.set_qdelta_chunk(model, 4)  # 8 steps (CLS + 7) in two chunks: the chunk-to-chunk pass runs too
        after = ev.run_model(model, ids, summ).type_logits
    layers = [m for m in model.modules() if isinstance(m, QDelta)]
    assert len(layers) == 2 and all(m.chunk_size == 4 for m in layers)
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-5)

    monkeypatch.setattr(sys, "argv", ["tcga_events.py", "finetune", "--mixers", "savo,qdleta"])
    with pytest.raises(SystemExit):
        ev.main()


def test_port_state_loads_an_event_model_checkpoint_as_the_same_function():
    """A pretrained checkpoint of the former EventModel class loads into the merged encoder: renamed heads and
    summary map, and its separate gene and hotspot maps become the one bag map (weights side by side, biases
    summed), which gives the sum of the two maps."""
    from nanog1.encoder.model import MutationEncoder

    ev = _load("tcga_events")
    torch.manual_seed(1)
    sizes = {"channel": 12, "gene": 30, "consequence": 7, "chrom": 5, "bin": 20, "vaf": 13}
    vocab = {k: [f"{k}{i}" for i in range(n - 3)] for k, n in sizes.items()}
    data = type("D", (), {"vocab": {"values": vocab}, "summary": np.zeros((1, 4))})()
    shape = type("S", (), dict(hidden=16, layers=1, rank=4, heads=2, dropout=0.0, gene_top_k=8, embed_bags="",
                               bag_dropout=0.0))()  # fmt: skip
    cfg = ev.model_config(shape, data, "savo", 3, genes=["gene0", "gene1"], hotspots=["1:5", "2:9", "X:1"])
    model = MutationEncoder(cfg)
    old = {k: v for k, v in model.state_dict().items() if not k.startswith(("gene_bag.", "summary_features.",
                                                                            "masked_heads."))}  # fmt: skip
    old |= {"mlm_heads." + k.removeprefix("masked_heads."): torch.randn_like(v)
            for k, v in model.state_dict().items() if k.startswith("masked_heads.")}  # fmt: skip
    old |= {"summary.weight": torch.randn(16, 4), "summary.bias": torch.randn(16),
            "gene_bag.weight": torch.randn(16, 2), "gene_bag.bias": torch.randn(16),
            "hotspot_bag.weight": torch.randn(16, 3), "hotspot_bag.bias": torch.randn(16)}  # fmt: skip
    model.load_state_dict(ev.port_state(old), strict=True)
    x = torch.rand(5, 5)
    want = (x[:, :2] @ old["gene_bag.weight"].T + old["gene_bag.bias"]
            + x[:, 2:] @ old["hotspot_bag.weight"].T + old["hotspot_bag.bias"])  # fmt: skip
    torch.testing.assert_close(model.gene_bag(x), want)
    assert torch.equal(model.summary_features.weight, old["summary.weight"])
    assert torch.equal(model.masked_heads["gene"].weight, old["mlm_heads.gene.weight"])
    state = model.state_dict()
    assert ev.port_state(state) is state  # a merged model's state is left as is


def _cohort(path: Path, n: int = 48) -> list[str]:
    from nanog1.genomics.cohort import assemble_cohort

    rng = np.random.default_rng(0)
    counts = np.zeros((n, 275), dtype=np.int64)
    types = np.array(["BRCA", "LUAD", "SKCM"])[np.arange(n) % 3]
    counts[:, 257:263] = rng.poisson(5.0, (n, 6)) + 40 * (types == "SKCM")[:, None] * (np.arange(6) == 4)
    counts[:, 263:275] = rng.poisson(1.0, (n, 12))
    samples = [f"TCGA-{i:02d}" for i in range(n)]
    adata = assemble_cohort(counts, samples, {"channel_sets_present": ["SBS6", "ID12"]},
                            cancer_types=pd.Series(types, index=samples))  # fmt: skip
    adata.write_h5ad(path)
    return samples


def test_catalogue_rows_on_saved_folds(tmp_path, monkeypatch):
    """The catalogue encoder's rows follow the folds file (its tumours, its order, sorted types), fill the
    run folds only, and a folds file naming a tumour the cohort lacks is refused."""
    cat = _load("tcga_catalogue")
    samples = _cohort(tmp_path / "c.h5ad")
    keep = sorted(samples[:45])  # the typing benchmark's rows, barcodes sorted; 3 tumours not in its folds
    (tmp_path / "w" / "toy").mkdir(parents=True)
    folds = pd.DataFrame({"Tumor_Sample_Barcode": keep, "fold": np.arange(45) % 3})
    folds.to_csv(tmp_path / "w" / "toy" / "folds.tsv", sep="\t", index=False)
    arrays, fold = cat.source_arrays(tmp_path / "c.h5ad", tmp_path / "w" / "toy" / "folds.tsv")
    assert list(arrays.sample_ids) == keep and arrays.classes == ["BRCA", "LUAD", "SKCM"]
    assert fold.tolist() == (np.arange(45) % 3).tolist()

    argv = ["--cohort", f"toy={tmp_path / 'c.h5ad'}", "--typing-work", str(tmp_path / "w"), "--out",
            str(tmp_path / "o"), "--run-folds", "1", "--epochs", "1", "--hidden", "8", "--layers", "1",
            "--rank", "4", "--heads", "2"]  # fmt: skip
    monkeypatch.setattr(sys, "argv", ["tcga_catalogue.py", *argv])
    cat.main()
    proba = np.load(tmp_path / "o" / "toy" / "oof_catalogue_savo_s0.npy")
    info = json.loads((tmp_path / "o" / "toy" / "info_catalogue_savo_s0.json").read_text())
    assert proba.shape == (45, 3) and info["folds"] == [1]
    np.testing.assert_allclose(proba[fold == 1].sum(1), 1.0, rtol=1e-5)
    assert (proba[fold != 1] == 0).all()

    folds.iloc[0, 0] = "TCGA-99"
    folds.to_csv(tmp_path / "w" / "toy" / "folds.tsv", sep="\t", index=False)
    with pytest.raises(SystemExit, match="1 tumours of .* are not in the cohort"):
        cat.source_arrays(tmp_path / "c.h5ad", tmp_path / "w" / "toy" / "folds.tsv")


def test_event_benchmark_runs_without_pandas():
    """The GPU machines the event benchmark runs on have torch but no pandas, scikit-learn or anndata: its
    fine-tuning and pretraining path (everything but `export`) must import without them."""
    import subprocess

    code = ("import runpy, sys\n"
            "for m in ('pandas', 'sklearn', 'anndata'):\n"
            "    sys.modules[m] = None\n"
            "sys.argv = ['tcga_events.py', '--help']\n"
            f"runpy.run_path({str(BENCH / 'tcga_events.py')!r}, run_name='__main__')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=BENCH.parent, env={**__import__("os").environ, "PYTHONPATH": str(BENCH.parent)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "--low-label-mixers" in done.stdout
