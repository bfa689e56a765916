"""MAFs as GDC, MC3, Firehose (Oncotator) and cBioPortal write them, ingested without a reference.

Each file is written with its producer's header lines, column order and spelling conventions, and
holds the same handful of mutations, so the expected counts are known by hand.
"""

from __future__ import annotations

import gzip
import os
import re
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from nanog1.cli import app
from nanog1.genomics.channels import set_slice
from nanog1.genomics.cohort import read_cohort
from nanog1.genomics.ingest import IngestOptions, ingest
from nanog1.genomics.maf import read_maf
from nanog1.genomics.tokens import token_table
from nanog1.genomics.variants import InputError, filter_counts

# (gene, consequence, chrom, start, type, ref, allele1, allele2, sample, filter, context, alt count)
# Chromosomes are written as GDC spells them ('chr1'); each producer re-spells them.
ROWS = [
    ("TP53", "Missense_Mutation", "chr17", 7577120, "SNP", "G", "G", "A", "T1", "PASS", "TTTTAGCTTTT", 12),
    ("KRAS", "Missense_Mutation", "chr12", 25398284, "SNP", "A", "A", "C", "T1", "PASS", "GGGGCACGGGG", 30),
    ("BRAF", "Missense_Mutation", "chr7", 140453135, "DNP", "AC", "AC", "GT", "T1", "PASS", "CCCCACACCCC", 7),
    ("EGFR", "In_Frame_Del", "chr7", 55242465, "DEL", "CC", "CC", "-", "T1", "PASS", "AAAACCTAAAA", 9),
    ("PTEN", "Frame_Shift_Ins", "chr10", 89692905, "INS", "-", "-", "A", "T1", "PASS", "GGGGGTCCCCC", 5),
    ("ATRX", "Missense_Mutation", "chrX", 76937963, "SNP", "C", "C", "T", "T1", "PASS", "GGGGACGTTTT", 8),
    (
        "APC",
        "Nonsense_Mutation",
        "chr5",
        112175639,
        "TNP",
        "CAG",
        "CAG",
        "TTC",
        "T1",
        "PASS",
        "AAACAGAAAAA",
        6,
    ),
    ("MUC16", "Silent", "chr19", 9057000, "SNP", "T", "T", "C", "T1", "wga,oxog", "GGGGATGCCCC", 3),
    ("TP53", "Missense_Mutation", "chr17", 7577120, "SNP", "G", "G", "A", "T1", "PASS", "TTTTAGCTTTT", 12),
    ("PIK3CA", "Missense_Mutation", "chr3", 178936091, "SNP", "G", "A", "G", "T2", "PASS", "CCCCTGACCCC", 20),
    ("NRAS", "Frame_Shift_Del", "chr1", 115256529, "DEL", "TG", "TG", "A", "T2", "PASS", "CCCCTTGCCCC", 4),
]
GDC_COLUMNS = [
    "Hugo_Symbol",
    "Entrez_Gene_Id",
    "Center",
    "NCBI_Build",
    "Chromosome",
    "Start_Position",
    "End_Position",
    "Strand",
    "Variant_Classification",
    "Variant_Type",
    "Reference_Allele",
    "Tumor_Seq_Allele1",
    "Tumor_Seq_Allele2",
    "dbSNP_RS",
    "Tumor_Sample_Barcode",
    "Matched_Norm_Sample_Barcode",
    "t_depth",
    "t_ref_count",
    "t_alt_count",
    "n_depth",
    "CONTEXT",
    "FILTER",
]


