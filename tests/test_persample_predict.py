"""Per-tumour measured sets reach every per-tumour output of predict and evaluate (issue 31).

A cohort of a complete Mutect2 tumour (SNVs and indels in one file) beside a Strelka2 SNV file alone (no
indels measured) is the case: each tumour's signature exposures, burden range and profile test use the
sets THAT tumour measured, and the event-view model (tcga-exome) hides a tumour's unmeasured sets from its
catalogue summary and says what that means. The VCFs are written as the callers write them
(tests/test_measured_per_sample.py, tests/test_ingest_somatic.py).
"""

from __future__ import annotations

import dataclasses

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from nanog1.encoder.predictor import PredictOptions, load_predictor, predict, prediction_table, read_inputs
from nanog1.schema import MEASURED_SETS, SET_NAMES, SET_SIZES
from tests.test_measured_per_sample import complete, genome, strelka_alone  # noqa: F401  (fixture)

FULL, SNV = "P1-T", "somatic.snvs"
EXPOSED = PredictOptions(neighbours=0, exposures=True, draws=20)


@pytest.fixture(scope="module")
def mixed(genome, tmp_path_factory):  # noqa: F811
    """(complete VCF, SNV-only VCF, reference FASTA)."""
    fasta, seq = genome
    work = tmp_path_factory.mktemp("mixed")
    return complete(work / "A", seq), strelka_alone(work / "B", seq), fasta


def _exposure_frames(adata, name: str, sample: str) -> list[pd.Series]:
    return [adata.obsm[f"exposures_{name}{s}"].loc[sample] for s in ("", "_lo", "_hi")]


def test_exposures_are_fitted_per_tumour_over_its_own_sets(mixed, tmp_path):
    """The complete tumour gets ID83 exposures (as when fitted alone); the SNV-only tumour's are absent
    (NaN, 'not measured' in the table and JSON), never zeros. Before, ID83 was fitted for no tumour since
    not every tumour measured it."""
    import json

    from nanog1.encoder.predict_report import write_outputs

    full, snv, fasta = mixed
    model = load_predictor("pcawg-catalogue")
    both = read_inputs([full, snv], fasta)
    predict(both, model, EXPOSED)
    alone = read_inputs([full], fasta)
    predict(alone, model, EXPOSED)

    record = both.uns["nanog1_predict_exposures"]
    assert record["sets"] == ["SBS96", "DBS78", "ID83"]
    assert record["not_measured"] == {"set": ["ID83"], "tumours": [SNV]}
    got, want = _exposure_frames(both, "ID83", FULL), _exposure_frames(alone, "ID83", FULL)
    assert got[0].sum() > 0  # 25 deletions attributed
    for g, w in zip(got, want, strict=True):  # point and bootstrap bounds: the same rows were fitted
        pd.testing.assert_series_equal(g, w)
    pd.testing.assert_series_equal(both.obsm["exposures_SBS96"].loc[FULL],
                                   alone.obsm["exposures_SBS96"].loc[FULL])
    for frame in _exposure_frames(both, "ID83", SNV):
        assert frame.isna().all()  # absent, not zero
    assert not both.obsm["exposures_SBS96"].loc[SNV].isna().any()

    table = prediction_table(both)
    assert table.loc[SNV, "top_signatures_ID83"] == "not measured"
    assert table.loc[FULL, "top_signatures_ID83"] not in ("", "not measured")
    write_outputs(both, table, tmp_path / "out", reports=True)
    doc = json.loads((tmp_path / "out" / "predictions.json").read_text())
    tumours = {t["sample"]: t for t in doc["tumours"]}
    assert tumours[SNV]["exposures"]["ID83"] is None and tumours[SNV]["exposures_not_measured"] == ["ID83"]
    assert tumours[FULL]["exposures"]["ID83"] and "exposures_not_measured" not in tumours[FULL]
    report = (tmp_path / "out" / f"{SNV}.report.md").read_text()
    assert "Signature exposures, ID83: not measured for this tumour" in report
    assert "channel sets scored: SBS96+DBS78+SBS6" in report


