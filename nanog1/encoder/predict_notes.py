"""What a prediction must tell its reader beside the types: how the input's calls were read, and every
mismatch or warning (issue 31: a mismatch is never silent).

Why one module: `nanog1 predict` (its table line and warnings), its JSON and one-page reports, and the
dashboard's Predict page say the same things from the same records, so the wording lives here once.
Everything is read from the AnnData `predict` annotated: the ingest provenance `uns['nanog1']` (the
accounting table and skip counts, the FILTER values dropped) and `uns['nanog1_predict']` (FILTER rules,
genome builds, protein-change mismatch, channel sets masked, abstentions by reason).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import anndata as ad
import pandas as pd

from nanog1.encoder.input_filter import describe
from nanog1.genomics.variants import filter_counts, top_filter_values
from nanog1.schema import describe_sets

#: Notice kinds, in the order they are shown. The first ten are warnings about the input as a whole
#: (the CLI prints them on stderr); the rest summarise the tumours abstained on, by kind of reason.
WARNING_KINDS = ("sample_sheet", "filter", "genome_build", "assay", "protein_change", "consequence",
                 "masked_sets", "training_overlap", "snv_only", "unreadable_files")


@dataclass(frozen=True)
class Notice:
    """One thing the reader must be told: its kind (WARNING_KINDS, or 'abstain:<reason kind>') and the
    sentence, which names the problem first ('FILTER mismatch: ...')."""

    kind: str
    text: str


def call_counts(adata: ad.AnnData, sample: str | None = None) -> dict | None:
    """Calls read, counted and skipped (by reason, and the FILTER values a PASS-only read dropped), from
    the ingest's accounting table; None for inputs without calls (catalogue matrices). With `sample`,
    that tumour's own rows (its files; the FILTER values are kept for the whole input only)."""
    from nanog1.genomics.accounting import ACCOUNTING_TOTALS

    meta = adata.uns.get("nanog1") or {}
    acc = meta.get("accounting")
    if not isinstance(acc, pd.DataFrame) or not len(acc):
        return None
    if sample is not None and "sample" in acc and len(acc["sample"].unique()) > 1:
        acc = acc[acc["sample"].astype(str) == str(sample)]
        reasons = [c for c in acc.columns if c not in (*ACCOUNTING_TOTALS, "file", "sample")]
        skips = {str(c): int(acc[c].sum()) for c in reasons if int(acc[c].sum())}
        return {"read": int(acc["read"].sum()), "counted": int(acc["counted"].sum()),
                "skipped": int(acc["skipped"].sum()), "skips": skips, "filter_values": {}}
    skips = {str(k): int(v) for k, v in dict(meta.get("skips") or {}).items() if int(v)}
    counts = {"read": int(acc["read"].sum()), "counted": int(acc["counted"].sum()),
              "skipped": int(acc["skipped"].sum()), "skips": skips,
              "filter_values": filter_counts(meta.get("filter_dropped"))}
    unreadable, malformed = unreadable_files(adata), malformed_files(adata)
    if unreadable:  # files, not calls: skips['unreadable_file'] is their number, outside read and skipped
        counts = {**counts, "files_not_read": len(unreadable), "unreadable_files": unreadable,
                  "unreadable_reasons": unreadable_reasons(adata)}
    return {**counts, "malformed_lines": malformed} if malformed else counts


def unreadable_files(adata: ad.AnnData) -> list[str]:
    """The input files skipped whole as unreadable_file (`--on-error skip`: a truncated .vcf.gz, a binary
    file), by path, from the ingest's accounting and inputs tables: a count alone does not tell a lab
    which of its files went untyped."""
    meta = adata.uns.get("nanog1") or {}
    acc, inputs = meta.get("accounting"), meta.get("inputs")
    tables = isinstance(acc, pd.DataFrame) and isinstance(inputs, pd.DataFrame)
    if not tables or "unreadable_file" not in acc:
        return []
    rows = acc.loc[acc["unreadable_file"] > 0, "file"].astype(int).unique()
    return [str(inputs["path"].iloc[i]) for i in rows]


