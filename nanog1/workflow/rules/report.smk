# The short report: Markdown + PNG plots (confusion matrix, embedding scatter, exposures by type).


rule report:
    input:
        cohort=out("cohort.h5ad"),
        metrics=f"{RUN_DIR}/metrics.json",
    output:
        out("report/report.md"),
    log:
        logfile("report"),
    benchmark:
        bench("report")
    shell:
        "{NANOG1:q} report {input.cohort:q} --run {RUN_DIR:q} --out {OUT:q}/report > {log:q} 2>&1"
