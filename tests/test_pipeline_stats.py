"""The end-of-run table sums and maxes Snakemake's benchmark files per rule."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from nanog1.pipeline.rule_stats import read_benchmarks, render, summarise

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def write_bench(path: Path, seconds: float, rss: float | str, cpu: float | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + f"{seconds}\t0:00:01\t{rss}\t1\t1\t1\t0\t0\t0\t{cpu}\n")


def test_summary_matches_a_direct_computation(tmp_path: Path, capsys):
    rng = np.random.default_rng(0)
    walls, rss = rng.uniform(0.1, 9, 5), rng.uniform(50, 500, 5)
    for i in range(5):
        write_bench(tmp_path / "ingest" / f"p{i}.tsv", walls[i], rss[i], walls[i] / 2)
    write_bench(tmp_path / "train.tsv", 12.5, "NA", "NA")
    old = tmp_path / "merge.tsv"
    write_bench(old, 1.0, 80, 0.5)
    os.utime(old, (1_000, 1_000))
    jobs = read_benchmarks(tmp_path, since=10_000)
    table = summarise(jobs)
    assert list(table.index) == ["ingest", "merge", "train"]
    assert table.loc["ingest", "jobs"] == 5 and table.loc["ingest", "ran"] == 5
    np.testing.assert_allclose(table.loc["ingest", "wall_s"], walls.sum())
    np.testing.assert_allclose(table.loc["ingest", "max_job_s"], walls.max())
    np.testing.assert_allclose(table.loc["ingest", "peak_rss_mib"], rss.max())
    np.testing.assert_allclose(table.loc["ingest", "cpu_s"], walls.sum() / 2)
    assert table.loc["merge", "ran"] == 0
    assert np.isnan(table.loc["train", "peak_rss_mib"])
    render(table, "t")
    out = capsys.readouterr().out
    assert "ingest" in out and "NA" in out


def test_empty_folder_gives_an_empty_table(tmp_path: Path):
    assert summarise(read_benchmarks(tmp_path)).empty
