"""Re-simulation: a replay's environment made again (:func:`make_replay_env`), its actions re-played
and compared with the recording step by step (:func:`simulate`, :func:`verify_episode`), and its
frames re-rendered that way when the file holds none (:func:`episode_frames`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lab.core.errors import LabError
from lab.replays.format import INFO_PREFIX, Episode, ReplayError


@dataclass(frozen=True)
class Difference:
    """Where a re-simulation first departs from the recording."""

    step: int
    field: str
    recorded: str
    simulated: str

    def __str__(self) -> str:
        when = "reset (step 0)" if self.step == 0 else f"step {self.step}"
        return f"{when}: {self.field} recorded {self.recorded}, re-simulated {self.simulated}"


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of :func:`verify_episode`: ``steps`` checked and the first :class:`Difference`, if any."""

    steps: int
    difference: Difference | None = None

    @property
    def ok(self) -> bool:
        return self.difference is None

    def __str__(self) -> str:
        if self.difference is None:
            return f"matches exactly ({self.steps} steps)"
        return f"differs at {self.difference}"


def _show(value: Any) -> str:
    arr = np.asarray(value)
    if arr.size == 1:
        return repr(arr.reshape(()).item())
    if arr.size <= 8:
        return np.array2string(arr, separator=", ")
    return f"an array of shape {arr.shape}"


def _differs(recorded: Any, simulated: Any) -> bool:
    a, b = np.asarray(recorded), np.asarray(simulated)
    if a.shape != b.shape:
        return True
    return not np.array_equal(a, b, equal_nan=a.dtype.kind in "fc" and b.dtype.kind in "fc")


def make_replay_env(episode: Episode, render_mode: str | None = None) -> Any:
    """The episode's environment, made as it was recorded (as the lab makes envs, so the text env's
    observation comes flattened, as agents and players saw and recorded it); :class:`ReplayError`
    when it no longer can be."""
    import gymnasium as gym

    from envs.errors import EnvError
    from lab.core.environments import make_env, registered_env_id

    registered_env_id(episode.env_id, f"the replay {episode.id!r}", ReplayError)  # no "module:" imports
    kwargs = dict(episode.env_kwargs)
    if render_mode is not None:
        kwargs["render_mode"] = render_mode
    try:
        return make_env(episode.env_id, kwargs, max_episode_steps=episode.max_episode_steps)
    except (TypeError, ValueError, EnvError, LabError, gym.error.Error) as exc:
        shown = json.dumps(episode.env_kwargs)
        shown = shown if len(shown) <= 200 else shown[:197] + "..."
        raise ReplayError(
            f"the replay's environment {episode.env_id} no longer accepts its arguments {shown}: {exc}"
        ) from None


def simulate(episode: Episode, env: Any) -> Iterator[tuple[int, Difference | None]]:
    """Re-play ``episode`` in ``env``: ``reset(seed)``, then each action; yields ``(t, difference)``.

    ``t`` runs from 0 (after reset) to the number of steps; ``env`` holds the state after step ``t``
    when it is yielded. Stops after the first difference in observations, rewards, terminations,
    truncations or a recorded info entry the environment also reports.
    """
    obs, info = env.reset(seed=episode.seed)
    first = _first_difference(0, episode, obs, None, info)
    yield 0, first
    if first is not None:
        return
    for t, action in enumerate(episode.actions, start=1):
        act = action.item() if action.ndim == 0 else action
        try:
            obs, reward, terminated, truncated, info = env.step(act)
        except Exception as exc:  # the environment refused the recorded action
            yield t, Difference(t, "actions", _show(action), f"an error: {exc}")
            return
        diff = _first_difference(t, episode, obs, (reward, terminated, truncated), info)
        yield t, diff
        if diff is not None:
            return


def _first_difference(
    t: int, episode: Episode, obs: Any, outcome: tuple[float, bool, bool] | None, info: Mapping[str, Any]
) -> Difference | None:
    checks: list[tuple[str, Any, Any]] = [("observations", episode.observations[t], obs)]
    if outcome is not None:
        reward, terminated, truncated = outcome
        checks += [
            ("rewards", episode.rewards[t - 1], float(reward)),
            ("terminations", episode.terminations[t - 1], bool(terminated)),
            ("truncations", episode.truncations[t - 1], bool(truncated)),
        ]
    checks += [(INFO_PREFIX + k, v[t], info[k]) for k, v in episode.infos.items() if k in info]
    for name, recorded, simulated in checks:
        if _differs(recorded, simulated):
            return Difference(t, name, _show(recorded), _show(simulated))
    return None


def episode_frames(episode: Episode) -> Sequence[np.ndarray]:
    """The episode's ``n+1`` frames: the stored ones, else re-rendered by re-simulation.

    Re-rendering re-plays the episode and checks it against the recording as it goes
    (:class:`ReplayError` at the first difference). For the lab's grid worlds the frames are then
    drawn on demand from the recorded states, so a long episode costs no memory.
    """
    if episode.frames is not None:
        return episode.frames
    env = make_replay_env(episode, render_mode="rgb_array")
    grid = env.unwrapped
    lazy = "state" in episode.infos and hasattr(grid, "painter") and hasattr(grid, "model")
    frames: list[np.ndarray] = []
    try:
        for _, diff in simulate(episode, env):
            if diff is not None:
                raise ReplayError(
                    f"the replay no longer matches its environment at {diff}, so its frames cannot be "
                    "re-rendered (lab replay FILE --verify checks a replay)"
                )
            if not lazy:
                frames.append(np.asarray(env.render(), dtype=np.uint8))
    finally:
        env.close()
    # the states were just checked equal in value to the simulation's; as indices they need its type
    return _StateFrames(grid, episode.infos["state"].astype(np.intp)) if lazy else frames


class _StateFrames(Sequence[np.ndarray]):
    """A grid world's frames drawn on demand from state indices (the painter caches every cell)."""

    def __init__(self, grid: Any, states: np.ndarray) -> None:
        model = grid.model
        self._painter = grid.painter()
        self._rows = model.state_row[states]
        self._cols = model.state_col[states]
        self._phases = model.state_phase[states]

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, t: Any) -> Any:
        if isinstance(t, slice):
            return [self[i] for i in range(*t.indices(len(self)))]
        return self._painter.frame(int(self._rows[t]), int(self._cols[t]), int(self._phases[t]))


def env_fps(env_id: str, default: float = 8.0) -> float:
    """The environment's ``metadata["render_fps"]`` (without making it), or ``default``."""
    import gymnasium as gym

    import envs  # noqa: F401  (registers the lab/ ids)

    try:
        creator = gym.envs.registration.load_env_creator(gym.spec(env_id).entry_point)
        fps = getattr(creator, "metadata", {}).get("render_fps")
    except Exception:  # unknown id, entry point gone: fall back to the default
        return default
    return float(fps) if isinstance(fps, (int, float)) and fps > 0 else default


def verify_episode(episode: Episode) -> VerifyResult:
    """Re-simulate the episode and compare it step by step with the recording."""
    env = make_replay_env(episode)
    try:
        t = 0
        for t, diff in simulate(episode, env):
            if diff is not None:
                return VerifyResult(t, diff)
        return VerifyResult(t)
    finally:
        env.close()
