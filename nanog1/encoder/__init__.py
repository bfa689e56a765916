"""The cancer encoder and its whole lifecycle: model, data, training, evaluation, inference.

`model` is the mutation/catalogue encoder with its heads, read top to bottom in one file. Around it,
one module per job: `data` (cohort -> tensors), `loop` (one training run), `run` (`nanog1 train`:
splits, folds, calibration, reports, MLflow), `evaluate` (`nanog1 evaluate`), `embed`
(`nanog1 embed`), `inference`, `calibration` and `abstention` (temperature and reject option),
`ensemble`, `finetune`, `baselines` (`nanog1 baselines`), `cv`, `losses`, `metrics`, `plots`,
`distributed`, `config`, `cohort_io`. Modules are imported on demand so that the CLI stays fast.

Shared with the other models (`nanog1.zoo`): `nanog1.tracking` (MLflow), `nanog1.checkpoint`
(resumable state, seeding) and `nanog1.optim` (AdamW with warm-up/cosine).
"""

_API = {"predict": "nanog1.encoder.predictor", "read_inputs": "nanog1.encoder.predictor"}


def __getattr__(name: str):
    """`nanog1.encoder.predict(adata, model="pcawg-catalogue")` and `read_inputs(paths)`, imported on use."""
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'nanog1.encoder' has no attribute {name!r}")
