"""Ingestion speed and memory: nanog1 ingest vs SigProfilerMatrixGenerator, side by side.

Generates a genome and a cohort of single-sample VCFs, then runs, each in its own child process
(so peak RSS is per tool): SigProfilerMatrixGenerator (custom genome), nanog1 in SigProfiler-
compatible mode, and nanog1 in its default mode. Checks the compatible matrices equal
SigProfilerMatrixGenerator's cell for cell (exit status 1 if not) and prints wall and CPU seconds,
records/CPU-s, peak RSS and the ratios.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/ingest.py --variants 100000 --samples 20

Human-size mode (`--genome-dir`): a GRCh38-sized genome (24 contigs, 3.09 Gb) generated once in that
folder and reused, with `--files` VCFs of `--min-variants`..`--max-variants` records each (also kept
and reused); the peer's genome is installed once under a fixed name (`--remove-peer-genome` deletes
it); nanog1's reference cache is built (and timed) before the runs. `--subset N` runs on the first N
files only. `--fixed-cost` measures the per-file fixed cost instead: the same tools on 20 and on 200
files of 10 variants each, (CPU(200) - CPU(20)) / 180.

    benchmarks/ingest.py --genome-dir /tmp/nanog1_bench --files 100 --min-variants 10000 --max-variants 10000

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

#: The channel sets SigProfilerMatrixGenerator writes (nanog1's derived SBS6/ID12 are left out).
COMPARED = ("SBS96", "DBS78", "ID83")


def _peak_mib() -> float:
    """This process's peak resident memory (VmHWM; ru_maxrss would include the parent's at fork)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu() -> float:
    """CPU seconds of this process and of its waited-for children (user + system)."""
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)


def _child(target: str, work: str, genome: str, queue, fasta: str) -> None:
    """Run one tool; report wall and CPU seconds of the call (imports excluded), peak RSS (MiB) and its
    matrices (samples x 257, samples sorted)."""
    from nanog1.genomics import peer
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
        ingest(paths, Path(fasta), None, work_p / f"{target}.h5ad", options)
    seconds, cpu = time.perf_counter() - start, _cpu() - cpu
    if target == "sigprofiler":
        samples = sorted(mats["SBS96"].columns)
        x = np.concatenate([mats[s][samples].to_numpy().T for s in COMPARED], axis=1)
    else:
        adata = read_cohort(work_p / f"{target}.h5ad")
        sets = adata.var["channel_set"].to_numpy()
        cols = np.concatenate([np.flatnonzero(sets == s) for s in COMPARED])
        x = np.asarray(adata.X)[np.argsort(adata.obs_names.to_numpy())][:, cols].astype(np.int64)
    queue.put((seconds, cpu, _peak_mib(), x))


def run(target: str, work: Path, genome: str, fasta: Path) -> tuple[float, float, float, np.ndarray]:
    """Run `target` on `work`/vcf in a fresh child process: (wall s, CPU s, peak MiB, matrix)."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(target, str(work), genome, queue, str(fasta)))
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


PEER_GENOME = "nanog1grch38size"


def _report(rows: dict, records: int) -> bool:
    """Print the side-by-side table; True unless the compatible matrices differ from the peer's."""
    if "sigprofiler" not in rows:
        for name, (sec, cpu, rss, _) in rows.items():
            print(f"{name}: {records:,} records, wall {sec:.1f} s, CPU {cpu:.1f} s, "
                  f"{records / cpu:,.0f} records/CPU-s, peak RSS {rss:.0f} MiB")
        return True
    peer_s, peer_cpu, peer_rss, peer_x = rows["sigprofiler"]
    same = "nanog1-compatible" not in rows or np.array_equal(rows["nanog1-compatible"][3], peer_x)
    print(f"compatible matrices identical to SigProfilerMatrixGenerator: {same}")
    head = ("tool", "wall s", "CPU s", "records/CPU-s", "peak MiB", "wall ratio", "CPU ratio", "RSS ratio")
    print("{:<20}{:>8}{:>8}{:>15}{:>10}{:>12}{:>11}{:>11}".format(*head))
    for name, (sec, cpu, rss, _) in rows.items():
        print(
            f"{name:<20}{sec:8.2f}{cpu:8.2f}{records / cpu:15,.0f}{rss:10.0f}"
            f"{sec / peer_s:12.3f}{cpu / peer_cpu:11.3f}{rss / peer_rss:11.3f}"
        )
    return bool(same)


def _small(args) -> bool:
    """The original mode: a fresh 2-contig genome and cohort in a temporary folder, removed after."""
    from nanog1.genomics import peer

    work = Path(tempfile.mkdtemp(prefix="nanog1-ingest-bench-"))
    genome = f"nanog1bench{os.getpid()}"
    tools = args.tools.split(",")
    try:
        t0 = time.perf_counter()
        records = make_inputs(work, args.variants, args.samples, args.contig_mb)
        print(
            f"inputs: {records:,} records, {args.samples} VCFs, 2 x {args.contig_mb} Mb "
            f"({time.perf_counter() - t0:.1f} s to generate); load average {os.getloadavg()}"
        )
        if "sigprofiler" in tools:
            peer.install_genome(genome, work / "genome.fa", work)
        rows = {t: run(t, work, genome, work / "genome.fa") for t in tools}
    finally:
        if "sigprofiler" in tools:
            peer.remove_genome(genome)
        shutil.rmtree(work, ignore_errors=True)
    return _report(rows, records)