def _fields(row: tuple, chrom: str) -> dict:
    gene, cons, _, start, vtype, ref, a1, a2, sample, flt, ctx, alt = row
    end = start + max(len(ref), 1) - 1 if ref != "-" else start + 1
    return {
        "Hugo_Symbol": gene,
        "Entrez_Gene_Id": "0",
        "Center": "BI",
        "NCBI_Build": "GRCh37",
        "Chromosome": chrom,
        "Start_Position": str(start),
        "End_Position": str(end),
        "Strand": "+",
        "Variant_Classification": cons,
        "Variant_Type": vtype,
        "Reference_Allele": ref,
        "Tumor_Seq_Allele1": a1,
        "Tumor_Seq_Allele2": a2,
        "dbSNP_RS": "novel",
        "Tumor_Sample_Barcode": sample,
        "Matched_Norm_Sample_Barcode": sample + "-N",
        "t_depth": str(alt + 40),
        "t_ref_count": "40",
        "t_alt_count": str(alt),
        "n_depth": "50",
        "CONTEXT": ctx,
        "FILTER": flt,
        "ref_context": ctx.lower()[:5] + ctx + ctx.lower()[:5],
    }


def _write(path: Path, header: list[str], columns: list[str], rows: list[dict], rename=None) -> Path:
    rename = rename or {}
    lines = [*header, "\t".join(rename.get(c, c) for c in columns)]
    lines += ["\t".join(r[c] for c in columns) for r in rows]
    text = "\n".join(lines) + "\n"
    if path.name.endswith(".gz"):
        with gzip.open(path, "wt") as f:
            f.write(text)
    else:
        path.write_text(text)
    return path


def gdc(path: Path) -> Path:
    """GDC: '#version gdc-1.0.0' lines, chr-prefixed contigs, CONTEXT and FILTER."""
    rows = [_fields(r, r[2]) for r in ROWS]
    return _write(
        path,
        ["#version gdc-1.0.0", "#filedate 20190101", "#annotation.spec gdc-1.0.1-public"],
        GDC_COLUMNS,
        rows,
    )


def mc3(path: Path) -> Path:
    """MC3: no header lines, bare contigs, multi-valued FILTER ('wga,oxog')."""
    rows = [_fields(r, r[2][3:]) for r in ROWS]
    return _write(path, [], GDC_COLUMNS, rows)


def firehose(path: Path) -> Path:
    """Firehose/Oncotator: '#version 2.4', Start_position spelling, X/Y as 23/24, ref_context, no FILTER."""
    chrom = lambda c: {"X": "23", "Y": "24"}.get(c[3:], c[3:])  # noqa: E731
    rows = [_fields(r, chrom(r[2])) for r in ROWS if r[9] == "PASS"]
    cols = [c for c in GDC_COLUMNS if c not in ("CONTEXT", "FILTER", "n_depth")] + ["ref_context"]
    return _write(
        path,
        ["#version 2.4"],
        cols,
        rows,
        {"Start_Position": "Start_position", "End_Position": "End_position"},
    )


def cbioportal(path: Path) -> Path:
    """cBioPortal data_mutations.txt: '#version 2.4', no FILTER, no context; found by its header."""
    rows = [_fields(r, r[2][3:]) for r in ROWS if r[9] == "PASS"]
    cols = [c for c in GDC_COLUMNS if c not in ("CONTEXT", "FILTER", "t_depth", "n_depth")]
    return _write(path, ["#version 2.4"], cols, rows)


def _label(adata, label: str) -> np.ndarray:
    return np.asarray(adata[:, label].X).ravel()


