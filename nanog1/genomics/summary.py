"""The ingest summary (rich): records read per file, and records skipped by reason."""

from __future__ import annotations

from pathlib import Path

from rich.console import Group
from rich.table import Table

from nanog1.genomics.ingest import IngestReport, _reason_order

REASON_TEXT = {
    "malformed_line": "line could not be parsed",
    "unreadable_file": "file could not be read",
    "non_pass": "FILTER not PASS",
    "symbolic_allele": "symbolic/structural ALT (<DEL>, breakend, *)",
    "multiallelic": "multi-allelic record (SigProfiler-compatible mode)",
    "no_carrier": "ALT carried by no sample's genotype",
    "unsupported_allele": "allele with non-ACGT letters",
    "ref_equals_alt": "REF equals ALT",
    "duplicate": "same variant repeated",
    "unknown_contig": "contig not in the reference",
    "ref_mismatch": "REF differs from the reference",
    "out_of_range": "context runs off the contig or into N",
    "complex_indel": "complex indel/MNV, not an ID83 class",
    "mnv": "SNV in a run of 3+ adjacent bases",
}


def summary_table(report: IngestReport) -> Group:
    """A per-file table (records, samples, skipped, status) and a skip-reason table with totals."""
    files = Table(title=f"ingest -> {report.out}: {report.n_samples} samples, {report.n_events:,} events")
    for name in ("file", "kind", "records", "samples", "skipped", "status"):
        files.add_column(name, justify="right" if name in ("records", "samples", "skipped") else "left")
    for f in report.files:
        files.add_row(
            Path(f["path"]).name,
            f["kind"],
            f"{f['records']:,}",
            str(f["samples"]),
            f"{sum(f['skips'].values()):,}",
            f["status"],
        )
    files.add_row(
        "total",
        "",
        f"{report.records:,}",
        str(report.n_samples),
        f"{sum(report.skips.values()):,}",
        "",
        style="bold",
    )
    reasons = Table(title="skipped by reason")
    for name in ("reason", "count", "meaning"):
        reasons.add_column(name, justify="right" if name == "count" else "left")
    for r in sorted(report.skips, key=_reason_order):
        reasons.add_row(r, f"{report.skips[r]:,}", REASON_TEXT.get(r, ""))
    return Group(files, reasons)
