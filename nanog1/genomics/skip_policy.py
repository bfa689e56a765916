"""What a reader keeps and does with bad input: `--filter`, `--on-error` and `--max-skip-fraction`, their
defaults and wording.

`nanog1 ingest`, `nanog1 predict` (which reads its VCF/MAF inputs through ingest) and the dashboard's Predict
page offer the same controls; their values, defaults and help live here once, in a module light enough for
the command line to import at start-up, so the three cannot drift apart.
"""

from __future__ import annotations

from nanog1.errors import UserError

#: --filter: PASS (PASS or '.' records only) or all (any FILTER), as `spell_filter_rule` spells them.
FILTER_RULES = ("PASS", "all")


def spell_filter_rule(rule: str, where: str = "--filter") -> str:
    """`rule` as FILTER_RULES spells it, matched case-insensitively (`--filter pass` is PASS); a UserError
    naming `where` (the flag, or the field that holds the rule) for anything else."""
    spelled = {r.lower(): r for r in FILTER_RULES}.get(str(rule).lower())
    if spelled is None:
        raise UserError(f"{where} {rule}: choose {' or '.join(FILTER_RULES)}")
    return spelled


#: --on-error: stop at the first bad line or file (the default), or skip it and count it by reason.
ON_ERROR_CHOICES = ("stop", "skip")
ON_ERROR_DEFAULT = "stop"
#: --max-skip-fraction: the share of a file's calls it may lose (REF mismatch, no carrier, ...).
MAX_SKIP_DEFAULT = 0.05
#: how the command line names the limit in its errors (`IngestOptions.skip_limit_name`)
MAX_SKIP_FLAG = "--max-skip-fraction"

ON_ERROR_HELP = ("stop: fail on a bad line or file; skip: count it (malformed_line, or unreadable_file for a "
                 "file that cannot be read at all: a truncated .vcf.gz, an empty or binary file) and read "
                 "the rest")
MAX_SKIP_HELP = ("Refuse a file that loses more than this share of its calls (REF mismatch, no carrier, ...;"
                 " FILTER, somatic status and what --on-error skip skips aside), or has more than this share"
                 " on contigs the reference lacks (a wrong reference?). 1 allows any loss")
