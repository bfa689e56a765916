"""Run SigProfilerMatrixGenerator on a custom genome made from a FASTA, for side-by-side checks.

It installs the genome into its own package folder under the given name (its installer has no other
place for FASTA and transcript files), registers checksums so its matrix generator accepts the
genome, and reads its SBS96/DBS78/ID83 outputs back in our channel order. `remove_genome` deletes
every folder it created. Imported only by tests and benchmarks (SigProfilerMatrixGenerator is a dev
dependency).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import os
import shutil
import sys
from pathlib import Path

import pandas as pd
import pysam

from nanog1.genomics.channels import CHANNEL_SETS


def _package_refs() -> Path:
    import SigProfilerMatrixGenerator

    return Path(SigProfilerMatrixGenerator.__file__).parent / "references"


@contextlib.contextmanager
def _quiet_in(workdir: Path):
    """Run inside `workdir` (it writes logs to the working directory) with stdin/stdout silenced."""
    old = Path.cwd()
    os.chdir(workdir)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            old_stdin, sys.stdin = sys.stdin, io.StringIO("")
            try:
                yield
            finally:
                sys.stdin = old_stdin
    finally:
        os.chdir(old)


def install_genome(name: str, fasta: Path, workdir: Path) -> None:
    """Install `fasta` (contigs named 1, 2, ...) into SigProfilerMatrixGenerator as genome `name`."""
    from SigProfilerMatrixGenerator import install

    workdir = Path(workdir)
    fa_dir = workdir / "fasta"
    fa_dir.mkdir(parents=True, exist_ok=True)
    fasta_file = pysam.FastaFile(str(fasta))
    lines = []
    for contig, length in zip(fasta_file.references, fasta_file.lengths, strict=True):
        # Fastest gzip level: the installer unpacks these at once; level 9 takes minutes on a human genome.
        with gzip.open(fa_dir / f"{contig}.fa.gz", "wt", compresslevel=1) as out:
            out.write(f">{contig}\n{fasta_file.fetch(contig).upper()}\n")
        mid = length // 2
        lines.append(f"G{contig}\tT{contig}\t{contig}\t1\t{mid}\t{mid + 100}\tgene{contig}\tprotein_coding")
    fasta_file.close()
    (workdir / "transcripts.txt").write_text("\n".join(lines) + "\n")
    (workdir / "exome.interval_list").write_text("1\t1\t100\n")
    remove_genome(name)
    with _quiet_in(workdir):
        install.install(
            name,
            custom=True,
            fastaPath=str(fa_dir) + "/",
            transcriptPath=str(workdir / "transcripts.txt"),
            exomePath=str(workdir / "exome.interval_list"),
        )
    register_checksums(name)


def register_checksums(name: str) -> None:
    """Tell the matrix generator the installed genome's checksums (it refuses unknown genomes)."""
    from SigProfilerMatrixGenerator.scripts import reference_genome_manager

    tsb = _package_refs() / "chromosomes" / "tsb" / name
    reference_genome_manager.CHECKSUMS[name] = {
        p.stem: hashlib.md5(p.read_bytes()).hexdigest() for p in sorted(tsb.glob("*.txt"))
    }


def remove_genome(name: str) -> None:
    """Delete every folder the install of genome `name` created inside the package."""
    chromosomes = _package_refs() / "chromosomes"
    for kind in ("fasta", "tsb", "transcripts", "exome", "chrom_string", "tsb_BED"):
        shutil.rmtree(chromosomes / kind / name, ignore_errors=True)


def run_matrix_generator(
    name: str, vcf_dir: Path, workdir: Path, project: str = "peer"
) -> dict[str, pd.DataFrame]:
    """SigProfilerMatrixGenerator's SBS96/DBS78/ID83 for the VCFs in `vcf_dir`, rows in our order."""
    from SigProfilerMatrixGenerator.scripts import SigProfilerMatrixGeneratorFunc as matGen

    register_checksums(name)
    with _quiet_in(Path(workdir)):
        mats = matGen.SigProfilerMatrixGeneratorFunc(
            project, name, str(vcf_dir) + "/", plot=False, exome=False
        )
    out = {}
    for key, channel_set in (("96", "SBS96"), ("DINUC", "DBS78"), ("ID", "ID83")):
        frame = mats.get(key)
        if frame is None or channel_set in out:
            continue
        out[channel_set] = frame.reindex(list(CHANNEL_SETS[channel_set])).fillna(0).astype(int)
    return out
