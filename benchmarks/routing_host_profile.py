"""Where the SAVO block's eager training step spends host time, with the kernels' TMA loads on and off.

GPU only (sm_90+). `PYTHONUNBUFFERED=1 PYTHONPATH=.:benchmarks python3 benchmarks/routing_host_profile.py
[--lengths 2048] [--causal 1,0] [--rounds 3]`. Issue 30, round 12 measured the eager step at 2k causal at
2.27 ms with TMA loads against 1.75 ms with pointer loads, while the graphed step (device time) was faster
with TMA: so the cost is on the host or between launches. This script times, in one process, alternating
``routing_triton.TMA`` between rounds (both variants compiled and tuned first):

- ``wall_ms``: an eager step, synchronised after every ``--steps`` steps (what a training loop sees);
- ``enqueue_ms``: the host time to issue one step with no synchronisation (the GPU may lag behind);
- ``launch_us``: host µs inside each routing kernel launch (``_FWD``, ``_DQ``, ``_BWD``, ``_DELTA``),
  the launcher's scratch allocation included;
- ``gap_ms``: the device's idle time per step from a torch profiler trace (kernel-free intervals).

Then a cProfile of the steps per variant: the functions whose own time differs most. Writes
$OUT/routing_host_profile.json.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import time

import torch
from routing_block import HEADS, HIDDEN, RANK, TOKENS
from routing_step_ab import block_attention

import nanog1.core.kernels.routing_triton as rt
from nanog1.core import build_mixer

LAUNCHES = ("_FWD", "_DQ", "_BWD", "_DELTA")


class Timed:
    """Wraps a CachedLaunch: host seconds spent inside its calls."""

    def __init__(self, launch):
        self.launch, self.seconds, self.calls = launch, 0.0, 0

    def __call__(self, *args, **kwargs):
        t0 = time.perf_counter()
        self.launch(*args, **kwargs)
        self.seconds += time.perf_counter() - t0
        self.calls += 1


def make_step(causal: bool, length: int):
    """The block's eager training step (forward, backward, AdamW) at 32k tokens, as routing_block times it."""
    torch.manual_seed(0)
    module = build_mixer("savo", HIDDEN, RANK, HEADS, causal).cuda()
    opt = torch.optim.AdamW(module.parameters(), lr=1e-4, fused=True)
    batch = max(1, TOKENS // length)
    x = torch.randn(batch, length, HIDDEN, device="cuda", requires_grad=True)
    grad = torch.randn(batch, length, HIDDEN, device="cuda")

    def step() -> None:
        x.grad = None
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            y = module(x, None)
        y.backward(grad)
        opt.step()
    return step


def device_gap_ms(step, steps: int) -> float:
    """Mean device idle time per step (ms): the span of the steps' kernels minus their union's busy time."""
    from torch.profiler import ProfilerActivity, profile
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            step()
        torch.cuda.synchronize()
    cuda = torch.autograd.DeviceType.CUDA
    spans = sorted((e.time_range.start, e.time_range.end) for e in prof.events()
                   if e.device_type == cuda and e.time_range.end > e.time_range.start)
    if not spans:
        return float("nan")
    busy, cur_s, cur_e = 0.0, *spans[0]
    for s, e in spans[1:]:
        if s > cur_e:
            busy += cur_e - cur_s
            cur_s, cur_e = s, e
        else:
            cur_e = max(cur_e, e)
    busy += cur_e - cur_s
    return (spans[-1][1] - spans[0][0] - busy) / 1e3 / steps


def measure(step, tma: bool, steps: int) -> dict:
    """One round of every timing with TMA loads on or off."""
    rt.TMA = tma
    for _ in range(3):
        step()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    wall = (time.perf_counter() - t0) / steps * 1e3
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    enqueue = (time.perf_counter() - t0) / steps * 1e3
    torch.cuda.synchronize()
    timers = {name: Timed(getattr(rt, name)) for name in LAUNCHES}
    saved = {name: getattr(rt, name) for name in LAUNCHES}
    for name, timer in timers.items():
        setattr(rt, name, timer)
    try:
        for _ in range(steps):
            step()
        torch.cuda.synchronize()
    finally:
        for name, launch in saved.items():
            setattr(rt, name, launch)
    launch_us = {n: t.seconds / t.calls * 1e6 for n, t in timers.items() if t.calls}
    return dict(tma=tma, wall_ms=wall, enqueue_ms=enqueue, launch_us=launch_us,
                gap_ms=device_gap_ms(step, min(steps, 10)))


def profile_diff(step, steps: int, top: int) -> list[dict]:
    """cProfile of ``steps`` steps per variant; the functions whose own time per step differs most."""
    own = {}
    for tma in (False, True):
        rt.TMA = tma
        step()
        torch.cuda.synchronize()
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(steps):
            step()
        torch.cuda.synchronize()
        prof.disable()
        stats = pstats.Stats(prof).stats
        own[tma] = {f"{os.path.basename(k[0])}:{k[1]}:{k[2]}": (v[2] / steps * 1e6, v[1] / steps)
                    for k, v in stats.items()}
    names = set(own[False]) | set(own[True])
    rows = [dict(fn=n, off_us=own[False].get(n, (0.0, 0))[0], on_us=own[True].get(n, (0.0, 0))[0],
                 off_calls=own[False].get(n, (0, 0))[1], on_calls=own[True].get(n, (0, 0))[1]) for n in names]
    rows.sort(key=lambda r: -abs(r["on_us"] - r["off_us"]))
    return rows[:top]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lengths", default="2048")
    ap.add_argument("--causal", default="1,0")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--out", default=os.path.join(os.environ.get("OUT", "."), "routing_host_profile.json"))
    args = ap.parse_args()
    print(torch.cuda.get_device_name(), torch.__version__, flush=True)
    rows = []
    with block_attention("kernel"):
        for length in (int(x) for x in args.lengths.split(",")):
            for causal in (c == "1" for c in args.causal.split(",")):
                step = make_step(causal, length)
                for rnd in range(args.rounds):
                    for tma in (False, True):
                        row = dict(L=length, causal=causal, round=rnd) | measure(step, tma, args.steps)
                        rows.append(row)
                        print(json.dumps(row), flush=True)
                diff = profile_diff(step, args.steps, args.top)
                rows.append(dict(L=length, causal=causal, cprofile=diff))
                print(f"L={length} causal={causal}: own µs per step, pointer -> TMA (calls)")
                for r in diff:
                    calls = f"({r['off_calls']:.0f} -> {r['on_calls']:.0f})"
                    print(f"  {r['off_us']:9.1f} -> {r['on_us']:9.1f}  {calls}  {r['fn']}", flush=True)
    rt.TMA = None
    with open(args.out, "w") as fh:
        json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
