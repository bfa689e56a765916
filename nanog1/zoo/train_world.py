"""World-model training on simulated grid-world episodes, and its rollout error against copy-last-frame.

Each step samples a batch of training windows (one frame, then ``horizon`` actions and frames),
encodes every frame, imagines the horizon open-loop from the first state and adds five losses:
reconstruction of each encoded frame and prediction of each later frame from the imagined state (both
in nats per frame), the imagined state's distance to the encoded one (target detached), inverse
dynamics (action head) and the reward (reward head). Evaluation rolls held-out episodes out for
``eval_horizon`` steps from their first frame and compares the per-step mean squared error with the
copy-last baseline (predict the first frame again).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from nanog1.checkpoint import seed_everything
from nanog1.optim import build_optimizer
from nanog1.progress import report
from nanog1.tracking import flat_params, tracked_run
from nanog1.zoo.gridworld import ACTIONS, GridWorldConfig, Trajectories, simulate
from nanog1.zoo.loop import evaluating, finish_run, optimise
from nanog1.zoo.world import WorldConfig, WorldModel, save_checkpoint


@dataclass
class WorldTrainConfig:
    """One world-model run: environment, data sizes, optimisation and evaluation horizon."""

    env: GridWorldConfig = field(default_factory=GridWorldConfig)
    train_episodes: int = 2000
    test_episodes: int = 200
    episode_steps: int = 16
    horizon: int = 4
    eval_horizon: int = 8
    steps: int = 3000  # at 600 the rollout stayed above copy-last; 3000 halves its error (BENCHMARKS)
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 0.01
    warmup: int = 30
    grad_clip: float = 50.0
    seed: int = 0
    experiment: str = "world/gridworld"
    model: WorldConfig = field(default_factory=WorldConfig)


@dataclass
class Rollout:
    """Per-step mean squared error of imagined frames and of copying the first frame, steps 1 … H."""

    model_mse: list[float]
    copy_last_mse: list[float]

    @property
    def model_mean(self) -> float:
        """The model's error averaged over steps."""
        return float(np.mean(self.model_mse))

    @property
    def copy_last_mean(self) -> float:
        """Copy-last's error averaged over steps."""
        return float(np.mean(self.copy_last_mse))

    @property
    def ratio(self) -> float:
        """Model error over copy-last error, both averaged over steps (< 1: the model is better)."""
        return self.model_mean / self.copy_last_mean


@dataclass
class WorldResult:
    """Final training loss, the held-out rollout, reward and action accuracy, run id and checkpoint."""

    train_loss: float
    rollout: Rollout
    reward_accuracy: float
    action_accuracy: float
    windows_per_s: float
    run_id: str
    checkpoint: Path


