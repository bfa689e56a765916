"""Which channel sets each sample measured, recorded on the cohort AnnData, and the notes about the rest.

A sample's sets are the union of those its files measured (`COVERS`: what a file's caller says it holds),
less a set a file lost: its folded set without the source (no reference), or calls on contigs the FASTA
lacks beyond `channels.WITHOUT_CONTEXT_TOLERANCE` (`measured_per_sample`, `context_totals`; issue 31). The
record is `obsm['measured_sets']` with `uns['nanog1']['channel_sets']`/`exact_for` (`mark_measured`); the
user's `--not-measured` adds to it (`declare_not_measured`), and so do calls read without context
(`mark_partial`, `left_out_of_context_notes`). Why a set is unmeasured is read back from a cohort here too
(`split_file_reasons`, `without_context_reasons`), for ingest's notes and predict's abstentions.

Apart from ingest.py, which plans and runs the files: this is the per-sample bookkeeping that ingest,
predict (a cohort given `--not-measured`) and cohort merge share.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from nanog1.errors import UserError
from nanog1.genomics.channels import DERIVED_FROM, WITHOUT_CONTEXT_TOLERANCE
from nanog1.genomics.partial_reference import WITHOUT_CONTEXT

if TYPE_CHECKING:
    from nanog1.genomics.ingest import FileResult


#: What a file can measure, by what its caller's header says it holds (vcf.split_content): every set, the
#: substitution sets (adjacent SNVs merge into DBS78 doublets, as SigProfilerMatrixGenerator does), or the
#: indel sets. A file measures a set it does not cover for no sample: it is unmeasured, never zero.
COVERS = {
    None: ("SBS96", "DBS78", "ID83", "SBS6", "ID12"),
    "snv": ("SBS96", "DBS78", "SBS6"),
    "indel": ("ID83", "ID12"),
}


def measured_per_sample(results: list[FileResult], order: dict[str, int]) -> np.ndarray:
    """Bool [samples, sets] (`schema.SET_NAMES` columns): the sets each sample measured exactly, the one
    rule per sample (issue 31). A sample's sets are the union of those its files measured (a Strelka2 SNV
    file and its indel file, a PCAWG sample's SBS, DBS and ID matrices), less any set a file lost: one
    holding the folded set (SBS6, ID12) without its source (no reference) leaves the sample's SBS96/ID83
    incomplete, and so do calls on contigs the FASTA lacks when, over all the sample's files, they are more
    than WITHOUT_CONTEXT_TOLERANCE of its substitutions (indels): fewer are left out of SBS96/ID83 and the
    set stays exact (`context_totals`)."""
    from nanog1.genomics.partial_reference import context_tolerated
    from nanog1.schema import SET_NAMES, with_derived_sets

    names = np.asarray(SET_NAMES)
    got = np.zeros((len(order), len(SET_NAMES)), dtype=bool)
    lost = np.zeros_like(got)
    for r in results:
        for i, sample in enumerate(r.samples):
            sets = with_derived_sets(list(r.sample_sets(i)))
            row = order[sample]
            got[row] |= np.isin(names, sets)
            folded = [src for d, src in DERIVED_FROM.items() if d in sets and src not in sets]
            lost[row] |= np.isin(names, folded)
    for source, (left, total) in context_totals(results, order).items():
        lost[:, SET_NAMES.index(source)] |= ~context_tolerated(left, total)
    return got & ~lost


def context_totals(
    results: list[FileResult], order: dict[str, int]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per context set (SBS96, ID83): per sample (`order` rows) its calls classified without context
    (contig absent from the FASTA) and all its calls of that kind, summed over its reference-path files
    (partial_reference.left_out_of_context), so a chrM-only VCF beside the sample's main VCF is weighed
    against all of the sample's calls."""
    from nanog1.genomics.partial_reference import left_out_of_context

    out = {src: (np.zeros(len(order), dtype=np.int64), np.zeros(len(order), dtype=np.int64))
           for src in DERIVED_FROM.values()}
    for r in results:
        if r.without_context is None or r.kind == "matrix":
            continue
        rows = np.array([order[s] for s in r.samples], dtype=np.int64)
        for src, (left, total) in left_out_of_context(r.counts, r.without_context).items():
            np.add.at(out[src][0], rows, left)
            np.add.at(out[src][1], rows, total)
    return out


