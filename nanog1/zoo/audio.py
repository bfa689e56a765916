"""The QCompassBi audio encoder: waveform -> log-mel -> 16×16 patches -> class logits or LM prefix.

Waveform [B, T] -> :class:`LogMel` (torch.stft, Hann window, an HTK mel filterbank built here, log10
with an 8-decade dynamic range as in Whisper) -> mel_values [B, n_mels, frames] -> each clip
standardised over its real frames -> Conv2d patch embedding (frequency × time patches, kernel =
stride = patch) + factored frequency and time position embeddings -> ``nanog1.core.Stack``
(causal=False; "qcompass" = QCompassBi) -> masked mean-pooled classification head and/or a projection
to the LM width, so audio tokens can prefix text exactly like image tokens. Tokens are time-major (all
frequency patches of time patch 0, then of 1, …), so clips of different lengths pad at the end and a
key-padding mask hides the padded time patches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nanog1.core import Stack
from nanog1.zoo.checkpoints import Loaded, load_model, write_model_file
from nanog1.zoo.patch_stack import PatchHeadsConfig


def hz_to_mel(hz: Tensor | float) -> Tensor | float:
    """HTK mel scale: 2595·log10(1 + f/700)."""
    if isinstance(hz, Tensor):
        return 2595.0 * torch.log10(1.0 + hz / 700.0)
    return 2595.0 * math.log10(1.0 + hz / 700.0)


def mel_to_hz(mel: Tensor) -> Tensor:
    """Inverse of :func:`hz_to_mel`."""
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def mel_filterbank(n_freqs: int, n_mels: int, sample_rate: int, f_min: float, f_max: float) -> Tensor:
    """Triangular filters [n_freqs, n_mels] with peaks evenly spaced on the HTK mel scale (peak height 1)."""
    if not 0.0 <= f_min < f_max <= sample_rate / 2:
        raise ValueError(f"need 0 ≤ f_min < f_max ≤ sample_rate/2, got {f_min}, {f_max}, {sample_rate}")
    freqs = torch.linspace(0.0, sample_rate / 2, n_freqs, dtype=torch.float64)
    edges = mel_to_hz(torch.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2, dtype=torch.float64))
    widths = edges[1:] - edges[:-1]
    offsets = edges[None, :] - freqs[:, None]
    rising = -offsets[:, :-2] / widths[:-1]
    falling = offsets[:, 2:] / widths[1:]
    return torch.clamp(torch.minimum(rising, falling), min=0.0).float()


class LogMel(nn.Module):
    """Waveform [B, T] -> normalised log-mel [B, n_mels, 1 + T // hop] (no learned parameters).

    Power spectrogram of a centred (reflect-padded) Hann-windowed STFT, mel filterbank, log10 floored
    at 1e-10, clipped to 8 decades below each clip's maximum, then (x + 4) / 4 as Whisper does.
    """

    def __init__(self, sample_rate: int, n_fft: int, hop: int, n_mels: int, f_min: float, f_max: float):
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self.register_buffer("filters", mel_filterbank(n_fft // 2 + 1, n_mels, sample_rate, f_min, f_max),
                             persistent=False)

    def forward(self, waveform: Tensor) -> Tensor:
        """[B, T] float -> [B, n_mels, frames]."""
        if waveform.ndim != 2 or waveform.shape[1] <= self.n_fft // 2:
            raise ValueError(f"waveform must be [B, T] with T > {self.n_fft // 2}, "
                             f"got {list(waveform.shape)}")
        spec = torch.stft(waveform.float(), self.n_fft, self.hop, window=self.window, center=True,
                          pad_mode="reflect", return_complex=True).abs().pow(2)
        mel = torch.matmul(self.filters.T, spec)
        logmel = torch.log10(mel.clamp(min=1e-10))
        logmel = torch.maximum(logmel, logmel.amax(dim=(1, 2), keepdim=True) - 8.0)
        return (logmel + 4.0) / 4.0

    def frames(self, samples: Tensor | int) -> Tensor | int:
        """Frames the STFT gives for ``samples`` waveform samples (centred): 1 + samples // hop."""
        return 1 + samples // self.hop


@dataclass
class AudioConfig(PatchHeadsConfig):
    """Front-end and geometry; width, depth and heads come from :class:`PatchHeadsConfig` (7 classes here).

    The default suits 1-second clips at 8 kHz (126 frames, padded to 128): 32 mel bands × 128 frames in
    16×16 patches give 2 × 8 = 16 tokens. ``merge`` concatenates that many frequency patches of one time
    patch before the LM projection, so it must divide the frequency patches.
    """

    sample_rate: int = 8000
    n_fft: int = 256
    hop: int = 64
    n_mels: int = 32
    f_min: float = 20.0
    f_max: float = 4000.0
    max_frames: int = 128
    patch_size: int = 16
    num_classes: int = 7

    def __post_init__(self) -> None:
        if self.n_mels % self.patch_size or self.max_frames % self.patch_size:
            raise ValueError(f"n_mels {self.n_mels} and max_frames {self.max_frames} must divide by "
                             f"patch_size {self.patch_size}")
        self.check_merge(self.freq_patches, "frequency patches")

    @property
    def freq_patches(self) -> int:
        """Patches along the mel axis."""
        return self.n_mels // self.patch_size

    @property
    def time_patches(self) -> int:
        """Patches along time at ``max_frames``."""
        return self.max_frames // self.patch_size

    @property
    def num_patches(self) -> int:
        """Tokens of a full-length clip."""
        return self.freq_patches * self.time_patches

    @property
    def max_samples(self) -> int:
        """Longest waveform (samples) whose frames fit ``max_frames``."""
        return self.max_frames * self.hop - 1


def standardise(mel_values: Tensor, frame_lengths: Tensor | None = None) -> Tensor:
    """Each clip to mean 0 and variance 1 over its real frames, padding frames set to 0.

    Without it the encoder sat at chance on the synthetic clips (loss stuck at ln 7 for 12 epochs):
    the log-mel's large per-clip offset (the noise floor) swamped the shapes that tell classes apart.
    """
    if frame_lengths is None:
        keep = torch.ones_like(mel_values[:, :1])
    else:
        frames = torch.arange(mel_values.shape[2], device=mel_values.device)
        keep = (frames[None, :] < frame_lengths[:, None]).to(mel_values.dtype)[:, None]
    count = keep.sum(dim=(1, 2), keepdim=True).clamp(min=1.0) * mel_values.shape[1]
    mean = (mel_values * keep).sum(dim=(1, 2), keepdim=True) / count
    var = ((mel_values - mean) ** 2 * keep).sum(dim=(1, 2), keepdim=True) / count
    return (mel_values - mean) * torch.rsqrt(var + 1e-6) * keep


class AudioEncoder(nn.Module):
    """Log-mel patch encoder with a classification head and an LM-width projection (each optional)."""

    def __init__(self, config: AudioConfig, class_names: list[str] | None = None):
        super().__init__()
        self.config = config
        self.class_names = list(class_names) if class_names else [str(i) for i in range(config.num_classes)]
        c, w = config, config.hidden_size
        self.features = LogMel(c.sample_rate, c.n_fft, c.hop, c.n_mels, c.f_min, c.f_max)
        self.patch_embed = nn.Conv2d(1, w, c.patch_size, stride=c.patch_size)
        self.freq_emb = nn.Parameter(torch.randn(1, 1, c.freq_patches, w) * 0.02)
        self.time_emb = nn.Parameter(torch.randn(1, c.time_patches, 1, w) * 0.02)
        self.drop = nn.Dropout(c.dropout)
        self.stack = Stack(c.stack_config())
        self.head = nn.Linear(w, c.num_classes) if c.num_classes else None
        self.proj = nn.Linear(c.merge * w, c.lm_hidden) if c.lm_hidden else None

    def mel(self, waveform: Tensor) -> Tensor:
        """Waveform [B, T] at ``config.sample_rate`` -> mel_values [B, n_mels, 1 + T // hop]."""
        return self.features(waveform)

    def _patchify(self, mel_values: Tensor, frame_lengths: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """Zero frames past each length, pad time to whole patches -> (tokens [B, N, W], mask | None)."""
        c = self.config
        if mel_values.ndim != 3 or mel_values.shape[1] != c.n_mels or mel_values.shape[2] > c.max_frames:
            raise ValueError(f"mel_values must be [B, {c.n_mels}, ≤ {c.max_frames}], "
                             f"got {list(mel_values.shape)}")
        frames = mel_values.shape[2]
        mel_values = standardise(mel_values, frame_lengths)
        mel_values = F.pad(mel_values, (0, -frames % c.patch_size))
        x = self.patch_embed(mel_values[:, None])  # [B, W, F, Tp]
        tp = x.shape[3]
        x = x.permute(0, 3, 2, 1) + self.freq_emb + self.time_emb[:, :tp]  # [B, Tp, F, W]
        tokens = x.reshape(x.shape[0], tp * c.freq_patches, x.shape[3])
        return tokens, self.padding_mask(frame_lengths, tp)

    def padding_mask(self, frame_lengths: Tensor | None, time_patches: int) -> Tensor | None:
        """[B, time_patches · freq_patches] True at tokens whose time patch holds no real frame."""
        if frame_lengths is None:
            return None
        valid = -(-frame_lengths // self.config.patch_size)
        padded = torch.arange(time_patches, device=frame_lengths.device)[None, :] >= valid[:, None]
        return padded.repeat_interleave(self.config.freq_patches, dim=1)

    def encode(self, mel_values: Tensor, frame_lengths: Tensor | None = None,
               return_weights_layer: int | None = None) -> tuple:
        """mel_values [B, n_mels, T] -> (patch features [B, N, W], padding mask [B, N] | None).

        ``frame_lengths`` [B] gives each clip's real frames (the rest is padding); with
        ``return_weights_layer`` also that layer's routing weights [B, heads, N, N].
        """
        tokens, mask = self._patchify(mel_values, frame_lengths)
        out = self.stack(self.drop(tokens), mask, return_weights_layer=return_weights_layer)
        if return_weights_layer is None:
            return out, mask
        return out[0], mask, out[1]

    def forward(self, mel_values: Tensor, frame_lengths: Tensor | None = None) -> Tensor:
        """Class logits [B, num_classes] from the mean of the real (unpadded) patch features."""
        if self.head is None:
            raise ValueError("this AudioEncoder has no classification head (num_classes = 0)")
        x, mask = self.encode(mel_values, frame_lengths)
        if mask is None:
            return self.head(x.mean(dim=1))
        keep = (~mask).unsqueeze(-1).to(x.dtype)
        return self.head((x * keep).sum(dim=1) / keep.sum(dim=1).clamp(min=1.0))

    def prefix(self, mel_values: Tensor, frame_lengths: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """Audio-prefix tokens for the LM [B, N / merge, lm_hidden] and their padding mask (or None)."""
        if self.proj is None:
            raise ValueError("this AudioEncoder has no LM projection (lm_hidden = 0)")
        x, mask = self.encode(mel_values, frame_lengths)
        b, n, w = x.shape
        m = self.config.merge
        tokens = self.proj(x.reshape(b, n // m, m * w))
        return tokens, (None if mask is None else mask[:, ::m])

    @torch.no_grad()
    def routing_map(self, mel_values: Tensor, layer: int = -1, frame_lengths: Tensor | None = None) -> Tensor:
        """Layer ``layer``'s Q-value routing weights [B, heads, N, N] (row i: where token i reads from)."""
        return self.encode(mel_values, frame_lengths, return_weights_layer=layer)[2]


def save_checkpoint(path: Path, model: AudioEncoder, metrics: dict | None = None) -> None:
    """Config, class names, weights and metrics in one model file, written atomically."""
    write_model_file(path, "audio", model, metrics, class_names=model.class_names)


def load_checkpoint(path: Path | str) -> Loaded:
    """Read a checkpoint written by :func:`save_checkpoint` (weights_only, so no code is unpickled)."""
    return load_model(path, "audio", lambda blob: AudioEncoder(AudioConfig(**blob["config"]),
                                                               blob["class_names"]))