def unreadable_reasons(adata: ad.AnnData) -> list[dict]:
    """Per input file skipped whole as unreadable_file, its path and why ingest could not read it (its
    status: 'truncated or damaged gzip file (...)', 'empty file (zero bytes): not a VCF', ...): a batch's
    truncated download is fetched again, a file of another format is not, and the names alone did not
    tell which is which."""
    meta = adata.uns.get("nanog1") or {}
    acc, inputs = meta.get("accounting"), meta.get("inputs")
    tables = isinstance(acc, pd.DataFrame) and isinstance(inputs, pd.DataFrame)
    if not tables or "unreadable_file" not in acc or "status" not in inputs:
        return []
    found = []
    for i in acc.loc[acc["unreadable_file"] > 0, "file"].astype(int).unique():
        path, why = str(inputs["path"].iloc[i]), str(inputs["status"].iloc[i])
        found.append({"file": path, "why": why.removeprefix(f"{path}: ")})
    return found


def unreadable_note(adata: ad.AnnData, shown: int = 10) -> str:
    """'2 file(s) not read (--on-error skip): P3.vcf.gz: truncated or damaged gzip file (...); scan.vcf: not
    a readable VCF/BCF, ...' (the first `shown`, then how many more); '' for none."""
    found = unreadable_reasons(adata)
    named = [f"{Path(f['file']).name}: {f['why']}" for f in found[:shown]]
    more = f"; and {len(found) - shown} more" if len(found) > shown else ""
    return f"{len(found)} file(s) not read (--on-error skip): " + "; ".join(named) + more if found else ""


def malformed_files(adata: ad.AnnData) -> list[dict]:
    """Per input file that skipped malformed lines (`--on-error skip`): its path, how many, and where the
    first is and what is wrong with it ('line 345: malformed VCF record (...)', ingest's
    `_locate_malformed`; '' in a cohort written before it): a count alone does not tell a lab which of its
    files to mend."""
    meta = adata.uns.get("nanog1") or {}
    acc, inputs = meta.get("accounting"), meta.get("inputs")
    tables = isinstance(acc, pd.DataFrame) and isinstance(inputs, pd.DataFrame)
    if not tables or "malformed_line" not in acc:
        return []
    per_file = acc.groupby(acc["file"].astype(int))["malformed_line"].sum()
    first = inputs["malformed"].fillna("") if "malformed" in inputs else pd.Series([""] * len(inputs))
    return [{"file": str(inputs["path"].iloc[i]), "lines": int(n), "first": str(first.iloc[i])}
            for i, n in per_file.items() if n > 0]


def _malformed_phrase(files: list[dict], k: int = 5) -> str:
    """'BADLINE.vcf line 345 and 1 more, TRUNC.vcf line 1,357' (the first k files, then how many more)."""
    parts = []
    for f in files[:k]:
        line = f["first"].partition(":")[0] if f["first"].startswith("line ") else ""
        more = f" and {f['lines'] - 1:,} more" if f["lines"] > 1 else ""
        parts.append(f"{Path(f['file']).name}{f' {line}' if line else ''}{more}")
    rest = f", and {len(files) - k} more file(s)" if len(files) > k else ""
    return ", ".join(parts) + rest


def skip_table(adata: ad.AnnData) -> pd.DataFrame:
    """One row per skip reason with calls skipped and what it means (empty when nothing was skipped)."""
    from nanog1.genomics.summary import REASON_TEXT

    counts = call_counts(adata) or {"skips": {}}
    values = _filter_values(counts)
    rows = [(r, n, REASON_TEXT.get(r, "") + (f": {values}" if r == "non_pass" and values else ""))
            for r, n in counts["skips"].items()]
    return pd.DataFrame(rows, columns=["reason", "calls", "meaning"]).set_index("reason")


def _filter_values(counts: dict) -> str:
    """'wga 2, oxog 2' for the FILTER values a PASS-only read dropped, where the reader kept them."""
    return ", ".join(f"{v} {n:,}" for v, n in counts.get("filter_values", {}).items())


