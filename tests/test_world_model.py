"""Grid world against a move-by-move reference; world model shapes, training, rollout vs copy-last, I/O."""

from __future__ import annotations

import mlflow
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from nanog1.cli import app
from nanog1.zoo.gridworld import ACTIONS, GridWorldConfig, random_layouts, render, simulate, step
from nanog1.zoo.train_world import Rollout, WorldTrainConfig, rollout_error, sample_windows, train_world
from nanog1.zoo.world import WorldConfig, WorldModel, load_checkpoint, save_checkpoint

TINY_ENV = GridWorldConfig(grid=4, cell=2, walls=1)
TINY = WorldConfig(image_size=8, channels=3, patch_size=2, hidden_size=32, layers=3, rank=8, heads=2,
                   state_size=64, action_size=16, mlp_hidden=128)


def reference_step(grid, agent, action, walls):
    """One move written out: the target cell unless it is off the grid or a wall."""
    dr, dc = {0: (0, 0), 1: (-1, 0), 2: (1, 0), 3: (0, -1), 4: (0, 1)}[int(action)]
    r, c = agent[0] + dr, agent[1] + dc
    if not (0 <= r < grid and 0 <= c < grid) or walls[r, c]:
        return agent.copy()
    return np.array([r, c])


@pytest.mark.parametrize("seed", [0, 1])
def test_grid_steps_match_a_move_by_move_reference(seed):
    cfg = GridWorldConfig(grid=5, cell=1, walls=6)
    rng = np.random.default_rng(seed)
    agent, goal, walls = random_layouts(cfg, 200, rng)
    assert not walls[np.arange(200), agent[:, 0], agent[:, 1]].any()
    assert (walls.sum(axis=(1, 2)) == 6).all() and (agent != goal).any(axis=1).all()
    actions = rng.integers(0, len(ACTIONS), 200)
    ours = step(cfg, agent, actions, walls)
    expected = np.stack([reference_step(5, a, x, w) for a, x, w in zip(agent, actions, walls, strict=True)])
    assert np.array_equal(ours, expected)


def test_simulate_renders_positions_rewards_and_is_reproducible():
    data = simulate(TINY_ENV, 30, 12, seed=5)
    assert data.frames.shape == (30, 13, 3, 8, 8) and data.actions.shape == (30, 12)
    agent_pixels = data.frames[:, :, 0].reshape(30, 13, 4, 2, 4, 2).sum(axis=(3, 5))
    cells = data.positions[..., 0] * 4 + data.positions[..., 1]
    assert (agent_pixels.reshape(30, 13, 16).argmax(-1) == cells).all()
    assert (data.frames[:, :, 0].sum(axis=(2, 3)) == 4).all()  # one 2×2 agent per frame
    goal = data.frames[:, 0, 1].reshape(30, 4, 2, 4, 2).sum(axis=(2, 4)).reshape(30, 16).argmax(-1)
    on_goal = (data.positions[:, 1:, 0] * 4 + data.positions[:, 1:, 1]) == goal[:, None]
    assert np.array_equal(data.rewards, on_goal.astype(np.float32)) and data.rewards.any()
    again = simulate(TINY_ENV, 30, 12, seed=5)
    assert np.array_equal(again.frames, data.frames) and np.array_equal(again.actions, data.actions)
    frame = render(TINY_ENV, np.array([[1, 2]]), np.array([[0, 0]]), np.zeros((1, 4, 4), bool))[0]
    assert frame[0, 2:4, 4:6].sum() == 4 and frame[1, 0:2, 0:2].sum() == 4 and frame.sum() == 8


def test_world_model_shapes_and_errors():
    torch.manual_seed(0)
    model = WorldModel(TINY).eval()
    frames, actions = torch.rand(3, 3, 8, 8), torch.randint(0, 5, (3, 6))
    state = model.encode(frames)
    assert state.shape == (3, 64)
    assert model.imagine(state, actions).shape == (3, 6, 64)
    assert model.decode(model.imagine(state, actions)).shape == (3, 6, 3, 8, 8)
    roll = model.rollout(frames, actions)
    assert roll.shape == (3, 6, 3, 8, 8) and ((roll >= 0) & (roll <= 1)).all()
    assert model.action_logits(state, state).shape == (3, 5) and model.reward_logits(state).shape == (3,)
    assert model.routing_map(frames).shape == (3, 2, 17, 17)
    with pytest.raises(ValueError, match="frames"):
        model.encode(torch.rand(3, 1, 8, 8))
    with pytest.raises(ValueError, match="no reward head"):
        WorldModel(WorldConfig(**{**TINY.__dict__, "reward": False})).reward_logits(state)


def test_frame_prior_starts_the_decoder_at_the_mean_frame():
    data = simulate(TINY_ENV, 50, 4, seed=2)
    mean = torch.from_numpy(data.frames.mean(axis=(0, 1)))
    model = WorldModel(TINY)
    model.set_frame_prior(mean)
    with torch.no_grad():
        model.decoder.weight.zero_()
    decoded = torch.sigmoid(model.decode(torch.randn(4, TINY.state_size)))
    torch.testing.assert_close(decoded, mean.clamp(1e-3, 1 - 1e-3).expand(4, -1, -1, -1))


