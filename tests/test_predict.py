"""`nanog1 predict` and `nanog1.encoder.predictor`: every input kind, an unseen type, bad inputs (#31).

The model here is a small encoder with random weights but a real calibration file: its out-of-
distribution rule is fitted on the profiles of three simulated types, so a fourth type must be
flagged whatever the weights say. The packaged model is checked separately (weights-only load, card).
"""

from __future__ import annotations

import json

import anndata as ad
import numpy as np
import pandas as pd
import pysam
import pytest
import torch
from typer.testing import CliRunner

from nanog1.encoder.predictor import PredictOptions, predict, prediction_table, read_inputs
from nanog1.errors import UserError
from nanog1.genomics.channels import SBS96, set_slice
from tests.predict_models import write_model_folder
from tests.training_cohort import make_cohort

FAST = PredictOptions(neighbours=2, exposures=True, draws=5)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run folder: random-weight encoder over three simulated types, OOD rule fitted on their profiles."""
    cohort = make_cohort(n_per_type=30, seed=4, tokens=False)
    seen = cohort[cohort.obs["cancer_type"] != "Breast"].copy()
    return write_model_folder(tmp_path_factory.mktemp("predict_model"), seen)


def _matrix_tsv(path, counts: np.ndarray, samples: list[str]) -> None:
    frame = pd.DataFrame(counts.T, index=pd.Index(SBS96, name="MutationType"), columns=samples)
    frame.to_csv(path, sep="\t")


def test_cohort_h5ad_batch_and_unseen_type_flagged(run_dir, tmp_path):
    full = make_cohort(n_per_type=10, seed=11, tokens=False)
    full.write_h5ad(tmp_path / "c.h5ad")
    adata = read_inputs([tmp_path / "c.h5ad"])
    predict(adata, run_dir, FAST)
    unseen = (adata.obs["cancer_type"].astype(str) == "Breast").to_numpy()
    reasons = adata.obs["abstain_reason"].astype(str)
    assert reasons[unseen].str.contains("out of distribution").mean() >= 0.8
    assert reasons[~unseen].str.contains("out of distribution").mean() <= 0.2
    assert (adata.obs["predicted_type"].astype(str)[unseen] == "uncertain").mean() >= 0.8
    np.testing.assert_allclose(adata.obsm["proba_type"].to_numpy().sum(1), 1.0, rtol=1e-5)
    table = prediction_table(adata)
    assert list(table.columns[:7]) == ["predicted_type", "type_1", "p_1", "type_2", "p_2", "type_3", "p_3"]
    assert (table["p_1"] >= table["p_2"]).all() and (table["mutations"] > 0).all()
    lo, hi = adata.obsm["exposures_SBS96_lo"], adata.obsm["exposures_SBS96_hi"]
    assert (hi.to_numpy() >= lo.to_numpy()).all() and (hi.to_numpy() > lo.to_numpy()).any()
    assert list(lo.columns) == list(adata.obsm["exposures_SBS96"].columns)
    assert table["nearest_reference"].str.count("SIM").eq(2).all()


def test_missing_set_is_masked_for_the_ood_test_too(run_dir):
    """A study without indel calls is not flagged out-of-distribution for lacking indels."""
    from nanog1.genomics.cohort import channel_set_status, with_derived_sets

    adata = make_cohort(n_per_type=10, seed=12, tokens=False)
    adata = adata[adata.obs["cancer_type"].astype(str) != "Breast"].copy()
    adata.X[:, set_slice("ID83")] = 0
    adata.X[:, set_slice("ID12")] = 0
    adata.uns["nanog1"] = {
        "channel_sets_present": with_derived_sets(["SBS96", "DBS78"]),
        "channel_sets": channel_set_status(["SBS96", "DBS78"]),
    }
    import nanog1.encoder

    scored = nanog1.encoder.predict(
        adata, model=run_dir, options=PredictOptions(neighbours=0, exposures=False), copy=True
    )
    assert "abstain_reason" not in adata.obs  # copy=True leaves the input as it was
    adata = scored
    assert adata.obs["abstain_reason"].astype(str).str.contains("out of distribution").mean() <= 0.2
    assert adata.uns["nanog1_predict"]["channel_sets_scored"] == ["SBS96", "DBS78", "SBS6"]


def test_every_file_kind_through_the_cli(run_dir, tmp_path):
    from nanog1.cli import app

    rng = np.random.default_rng(0)
    _matrix_tsv(tmp_path / "m.tsv", rng.poisson(3, (2, 96)), ["T1", "T2"])
    vcf = tmp_path / "tumour.vcf"
    lines = [
        "##fileformat=VCFv4.2",
        "##contig=<ID=1,length=100000>",
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO",
    ]
    lines += [f"1\t{1000 + 37 * i}\t.\t{'CT'[i % 2]}\t{'AG'[i % 2]}\t.\tPASS\t." for i in range(40)]
    vcf.write_text("\n".join(lines) + "\n")
    bcf = tmp_path / "tumour.bcf"
    with pysam.VariantFile(str(vcf)) as src, pysam.VariantFile(str(bcf), "wb", header=src.header) as dst:
        for record in src:
            dst.write(record)
    maf = tmp_path / "t.maf"
    cols = ["Hugo_Symbol", "Chromosome", "Start_Position", "End_Position", "Reference_Allele",
            "Tumor_Seq_Allele2", "Tumor_Sample_Barcode", "Variant_Type"]  # fmt: skip
    rows = [["G", "1", str(500 + 11 * i), str(500 + 11 * i), "C", "T", "TCGA-X", "SNP"] for i in range(30)]
    maf.write_text("\t".join(cols) + "\n" + "\n".join("\t".join(r) for r in rows) + "\n")
    runner = CliRunner()
    for name, path in {"matrix": tmp_path / "m.tsv", "vcf": vcf, "bcf": bcf, "maf": maf}.items():
        out = tmp_path / f"out_{name}"
        res = runner.invoke(
            app, ["predict", str(path), "--model", str(run_dir), "--out", str(out), "--draws", "5"]
        )
        assert res.exit_code == 0, (name, res.output)
        table = pd.read_csv(out / "predictions.tsv", sep="\t", index_col=0)
        doc = json.loads((out / "predictions.json").read_text())
        assert len(doc["tumours"]) == len(table) >= 1
        sample = table.index[0]
        stem = "".join(c if c.isalnum() or c in "._-" else "_" for c in str(sample))
        report = (out / f"{stem}.report.md").read_text()
        assert report.count("Research use only") == 1
        assert "interval):\n\n\n" not in report  # every exposure section lists signatures or says none
        assert (out / f"{stem}.spectrum.png").read_bytes()[:4] == b"\x89PNG"
        if name == "matrix":
            assert table.loc["T1", "channel_sets"] == "SBS96+SBS6"
        if name != "matrix":  # no reference: SBS6 scored, SBS96 masked
            assert "SBS96" not in table["channel_sets"].iloc[0].split("+")


def test_bad_inputs_are_clear_errors(run_dir, tmp_path):
    from nanog1.cli import app

    runner = CliRunner()
    empty = tmp_path / "empty.vcf"
    empty.write_text("")
    res = runner.invoke(app, ["predict", str(empty), "--model", str(run_dir), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "empty.vcf: empty file" in res.output and "Traceback" not in res.output
    bad = tmp_path / "bad.tsv"
    bad.write_text("MutationType\tS1\nnot_a_channel\t3\n")
    res = runner.invoke(app, ["predict", str(bad), "--model", str(run_dir), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "bad.tsv" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["predict", str(bad), "--model", "no-such-model", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "no-such-model: no such model" in res.output
    mismatched = tmp_path / "other_layout.h5ad"
    ad.AnnData(np.ones((2, 10), dtype=np.float32), obs=pd.DataFrame(index=["a", "b"]),
               var=pd.DataFrame(index=[f"c{i}" for i in range(10)])).write_h5ad(mismatched)
    args = ["predict", str(mismatched), "--model", str(run_dir), "--out", str(tmp_path / "o")]
    res = runner.invoke(app, args)
    assert res.exit_code == 2 and "other_layout.h5ad" in res.output and "not the NanoG1 layout" in res.output
    assert not (tmp_path / "o").exists()  # nothing written for a refused input
    (tmp_path / "a_file").write_text("")
    args = ["predict", str(bad), "--model", str(run_dir), "--out", str(tmp_path / "a_file")]
    res = runner.invoke(app, args)
    said = " ".join(res.output.replace("│", " ").split())  # the error box wraps lines
    assert res.exit_code == 2 and "a_file' is a file" in said, res.output
    for option in (["--draws", "0"], ["--neighbours", "-1"]):  # refused before any model or input is read
        res = runner.invoke(app, ["predict", str(bad), "--out", str(tmp_path / "o"), *option])
        said = " ".join(res.output.replace("│", " ").split())
        assert res.exit_code == 2 and f"Invalid value for '{option[0]}'" in said, res.output
    corrupt = tmp_path / "x.h5ad"
    corrupt.write_bytes(b"not hdf5 at all")
    with pytest.raises(UserError, match="x.h5ad"):
        read_inputs([corrupt])


def test_packaged_model_loads_weights_only_and_its_card_parses():
    from nanog1.encoder import pretrained

    assert "pcawg-catalogue" in pretrained.available(), "the packaged model is missing from the package"
    folder = pretrained.resolve("pcawg-catalogue")
    saved = torch.load(folder / "model.pt", weights_only=True)
    card = pretrained.card("pcawg-catalogue")
    assert card["classes"] == list(saved["classes"]) and len(card["classes"]) >= 20
    assert (
        "not a diagnosis" in card["intended_use"].lower() and "Alexandrov" in card["training_data"]["source"]
    )
    ref = pretrained.reference("pcawg-catalogue")
    assert ref["embedding"].shape[0] == len(ref["sample"]) == len(ref["cancer_type"])
    size = sum(p.stat().st_size for p in folder.iterdir())
    assert size < 50e6


def test_ood_arrays_beside_calibration_give_the_same_rule(run_dir, tmp_path):
    """split_ood_arrays moves the 2-D OOD arrays into an npz; load_calibration reads back the same rule."""
    import shutil

    from nanog1.encoder.abstention import AbstentionRule, profile_features
    from nanog1.encoder.calibration import load_calibration, split_ood_arrays

    shutil.copy(run_dir / "calibration.json", tmp_path / "calibration.json")
    inline = load_calibration(tmp_path)
    split_ood_arrays(tmp_path)
    assert json.loads((tmp_path / "calibration.json").read_text())["abstention"]["ood"] == "ood.npz"
    split = load_calibration(tmp_path)
    assert split["abstention"]["ood"]["precision"] == inline["abstention"]["ood"]["precision"]
    feats = profile_features(make_cohort(n_per_type=5, seed=13, tokens=False).X)
    proba = np.full((len(feats), 3), 1 / 3)
    a = AbstentionRule.from_dict(inline["abstention"]).uncertain(proba, feats)
    b = AbstentionRule.from_dict(split["abstention"]).uncertain(proba, feats)
    assert a.tolist() == b.tolist()


def test_packaged_model_flags_a_profile_unlike_any_pcawg_type(tmp_path):
    """The shipped model on two SBS96-only tumours: a clock-like (SBS1/SBS5-style C>T at CpG plus a flat
    background) profile is typed; every mutation in one T>G channel is like no PCAWG type and abstains."""
    flat = np.full(96, 20)
    flat[[SBS96.index(c) for c in ("A[C>T]G", "C[C>T]G", "G[C>T]G", "T[C>T]G")]] = 400
    spike = np.zeros(96, dtype=int)
    spike[SBS96.index("T[T>G]T")] = 3000
    _matrix_tsv(tmp_path / "m.tsv", np.stack([flat, spike]), ["clock", "spike"])
    adata = read_inputs([tmp_path / "m.tsv"])
    predict(adata, "pcawg-catalogue", PredictOptions(neighbours=1, exposures=False))
    reasons = adata.obs["abstain_reason"].astype(str)
    assert "out of distribution" in reasons["spike"]
    assert adata.obs.loc["spike", "predicted_type"] == "uncertain"
    assert "out of distribution" not in reasons["clock"]
    assert adata.uns["nanog1_predict"]["channel_sets_scored"] == ["SBS96", "SBS6"]


def test_packaged_model_abstains_below_the_burden_it_was_trained_on(tmp_path):
    """A 4-mutation SBS96 profile (the QA case: typed CNS-PiloAstro at 0.97) is abstained for its burden,
    with the floor taken from the shipped reference tumours (1st percentile of their SBS totals); a
    clock-like profile of PCAWG-like burden is not."""
    from nanog1.encoder import pretrained
    from nanog1.encoder.abstention import burden_range

    flat = np.full(96, 20)
    flat[[SBS96.index(c) for c in ("A[C>T]G", "C[C>T]G", "G[C>T]G", "T[C>T]G")]] = 400
    four = np.zeros(96, dtype=int)
    four[[SBS96.index(c) for c in ("A[C>T]G", "C[C>T]G", "T[C>T]A", "T[T>C]A")]] = 1
    _matrix_tsv(tmp_path / "m.tsv", np.stack([flat, four]), ["clock", "four"])
    adata = read_inputs([tmp_path / "m.tsv"])
    predict(adata, "pcawg-catalogue", PredictOptions(neighbours=1, exposures=False))
    floor, _ = burden_range(pretrained.reference("pcawg-catalogue"), ["SBS96", "SBS6"])
    assert 20 < floor < 1000
    reasons = prediction_table(adata)["abstain_reason"]
    assert f"burden 4 below the range the model was trained on (≥ {floor:.0f})" in reasons["four"]
    assert adata.obs.loc["four", "predicted_type"] == "uncertain"
    assert "burden" not in reasons["clock"]


def test_run_folder_with_reference_burdens_gets_the_burden_rule(run_dir):
    """A model folder whose reference.npz keeps burdens flags a tumour thinned to 4 mutations only."""
    adata = make_cohort(n_per_type=5, seed=12, tokens=False)
    x = np.asarray(adata.X, dtype=np.float64).copy()
    x[0] = 0
    x[0, set_slice("SBS96")][:4] = 1
    x[0, set_slice("SBS6")][:1] = 4
    adata.X = x
    predict(adata, run_dir, PredictOptions(neighbours=0, exposures=False))
    reasons = adata.obs["abstain_reason"].astype(str).to_numpy()
    assert reasons[0].startswith("burden 4 below the range") or "; burden 4 below the range" in reasons[0]
    assert adata.obs["abstain"].iloc[0]
    assert not any("burden" in r for r in reasons[1:])


def test_spectrum_axis_groups_channels_as_cosmic_plots_them():
    """The report's spectrum shows SBS96 by substitution class (stored by 5' base, the classes would
    interleave), each run of one colour labelled at its centre."""
    from nanog1.encoder.predict_report import group_ticks, grouped_order
    from nanog1.genomics.channels import CHANNEL_SETS

    order = grouped_order(SBS96)
    assert sorted(order) == list(range(96))
    ticks, names = group_ticks([SBS96[k] for k in order])
    assert names == ["C>A", "C>G", "C>T", "T>A", "T>C", "T>G"] and ticks == [7.5 + 16 * k for k in range(6)]
    assert [SBS96[k] for k in order][16:18] == ["A[C>G]A", "A[C>G]C"]
    ticks, names = group_ticks(CHANNEL_SETS["ID83"])
    assert len(names) == 16 and names[0] == "1:Del:C" and ticks[0] == 2.5 and names[-1] == "5:Del:M"
    assert grouped_order(CHANNEL_SETS["DBS78"]) == list(range(78))  # already grouped: unchanged


def test_rerun_into_the_same_folder_leaves_only_its_own_reports(run_dir, tmp_path):
    """A second predict into one --out removes the first run's reports it did not rewrite (stale files
    that look current), and leaves the user's own files alone."""
    from nanog1.cli import app

    rng = np.random.default_rng(1)
    _matrix_tsv(tmp_path / "a.tsv", rng.poisson(3, (2, 96)), ["A1", "A2"])
    _matrix_tsv(tmp_path / "b.tsv", rng.poisson(3, (1, 96)), ["B1"])
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.report.md").write_text("mine")
    args = ["--model", str(run_dir), "--out", str(out), "--draws", "5", "--neighbours", "0"]
    for matrix in ("a.tsv", "b.tsv"):
        res = CliRunner().invoke(app, ["predict", str(tmp_path / matrix), *args])
        assert res.exit_code == 0, res.output
    reports = sorted(p.name for p in out.iterdir() if p.name.endswith((".report.md", ".spectrum.png")))
    assert reports == ["B1.report.md", "B1.spectrum.png", "notes.report.md"]
    res = CliRunner().invoke(app, ["predict", str(tmp_path / "a.tsv"), *args, "--no-reports"])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == ["notes.report.md", "predictions.json", "predictions.tsv"]


