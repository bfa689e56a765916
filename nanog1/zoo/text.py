"""QuatrixLM: a causal language model on the shared core, optionally conditioned on image/audio prefixes.

tokens -> token + learned position embeddings (an image's projected patch tokens, then an audio clip's
projected log-mel patch tokens, when given, come first) -> ``nanog1.core.Stack`` (causal, any mixer
kind, pre-norm blocks, final norm) -> head tied to the token embedding. ``generate`` decodes with the
mixers' caches (``Stack.step``) or, for checking, by recomputing the whole prefix each token. Learned
positions, not rotary: rotary was not shown to help.

Berry-Q0 (:func:`berry_q0_config`) reproduces the paper's 44 M LM + 5.5 M vision + 0.4 M projection.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nanog1.core import Stack, StackConfig
from nanog1.zoo.audio import AudioConfig, AudioEncoder
from nanog1.zoo.checkpoints import Loaded, load_model, write_model_file
from nanog1.zoo.loop import evaluating
from nanog1.zoo.sampling import sample_next
from nanog1.zoo.vision import VisionConfig, VisionEncoder


@dataclass
class TextConfig:
    """Vocabulary, width, depth, mixer and context of a QuatrixLM; ``vision`` / ``audio`` add encoders."""

    vocab_size: int = 256
    hidden_size: int = 128
    layers: int = 4
    rank: int = 32
    heads: int = 4
    mixer: str = "savo"
    max_len: int = 256
    ffn_mult: int = 4
    dropout: float = 0.0
    query: str = "linear"
    norm: str = "layernorm"
    checkpointing: bool = False
    vision: VisionConfig | None = None
    audio: AudioConfig | None = None

    def __post_init__(self) -> None:
        if isinstance(self.vision, dict):
            self.vision = VisionConfig(**self.vision)
        if isinstance(self.audio, dict):
            self.audio = AudioConfig(**self.audio)
        if self.audio is not None and self.audio.lm_hidden != self.hidden_size:
            raise ValueError(f"audio.lm_hidden ({self.audio.lm_hidden}) must equal hidden_size "
                             f"({self.hidden_size}) so audio tokens can prefix text tokens")
        if self.vision is not None and self.vision.lm_hidden != self.hidden_size:
            raise ValueError(f"vision.lm_hidden ({self.vision.lm_hidden}) must equal hidden_size "
                             f"({self.hidden_size}) so image tokens can prefix text tokens")
        if min(self.vocab_size, self.max_len) < 1:
            raise ValueError("vocab_size and max_len must be ≥ 1")

    def stack_config(self) -> StackConfig:
        """The causal stack these settings describe."""
        return StackConfig(hidden_size=self.hidden_size, layers=self.layers, rank=self.rank, heads=self.heads,
                           mixer=self.mixer, causal=True, ffn_mult=self.ffn_mult, dropout=self.dropout,
                           query=self.query, norm=self.norm, checkpointing=self.checkpointing)


def _unpadded(tokens: Tensor) -> Tensor:
    """An all-False padding mask [B, L] for tokens [B, L, H]."""
    return torch.zeros(tokens.shape[:2], dtype=torch.bool, device=tokens.device)


def berry_q0_config(mixer: str = "qcompass") -> TextConfig:
    """Berry-Q0: H = 512, 7 layers, r = 64, 5,120 context, vision on (≈ 49.9 M parameters).

    The paper gives 44 M LM + 5.5 M vision + 0.4 M projection but not the vocabulary, FFN or vision
    geometry; these reproduce all three (derivation in docs/architecture.md, "Text and vision"):
    LM 19,632,128 non-embedding + 512·V → V = 47,616 (= 372·128) gives 44,011,520; vision: width 384,
    4 QCompassBi layers at r = 32 (quatrix 0.2.1's vision block), 32×32 RGB in 4×4 patches, 10-class
    head: 5,470,090; projection: pairs of patch tokens (2·384 = 768) -> 512 with bias: 393,728.
    """
    vision = VisionConfig(image_size=32, channels=3, patch_size=4, hidden_size=384, layers=4, rank=32,
                          heads=4, num_classes=10, lm_hidden=512, merge=2)
    return TextConfig(vocab_size=47_616, hidden_size=512, layers=7, rank=64, heads=8, mixer=mixer,
                      max_len=5120, ffn_mult=4, vision=vision)


class QuatrixLM(nn.Module):
    """Causal LM over token ids [B, L] (optionally after an image prefix) -> next-token logits [B, L, V]."""

    def __init__(self, config: TextConfig):
        super().__init__()
        self.config = config
        self.token_emb = nn.Embedding(config.vocab_size, config.hidden_size)
        self.pos_emb = nn.Embedding(config.max_len, config.hidden_size)
        nn.init.normal_(self.token_emb.weight, std=0.02)
        nn.init.normal_(self.pos_emb.weight, std=0.02)
        self.drop = nn.Dropout(config.dropout)
        self.stack = Stack(config.stack_config())
        self.head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.head.weight = self.token_emb.weight
        self.vision = VisionEncoder(config.vision) if config.vision is not None else None
        self.audio = AudioEncoder(config.audio) if config.audio is not None else None

    def embed_tokens(self, input_ids: Tensor, start: int = 0) -> Tensor:
        """Token + position embeddings [B, L, H] for text positions start … start + L − 1."""
        end = start + input_ids.shape[1]
        if end > self.config.max_len:
            raise ValueError(f"{end} text tokens exceed the context of {self.config.max_len}")
        positions = torch.arange(start, end, device=input_ids.device)
        return self.token_emb(input_ids) + self.pos_emb(positions)

    def image_prefix(self, pixel_values: Tensor) -> Tensor:
        """Projected image tokens [B, P, H] that precede the text."""
        if self.vision is None:
            raise ValueError("pixel_values given but this QuatrixLM was built without vision (config.vision)")
        return self.vision.prefix(pixel_values)

    def audio_prefix(self, mel_values: Tensor,
                     mel_lengths: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """Projected audio tokens [B, P, H] that precede the text, and their padding mask (or None)."""
        if self.audio is None:
            raise ValueError("mel_values given but this QuatrixLM was built without audio (config.audio)")
        return self.audio.prefix(mel_values, mel_lengths)

    def _prefix(self, pixel_values: Tensor | None, mel_values: Tensor | None,
                mel_lengths: Tensor | None) -> tuple[Tensor | None, Tensor | None]:
        """Image then audio prefix tokens [B, P, H] and their padding mask [B, P] (None: nothing padded)."""
        parts, masks = [], []
        if pixel_values is not None:
            image = self.image_prefix(pixel_values)
            parts.append(image)
            masks.append(_unpadded(image))
        if mel_values is not None:
            audio, audio_mask = self.audio_prefix(mel_values, mel_lengths)
            parts.append(audio)
            masks.append(audio_mask if audio_mask is not None else _unpadded(audio))
        if not parts:
            return None, None
        mask = torch.cat(masks, dim=1)
        return torch.cat(parts, dim=1), (mask if bool(mask.any()) else None)

    def _inputs(self, input_ids: Tensor, pixel_values: Tensor | None, padding_mask: Tensor | None,
                mel_values: Tensor | None = None, mel_lengths: Tensor | None = None
                ) -> tuple[Tensor, Tensor | None, int]:
        x = self.embed_tokens(input_ids)
        prefix, prefix_mask = self._prefix(pixel_values, mel_values, mel_lengths)
        if prefix is None:
            return self.drop(x), padding_mask, 0
        if padding_mask is not None or prefix_mask is not None:
            padding_mask = torch.cat([prefix_mask if prefix_mask is not None else _unpadded(prefix),
                                      padding_mask if padding_mask is not None else _unpadded(x)], dim=1)
        return self.drop(torch.cat([prefix, x], dim=1)), padding_mask, prefix.shape[1]

    def forward(self, input_ids: Tensor, pixel_values: Tensor | None = None,
                padding_mask: Tensor | None = None, mel_values: Tensor | None = None,
                mel_lengths: Tensor | None = None) -> Tensor:
        """Logits [B, L, V] at the text positions; ``padding_mask`` [B, L] is True at (right) padding.

        ``mel_values`` [B, n_mels, T] (with ``mel_lengths`` [B] real frames when clips differ in length)
        put audio tokens before the text, after any image tokens; padded audio tokens are masked.
        """
        x, mask, n_prefix = self._inputs(input_ids, pixel_values, padding_mask, mel_values, mel_lengths)
        return self.head(self.stack(x, mask)[:, n_prefix:])

    @torch.no_grad()
    def routing_map(self, input_ids: Tensor, layer: int = -1, pixel_values: Tensor | None = None,
                    mel_values: Tensor | None = None) -> Tensor:
        """Layer ``layer``'s causal routing weights [B, heads, T, T] over prefix + text tokens."""
        x, _, _ = self._inputs(input_ids, pixel_values, None, mel_values)
        return self.stack(x, return_weights_layer=layer)[1]

    def parameter_counts(self) -> dict[str, int]:
        """Parameters by part: 'lm' (tied head counted once), 'vision' (encoder + head), 'projection'."""
        total = sum(p.numel() for p in self.parameters())
        proj = sum(p.numel() for p in self.vision.proj.parameters()) if self.vision is not None else 0
        vision = sum(p.numel() for p in self.vision.parameters()) - proj if self.vision is not None else 0
        if self.audio is None:
            return {"lm": total - vision - proj, "vision": vision, "projection": proj, "total": total}
        audio_proj = sum(p.numel() for p in self.audio.proj.parameters())
        audio = sum(p.numel() for p in self.audio.parameters()) - audio_proj
        return {"lm": total - vision - proj - audio - audio_proj, "vision": vision, "projection": proj,
                "audio": audio, "audio_projection": audio_proj, "total": total}

    @torch.no_grad()
    def generate(self, input_ids: Tensor, max_new_tokens: int, temperature: float = 1.0,
                 top_k: int | None = None, top_p: float | None = None, pixel_values: Tensor | None = None,
                 use_cache: bool = True, generator: torch.Generator | None = None,
                 mel_values: Tensor | None = None, mel_lengths: Tensor | None = None) -> Tensor:
        """Prompt [B, L0] -> [B, L0 + max_new_tokens]; temperature 0 is greedy.

        ``use_cache`` decodes one token at a time through the mixers' caches; False recomputes the
        whole sequence for every new token (the reference the cache must match). The caches hold no
        padding mask, so cached decoding takes audio clips of one length (``mel_lengths`` all full).
        """
        if input_ids.shape[1] < 1:
            raise ValueError("generate needs a prompt of at least one token")
        if input_ids.shape[1] + max_new_tokens > self.config.max_len:
            raise ValueError(f"prompt {input_ids.shape[1]} + {max_new_tokens} new tokens exceed the context "
                             f"of {self.config.max_len}")
        sample = dict(temperature=temperature, top_k=top_k, top_p=top_p, generator=generator)
        media = dict(pixel_values=pixel_values, mel_values=mel_values, mel_lengths=mel_lengths)
        with evaluating(self):
            return (self._generate_cached if use_cache else self._generate_recompute)(
                input_ids, max_new_tokens, media, sample)

    def _generate_recompute(self, ids: Tensor, n: int, media: dict, sample: dict) -> Tensor:
        for _ in range(n):
            logits = self(ids, **media)[:, -1]
            ids = torch.cat([ids, sample_next(logits, **sample)[:, None]], dim=1)
        return ids

    def _generate_cached(self, ids: Tensor, n: int, media: dict, sample: dict) -> Tensor:
        caches = self.stack.init_cache(ids.shape[0], device=ids.device, dtype=self.token_emb.weight.dtype)
        prefix, prefix_mask = self._prefix(**media)
        if prefix_mask is not None:
            raise ValueError("cached generation cannot mask padded audio tokens: give clips of one length "
                             "or use_cache=False")
        if prefix is not None:
            for i in range(prefix.shape[1]):
                _, caches = self.stack.step(prefix[:, i:i + 1], caches)
        prompt = self.embed_tokens(ids)
        for i in range(ids.shape[1]):
            h, caches = self.stack.step(prompt[:, i:i + 1], caches)
        for k in range(n):
            token = sample_next(self.head(h[:, -1]), **sample)
            ids = torch.cat([ids, token[:, None]], dim=1)
            if k < n - 1:
                h, caches = self.stack.step(self.embed_tokens(token[:, None], ids.shape[1] - 1), caches)
        return ids


def lm_loss(logits: Tensor, input_ids: Tensor) -> Tensor:
    """Mean next-token cross-entropy (nats): logits at t predict the token at t + 1."""
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), input_ids[:, 1:].reshape(-1))


