"""The cancer encoder and its whole lifecycle: model, data, training, evaluation, inference.

On AnnData, scanpy-style: `nanog1.encoder.train(adata, run_dir)`, `score(adata, run,
key_added=None, copy=False)` (predictions plus metrics on held-out samples), `embed(adata, run,
key_added='X_nanog1', copy=False)` (module `api`, which documents the keys each writes), and
`predict(adata, model)` for new tumours with a packaged or trained model (module `predictor`;
`load_predictor(model)` reads a model once for repeated calls); read-only helpers for analysis:
`run_info(run)`, `features(adata, kind)`, `type_labels(adata)`, `type_metrics(adata, key, mask)` and
`baseline_scores(adata, train, test)`. `__all__` lists the public API; notebooks and user code import
from `nanog1.encoder` only.
The CLI and the Snakemake rules call the path-level `run.train_cohort`, `evaluate.evaluate_cohort`
and `embedding.embed_cohort`, which read, call the same code and write.

`model` is the mutation/catalogue encoder with its heads, read top to bottom in one file. Around it,
one module per job: `data` (cohort -> tensors), `loop` (one training run), `run` (`nanog1 train`:
splits, folds, calibration, reports, MLflow), `evaluate` (`nanog1 evaluate`), `embedding`
(`nanog1 embed`), `inference`, `calibration` and `abstention` (temperature and reject option),
`ensemble`, `finetune`, `baselines` (`nanog1 baselines`), `cv`, `losses`, `metrics`, `plots`,
`distributed`, `config`, `cohort_io`. Modules are imported on demand so that the CLI stays fast.

Shared with the other models (`nanog1.zoo`): `nanog1.tracking` (MLflow), `nanog1.checkpoint`
(resumable state, seeding) and `nanog1.optim` (AdamW with warm-up/cosine).
"""

from nanog1.exports import lazy_attributes

_API = {
    **dict.fromkeys(("predict", "read_inputs", "load_predictor", "PredictOptions"),
                    "nanog1.encoder.predictor"),
    **dict.fromkeys(("train", "score", "embed", "run_info", "features", "type_labels", "type_metrics",
                     "baseline_scores"), "nanog1.encoder.api"),
    "TrainConfig": "nanog1.encoder.config",
}
__all__ = sorted(_API)

__getattr__ = lazy_attributes(__name__, _API)