def test_burden_range_is_each_tumours_own(mixed):
    """A reference whose SNV burdens are low and whose indel burdens make up the rest: the SNV-only tumour
    lies within the range over SNVs and doublets, the complete tumour within the range over every set;
    judged against the SNV-only range (the sets every tumour measured), the complete tumour's SNVs plus
    indels would lie above it."""
    from nanog1.encoder.abstention import burden_range
    from nanog1.genomics.channels import set_slice

    full, snv, fasta = mixed
    both = read_inputs([full, snv], fasta)
    x = np.asarray(both.X.toarray() if hasattr(both.X, "toarray") else both.X, dtype=np.float64)
    totals = {s: x[:, set_slice(s)].sum(1) for s in ("SBS6", "DBS78", "ID12")}
    i_full, i_snv = list(both.obs_names).index(FULL), list(both.obs_names).index(SNV)
    a = totals["SBS6"][i_snv] + totals["DBS78"][i_snv]  # the SNV-only tumour's burden
    b = sum(t[i_full] for t in totals.values())  # the complete tumour's, indels included
    assert a < b and totals["ID12"][i_snv] == 0
    snv_max = (a + b) / 20  # ceiling (10 x max) between a and b
    reference = {"burden_SBS6": np.linspace(1.0, snv_max, 100), "burden_DBS78": np.zeros(100),
                 "burden_ID12": np.full(100, b / 10)}
    snv_range = burden_range(reference, ["SBS6", "DBS78"])
    assert snv_range[0] <= a <= snv_range[1] < b  # the case: b outside the SNV-only range
    full_range = burden_range(reference, ["SBS6", "DBS78", "ID12"])
    assert full_range[0] <= b <= full_range[1]

    loaded = dataclasses.replace(load_predictor("pcawg-catalogue"), reference=reference)
    predict(both, loaded, PredictOptions(neighbours=0, exposures=False))
    reasons = both.obs["abstain_reason"].to_dict()
    assert "burden" not in reasons[FULL], reasons
    assert "burden" not in reasons[SNV], reasons

    # a tumour outside its own range is still caught: the SNV-only tumour against a range that starts above it
    reference["burden_SBS6"] = np.full(100, a + 5.0)
    predict(both, loaded, PredictOptions(neighbours=0, exposures=False))
    reason = both.obs["abstain_reason"].to_dict()[SNV]
    assert f"burden {a:.0f} below the range the model was trained on (≥ {a + 5:.0f})" in reason, reason


def _cohort(counts: np.ndarray, measured: list[dict[str, bool]]) -> ad.AnnData:
    from nanog1.genomics.channels import CHANNEL_SETS

    names = [f"S{i}" for i in range(len(counts))]
    adata = ad.AnnData(X=counts.astype(np.float32), obs=pd.DataFrame(index=names),
                       var=pd.DataFrame(index=[c for s in CHANNEL_SETS.values() for c in s]))
    partial = [s for s in SET_NAMES if not all(m[s] for m in measured)]
    adata.uns["nanog1"] = {
        "channel_sets": {s: ("partial" if s in partial else "exact") for s in SET_NAMES},
        "exact_for": {s: [n for n, m in zip(names, measured, strict=True) if m[s]] for s in partial},
    }
    adata.obsm[MEASURED_SETS] = pd.DataFrame(measured, index=names, columns=list(SET_NAMES)).astype(bool)
    return adata


