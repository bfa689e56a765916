"""Pretrained vs scratch on the saved TCGA folds (issue 28): tables of benchmarks/tcga_events.py part files.

For each source, label share and seed, the pretrained row and its scratch twin (same subset, fold and seed)
are pooled over the folds both finished; top-1 / macro-F1 of each and the paired bootstrap interval of
pretrained minus scratch (tcga_typing.paired_bootstrap: the same redraw of held-out tumours for both).
Optional peers on the same tumours: a control row (e.g. scratch on the pretraining's bag, `--control`) and
gradient boosting on the same subsets (`--gb-work`: tcga_typing.py --label-fractions oof files, on the
folds they cover). Also each contrastive checkpoint's health (view accuracy vs chance).

    python benchmarks/tcga_pretrain_table.py --out results/pt --npz results/tcga_events.npz \
        --pretrained events_savo_pretrained_bag300_hot5both_L8_A \
        --scratch events_savo_scratch_bag300_hot5both_L8
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tcga_typing import _top1_f1, paired_bootstrap  # noqa: E402


def fold_parts(out: Path, source: str, name: str) -> dict[int, np.ndarray]:
    """fold -> test probabilities of one row's part files."""
    return {int(p.stem.rsplit("_f", 1)[1]): np.load(p) for p in (out / source).glob(f"part_{name}_f*.npy")}


def source_labels(npz: Path, source: str) -> tuple[np.ndarray, np.ndarray]:
    """Class index and fold of each of the source's tumours, in the typing benchmark's row order."""
    z = np.load(npz)
    rows = np.flatnonzero(np.char.startswith(z["tumours"].astype(str), source + "|") & (z["fold"] >= 0))
    classes = sorted(set(z["label"][rows]))
    return np.searchsorted(classes, z["label"][rows]), z["fold"][rows]


def compare(a: dict, b: dict, labels: np.ndarray, fold: np.ndarray, draws: int, only=None) -> dict | None:
    """Pooled scores of rows a and b over their common folds (of `only`, when given), and the interval
    of a - b."""
    folds = sorted(set(a) & set(b) & (set(a) if only is None else set(only)))
    if not folds:
        return None
    y = np.concatenate([labels[fold == k] for k in folds])
    pa, pb = np.concatenate([a[k] for k in folds]), np.concatenate([b[k] for k in folds])
    n = pa.shape[1]
    return {"folds": folds, "n": len(y), "a": _top1_f1(pa.argmax(1), y, n), "b": _top1_f1(pb.argmax(1), y, n),
            "ci": paired_bootstrap(pa, pb, y, draws, seed=0),
            "per_fold": [(float((a[k].argmax(1) == labels[fold == k]).mean()),
                          float((b[k].argmax(1) == labels[fold == k]).mean())) for k in folds]}  # fmt: skip


def _fmt(c: dict) -> str:
    (a1, af), (b1, bf) = c["a"], c["b"]
    (lo, hi), (flo, fhi) = c["ci"]["top1"], c["ci"]["macro_f1"]
    per_fold = " / ".join(f"{x:.3f}-{y:.3f}" for x, y in c["per_fold"])
    return (f"{a1:.3f} vs {b1:.3f} | {af:.3f} vs {bf:.3f} | {a1 - b1:+.3f} [{lo:+.3f}, {hi:+.3f}] | "
            f"{af - bf:+.3f} [{flo:+.3f}, {fhi:+.3f}] | {per_fold}")


def gb_parts(work: Path, source: str, frac: int, seed: int, fold: np.ndarray) -> dict[int, np.ndarray]:
    """Gradient boosting on the same subset (oof file of tcga_typing.py --label-fractions), per fold."""
    path = work / source / f"oof_gradient_boosting_p{frac}_s{seed}.npy"
    if not path.exists():
        return {}
    oof = np.load(path)
    return {k: oof[fold == k] for k in np.unique(fold) if oof[fold == k].sum() > 0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("results/pt"))
    ap.add_argument("--npz", type=Path, default=Path("results/tcga_events.npz"))
    ap.add_argument("--pretrained", required=True, help="row name without _p<share>_s<seed>")
    ap.add_argument("--scratch", required=True)
    ap.add_argument("--control", default="", help="a third row compared with both (optional)")
    ap.add_argument("--gb-work", type=Path, default=None, help="tcga_typing work folder with subset GB rows")
    ap.add_argument("--fractions", default="10,25,100")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--folds", default="", help="pool only these folds (comma-separated; default: all)")
    args = ap.parse_args()
    head = "| pretrained vs twin top-1 | macro-F1 | d top-1 95 % | d macro-F1 95 % | per-fold top-1 |"
    for source in ("mc3", "firehose"):
        labels, fold = source_labels(args.npz, source)
        print(f"\n## {source}\n\n| labels | seed | twin | folds (tumours) {head}\n" + "| --- " * 9 + "|")
        for frac in (int(f) for f in args.fractions.split(",")):
            for seed in range(args.seeds):
                pre = fold_parts(args.out, source, f"{args.pretrained}_p{frac}_s{seed}")
                peers = {"scratch": fold_parts(args.out, source, f"{args.scratch}_p{frac}_s{seed}")}
                if args.control:
                    peers["control"] = fold_parts(args.out, source, f"{args.control}_p{frac}_s{seed}")
                if args.gb_work is not None and frac < 100:
                    peers["GB same subset"] = gb_parts(args.gb_work, source, frac, seed, fold)
                pairs = [("pretrained", pre, name, rows) for name, rows in peers.items()]
                if args.control:
                    pairs.append(("control", peers["control"], "scratch", peers["scratch"]))
                for a_name, a, b_name, b in pairs:
                    only = [int(k) for k in args.folds.split(",")] if args.folds else None
                    c = compare(a, b, labels, fold, args.draws, only)
                    if c is not None:
                        folds = ",".join(str(k) for k in c["folds"])
                        row = f"| {frac} % | {seed} | {a_name} vs {b_name} | {folds} ({c['n']})"
                        print(f"{row} | {_fmt(c)} |")
    print("\n## pretraining health (last epoch)\n\n| checkpoint | tumours | view acc. train | view acc. "
          "aside | chance | loss | seconds |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    import torch

    for path in sorted(args.out.glob("pretrained_*_f*.pt")):
        ck = torch.load(path, map_location="cpu", weights_only=True)
        last = ck["log"][-1]
        print(f"| {path.stem} | {ck['n_pretrain']} | {last['view_acc']:.3f} | {last['aside_view_acc']:.3f} | "
              f"{last['chance']:.4f} | {last['loss']:.3f} | {last['seconds']:.0f} |")
    print(json.dumps({"fractions": args.fractions, "seeds": args.seeds}))


if __name__ == "__main__":
    main()