def test_sample_names_with_dots_get_one_report_each(run_dir, tmp_path):
    """Samples named 'T.1' and 'T.2' (aliquot suffixes) each get their own report and spectrum, under their
    whole name: a dot in the name is not a file suffix to replace."""
    from nanog1.cli import app

    _matrix_tsv(tmp_path / "m.tsv", np.random.default_rng(2).poisson(3, (2, 96)), ["T.1", "T.2"])
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["predict", str(tmp_path / "m.tsv"), "--model", str(run_dir), "--out",
                                   str(out), "--draws", "5", "--neighbours", "0"])
    assert res.exit_code == 0, res.output
    reports = sorted(p.name for p in out.iterdir() if p.name.endswith((".report.md", ".spectrum.png")))
    assert reports == ["T.1.report.md", "T.1.spectrum.png", "T.2.report.md", "T.2.spectrum.png"]
    assert "T.2" in (out / "T.2.report.md").read_text()


def test_names_that_make_one_file_name_get_a_report_each_none_hidden(run_dir, tmp_path):
    """'T 1' and 'T_1' (and 't_1', alike on a case-insensitive disk) both made T_1.report.md, the later
    tumour's overwriting the earlier's; '../x' made the hidden '.._x.report.md'. Each tumour now has its own
    visible report, which names it."""
    from nanog1.cli import app

    samples = ["T 1", "T_1", "t_1", "../x"]
    _matrix_tsv(tmp_path / "m.tsv", np.random.default_rng(3).poisson(3, (4, 96)), samples)
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["predict", str(tmp_path / "m.tsv"), "--model", str(run_dir), "--out",
                                   str(out), "--draws", "5", "--neighbours", "0"])
    assert res.exit_code == 0, res.output
    stems = ["T_1", "T_1-2", "t_1-3", "_x"]
    written = {p.name for p in out.iterdir() if p.name.endswith(".report.md")}
    assert written == {f"{s}.report.md" for s in stems}
    for stem, sample in zip(stems, samples, strict=True):
        assert (out / f"{stem}.report.md").read_text().startswith(f"# NanoG1 tumour report: {sample}\n")
        assert (out / f"{stem}.spectrum.png").is_file()