def test_evaluate_profile_test_reads_each_tumours_own_sets():
    """evaluate's abstention profile (store_calibrated_types): a tumour that measured its indels and whose
    indel profile is unlike every type is out of distribution, though its neighbour measured none (before,
    the cohort-wide record left the indels out for both)."""
    from nanog1.encoder.abstention import AbstentionRule, CentroidOOD, profile_features
    from nanog1.encoder.calibration import store_calibrated_types

    rng = np.random.default_rng(0)
    typical = rng.integers(5, 20, size=sum(SET_SIZES)).astype(np.float64)
    ends = np.cumsum(SET_SIZES)
    id83 = slice(ends[2] - SET_SIZES[2], ends[2])
    id12 = slice(ends[4] - SET_SIZES[4], ends[4])
    centre = profile_features(typical[None])[0]
    n = len(centre)
    ood = CentroidOOD([centre.tolist()], np.eye(n).tolist(), threshold=1.0)
    odd = typical.copy()
    odd[id83], odd[id12] = 0.0, 0.0
    odd[id83.start], odd[id12.start] = 500.0, 500.0  # every indel in one channel: far over the indel sets
    snv_only = typical.copy()
    snv_only[id83], snv_only[id12] = 0.0, 0.0
    every = dict.fromkeys(SET_NAMES, True)
    no_indels = every | {"ID83": False, "ID12": False}
    adata = _cohort(np.stack([odd, snv_only]), [every, no_indels])
    calib = {"temperature": 1.0, "abstention": AbstentionRule(0.0, None, ood).to_dict()}
    proba = np.array([[0.9, 0.1], [0.9, 0.1]])
    store_calibrated_types(adata, proba, np.asarray(adata.X, np.float64), ["A", "B"], np.array([0, 0]), calib)
    assert adata.obs["predicted_type"].tolist() == ["uncertain", "A"]

    # the same rule from predict: each tumour's distance over its own sets, tumours of one pattern together
    dist, cut = ood.per_row_distance(profile_features(np.stack([odd, snv_only])),
                                     np.array([[True] * n, [not (id83.start <= j < id83.stop or
                                                                 id12.start <= j < id12.stop)
                                                            for j in range(n)]]))
    assert dist[0] > cut[0] and dist[1] <= cut[1]


# --- the event view (tcga-exome) -------------------------------------------------------------------------

INDELS = [("PTEN", "10", 89717700 + 7 * i, "A", "-", "Frame_Shift_Del", "DEL") for i in range(12)]


@pytest.fixture(scope="module")
def exome_mafs(tmp_path_factory):
    """(GDC MAF of a tumour with SNVs and frameshift deletions, the same MAF without its deletion lines)."""
    from tests.test_predict_exome import GDC_COLUMNS, GLIOMA, _passengers, _row

    barcode = "TCGA-AA-0003-01A-11D-A000-08"
    rows = [_row(barcode, *c) for c in GLIOMA + _passengers(np.random.default_rng(3), 20)]
    snvs = list(rows)
    for gene, chrom, pos, ref, alt, cls, kind in INDELS:
        row = _row(barcode, gene, chrom, pos, ref, alt, cls, "p.K1fs")
        row.update({"Variant_Type": kind, "Tumor_Seq_Allele1": ref})
        rows.append(row)
    folder = tmp_path_factory.mktemp("exome_indels")
    for name, table in (("indels.maf", rows), ("snvs.maf", snvs)):
        with open(folder / name, "w") as f:
            f.write("#version gdc-1.0.0\n")
            pd.DataFrame(table, columns=GDC_COLUMNS).to_csv(f, sep="\t", index=False)
    return folder / "indels.maf", folder / "snvs.maf"


@pytest.fixture(scope="module")
def exome_with_indels(exome_mafs):
    """A GDC MAF tumour with SNVs and frameshift deletions (tcga-exome reads it without a reference)."""
    return read_inputs([exome_mafs[0]], filter="all")


def _without_indels_measured(adata: ad.AnnData, zero: bool = False) -> ad.AnnData:
    """The tumour with its indel sets recorded unmeasured (and, with `zero`, its indel counts zeroed)."""
    out = adata.copy()
    table = pd.DataFrame(True, index=out.obs_names, columns=list(SET_NAMES))
    table[["ID83", "ID12"]] = False
    out.obsm[MEASURED_SETS] = table
    meta = dict(out.uns["nanog1"])
    meta["channel_sets"] = dict(meta["channel_sets"]) | {"ID83": "not_computable", "ID12": "not_computable"}
    out.uns["nanog1"] = meta
    if zero:
        from nanog1.genomics.channels import set_slice

        x = np.asarray(out.X.toarray() if hasattr(out.X, "toarray") else out.X).copy()
        for s in ("ID83", "ID12"):
            x[:, set_slice(s)] = 0
        out.X = x
    return out