def _check_common(adata) -> None:
    """What every producer's file gives (the duplicate and the non-PASS row are absent or skipped)."""
    assert list(adata.obs_names) == ["T1", "T2"]
    # T1: G>A and C>T are C>T; A>C is T>G. T2: Allele2 == REF, so the alternate allele is Allele1 (A).
    np.testing.assert_array_equal(_label(adata, "C>T"), [2, 1])
    np.testing.assert_array_equal(_label(adata, "T>G"), [1, 0])
    np.testing.assert_array_equal(_label(adata, "AC>GT"), [1, 0])
    np.testing.assert_array_equal(_label(adata, "2:Del"), [1, 0])
    np.testing.assert_array_equal(_label(adata, "1:Ins:T"), [1, 0])
    x = np.asarray(adata.X)
    assert x[:, set_slice("ID12")].sum() == 2 and x[:, set_slice("DBS78")].sum() == 1
    status = adata.uns["nanog1"]["channel_sets"]
    assert (
        status["ID83"] == "not_computable" and status["DBS78"] == status["SBS6"] == status["ID12"] == "exact"
    )
    acc = adata.uns["nanog1"]["accounting"]
    table = acc.drop(columns=["file"]).groupby("sample").sum()
    assert (table["read"] == table["counted"] + table["skipped"]).all()
    assert (table["skipped"] == table.drop(columns=["read", "counted", "skipped"]).sum(axis=1)).all()
    assert table.loc["T1", "mnv"] == 1 and table.loc["T2", "complex_indel"] == 1


@pytest.mark.parametrize(
    "writer,name",
    [(gdc, "g.maf.gz"), (mc3, "mc3.maf"), (firehose, "fh.maf.txt"), (cbioportal, "data_mutations.txt")],
)
def test_each_producer_without_reference(tmp_path, writer, name):
    path = writer(tmp_path / name)
    report = ingest([path], None, None, tmp_path / "c.h5ad")
    adata = read_cohort(tmp_path / "c.h5ad")
    _check_common(adata)
    records = len(ROWS) if writer in (gdc, mc3) else len([r for r in ROWS if r[9] == "PASS"])
    acc = adata.uns["nanog1"]["accounting"]
    assert report.records == records == int(acc["read"].sum())
    assert report.files[0]["counted"] == int(acc["counted"].sum()) == records - sum(report.skips.values())
    if writer in (gdc, mc3):  # FILTER: the wga,oxog row is dropped and counted by its value
        assert filter_counts(adata.uns["nanog1"]["filter_dropped"]) == {"wga,oxog": 1}
        assert report.skips["non_pass"] == 1
    assert report.skips["duplicate"] == 1
    # chrX is spelled X, chrX and 23 by the producers; the token names it X in every case.
    tokens = token_table(adata, "T1")
    assert "X" in set(tokens["chrom"]) and not any(c.startswith("chr") or c == "23" for c in tokens["chrom"])
    with_context = writer in (gdc, mc3, firehose)
    sbs96 = adata.uns["nanog1"]["channel_sets"]["SBS96"]
    assert sbs96 == ("exact" if with_context else "not_computable")
    row = tokens[tokens["gene"] == "KRAS"].iloc[0]
    channel = "G[T>G]G" if with_context else "T>G"  # A>C in GGGGCACGGGG, pyrimidine strand
    assert (row["channel"], row["consequence"], row["t_alt_count"]) == (channel, "Missense_Mutation", 30.0)


def test_context_column_gives_sbs96(tmp_path):
    """CONTEXT's centre is the REF base; G>A in TTTTAGCTTTT is G[C>T]T on the pyrimidine strand."""
    ingest([gdc(tmp_path / "g.maf")], None, None, tmp_path / "c.h5ad")
    adata = read_cohort(tmp_path / "c.h5ad")
    assert _label(adata, "G[C>T]T")[0] == 1 and _label(adata, "G[T>G]G")[0] == 1
    assert _label(adata, "A[C>T]G")[0] == 1  # chrX C>T in GGGGACGTTTT
    assert _label(adata, "T[C>T]A")[1] == 1  # T2: G>A (Allele1) in CCCCTGACCCC
    x = np.asarray(adata.X)
    np.testing.assert_array_equal(x[:, set_slice("SBS96")].sum(1), x[:, set_slice("SBS6")].sum(1))
    motifs = set(token_table(adata, "T1")["motif"])
    assert "AGCTA" in motifs  # TAGCT around TP53's G, on the pyrimidine strand


