"""Peak temporary-disk use and time of reading a large plain-gzip VCF (`gzip calls.vcf`, not bgzip).

htslib cannot read plain gzip itself; NanoG1 used to decompress the whole file into a temporary folder
first (a multi-GB VCF could fill /tmp), and now streams it through a pipe (`gzip_stream.GzipStream`). This
writes a Mutect2-like tumour/normal VCF (INFO and FORMAT fields as Mutect2 writes them; read by pysam) or
a sites-only one (the pyarrow fast path) of about `--mb` MB uncompressed, gzips it, and reads it with
`vcf.read_vcf` in a fresh process whose TMPDIR is a private folder polled every 20 ms for its size on
disk. Run it with PYTHONPATH at the checkout to measure (before/after a change: two checkouts).

    python benchmarks/gzip_vcf_stream.py make DIR --mb 200
    PYTHONPATH=CHECKOUT python benchmarks/gzip_vcf_stream.py read DIR/mutect2.vcf.gz
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import resource
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

HEAD = """##fileformat=VCFv4.2
##FILTER=<ID=PASS,Description="All filters passed">
##FILTER=<ID=weak_evidence,Description="Mutation does not meet likelihood threshold">
##FORMAT=<ID=AD,Number=R,Type=Integer,Description="Allelic depths for the ref and alt alleles">
##FORMAT=<ID=AF,Number=A,Type=Float,Description="Allele fractions of alternate alleles in the tumor">
##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Approximate read depth">
##FORMAT=<ID=F1R2,Number=R,Type=Integer,Description="Count of reads in F1R2 pair orientation">
##FORMAT=<ID=F2R1,Number=R,Type=Integer,Description="Count of reads in F2R1 pair orientation">
##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">
##FORMAT=<ID=SB,Number=4,Type=Integer,Description="Per-sample component statistics">
##INFO=<ID=DP,Number=1,Type=Integer,Description="Approximate read depth">
##INFO=<ID=ECNT,Number=1,Type=Integer,Description="Number of events in this haplotype">
##INFO=<ID=GERMQ,Number=1,Type=Integer,Description="Phred-scaled quality that alt alleles are not germline">
##INFO=<ID=MBQ,Number=R,Type=Integer,Description="median base quality by allele">
##INFO=<ID=MFRL,Number=R,Type=Integer,Description="median fragment length by allele">
##INFO=<ID=MMQ,Number=R,Type=Integer,Description="median mapping quality by allele">
##INFO=<ID=MPOS,Number=A,Type=Integer,Description="median distance from end of read">
##INFO=<ID=NALOD,Number=A,Type=Float,Description="Negative log 10 odds of artifact in normal">
##INFO=<ID=NLOD,Number=A,Type=Float,Description="Normal log 10 likelihood ratio of diploid het or hom alt">
##INFO=<ID=POPAF,Number=A,Type=Float,Description="negative log 10 population allele frequencies">
##INFO=<ID=TLOD,Number=A,Type=Float,Description="Log 10 likelihood ratio score of variant existing">
{contigs}
##normal_sample=P1-N
##source=Mutect2
##tumor_sample=P1-T
#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO{columns}
"""
CONTIG = 240_000_000  # every contig this long (a synthetic genome: the read, not the build, is measured)


def make(folder: Path, mb: float, seed: int = 31) -> None:
    """mutect2.vcf.gz and sites.vcf.gz in `folder`, each about `mb` MB uncompressed (plain gzip)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    contigs = "\n".join(f"##contig=<ID=chr{c},length={CONTIG},assembly=toy>" for c in range(1, 23))
    for kind in ("mutect2", "sites"):
        columns = "\tFORMAT\tP1-N\tP1-T" if kind == "mutect2" else ""
        target, written = int(mb * 1e6), 0
        with gzip.open(folder / f"{kind}.vcf.gz", "wt", compresslevel=6) as out:
            text = HEAD.format(contigs=contigs, columns=columns)
            out.write(text)
            written += len(text)
            chrom, pos = 1, 10_000
            while written < target:
                pos += rng.randint(50, 400)
                if pos > CONTIG - 1000:
                    chrom, pos = chrom % 22 + 1, 10_000
                ref = rng.choice("ACGT")
                alt = rng.choice([b for b in "ACGT" if b != ref])
                if kind == "mutect2":
                    alt_n, ref_n = rng.randint(3, 30), rng.randint(10, 60)
                    line = (f"chr{chrom}\t{pos}\t.\t{ref}\t{alt}\t.\tPASS\tDP={ref_n + alt_n + 30};ECNT=1;"
                            f"GERMQ=93;MBQ=20,20;MFRL=180,175;MMQ=60,60;MPOS=25;NALOD=1.2;NLOD=5.4;POPAF=6.00;"
                            f"TLOD={alt_n * 2.1:.2f}\tGT:AD:AF:DP:F1R2:F2R1:SB\t0/0:30,0:0.032:30:15,0:15,0:"
                            f"15,15,0,0\t0/1:{ref_n},{alt_n}:{alt_n / (ref_n + alt_n):.3f}:{ref_n + alt_n}:"
                            f"{ref_n // 2},{alt_n // 2}:{ref_n - ref_n // 2},{alt_n - alt_n // 2}:"
                            f"{ref_n // 2},{ref_n - ref_n // 2},{alt_n // 2},{alt_n - alt_n // 2}\n")
                else:
                    line = f"chr{chrom}\t{pos}\t.\t{ref}\t{alt}\t.\tPASS\t.\n"
                out.write(line)
                written += len(line)
        print(f"{kind}.vcf.gz: {written / 1e6:.0f} MB uncompressed, "
              f"{(folder / f'{kind}.vcf.gz').stat().st_size / 1e6:.0f} MB gzipped")


def _disk_use(folder: Path) -> int:
    """Bytes on disk under `folder` (allocated blocks)."""
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_blocks * 512
            except FileNotFoundError:
                pass
    return total


def read(path: Path) -> None:
    """Read `path` with vcf.read_vcf, TMPDIR a private folder polled for its size; print one JSON line."""
    scratch = Path(tempfile.mkdtemp(prefix="gzip-vcf-bench-"))
    tempfile.tempdir = str(scratch)
    peak, done = [0], threading.Event()

    def poll() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _disk_use(scratch))
            time.sleep(0.02)

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    from nanog1.genomics.vcf import read_vcf

    start = time.perf_counter()
    table = read_vcf(path)
    wall = time.perf_counter() - start
    done.set()
    watcher.join()
    shutil.rmtree(scratch, ignore_errors=True)
    print(json.dumps({"file": path.name, "records": len(table), "wall_s": round(wall, 2),
                      "peak_tmp_mb": round(peak[0] / 1e6, 1),
                      "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)}))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="step", required=True)
    m = sub.add_parser("make")
    m.add_argument("folder", type=Path)
    m.add_argument("--mb", type=float, default=200)
    r = sub.add_parser("read")
    r.add_argument("path", type=Path)
    args = parser.parse_args(argv)
    make(args.folder, args.mb) if args.step == "make" else read(args.path)


if __name__ == "__main__":
    sys.exit(main())