def test_windows_and_rollout_error_against_a_direct_computation():
    data = simulate(TINY_ENV, 12, 6, seed=1)
    frames, actions, rewards = sample_windows(data, 5, 3, np.random.default_rng(0))
    assert frames.shape == (5, 4, 3, 8, 8) and actions.shape == (5, 3) and rewards.shape == (5, 3)
    with pytest.raises(ValueError, match="horizon"):
        sample_windows(data, 5, 7, np.random.default_rng(0))
    torch.manual_seed(0)
    model = WorldModel(TINY)
    roll = rollout_error(model, data, 4, batch_size=5)
    f = torch.from_numpy(data.frames)
    pred = model.eval().rollout(f[:, 0], torch.from_numpy(data.actions[:, :4]))
    expected_model = ((pred - f[:, 1:5]) ** 2).mean(dim=(0, 2, 3, 4))
    expected_copy = ((f[:, :1] - f[:, 1:5]) ** 2).mean(dim=(0, 2, 3, 4))
    np.testing.assert_allclose(roll.model_mse, expected_model.numpy(), rtol=1e-5)
    np.testing.assert_allclose(roll.copy_last_mse, expected_copy.numpy(), rtol=1e-5)
    assert Rollout([1.0, 2.0], [2.0, 4.0]).ratio == 0.5


@pytest.mark.slow
def test_training_lowers_the_loss_and_rollouts_beat_copy_last(tmp_path):
    env = GridWorldConfig(grid=3, cell=2, walls=0)  # 6×6 frames: learns within 200 steps (~25 s)
    model = WorldConfig(**{**TINY.__dict__, "image_size": 6})
    cfg = WorldTrainConfig(env=env, train_episodes=400, test_episodes=100, episode_steps=8, horizon=3,
                           eval_horizon=6, steps=200, batch_size=32, lr=3e-3, warmup=20, model=model)
    result = train_world(cfg, tmp_path / "run")
    client = mlflow.tracking.MlflowClient()
    losses = [m.value for m in client.get_metric_history(result.run_id, "train_predict")]
    assert losses[-1] < 0.5 * losses[0]
    roll = result.rollout
    assert len(roll.model_mse) == 6 and roll.ratio < 0.8
    assert all(m < c for m, c in zip(roll.model_mse, roll.copy_last_mse, strict=True))
    assert mlflow.get_run(result.run_id).info.status == "FINISHED"
    loaded = load_checkpoint(result.checkpoint)
    assert loaded.metrics["rollout_model_mse"] == pytest.approx(roll.model_mse)
    assert 0.0 <= result.reward_accuracy <= 1.0 and 0.2 < result.action_accuracy <= 1.0


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(3)
    model = WorldModel(TINY, list(ACTIONS)).eval()
    save_checkpoint(tmp_path / "w.pt", model, {"rollout_mse": 0.1})
    loaded = load_checkpoint(tmp_path / "w.pt")
    frames, actions = torch.rand(2, 3, 8, 8), torch.randint(0, 5, (2, 4))
    torch.testing.assert_close(loaded.model.rollout(frames, actions), model.rollout(frames, actions))
    assert loaded.model.action_names == list(ACTIONS) and loaded.metrics == {"rollout_mse": 0.1}
    torch.save({"kind": "audio"}, tmp_path / "a.pt")
    with pytest.raises(ValueError, match="not a NanoG1 world-model checkpoint"):
        load_checkpoint(tmp_path / "a.pt")


def test_world_cli_train(tmp_path):
    args = ["world", "train", "--out", str(tmp_path / "w"), "--grid", "4", "--walls", "1", "--episodes", "20",
            "--steps", "3", "--horizon", "2", "--eval-horizon", "3", "--hidden", "16", "--layers", "1",
            "--rank", "4", "--heads", "2"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "vs copy-last" in res.output and "mlflow run:" in res.output
    assert (tmp_path / "w" / "model.pt").is_file()


def test_models_page_shows_the_audio_and_world_panels(tmp_path, monkeypatch):
    from app_fixtures import models_page

    from nanog1.dashboard.config import ENV_AUDIO_CKPT, ENV_WORLD_CKPT
    from nanog1.zoo.audio import AudioConfig, AudioEncoder
    from nanog1.zoo.audio import save_checkpoint as save_audio
    from nanog1.zoo.audio_data import CLASS_NAMES

    torch.manual_seed(0)
    audio = AudioEncoder(AudioConfig(hidden_size=16, layers=1, rank=4, heads=2), list(CLASS_NAMES))
    save_audio(tmp_path / "audio.pt", audio, {"test_accuracy": 0.8, "chance_accuracy": 1 / 7})
    save_checkpoint(tmp_path / "world.pt", WorldModel(TINY, list(ACTIONS)),
                    {"rollout_mse": 0.01, "copy_last_mse": 0.02, "rollout_ratio": 0.5,
                     "rollout_model_mse": [0.01, 0.01], "rollout_copy_last_mse": [0.02, 0.02]},
                    TINY_ENV.__dict__)
    at = models_page(monkeypatch, {ENV_AUDIO_CKPT: ("AudioEncoder", tmp_path / "audio.pt"),
                                   ENV_WORLD_CKPT: ("WorldModel", tmp_path / "world.pt")})
    prediction = [m.value for m in at.markdown if m.value.startswith("**Audio prediction:**")]
    assert len(prediction) == 1 and any(name in prediction[0] for name in CLASS_NAMES)
    assert len(at.get("image")) == 2  # the log-mel and the true/imagined frames
    at.selectbox(key="audio_class").set_value("chirp_up").run()
    at.slider(key="world_horizon").set_value(3).run()
    assert not at.exception, [e.value for e in at.exception]
