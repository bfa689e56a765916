"""Models: prompt the text LM; classify an image or audio clip; roll the world model out beside copy-last."""

import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import streamlit as st
import torch

from nanog1.dashboard.config import ENV_AUDIO_CKPT, ENV_TEXT_CKPT, ENV_VISION_CKPT, ENV_WORLD_CKPT
from nanog1.dashboard.model_status import LOADER, load_model, model_status
from nanog1.dashboard.ui import current_config


@st.cache_resource(show_spinner="Loading model…", max_entries=2)
def cached_model(family: str, module: str, checkpoint: str, mtime: float):
    """The model behind one checkpoint version, loaded once per server."""
    return load_model(model_status(family, module, Path(checkpoint)))


def text_panel(loaded) -> None:
    """Prompt -> continuation with the decoding cache (or recomputation), and its tokens/s."""
    from nanog1.zoo.text import complete

    model = loaded.model
    counts = model.parameter_counts()
    cfg = model.config
    st.caption(f"{cfg.mixer} · H={cfg.hidden_size} · {cfg.layers} layers · r={cfg.rank} · "
               f"context {cfg.max_len} · {counts['total'] / 1e6:.2f} M parameters · vocab {cfg.vocab_size}")
    if "val_loss" in loaded.metrics:
        cols = st.columns(2)
        cols[0].metric("validation loss (nats/token)", f"{loaded.metrics['val_loss']:.3f}")
        cols[1].metric("unigram baseline", f"{loaded.metrics.get('unigram_loss', float('nan')):.3f}")
    prompt = st.text_area("Prompt", "The ", key="lm_prompt")
    cols = st.columns(5)
    new = cols[0].number_input("new tokens", 1, max(1, cfg.max_len - 1), min(120, cfg.max_len - 1))
    temperature = cols[1].slider("temperature", 0.0, 2.0, 0.8, 0.05, help="0 = greedy")
    top_k = cols[2].number_input("top-k (0 = off)", 0, cfg.vocab_size, 0)
    top_p = cols[3].slider("top-p", 0.05, 1.0, 1.0, 0.05)
    use_cache = cols[4].checkbox("decoding cache", True)
    if st.button("Generate", type="primary"):
        start = time.perf_counter()
        text = complete(loaded, prompt, int(new), temperature=temperature, top_k=int(top_k) or None,
                        top_p=top_p if top_p < 1.0 else None, use_cache=use_cache)
        elapsed = time.perf_counter() - start
        st.code(prompt + text, language=None, wrap_lines=True)
        st.caption(f"{int(new)} tokens in {elapsed:.2f} s ({int(new) / elapsed:,.0f} tokens/s, "
                   f"{'cache' if use_cache else 'recompute'}, prompt prefill included)")


def pick_image(config) -> tuple[np.ndarray, str]:
    """An image [C, S, S] for the model: an upload, a digit, or one of scikit-learn's sample photos."""
    from PIL import Image

    from nanog1.zoo.images import digits_dataset, sample_images, to_array

    upload = st.file_uploader("Image (optional)", type=["png", "jpg", "jpeg", "bmp", "gif"])
    if upload is not None:
        return to_array(Image.open(upload), config.image_size, config.channels), upload.name
    if config.channels == 1 and config.image_size == 8:
        digits = digits_dataset()
        i = st.number_input("digit index (scikit-learn digits)", 0, len(digits.labels) - 1, 0)
        return digits.images[int(i)], f"digit #{int(i)} (label {digits.labels[int(i)]})"
    photos, names = sample_images(config.image_size, config.channels)
    name = st.selectbox("sample photo", names)
    return photos[names.index(name)], name


def routing_figure(weights: torch.Tensor, grid: int):
    """Head-averaged N×N routing weights beside the weight each patch receives, as a grid."""
    mean = weights[0].mean(dim=0).numpy()
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.6))
    axes[0].imshow(mean, cmap="viridis")
    axes[0].set(title="routing weights (row reads column)", xlabel="patch", ylabel="patch")
    axes[1].imshow(mean.mean(axis=0).reshape(grid, grid), cmap="magma")
    axes[1].set(title="weight received per patch", xticks=[], yticks=[])
    fig.tight_layout()
    return fig


