"""A latent world model on the shared core: encode a frame, step it with actions, decode what it imagines.

- State encoder: Conv2d patch tokens + positions, with one learned query token in front, through a
  ``nanog1.core.Stack`` (causal=False, "qcompass" = QCompassBi); the query token's output, projected
  and normed, is the state [B, D].
- Transition: (state, action) -> next state, a residual MLP on the state and a learned action embedding.
- Action head: (state, next state) -> action logits (inverse dynamics; it keeps the state informative
  about what an action changes).
- Reward head (optional): predicted next state -> reward logit.
- Decoder: state -> frame logits [B, C, S, S], one linear map started at the training frames' mean
  (see :meth:`WorldModel.set_frame_prior`), so imagined states can be compared with frames. A
  spatial-broadcast MLP decoder (state + patch position -> patch pixels) learned no faster in short
  runs on the 4×4 grid, so the simpler map stays.

``rollout`` encodes one observed frame and imagines H steps open-loop from the actions alone; its error
is compared with copying the last observed frame (nanog1.zoo.train_world).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from nanog1.core import Stack
from nanog1.zoo.checkpoints import Loaded, load_model, write_model_file
from nanog1.zoo.patch_stack import BiStackConfig


@dataclass
class WorldConfig(BiStackConfig):
    """Frame geometry, state and action sizes (the stack: :class:`BiStackConfig`); ``reward`` adds its head.

    The default suits :class:`nanog1.zoo.gridworld.GridWorldConfig`'s 16×16×3 frames: 4×4-pixel
    patches (16 tokens + the query), width 64, 3 layers, a 128-wide state and 5 actions. With 1 or 2
    layers the state learned where the agent is far more slowly (the inverse-dynamics loss stayed at
    chance for 250 steps on a 4×4 grid; with 3 it fell within 200).
    """

    image_size: int = 16
    channels: int = 3
    patch_size: int = 4
    hidden_size: int = 64
    rank: int = 16
    dropout: float = 0.0
    state_size: int = 128
    num_actions: int = 5
    action_size: int = 32
    mlp_hidden: int = 256
    reward: bool = True

    def __post_init__(self) -> None:
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size {self.image_size} must divide by patch_size {self.patch_size}")
        if min(self.state_size, self.num_actions, self.action_size, self.mlp_hidden) < 1:
            raise ValueError("state_size, num_actions, action_size and mlp_hidden must be ≥ 1")

    @property
    def num_patches(self) -> int:
        """Patch tokens per frame (the query token comes on top)."""
        return (self.image_size // self.patch_size) ** 2


def mlp(inputs: int, hidden: int, outputs: int) -> nn.Sequential:
    """inputs -> hidden -> GELU -> hidden -> GELU -> outputs."""
    return nn.Sequential(nn.Linear(inputs, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(),
                         nn.Linear(hidden, outputs))


class WorldModel(nn.Module):
    """State encoder, transition, action head, optional reward head and frame decoder."""

    def __init__(self, config: WorldConfig, action_names: list[str] | None = None):
        super().__init__()
        self.config = c = config
        self.action_names = list(action_names) if action_names else [str(i) for i in range(c.num_actions)]
        w, d = c.hidden_size, c.state_size
        self.patch_embed = nn.Conv2d(c.channels, w, c.patch_size, stride=c.patch_size)
        # unit-scale positions: at 0.02 the query's average over patches could not tell where the agent was
        self.pos_emb = nn.Parameter(torch.randn(1, c.num_patches, w))
        self.query = nn.Parameter(torch.randn(1, 1, w) * 0.02)
        self.stack = Stack(c.stack_config())
        self.to_state = nn.Sequential(nn.Linear(w, d), nn.LayerNorm(d))
        self.action_emb = nn.Embedding(c.num_actions, c.action_size)
        self.transition = mlp(d + c.action_size, c.mlp_hidden, d)
        self.state_norm = nn.LayerNorm(d)
        self.action_head = mlp(2 * d, c.mlp_hidden, c.num_actions)
        self.reward_head = mlp(d, c.mlp_hidden, 1) if c.reward else None
        self.decoder = nn.Linear(d, c.channels * c.image_size ** 2)

    @torch.no_grad()
    def set_frame_prior(self, mean_frame: Tensor) -> None:
        """Start the decoder at the training frames' mean (its bias = logit of ``mean_frame`` [C, S, S]).

        From a zero bias the encoder first collapsed to one state while the decoder learned the mean
        frame (reconstruction stuck at the mean image's loss for ~300 steps); starting there avoids it.
        """
        self.decoder.bias.copy_(torch.logit(mean_frame.flatten().clamp(1e-3, 1 - 1e-3)))

    def _check(self, frames: Tensor) -> None:
        c, s = self.config.channels, self.config.image_size
        if frames.ndim != 4 or tuple(frames.shape[1:]) != (c, s, s):
            raise ValueError(f"frames must be [B, {c}, {s}, {s}], got {list(frames.shape)}")

    def encode(self, frames: Tensor,
               return_weights_layer: int | None = None) -> Tensor | tuple[Tensor, Tensor]:
        """Frames [B, C, S, S] -> states [B, D]; optionally one layer's routing weights [B, h, N+1, N+1]."""
        self._check(frames)
        x = self.patch_embed(frames).flatten(2).transpose(1, 2) + self.pos_emb
        x = torch.cat([self.query.expand(x.shape[0], -1, -1), x], dim=1)
        out = self.stack(x, return_weights_layer=return_weights_layer)
        if return_weights_layer is None:
            return self.to_state(out[:, 0])
        return self.to_state(out[0][:, 0]), out[1]

    def next_state(self, state: Tensor, action: Tensor) -> Tensor:
        """Transition: state [B, D] and action ids [B] -> next state [B, D] (residual, then normed)."""
        delta = self.transition(torch.cat([state, self.action_emb(action)], dim=-1))
        return self.state_norm(state + delta)

    def imagine(self, state: Tensor, actions: Tensor) -> Tensor:
        """Open-loop states [B, H, D] after each of ``actions`` [B, H], starting from ``state`` [B, D]."""
        states = []
        for t in range(actions.shape[1]):
            state = self.next_state(state, actions[:, t])
            states.append(state)
        return torch.stack(states, dim=1)

    def decode(self, states: Tensor) -> Tensor:
        """States [..., D] -> frame logits [..., C, S, S]."""
        c, s = self.config.channels, self.config.image_size
        return self.decoder(states).unflatten(-1, (c, s, s))

    def action_logits(self, state: Tensor, next_state: Tensor) -> Tensor:
        """Inverse dynamics: which action took ``state`` to ``next_state`` ([..., D] each) -> [..., A]."""
        return self.action_head(torch.cat([state, next_state], dim=-1))

    def reward_logits(self, next_state: Tensor) -> Tensor:
        """Reward logit [...] of arriving in ``next_state`` [..., D]."""
        if self.reward_head is None:
            raise ValueError("this WorldModel has no reward head (config.reward = False)")
        return self.reward_head(next_state).squeeze(-1)

    @torch.no_grad()
    def rollout(self, frame: Tensor, actions: Tensor) -> Tensor:
        """Imagined frame probabilities [B, H, C, S, S] after ``actions`` [B, H] from frames [B, C, S, S]."""
        return torch.sigmoid(self.decode(self.imagine(self.encode(frame), actions)))

    @torch.no_grad()
    def routing_map(self, frames: Tensor, layer: int = -1) -> Tensor:
        """Layer ``layer``'s routing weights [B, heads, N + 1, N + 1]; row 0 is the state query's."""
        return self.encode(frames, return_weights_layer=layer)[1]


def save_checkpoint(path: Path, model: WorldModel, metrics: dict | None = None,
                    env: dict | None = None) -> None:
    """Config, action names, weights, metrics and environment settings (extra 'env') in one model file."""
    write_model_file(path, "world", model, metrics, action_names=model.action_names, env=dict(env or {}))


def load_checkpoint(path: Path | str) -> Loaded:
    """Read a checkpoint written by :func:`save_checkpoint` (weights_only, so no code is unpickled)."""
    return load_model(path, "world", lambda blob: WorldModel(WorldConfig(**blob["config"]),
                                                             blob["action_names"]), "world-model")
