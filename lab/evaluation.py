"""Evaluating a trained agent: returns over N episodes, success rate, and on grid worlds the exact gap
between its greedy policy's value and the optimum."""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
    exact_note: str | None = None
    """Why a grid world's exact values are left out, when they are."""

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
        elif self.exact_note:
            parts.append(self.exact_note)
        return "; ".join(parts)


def env_action(action: Any, space: gym.Space) -> Any:
    """An agent's action as the env takes it: a Python int for Discrete spaces, else an array."""
    if isinstance(space, gym.spaces.Discrete):
        return int(np.asarray(action).reshape(()))
    return np.asarray(action, dtype=space.dtype)


def uses_masking(agent: Any) -> bool:
    """Whether ``agent`` was trained with ``use_masking`` (it then acts among the allowed actions)."""
    return bool(getattr(getattr(agent, "config", None), "use_masking", False))


def greedy_action(agent: Any, obs: Any, info: dict[str, Any]) -> Any:
    """The agent's deterministic action; an agent trained with ``use_masking`` chooses among the
    actions the env's ``info["action_mask"]`` allows, as it did in training."""
    if uses_masking(agent) and "action_mask" in info:
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


# The exact figures plan on the dense model P[S, A, S']: past this size (about 2,900 states of a
# four-action world) they are left out rather than take gigabytes and minutes each evaluation
MAX_EXACT_BYTES = 256 << 20


def too_large_to_plan(grid: Any) -> bool:
    """Whether the grid world's dense model would pass :data:`MAX_EXACT_BYTES`."""
    return bool(grid.model.n_states**2 * grid.model.n_actions * 8 > MAX_EXACT_BYTES)


def exact_values(agent: Any, grid: Any, gamma: float) -> tuple[float | None, float | None]:
    """(optimal value, value of the agent's greedy policy) from the start distribution, exactly; both
    None when the world is too large to plan on densely or has no finite optimum (gamma=1 with a
    loop that pays forever)."""
    from agents.planning import PlanningError, policy_start_value, value_iteration

    if too_large_to_plan(grid):
        return None, None
    dense = grid.transition_model()
    try:
        optimal = value_iteration(dense, gamma=gamma).start_value(dense)
        achieved = policy_start_value(dense, greedy_policy_on_grid(agent, grid), gamma=gamma)
    except PlanningError:
        return None, None
    return optimal, achieved


def eval_seed(seed: int, round_index: int, episode: int) -> int:
    """Seeds of evaluation episodes: apart from training's, fixed by (run seed, evaluation, episode)."""
    return int(np.random.SeedSequence([seed, 7_777, round_index, episode]).generate_state(1)[0])


# Evaluation episodes run side by side in up to this many copies of the env: the agent chooses the
# actions of all running copies in one predict call, which costs about what one observation's does
EVAL_COPIES = 16


def eval_copies(make: Callable[[], gym.Env], episodes: int, first: gym.Env | None = None) -> list[gym.Env]:
    """Copies of an env for :func:`evaluate` (``first`` among them, when given): as many as
    ``episodes``, at most :data:`EVAL_COPIES`."""
    copies = [] if first is None else [first]
    copies += [make() for _ in range(max(1, min(episodes, EVAL_COPIES)) - len(copies))]
    return copies


def greedy_actions(agent: Any, observations: list[Any], infos: list[dict[str, Any]]) -> list[Any]:
    """:func:`greedy_action` for several observations, in one ``predict`` call when there are more
    than one (action masks stacked in the same order)."""
    masking = uses_masking(agent)
    if len(observations) == 1 or (masking and not all("action_mask" in info for info in infos)):
        return [greedy_action(agent, obs, info) for obs, info in zip(observations, infos, strict=True)]
    batch = np.stack([np.asarray(obs) for obs in observations])
    if masking:
        masks = np.stack([np.asarray(info["action_mask"]) for info in infos])
        actions = agent.predict(batch, deterministic=True, action_masks=masks)[0]
    else:
        actions = agent.predict(batch, deterministic=True)[0]
    return list(actions)


def evaluate(
    agent: Any,
    env: gym.Env | Sequence[gym.Env],
    episodes: int,
    seed: int = 0,
    round_index: int = 0,
    record: int = 0,
    record_dir: Path | None = None,
    source: str = "eval",
    on_episode: Callable[[], None] | None = None,
) -> EvalResult:
    """Run ``episodes`` greedy episodes; save the first ``record`` of them as replays in ``record_dir``.

    ``env`` is one env, or several copies of it (:func:`eval_copies`): the episodes then run side by
    side, each copy taking the next episode when its own ends, and the agent acts for all running
    copies at once. Episode ``k`` starts from ``reset(seed=eval_seed(seed, round_index, k))`` either
    way, so the figures are those of the episodes one after another (to the rounding of a batched
    forward pass, which can only matter where two actions tie). ``on_episode`` is called as each
    episode ends (a progress bar's count)."""
    from lab.recording import RecordEpisodes

    copies = [env] if isinstance(env, gym.Env) else list(env)[: max(1, episodes)]
    if not copies:
        raise ValueError("evaluate needs an env")
    grids = [grid_world(c) for c in copies]  # each copy's own: success is read where the episode ran
    grid = grids[0]
    recording = record > 0 and record_dir is not None
    # each copy records the episodes it runs among the first `record` (its limit is set per episode)
    runners = [RecordEpisodes(c, record_dir, source, limit=0) if recording else c for c in copies]
    returns, lengths = [0.0] * episodes, [0] * episodes
    successes, reported = [False] * episodes, False  # reported: whether the env says info["success"]
    saved: dict[int, Path] = {}
    running: dict[int, tuple[int, Any, dict[str, Any]]] = {}  # copy -> (episode, observation, info)
    started = 0

    def start(i: int) -> None:
        nonlocal started
        k, runner, started = started, runners[i], started + 1
        if isinstance(runner, RecordEpisodes):
            runner.limit = len(runner.saved) + int(k < record)
        obs, info = runner.reset(seed=eval_seed(seed, round_index, k))
        running[i] = (k, obs, info)

    for i in range(min(len(runners), episodes)):
        start(i)
    while running:
        ids = list(running)
        actions = greedy_actions(agent, [running[i][1] for i in ids], [running[i][2] for i in ids])
        for i, action in zip(ids, actions, strict=True):
            k, runner = running[i][0], runners[i]
            obs, reward, terminated, truncated, info = runner.step(env_action(action, runner.action_space))
            returns[k] += float(reward)
            lengths[k] += 1
            if not (terminated or truncated):
                running[i] = (k, obs, info)
                continue
            del running[i]
            if grids[i] is not None:
                successes[k] = bool(terminated) and grids[i].at_goal()
            else:  # an env that says so at an episode's end (the text envs: the task solved on <eos>)
                reported |= "success" in info
                successes[k] = bool(info.get("success", False))
            if isinstance(runner, RecordEpisodes) and k < record and runner.saved:
                saved[k] = runner.saved[-1]
            if on_episode is not None:
                on_episode()
            if started < episodes:
                start(i)
    replays = [saved[k] for k in sorted(saved)]
    result = EvalResult(
        returns, lengths, successes if grid is not None or reported else None, replays=replays
    )
    if grid is not None and hasattr(agent, "gamma"):
        result.optimal_value, result.policy_value = exact_values(agent, grid, float(agent.gamma))
        if result.optimal_value is None:
            result.exact_note = (
                f"no exact values: {grid.model.n_states:,} states are past the planner's dense model"
                if too_large_to_plan(grid)
                else "no exact values: undiscounted, a return here is not finite"
            )
    return result
