"""Audio classifier and world model on CPU, each beside its peer in the same process.

Audio: the QCompassBi classifier (`nanog1 audio train` defaults, synthetic clips) against logistic
regression on the same split's standardised, flattened log-mel (scikit-learn), and chance.
World: held-out open-loop rollout error of the world model (`nanog1 world train` defaults unless
overridden) against copying the last observed frame, per step.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/audio_world.py --out /tmp/aw_bench [--world-steps 1500]
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split


def audio_peer(cfg) -> float:
    """Logistic regression on the same clips, split and log-mel as the encoder's run."""
    from nanog1.zoo.audio import AudioConfig, AudioEncoder, standardise
    from nanog1.zoo.train_audio import load_audio, mel_batch

    data = load_audio(cfg)
    encoder = AudioEncoder(AudioConfig(**{**cfg.model.__dict__, "num_classes": len(data.class_names)}))
    mel, lengths = mel_batch(encoder, data.waveforms)
    x = standardise(mel, lengths).flatten(1).numpy()
    tr, te = train_test_split(np.arange(len(data.labels)), test_size=cfg.test_fraction, stratify=data.labels,
                              random_state=cfg.seed)
    clf = LogisticRegression(max_iter=3000, C=0.1).fit(x[tr], data.labels[tr])
    return float(clf.score(x[te], data.labels[te]))


def main() -> None:
    """Train both models, print a compact table."""
    from nanog1.zoo.train_audio import AudioTrainConfig, train_audio
    from nanog1.zoo.train_world import WorldTrainConfig, train_world

    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--world-steps", type=int, default=WorldTrainConfig.steps)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, load {os.getloadavg()}")
    start = time.perf_counter()
    audio_cfg = AudioTrainConfig()
    audio = train_audio(audio_cfg, args.out / "audio")
    audio_s = time.perf_counter() - start
    peer = audio_peer(audio_cfg)
    start = time.perf_counter()
    world = train_world(replace(WorldTrainConfig(), steps=args.world_steps), args.out / "world")
    world_s = time.perf_counter() - start
    roll = world.rollout
    print(f"audio: test accuracy {audio.test_accuracy:.4f} | logistic regression {peer:.4f} | chance "
          f"{audio.chance_accuracy:.4f} | encoder/LR {audio.test_accuracy / peer:.2f}x | {audio_s:.0f} s")
    print(f"world: rollout MSE {roll.model_mean:.5f} | copy-last {roll.copy_last_mean:.5f} | ratio "
          f"{roll.ratio:.3f} | reward acc {world.reward_accuracy:.3f} | action acc "
          f"{world.action_accuracy:.3f} | {world_s:.0f} s")
    print("step  model     copy-last")
    for h, (m, c) in enumerate(zip(roll.model_mse, roll.copy_last_mse, strict=True), start=1):
        print(f"{h:>4}  {m:.5f}  {c:.5f}")


if __name__ == "__main__":
    main()