def reading_line(adata: ad.AnnData, sample: str | None = None) -> str:
    """'26 calls read, 18 counted, 8 skipped (non_pass 8: FILTER wga 2, oxog 2, ...); 2 file(s) not read
    (unreadable_file: P3.vcf.gz, scan.vcf); calls read with --filter PASS (your --filter; ...)', or the
    FILTER phrase alone for catalogue counts; with `sample`, that tumour's own calls (a one-page report).
    A file skipped whole (--on-error skip) is named apart: it is not a call, and ingest's accounting (so
    its summary table and predictions.json's calls block) counts it in unreadable_file only, never in
    read or skipped (the `accounting` module docstring)."""
    record = adata.uns.get("nanog1_predict", {})
    counts = call_counts(adata, sample)
    if counts is None:
        return describe(record)
    n_files = counts["skips"].get("unreadable_file", 0)  # files skipped whole: counted apart, not as calls
    read, skipped = counts["read"], counts["skipped"]
    top = top_filter_values(counts.get("filter_values", {}))
    where = {"non_pass": f": FILTER {top}" if top else "",
             "malformed_line": f": {_malformed_phrase(counts.get('malformed_lines', []))}"
             if counts.get("malformed_lines") else ""}
    why = "; ".join(f"{r} {n:,}{where.get(r, '')}"
                    for r, n in counts["skips"].items() if r != "unreadable_file")
    calls = (f"{read:,} calls read, {counts['counted']:,} counted, {skipped:,} skipped"
             f"{f' ({why})' if why else ''}") if read or not n_files else ""
    files = _file_names(counts.get("unreadable_files", []))
    named = f": {files}" if files else ""
    unread = f"{n_files:,} file(s) not read (unreadable_file{named})" if n_files else ""
    left_out = left_out_phrase(adata, sample)
    return "; ".join(part for part in (calls, left_out, unread, describe(record)) if part)


def left_out_phrase(adata: ad.AnnData, sample: str | None = None) -> str:
    """'5 call(s) on chrM, GL000220.1 left out of SBS96 (0.07 % of the substitutions, within the 1 %
    tolerance; their SBS6 class is counted)': the calls on contigs the reference lacks that were too few to
    cost a tumour its SBS96/ID83 (ingest.left_out_of_context_notes, uns['nanog1']['left_out_of_context']),
    per set, for the whole input or one `sample`; '' for none. A tumour above the tolerance is told apart,
    as a masked set (masked_note)."""
    from nanog1.genomics.channels import DERIVED_FROM
    from nanog1.genomics.measured_sets import LEFT_OUT_OF_CONTEXT

    record = dict((adata.uns.get("nanog1") or {}).get(LEFT_OUT_OF_CONTEXT) or {})
    tolerance = float(record.get("tolerance", 0.0))
    parts = []
    for derived, source in DERIVED_FROM.items():
        table = dict(record.get(source) or {})
        names = [str(s) for s in table.get("sample", [])]
        rows = [i for i, s in enumerate(names) if sample is None or s == str(sample)]
        if not rows:
            continue
        left = sum(int(table["left_out"][i]) for i in rows)
        calls = sum(int(table["calls"][i]) for i in rows)
        contigs = list(dict.fromkeys(c.strip() for i in rows for c in str(table["contigs"][i]).split(",")))
        kind = "substitutions" if source == "SBS96" else "indels"
        whose = "its" if sample is not None or len(rows) == 1 else f"their {len(rows)} tumours'"
        where = ", ".join(contigs[:5]) + (", ..." if len(contigs) > 5 else "")
        share = f"{100 * left / calls:.2f} % of {whose} {calls:,} {kind}"
        parts.append(f"{left:,} call(s) on {where} left out of {source} ({share}, "
                     f"within the {100 * tolerance:g} % tolerance; their {derived} class is counted)")
    return "; ".join(parts)


def _file_names(paths: list[str], k: int = 5) -> str:
    """'P3.vcf.gz, scan.vcf' (file names, the first k, then how many more)."""
    names = [Path(p).name for p in paths]
    more = f" and {len(names) - k} more" if len(names) > k else ""
    return ", ".join(names[:k]) + more


