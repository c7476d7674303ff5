"""Evaluating a trained agent: returns over N episodes, success rate, and on grid worlds the exact gap
between its greedy policy's value and the optimum."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np


@dataclass
class EvalResult:
    returns: list[float]
    lengths: list[int]
    successes: list[bool] | None
    optimal_value: float | None = None
    policy_value: float | None = None
    replays: list[Path] = field(default_factory=list)

    @property
    def mean_return(self) -> float:
        return float(np.mean(self.returns))

    @property
    def std_return(self) -> float:
        return float(np.std(self.returns))

    @property
    def success_rate(self) -> float | None:
        return None if self.successes is None else float(np.mean(self.successes))

    @property
    def gap(self) -> float | None:
        """Optimal minus achieved value from the start state (0 when optimal)."""
        if self.optimal_value is None or self.policy_value is None:
            return None
        return self.optimal_value - self.policy_value

    @property
    def relative_gap(self) -> float | None:
        if self.gap is None:
            return None
        return self.gap / max(abs(self.optimal_value), 1e-12)

    def as_row(self) -> dict[str, Any]:
        return {
            "mean_return": self.mean_return,
            "std_return": self.std_return,
            "success_rate": self.success_rate,
            "optimal_value": self.optimal_value,
            "policy_value": self.policy_value,
            "gap": self.gap,
        }

    def summary(self) -> str:
        parts = [
            f"mean return {self.mean_return:.4g} ± {self.std_return:.3g} over {len(self.returns)} episodes"
        ]
        if self.success_rate is not None:
            parts.append(f"success {100 * self.success_rate:.1f}%")
        if self.gap is not None:
            exact = abs(self.relative_gap) < 1e-9
            gap = "optimal" if exact else f"gap {self.gap:.3g}, {100 * self.relative_gap:.2f}%"
            parts.append(f"greedy value {self.policy_value:.6g} vs optimal {self.optimal_value:.6g} ({gap})")
        return "; ".join(parts)


def env_action(action: Any, space: gym.Space) -> Any:
    """An agent's action as the env takes it: a Python int for Discrete spaces, else an array."""
    if isinstance(space, gym.spaces.Discrete):
        return int(np.asarray(action).reshape(()))
    return np.asarray(action, dtype=space.dtype)


def greedy_action(agent: Any, obs: Any, info: dict[str, Any]) -> Any:
    """The agent's deterministic action; an agent trained with ``use_masking`` chooses among the
    actions the env's ``info["action_mask"]`` allows, as it did in training."""
    if getattr(getattr(agent, "config", None), "use_masking", False) and "action_mask" in info:
        return agent.predict(obs, deterministic=True, action_masks=info["action_mask"])[0]
    return agent.predict(obs, deterministic=True)[0]


def grid_world(env: gym.Env) -> Any | None:
    """The underlying GridWorld, or None for other environments."""
    from envs.grid.world import GridWorld

    inner = env.unwrapped
    return inner if isinstance(inner, GridWorld) else None


def greedy_policy_on_grid(agent: Any, grid: Any) -> np.ndarray:
    """The agent's deterministic action in every state of a grid world (works for any observation type)."""
    observations = grid.encoder.encode(np.arange(grid.model.n_states))
    actions, _ = agent.predict(observations, deterministic=True)
    return np.asarray(actions, dtype=np.int64).reshape(-1)


def exact_values(agent: Any, grid: Any, gamma: float) -> tuple[float, float]:
    """(optimal value, value of the agent's greedy policy) from the start distribution, exactly."""
    from agents.planning import PlanningError, policy_start_value, value_iteration

    model = grid.transition_model()
    optimal = value_iteration(model, gamma=gamma).start_value(model)
    try:
        achieved = policy_start_value(model, greedy_policy_on_grid(agent, grid), gamma=gamma)
    except PlanningError:  # at gamma=1 a greedy policy that never ends from the start is worth -infinity
        achieved = float("-inf")
    return optimal, achieved


def eval_seed(seed: int, round_index: int, episode: int) -> int:
    """Seeds of evaluation episodes: apart from training's, fixed by (run seed, evaluation, episode)."""
    return int(np.random.SeedSequence([seed, 7_777, round_index, episode]).generate_state(1)[0])


def evaluate(
    agent: Any,
    env: gym.Env,
    episodes: int,
    seed: int = 0,
    round_index: int = 0,
    record: int = 0,
    record_dir: Path | None = None,
    source: str = "eval",
) -> EvalResult:
    """Run ``episodes`` greedy episodes; save the first ``record`` of them as replays in ``record_dir``."""
    from lab.recording import RecordEpisodes

    grid = grid_world(env)
    recording = record > 0 and record_dir is not None
    runner = RecordEpisodes(env, record_dir, source, limit=record) if recording else env
    returns: list[float] = []
    lengths: list[int] = []
    successes: list[bool] = []
    reported = False  # whether the env reports info["success"] (then an episode without it failed)
    for k in range(episodes):
        obs, info = runner.reset(seed=eval_seed(seed, round_index, k))
        total, length, done, terminated = 0.0, 0, False, False
        while not done:
            action = greedy_action(agent, obs, info)
            obs, reward, terminated, truncated, info = runner.step(env_action(action, env.action_space))
            total += float(reward)
            length += 1
            done = terminated or truncated
        returns.append(total)
        lengths.append(length)
        if grid is not None:
            successes.append(bool(terminated) and grid.at_goal())
        else:  # an env that says so at an episode's end (the text envs: the task solved on <eos>)
            reported |= "success" in info
            successes.append(bool(info.get("success", False)))
    saved = list(runner.saved) if recording else []
    result = EvalResult(returns, lengths, successes if grid is not None or reported else None, replays=saved)
    if grid is not None and hasattr(agent, "gamma"):
        result.optimal_value, result.policy_value = exact_values(agent, grid, float(agent.gamma))
    return result
