"""The pipeline's check_inputs rule checks the config's reference FASTA as `nanog1 ingest --check-only
--reference` does (QA #31: the rule ran the check without the reference the ingest rule gets, so a VCF
called on another genome build passed the check and was refused only by each ingest job)."""

from __future__ import annotations

from pathlib import Path

import yaml

from nanog1.genomics.build import GRCH38
from nanog1.genomics.synthetic import GenomeSpec, make_genome
from nanog1.pipeline import run_pipeline


def _grch38_vcf(path: Path, seq: str) -> None:
    """A sites VCF whose ##contig lines give GRCh38's lengths, its records SNVs on contig 1 whose REF is
    `seq`'s base there (so only the header's build is wrong for a 20 kb FASTA)."""
    head = ["##fileformat=VCFv4.2", *(f"##contig=<ID={c},length={n}>" for c, n in GRCH38.items()),
            "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"]
    rows = [f"1\t{p}\t.\t{seq[p - 1]}\t{'A' if seq[p - 1] != 'A' else 'C'}\t.\tPASS\t."
            for p in range(1000, 18_000, 500)]
    path.write_text("\n".join(head + rows) + "\n")


def test_a_vcf_of_another_build_stops_the_pipeline_at_check_inputs(tmp_path: Path):
    fasta = tmp_path / "g.fa"
    seq = make_genome(fasta, GenomeSpec(n_contigs=1, length=20_000, seed=3))["1"]
    _grch38_vcf(tmp_path / "S1.vcf", seq)
    config = {
        "name": "build",
        "outdir": "results",
        "input": {"mode": "files", "files": [str(tmp_path / "S1.vcf")], "reference": str(fasta)},
        "signatures": {"enabled": False},
        "report": {"enabled": False},
    }
    (tmp_path / "build.yaml").write_text(yaml.safe_dump(config))
    code = run_pipeline(tmp_path / "build.yaml", cores=1, until="merge", workdir=tmp_path, quiet_table=True)
    assert code != 0
    out = tmp_path / "results"
    said = " ".join((out / "logs" / "check_inputs.log").read_text().split())
    assert (f"S1.vcf: contig 1 is 248,956,422 bp in the VCF header (GRCh38) but 20,000 bp in the reference "
            f"{fasta}: the calls were made on another genome build") in said, said
    assert not (out / "parts").exists()  # no ingest job ran