def sets_measured_for_all(measured: np.ndarray) -> list[str]:
    """Sets measured for every sample (the cohort-wide record, `uns['nanog1']['channel_sets']`); none
    for a cohort without samples."""
    from nanog1.schema import SET_NAMES

    return [s for j, s in enumerate(SET_NAMES) if len(measured) and measured[:, j].all()]


def all_missing_contigs(results: list[FileResult]) -> Counter:
    """Calls on contigs absent from the FASTA, by contig, over all files (`IngestReport.missing_contigs`,
    `uns['nanog1']['without_context']`)."""
    total: Counter = Counter()
    for r in results:
        total.update(r.missing_contigs)
    return total


def mark_measured(adata, measured: np.ndarray) -> None:
    """Record the sets each sample measured (`measured_per_sample`): `obsm['measured_sets']` (bool,
    samples x sets), and in `uns['nanog1']['channel_sets']` a set measured for some samples but not all
    as 'partial', exact for the samples `uns['nanog1']['exact_for']` lists (the sets measured for every
    sample stay 'exact', so a reader of the cohort as a whole never reads an unmeasured set as zeros)."""
    from nanog1.genomics.channels import PARTIAL
    from nanog1.schema import MEASURED_SETS, SET_NAMES

    adata.obsm[MEASURED_SETS] = pd.DataFrame(measured, index=adata.obs_names.copy(), columns=list(SET_NAMES))
    meta = adata.uns["nanog1"]
    status = dict(meta["channel_sets"])
    exact_for = dict(meta.get("exact_for") or {})
    for j, name in enumerate(SET_NAMES):
        column = measured[:, j]
        if column.any() and not column.all():
            status[name] = PARTIAL
            exact_for[name] = np.asarray(adata.obs_names[column], dtype=object)
    meta["channel_sets"] = status
    if exact_for:
        meta["exact_for"] = exact_for


def _refuse_nothing_left(was: np.ndarray, measured: np.ndarray, sets: tuple[str, ...], names) -> None:
    """A UserError when `--not-measured sets` leaves tumours that measured something with no measured set
    (an SBS96 matrix declared `--not-measured substitutions`, alone or beside VCFs): ingest wrote a cohort
    of nothing, and predict typed such tumours from no data at all (each the same type, held back only by
    a near-1 threshold). The per-name check (schema.parse_not_measured) cannot see it: what is left depends
    on what each tumour's inputs measured."""
    from nanog1.schema import SET_NAMES, describe_sets

    stranded = np.flatnonzero(was.any(axis=1) & ~measured.any(axis=1))
    if not len(stranded):
        return
    had = [n for n, any_ in zip(SET_NAMES, was[stranded].any(axis=0), strict=True) if any_]
    shown = ", ".join(str(names[i]) for i in stranded[:3]) + (", ..." if len(stranded) > 3 else "")
    raise UserError(f"--not-measured {'+'.join(sets)}: the inputs of {len(stranded)} of {len(was)} tumour(s) "
                    f"({shown}) measured only {describe_sets(had)}, so nothing would be left to read for "
                    "them; name only the sets the calls lack (or give those inputs in a run of their own)")


