"""The end-of-run table: each rule's wall time and peak memory, read from Snakemake's `benchmark:` files.

Snakemake samples a job's memory every 0.5 s for its first 15 s and every 30 s after that, so the peak of
a long job is the largest sample, not an exact maximum; a job too short to be sampled reports NA.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def read_benchmarks(bench_dir: Path, since: float | None = None) -> pd.DataFrame:
    """One row per job: rule, job, wall seconds, peak RSS (MiB), CPU seconds, whether run since `since`."""
    rows = []
    for path in sorted(Path(bench_dir).rglob("*.tsv")):
        table = pd.read_csv(path, sep="\t", na_values=["NA", "-"])
        if table.empty:
            continue
        last = table.iloc[-1]
        rel = path.relative_to(bench_dir).with_suffix("")
        rows.append(
            {
                "rule": rel.parts[0],
                "job": str(rel),
                "wall_s": float(last["s"]),
                "max_rss_mib": float(last.get("max_rss", float("nan"))),
                "cpu_s": float(last.get("cpu_time", float("nan"))),
                "this_run": since is None or path.stat().st_mtime >= since,
            }
        )
    return pd.DataFrame(rows, columns=["rule", "job", "wall_s", "max_rss_mib", "cpu_s", "this_run"])


def summarise(jobs: pd.DataFrame) -> pd.DataFrame:
    """Per rule: job count, jobs run this time, total and longest wall time, peak RSS, total CPU time."""
    if jobs.empty:
        return pd.DataFrame(columns=["jobs", "ran", "wall_s", "max_job_s", "peak_rss_mib", "cpu_s"])
    grouped = jobs.groupby("rule", sort=False)
    table = pd.DataFrame(
        {
            "jobs": grouped.size(),
            "ran": grouped["this_run"].sum().astype(int),
            "wall_s": grouped["wall_s"].sum(),
            "max_job_s": grouped["wall_s"].max(),
            "peak_rss_mib": grouped["max_rss_mib"].max(),
            "cpu_s": grouped["cpu_s"].sum(min_count=1),
        }
    )
    order = ["simulate", "check_inputs", "ingest", "merge", "signatures", "train", "evaluate", "embed"]
    order.append("report")
    rank = {name: i for i, name in enumerate(order)}
    return table.sort_index(key=lambda idx: idx.map(lambda r: rank.get(r, len(order))))


def render(table: pd.DataFrame, title: str) -> None:
    """Print the per-rule table with rich."""
    from rich.console import Console
    from rich.table import Table

    def fmt(value: float, digits: int) -> str:
        return "NA" if pd.isna(value) else f"{value:.{digits}f}"

    out = Table(title=title)
    for name in ("rule", "jobs", "ran now", "wall s (sum)", "longest job s", "peak RSS MiB", "CPU s"):
        out.add_column(name, justify="left" if name == "rule" else "right")
    for rule, row in table.iterrows():
        out.add_row(
            str(rule), str(int(row["jobs"])), str(int(row["ran"])), fmt(row["wall_s"], 1),
            fmt(row["max_job_s"], 1), fmt(row["peak_rss_mib"], 0), fmt(row["cpu_s"], 1),
        )
    Console().print(out)