def test_cohort_file_gets_the_umask_permissions(tmp_path):
    """Written through a private temporary file, the cohort still ends group-readable (umask 022)."""
    old = os.umask(0o022)
    try:
        ingest([mc3(tmp_path / "m.maf")], None, None, tmp_path / "c.h5ad")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "c.h5ad").stat().st_mode) == 0o644


def test_filter_all_keeps_non_pass(tmp_path):
    ingest([mc3(tmp_path / "m.maf")], None, None, tmp_path / "c.h5ad", IngestOptions(filter="all"))
    adata = read_cohort(tmp_path / "c.h5ad")
    assert _label(adata, "T>C")[0] == 1 and "non_pass" not in adata.uns["nanog1"]["skips"]


def test_allele1_rule_and_chrom_spelling(tmp_path):
    table = read_maf(firehose(tmp_path / "f.maf"))
    t2 = table.sample == "T2"
    assert list(table.alt[t2]) == ["A", "A"]  # PIK3CA: Allele2 = REF, so Allele1; NRAS: TG>A as written
    assert "X" in set(table.chrom) and "23" not in set(table.chrom)
    # GDC deletions start at the first deleted base: the anchor is the base before.
    gdc_table = read_maf(gdc(tmp_path / "g.maf"))
    assert gdc_table.pos[list(gdc_table.ref).index("CC")] == 55242464


def test_a_maf_without_allele2_whose_allele1_is_the_reference_is_named_at_its_header(tmp_path):
    """GDC writes the reference in Tumor_Seq_Allele1: with Tumor_Seq_Allele2 cut off, the alternate allele
    is gone. The reader says so at the header line, not a loss refusal naming 'ref_equals_alt'."""
    frame = pd.read_csv(mc3(tmp_path / "m.maf"), sep="\t", dtype=str)
    frame.drop(columns="Tumor_Seq_Allele2").to_csv(tmp_path / "cut.maf", sep="\t", index=False)
    with pytest.raises(InputError, match=r"cut\.maf:1: no Tumor_Seq_Allele2 column, and Tumor_Seq_Allele1 "
                                         r"equals Reference_Allele on 10 of 11 calls"):
        read_maf(tmp_path / "cut.maf")
    # an Allele1-only MAF whose Allele1 holds the alternate allele still reads
    alt = frame.assign(Tumor_Seq_Allele1=frame["Tumor_Seq_Allele2"]).drop(columns="Tumor_Seq_Allele2")
    alt.to_csv(tmp_path / "one.maf", sep="\t", index=False)
    assert list(read_maf(tmp_path / "one.maf").alt) == list(frame["Tumor_Seq_Allele2"])


def test_germline_and_loh_rows_of_a_cbioportal_maf_are_skipped_and_counted(tmp_path):
    """cBioPortal's Mutation_Status: Germline and LOH rows are not somatic calls; they are skipped and
    counted as not_somatic, the Somatic (and unstated) rows read as before."""
    frame = pd.read_csv(cbioportal(tmp_path / "c.maf"), sep="\t", comment="#", dtype=str)
    status = ["Somatic", "GERMLINE", "Somatic", "LOH", "", *["Somatic"] * 5]
    assert len(status) == len(frame)
    frame.assign(Mutation_Status=status).to_csv(tmp_path / "s.maf", sep="\t", index=False)
    table = read_maf(tmp_path / "s.maf")
    assert table.skips["not_somatic"] == 2 and len(table.pos) == len(frame) - 2
    somatic = [i for i, s in enumerate(status) if s.lower() not in ("germline", "loh")]
    assert list(table.pos) == list(read_maf(tmp_path / "c.maf").pos[somatic])


def test_a_byte_order_mark_does_not_hide_the_first_column(tmp_path):
    """A MAF saved by a spreadsheet starts with a UTF-8 BOM: its first column (Hugo_Symbol here) is still
    found, so genes are read as without it."""
    plain = mc3(tmp_path / "m.maf")
    (tmp_path / "bom.maf").write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())
    want, got = read_maf(plain), read_maf(tmp_path / "bom.maf")
    assert list(got.annotations["gene"]) == list(want.annotations["gene"])
    assert "TP53" in set(got.annotations["gene"])