def declare_not_measured(adata, sets) -> list[str]:
    """Record the channel sets `sets` (names or groups, schema.parse_not_measured) as unmeasured for every
    tumour of `adata`, as the user declared them (`--not-measured`: a substitution-only VCF that does not
    say so in its header, a caller run in SNV mode): the same per-sample record a Strelka2 SNV file alone
    gives (`obsm['measured_sets']`, `mark_measured`; the models key-pad them, never read zeros), the sets
    'not_computable' (or 'partial') in `uns['nanog1']['channel_sets']`, and obs['not_measured'] (the sets
    declared, '+'-joined; predict states the reason, schema.DECLARED_WHY). Returns the notes: what was
    declared, and the tumours that hold counts in a declared set all the same (kept in X, masked)."""
    from nanog1.genomics.channels import NOT_COMPUTABLE, set_slice
    from nanog1.genomics.cohort import channel_set_status
    from nanog1.schema import (
        DECLARED_UNMEASURED,
        SET_NAMES,
        channel_sets_present,
        describe_sets,
        measured_sets_per_sample,
        parse_not_measured,
    )

    sets = parse_not_measured(sets)
    if not sets or not adata.n_obs:
        return []
    was = measured_sets_per_sample(adata).to_numpy(dtype=bool)
    measured = was.copy()
    measured[:, [SET_NAMES.index(s) for s in sets]] = False
    _refuse_nothing_left(was, measured, sets, adata.obs_names)
    meta = adata.uns.setdefault("nanog1", {})
    if not meta.get("channel_sets"):
        meta["channel_sets"] = channel_set_status(channel_sets_present(adata))
    meta["channel_sets"] = {**dict(meta["channel_sets"]), **dict.fromkeys(sets, NOT_COMPUTABLE)}
    meta["channel_sets_present"] = [s for s in meta.get("channel_sets_present", SET_NAMES) if s not in sets]
    if meta.get("exact_for"):
        meta["exact_for"] = {k: v for k, v in dict(meta["exact_for"]).items() if k not in sets}
    mark_measured(adata, measured)
    # object first: a categorical column (a cohort of several tumours) cannot take "" as a fill value
    before = (adata.obs[DECLARED_UNMEASURED].astype(object).fillna("").astype(str)
              if DECLARED_UNMEASURED in adata.obs else pd.Series("", index=adata.obs_names))
    adata.obs[DECLARED_UNMEASURED] = ["+".join(s for s in SET_NAMES if s in set(b.split("+")) | set(sets))
                                      for b in before]
    notes = [f"{describe_sets(sets)} declared not measured (--not-measured) for all {adata.n_obs} tumour(s): "
             "recorded as unmeasured (obsm['measured_sets']), never as zero mutations"]
    counts = np.asarray(adata.X.toarray() if hasattr(adata.X, "toarray") else adata.X)
    for s in sets:
        held = counts[:, set_slice(s)].sum(axis=1)
        if (held > 0).any() and s not in DERIVED_FROM:  # a folded set repeats its source
            who = ", ".join(f"{t} {int(n)}" for t, n in zip(adata.obs_names[held > 0], held[held > 0],
                                                              strict=True))
            notes.append(f"{s} declared not measured but counted in the input ({who}): kept in X and masked "
                         "as unmeasured all the same")
    return notes


def mark_partial(adata, results: list[FileResult]) -> None:
    """Record the calls on contigs absent from the FASTA (see `partial_reference`) by contig in
    `uns['nanog1']['without_context']` ({'contig_not_in_reference': {contig: calls}}); the sets they
    left inexact for their samples are in the per-sample record (`mark_measured`: SBS96/ID83 'partial',
    exact for the samples in `uns['nanog1']['exact_for']`, not used as a whole by fitting and the models),
    and 'partial' (exact for no sample) where every sample's calls fell back beyond the tolerance
    (WITHOUT_CONTEXT_TOLERANCE; a sample within it keeps the set exact, `left_out_of_context_notes`)."""
    from nanog1.genomics.channels import NOT_COMPUTABLE, PARTIAL
    from nanog1.genomics.partial_reference import context_tolerated

    missing = all_missing_contigs(results)
    if not missing:
        return
    meta = adata.uns["nanog1"]
    status, exact_for = dict(meta["channel_sets"]), dict(meta.get("exact_for") or {})
    order = {str(s): i for i, s in enumerate(adata.obs_names)}
    for source, (left, total) in context_totals(results, order).items():
        fell_back = not context_tolerated(left, total).all()
        if fell_back and status[source] == NOT_COMPUTABLE:
            status[source] = PARTIAL
            exact_for[source] = np.asarray([], dtype=object)
    meta["channel_sets"], meta["exact_for"] = status, exact_for
    meta["without_context"] = {WITHOUT_CONTEXT: {str(k): int(v) for k, v in missing.items()}}


#: uns['nanog1'] key of the calls left out of a context set that stayed exact (left_out_of_context_notes).
LEFT_OUT_OF_CONTEXT = "left_out_of_context"


#: Each context set's kind of call, in the notes.
_CONTEXT_KIND = {"SBS96": "substitutions", "ID83": "indels"}


