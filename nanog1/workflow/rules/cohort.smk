# Check: the sample sheet against every input, before any record is read (`ingest --check-only`);
# scatter: one `nanog1 ingest` job per part; gather: `nanog1 cohort merge`; then signature fitting.
# One sheet policy and one duplicate policy for all three (config merge.sheet_policy / duplicates):
# the parts see the sheet with policy `subset` (its other rows belong to other parts), and the merge
# holds the whole cohort to it again, so a sheet row without data is an error, never a zero row.

_INGEST = config["ingest"]
_SHEET_POLICY = config["merge"]["sheet_policy"]
_PART_POLICY = "subset" if _SHEET_POLICY == "strict" else _SHEET_POLICY
_SPC = ["--sigprofiler-compatible"] if _INGEST["sigprofiler_compatible"] else []
# ingest.not_measured: a list or one comma-separated string, checked by nanog1.pipeline.config
_NM = _INGEST.get("not_measured") or []
_NM = [_NM] if isinstance(_NM, str) else list(_NM)
_NOT_MEASURED = ["--not-measured", ",".join(_NM)] if _NM else []


# The data files are params, not inputs: a file's new content reruns its own ingest part only (which
# checks that file's header against the sheet again), not every part. The reference is an input, as it
# is the ingest rule's: it is checked (index, contig names, ##contig lengths of another build) as ingest
# will check it, with ingest's limit on calls lost, before any part runs.
rule check_inputs:
    input:
        samples=sample_sheet,
        reference=reference,
    output:
        touch(out("work/inputs_checked")),
    params:
        data=lambda wc: [str(f) for f in input_files()],
        reference=lambda wc, input: opt("--reference", input.reference or None),
        samples=lambda wc, input: opt("--samples", input.samples or None),
        policy=_SHEET_POLICY,
        duplicates=config["merge"]["duplicates"],
        max_skip=_INGEST["max_skip_fraction"],
        on_error=_INGEST["on_error"],
        spc=_SPC,
        extra=EXTRA["ingest"],
    log:
        logfile("check_inputs"),
    benchmark:
        bench("check_inputs")
    shell:
        "{NANOG1:q} ingest {params.data:q} {params.reference:q} {params.samples:q} --check-only"
        " --sheet-policy {params.policy:q} --duplicates {params.duplicates:q}"
        " --max-skip-fraction {params.max_skip:q} --on-error {params.on_error:q} {params.spc:q}"
        " {params.extra:q} > {log:q} 2>&1"


rule ingest:
    input:
        data=lambda wc: parts()[wc.part],
        reference=reference,
        samples=sample_sheet,
        checked=ancient(out("work/inputs_checked")),
    output:
        out("parts/{part}.h5ad"),
    params:
        reference=lambda wc, input: opt("--reference", input.reference or None),
        samples=lambda wc, input: opt("--samples", input.samples or None),
        policy=_PART_POLICY,
        duplicates=config["merge"]["duplicates"],
        max_skip=_INGEST["max_skip_fraction"],
        filter=_INGEST["filter"],
        spc=_SPC,
        on_error=_INGEST["on_error"],
        not_measured=_NOT_MEASURED,
        extra=EXTRA["ingest"],
    wildcard_constraints:
        part=r"[A-Za-z0-9_.-]+",
    threads: 1
    log:
        logfile("ingest/{part}"),
    benchmark:
        bench("ingest/{part}")
    shell:
        "{NANOG1:q} ingest {input.data:q} {params.reference:q} {params.samples:q} --sheet-policy {params.policy:q}"
        " --duplicates {params.duplicates:q} --max-skip-fraction {params.max_skip:q} --out {output:q}"
        " --filter {params.filter:q} --on-error {params.on_error:q} {params.spc:q} {params.not_measured:q}"
        " {params.extra:q} -j {threads} > {log:q} 2>&1"


rule merge:
    input:
        parts=lambda wc: expand(out("parts/{part}.h5ad"), part=parts()),
        samples=sample_sheet,
    output:
        out("work/cohort_merged.h5ad"),
    params:
        samples=lambda wc, input: opt("--samples", input.samples or None),
        duplicates=config["merge"]["duplicates"],
        policy=_SHEET_POLICY,
    log:
        logfile("merge"),
    benchmark:
        bench("merge")
    shell:
        "{NANOG1:q} cohort merge {input.parts:q} {params.samples:q} --duplicates {params.duplicates:q}"
        " --sheet-policy {params.policy:q} --out {output:q} > {log:q} 2>&1"


rule signatures:
    input:
        out("work/cohort_merged.h5ad"),
    output:
        out("work/cohort_signatures.h5ad"),
    params:
        extra=EXTRA["signatures"],
        tracking=TRACKING_URI,
    threads: config["threads"]
    log:
        logfile("signatures"),
    benchmark:
        bench("signatures")
    shell:
        "{NANOG1:q} signatures fit {input:q} --out {output:q} --mlflow {params.tracking:q} {params.extra:q}"
        " > {log:q} 2>&1"


def annotated_cohort(wildcards=None):
    """The cohort the model reads: with fitted exposures, or the merged one when fitting is off."""
    if config["signatures"]["enabled"]:
        return out("work/cohort_signatures.h5ad")
    return out("work/cohort_merged.h5ad")
