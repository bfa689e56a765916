# Train the encoder (resuming from its checkpoint after a kill), evaluate it and embed the cohort.
# The MLflow run records the pipeline config and each Snakemake job id (`nanog1 pipeline record-run`).

_TRAIN = config["train"]
_GPUS = _TRAIN["gpus"]
if _GPUS > 1:
    # torchrun starts one process per GPU; nanog1 train picks up DDP from WORLD_SIZE.
    _TRAIN_LAUNCH = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
                     str(_GPUS), "-m", "nanog1.cli"]
else:
    _TRAIN_LAUNCH = NANOG1
_RECORD = [*NANOG1, "pipeline", "record-run", RUN_DIR, "--tracking-uri", TRACKING_URI]


_TRAIN_PARAMS = dict(
    task=_TRAIN["task"],
    mixer=_TRAIN["mixer"],
    view=_TRAIN["view"],
    epochs=_TRAIN["epochs"],
    hidden=_TRAIN["hidden"],
    layers=_TRAIN["layers"],
    rank=_TRAIN["rank"],
    heads=_TRAIN["heads"],
    experiment=EXPERIMENT,
    tracking=TRACKING_URI,
    extra=EXTRA["train"],
)
# train.ensemble > 1: more encoders with seeds SEED+1, SEED+2, ... in run_seed<N>/; evaluate averages them.
_MEMBER_DIRS = [f"{OUT}/run_seed{SEED + k}" for k in range(1, _TRAIN["ensemble"])]
_EVAL_RUNS = [arg for d in [RUN_DIR, *_MEMBER_DIRS] for arg in ("--run", d)]
_TRAIN_SHELL = (
    "{_TRAIN_LAUNCH:q} train {input:q} --out {params.run_dir:q} --task {params.task:q}"
    " --mixer {params.mixer:q} --view {params.view:q} --epochs {params.epochs:q} --hidden {params.hidden:q}"
    " --layers {params.layers:q} --rank {params.rank:q} --heads {params.heads:q} --seed {params.seed:q}"
    " --experiment {params.experiment:q} --tracking-uri {params.tracking:q} --resume {params.extra:q}"
    " > {log:q} 2>&1"
    " && {NANOG1:q} pipeline record-run {params.run_dir:q} --tracking-uri {params.tracking:q}"
    " --rule {rule:q} --jobid {jobid:q} --config-json {PIPELINE_CONFIG:q} >> {log:q} 2>&1"
    " && rm -f {params.run_dir:q}/checkpoint.pt {params.run_dir:q}/fold*/checkpoint.pt"
)


rule train:
    input:
        annotated_cohort,
    output:
        model=f"{RUN_DIR}/model.pt",
        metrics=f"{RUN_DIR}/metrics.json",
    params:
        **_TRAIN_PARAMS,
        seed=SEED,
        run_dir=RUN_DIR,
    threads: config["threads"]
    resources:
        gpus=_GPUS,
    log:
        logfile("train"),
    benchmark:
        bench("train")
    shell:
        _TRAIN_SHELL


rule train_member:
    input:
        annotated_cohort,
    output:
        model=f"{OUT}/run_seed{{member_seed}}/model.pt",
        metrics=f"{OUT}/run_seed{{member_seed}}/metrics.json",
    wildcard_constraints:
        member_seed=r"\d+",
    params:
        **_TRAIN_PARAMS,
        seed=lambda wc: wc.member_seed,
        run_dir=lambda wc: f"{OUT}/run_seed{wc.member_seed}",
    threads: config["threads"]
    resources:
        gpus=_GPUS,
    log:
        logfile("train_seed{member_seed}"),
    benchmark:
        bench("train_seed{member_seed}")
    shell:
        _TRAIN_SHELL


rule evaluate:
    input:
        cohort=annotated_cohort,
        model=f"{RUN_DIR}/model.pt",
        members=[f"{d}/model.pt" for d in _MEMBER_DIRS],
    output:
        out("work/cohort_eval.h5ad"),
    threads: config["threads"]
    log:
        logfile("evaluate"),
    benchmark:
        bench("evaluate")
    shell:
        "{NANOG1:q} evaluate {input.cohort:q} {_EVAL_RUNS:q} --out {output:q} > {log:q} 2>&1"
        " && {_RECORD:q} --rule {rule:q} --jobid {jobid:q} >> {log:q} 2>&1"


