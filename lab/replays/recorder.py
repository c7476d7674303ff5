"""Recording one episode as it is played: :class:`EpisodeRecorder` collects what ``reset`` and each
``step`` return and :meth:`~EpisodeRecorder.finish` gives the :class:`~lab.replays.format.Episode`.

(:class:`lab.recording.RecordEpisodes` wraps an environment to do this for every episode.)
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from envs.seeding import is_seed
from lab.replays.format import INFO_KEY, MAKE_ARGS, NUMERIC_KINDS, Episode, ReplayError, check_json


class EpisodeRecorder:
    """Collects one episode as it is played; :meth:`finish` returns the :class:`Episode`.

    ::

        rec = EpisodeRecorder("lab/Maze-v0", {"size": 9}, seed=3, source="agent:q_learning",
                              max_episode_steps=env.spec.max_episode_steps)
        obs, info = env.reset(seed=3)
        rec.start(obs, info)
        while not done:
            obs, reward, terminated, truncated, info = env.step(action)
            rec.step(action, obs, reward, terminated, truncated, info)
            done = terminated or truncated
        save_episode(rec.finish(), replay_path(env_id="lab/Maze-v0", source="agent:q_learning"))

    ``env_kwargs`` are the environment's arguments (``gymnasium.make``'s own, such as
    ``render_mode`` and ``max_episode_steps``, are left out). Info entries are kept when every info
    of the episode has them, as numbers or numeric arrays of one shape, under a name of letters,
    digits, ``_`` or ``-`` (others are left out).
    """

    def __init__(
        self,
        env_id: str,
        env_kwargs: Mapping[str, Any] | None = None,
        seed: int = 0,
        source: str = "unknown",
        max_episode_steps: int | None = None,
        record_frames: bool = False,
    ) -> None:
        if not is_seed(seed):
            raise ReplayError(
                f"a replay needs the seed given to reset(seed=...), a whole number from 0 to 2**64 - 1; "
                f"got {seed!r}"
            )
        kwargs = {k: v for k, v in (env_kwargs or {}).items() if k not in MAKE_ARGS}
        if max_episode_steps is None and env_kwargs and env_kwargs.get("max_episode_steps") is not None:
            max_episode_steps = int(env_kwargs["max_episode_steps"])
        check_json(kwargs, "env_kwargs")
        self.env_id = env_id
        self.env_kwargs = kwargs
        self.seed = int(seed)
        self.source = source
        self.max_episode_steps = max_episode_steps
        self.record_frames = record_frames
        self._observations: list[Any] = []
        self._actions: list[Any] = []
        self._rewards: list[float] = []
        self._terminations: list[bool] = []
        self._truncations: list[bool] = []
        self._infos: list[Mapping[str, Any]] = []
        self._frames: list[np.ndarray] = []
        self._over = False

    @classmethod
    def for_env(
        cls,
        env: Any,
        seed: int,
        source: str,
        env_kwargs: Mapping[str, Any] | None = None,
        record_frames: bool = False,
    ) -> EpisodeRecorder:
        """A recorder for an env made by ``gymnasium.make``: id, kwargs and step limit from ``env.spec``."""
        spec = env.spec
        if spec is None:
            raise ReplayError("a replay needs an environment made with gymnasium.make (it has no spec)")
        if env_kwargs is None:
            import gymnasium as gym

            registered = gym.spec(spec.id).kwargs if spec.id in gym.registry else {}
            env_kwargs = {k: v for k, v in spec.kwargs.items() if k not in registered or registered[k] != v}
        return cls(spec.id, env_kwargs, seed, source, spec.max_episode_steps, record_frames)

    @property
    def length(self) -> int:
        return len(self._actions)

    def _frame(self, frame: np.ndarray | None) -> None:
        if not self.record_frames:
            return
        if frame is None:
            raise ReplayError("this recorder records frames: pass frame= (an (H, W, 3) uint8 array)")
        self._frames.append(np.asarray(frame, dtype=np.uint8))

    def start(self, obs: Any, info: Mapping[str, Any], frame: np.ndarray | None = None) -> None:
        """Record what ``reset(seed=seed)`` returned (and the first frame when recording frames)."""
        if self._observations:
            raise ReplayError("start() was already called; use a new EpisodeRecorder for each episode")
        self._observations.append(obs)
        self._infos.append(info)
        self._frame(frame)

    def step(
        self,
        action: Any,
        obs: Any,
        reward: float,
        terminated: bool,
        truncated: bool,
        info: Mapping[str, Any],
        frame: np.ndarray | None = None,
    ) -> None:
        """Record one ``env.step(action)`` and what it returned."""
        if not self._observations:
            raise ReplayError("call start(obs, info) with what reset() returned before step()")
        if self._over:
            raise ReplayError("the episode is over (terminated or truncated); finish() it")
        self._actions.append(action)
        self._observations.append(obs)
        self._rewards.append(float(reward))
        self._terminations.append(bool(terminated))
        self._truncations.append(bool(truncated))
        self._infos.append(info)
        self._frame(frame)
        self._over = bool(terminated or truncated)

    def finish(self, episode_id: str | None = None) -> Episode:
        """The recorded episode (if unfinished, its last step is neither terminated nor truncated)."""
        if not self._observations:
            raise ReplayError("nothing recorded: call start() with what reset() returned")
        try:
            observations = np.asarray(self._observations)
            actions = np.asarray(self._actions)
        except ValueError as exc:
            raise ReplayError(
                f"observations and actions must be numbers or arrays of one shape: {exc}"
            ) from None
        if actions.size == 0:
            actions = np.zeros((0,), dtype=np.int64)
        for name, arr in (("observations", observations), ("actions", actions)):
            if arr.dtype.kind not in NUMERIC_KINDS:
                raise ReplayError(f"{name} must be numeric to be saved in a replay; got dtype {arr.dtype}")
        return Episode(
            id=episode_id or uuid.uuid4().hex,
            seed=self.seed,
            env_id=self.env_id,
            env_kwargs=dict(self.env_kwargs),
            observations=observations,
            actions=actions,
            rewards=np.asarray(self._rewards, dtype=np.float64),
            terminations=np.asarray(self._terminations, dtype=bool),
            truncations=np.asarray(self._truncations, dtype=bool),
            infos=_stack_infos(self._infos),
            frames=np.stack(self._frames) if self.record_frames else None,
            source=self.source,
            max_episode_steps=self.max_episode_steps,
        )


def _stack_infos(infos: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """The info entries every info has, as numbers or numeric arrays of one shape, stacked."""
    out: dict[str, np.ndarray] = {}
    for key in infos[0]:
        if not isinstance(key, str) or not INFO_KEY.match(key) or not all(key in i for i in infos):
            continue
        try:
            values = [np.asarray(i[key]) for i in infos]
        except (ValueError, TypeError):
            continue
        if any(v.dtype.kind not in NUMERIC_KINDS or v.shape != values[0].shape for v in values):
            continue
        out[key] = np.stack(values)
    return out