def _cohort(genome_dir: Path, fasta: Path, sizes: list[int], tag: str) -> tuple[Path, int]:
    """A reusable folder `tag`/vcf of VCFs with the given sizes; returns it and its record count."""
    from ingest_inputs import write_vcfs

    work = genome_dir / tag
    done = work / "records.txt"
    if not done.exists():
        shutil.rmtree(work, ignore_errors=True)
        t0 = time.perf_counter()
        total = write_vcfs(fasta, work / "vcf", sizes)
        done.write_text(f"{total}\n")
        print(f"{tag}: generated {total:,} records in {len(sizes)} VCFs in {time.perf_counter() - t0:.0f} s")
    return work, int(done.read_text())


def _subset(work: Path, n: int) -> tuple[Path, int]:
    """The first `n` VCFs of a cohort folder, hard-linked into their own folder."""
    sub = work.with_name(f"{work.name}_first{n}")
    files = sorted((work / "vcf").glob("*.vcf"))[:n]
    if not (sub / "records.txt").exists():
        (sub / "vcf").mkdir(parents=True, exist_ok=True)
        for f in files:
            if not (sub / "vcf" / f.name).exists():
                os.link(f, sub / "vcf" / f.name)
        total = sum(sum(1 for line in open(f) if not line.startswith("#")) for f in files)
        (sub / "records.txt").write_text(f"{total}\n")
    return sub, int((sub / "records.txt").read_text())


def _prepare_references(fasta: Path, tools: list[str]) -> None:
    """Build nanog1's contig cache and install the peer's genome, once each, timing both."""
    from nanog1.genomics import peer
    from nanog1.genomics.reference import Reference

    t0, cpu = time.perf_counter(), _cpu()
    ref = Reference(fasta)
    for contig in ref.contigs:
        ref.raw(contig)
    print(f"nanog1 reference cache ready in {time.perf_counter() - t0:.1f} s wall, {_cpu() - cpu:.1f} CPU s")
    if "sigprofiler" in tools:
        tsb = peer._package_refs() / "chromosomes" / "tsb" / PEER_GENOME
        if len(list(tsb.glob("*.txt"))) < len(ref.contigs):
            t0 = time.perf_counter()
            peer.install_genome(PEER_GENOME, fasta, fasta.parent / "spmg")
            print(f"SigProfilerMatrixGenerator genome installed in {time.perf_counter() - t0:.0f} s")


def _human(args) -> bool:
    """GRCh38-sized genome: the side-by-side run, or the per-file fixed cost."""
    from ingest_inputs import make_big_genome

    genome_dir = Path(args.genome_dir)
    fasta = make_big_genome(genome_dir / "genome.fa", scale=args.genome_scale)
    tools = args.tools.split(",")
    _prepare_references(fasta, tools)
    if args.fixed_cost:
        cost = {}
        for n in (20, 200):
            work, records = _cohort(genome_dir, fasta, [10] * n, f"fixed{n}")
            print(f"{n} VCFs x 10 records; load average {os.getloadavg()}")
            cost[n] = {t: run(t, work, PEER_GENOME, fasta) for t in tools}
            _report(cost[n], records)
        for t in tools:
            wall = (cost[200][t][0] - cost[20][t][0]) / 180
            cpu = (cost[200][t][1] - cost[20][t][1]) / 180
            print(f"{t}: per-file fixed cost {cpu:.4f} CPU s, {wall:.4f} s wall")
        return True
    rng = np.random.default_rng(args.seed)
    sizes = rng.integers(args.min_variants, args.max_variants + 1, args.files).tolist()
    tag = f"vcf{args.files}_{args.min_variants}-{args.max_variants}_seed{args.seed}"
    work, records = _cohort(genome_dir, fasta, sizes, tag)
    if args.subset:
        work, records = _subset(work, args.subset)
    n_files = args.subset or args.files
    print(f"inputs: {records:,} records, {n_files} VCFs, {work}; load average {os.getloadavg()}")
    rows = {t: run(t, work, PEER_GENOME, fasta) for t in tools}
    return _report(rows, records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--contig-mb", type=int, default=10)
    parser.add_argument("--tools", default="sigprofiler,nanog1-compatible,nanog1-default",
                        help="comma-separated subset to run; ratios need sigprofiler")
    parser.add_argument("--genome-dir", help="human-size mode: folder for the GRCh38-sized genome and VCFs")
    parser.add_argument("--genome-scale", type=float, default=1.0,
                        help="contig lengths as a share of GRCh38's (0.01: a 31 Mb genome)")
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--min-variants", type=int, default=1000)
    parser.add_argument("--max-variants", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--subset", type=int, default=0, help="run on the first N files only")
    parser.add_argument("--fixed-cost", action="store_true", help="measure the per-file fixed cost")
    parser.add_argument("--remove-peer-genome", action="store_true",
                        help="delete the installed GRCh38-sized peer genome and exit")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}")
    if args.remove_peer_genome:
        from nanog1.genomics import peer

        peer.remove_genome(PEER_GENOME)
        return
    same = _human(args) if args.genome_dir else _small(args)
    print(f"load average after: {os.getloadavg()}")
    if not same:
        raise SystemExit("compatible-mode matrices differ from SigProfilerMatrixGenerator's")


if __name__ == "__main__":
    main()