rule embed:
    input:
        cohort=out("work/cohort_eval.h5ad"),
        model=f"{RUN_DIR}/model.pt",
    output:
        out("cohort.h5ad"),
    threads: config["threads"]
    log:
        logfile("embed"),
    benchmark:
        bench("embed")
    shell:
        "{NANOG1:q} embed {input.cohort:q} --run {RUN_DIR:q} --out {output:q} > {log:q} 2>&1"
        " && {_RECORD:q} --rule {rule:q} --jobid {jobid:q} >> {log:q} 2>&1"


# Optional: fine-tune the trained encoder on another cohort (a new type head) and measure the gain
# over a model trained from scratch with the same budget (`finetune.enabled`, off by default).
_FINETUNE = config["finetune"]
if _FINETUNE["enabled"]:
    if not _FINETUNE["cohort"]:
        raise ValueError("config key finetune.cohort: needed when finetune.enabled is true")

    rule finetune:
        input:
            cohort=_FINETUNE["cohort"],
            model=f"{RUN_DIR}/model.pt",
        output:
            out("finetune/metrics.json"),
        params:
            epochs=_FINETUNE["epochs"],
            freeze=["--freeze-encoder"] if _FINETUNE["freeze_encoder"] else [],
            test_fraction=_FINETUNE["test_fraction"],
            train_fraction=_FINETUNE["train_fraction"],
            seed=SEED,
            experiment=f"{EXPERIMENT}-finetune",
            tracking=TRACKING_URI,
            extra=EXTRA["finetune"],
        threads: config["threads"]
        log:
            logfile("finetune"),
        benchmark:
            bench("finetune")
        shell:
            "{NANOG1:q} finetune {input.cohort:q} --from {RUN_DIR:q} --out {OUT:q}/finetune"
            " --epochs {params.epochs:q} {params.freeze:q} --test-fraction {params.test_fraction:q}"
            " --train-fraction {params.train_fraction:q} --seed {params.seed:q}"
            " --experiment {params.experiment:q} --tracking-uri {params.tracking:q} {params.extra:q}"
            " > {log:q} 2>&1"


# Optional: type the cohort's tumours with a packaged model (default pcawg-catalogue) or, with
# `predict.model: run`, the encoder trained above (`predict.enabled`, off by default; `predict.only`
# skips training for a cohort of new tumours).
_PREDICT = config["predict"]
if _PREDICT["enabled"]:
    _OWN_RUN = _PREDICT["model"] == "run"
    if _OWN_RUN and _PREDICT["only"]:
        raise ValueError("config key predict.only: needs a packaged model or run folder, not 'run'")

    rule predict:
        input:
            cohort=annotated_cohort,
            model=[f"{RUN_DIR}/model.pt"] if _OWN_RUN else [],
        output:
            table=out("predict/predictions.tsv"),
            json=out("predict/predictions.json"),
        params:
            model=RUN_DIR if _OWN_RUN else _PREDICT["model"],
            neighbours=_PREDICT["neighbours"],
            exposures="--exposures" if _PREDICT["exposures"] else "--no-exposures",
            draws=_PREDICT["draws"],
            assay=_PREDICT["assay"],
            point=_PREDICT["operating_point"],
            filter="" if _PREDICT["filter"] == "model" else f"--filter {_PREDICT['filter']}",
            adapt="--adapt-priors" if _PREDICT["adapt_priors"] else "",
        threads: config["threads"]
        log:
            logfile("predict"),
        benchmark:
            bench("predict")
        shell:
            "{NANOG1:q} predict {input.cohort:q} --model {params.model:q} --out {OUT:q}/predict"
            " --neighbours {params.neighbours:q} {params.exposures:q} --draws {params.draws:q}"
            " --assay {params.assay:q} --operating-point {params.point:q} {params.filter} {params.adapt}"
            " > {log:q} 2>&1"