def left_out_of_context_notes(adata, results: list[FileResult]) -> list[str]:
    """The samples whose calls on contigs the FASTA lacks are within WITHOUT_CONTEXT_TOLERANCE of their
    substitutions (indels), so their SBS96 (ID83) stayed exact with those calls left out of it (counted in
    SBS6/ID12 all the same): recorded in `uns['nanog1']['left_out_of_context']` ({set: {'sample',
    'left_out', 'calls', 'contigs'}}, parallel arrays; 'tolerance'; predict_notes.left_out_phrase reads
    it) and returned as notes naming the calls, contigs and share, so a spectrum that lacks them is never
    silent. Sets the sample does not measure for another reason (a declared `--not-measured`) are not
    claimed exact."""
    from nanog1.genomics.partial_reference import context_tolerated
    from nanog1.schema import measured_sets_per_sample

    if not all_missing_contigs(results):
        return []
    samples = [str(s) for s in adata.obs_names]
    measured = measured_sets_per_sample(adata)
    record, notes = {}, []
    for source, (left, total) in context_totals(results, {s: i for i, s in enumerate(samples)}).items():
        kept = (left > 0) & context_tolerated(left, total) & measured[source].to_numpy(dtype=bool)
        rows = np.flatnonzero(kept)
        if not len(rows):
            continue
        derived = next(d for d, src in DERIVED_FROM.items() if src == source)
        where = _contigs_by_sample(results, derived)
        record[source] = {"sample": np.asarray([samples[i] for i in rows], dtype=object),
                          "left_out": left[rows].astype(np.int64), "calls": total[rows].astype(np.int64),
                          "contigs": np.asarray([_named(where[samples[i]]) for i in rows], dtype=object)}
        notes += _left_out_lines(where, samples, rows, left, total, source, derived)
    if record:
        adata.uns["nanog1"][LEFT_OUT_OF_CONTEXT] = {**record, "tolerance": WITHOUT_CONTEXT_TOLERANCE}
    return notes


def _left_out_lines(where: dict[str, Counter], samples, rows, left, total, source: str, derived: str
                    ) -> list[str]:
    """One note per sample (a cohort of more than three: one for all) of the calls left out of `source`;
    `where`: each sample's contigs of those calls (`_contigs_by_sample`)."""
    kind, tol = _CONTEXT_KIND[source], f"{100 * WITHOUT_CONTEXT_TOLERANCE:g} %"
    tail = f"their {derived} class is counted and {source} stays exact"
    if len(rows) <= 3:
        return [f"{samples[i]}: {int(left[i]):,} call(s) on {_named(where[samples[i]])} "
                f"(not in the reference) left out of {source} ({100 * left[i] / total[i]:.2f} % of its "
                f"{int(total[i]):,} {kind}, within the {tol} tolerance); {tail}" for i in rows]
    worst = max(100 * left[i] / total[i] for i in rows)
    names = _named(sum((where[samples[i]] for i in rows), Counter()))
    return [f"{len(rows)} tumours: {int(left[rows].sum()):,} call(s) on {names} (not in the reference) left "
            f"out of {source} (at most {worst:.2f} % of a tumour's {kind}, within the {tol} tolerance; "
            f"uns['nanog1']['{LEFT_OUT_OF_CONTEXT}']); {tail} for them"]


def _contigs_by_sample(results: list[FileResult], derived: str) -> defaultdict[str, Counter]:
    """Per sample, the contigs of its calls classified without context in `derived` (SBS6, ID12) and how
    many: on the reference path those are the events whose channel lies in the derived set itself. One
    pass over the files (a cohort of thousands of tumours each with a chrM call reads each file once)."""
    from nanog1.genomics.channels import set_slice

    block, out = set_slice(derived), defaultdict(Counter)
    for r in results:
        ev = r.events
        if r.without_context is None or ev is None or ev.contigs is None:
            continue
        pick = (ev.channel >= block.start) & (ev.channel < block.stop)
        pairs = zip(ev.sample[pick].tolist(), ev.contig[pick].tolist(), strict=True)
        for (i, c), n in Counter(pairs).items():
            out[r.samples[i]][str(ev.contigs[c])] += n
    return out