@pytest.mark.parametrize("gzipped", [False, True])
def test_a_latin1_byte_in_a_read_column_is_named_by_line_column_and_byte(tmp_path, gzipped):
    """A MAF saved as Latin-1 (a spreadsheet's 'Müller' in a gene or centre field) is one error naming the
    line, the column and the byte, with how to convert it (pyarrow's 'CSV conversion error to string:
    invalid UTF8 data', no line, before)."""
    text = mc3(tmp_path / "m.maf").read_text()
    lines = text.splitlines(keepends=True)
    assert lines[2].startswith("KRAS\t")  # header on line 1, KRAS on line 3
    data = "".join(lines).encode("utf-8").replace(b"KRAS\t", "KRASÜ\t".encode("latin-1"), 1)
    path = tmp_path / ("latin.maf.gz" if gzipped else "latin.maf")
    path.write_bytes(gzip.compress(data) if gzipped else data)
    with pytest.raises(InputError, match=r"latin\.maf(\.gz)?:3: not UTF-8 text: byte 0xdc in Hugo_Symbol "
                                         r"\('KRAS\ufffd'\); save the file as UTF-8"):
        read_maf(path)


@pytest.mark.parametrize(("name", "sep", "quoting", "needle"), [
    ("r.maf", "\t", 1, r"r\.maf:1: the column names are in quotes \(\"Hugo_Symbol\"\), as R's write\.table"),
    ("export.csv", ",", 0, r"export\.csv:1: comma-separated: a MAF is tab-separated"),
])
def test_a_maf_written_quoted_or_with_commas_is_told_so(tmp_path, name, sep, quoting, needle):
    """R's write.table quotes every name and value by default, a spreadsheet may save commas: the header
    holds the MAF's columns, so the error says how the file was written (it said 'MAF header lacks
    columns [Tumor_Sample_Barcode, ...]', all of which were there; a .csv was read as a catalogue matrix)."""
    frame = pd.read_csv(mc3(tmp_path / "m.maf"), sep="\t", dtype=str)
    frame.to_csv(tmp_path / name, sep=sep, quoting=quoting, index=False)
    result = CliRunner().invoke(app, ["ingest", str(tmp_path / name), "-o", str(tmp_path / "c.h5ad"), "-q"])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and re.match(rf"error: .*{needle}", lines[0]), result.stderr
    frame.to_csv(tmp_path / "plain.maf", sep="\t", index=False)  # the same table as a MAF reads
    assert len(read_maf(tmp_path / "plain.maf").pos) == len(read_maf(tmp_path / "m.maf").pos)


@pytest.mark.parametrize(("column", "value", "needle"), [
    ("Start_Position", "12,345", r":4: Start_Position '12,345' is not a whole number"),
    ("Start_Position", "NA", r":4: Start_Position is empty \(or NA\)"),
    ("Tumor_Sample_Barcode", "", r":4: Tumor_Sample_Barcode is empty: every record needs its tumour"),
])
def test_an_unplaceable_record_names_its_field_and_value(tmp_path, column, value, needle):
    """A record that cannot be placed names the field and the value as written (it said
    'Start_Position/Chromosome/Tumor_Sample_Barcode is not usable', leaving the user to guess which)."""
    frame = pd.read_csv(mc3(tmp_path / "m.maf"), sep="\t", dtype=str)
    frame.loc[2, column] = value  # data row 3: line 4 under the header
    frame.to_csv(tmp_path / "bad.maf", sep="\t", index=False)
    with pytest.raises(InputError, match=rf"bad\.maf{needle}"):
        read_maf(tmp_path / "bad.maf")


