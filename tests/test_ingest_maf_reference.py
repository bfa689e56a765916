"""A MAF ingested with a reference: full context (SBS96, ID83) and the MAF's own per-mutation columns
(gene, consequence, read counts) on every token, as without a reference."""

from __future__ import annotations

import pytest
from conftest import alt_of

from nanog1.genomics.cohort import read_cohort
from nanog1.genomics.ingest import ingest
from nanog1.genomics.tokens import token_table
from nanog1.genomics.variants import filter_counts

HEAD = (
    "Hugo_Symbol\tVariant_Classification\tChromosome\tStart_Position\tReference_Allele\t"
    "Tumor_Seq_Allele1\tTumor_Seq_Allele2\tTumor_Sample_Barcode\tt_alt_count\n"
)


@pytest.fixture(scope="module")
def genome(two_contig_genome):
    return two_contig_genome


def maf_rows(seqs: dict[str, str]) -> list[tuple]:
    """(gene, consequence, chrom, start, ref, alt, sample, alt count): SNVs, a DNP, a deletion and
    an insertion."""
    rows = []
    for i, pos in enumerate(range(1_000, 9_000, 997)):
        chrom = "1" if i % 2 else "2"
        base = seqs[chrom][pos - 1]
        rows.append((f"G{i}", "Missense_Mutation", chrom, pos, base, alt_of(base), "T1", i + 3))
    dnp = seqs["1"][11_999:12_001]
    rows.append(("DNPG", "Nonsense_Mutation", "1", 12_000, dnp, alt_of(dnp[0]) + alt_of(dnp[1]), "T1", 40))
    rows.append(("DELG", "Frame_Shift_Del", "2", 13_000, seqs["2"][12_999], "-", "T1", 41))
    rows.append(("INSG", "Frame_Shift_Ins", "2", 14_000, "-", "T", "T1", 42))
    return rows


def write_maf(path, rows) -> None:
    body = "".join(f"{g}\t{c}\t{ch}\t{p}\t{r}\t{r}\t{a}\t{s}\t{n}\n" for g, c, ch, p, r, a, s, n in rows)
    path.write_text(HEAD + body)


def test_maf_gene_and_consequence_reach_the_tokens_with_a_reference(genome, tmp_path):
    fasta, seqs = genome
    rows = maf_rows(seqs)
    write_maf(tmp_path / "t.maf", rows)
    ingest([tmp_path / "t.maf"], fasta, None, tmp_path / "c.h5ad")
    adata = read_cohort(tmp_path / "c.h5ad")
    assert adata.uns["nanog1"]["channel_sets"]["SBS96"] == "exact"
    tokens = token_table(adata, "T1")
    assert len(tokens) == len(rows)
    # Deletions are anchored one base before Start_Position: match tokens to rows by gene instead.
    want = {g: (c, float(n), ch) for g, c, ch, _, _, _, _, n in rows}
    columns = (tokens[k] for k in ("gene", "consequence", "t_alt_count", "chrom"))
    got = {g: (c, float(n), ch) for g, c, n, ch in zip(*columns, strict=True)}
    assert got == want
    sets = dict(zip(tokens["gene"], tokens["channel_set"], strict=True))
    assert sets["DNPG"] == "DBS78" and sets["DELG"] == sets["INSG"] == "ID83" and sets["G0"] == "SBS96"
    burden = adata.obs.loc["T1", ["burden_SBS96", "burden_DBS78", "burden_ID83"]].tolist()
    assert burden == [len(rows) - 3, 1, 2]


def test_maf_filter_values_behind_non_pass_are_counted_with_a_reference(genome, tmp_path):
    """QA #31: a MAF's FILTER column (MC3, GDC) names the values behind `non_pass` on the reference path too
    (it did without a reference only): ingest's notes and uns['nanog1']['filter_dropped']."""
    fasta, seqs = genome
    rows = maf_rows(seqs)
    flags = ["PASS", "wga", "oxog", "wga", "PASS", "wga;oxog"] + ["PASS"] * (len(rows) - 6)
    head = HEAD.rstrip("\n") + "\tFILTER\n"
    body = "".join(f"{g}\t{c}\t{ch}\t{p}\t{r}\t{r}\t{a}\t{s}\t{n}\t{f}\n"
                   for (g, c, ch, p, r, a, s, n), f in zip(rows, flags, strict=True))
    (tmp_path / "t.maf").write_text(head + body)
    report = ingest([tmp_path / "t.maf"], fasta, None, tmp_path / "c.h5ad")
    assert report.skips["non_pass"] == 4
    assert "t.maf: non_pass 4 (FILTER wga 2, oxog 1, wga;oxog 1)" in report.notes, report.notes
    dropped = read_cohort(tmp_path / "c.h5ad").uns["nanog1"]["filter_dropped"]
    assert filter_counts(dropped) == {"wga": 2, "oxog": 1, "wga;oxog": 1}
