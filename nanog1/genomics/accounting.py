"""The accounting table: the one record of what became of every call an ingest read.

`uns['nanog1']['accounting']`, also `IngestReport.accounting`, printed per file and per sample by the
summary. One row per (file, sample): `file` is the row of `uns['nanog1']['inputs']`; sample '' holds the
calls of a multi-sample file that belong to no sample (no carrier, a malformed line). Columns `read`,
`counted` (`counted_without_context`, part of it, where some call was), `skipped` and one per skip reason
(`variants.SKIP_REASONS` order, `reason_order`), with `read = counted + skipped` and `skipped = sum of the
reasons` on every row; per-file and per-sample totals are its group sums and `uns['nanog1']['skips']` its
column sums. Catalogue matrices carry counts, not calls: no rows.

One reason counts files, not calls: `unreadable_file`, a file skipped whole under `on_error='skip'` (a
truncated .vcf.gz, an empty or binary file). No call of it was read, so its row has read = counted =
skipped = 0 and unreadable_file = 1, and `skipped` sums the other reasons: the summary table, predict's
closing line and predictions.json's `calls` all count calls in read/skipped and such files apart.

Each file's part is laid out here (`file_accounting` on the reference path, `tally_accounting` without
one, `with_free_part` for its calls classified without context) and the parts joined (`accounting_table`);
ingest.py, which runs the files, only calls these.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from nanog1.genomics.variants import SKIP_REASONS

if TYPE_CHECKING:
    from nanog1.genomics.ingest import FileResult


#: The accounting table's count columns, before the skip reasons; `counted_without_context` (part of
#: `counted`: calls classified from their alleles alone because the FASTA lacks their contig) is
#: written only when some call was.
ACCOUNTING_TOTALS = ("read", "counted", "counted_without_context", "skipped")


def reason_order(reason: str) -> int:
    """Sort key of a skip reason: `variants.SKIP_REASONS` order, any other after them, so that every
    table and summary lists the reasons alike."""
    return SKIP_REASONS.index(reason) if reason in SKIP_REASONS else len(SKIP_REASONS)


def file_accounting(per_sample: pd.DataFrame, reader_skips: Counter, samples: list[str]) -> pd.DataFrame:
    """Per sample of one file: read = counted + skipped by reason.

    The reader's skips (records dropped before a call existed: malformed lines, no carrier, ...)
    belong to the file's sample when it has one, else to a row with sample '' (the file itself).
    Built with numpy (one DataFrame at the end): this runs once per file.
    """
    owner = samples[0] if len(samples) == 1 else ""
    index = list(per_sample.index)
    if owner not in index and sum(reader_skips.values()):
        index.append(owner)
    reasons = sorted(
        set(per_sample.columns[2:]) | {r for r, k in reader_skips.items() if k}, key=reason_order
    )
    data = {name: np.zeros(len(index), dtype=np.int64) for name in ("read", "counted", *reasons)}
    base = len(per_sample)
    data["read"][:base] = per_sample["calls"].to_numpy()
    data["counted"][:base] = per_sample["counted"].to_numpy()
    for reason in per_sample.columns[2:]:
        data[reason][:base] = per_sample[reason].to_numpy()
    if sum(reader_skips.values()):
        row = index.index(owner)
        for reason, n in reader_skips.items():
            if n:
                data[reason][row] += n
                data["read"][row] += n
    skipped = sum((data[r] for r in reasons), np.zeros(len(index), dtype=np.int64))
    columns = {"read": data["read"], "counted": data["counted"], "skipped": skipped}
    columns.update({r: data[r] for r in reasons})
    return pd.DataFrame(columns, index=pd.Index(index, dtype=object, name="sample"))


def tally_accounting(table: pd.DataFrame) -> pd.DataFrame:
    """The reference-free path's per-sample table (alleles.RecordTally) laid out as `file_accounting`'s."""
    table = table.copy()
    reasons = [c for c in table.columns if c not in ("read", "counted")]
    table.insert(2, "skipped", table[reasons].sum(axis=1))
    table.index.name = "sample"
    return table.astype(np.int64)


def with_free_part(accounting: pd.DataFrame, free: pd.DataFrame) -> pd.DataFrame:
    """One file's accounting: the calls classified in context plus those classified from their alleles
    alone (contig absent from the FASTA), the latter also as `counted_without_context`."""
    total = accounting.add(free, fill_value=0).fillna(0)
    total["counted_without_context"] = free["counted"].reindex(total.index, fill_value=0)
    reasons = sorted((c for c in total.columns if c not in ACCOUNTING_TOTALS), key=reason_order)
    total = total[[*ACCOUNTING_TOTALS, *reasons]].astype(np.int64)
    total.index.name = "sample"
    return total


def accounting_table(results: list[FileResult]) -> pd.DataFrame:
    """Per (file, sample): read = counted + skipped, and skipped by reason (`uns['nanog1']['accounting']`).

    Catalogue matrices carry counts, not calls: they have no rows here.
    """
    frames = []
    for i, r in enumerate(results):
        if r.accounting is None:
            continue
        frame = r.accounting.reset_index()
        frame.insert(0, "file", str(i))
        frames.append(frame)
    if not frames:
        return pd.DataFrame({"file": [], "sample": [], "read": [], "counted": [], "skipped": []})
    table = pd.concat(frames, ignore_index=True)
    totals = [c for c in ACCOUNTING_TOTALS if c in table.columns]
    reasons = sorted([c for c in table.columns if c not in ("file", "sample", *totals)], key=reason_order)
    table[totals + reasons] = table[totals + reasons].fillna(0)
    table = table[["file", "sample", *totals, *reasons]]
    table = table.astype({c: np.int64 for c in (*totals, *reasons)})
    table["sample"] = table["sample"].astype(str)
    table.index = table.index.astype(str)
    return table


def file_row(result: FileResult) -> dict:
    """One file's line of the summary: its accounting rows summed (a matrix: its rows, all counted)."""
    acc = result.accounting
    counted = int(acc["counted"].sum()) if acc is not None else result.records
    return {
        "path": result.path,
        "kind": result.kind,
        "records": int(acc["read"].sum()) if acc is not None else result.records,
        "counted": counted,
        "skipped": int(acc["skipped"].sum()) if acc is not None else 0,
        "samples": len(result.samples),
        "status": result.status,
        "skips": dict(result.skips),
        "filter_values": dict(result.filter_values),
    }
