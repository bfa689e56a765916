"""Indel dropout for the event view (issue 31): an SNV-only input (a Strelka2 SNV VCF alone) is read by an
event model as a tumour with no indels unless the model has seen such inputs and can tell 'indels not
measured' from 'no indels'. `without_indels` gives a cohort as its SNV-only files would; `Collate` with
`indel_dropout` makes such draws in training; `unmeasured_indicator` lets the CLS read which sets were masked;
`nanog1 train --indel-dropout` trains it end to end."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from nanog1.cli import app
from nanog1.encoder.data import (
    Collate,
    cohort_arrays,
    indel_channels,
    indel_events,
    with_event_vocab,
    with_gene_bag,
    without_indels,
)
from nanog1.encoder.model import MutationEncoder, MutationEncoderConfig
from nanog1.genomics.event_vocab import build_vocab
from nanog1.genomics.ingest import IngestOptions, ingest

COLS = ["Tumor_Sample_Barcode", "Hugo_Symbol", "Chromosome", "Start_Position", "End_Position",
        "Variant_Classification", "Variant_Type", "Reference_Allele", "Tumor_Seq_Allele2",
        "Cohort"]  # fmt: skip


def _rows(name: str, cancer: str, rng, n_snv: int, n_del: int) -> list[tuple]:
    """`n_snv` missense SNVs in TP53/KRAS, `n_del` one-base frameshift deletions in APC (MAF '-' allele)."""
    rows = []
    for j in range(n_snv):
        pos = 1_000_000 + 10_000 * j + int(rng.integers(0, 5000))
        rows.append((name, ["TP53", "KRAS"][j % 2], str(1 + j % 20), pos, pos, "Missense_Mutation", "SNP",
                     "C", "T" if cancer == "AAA" else "A", cancer))  # fmt: skip
    for j in range(n_del):
        pos = 112_170_000 + 1000 * j
        rows.append((name, "APC", "5", pos, pos, "Frame_Shift_Del", "DEL", "A", "-", cancer))
    return rows


def _maf(path, snv_only: bool = False, n_per_type: int = 1) -> None:
    rng = np.random.default_rng(0)
    rows = []
    for cancer in ("AAA", "BBB"):
        for t in range(n_per_type):
            rows += _rows(f"{cancer}{t}", cancer, rng, 6, 0 if snv_only else 2 + (cancer == "AAA") * 2)
    rows += _rows("SNVONLY", "AAA", rng, 4, 0)  # a tumour with no indels at all
    pd.DataFrame(rows, columns=COLS).to_csv(path, sep="\t", index=False)


def _arrays(tmp_path, name="c", snv_only=False, vocab=None):
    _maf(tmp_path / f"{name}.maf", snv_only)
    ingest([tmp_path / f"{name}.maf"], None, None, tmp_path / f"{name}.h5ad", IngestOptions(filter="all"))
    arrays = cohort_arrays(ad.read_h5ad(tmp_path / f"{name}.h5ad"), min_class_size=1)
    vocab = vocab or build_vocab([arrays.tokens])
    arrays = with_event_vocab(arrays, vocab)
    scale = [1.0] * len(vocab.values["consequence"])
    return with_gene_bag(arrays, ["TP53", "KRAS", "APC"], consequence_scale=scale), vocab


def test_without_indels_gives_what_the_snv_only_file_gives(tmp_path):
    """AAA0 has 4 APC frameshift deletions: gone from its events, its ID12 counts 0 and marked unmeasured, APC
    out of its bag, its frameshift share 0; its event ids and bag equal those of the same tumour ingested from
    a MAF without the deletions. Tumours not chosen are untouched."""
    arrays, vocab = _arrays(tmp_path)
    snv_file, _ = _arrays(tmp_path, "snv", snv_only=True, vocab=vocab)
    row = arrays.sample_ids.index("AAA0")
    ids = np.asarray(indel_channels())
    assert arrays.counts[row, ids].sum() == 4 and indel_events(arrays).sum() == 4 + 2
    got = without_indels(arrays, [row])
    off = got.event_ids["offsets"]
    assert off[row + 1] - off[row] == 6 and not indel_events(got)[off[row]:off[row + 1]].any()
    assert indel_events(got).sum() == 2  # BBB0's deletions kept: not chosen
    assert got.counts[row, ids].sum() == 0 and got.row_padding[row, ids].all()
    others = [r for r in range(got.n) if r != row]  # as the cohort measured them (ID83: no reference)
    assert (got.row_padding[others] == arrays.channel_padding).all() and not arrays.channel_padding[ids].all()
    other = snv_file.sample_ids.index("AAA0")
    o_off = snv_file.event_ids["offsets"]
    for field in ("channel", "gene", "consequence", "chrom", "bin"):
        assert np.array_equal(got.event_ids[field][off[row]:off[row + 1]],
                              snv_file.event_ids[field][o_off[other]:o_off[other + 1]]), field
    assert np.allclose(got.gene_bag[row], snv_file.gene_bag[other])
    assert arrays.gene_bag[row, 2] == 1 and got.gene_bag[row, 2] == 0  # APC
    assert np.array_equal(got.gene_bag[row + 1:], arrays.gene_bag[row + 1:])


def test_collate_with_indel_dropout_drops_every_indel_of_a_dropped_draw_and_masks_the_sets(tmp_path):
    arrays, _ = _arrays(tmp_path)
    ids = torch.from_numpy(indel_channels())
    indel_ids = [3 + i for i, v in enumerate(arrays.event_vocab.values["channel"]) if v.startswith("ID12:")]
    rows = list(range(arrays.n))
    plain = Collate(arrays, "events", max_events=64, train=True)(rows)
    assert torch.isin(plain["events"]["channel"], torch.tensor(indel_ids)).any()
    assert "set_padding" not in plain
    dropped = Collate(arrays, "events", max_events=64, train=True, indel_dropout=1.0)(rows)
    assert not torch.isin(dropped["events"]["channel"], torch.tensor(indel_ids)).any()
    assert dropped["set_padding"][:, ids].all() and not dropped["set_padding"][:, ~ids].any()
    assert dropped["counts"][:, ids].sum() == 0
    assert torch.equal(dropped["gene_bag"], torch.from_numpy(without_indels(arrays).gene_bag))
    assert (~dropped["event_padding"]).sum() == (~plain["event_padding"]).sum() - 6  # the 6 deletions
    scored = Collate(arrays, "events", max_events=64, train=False, indel_dropout=1.0)(rows)  # never at test
    assert torch.isin(scored["events"]["channel"], torch.tensor(indel_ids)).any()


def test_the_indicator_tells_unmeasured_indels_from_zero_indels():
    """A tumour with no indel: its ID12/ID83 read as zero and its ID sets masked as unmeasured give the same
    catalogue summary, so a model without the indicator cannot tell them apart; with it (once trained, i.e.
    nonzero weights) it can. A model saved before it has no such parameter and reads what it did."""
    vocab = {"channel": ["SBS6:C>T"], "gene": ["TP53"], "consequence": ["Missense_Mutation"], "chrom": ["1"],
             "bin": ["1:0"], "vaf": []}  # fmt: skip
    kw = dict(view="events", event_vocab=vocab, hidden=8, layers=1, rank=2, heads=2, n_types=2, dropout=0.0)
    events = {k: torch.full((1, 3), 3 if vocab[k] else 1) for k in vocab}
    counts = torch.zeros(1, len(indel_channels()))
    counts[0, ~torch.from_numpy(indel_channels())] = 1.0
    unmeasured = torch.from_numpy(indel_channels())[None]
    torch.manual_seed(0)
    old = MutationEncoder(MutationEncoderConfig(**kw)).eval()
    assert old.unmeasured is None
    a = old(counts=counts, events=events, summary_mask=torch.zeros_like(unmeasured)).type_logits
    b = old(counts=counts, events=events, summary_mask=unmeasured).type_logits
    assert torch.allclose(a, b)
    model = MutationEncoder(MutationEncoderConfig(**kw, unmeasured_indicator=True)).eval()
    assert model.unmeasured.weight.abs().sum() == 0  # starts as the model without it
    torch.nn.init.normal_(model.unmeasured.weight)
    a = model(counts=counts, events=events, summary_mask=torch.zeros_like(unmeasured)).type_logits
    b = model(counts=counts, events=events, summary_mask=unmeasured).type_logits
    assert not torch.allclose(a, b)


@pytest.fixture()
def _no_env_store(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def test_train_with_indel_dropout_learns_the_indicator_and_says_so(tmp_path, monkeypatch, _no_env_store):
    from nanog1.encoder.loop import load_model
    from nanog1.encoder.predictor import _event_view_note

    monkeypatch.chdir(tmp_path)
    _maf(tmp_path / "t.maf", n_per_type=8)
    ingest([tmp_path / "t.maf"], None, None, tmp_path / "t.h5ad", IngestOptions(filter="all"))
    small = ["--view", "events", "--epochs", "2", "--hidden", "16", "--layers", "1", "--rank", "4", "--heads",
             "2", "--batch-size", "4", "--lr", "0.01"]  # fmt: skip
    res = CliRunner().invoke(app, ["train", str(tmp_path / "t.h5ad"), "--out", str(tmp_path / "run"), *small,
                                   "--indel-dropout", "0.5"])  # fmt: skip
    assert res.exit_code == 0, res.output
    model, saved = load_model(tmp_path / "run" / "model.pt")
    assert saved["encoder_config"]["unmeasured_indicator"] and saved["train_config"]["indel_dropout"] == 0.5
    assert model.unmeasured.weight.abs().sum() > 0  # trained on the dropped draws
    note = _event_view_note(saved, "m", np.array(["ID12"]))
    assert "reads that they were not measured" in note and "indel dropout 0.5" in note
    res = CliRunner().invoke(app, ["train", str(tmp_path / "t.h5ad"), "--out", str(tmp_path / "cat"),
                                   "--indel-dropout", "0.5"])  # the catalogue view: --set-dropout instead
    assert res.exit_code == 2 and "indel_dropout drops indel events: it needs --view events" in res.output
    assert "--indel-dropout" in CliRunner().invoke(app, ["train", "--help"]).output


def _declared(tmp_path, name: str, sets: dict[str, tuple[str, ...]], doublets: bool = False) -> ad.AnnData:
    """The `_maf` cohort (with an adjacent-pair doublet in each named tumour when `doublets`), each tumour
    of `sets` recorded as not measuring those sets (what `--not-measured` / a Strelka2 SNV file records)."""
    from nanog1.genomics.measured_sets import mark_measured
    from nanog1.schema import SET_NAMES, measured_sets_per_sample

    _maf(tmp_path / f"{name}.maf")
    if doublets:
        table = pd.read_csv(tmp_path / f"{name}.maf", sep="\t")
        pairs = [(t, "TP53", "17", 7_577_000, 7_577_001, "Missense_Mutation", "DNP", "CC", "TT", t[:3])
                 for t in sets]  # fmt: skip
        table = pd.concat([table, pd.DataFrame(pairs, columns=COLS)])
        table.to_csv(tmp_path / f"{name}.maf", sep="\t", index=False)
    ingest([tmp_path / f"{name}.maf"], None, None, tmp_path / f"{name}.h5ad", IngestOptions(filter="all"))
    adata = ad.read_h5ad(tmp_path / f"{name}.h5ad")
    measured = measured_sets_per_sample(adata).to_numpy(dtype=bool).copy()
    for tumour, names in sets.items():
        measured[list(adata.obs_names).index(tumour), [SET_NAMES.index(s) for s in names]] = False
    mark_measured(adata, measured)
    return adata


def _event_config(vocab, arrays) -> dict:
    return {"view": "events", "event_vocab": vocab.values, "gene_bag": ["TP53", "KRAS", "APC"],
            "consequence_shares": True, "consequence_scale": [1.0] * len(vocab.values["consequence"])}


def test_a_saved_event_model_reads_no_event_of_a_tumours_unmeasured_indels(tmp_path):
    """for_model (every saved model's scoring) with AAA0's indels recorded unmeasured: its 4 APC deletions are
    gone from its events, tokens, bag (APC) and consequence shares, exactly as the same tumour ingested from
    a MAF without them; its 6 SNVs are kept, and BBB0, which measured its indels, keeps its 2 deletions. A
    catalogue model's arrays are the cohort's own. Before, every event was read whatever the record said."""
    from nanog1.encoder.data import for_model, unmeasured_event_counts

    adata = _declared(tmp_path, "d", {"AAA0": ("ID83", "ID12")})
    plain = cohort_arrays(adata, min_class_size=1)
    vocab = build_vocab([plain.tokens])
    got = for_model(plain, _event_config(vocab, plain))
    snv_file, _ = _arrays(tmp_path, "snv", snv_only=True, vocab=vocab)
    row, other = got.sample_ids.index("AAA0"), snv_file.sample_ids.index("AAA0")
    off, o_off = got.event_ids["offsets"], snv_file.event_ids["offsets"]
    assert off[row + 1] - off[row] == 6 and not indel_events(got)[off[row]:off[row + 1]].any()
    for field in ("channel", "gene", "consequence", "chrom", "bin"):
        assert np.array_equal(got.event_ids[field][off[row]:off[row + 1]],
                              snv_file.event_ids[field][o_off[other]:o_off[other + 1]]), field
    assert np.array_equal(got.tokens["pos"][off[row]:off[row + 1]],
                          snv_file.tokens["pos"][o_off[other]:o_off[other + 1]])
    assert np.allclose(got.gene_bag[row], snv_file.gene_bag[other]) and got.gene_bag[row, 2] == 0  # APC
    bbb = got.sample_ids.index("BBB0")
    assert indel_events(got)[off[bbb]:off[bbb + 1]].sum() == 2 and got.gene_bag[bbb, 2] == 1
    assert got.counts[row, indel_channels()].sum() == 0 and got.counts[bbb, indel_channels()].sum() == 2
    assert unmeasured_event_counts(adata).tolist() == [4 if s == "AAA0" else 0 for s in adata.obs_names]
    assert for_model(plain, {"view": "catalogue"}) is plain  # a catalogue model: its arrays as they are


def test_declared_doublets_drop_doublet_events_only_and_a_kind_is_read_while_one_set_is_measured(tmp_path):
    """Doublets declared not measured for AAA0 and BBB0 (DBS78): their doublet events go, their SNVs and
    deletions stay, and SNVONLY (doublets measured) keeps everything. The rule is per kind of call: an
    SBS96 event of a tumour that measured SBS6 (a partial reference: SBS96 not exact for it) is kept; one
    of a tumour that measured neither is left out."""
    from nanog1.encoder.data import event_sets, events_not_measured, for_model
    from nanog1.genomics.channels import set_slice
    from nanog1.schema import SET_NAMES

    adata = _declared(tmp_path, "d", {"AAA0": ("DBS78",), "BBB0": ("DBS78",)}, doublets=True)
    plain = cohort_arrays(adata, min_class_size=1)
    vocab = build_vocab([plain.tokens])
    before = with_event_vocab(plain, vocab)
    got = for_model(plain, _event_config(vocab, plain))
    dbs = SET_NAMES.index("DBS78")

    def sets(arrays, r):
        off = arrays.event_ids["offsets"]
        return event_sets(arrays.tokens["channel"])[off[r]:off[r + 1]]

    for name in ("AAA0", "BBB0"):
        r = plain.sample_ids.index(name)
        old, new = sets(before, r), sets(got, r)
        assert (old == dbs).sum() == 1 and (new == dbs).sum() == 0, name
        assert sorted(new.tolist()) == sorted(old[old != dbs].tolist()), name  # SNVs and deletions kept
    r = plain.sample_ids.index("SNVONLY")
    assert sets(got, r).tolist() == sets(before, r).tolist()

    sbs96, sbs6 = SET_NAMES.index("SBS96"), SET_NAMES.index("SBS6")
    padding = np.zeros((2, len(indel_channels())), dtype=bool)
    padding[:, :96] = True  # SBS96 unmeasured for both tumours
    padding[1, set_slice("SBS6")] = True  # and SBS6 for the second
    drop = events_not_measured(np.array([0, 2, 4]), np.array([sbs96, sbs6, sbs96, sbs6]), padding)
    assert drop.tolist() == [False, False, True, True]
