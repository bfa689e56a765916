"""Synthetic labelled audio made in code from a seed: tones, chirps, chords, tremolo, noise and clicks.

Every clip draws its own length, loudness, pitch and background-noise level, so a classifier has to
read the shape of the spectrogram (a flat line, a rising or falling sweep, two lines, a pulsing line,
a broad band, a comb of vertical lines) rather than any one number. Nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

CLASS_NAMES = ("tone", "chirp_up", "chirp_down", "chord", "tremolo", "noise_band", "clicks")


@dataclass
class AudioSet:
    """Float32 waveforms of varying length, labels, class names, sample rate and skipped files by reason."""

    waveforms: list[np.ndarray]
    labels: np.ndarray
    class_names: list[str]
    sample_rate: int
    skipped: dict[str, int] = field(default_factory=dict)


def _sine(freq: np.ndarray | float, t: np.ndarray, sr: int) -> np.ndarray:
    """A sine of (possibly time-varying) frequency, by integrating the phase."""
    freq = np.broadcast_to(np.asarray(freq, dtype=np.float64), t.shape)
    return np.sin(2 * np.pi * np.cumsum(freq) / sr)


def _pitch(rng: np.random.Generator, sr: int) -> float:
    """A log-uniform pitch between 150 Hz and 0.35·sample rate."""
    return float(np.exp(rng.uniform(np.log(150.0), np.log(0.35 * sr))))


def _tone(rng, t, sr):
    return _sine(_pitch(rng, sr), t, sr)


def _chirp(rng, t, sr, up: bool):
    lo = np.exp(rng.uniform(np.log(150.0), np.log(0.08 * sr)))
    hi = lo * rng.uniform(2.5, min(8.0, 0.4 * sr / lo))
    start, end = (lo, hi) if up else (hi, lo)
    return _sine(start * (end / start) ** (t / t[-1]), t, sr)


def _chord(rng, t, sr):
    f = np.exp(rng.uniform(np.log(150.0), np.log(0.15 * sr)))
    return 0.5 * (_sine(f, t, sr) + _sine(f * rng.uniform(1.6, 2.4), t, sr))


def _tremolo(rng, t, sr):
    rate = rng.uniform(4.0, 10.0)
    return _sine(_pitch(rng, sr), t, sr) * 0.5 * (1.0 + np.sin(2 * np.pi * rate * t / sr))


def _noise_band(rng, t, sr):
    spectrum = np.fft.rfft(rng.standard_normal(len(t)))
    freqs = np.fft.rfftfreq(len(t), 1.0 / sr)
    lo = np.exp(rng.uniform(np.log(100.0), np.log(0.2 * sr)))
    spectrum[(freqs < lo) | (freqs > lo * rng.uniform(2.0, 4.0))] = 0.0
    band = np.fft.irfft(spectrum, n=len(t))
    return band / (np.abs(band).max() + 1e-9)


def _clicks(rng, t, sr):
    out = np.zeros(len(t))
    period = int(sr / rng.uniform(6.0, 20.0))
    out[int(rng.integers(0, period))::period] = 1.0
    return out


GENERATORS: dict[str, Callable] = {
    "tone": _tone,
    "chirp_up": lambda rng, t, sr: _chirp(rng, t, sr, up=True),
    "chirp_down": lambda rng, t, sr: _chirp(rng, t, sr, up=False),
    "chord": _chord,
    "tremolo": _tremolo,
    "noise_band": _noise_band,
    "clicks": _clicks,
}


def make_clip(label: int, rng: np.random.Generator, sample_rate: int, seconds: tuple[float, float],
              snr_db: tuple[float, float]) -> np.ndarray:
    """One clip of class ``CLASS_NAMES[label]``: random length, loudness and white background noise."""
    n = int(rng.uniform(*seconds) * sample_rate)
    t = np.arange(n, dtype=np.float64)
    signal = GENERATORS[CLASS_NAMES[label]](rng, t, sample_rate)
    signal = signal / (np.sqrt(np.mean(signal ** 2)) + 1e-12)
    noise = rng.standard_normal(n) * 10.0 ** (-rng.uniform(*snr_db) / 20.0)
    clip = (signal + noise) * rng.uniform(0.05, 0.3)
    return clip.astype(np.float32)


def synthetic_audio(per_class: int = 200, sample_rate: int = 8000, seconds: tuple[float, float] = (0.5, 1.0),
                    snr_db: tuple[float, float] = (0.0, 20.0), seed: int = 0) -> AudioSet:
    """``per_class`` clips of every class in :data:`CLASS_NAMES`, shuffled, reproducible from ``seed``."""
    if per_class < 1:
        raise ValueError(f"per_class must be ≥ 1, got {per_class}")
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.repeat(np.arange(len(CLASS_NAMES)), per_class))
    clips = [make_clip(int(y), rng, sample_rate, seconds, snr_db) for y in labels]
    return AudioSet(clips, labels.astype(np.int64), list(CLASS_NAMES), sample_rate)