def test_several_tumours_of_one_patient_stay_apart(tmp_path):
    rows = [_fields(r, r[2][3:]) for r in ROWS[:2]]
    rows[1]["Tumor_Sample_Barcode"] = "TCGA-AB-1234-06A"  # the metastasis of the same patient
    rows[0]["Tumor_Sample_Barcode"] = "TCGA-AB-1234-01A"
    ingest([_write(tmp_path / "p.maf", [], GDC_COLUMNS, rows)], None, None, tmp_path / "c.h5ad")
    assert list(read_cohort(tmp_path / "c.h5ad").obs_names) == ["TCGA-AB-1234-01A", "TCGA-AB-1234-06A"]


def test_cli_without_reference_names_the_sets(tmp_path):
    path = mc3(tmp_path / "m.maf")
    result = CliRunner().invoke(app, ["ingest", str(path), "-o", str(tmp_path / "c.h5ad"), "-q"])
    assert result.exit_code == 0, result.output
    assert "channel sets exact: SBS96, DBS78, SBS6, ID12" in result.output
    assert "not computable (no reference given): ID83" in result.output


def test_cli_protein_change_count_is_a_note_not_a_sheet_problem(tmp_path):
    """Without a sample sheet, the count of calls with a protein change is not printed as one."""
    frame = pd.read_csv(mc3(tmp_path / "m.maf"), sep="\t", dtype=str).assign(HGVSp_Short="p.G12D")
    frame.to_csv(tmp_path / "p.maf", sep="\t", index=False)
    args = ["ingest", str(tmp_path / "p.maf"), "-o", str(tmp_path / "c.h5ad"), "-q"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "note: protein change:" in result.output and "sample sheet" not in result.output, result.output


def test_models_mask_what_was_not_computable(tmp_path):
    """The catalogue view pads SBS96 and ID83 of a reference-free cohort and uses the rest; a cohort that
    measured nothing is refused in one line."""
    from nanog1.errors import UserError
    from nanog1.schema import channel_padding

    ingest([cbioportal(tmp_path / "data_mutations.txt")], None, None, tmp_path / "c.h5ad")
    adata = read_cohort(tmp_path / "c.h5ad")
    padding = channel_padding(adata)
    for name, padded in (("SBS96", True), ("ID83", True), ("DBS78", False), ("SBS6", False), ("ID12", False)):
        assert padding[set_slice(name)].all() == padded and padding[set_slice(name)].any() == padded
    adata.uns["nanog1"]["channel_sets_present"] = []
    adata.uns["nanog1"]["channel_sets"] = {k: "not_computable" for k in adata.uns["nanog1"]["channel_sets"]}
    with pytest.raises(UserError, match="measured none of the channel sets"):
        channel_padding(adata)


def test_cli_names_why_each_set_is_not_computable(tmp_path):
    """An SBS96 catalogue matrix alone lacks DBS78 and the indel sets because it holds none of them, not for
    want of a reference (which would not change it); a MAF without a reference lacks ID83 for that reason."""
    from nanog1.genomics.channels import CHANNEL_SETS

    labels = list(CHANNEL_SETS["SBS96"])
    matrix = pd.DataFrame({"MutationType": labels, "A": range(len(labels))})
    matrix.to_csv(tmp_path / "a.SBS96.all", sep="\t", index=False)
    result = CliRunner().invoke(app, ["ingest", str(tmp_path / "a.SBS96.all"), "-o", str(tmp_path / "c.h5ad"),
                                      "-q"])
    assert result.exit_code == 0, result.output
    line = "channel sets not computable (not in the inputs): DBS78, ID83, ID12"
    assert line in result.output, result.output
    assert "no reference given" not in result.output
    result = CliRunner().invoke(app, ["ingest", str(mc3(tmp_path / "m.maf")), "-o", str(tmp_path / "m.h5ad"),
                                      "-q"])
    assert "channel sets not computable (no reference given): ID83" in result.output, result.output
    assert "not in the inputs" not in result.output