def _named(found: Counter) -> str:
    """Up to five contigs, commonest first ('MT, GL000220.1, ...')."""
    names = [c for c, _ in found.most_common(5)]
    return ", ".join(names) + (", ..." if len(found) > 5 else "")


def split_file_reasons(adata) -> dict[str, tuple[list[str], str]]:
    """Per sample whose every input file holds one kind of call only (a Strelka2 SNV file without its
    indel file): the sets none of its files covers and why ({'T1': (['ID83', 'ID12'], 'Strelka2 SNV file
    only')}). From the provenance's `inputs` (column `content`) and accounting tables (which files fed
    which sample); {} without them."""
    from nanog1.genomics.vcf import SPLIT_KIND

    meta = adata.uns.get("nanog1") or {}
    inputs, acc = meta.get("inputs"), meta.get("accounting")
    if not isinstance(inputs, pd.DataFrame) or "content" not in inputs or not isinstance(acc, pd.DataFrame):
        return {}
    content = inputs["content"].fillna("").astype(str).to_numpy()
    files: dict[str, set[str]] = {}
    for file, sample in zip(acc["file"].astype(int), acc["sample"].astype(str), strict=True):
        if sample and 0 <= file < len(content):
            files.setdefault(sample, set()).add(content[file])
    kinds = SPLIT_KIND
    out = {}
    for sample, held in files.items():
        if held and all(c in kinds for c in held):
            covered = {s for c in held for s in COVERS[kinds[c]]}
            out[sample] = ([s for s in COVERS[None] if s not in covered], " + ".join(sorted(held)) + " only")
    return out


def without_context_reasons(adata) -> dict[str, tuple[list[str], str]]:
    """Per sample some of whose calls lie on contigs the reference lacks (counted without context, so its
    SBS96 and ID83 are not exact: partial_reference): (['SBS96', 'ID83'], why), the why saying how many
    calls and on which contigs ('5 calls on contigs the reference lacks (chrM 1, ...)'). From the
    accounting's `counted_without_context` and the provenance's `without_context`; {} without them. A set
    the sample measured all the same (its calls there within WITHOUT_CONTEXT_TOLERANCE, left out of it:
    `left_out_of_context_notes`) is not named; a sample left with none is not listed."""
    from nanog1.schema import measured_sets_per_sample

    meta = adata.uns.get("nanog1") or {}
    acc = meta.get("accounting")
    if not isinstance(acc, pd.DataFrame) or "counted_without_context" not in acc:
        return {}
    per = acc.groupby(acc["sample"].astype(str))["counted_without_context"].sum()
    contigs = Counter({str(k): int(v) for k, v in
                       dict(dict(meta.get("without_context") or {}).get(WITHOUT_CONTEXT, {})).items()})
    shown = ", ".join(f"{c} {n:,}" for c, n in contigs.most_common(3)) + (", ..." if len(contigs) > 3 else "")
    where = f" ({shown})" if shown else ""
    measured = measured_sets_per_sample(adata)
    out = {}
    for sample, n in per.items():
        sets = [s for s in ("SBS96", "ID83") if sample not in measured.index or not measured.at[sample, s]]
        if sample and n > 0 and sets:
            out[sample] = (sets, f"{int(n):,} of its calls on contigs the reference lacks{where}, counted "
                                 "without sequence context")
    return out


def unmeasured_notes(adata) -> list[str]:
    """One note per kind of split file: which samples lack which sets, recorded as unmeasured."""
    from nanog1.schema import describe_sets, measured_sets_per_sample

    reasons = split_file_reasons(adata)
    if not reasons:
        return []
    measured = measured_sets_per_sample(adata)
    groups: dict[tuple[str, str], list[str]] = {}
    for sample, (uncovered, why) in reasons.items():
        if sample in measured.index:
            row = measured.loc[sample]
            missing = [s for s in uncovered if not row[s]]
            if missing:
                groups.setdefault((describe_sets(missing), why), []).append(sample)
    return [f"{what} not measured for {', '.join(samples[:5])}{' …' if len(samples) > 5 else ''} ({why}): "
            "recorded as unmeasured (obsm['measured_sets']), never as zero mutations; give the tumour's "
            "other file with a sample sheet naming both" for (what, why), samples in groups.items()]
