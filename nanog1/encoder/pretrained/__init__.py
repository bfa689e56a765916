"""Models that ship with the package: a registry of folders of package data, and their export.

Shipped: `pcawg-catalogue` (whole-genome catalogues, 26 PCAWG types; benchmarks/pcawg_shipped.py) and
`tcga-exome` (tumour exome MAFs, one token per mutation, 32 TCGA types; benchmarks/tcga_exome_ship.py).

Each model is one folder here: `model.pt` (weights-only torch file: encoder config, state dict,
classes, channel padding; read with `torch.load(weights_only=True)`; an ensemble keeps the further
members' state dicts and its test-time views under `ensemble`, see nanog1.encoder.ensemble),
`calibration.json`
(temperature and abstention rule) with `ood.npz` (the rule's OOD centroids and precision, read back by
`calibration.load_calibration`), `reference.npz` (embeddings of the training tumours with their ids,
types and per-set mutation totals `burden_<set>`, for nearest-neighbour look-ups and the burden range
the model was trained on; no pickled objects) and `card.json` (the model card: data and
licence, recipe, metrics, intended use). `nanog1 models list|show` reads them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from nanog1.errors import UserError
from nanog1.schema import CANCER_TYPE

ROOT = Path(__file__).resolve().parent
FILES = ("model.pt", "calibration.json", "reference.npz", "card.json")


def available() -> list[str]:
    """Names of the packaged models (folders holding every file of a model)."""
    return sorted(p.name for p in ROOT.iterdir() if p.is_dir() and all((p / f).exists() for f in FILES))


def resolve(model: str | Path) -> Path:
    """The folder of a packaged model name, or a trained run folder given as a path."""
    path = Path(model)
    if (ROOT / str(model)).is_dir() and (ROOT / str(model) / "model.pt").exists():
        return ROOT / str(model)
    if path.is_dir() and (path / "model.pt").exists():
        return path
    names = ", ".join(available()) or "none"
    if path.is_dir():  # a run folder named right but without its model: say so, not 'no such model'
        raise UserError(f"{model}: the folder exists but holds no model.pt (a run folder needs the model.pt "
                        f"that `nanog1 train` writes; packaged models: {names})")
    raise UserError(f"{model}: no such model (packaged: {names}; or give a run folder holding model.pt)")


def run_folder(run: str | Path) -> Path:
    """A run folder as given, or the folder of a packaged model given by name when no folder of that name
    exists here (`nanog1 evaluate/embed --run` and `nanog1.encoder.score/embed/run_info` take it so, as
    `predict` does). A missing folder is named when its model.pt is read."""
    path = Path(run)
    if not path.exists() and str(run) in available():
        return ROOT / str(run)
    return path


def card(model: str | Path) -> dict:
    """The model card (card.json) of a packaged model or run folder ({} for a run without one)."""
    path = resolve(model) / "card.json"
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise UserError(f"{path}: line {err.lineno}: not valid JSON ({err.msg})") from None


def reference(model: str | Path) -> dict[str, np.ndarray] | None:
    """Reference embeddings (`embedding`, `sample`, `cancer_type`, `project`, `burden_<set>` where
    stored), None when absent."""
    path = resolve(model) / "reference.npz"
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def export_reference(embedding: np.ndarray, adata, out: Path) -> Path:
    """reference.npz: float16 embeddings of reference tumours with their ids, types, projects and
    mutation totals per set of abstention.BURDEN_SETS (the burden range the model was trained on)."""
    from nanog1.encoder.abstention import BURDEN_SETS
    from nanog1.genomics.channels import set_slice

    out = Path(out)
    x = adata.X.toarray() if hasattr(adata.X, "toarray") else np.asarray(adata.X)
    burdens = {f"burden_{s}": x[:, set_slice(s)].sum(1).astype(np.int64) for s in BURDEN_SETS}
    project = adata.obs["project_code"] if "project_code" in adata.obs else adata.obs_names
    tmp = out / "reference.tmp.npz"
    np.savez_compressed(
        tmp,
        embedding=np.asarray(embedding, dtype=np.float16),
        sample=np.asarray(adata.obs_names, dtype=str),
        cancer_type=np.asarray(adata.obs[CANCER_TYPE], dtype=str),
        project=np.asarray(project, dtype=str),
        **burdens,
    )
    return tmp.replace(out / "reference.npz")
