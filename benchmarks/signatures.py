"""Signature fitting on all 2,780 PCAWG genomes: NanoG1 (torch, batched) beside SigProfilerAssignment.

1. Speed and fit: COSMIC v3.4 SBS against the PCAWG SBS96 catalogues. NanoG1 full NNLS and sparse
   selection at several add penalties (to match the peer's signatures per genome) beside
   SigProfilerAssignment `cosmic_fit` (matrix input, v3.4, GRCh37, plots off). The peer takes minutes,
   so its timed run can be cached in --spa-dir (benchmarks/signatures_spa.py writes it) and reused.
2. Agreement with the published PCAWG attributions: sparse fit with the PCAWG (COSMIC v3.0)
   signatures, per cancer type: cosine of our exposures to theirs, our reconstruction cosine and
   their published accuracy, for SBS, DBS and ID.

Usage: python benchmarks/signatures.py --pcawg ../shared/data/pcawg7 --spa-dir /tmp/spa [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from nanog1.fitting import FitConfig, fit_signatures
from nanog1.fitting.fit import cosine_rows
from nanog1.genomics.signatures import load_reference
from nanog1.genomics.signatures_pcawg import (
    read_pcawg_attributions,
    read_pcawg_catalogue,
    read_pcawg_signatures,
)


def _timed(fn, *args):
    """Result, wall seconds and this process's CPU seconds of fn(*args)."""
    start, cpu = time.perf_counter(), time.process_time()
    out = fn(*args)
    return out, time.perf_counter() - start, time.process_time() - cpu


def _peer(catalogue: pd.DataFrame, spa_dir: Path, ref: pd.DataFrame) -> dict:
    """SigProfilerAssignment's timing, reconstruction cosine and signatures per genome."""
    from signatures_spa import read_spa_activities, run_spa

    timing = spa_dir / "timing.json"
    info = json.loads(timing.read_text()) if timing.exists() else run_spa(catalogue, spa_dir)
    act = read_spa_activities(spa_dir).reindex(index=catalogue.index).fillna(0.0)
    act = act.reindex(columns=ref.columns, fill_value=0.0)
    recon = act.to_numpy() @ ref.to_numpy().T
    cos = cosine_rows(catalogue.to_numpy(), recon)
    return {
        "seconds": info["seconds"],
        "cosine": float(np.median(cos)),
        "mean_cosine": float(cos.mean()),
        "sigs": float((act > 0).sum(1).mean()),
    }


def speed_table(catalogue: pd.DataFrame, spa_dir: Path, with_peer: bool = True) -> pd.DataFrame:
    """One row per method: seconds, median/mean reconstruction cosine, signatures per genome."""
    ref = load_reference()
    rows = []
    for label, cfg in [("nanog1 nnls (all 86)", FitConfig(method="nnls"))] + [
        (f"nanog1 sparse add={p}", FitConfig(method="sparse", add_penalty=p))
        for p in (0.05, 0.03, 0.02, 0.01)
    ]:
        res, sec, cpu = _timed(fit_signatures, catalogue, ref, cfg)
        rows.append(
            {
                "method": label,
                "seconds": sec,
                "cpu_seconds": cpu,
                "cosine": res.cosine.median(),
                "mean_cosine": res.cosine.mean(),
                "sigs": res.signatures_per_sample().mean(),
            }
        )
    if not with_peer:
        return pd.DataFrame(rows).set_index("method")
    peer = _peer(catalogue, spa_dir, ref)
    rows.append({"method": "SigProfilerAssignment cosmic_fit", **peer})
    table = pd.DataFrame(rows).set_index("method")
    table["time_ratio_vs_peer"] = table["seconds"] / peer["seconds"]
    return table


_RENAME = {"SBS22a": "SBS22", "SBS22b": "SBS22", "SBS40a": "SBS40", "SBS40b": "SBS40", "SBS40c": "SBS40"}


def pcawg_agreement(pcawg: Path, channel_set: str) -> pd.DataFrame:
    """Per cancer type: cosine of our exposures to the published ones, reconstruction cosines."""
    cat = read_pcawg_catalogue(pcawg, channel_set)
    pub = read_pcawg_attributions(pcawg, channel_set)
    common = [s for s in cat.index if s in pub.index]
    cat, pub = cat.loc[common], pub.loc[common]
    ref = read_pcawg_signatures(pcawg, channel_set)
    ref = ref[[c for c in ref.columns if c in pub.columns]]
    permanent = ("SBS1", "SBS5") if channel_set == "SBS96" else ()
    res = fit_signatures(cat, ref, FitConfig(method="sparse", permanent=permanent))
    theirs = pub[list(ref.columns)].to_numpy(float)
    exp_cos = cosine_rows(res.exposures.to_numpy(), theirs)
    their_recon = cosine_rows(cat.to_numpy(), theirs @ ref.to_numpy().T)
    frame = pd.DataFrame(
        {
            "cancer_type": pub["cancer_type"],
            "exposure_cosine": exp_cos,
            "our_recon_cosine": res.cosine.to_numpy(),
            "their_recon_cosine": their_recon,
            "their_accuracy": pub["accuracy"].astype(float),
            "our_sigs": res.signatures_per_sample().to_numpy(),
            "their_sigs": (theirs > 0).sum(1),
        },
        index=common,
    )
    frame = frame[cat.sum(1).to_numpy() > 0]
    per_type = frame.groupby("cancer_type").median()
    per_type.insert(0, "n", frame.groupby("cancer_type").size())
    per_type.loc["ALL (median)"] = [len(frame), *frame.drop(columns="cancer_type").median()]
    return per_type


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pcawg", type=Path, default=Path("../shared/data/pcawg7"))
    parser.add_argument("--spa-dir", type=Path, default=Path("/tmp/nanog1_spa_pcawg"))
    parser.add_argument("--out", type=Path, default=None, help="write the tables as CSV here")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-peer", action="store_true", help="time NanoG1 only")
    parser.add_argument("--skip-pcawg", action="store_true", help="no agreement tables")
    parser.add_argument("--every", type=int, default=1, help="speed table on every k-th genome only")
    args = parser.parse_args()
    print(
        f"# {platform.node()} {os.cpu_count()} cores, torch threads {torch.get_num_threads()}, "
        f"load {os.getloadavg()}, {time.strftime('%Y-%m-%d %H:%M %Z')}"
    )
    tables = {}
    if not args.skip_speed:
        tables["speed"] = speed_table(
            read_pcawg_catalogue(args.pcawg).iloc[:: args.every], args.spa_dir, not args.skip_peer
        )
    for cs in () if args.skip_pcawg else ("SBS96", "DBS78", "ID83"):
        tables[f"pcawg_{cs}"] = pcawg_agreement(args.pcawg, cs)
    for name, table in tables.items():
        print(f"\n## {name}\n{table.round(3).to_markdown()}")
        if args.out:
            args.out.mkdir(parents=True, exist_ok=True)
            table.to_csv(args.out / f"{name}.csv")
    print(f"\n# load at end {os.getloadavg()}")


if __name__ == "__main__":
    main()
