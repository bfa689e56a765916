"""Audio encoder: log-mel against numpy, shapes, masks, LM audio prefix, training, save/load, CLI."""

from __future__ import annotations

import math

import mlflow
import numpy as np
import pytest
import torch
from scipy.io import wavfile
from typer.testing import CliRunner

from nanog1.cli import app
from nanog1.zoo.audio import (
    AudioConfig,
    AudioEncoder,
    LogMel,
    load_checkpoint,
    mel_filterbank,
    save_checkpoint,
    standardise,
)
from nanog1.zoo.audio_data import CLASS_NAMES, synthetic_audio
from nanog1.zoo.text import QuatrixLM, TextConfig
from nanog1.zoo.train_audio import AudioTrainConfig, mel_batch, predict_files, read_wav, train_audio

TINY = AudioConfig(n_mels=16, max_frames=64, patch_size=8, hidden_size=32, layers=1, rank=8, heads=2,
                   dropout=0.0, num_classes=len(CLASS_NAMES))


def reference_filterbank(n_freqs, n_mels, sr, f_min, f_max):
    """Each triangle written out from its three edge frequencies (HTK mel), one filter at a time."""
    mel = lambda f: 2595 * math.log10(1 + f / 700)  # noqa: E731
    edges = [700 * (10 ** (m / 2595) - 1) for m in np.linspace(mel(f_min), mel(f_max), n_mels + 2)]
    freqs = np.linspace(0, sr / 2, n_freqs)
    fb = np.zeros((n_freqs, n_mels))
    for m in range(n_mels):
        lo, mid, hi = edges[m:m + 3]
        for i, f in enumerate(freqs):
            if lo <= f <= mid:
                fb[i, m] = (f - lo) / (mid - lo)
            elif mid < f <= hi:
                fb[i, m] = (hi - f) / (hi - mid)
    return fb