def operating_point_line(adata: ad.AnnData) -> str:
    """'operating point new-study: confidence threshold 0.859, fitted on ...; on studies the model was not
    trained on: leave-one-study-out 52 % accepted at 0.90 top-1, ...' (what the threshold gave there, where
    the model's calibration records it)."""
    record = adata.uns.get("nanog1_predict", {})
    name = record.get("operating_point", "in-study")
    threshold = float(record.get("confidence_threshold", 0.0))
    head = f"operating point {name}: confidence threshold {threshold:.3f}"
    fitted = record.get("operating_point_fitted_on", "")
    head += f", fitted on {fitted}" if fitted else ""
    measured = record.get("operating_point_transfer") or {}
    if not measured:
        return f"{head}; not measured on other studies{_raised_note(record)}"
    parts = [f"{split.replace('_', ' ')} {float(m['coverage']):.0%} accepted at "
             f"{float(m['top1_accepted']):.2f} top-1" for split, m in measured.items()]
    return f"{head}; on studies the model was not trained on: {', '.join(parts)}{_raised_note(record)}"


def _raised_note(record: dict) -> str:
    """'; raised for tumours that measured fewer sets: 0.847 for 3 tumour(s) without SBS96+ID83 (validation
    top-1 0.61), ...' where a threshold per measured pattern replaced the operating point's ('': none did)."""
    raised = {k: p for k, p in (record.get("pattern_thresholds") or {}).items() if "threshold" in p}
    untyped = (record.get("pattern_thresholds") or {}).get("unvalidated", {}).get("tumours", 0)
    parts = [f"{float(p['threshold']):.3f} for {int(p['tumours'])} tumour(s) without {'+'.join(p['masked'])}"
             + (f" (validation top-1 {float(p['top1']):.2f})" if "top1" in p else "")
             for p in raised.values()]
    note = f"; raised for tumours that measured fewer sets: {', '.join(parts)}" if parts else ""
    if untyped:
        note += (f"; {untyped} tumour(s) not typed: the sets they measured were never validated for this "
                 "model (no threshold applies)")
    return note + _not_raised_note(record)


def _not_raised_note(record: dict) -> str:
    """'; not raised for 12 tumour(s) that measured fewer sets (without SBS96+ID83+ID12: their pattern's
    threshold 0.799 is below this point's; validation top-1 0.49)': tumours whose pattern threshold did not
    replace the operating point's, whose stated rates were measured on complete catalogues ('': none)."""
    kept = record.get("pattern_thresholds_not_raised") or {}
    parts = [f"{int(p['tumours'])} tumour(s) that measured fewer sets (without {'+'.join(p['masked'])}: "
             f"their pattern's threshold {float(p['threshold']):.3f} is below this point's"
             + (f"; validation top-1 {float(p['top1']):.2f})" if "top1" in p else ")")
             for p in kept.values()]
    return f"; not raised for {', '.join(parts)}" if parts else ""


def masked_note(record: dict) -> str:
    """'' when every set the model reads was measured for every tumour; else which sets are masked as
    unmeasured, for which tumours, and why ('indels (ID83+ID12) not measured for T1 (Strelka2 SNV file
    only): masked as unmeasured, never read as zero mutations')."""
    masked = [str(m) for m in record.get("channel_sets_masked", [])]
    per = {t: s.split("+") for t, s in _columns(record.get("channel_sets_masked_per_tumour"), "sets")}
    why = dict(_columns(record.get("unmeasured_why"), "why"))
    told = {t: (s.split("+"), why[t]) for t, s in _columns(record.get("unmeasured_why"), "sets")}
    n_masked = int(record.get("tumours_masked", len(per)))
    unexplained = [m for m in masked if sum(m in sets for sets, _ in told.values()) < n_masked]
    parts = [_whole_note(record, unexplained)] if unexplained else []
    groups: dict[tuple[tuple[str, ...], str], list[str]] = {}
    for sample, (sets, why) in told.items():  # the sets its input files do not cover, and which files
        groups.setdefault((tuple(sets), why), []).append(sample)
    for sample, sets in per.items():  # the rest of a tumour's own masked sets
        extra = tuple(m for m in sets if m not in masked and m not in told.get(sample, ([], ""))[0])
        groups.setdefault((extra, "its input files did not measure them"), []).append(sample)
    for (sets, why), samples in groups.items():
        if sets:
            names = ", ".join(samples[:5]) + (f" and {len(samples) - 5} more" if len(samples) > 5 else "")
            why = why.replace("its input files", "their input files") if len(samples) > 1 else why
            parts.append(f"{describe_sets(sets)} not measured for {names} ({why}): {_how_masked(record)}")
    event_view = str(record.get("event_view_masking", ""))
    return "; ".join(parts) + (f". {event_view}" if parts and event_view else "")


