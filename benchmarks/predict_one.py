"""Time `nanog1 predict` on one VCF end to end (new process: imports, ingest with a reference, typing,
exposures with bootstrap intervals, report), the way a lab would run it on one tumour.

    OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/predict_one.py --variants 5000 --repeats 3
    # one tumour exome MAF (no reference) with the packaged exome model:
    OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/predict_one.py --maf ONE.maf --model tcga-exome

Writes a generated 4 Mb genome (FASTA) and a single-sample VCF of SNVs, doublets and indels drawn on it.
Prints wall and CPU (user + sys) seconds per run and the machine's load.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def write_inputs(folder: Path, n: int, seed: int = 0) -> tuple[Path, Path]:
    """A two-chromosome FASTA and a VCF of `n` variants (90 % SNVs, 5 % doublets, 5 % 1-bp deletions)."""
    rng = np.random.default_rng(seed)
    seqs = {c: "".join(rng.choice(list("ACGT"), 2_000_000)) for c in ("1", "2")}
    fasta = folder / "genome.fa"
    with open(fasta, "w") as f:
        for c, s in seqs.items():
            f.write(f">{c}\n" + "\n".join(s[i : i + 60] for i in range(0, len(s), 60)) + "\n")
    rows = []
    for chrom in seqs:
        for pos in np.sort(rng.choice(np.arange(100, 1_999_000, 7), n // 2, replace=False)):
            ref, kind = seqs[chrom][pos - 1], rng.random()
            if kind < 0.9:
                rows.append((chrom, pos, ref, rng.choice([b for b in "ACGT" if b != ref])))
            elif kind < 0.95:
                ref2 = seqs[chrom][pos - 1 : pos + 1]
                alt = "".join(rng.choice([b for b in "ACGT" if b != r]) for r in ref2)
                rows.append((chrom, pos, ref2, alt))
            else:
                rows.append((chrom, pos, seqs[chrom][pos - 1 : pos + 1], ref))
    vcf = folder / "TUMOUR1.vcf"
    head = ["##fileformat=VCFv4.2", *[f"##contig=<ID={c},length={len(s)}>" for c, s in seqs.items()]]
    head.append("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO")
    vcf.write_text("\n".join(head + [f"{c}\t{p}\t.\t{r}\t{a}\t.\tPASS\t." for c, p, r, a in rows]) + "\n")
    return fasta, vcf


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", type=int, default=5000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--model", default="pcawg-catalogue")
    ap.add_argument("--maf", type=Path, default=None, help="time this MAF (no reference) instead of a VCF")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.maf is None:
            fasta, vcf = write_inputs(Path(tmp), args.variants)
            inputs = [str(vcf), "--reference", str(fasta)]
        else:
            inputs = [str(args.maf)]
        cmd = [sys.executable, "-m", "nanog1.cli", "predict", *inputs,
               "--model", args.model, "--out", str(Path(tmp) / "out")]  # fmt: skip
        print(f"load before: {os.getloadavg()}; {' '.join(cmd[1:])}")
        for _ in range(args.repeats):
            t0, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
            done = subprocess.run(cmd, capture_output=True, text=True)
            wall, after = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            if done.returncode:
                raise SystemExit(done.stderr[-2000:])
            load = os.getloadavg()[0]
            shown = f"{wall:.2f} s wall, {cpu:.2f} s CPU; load {load:.1f}"
            what = f"MAF {args.maf.name}" if args.maf else f"VCF ({args.variants} variants)"
            print(f"predict one {what}: {shown}")
        print(done.stdout[-800:])


if __name__ == "__main__":
    main()
