# Scatter: one `nanog1 ingest` job per part; gather: `nanog1 cohort merge`; then signature fitting.

_INGEST = config["ingest"]


rule ingest:
    input:
        data=lambda wc: parts()[wc.part],
        reference=reference,
    output:
        out("parts/{part}.h5ad"),
    params:
        reference=lambda wc, input: opt("--reference", input.reference or None),
        filter=_INGEST["filter"],
        spc=["--sigprofiler-compatible"] if _INGEST["sigprofiler_compatible"] else [],
        on_error=_INGEST["on_error"],
        extra=EXTRA["ingest"],
    wildcard_constraints:
        part=r"[A-Za-z0-9_.-]+",
    threads: 1
    log:
        logfile("ingest/{part}"),
    benchmark:
        bench("ingest/{part}")
    shell:
        "{NANOG1:q} ingest {input.data:q} {params.reference:q} --out {output:q} --filter {params.filter:q}"
        " --on-error {params.on_error:q} {params.spc:q} {params.extra:q} -j {threads} > {log:q} 2>&1"


rule merge:
    input:
        parts=lambda wc: expand(out("parts/{part}.h5ad"), part=parts()),
        samples=sample_sheet,
    output:
        out("work/cohort_merged.h5ad"),
    params:
        samples=lambda wc, input: opt("--samples", input.samples or None),
        duplicates=config["merge"]["duplicates"],
    log:
        logfile("merge"),
    benchmark:
        bench("merge")
    shell:
        "{NANOG1:q} cohort merge {input.parts:q} {params.samples:q} --duplicates {params.duplicates:q}"
        " --out {output:q} > {log:q} 2>&1"


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
