"""Audio classifier training on the synthetic clips (or a folder of WAV files), MLflow-tracked.

Each clip's log-mel is computed at its own length and right-padded to ``max_frames``; its real frame
count travels with it, so the encoder's padding mask hides the padding. The held-out split is
stratified and never used for model selection; chance accuracy (the largest class share of the test
split) is logged beside the test accuracy.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from nanog1.checkpoint import seed_everything
from nanog1.zoo.audio import AudioConfig, AudioEncoder, save_checkpoint
from nanog1.zoo.audio_data import AudioSet, synthetic_audio
from nanog1.zoo.classifier import ClassifierData, ClassifierResult, ClassifierTrainConfig, train_classifier


@dataclass
class AudioTrainConfig(ClassifierTrainConfig):
    """One classifier run; ``data`` = None trains on ``per_class`` synthetic clips of every class."""

    data: str | None = None
    per_class: int = 200
    experiment: str = "audio/synthetic"
    model: AudioConfig = field(default_factory=AudioConfig)


def read_wav(path: Path, sample_rate: int) -> np.ndarray:
    """A WAV file as mono float32 at ``sample_rate`` (channels averaged, resampled with resample_poly)."""
    import struct
    from math import gcd

    from scipy.io import wavfile
    from scipy.signal import resample_poly

    try:
        rate, data = wavfile.read(path)
    except (ValueError, OSError, EOFError, struct.error) as err:
        raise ValueError(f"{path}: not a readable WAV file ({err})") from err
    if np.issubdtype(data.dtype, np.integer):
        data = data / float(np.iinfo(data.dtype).max)
    data = np.asarray(data, dtype=np.float64)
    if data.ndim == 2:
        data = data.mean(axis=1)
    if rate != sample_rate:
        g = gcd(int(rate), sample_rate)
        data = resample_poly(data, sample_rate // g, int(rate) // g)
    return data.astype(np.float32)


def wav_folder(root: Path | str, sample_rate: int) -> AudioSet:
    """Every readable ``root/<class>/*.wav``; unreadable or too-short files are counted, not kept."""
    root = Path(root)
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    clips, labels, skipped = [], [], Counter()
    for label, name in enumerate(classes):
        for path in sorted((root / name).glob("*.wav")):
            try:
                clips.append(read_wav(path, sample_rate))
                labels.append(label)
            except ValueError:
                skipped["not a readable WAV file"] += 1
    if not clips:
        raise ValueError(f"{root}: no readable <class>/*.wav files ({dict(skipped)})")
    return AudioSet(clips, np.asarray(labels, dtype=np.int64), classes, sample_rate, dict(skipped))


@torch.no_grad()
def mel_batch(model: AudioEncoder, clips: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Each clip's log-mel at its own length, cut to ``max_frames``, right-padded -> (mel, lengths)."""
    c = model.config
    out = torch.zeros(len(clips), c.n_mels, c.max_frames)
    lengths = torch.zeros(len(clips), dtype=torch.long)
    for i, clip in enumerate(clips):
        if len(clip) <= c.n_fft // 2:
            clip = np.pad(clip, (0, c.n_fft // 2 + 1 - len(clip)))
        mel = model.mel(torch.from_numpy(np.ascontiguousarray(clip[:c.max_samples]))[None])[0]
        out[i, :, :mel.shape[1]] = mel
        lengths[i] = mel.shape[1]
    return out, lengths


def load_audio(cfg: AudioTrainConfig) -> AudioSet:
    """The synthetic clips, or every readable WAV under ``cfg.data`` at the model's sample rate."""
    if cfg.data is None:
        return synthetic_audio(cfg.per_class, cfg.model.sample_rate, seed=cfg.seed)
    return wav_folder(cfg.data, cfg.model.sample_rate)


def train_audio(cfg: AudioTrainConfig, out: Path, tracking_uri: str | None = None) -> ClassifierResult:
    """Train the classifier per ``cfg``; writes ``out``/model.pt and logs one MLflow run."""
    seed_everything(cfg.seed)
    data = load_audio(cfg)
    model = AudioEncoder(AudioConfig(**{**asdict(cfg.model), "num_classes": len(data.class_names)}),
                         data.class_names)
    inputs = ClassifierData(mel_batch(model, data.waveforms), data.labels, data.class_names, "clips",
                            data.skipped)
    return train_classifier(model, inputs, cfg, out, save_checkpoint, tracking_uri)


@torch.no_grad()
def predict_files(checkpoint: Path, paths: list[Path], seed: int = 0) -> list[tuple[str, str, float]]:
    """(name, predicted class, probability) per WAV file; a fresh synthetic clip per class if none given."""
    from nanog1.zoo.audio import load_checkpoint

    model = load_checkpoint(checkpoint).model
    if paths:
        clips, names = [read_wav(p, model.config.sample_rate) for p in paths], [str(p) for p in paths]
    else:
        demo = synthetic_audio(1, model.config.sample_rate, seed=seed + 10_000)
        clips = demo.waveforms
        names = [f"synthetic {demo.class_names[y]}" for y in demo.labels]
    mel, lengths = mel_batch(model, clips)
    best = torch.softmax(model(mel, lengths), dim=-1).max(dim=-1)
    picks = zip(names, best.indices.tolist(), best.values.tolist(), strict=True)
    return [(name, model.class_names[i], p) for name, i, p in picks]