def sample_windows(data: Trajectories, batch_size: int, horizon: int, rng: np.random.Generator
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random windows: frames [B, horizon + 1, C, S, S], actions [B, horizon], rewards [B, horizon]."""
    n, t = data.actions.shape
    if horizon > t:
        raise ValueError(f"horizon {horizon} exceeds the {t} steps per episode")
    ep = rng.integers(0, n, batch_size)
    start = rng.integers(0, t - horizon + 1, batch_size)
    span = start[:, None] + np.arange(horizon + 1)
    frames = data.frames[ep[:, None], span]
    return (torch.from_numpy(frames), torch.from_numpy(data.actions[ep[:, None], span[:, :-1]]),
            torch.from_numpy(data.rewards[ep[:, None], span[:, :-1]]))


def frame_nats(logits: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
    """Pixel cross-entropy summed over each frame, averaged over frames [..., C, S, S] (nats per frame).

    Summed, not averaged, over pixels: averaged, the few pixels that move weigh ~1/800 of a frame
    and the action head's loss dominated; the encoder then took hundreds of steps to leave the mean frame.
    """
    per_pixel = F.binary_cross_entropy_with_logits(logits, frames, reduction="none")
    return per_pixel.flatten(-3).sum(dim=-1).mean()


def world_losses(model: WorldModel, frames: torch.Tensor, actions: torch.Tensor,
                 rewards: torch.Tensor) -> dict[str, torch.Tensor]:
    """The five losses of one batch of windows (see the module docstring); 'total' is their sum."""
    b, h1 = frames.shape[:2]
    states = model.encode(frames.flatten(0, 1)).unflatten(0, (b, h1))
    imagined = model.imagine(states[:, 0], actions)
    losses = {
        "recon": frame_nats(model.decode(states), frames),
        "predict": frame_nats(model.decode(imagined), frames[:, 1:]),
        "latent": F.mse_loss(imagined, states[:, 1:].detach()),
        "action": F.cross_entropy(model.action_logits(states[:, :-1], states[:, 1:]).flatten(0, 1),
                                  actions.flatten()),
    }
    if model.reward_head is not None:
        losses["reward"] = F.binary_cross_entropy_with_logits(model.reward_logits(imagined), rewards)
    losses["total"] = sum(losses.values())
    return losses


@torch.no_grad()
def rollout_error(model: WorldModel, data: Trajectories, horizon: int, batch_size: int = 256) -> Rollout:
    """Open-loop rollouts from each episode's first frame against copy-last, per step 1 … ``horizon``."""
    frames, actions = torch.from_numpy(data.frames), torch.from_numpy(data.actions[:, :horizon])
    sq_model, sq_copy = torch.zeros(horizon), torch.zeros(horizon)
    with evaluating(model):
        for f, a in zip(frames.split(batch_size), actions.split(batch_size), strict=True):
            truth = f[:, 1:horizon + 1]
            sq_model += ((model.rollout(f[:, 0], a) - truth) ** 2).mean(dim=(2, 3, 4)).sum(dim=0)
            sq_copy += ((f[:, :1] - truth) ** 2).mean(dim=(2, 3, 4)).sum(dim=0)
    n = len(frames)
    return Rollout((sq_model / n).tolist(), (sq_copy / n).tolist())


@torch.no_grad()
def head_accuracies(model: WorldModel, data: Trajectories, batch_size: int = 256) -> tuple[float, float]:
    """(reward accuracy of one imagined step, action accuracy of the inverse-dynamics head) on every step."""
    frames = torch.from_numpy(data.frames[:, :-1]).flatten(0, 1)
    after = torch.from_numpy(data.frames[:, 1:]).flatten(0, 1)
    actions = torch.from_numpy(data.actions).flatten()
    rewards = torch.from_numpy(data.rewards).flatten()
    hits_r = hits_a = 0
    batches = zip(frames.split(batch_size), after.split(batch_size), actions.split(batch_size),
                  rewards.split(batch_size), strict=True)
    with evaluating(model):
        for f, g, a, r in batches:
            s, s_next = model.encode(f), model.encode(g)
            hits_a += int((model.action_logits(s, s_next).argmax(-1) == a).sum())
            if model.reward_head is not None:
                hits_r += int(((model.reward_logits(model.next_state(s, a)) > 0).float() == r).sum())
    reward_acc = hits_r / len(actions) if model.reward_head is not None else float("nan")
    return reward_acc, hits_a / len(actions)


def train_world(cfg: WorldTrainConfig, out: Path, tracking_uri: str | None = None) -> WorldResult:
    """Train the world model per ``cfg``; writes ``out``/model.pt and logs one MLflow run."""
    seed_everything(cfg.seed)
    if cfg.eval_horizon > cfg.episode_steps:
        raise ValueError(f"eval_horizon {cfg.eval_horizon} exceeds episode_steps {cfg.episode_steps}")
    train = simulate(cfg.env, cfg.train_episodes, cfg.episode_steps, seed=cfg.seed)
    test = simulate(cfg.env, cfg.test_episodes, cfg.episode_steps, seed=cfg.seed + 1)
    model = WorldModel(WorldConfig(**{**asdict(cfg.model), "image_size": cfg.env.image_size,
                                      "num_actions": len(ACTIONS)}), list(ACTIONS))
    model.set_frame_prior(torch.from_numpy(train.frames.mean(axis=(0, 1))))
    opt, sched = build_optimizer(model, cfg.lr, cfg.weight_decay, cfg.warmup, cfg.steps)
    rng = np.random.default_rng(cfg.seed)
    params = flat_params(asdict(cfg)) | {"parameters": sum(p.numel() for p in model.parameters())}
    with tracked_run(out, cfg.experiment, tracking_uri, params) as tracker:
        def log(step: int, losses: dict[str, float]) -> None:
            if step % 50 == 0 or step == cfg.steps:
                tracker.log_metrics({f"train_{k}": v for k, v in losses.items()}, step)
            if step % max(1, cfg.steps // 10) == 0 or step == cfg.steps:
                report(f"step {step}/{cfg.steps}  train_loss {losses['total']:.4g}")

        batches = (sample_windows(train, cfg.batch_size, cfg.horizon, rng) for _ in range(cfg.steps))
        done = optimise(model, batches, lambda batch: world_losses(model, *batch), opt, sched,
                        cfg.grad_clip, log, desc="world train", total=cfg.steps)
        windows_per_s = cfg.steps * cfg.batch_size / done.seconds
        roll = rollout_error(model, test, cfg.eval_horizon)
        reward_acc, action_acc = head_accuracies(model, test)
        metrics = {"rollout_mse": roll.model_mean, "copy_last_mse": roll.copy_last_mean,
                   "rollout_ratio": roll.ratio, "reward_accuracy": reward_acc, "action_accuracy": action_acc,
                   "train_loss": done.last["total"], "train_windows_per_s": windows_per_s}
        for h, (m, c) in enumerate(zip(roll.model_mse, roll.copy_last_mse, strict=True), start=1):
            tracker.log_metrics({"rollout_mse_by_step": m, "copy_last_mse_by_step": c}, h)
        saved = metrics | {"rollout_model_mse": roll.model_mse, "rollout_copy_last_mse": roll.copy_last_mse}
        ckpt = finish_run(tracker, out, metrics, cfg.steps,
                          lambda path: save_checkpoint(path, model, saved, asdict(cfg.env)))
        return WorldResult(metrics["train_loss"], roll, reward_acc, action_acc, windows_per_s,
                           tracker.run_id, ckpt)