def reference_logmel(wave, sr, n_fft, hop, n_mels, f_min, f_max):
    """numpy: reflect-pad, periodic Hann frames, |rfft|², filterbank, log10, 8-decade floor, (x + 4) / 4."""
    padded = np.pad(wave, n_fft // 2, mode="reflect")
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    frames = np.stack([padded[i * hop:i * hop + n_fft] * window for i in range(1 + len(wave) // hop)])
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    logmel = np.log10(np.maximum(power @ reference_filterbank(n_fft // 2 + 1, n_mels, sr, f_min, f_max),
                                 1e-10)).T
    return (np.maximum(logmel, logmel.max() - 8.0) + 4.0) / 4.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mel_filterbank_matches_a_filter_by_filter_reference(seed):
    rng = np.random.default_rng(seed)
    sr = int(rng.choice([8000, 16000, 22050]))
    n_mels, n_fft = int(rng.integers(8, 40)), int(rng.choice([256, 512]))
    f_min, f_max = float(rng.uniform(0, 100)), float(rng.uniform(0.6, 1.0) * sr / 2)
    ours = mel_filterbank(n_fft // 2 + 1, n_mels, sr, f_min, f_max).numpy()
    expected = reference_filterbank(n_fft // 2 + 1, n_mels, sr, f_min, f_max)
    np.testing.assert_allclose(ours, expected, atol=1e-6)
    with pytest.raises(ValueError, match="f_min"):
        mel_filterbank(129, 8, sr, 100.0, sr)


@pytest.mark.parametrize("seed", [0, 1])
def test_log_mel_matches_numpy_on_random_waveforms(seed):
    rng = np.random.default_rng(seed)
    wave = rng.standard_normal(int(rng.integers(900, 3000))) * rng.uniform(0.01, 1.0)
    front = LogMel(8000, 256, 64, 24, 20.0, 4000.0)
    ours = front(torch.from_numpy(wave)[None])[0].double().numpy()
    np.testing.assert_allclose(ours, reference_logmel(wave, 8000, 256, 64, 24, 20.0, 4000.0), atol=2e-4)
    assert ours.shape[1] == front.frames(len(wave))
    with pytest.raises(ValueError, match="waveform"):
        front(torch.zeros(10))


def test_a_tone_lights_the_mel_band_of_its_pitch():
    front = LogMel(8000, 256, 64, 32, 20.0, 4000.0)
    t = torch.arange(8000) / 8000
    tones = torch.stack([torch.sin(2 * math.pi * f * t) for f in (300, 1000, 3000)])
    peaks = front(tones).mean(dim=2).argmax(dim=1).tolist()
    assert peaks[0] < peaks[1] < peaks[2]


def test_standardise_uses_real_frames_only_and_zeroes_padding():
    torch.manual_seed(0)
    mel = torch.randn(2, 4, 10) * 3 + 5
    lengths = torch.tensor([6, 10])
    out = standardise(mel, lengths)
    real = out[0, :, :6]
    assert abs(float(real.mean())) < 1e-5 and abs(float(real.var(unbiased=False)) - 1) < 1e-3
    assert torch.equal(out[0, :, 6:], torch.zeros(4, 4))
    torch.testing.assert_close(out[1], standardise(mel[1:])[0])


def test_encoder_shapes_prefix_and_routing_map():
    torch.manual_seed(0)
    cfg = AudioConfig(**{**TINY.__dict__, "lm_hidden": 24, "merge": 2})
    model = AudioEncoder(cfg).eval()
    mel = torch.randn(3, 16, 50)  # 50 frames -> 7 time patches of 8, 2 frequency patches
    assert model(mel).shape == (3, len(CLASS_NAMES))
    feats, mask = model.encode(mel)
    assert feats.shape == (3, 14, 32) and mask is None
    tokens, tmask = model.prefix(mel, torch.tensor([50, 20, 8]))
    assert tokens.shape == (3, 7, 24)
    assert tmask.sum(dim=1).tolist() == [0, 4, 6]
    assert model.routing_map(mel, layer=0).shape == (3, 2, 14, 14)
    assert model.mel(torch.randn(2, 1000)).shape == (2, 16, 1 + 1000 // 64)
    with pytest.raises(ValueError, match="mel_values"):
        model(torch.randn(1, 16, 65))
    with pytest.raises(ValueError, match="merge"):
        AudioConfig(**{**TINY.__dict__, "merge": 3})


def test_padded_batch_equals_clips_one_by_one_and_ignores_padding_content():
    torch.manual_seed(1)
    model = AudioEncoder(TINY).eval()
    lengths = torch.tensor([21, 64, 40])
    mel = torch.randn(3, 16, 64)
    batch = model(mel, lengths)
    alone = torch.cat([model(mel[i:i + 1, :, :n]) for i, n in enumerate(lengths.tolist())])
    torch.testing.assert_close(batch, alone, atol=1e-5, rtol=1e-5)
    garbage = mel.clone()
    garbage[0, :, 21:] = 1e3
    torch.testing.assert_close(model(garbage, lengths), batch, atol=1e-5, rtol=1e-5)


def test_synthetic_audio_is_reproducible_balanced_and_varied():
    a, b = synthetic_audio(4, seed=3), synthetic_audio(4, seed=3)
    assert all(np.array_equal(x, y) for x, y in zip(a.waveforms, b.waveforms, strict=True))
    assert np.bincount(a.labels).tolist() == [4] * len(CLASS_NAMES)
    assert len({len(w) for w in a.waveforms}) > 10
    assert not np.array_equal(a.waveforms[0], synthetic_audio(4, seed=4).waveforms[0])


def lm_with_audio(seed: int = 0) -> QuatrixLM:
    torch.manual_seed(seed)
    audio = AudioConfig(**{**TINY.__dict__, "num_classes": 0, "lm_hidden": 32, "merge": 2})
    return QuatrixLM(TextConfig(vocab_size=61, hidden_size=32, layers=2, rank=8, heads=2, mixer="qcompass",
                                max_len=96, audio=audio)).eval()


def test_audio_prefix_conditions_text_and_caches_identically():
    model = lm_with_audio()
    ids, mel = torch.randint(0, 61, (2, 12)), torch.randn(2, 16, 64)
    with_audio = model(ids, mel_values=mel)
    assert with_audio.shape == (2, 12, 61)
    assert not torch.allclose(with_audio, model(ids, mel_values=torch.randn(2, 16, 64)))
    cached = model.generate(ids[:, :4], 10, temperature=0, mel_values=mel)
    assert torch.equal(cached, model.generate(ids[:, :4], 10, temperature=0, mel_values=mel, use_cache=False))
    counts = model.parameter_counts()
    assert counts["audio_projection"] == 2 * 32 * 32 + 32
    assert counts["lm"] + counts["audio"] + counts["audio_projection"] == counts["total"]
    with pytest.raises(ValueError, match="without audio"):
        QuatrixLM(TextConfig(vocab_size=61, hidden_size=32, layers=1, rank=8, heads=2))(ids, mel_values=mel)
    with pytest.raises(ValueError, match="lm_hidden"):
        TextConfig(hidden_size=64, audio=AudioConfig(lm_hidden=32))


def test_padded_audio_prefix_is_masked_in_the_lm():
    model = lm_with_audio(1)
    ids, mel = torch.randint(0, 61, (2, 8)), torch.randn(2, 16, 64)
    lengths = torch.tensor([30, 64])
    batch = model(ids, mel_values=mel, mel_lengths=lengths)
    garbage = mel.clone()
    garbage[0, :, 32:] = 50.0  # past the last real time patch (frames 24-31)
    again = model(ids, mel_values=garbage, mel_lengths=lengths)
    torch.testing.assert_close(again, batch, atol=1e-5, rtol=1e-5)
    first = model.generate(ids[:1, :3], 5, temperature=0, mel_values=mel[:1], mel_lengths=lengths[:1],
                           use_cache=False)
    assert first.shape == (1, 8)
    with pytest.raises(ValueError, match="cached generation"):
        model.generate(ids[:, :3], 5, temperature=0, mel_values=mel, mel_lengths=lengths)


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(2)
    model = AudioEncoder(TINY, list(CLASS_NAMES)).eval()
    save_checkpoint(tmp_path / "a.pt", model, {"test_accuracy": 0.5})
    loaded = load_checkpoint(tmp_path / "a.pt")
    mel = torch.randn(2, 16, 64)
    torch.testing.assert_close(loaded.model(mel), model(mel))
    assert loaded.model.class_names == list(CLASS_NAMES) and loaded.metrics == {"test_accuracy": 0.5}
    torch.save({"kind": "vision"}, tmp_path / "v.pt")
    with pytest.raises(ValueError, match="not a NanoG1 audio checkpoint"):
        load_checkpoint(tmp_path / "v.pt")


@pytest.mark.slow
def test_short_training_lowers_the_loss_and_beats_chance(tmp_path):
    model = AudioConfig(**{**TINY.__dict__, "n_mels": 32, "max_frames": 128, "patch_size": 16})
    cfg = AudioTrainConfig(per_class=24, epochs=8, batch_size=16, lr=3e-3, test_fraction=0.25, model=model)
    result = train_audio(cfg, tmp_path / "run")
    client = mlflow.tracking.MlflowClient()
    losses = [m.value for m in client.get_metric_history(result.run_id, "train_loss")]
    assert len(losses) == 8 and losses[-1] < 0.8 * losses[0]
    run = mlflow.get_run(result.run_id)
    assert run.info.status == "FINISHED" and run.data.params["train_clips"] == "126"
    assert result.chance_accuracy == pytest.approx(1 / len(CLASS_NAMES), abs=0.02)
    assert float(run.data.metrics["train_accuracy"]) > 2 * result.chance_accuracy
    preds = predict_files(result.checkpoint, [])
    assert len(preds) == len(CLASS_NAMES) and all(label in CLASS_NAMES for _, label, _ in preds)


def test_read_wav_resamples_and_names_bad_files(tmp_path):
    t = np.arange(16000) / 16000
    wavfile.write(tmp_path / "tone.wav", 16000, (0.5 * np.sin(2 * np.pi * 1000 * t) * 32767).astype(np.int16))
    wave = read_wav(tmp_path / "tone.wav", 8000)
    assert wave.shape == (8000,) and wave.dtype == np.float32
    assert abs(np.fft.rfftfreq(8000, 1 / 8000)[np.abs(np.fft.rfft(wave)).argmax()] - 1000) < 2
    (tmp_path / "bad.wav").write_bytes(b"not a wav")
    with pytest.raises(ValueError, match="bad.wav"):
        read_wav(tmp_path / "bad.wav", 8000)
    mel, lengths = mel_batch(AudioEncoder(TINY), [wave[:500], wave])
    assert mel.shape == (2, 16, 64) and lengths.tolist() == [1 + 500 // 64, 64]


def test_audio_cli_train_then_predict(tmp_path):
    for cls, freq in (("low", 300), ("high", 2500)):
        (tmp_path / "wavs" / cls).mkdir(parents=True)
        for i in range(6):
            t = np.arange(4000 + 300 * i) / 8000
            wavfile.write(tmp_path / "wavs" / cls / f"{i}.wav", 8000,
                          (0.3 * np.sin(2 * np.pi * freq * (1 + 0.05 * i) * t)).astype(np.float32))
    (tmp_path / "wavs" / "low" / "broken.wav").write_bytes(b"RIFF")
    runner = CliRunner()
    out = tmp_path / "aud"
    res = runner.invoke(app, ["audio", "train", "--out", str(out), "--data", str(tmp_path / "wavs"),
                              "--epochs", "3", "--hidden", "16", "--layers", "1", "--rank", "4",
                              "--heads", "2"])
    assert res.exit_code == 0, res.output
    assert "test accuracy" in res.output and "chance" in res.output and "mlflow run:" in res.output
    params = mlflow.get_run(res.output.strip().split()[-1]).data.params
    assert params["skipped.not a readable WAV file"] == "1"
    res = runner.invoke(app, ["audio", "predict", "--model", str(out / "model.pt"),
                              str(tmp_path / "wavs" / "high" / "0.wav")])
    assert res.exit_code == 0, res.output
    name, label, prob = res.output.strip().split("\t")
    assert name.endswith("0.wav") and label in ("low", "high") and 0.0 < float(prob) <= 1.0
