"""A small grid world the world model learns from: an agent, a goal and walls, rendered as images.

Frames are [3, S, S] float32 (channels: agent, goal, walls), S = grid × cell pixels. Actions are
0 stay, 1 up, 2 down, 3 left, 4 right; a move into a wall or off the grid leaves the agent where it
is. The reward is 1 when a step ends on the goal, else 0. Episodes start from random layouts and
follow uniformly random actions, all drawn from one seed, so a dataset is reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ACTIONS = ("stay", "up", "down", "left", "right")
MOVES = np.array([[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1]])


@dataclass
class GridWorldConfig:
    """Grid size (cells per side), cell size in pixels and wall cells per layout."""

    grid: int = 8
    cell: int = 2
    walls: int = 6

    def __post_init__(self) -> None:
        if self.grid < 2 or self.cell < 1 or not 0 <= self.walls <= self.grid ** 2 - 2:
            raise ValueError(f"need grid ≥ 2, cell ≥ 1 and 0 ≤ walls ≤ grid² − 2, got {self}")

    @property
    def image_size(self) -> int:
        """Pixels per side of a frame."""
        return self.grid * self.cell


@dataclass
class Trajectories:
    """Episodes: frames [N, T + 1, 3, S, S], actions [N, T], rewards [N, T] and agent cells [N, T + 1, 2]."""

    frames: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    positions: np.ndarray


def render(cfg: GridWorldConfig, agent: np.ndarray, goal: np.ndarray, walls: np.ndarray) -> np.ndarray:
    """Frames [N, 3, S, S] for agent and goal cells [N, 2] and a wall map [N, grid, grid] (bool)."""
    n, g = len(agent), cfg.grid
    cells = np.zeros((n, 3, g, g), dtype=np.float32)
    rows = np.arange(n)
    cells[rows, 0, agent[:, 0], agent[:, 1]] = 1.0
    cells[rows, 1, goal[:, 0], goal[:, 1]] = 1.0
    cells[:, 2] = walls
    return cells.repeat(cfg.cell, axis=2).repeat(cfg.cell, axis=3)


def step(cfg: GridWorldConfig, agent: np.ndarray, actions: np.ndarray, walls: np.ndarray) -> np.ndarray:
    """Agent cells [N, 2] after ``actions`` [N]: blocked by the edge and by walls."""
    target = agent + MOVES[actions]
    inside = ((target >= 0) & (target < cfg.grid)).all(axis=1)
    clipped = np.clip(target, 0, cfg.grid - 1)
    free = inside & ~walls[np.arange(len(agent)), clipped[:, 0], clipped[:, 1]]
    return np.where(free[:, None], target, agent)


def random_layouts(cfg: GridWorldConfig, n: int, rng: np.random.Generator
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Agent cells [n, 2], goal cells [n, 2] and wall maps [n, grid, grid] on distinct random cells."""
    cells = np.argsort(rng.random((n, cfg.grid ** 2)), axis=1)[:, :cfg.walls + 2]
    agent = np.stack(np.divmod(cells[:, 0], cfg.grid), axis=1)
    goal = np.stack(np.divmod(cells[:, 1], cfg.grid), axis=1)
    walls = np.zeros((n, cfg.grid ** 2), dtype=bool)
    np.put_along_axis(walls, cells[:, 2:], True, axis=1)
    return agent, goal, walls.reshape(n, cfg.grid, cfg.grid)


def simulate(cfg: GridWorldConfig, episodes: int, steps: int, seed: int = 0) -> Trajectories:
    """``episodes`` random layouts followed for ``steps`` uniformly random actions each."""
    if episodes < 1 or steps < 1:
        raise ValueError(f"episodes and steps must be ≥ 1, got {episodes}, {steps}")
    rng = np.random.default_rng(seed)
    agent, goal, walls = random_layouts(cfg, episodes, rng)
    actions = rng.integers(0, len(ACTIONS), size=(episodes, steps))
    positions = [agent]
    for t in range(steps):
        positions.append(step(cfg, positions[-1], actions[:, t], walls))
    positions = np.stack(positions, axis=1)
    frames = np.stack([render(cfg, positions[:, t], goal, walls) for t in range(steps + 1)], axis=1)
    rewards = (positions[:, 1:] == goal[:, None]).all(axis=2).astype(np.float32)
    return Trajectories(frames, actions.astype(np.int64), rewards, positions)