def _how_masked(record: dict) -> str:
    """How a masked set is read: key-padded by a catalogue model; hidden from an event model's summary."""
    if record.get("event_view_masking"):
        return "hidden from the model's catalogue summary"
    return "masked as unmeasured, never read as zero mutations"


def _columns(table, column: str) -> list[tuple[str, str]]:
    """(tumour, value) pairs of a record of parallel lists ({'tumour': [...], column: [...]})."""
    table = dict(table or {})
    if "tumour" not in table:
        return []
    return [(str(t), str(v)) for t, v in zip(table["tumour"], table[column], strict=True)]


def _whole_note(record: dict, masked: list[str]) -> str:
    """The sentence for sets masked for every tumour, when the input files do not say why."""
    scored = "+".join(record.get("channel_sets_scored", []))
    # channel_sets_scored: the sets measured for every tumour (each may have measured more of its own)
    measured = f"it measured {scored}" if scored else "no set was measured for every tumour"
    why = ("a VCF or MAF without a reference FASTA gives SBS6, DBS78 and ID12 only"
           if record.get("input_filter", "n/a") != "n/a"  # per-mutation input, not catalogue counts
           else "a catalogue matrix holds one set: give the tumours' SBS96, DBS78 and ID83 matrices together")
    how = ("they are hidden from the model's catalogue summary" if record.get("event_view_masking") else
           "they are scored as unmeasured, never as zero mutations, and the prediction rests on the other "
           "sets")
    return (f"channel sets masked as unmeasured: {'+'.join(masked)}. The model reads them but the input "
            f"did not measure them ({measured}; {why}): {how}")


def input_warnings(adata: ad.AnnData) -> list[Notice]:
    """The warnings about the input as a whole (WARNING_KINDS, in that order): what the CLI prints on stderr
    and each one-page report repeats. Read from uns['nanog1_predict'] alone (no per-tumour work), and from
    the ingest record for a sample sheet that was not UTF-8 (its sample names are as decoded)."""
    record = adata.uns.get("nanog1_predict", {})
    return [Notice(kind, text) for kind, text in (
        ("sample_sheet", sheet_notice(adata)),
        ("filter", record.get("filter_mismatch", "")),
        ("genome_build", record.get("genome_build_note", "")),
        ("assay", record.get("assay_note", "")),
        ("protein_change", record.get("protein_change_mismatch", "")),
        ("consequence", record.get("consequence_mismatch", "")),
        ("masked_sets", masked_note(record)),
        ("training_overlap", record.get("training_overlap", "")),
        ("snv_only", snv_only_note(record)),
        ("unreadable_files", unreadable_note(adata)),
    ) if text]  # fmt: skip


def sheet_notice(adata: ad.AnnData) -> str:
    """How ingest decoded a sample sheet that was not UTF-8 (uns['nanog1']['sample_sheet']['notice'],
    samplesheet._check_text), '' for a UTF-8 sheet or none."""
    return str(dict(adata.uns.get("nanog1", {}).get("sample_sheet") or {}).get("notice", ""))


