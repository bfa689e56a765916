"""Ingestion speed and memory: nanog1 ingest vs SigProfilerMatrixGenerator, side by side.

Generates a genome and a cohort of single-sample VCFs, then runs, each in its own child process
(so peak RSS is per tool): SigProfilerMatrixGenerator (custom genome), nanog1 in SigProfiler-
compatible mode, and nanog1 in its default mode. Checks the compatible matrices equal
SigProfilerMatrixGenerator's cell for cell and prints variants/s, peak RSS and the ratios.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/ingest.py --variants 100000 --samples 20

``--tools nanog1-default`` runs ours alone (the scale check: 10 M records, where the peer would take hours).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path
from queue import Empty

import numpy as np


def _peak_mib() -> float:
    """This process's peak resident memory (VmHWM; ru_maxrss would include the parent's at fork)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _child(target: str, work: str, genome: str, queue) -> None:
    """Run one tool; report wall and CPU seconds of the call (imports excluded), peak RSS (MiB) and its
    matrices (samples x 257, samples sorted)."""
    from nanog1.genomics import peer
    from nanog1.genomics.channels import CHANNEL_SETS
    from nanog1.genomics.cohort import read_cohort
    from nanog1.genomics.ingest import IngestOptions, ingest

    work_p = Path(work)
    compat = target == "nanog1-compatible"
    start, cpu = time.perf_counter(), _cpu()
    if target == "sigprofiler":
        mats = peer.run_matrix_generator(genome, work_p / "vcf", work_p)
    else:
        options = IngestOptions(sigprofiler_compatible=compat, filter="all" if compat else "PASS")
        paths = sorted((work_p / "vcf").glob("*.vcf"))
        ingest(paths, work_p / "genome.fa", None, work_p / f"{target}.h5ad", options)
    seconds, cpu = time.perf_counter() - start, _cpu() - cpu
    if target == "sigprofiler":
        samples = sorted(mats["SBS96"].columns)
        x = np.concatenate([mats[s][samples].to_numpy().T for s in CHANNEL_SETS], axis=1)
    else:
        adata = read_cohort(work_p / f"{target}.h5ad")
        x = np.asarray(adata.X)[np.argsort(adata.obs_names.to_numpy())].astype(np.int64)
    queue.put((seconds, cpu, _peak_mib(), x))


def run(target: str, work: Path, genome: str) -> tuple[float, float, float, np.ndarray]:
    """Run `target` in a fresh child process: (wall s, CPU s, peak MiB, matrix)."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(target, str(work), genome, queue))
    proc.start()
    while True:
        try:
            result = queue.get(timeout=5)
            break
        except Empty:
            if not proc.is_alive():
                raise RuntimeError(f"{target} died without a result (exit code {proc.exitcode})") from None
    proc.join()
    return result


def make_inputs(work: Path, n_variants: int, n_samples: int, contig_mb: int) -> int:
    """Genome (2 contigs) + one VCF per sample; returns the number of records written."""
    from nanog1.genomics.synthetic import GenomeSpec, make_genome, sample_records, write_vcf

    seqs = make_genome(work / "genome.fa", GenomeSpec(length=contig_mb * 1_000_000, repeat_every=400))
    rng = np.random.default_rng(0)
    (work / "vcf").mkdir()
    total = 0
    for k in range(n_samples):
        records = sample_records(rng, seqs, n_variants // n_samples)
        write_vcf(work / "vcf" / f"S{k:04d}.vcf", records, seqs)
        total += len(records)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--contig-mb", type=int, default=10)
    parser.add_argument("--tools", default="sigprofiler,nanog1-compatible,nanog1-default",
                        help="comma-separated subset to run; ratios need sigprofiler")
    args = parser.parse_args()
    from nanog1.genomics import peer

    work = Path(tempfile.mkdtemp(prefix="nanog1-ingest-bench-"))
    genome = f"nanog1bench{os.getpid()}"
    try:
        t0 = time.perf_counter()
        records = make_inputs(work, args.variants, args.samples, args.contig_mb)
        print(
            f"inputs: {records:,} records, {args.samples} VCFs, 2 x {args.contig_mb} Mb "
            f"({time.perf_counter() - t0:.1f} s to generate); load average {os.getloadavg()}"
        )
        tools = args.tools.split(",")
        if "sigprofiler" in tools:
            peer.install_genome(genome, work / "genome.fa", work)
        rows = {t: run(t, work, genome) for t in tools}
    finally:
        if "sigprofiler" in args.tools:
            peer.remove_genome(genome)
        shutil.rmtree(work, ignore_errors=True)
    if "sigprofiler" not in rows:
        for name, (sec, cpu, rss, _) in rows.items():
            print(f"{name}: {records:,} records, wall {sec:.1f} s, CPU {cpu:.1f} s, "
                  f"{records / cpu:,.0f} records/CPU-s, peak RSS {rss:.0f} MiB")
        return
    peer_s, peer_cpu, peer_rss, peer_x = rows["sigprofiler"]
    same = np.array_equal(rows["nanog1-compatible"][3], peer_x)
    print(f"compatible matrices identical to SigProfilerMatrixGenerator: {same}")
    head = ("tool", "wall s", "CPU s", "records/CPU-s", "peak MiB", "wall ratio", "CPU ratio", "RSS ratio")
    print("{:<20}{:>8}{:>8}{:>15}{:>10}{:>12}{:>11}{:>11}".format(*head))
    for name, (sec, cpu, rss, _) in rows.items():
        print(
            f"{name:<20}{sec:8.2f}{cpu:8.2f}{records / cpu:15,.0f}{rss:10.0f}"
            f"{sec / peer_s:12.3f}{cpu / peer_cpu:11.3f}{rss / peer_rss:11.3f}"
        )
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
