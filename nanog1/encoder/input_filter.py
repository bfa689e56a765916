"""Which calls a model reads: the FILTER rule it was trained with, and the one its input was read with.

Why: a model trained on every call (PASS and non-PASS: `tcga-exome`, MC3 with its FILTER column
ignored) sees a different tumour when only PASS calls reach it, and the reverse; that mismatch must
never be silent (issue 31). So a model records its rule (`input_filter` in model.pt, or in its card
for a packaged model), `nanog1 predict` ingests VCF/MAF inputs with that rule by default, an explicit
`--filter` overrides it, and the outputs state both rules and any mismatch.

Rules are `nanog1 ingest --filter` values: "PASS" (PASS or '.' records only) or "all". A model
trained on catalogue matrices (pcawg-catalogue) states none: its inputs keep the ingest default (PASS).
"""

from __future__ import annotations

from dataclasses import dataclass

from nanog1.genomics.skip_policy import FILTER_RULES as RULES
from nanog1.genomics.skip_policy import spell_filter_rule


class FilterMismatchWarning(UserWarning):
    """The input was read with another FILTER rule than the model was trained with."""

#: What `nanog1 predict` applies when neither the user nor the model names a rule (the ingest default).
DEFAULT_RULE = "PASS"
DESCRIBED = {"PASS": "PASS calls only", "all": "every call, PASS and non-PASS"}


def check_rule(rule: str | None, where: str = "--filter") -> str | None:
    """`rule` as RULES spells it, matched case-insensitively (`--filter pass` is PASS), or None; a
    UserError for anything else (`spell_filter_rule`, the one ingest's options use)."""
    return None if rule is None else spell_filter_rule(rule, where)


def model_rule(saved: dict, card: dict) -> str | None:
    """The FILTER rule a model was trained with: model.pt's `input_filter`, else its card's, else None
    (unstated: a catalogue-trained model, or a run trained before models recorded it)."""
    rule = saved.get("input_filter") or card.get("input_filter") or None
    return check_rule(rule, "the model's input_filter")


def cohort_rule(adata) -> str | None:
    """The FILTER rule an ingested cohort was read with (its provenance `uns['nanog1']['options']`), when it
    holds per-mutation records (tokens); None for catalogue counts (no FILTER to apply: a matrix's cohort
    has an empty token table) or no record."""
    from nanog1.schema import TOKENS

    tokens, accounting = adata.uns.get(TOKENS), (adata.uns.get("nanog1") or {}).get("accounting")
    if not tokens or not (len(tokens.get("channel", ())) or _call_rows(accounting)):
        return None
    rule = ((adata.uns.get("nanog1") or {}).get("options") or {}).get("filter")
    return str(rule) if rule in RULES else None


def _call_rows(accounting) -> int:
    """Rows of ingest's accounting table of call files that were read: a file skipped whole as
    unreadable_file (--on-error skip) has a row but was never read, so a catalogue matrix beside it is
    still catalogue counts (it was said to be 'read with --filter PASS'); a VCF read whole that holds no
    record (read 0) is a call file, read under the rule."""
    if accounting is None or not len(accounting):
        return 0
    if "unreadable_file" not in accounting:
        return len(accounting)
    return int((accounting["unreadable_file"] == 0).sum())


@dataclass(frozen=True)
class FilterChoice:
    """The rule to ingest with and why: `asked` (the user's flag, None = not given) or the model's."""

    rule: str
    model: str | None
    asked: str | None

    @property
    def source(self) -> str:
        """'user' (an explicit flag), 'model' (the model's own rule) or 'default' (neither names one)."""
        return "user" if self.asked else ("model" if self.model else "default")


def choose(model: str | None, asked: str | None) -> FilterChoice:
    """The rule `predict` ingests with: the user's when given, else the model's, else PASS."""
    check_rule(asked)
    return FilterChoice(asked or model or DEFAULT_RULE, model, asked)


def mismatch(model: str | None, applied: str | None, dropped: int | None = None) -> str:
    """'' when the input was read with the model's rule (or either is unknown, or a PASS-only read dropped
    nothing: every call was PASS); else one sentence saying what the model was trained on and what it was
    given (with the count of non-PASS calls dropped)."""
    if model is None or applied is None or model == applied or (applied == "PASS" and dropped == 0):
        return ""
    lost = f", {dropped:,} non-PASS calls dropped" if applied == "PASS" and dropped else ""
    return (f"FILTER mismatch: the model was trained on {DESCRIBED[model]} (--filter {model}); the input was "
            f"read with --filter {applied} ({DESCRIBED[applied]}{lost}): probabilities and abstention are "
            "calibrated for the model's rule")


def dropped_calls(adata) -> int | None:
    """Non-PASS calls a PASS-only ingest skipped (its provenance's `skips['non_pass']`), when recorded."""
    provenance = adata.uns.get("nanog1") or {}
    if "skips" not in provenance:
        return None
    return int(dict(provenance["skips"]).get("non_pass", 0))  # reasons with no skip are not listed


def describe(record: dict) -> str:
    """'calls read with --filter all (the model's rule)' and the like, from uns['nanog1_predict']
    (`nanog1.encoder.predictor.filter_record`)."""
    if record.get("input_filter", "n/a") == "n/a":
        return "catalogue counts (no FILTER to apply)"
    model = record["model_input_filter"]
    source = {"user": f"your --filter; the model's rule: {model}",
              "model": "the model's rule",
              "default": "the default; the model states no rule",
              "input": f"as the cohort was ingested; the model's rule: {model}"}[record["filter_source"]]
    return f"calls read with --filter {record['input_filter']} ({source})"