def test_a_cohort_named_without_h5ad_is_read_as_a_cohort(run_dir, tmp_path):
    """`ingest -o cohort` (no suffix) or 'C.H5AD' wrote a cohort that predict refused as 'an HDF5 file (a
    cohort .h5ad?), not a VCF/BCF, MAF or catalogue matrix'; it is read as the cohort it is, the same
    predictions as under its .h5ad name."""
    from nanog1.cli import app
    from nanog1.genomics.ingest import ingest

    _matrix_tsv(tmp_path / "m.tsv", np.random.default_rng(4).poisson(3, (2, 96)), ["A1", "A2"])
    ingest([tmp_path / "m.tsv"], None, None, tmp_path / "c.h5ad")
    tables = []
    for name in ("c.h5ad", "cohort", "C.H5AD"):
        if name != "c.h5ad":
            (tmp_path / name).write_bytes((tmp_path / "c.h5ad").read_bytes())
        out = tmp_path / f"out_{name}"
        res = CliRunner().invoke(app, ["predict", str(tmp_path / name), "--model", str(run_dir), "--out",
                                       str(out), "--no-exposures", "--neighbours", "0", "--no-reports"])
        assert res.exit_code == 0, res.output
        tables.append((out / "predictions.tsv").read_text())
    assert tables[0] == tables[1] == tables[2] and "A2" in tables[0]