def vision_panel(loaded) -> None:
    """Prediction with class probabilities and one layer's Q-value routing map."""
    model = loaded.model
    cfg = model.config
    st.caption(f"{cfg.mixer} (bidirectional) · width {cfg.hidden_size} · {cfg.layers} layers · "
               f"{cfg.image_size}×{cfg.image_size}×{cfg.channels} in {cfg.patch_size}-pixel patches")
    if "test_accuracy" in loaded.metrics:
        st.metric("held-out test accuracy", f"{loaded.metrics['test_accuracy']:.2%}")
    image, name = pick_image(cfg)
    pixels = torch.from_numpy(image)[None]
    with torch.no_grad():
        probs = torch.softmax(model(pixels), dim=-1)[0].numpy()
    layer = st.slider("layer", 0, cfg.layers - 1, cfg.layers - 1)
    cols = st.columns([1, 2])
    shown = image[0] if cfg.channels == 1 else image.transpose(1, 2, 0)
    cols[0].image(shown, caption=name, width=160, clamp=True)
    best = int(probs.argmax())
    cols[1].markdown(f"**Prediction:** {model.class_names[best]} ({probs[best]:.1%})")
    cols[1].bar_chart({"probability": dict(zip(model.class_names, probs.tolist(), strict=True))})
    st.pyplot(routing_figure(model.routing_map(pixels, layer=layer), cfg.grid))


def audio_panel(loaded) -> None:
    """A clip (upload or synthetic) -> its log-mel, the prediction and class probabilities."""
    from nanog1.zoo.train_audio import mel_batch

    model = loaded.model
    cfg = model.config
    st.caption(f"{cfg.mixer} (bidirectional) · width {cfg.hidden_size} · {cfg.layers} layers · "
               f"{cfg.n_mels} mel bands × ≤ {cfg.max_frames} frames in {cfg.patch_size}-square patches · "
               f"{cfg.sample_rate} Hz")
    if "test_accuracy" in loaded.metrics:
        cols = st.columns(2)
        cols[0].metric("held-out test accuracy", f"{loaded.metrics['test_accuracy']:.2%}")
        cols[1].metric("chance", f"{loaded.metrics.get('chance_accuracy', float('nan')):.2%}")
    clip, name = pick_clip(cfg.sample_rate)
    mel, lengths = mel_batch(model, [clip])
    with torch.no_grad():
        probs = torch.softmax(model(mel, lengths), dim=-1)[0].numpy()
    cols = st.columns([2, 1])
    fig, ax = plt.subplots(figsize=(6, 2.4))
    ax.imshow(mel[0, :, :int(lengths[0])].numpy(), origin="lower", aspect="auto", cmap="magma")
    ax.set(title=f"log-mel: {name}", xlabel="frame", ylabel="mel band")
    fig.tight_layout()
    cols[0].pyplot(fig)
    best = int(probs.argmax())
    cols[1].markdown(f"**Audio prediction:** {model.class_names[best]} ({probs[best]:.1%})")
    cols[1].bar_chart({"probability": dict(zip(model.class_names, probs.tolist(), strict=True))})


def pick_clip(sample_rate: int) -> tuple[np.ndarray, str]:
    """A waveform: an uploaded WAV file or a fresh synthetic clip of a chosen class."""
    from nanog1.zoo.audio_data import CLASS_NAMES, make_clip
    from nanog1.zoo.train_audio import read_wav

    upload = st.file_uploader("Audio clip (optional, WAV)", type=["wav"])
    if upload is not None:
        path = Path(st.session_state.setdefault("audio_tmp", str(Path(tempfile.mkdtemp()) / "clip.wav")))
        path.write_bytes(upload.getvalue())
        return read_wav(path, sample_rate), upload.name
    cols = st.columns(2)
    label = cols[0].selectbox("synthetic class", CLASS_NAMES, key="audio_class")
    seed = cols[1].number_input("clip seed", 0, 10_000, 0, key="audio_seed")
    rng = np.random.default_rng(int(seed))
    return make_clip(CLASS_NAMES.index(label), rng, sample_rate, (0.5, 1.0), (0.0, 20.0)), f"{label} #{seed}"


