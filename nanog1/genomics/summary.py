"""The ingest summary (rich): the accounting table (`accounting` module docstring) per file and per
sample, read = counted + skipped, and the skips by reason with their meaning (non_pass: the most frequent
FILTER values behind it over the files; ingest's notes give them per file)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from rich.console import Group
from rich.table import Table

from nanog1.genomics.accounting import ACCOUNTING_TOTALS, reason_order
from nanog1.genomics.ingest import IngestReport
from nanog1.genomics.variants import REASON_TEXT, top_filter_values

#: Per-sample rows printed in full up to this many samples; beyond, those with the most skipped.
MAX_SAMPLE_ROWS = 20


def summary_table(report: IngestReport) -> Group:
    """Per-file and per-sample tables (read, counted, skipped) and a skip-reason table with totals."""
    files = Table(title=f"ingest -> {report.out}: {report.n_samples} samples, {report.n_events:,} events")
    numeric = ("read", "counted", "skipped", "samples")
    for name in ("file", "kind", *numeric, "status"):
        files.add_column(name, justify="right" if name in numeric else "left")
    for f in report.files:
        skipped = f["skipped"]
        files.add_row(
            Path(f["path"]).name,
            f["kind"],
            f"{f['records']:,}",
            f"{f['counted']:,}",
            f"{skipped:,}",
            str(f["samples"]),
            f["status"],
        )
    files.add_row(
        "total",
        "",
        f"{report.records:,}",
        f"{sum(f['counted'] for f in report.files):,}",
        f"{sum(f['skipped'] for f in report.files):,}",
        str(report.n_samples),
        "",
        style="bold",
    )
    parts = [files]
    if report.accounting is not None and len(report.accounting):
        parts.append(_sample_table(report))
    skips = {r: n for r, n in report.skips.items() if n}
    if not skips:  # an empty table of reasons says less than this line
        return Group(*parts, "nothing skipped")
    reasons = Table(title="skipped by reason")
    for name in ("reason", "count", "meaning"):
        reasons.add_column(name, justify="right" if name == "count" else "left")
    values: Counter = Counter()
    for f in report.files:
        values.update(f.get("filter_values") or {})
    for r in sorted(skips, key=reason_order):
        filters = f": {top_filter_values(values)}" if r == "non_pass" and values else ""
        reasons.add_row(r, f"{skips[r]:,}", REASON_TEXT.get(r, "") + filters)
    return Group(*parts, reasons)


def _sample_table(report: IngestReport) -> Table:
    """Per sample (summed over its files): read, counted, skipped and the skip reasons it has."""
    acc = report.accounting
    per = acc.drop(columns=["file"]).groupby("sample", sort=False).sum()
    totals = [c for c in ACCOUNTING_TOTALS if c in per.columns]
    reasons = [c for c in per.columns if c not in totals and per[c].any()]
    shown = per
    title = "per sample (read = counted + skipped)"
    if len(per) > MAX_SAMPLE_ROWS:
        shown = per.sort_values("skipped", ascending=False, kind="stable").head(MAX_SAMPLE_ROWS)
        title += (
            f": the {MAX_SAMPLE_ROWS} of {len(per)} with most skipped (all in uns['nanog1']['accounting'])"
        )
    table = Table(title=title)
    table.add_column("sample", overflow="fold")  # a long barcode wraps, whole, rather than lose its end
    for name in (*totals, *reasons):
        table.add_column(name, justify="right")
    for sample, row in shown.iterrows():
        label = sample if sample else "(file, no sample)"
        table.add_row(label, *(f"{int(row[c]):,}" for c in (*totals, *reasons)))
    return table
