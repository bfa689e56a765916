"""Reference-free MAF ingestion: speed and peak memory, beside a plain pandas read of the same columns.

There is no peer that classifies MAFs without a reference (SigProfilerMatrixGenerator needs the
genome), so the side-by-side row is the floor any Python tool pays: `pandas.read_csv` of the columns
ingest reads, nothing else. Each run is its own child process (peak RSS is per run); CPU is the
child's user + system time.

    # all TCGA tumours of both sources (../shared/data/tcga), no reference
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/maf_noref.py --tcga ../shared/data/tcga
    # a synthetic MAF of 10 M variants (written once under --work and reused)
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/maf_noref.py --synthetic 10000000 --work /tmp/nanog1_maf
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

READ_COLUMNS = [
    "Hugo_Symbol",
    "Chromosome",
    "Start_Position",
    "Variant_Classification",
    "Reference_Allele",
    "Tumor_Seq_Allele2",
    "Tumor_Sample_Barcode",
    "t_ref_count",
    "t_alt_count",
    "FILTER",
]
CONSEQUENCES = np.array(
    [
        "Missense_Mutation",
        "Silent",
        "Nonsense_Mutation",
        "Intron",
        "3'UTR",
        "5'UTR",
        "Splice_Site",
        "Frame_Shift_Del",
        "Frame_Shift_Ins",
        "In_Frame_Del",
        "RNA",
        "IGR",
    ],
    dtype=object,
)


def synthetic_maf(path: Path, n: int, seed: int = 0, chunk: int = 1_000_000) -> Path:
    """A TCGA-like MAF of n records: 90 % SNP, 2 % DNP, 5 % DEL, 3 % INS; ~700 records per tumour;
    20,000 genes; 10 % non-PASS FILTER. Written once with pyarrow (tab-separated, no quoting), in
    chunks of `chunk` records so that writing it needs little memory."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    options = pacsv.WriteOptions(delimiter="\t", quoting_style="none", include_header=False)
    n_samples = max(1, n // 700)
    with pa.OSFile(str(tmp), "wb") as sink:
        for i, start in enumerate(range(0, n, chunk)):
            table = _synthetic_chunk(min(chunk, n - start), n_samples, np.random.default_rng([seed, i]))
            if i == 0:
                sink.write(("\t".join(table.column_names) + "\n").encode())
            pacsv.write_csv(table, sink, options)
    tmp.rename(path)
    return path


def _synthetic_chunk(n: int, n_samples: int, rng: np.random.Generator):
    import pyarrow as pa

    kind = rng.choice(4, size=n, p=[0.90, 0.02, 0.05, 0.03])
    bases = np.array(list("ACGT"), dtype=object)
    pools = {
        k: np.array(["".join(rng.choice(list("ACGT"), k)) for _ in range(500)], dtype=object)
        for k in range(1, 7)
    }
    ref = bases[rng.integers(0, 4, n)]
    alt = bases[(np.searchsorted(list("ACGT"), ref.astype(str)) + rng.integers(1, 4, n)) % 4]
    dnp = kind == 1
    ref[dnp] = np.char.add(ref[dnp].astype(str), bases[rng.integers(0, 4, dnp.sum())].astype(str))
    alt[dnp] = np.array(
        ["".join("ACGT"[("ACGT".index(b) + 1) % 4] for b in r) for r in ref[dnp]], dtype=object
    )
    size = rng.integers(1, 7, n)
    for k in range(1, 7):
        d = (kind == 2) & (size == k)
        ref[d], alt[d] = pools[k][rng.integers(0, 500, d.sum())], "-"
        i = (kind == 3) & (size == k)
        ref[i], alt[i] = "-", pools[k][rng.integers(0, 500, i.sum())]
    chroms = np.array([str(c) for c in range(1, 23)] + ["X", "Y"], dtype=object)
    return pa.table(
        {
            "Hugo_Symbol": np.char.add("G", rng.integers(0, 20_000, n).astype(str)),
            "Chromosome": chroms[rng.integers(0, 24, n)],
            "Start_Position": rng.integers(1, 150_000_000, n),
            "Variant_Classification": CONSEQUENCES[rng.integers(0, len(CONSEQUENCES), n)],
            "Variant_Type": np.array(["SNP", "DNP", "DEL", "INS"], dtype=object)[kind],
            "Reference_Allele": ref.astype(str),
            "Tumor_Seq_Allele2": alt.astype(str),
            "Tumor_Sample_Barcode": np.char.add("TCGA-SYN-", rng.integers(0, n_samples, n).astype(str)),
            "t_ref_count": rng.integers(5, 200, n),
            "t_alt_count": rng.integers(3, 100, n),
            "FILTER": np.where(rng.random(n) < 0.9, "PASS", "oxog"),
        }
    )


def _run_nanog1(paths: list[str], out: str) -> dict:
    from nanog1.genomics.ingest import ingest

    report = ingest([Path(p) for p in paths], None, None, Path(out))
    return {
        "records": report.records,
        "samples": report.n_samples,
        "events": report.n_events,
        "exact": ",".join(s for s, v in report.channel_sets.items() if v == "exact"),
    }


def _run_pandas(paths: list[str], out: str) -> dict:
    import pandas as pd

    n = 0
    for p in paths:
        head = pd.read_csv(p, sep="\t", nrows=0, comment="#").columns
        n += len(
            pd.read_csv(p, sep="\t", comment="#", dtype=str, usecols=[c for c in READ_COLUMNS if c in head])
        )
    return {"records": n}


def _child(name: str, paths: list[str], out: str, queue) -> None:
    start = time.perf_counter()
    try:
        result = {"nanog1": _run_nanog1, "pandas": _run_pandas}[name](paths, out)
    except Exception as err:  # reported by the parent, which would otherwise wait forever
        queue.put({"error": f"{type(err).__name__}: {err}"})
        raise
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result.update(
        wall=time.perf_counter() - start, cpu=usage.ru_utime + usage.ru_stime, rss_mb=usage.ru_maxrss / 1024
    )
    queue.put(result)


def measure(name: str, paths: list[Path], out: Path) -> dict:
    """One run in a fresh (spawned) process: wall and CPU seconds of the work, peak RSS of the process."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(name, [str(p) for p in paths], str(out), queue))
    proc.start()
    result = queue.get()
    proc.join()
    if "error" in result:
        raise SystemExit(f"{name}: {result['error']}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tcga", type=Path, help="folder with mc3/ and firehose/ mutations.maf.gz")
    parser.add_argument("--synthetic", type=int, help="records of a synthetic MAF")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "nanog1_maf")
    parser.add_argument("--tools", default="nanog1,pandas")
    args = parser.parse_args()
    if args.tcga:
        paths = [args.tcga / s / "mutations.maf.gz" for s in ("mc3", "firehose")]
    elif args.synthetic:
        paths = [synthetic_maf(args.work / f"synthetic_{args.synthetic}.maf", args.synthetic)]
    else:
        parser.error("give --tcga or --synthetic")
    rows = {}
    for tool in args.tools.split(","):
        rows[tool] = measure(tool, paths, args.work / "cohort.h5ad")
        print(
            tool, {k: round(v, 2) if isinstance(v, float) else v for k, v in rows[tool].items()}, flush=True
        )
    if "nanog1" in rows and "pandas" in rows:
        a, b = rows["nanog1"], rows["pandas"]
        print(
            f"nanog1 / pandas-read: wall {a['wall'] / b['wall']:.2f}x, CPU {a['cpu'] / b['cpu']:.2f}x, "
            f"peak RSS {a['rss_mb'] / b['rss_mb']:.2f}x"
        )


if __name__ == "__main__":
    main()