def complete(loaded: Loaded, prompt: str, max_new_tokens: int = 200, **sampling) -> str:
    """The prompt's continuation as text (``sampling``: temperature, top_k, top_p, use_cache)."""
    tokenizer = loaded.extra["tokenizer"]
    ids = tokenizer.encode(prompt) or [0]
    room = loaded.model.config.max_len - len(ids)
    out = loaded.model.generate(torch.tensor([ids]), min(max_new_tokens, max(room, 0)), **sampling)
    return tokenizer.decode(out[0, len(ids):].tolist())


def save_checkpoint(path: Path, model: QuatrixLM, tokenizer, metrics: dict | None = None) -> None:
    """Config, tokeniser spec, weights and metrics in one model file, written atomically."""
    write_model_file(path, "text", model, metrics, tokenizer=tokenizer.to_spec())


def load_checkpoint(path: Path | str) -> Loaded:
    """Read a checkpoint written by :func:`save_checkpoint`; its extra 'tokenizer' is a live tokeniser."""
    from nanog1.zoo.tokenizer import tokenizer_from_spec

    loaded = load_model(path, "text", lambda blob: QuatrixLM(TextConfig(**blob["config"])))
    loaded.extra["tokenizer"] = tokenizer_from_spec(loaded.extra["tokenizer"])
    return loaded