def test_event_model_hides_a_tumours_unmeasured_sets_from_its_summary(exome_with_indels):
    """tcga-exome with the tumour's indels recorded unmeasured scores it as with those counts absent (the
    summary hides them, as the catalogue view key-pads them), not as with them read; before, the event
    view read every count into its CLS summary whatever the tumour measured."""
    options = PredictOptions(neighbours=0, exposures=False)
    model = load_predictor("tcga-exome")
    base = exome_with_indels.copy()
    assert float(np.asarray(base.X.toarray() if hasattr(base.X, "toarray") else base.X)[:, -12:].sum()) == 12
    predict(base, model, options)
    masked = _without_indels_measured(exome_with_indels)
    predict(masked, model, options)
    zeroed = _without_indels_measured(exome_with_indels, zero=True)
    predict(zeroed, model, options)
    got, zero, read = (a.obsm["proba_type"].to_numpy() for a in (masked, zeroed, base))
    np.testing.assert_allclose(got, zero, atol=1e-6)
    assert np.abs(got - read).max() > 1e-4  # the counts were read before masking

    assert masked.obs["channel_sets_masked"].tolist() == ["ID12"]
    note = masked.uns["nanog1_predict"]["event_view_masking"]
    assert "tcga-exome reads one token per mutation" in note and "indels (ID12)" in note
    assert "accuracy on tumours with masked sets is not measured" in note
    assert base.uns["nanog1_predict"]["event_view_masking"] == ""


@pytest.mark.filterwarnings("ignore:tcga-exome")
def test_event_model_states_that_an_snv_only_tumours_indels_were_not_measured(mixed, tmp_path, monkeypatch):
    """A Strelka2 SNV file alone, ingested with genes, beside a complete Mutect2 tumour, scored by
    tcga-exome: the summary mask covers ID12 for the SNV-only tumour only, and predict's warning says that
    its indels were not measured, that the model reads that as no indels, and that its accuracy there is
    not measured (it was trained with every set measured). Its indel counts are zero, so hiding them gives
    the same summary as reading them: the warning, not the score, is what changes for such a tumour."""
    from nanog1.encoder.model import CatalogueSummary
    from nanog1.encoder.predict_notes import input_warnings
    from nanog1.genomics.channels import set_slice
    from nanog1.genomics.cohort import read_cohort
    from nanog1.genomics.ingest import IngestOptions, ingest

    full, snv, fasta = mixed
    bed = tmp_path / "genes.bed"
    bed.write_text("1\t0\t20000\tTP53\n")
    ingest([full, snv], fasta, None, tmp_path / "c.h5ad", IngestOptions(genes=str(bed), filter="all"))
    cohort = read_cohort(tmp_path / "c.h5ad")
    masks = []
    original = CatalogueSummary.forward

    def spy(self, counts, hidden_mask=None):
        masks.append(None if hidden_mask is None else hidden_mask.detach().cpu().numpy().copy())
        return original(self, counts, hidden_mask)

    monkeypatch.setattr(CatalogueSummary, "forward", spy)
    model = load_predictor("tcga-exome")
    assert float(model.saved["train_config"].get("set_dropout", 0.0)) == 0.0
    predict(cohort, model, PredictOptions(neighbours=0, exposures=False))
    assert masks and all(m is not None for m in masks)
    hidden = dict(zip(cohort.obs_names, np.concatenate(masks), strict=True))
    assert hidden[SNV][set_slice("ID12")].all() and not hidden[FULL][set_slice("ID12")].any()
    assert not hidden[SNV][set_slice("SBS6")].any()
    assert cohort.obs["channel_sets_masked"].to_dict() == {FULL: "", SNV: "ID12"}

    warned = " ".join(n.text for n in input_warnings(cohort))
    assert f"indels (ID12) not measured for {SNV} (Strelka2 SNV file only)" in warned, warned
    assert "hidden from the model's catalogue summary" in warned, warned
    assert "never read as zero mutations" not in warned, warned  # not what an event model does
    assert "reads it as a tumour without those mutations" in warned, warned
    assert "its accuracy on tumours with masked sets is not measured" in warned, warned