def test_a_reference_given_with_a_cohort_ingested_without_one_is_refused(tmp_path):
    """QA: `predict cohort.h5ad -r genome.fa` on a cohort ingested without a FASTA ignored the FASTA without
    a word, and the outputs then said SBS96/ID83 were masked 'without a reference FASTA'. It is refused,
    naming what to do; a cohort ingested with a reference is read as it is."""
    (tmp_path / "g.fa").write_text(">1\nACGT\n")
    cohort = make_cohort(n_per_type=3, seed=11, tokens=False)
    cohort.uns.setdefault("nanog1", {})["reference"] = {}
    cohort.write_h5ad(tmp_path / "noref.h5ad")
    with pytest.raises(UserError, match="noref.h5ad: --reference .*g.fa cannot be applied to a cohort .h5ad"):
        read_inputs([tmp_path / "noref.h5ad"], reference=tmp_path / "g.fa")
    assert read_inputs([tmp_path / "noref.h5ad"]).n_obs == cohort.n_obs  # without -r: as before
    cohort.uns["nanog1"]["reference"] = {"path": "g.fa", "fai_sha256": "0" * 64}
    cohort.write_h5ad(tmp_path / "ref.h5ad")
    assert read_inputs([tmp_path / "ref.h5ad"], reference=tmp_path / "g.fa").n_obs == cohort.n_obs


