"""Bootstrap exposure intervals on PCAWG SBS96 beside the point fit they wrap (same process, same settings).

SigProfilerAssignment has no bootstrap, so the peer is our own point fit: the ratio says what the
intervals cost on top of one fit. Usage:
  OMP_NUM_THREADS=1 python benchmarks/signatures_bootstrap.py --pcawg ../shared/data/pcawg7 --draws 100
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import torch

from nanog1.fitting import FitConfig, fit_signatures
from nanog1.fitting.bootstrap import BootstrapConfig, bootstrap_exposures
from nanog1.genomics.signatures import load_reference, read_signatures
from nanog1.genomics.signatures_pcawg import read_pcawg_catalogue


def _timed(fn, *args):
    """Result, wall seconds and CPU seconds of fn(*args)."""
    start, cpu = time.perf_counter(), time.process_time()
    out = fn(*args)
    return out, time.perf_counter() - start, time.process_time() - cpu


def main() -> None:
    """Time point fit and bootstrap; print a small table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pcawg", default="../shared/data/pcawg7")
    parser.add_argument("--draws", type=int, default=100)
    parser.add_argument("--every", type=int, default=1, help="use every k-th genome")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--reference-file", help="COSMIC SBS table (default: installed SPA's v3.4 GRCh37)")
    parser.add_argument("--peer-candidates", action="store_true", help="also time all-signature redraws")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    cat = read_pcawg_catalogue(args.pcawg).iloc[:: args.every]
    ref = read_signatures(args.reference_file, "SBS96") if args.reference_file else load_reference()
    fit = FitConfig(device=args.device)
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor() or "cpu"
    print(f"# {len(cat)} genomes, {args.draws} draws, {platform.node()} ({device}), load {os.getloadavg()}",
          flush=True)
    if args.device.startswith("cuda"):  # warm-up: CUDA context and kernels, outside the timings
        fit_signatures(cat.iloc[:50], ref, fit)
    res, w1, c1 = _timed(fit_signatures, cat, ref, fit)
    rows = [("point fit (sparse, add 0.05)", w1, c1, None)]
    for cand in (12, None) if args.peer_candidates else (12,):
        boot, w, c = _timed(
            bootstrap_exposures, cat, ref, res.exposures, fit, BootstrapConfig(args.draws, candidates=cand)
        )
        rows.append((f"bootstrap x{args.draws}, candidates {cand or 'all'}", w, c, boot))
    print(f"# load after {os.getloadavg()}")
    print("| run | wall s | CPU s | wall ÷ point fit | low-burden | median stability | median width |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, w, c, boot in rows:
        extra = "| – | – | – |"
        if boot is not None:
            width = np.median((boot.hi - boot.lo).to_numpy()[res.exposures.to_numpy() > 0])
            extra = f"| {int(boot.low_burden.sum())} | {boot.stability.median():.3f} | {width:.0f} |"
        print(f"| {name} | {w:.1f} | {c:.1f} | {w / w1:.1f} {extra}")


if __name__ == "__main__":
    main()