def test_event_model_leaves_out_the_calls_of_declared_unmeasured_indels(exome_mafs):
    """tcga-exome on a tumour whose MAF holds 12 frameshift deletions, scored with --not-measured indels
    (PredictOptions): exactly the probabilities and embedding of the same MAF with its deletion lines
    removed (declared alike) — its PTEN deletions reach neither the tokens nor the gene bag, hotspots or
    consequence shares — and not those of the undeclared run. predict counts the calls left out
    (obs/uns 'events_not_read') and its note says so. Before, the declared run read every deletion as a
    token and in its bag; only the catalogue summary hid them."""
    model = load_predictor("tcga-exome")
    declared_opts = PredictOptions(neighbours=0, exposures=False, not_measured="indels")
    with_indels, without = (read_inputs([path], filter="all") for path in exome_mafs)
    undeclared = with_indels.copy()
    predict(with_indels, model, declared_opts)
    predict(without, model, declared_opts)
    predict(undeclared, model, PredictOptions(neighbours=0, exposures=False))
    got, want = with_indels.obsm["proba_type"].to_numpy(), without.obsm["proba_type"].to_numpy()
    np.testing.assert_allclose(got, want, atol=1e-6)
    np.testing.assert_allclose(with_indels.obsm["X_nanog1"], without.obsm["X_nanog1"], atol=1e-5)
    assert np.abs(got - undeclared.obsm["proba_type"].to_numpy()).max() > 1e-4

    assert with_indels.obs["events_not_read"].tolist() == [len(INDELS)]
    assert without.obs["events_not_read"].tolist() == [0]
    assert undeclared.obs["events_not_read"].tolist() == [0]
    record = with_indels.uns["nanog1_predict"]
    assert record["events_not_read"] == len(INDELS)
    note = record["event_view_masking"]
    assert f"here {len(INDELS)} call(s) of 1 tumour(s), obs['events_not_read']" in note, note


def test_predictions_tsv_counts_the_calls_an_event_model_left_out(exome_mafs, tmp_path):
    """`nanog1 predict --model tcga-exome --not-measured indels` on a MAF holding 12 deletions: the calls left
    out per tumour are a predictions.tsv column (and a key of the tumour in predictions.json), as in
    obs['events_not_read']; a catalogue model reads no calls, so its table has no such column, even for a
    cohort an event model typed before. Before, the count was in obs and uns only."""
    import json

    from typer.testing import CliRunner

    from nanog1.cli import app

    args = ["predict", str(exome_mafs[0]), "--model", "tcga-exome", "--no-exposures", "--neighbours", "0",
            "--no-reports", "--not-measured", "indels", "--out", str(tmp_path / "o")]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    table = pd.read_csv(tmp_path / "o" / "predictions.tsv", sep="\t", index_col=0)
    assert table["events_not_read"].tolist() == [len(INDELS)]
    (tumour,) = json.loads((tmp_path / "o" / "predictions.json").read_text())["tumours"]
    assert tumour["events_not_read"] == len(INDELS)

    typed = read_inputs([exome_mafs[0]], filter="all")
    typed.obs["events_not_read"] = 1  # left by an event model's earlier predict of this cohort
    predict(typed, load_predictor("pcawg-catalogue"), PredictOptions(neighbours=0, exposures=False))
    assert "events_not_read" not in prediction_table(typed).columns
