"""Gene tokens for VCFs from a user's annotation (BED, GTF, GFF3), by interval overlap; no reference."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nanog1.genomics.cohort import read_cohort
from nanog1.genomics.genes import GeneIndex, read_gene_intervals
from nanog1.genomics.ingest import IngestOptions, ingest
from nanog1.genomics.tokens import token_table

VCF = """##fileformat=VCFv4.2
##contig=<ID=chr1,length=1000000>
##contig=<ID=chr2,length=1000000>
#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO
chr1\t150\t.\tC\tT\t.\tPASS\t.
chr1\t1500\t.\tG\tA\t.\tPASS\t.
chr1\t2600\t.\tA\tAT\t.\tPASS\t.
chr1\t9000\t.\tT\tG\t.\tPASS\t.
chr2\t100\t.\tCA\tC\t.\tPASS\t.
"""


def test_nested_and_overlapping_genes():
    intervals = pd.DataFrame(
        {
            "contig": ["1", "1", "1"],
            "start": [0, 100, 1000],
            "end": [5000, 200, 1200],
            "name": ["BIG", "IN", "C"],
        }
    )
    index = GeneIndex(intervals)
    got = index.lookup(
        np.array(["chr1"] * 6 + ["2"], dtype=object), np.array([1, 150, 300, 1100, 1300, 6000, 5])
    )
    # 150 lies in IN (latest start); 300 and 1300 only in BIG, which starts earlier; 6000 in none
    assert list(got) == ["BIG", "IN", "BIG", "C", "BIG", "", ""]


@pytest.mark.parametrize("kind", ["bed", "gtf", "gff3"])
def test_vcf_tokens_get_genes_without_reference(tmp_path, kind):
    (tmp_path / "S1.vcf").write_text(VCF)
    genes = [("chr1", 100, 1000, "GENEA"), ("chr1", 2000, 3000, "GENEB"), ("chr2", 50, 500, "GENEC")]
    path = tmp_path / f"genes.{kind}"
    if kind == "bed":
        path.write_text("".join(f"{c}\t{s}\t{e}\t{n}\n" for c, s, e, n in genes))
    elif kind == "gtf":
        path.write_text(
            "".join(
                f'{c}\tsrc\tgene\t{s + 1}\t{e}\t.\t+\t.\tgene_id "ENSG{i}"; gene_name "{n}";\n'
                f'{c}\tsrc\texon\t{s + 1}\t{e}\t.\t+\t.\tgene_id "ENSG{i}"; gene_name "WRONG";\n'
                for i, (c, s, e, n) in enumerate(genes)
            )
        )
    else:
        path.write_text(
            "##gff-version 3\n"
            + "".join(
                f"{c}\tsrc\tgene\t{s + 1}\t{e}\t.\t+\t.\tID=gene{i};Name={n}\n"
                for i, (c, s, e, n) in enumerate(genes)
            )
        )
    assert list(read_gene_intervals(path)["name"]) == ["GENEA", "GENEB", "GENEC"]
    ingest([tmp_path / "S1.vcf"], None, None, tmp_path / "c.h5ad", IngestOptions(genes=str(path)))
    tokens = token_table(read_cohort(tmp_path / "c.h5ad"), "S1")
    by_pos = dict(zip(zip(tokens["chrom"], tokens["pos"], strict=True), tokens["gene"], strict=True))
    assert by_pos == {
        ("1", 150): "GENEA",
        ("1", 1500): "",
        ("1", 2600): "GENEB",
        ("1", 9000): "",
        ("2", 100): "GENEC",
    }
    assert set(tokens["consequence"]) == {""}
    assert list(tokens["channel"]) == ["C>T", "C>T", "1:Ins:T", "T>G", "1:Del:T"]  # CA>C deletes an A