def snv_only_note(record: dict, shown: int = 10) -> str:
    """'cohort.maf: 40 tumours with 3,120 substitutions together and not one indel in the whole file: if its
    caller did not call indels, rerun with --not-measured indels (read now as zero indels); T1: 1,204
    substitutions and no indel: ...': the input files of uns['nanog1_predict']['unstated_snv_only_files'],
    then the run of ['unstated_snv_only_run'] ('40 input files (40 tumours) with 2,400 substitutions together
    and not one indel in the whole run: ...'), then the tumours of ['unstated_snv_only'] (the first `shown`,
    then how many more); '' for none."""
    files = dict(record.get("unstated_snv_only_files") or {})
    whole = [f"{Path(str(f)).name}: {n}" for f, n in zip(files.get("file", []), files.get("note", []),
                                                           strict=True)]
    run = str(dict(record.get("unstated_snv_only_run") or {}).get("note", ""))
    whole += [run] if run else []
    notes = [f"{t}: {n}" for t, n in _columns(record.get("unstated_snv_only"), "note")]
    more = (f"; and {len(notes) - shown} more (uns['nanog1_predict']['unstated_snv_only'])"
            if len(notes) > shown else "")
    return "; ".join(whole + notes[:shown]) + more


def notices(adata: ad.AnnData, examples: int = 3) -> list[Notice]:
    """Every warning of one prediction run, warnings about the input first (`input_warnings`), then one
    notice per kind of abstention reason (out of distribution, burden, assay, low confidence, ...) naming a
    few tumours."""
    record = adata.uns.get("nanog1_predict", {})
    found = input_warnings(adata)
    reasons = adata.obs.get("abstain_reason", pd.Series(dtype=str)).astype(str)
    for kind, n in record.get("abstained_by_reason", {}).items():
        hits = [(s, r) for s, r in reasons.items() if any(p.startswith(kind) for p in r.split("; "))]
        shown = "; ".join(f"{s}: {r}" for s, r in hits[:examples]) + ("; …" if len(hits) > examples else "")
        text = f"abstained ({kind}): {n} of {adata.n_obs} tumour(s): {shown}"
        found.append(Notice(f"abstain:{kind}", text))
    return found


def summary_line(adata: ad.AnnData, table: pd.DataFrame) -> str:
    """The CLI's closing line: tumours, abstentions by reason (and how many tumours count under several), how
    the calls were read, tumours without protein change (when the model reads codons)."""
    record = adata.uns["nanog1_predict"]
    kinds = record["abstained_by_reason"]
    # a tumour with several reasons counts under each: say how many, or the counts seem not to add up
    several = int(table["abstain_reason"].astype(str).str.contains("; ", regex=False).sum())
    overlap = f"; {several} of them for more than one reason" if several else ""
    why = f" ({', '.join(f'{k} {n}' for k, n in kinds.items())}{overlap})" if kinds else ""
    bare = record.get("tumours_without_protein_change", 0) if record["protein_change_mismatch"] else 0
    unannotated = f"; {bare} without protein change" if bare else ""
    no_csq = record.get("tumours_without_consequence", 0) if record.get("consequence_mismatch") else 0
    unannotated += f"; {no_csq} without consequence" if no_csq else ""
    n_abstained = int(table["abstain"].sum())
    return f"{len(table)} tumour(s), {n_abstained} abstained{why}; {reading_line(adata)}{unannotated}"


@contextmanager
def mismatch_warnings_stated() -> Iterator[None]:
    """Run `predict` without raising its FILTER, genome-build, protein-change, consequence mismatch and
    training-overlap warnings: for callers (the CLI, the dashboard) that state them from
    uns['nanog1_predict'] through `notices`."""
    from nanog1.encoder.evaluate import TrainingOverlapWarning
    from nanog1.encoder.input_filter import FilterMismatchWarning
    from nanog1.encoder.predictor import GenomeBuildWarning
    from nanog1.encoder.protein_input import ConsequenceMismatchWarning, ProteinChangeMismatchWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FilterMismatchWarning)
        warnings.simplefilter("ignore", GenomeBuildWarning)
        warnings.simplefilter("ignore", ProteinChangeMismatchWarning)
        warnings.simplefilter("ignore", ConsequenceMismatchWarning)
        warnings.simplefilter("ignore", TrainingOverlapWarning)
        yield