def world_panel(loaded) -> None:
    """One simulated episode: true frames beside the frames the model imagines from the first one."""
    from nanog1.zoo.gridworld import GridWorldConfig, simulate

    model = loaded.model
    cfg = model.config
    saved_env = loaded.extra.get("env")
    env = GridWorldConfig(**saved_env) if saved_env else GridWorldConfig(grid=cfg.image_size // 2, cell=2)
    st.caption(f"state encoder: learned query + {cfg.mixer} (bidirectional) · width {cfg.hidden_size} · "
               f"{cfg.layers} layers · state {cfg.state_size} · {env.grid}×{env.grid} grid, "
               f"{env.walls} walls")
    if "rollout_mse" in loaded.metrics:
        cols = st.columns(3)
        cols[0].metric("rollout MSE (held out)", f"{loaded.metrics['rollout_mse']:.5f}")
        cols[1].metric("copy-last MSE", f"{loaded.metrics['copy_last_mse']:.5f}")
        cols[2].metric("ratio", f"{loaded.metrics['rollout_ratio']:.3f}")
    cols = st.columns(2)
    seed = cols[0].number_input("episode seed", 0, 10_000, 0, key="world_seed")
    horizon = cols[1].slider("imagined steps", 1, 12, 6, key="world_horizon")
    episode = simulate(env, 1, int(horizon), seed=int(seed))
    frames = torch.from_numpy(episode.frames)
    imagined = model.rollout(frames[:, 0], torch.from_numpy(episode.actions))[0]
    fig, axes = plt.subplots(2, int(horizon) + 1, figsize=(1.3 * (int(horizon) + 1), 2.9), squeeze=False)
    for t in range(int(horizon) + 1):
        axes[0, t].imshow(frames[0, t].permute(1, 2, 0).numpy())
        title = "start" if t == 0 else model.action_names[int(episode.actions[0, t - 1])]
        axes[0, t].set_title(title, fontsize=8)
        shown = frames[0, 0] if t == 0 else imagined[t - 1]
        axes[1, t].imshow(shown.permute(1, 2, 0).clamp(0, 1).numpy())
    for ax in axes.flat:
        ax.set(xticks=[], yticks=[])
    axes[0, 0].set_ylabel("true", fontsize=8)
    axes[1, 0].set_ylabel("imagined", fontsize=8)
    fig.tight_layout()
    st.pyplot(fig)
    if "rollout_model_mse" in loaded.metrics:
        st.line_chart({"world model": loaded.metrics["rollout_model_mse"],
                       "copy last frame": loaded.metrics["rollout_copy_last_mse"]},
                      x_label="step", y_label="MSE")


st.title("Text & vision models")
st.caption("Also the audio encoder and the world model, further down.")
cfg = current_config()
families = [
    ("text LM", "nanog1.zoo.text", cfg.text_checkpoint, ENV_TEXT_CKPT, "lm",
     "prompt → generated text with the decoding cache, tokens/s", text_panel),
    ("vision encoder", "nanog1.zoo.vision", cfg.vision_checkpoint, ENV_VISION_CKPT, "vision",
     "image → prediction and the Q-value routing map of a chosen layer", vision_panel),
    ("audio encoder", "nanog1.zoo.audio", cfg.audio_checkpoint, ENV_AUDIO_CKPT, "audio",
     "audio clip → log-mel, prediction and class probabilities", audio_panel),
    ("world model", "nanog1.zoo.world", cfg.world_checkpoint, ENV_WORLD_CKPT, "world",
     "a simulated episode beside the model's imagined rollout, and rollout error against copy-last",
     world_panel),
]
for family, module, checkpoint, env, command, what, panel in families:
    st.subheader(family.capitalize())
    status = model_status(family, module, checkpoint)
    if not status.ready:
        message = (f"Not available: {status.missing()}. When ready this panel shows {what}. "
                   f"It needs `{module}.{LOADER}(path)` and a checkpoint set through ${env} "
                   f"(`nanog1 {command} train --out DIR` writes DIR/model.pt).")
        # audio and world are newer additions: their status is a caption, so the text and vision notices
        # stay the page's only st.info boxes
        (st.caption if command in ("audio", "world") else st.info)(message)
        continue
    try:
        loaded = cached_model(family, module, str(status.checkpoint), status.checkpoint.stat().st_mtime)
    except Exception as exc:  # a model module's own loading errors are shown, not raised
        st.error(f"Cannot load {status.checkpoint}: {type(exc).__name__}: {exc}")
        continue
    st.success(f"Loaded {type(loaded.model).__name__} from {status.checkpoint}")
    panel(loaded)
