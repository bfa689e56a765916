"""The pipeline holds the sample sheet to the same policy as `nanog1 ingest`: checked against every
input before any ingest job runs, and again at the merge; a sheet row without data never becomes a
labelled zero-mutation sample."""

from __future__ import annotations

from pathlib import Path

import yaml

from nanog1.genomics.cohort import read_cohort
from nanog1.genomics.synthetic import GenomeSpec, make_genome
from nanog1.pipeline import run_pipeline

HEADER = "##fileformat=VCFv4.2\n##contig=<ID=1,length=20000>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"


def _inputs(tmp_path: Path) -> tuple[Path, list[Path]]:
    seq = make_genome(tmp_path / "g.fa", GenomeSpec(n_contigs=1, length=20_000, seed=3))["1"]
    files = []
    for i, start in enumerate((1000, 1050)):
        lines = [
            f"1\t{p}\t.\t{seq[p - 1]}\t{'A' if seq[p - 1] != 'A' else 'C'}\t.\tPASS\t.\n"
            for p in range(start, 18_000, 500)
        ]
        path = tmp_path / f"S{i + 1}.vcf"
        path.write_text(HEADER + "".join(lines))
        files.append(path)
    return tmp_path / "g.fa", files


def _config(tmp_path: Path, fasta: Path, files: list[Path], sheet: Path, policy: str) -> Path:
    config = {
        "name": "sheet",
        "outdir": f"results/{policy}",
        "input": {
            "mode": "files",
            "files": [str(f) for f in files],
            "reference": str(fasta),
            "samples": str(sheet),
        },
        "merge": {"sheet_policy": policy},
        "signatures": {"enabled": False},
        "report": {"enabled": False},
    }
    path = tmp_path / f"{policy}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_sheet_rows_without_data_stop_the_pipeline_before_ingest(tmp_path: Path):
    fasta, files = _inputs(tmp_path)
    sheet = tmp_path / "sheet.tsv"
    sheet.write_text("sample\tcancer_type\nS1\tLung\nS2\tSkin\nS9\tLiver\n")
    code = run_pipeline(
        _config(tmp_path, fasta, files, sheet, "strict"),
        cores=1,
        until="merge",
        workdir=tmp_path,
        quiet_table=True,
    )
    assert code != 0
    out = tmp_path / "results" / "strict"
    assert "sample 'S9' has no input file" in (out / "logs" / "check_inputs.log").read_text()
    assert not (out / "parts").exists()
    code = run_pipeline(
        _config(tmp_path, fasta, files, sheet, "lenient"),
        cores=1,
        until="merge",
        workdir=tmp_path,
        quiet_table=True,
    )
    assert code == 0
    cohort = read_cohort(tmp_path / "results" / "lenient" / "work" / "cohort_merged.h5ad")
    assert list(cohort.obs_names) == ["S1", "S2"]
    assert list(cohort.obs["cancer_type"].astype(str)) == ["Lung", "Skin"]
    acc = cohort.uns["nanog1"]["accounting"]  # carried through the merge, file ids as in `inputs`
    assert list(acc["sample"]) == ["S1", "S2"] and (acc["read"] == acc["counted"] + acc["skipped"]).all()
    assert list(cohort.uns["nanog1"]["inputs"].loc[list(acc["file"]), "path"]) == [str(f) for f in files]