def test_models_show_of_a_folder_without_model_pt_says_so(tmp_path):
    """QA: `nanog1 models show DIR` on an existing folder without model.pt said 'no such model', as for a
    name that exists nowhere; it now says the folder is there but holds no model.pt."""
    from nanog1.cli import app

    (tmp_path / "run").mkdir()
    res = CliRunner().invoke(app, ["models", "show", str(tmp_path / "run")])
    out = " ".join(res.output.split())
    assert res.exit_code == 2 and "the folder exists but holds no model.pt" in out, res.output
    assert "no such model" not in out and "Traceback" not in out
    res = CliRunner().invoke(app, ["models", "show", str(tmp_path / "gone")])
    assert res.exit_code == 2 and "gone: no such model" in " ".join(res.output.split())


def test_models_show_of_a_run_folder_without_a_card_tells_what_the_run_records(run_dir, tmp_path):
    """QA: `nanog1 models show RUN` (its --help: 'or a run folder holding model.pt') printed {} for every
    trained run, which has no card.json; it shows the run's types, settings and metrics.json instead."""
    import shutil

    from nanog1.cli import app

    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    (run / "metrics.json").write_text(json.dumps({"run_id": "r1", "metrics": {"val_top1": 0.5}}))
    res = CliRunner().invoke(app, ["models", "show", str(run)])
    assert res.exit_code == 0, res.output
    shown = json.loads(res.output)
    assert shown["classes"] == torch.load(run / "model.pt", weights_only=True)["classes"]
    assert shown["train_config"]["hidden"] == 8 and shown["metrics"] == {"val_top1": 0.5}
    packaged = json.loads(CliRunner().invoke(app, ["models", "show", "pcawg-catalogue"]).output)
    assert packaged["name"] == "pcawg-catalogue" and "card" not in packaged  # a card is shown as it is
