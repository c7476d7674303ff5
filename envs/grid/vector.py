"""A batched grid world: N copies stepped together with numpy array operations."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from envs.errors import EnvError, InvalidActionError
from envs.grid import rng
from envs.grid.world import GridWorld
from envs.seeding import SeededCopies


class GridVectorEnv(SeededCopies):
    """N copies of one grid world, stepped in lockstep without a Python loop over copies.

    It reads the same outcome tables and the same counter-based random numbers as
    :class:`GridWorld`, so for the same seeds and actions it returns exactly what N single
    environments (e.g. in a ``SyncVectorEnv``) return: observations, rewards, flags and
    ``info["state"]``. Autoreset follows gymnasium's next-step convention: the step after a copy
    terminates or truncates resets it (its action is ignored) and returns the first observation of
    the new episode with reward 0. ``reset(seed=s)`` seeds copy ``i`` with ``s + i``, and
    ``reset(options={"reset_mask": mask})`` starts only the copies ``mask`` marks, as
    ``SyncVectorEnv`` does.

    Information: ``reset`` and ``step`` return ``info = {"state": states, "_state": mask}``, gymnasium's
    batched form of :class:`GridWorld`'s ``{"state": s}``: every copy's state number (int64, shape
    ``(num_envs,)``) and an all-True mask saying each copy reports one.

    Made by ``gymnasium.make_vec("lab/...", num_envs=N, vectorization_mode="vector_entry_point")``
    or directly: ``GridVectorEnv(CliffWalk(obs_type="coords"), num_envs=1024, max_episode_steps=500)``.
    """

    metadata: ClassVar[dict[str, Any]] = {
        "autoreset_mode": AutoresetMode.NEXT_STEP,
        "render_modes": ["rgb_array"],
    }

    def __init__(self, env: GridWorld, num_envs: int, max_episode_steps: int | None = None) -> None:
        self._init_copies(num_envs, max_episode_steps)
        if env.render_mode not in (None, "rgb_array"):
            raise EnvError(f"GridVectorEnv renders only 'rgb_array'; got render_mode={env.render_mode!r}")
        self.env = env
        self.model = model = env.model
        self.encoder = env.encoder
        self.max_episode_steps = max_episode_steps
        self.render_mode = env.render_mode
        self.metadata = {**self.metadata, "render_fps": env.metadata["render_fps"]}
        self.single_observation_space = env.observation_space
        self.single_action_space = env.action_space
        self.observation_space = batch_space(env.observation_space, self.num_envs)
        self.action_space = batch_space(env.action_space, self.num_envs)

        self._n_actions = model.n_actions
        # Flat outcome tables (index (s * A + a) * K + k) and one contiguous column per cdf entry:
        # 1-D gathers are several times faster than 2-D fancy indexing on the hot path.
        self._k = model.next_state.shape[1]
        self._next = model.next_state.ravel()
        self._reward = model.reward.ravel()
        self._cdf_columns = [rng.bits_thresholds(model.cdf[:, j]) for j in range(self._k - 1)]
        self._terminal = model.terminal
        self._starts = model.start_states

        n = self.num_envs
        self._state = np.zeros(n, dtype=np.int64)
        self._t = np.zeros(n, dtype=np.int64)
        self._key = np.zeros(n, dtype=np.uint64)
        self._needs_reset = np.zeros(n, dtype=bool)
        self._all = np.ones(n, dtype=bool)

    @classmethod
    def entry_point(cls, env_class: Callable[..., GridWorld]) -> Callable[..., GridVectorEnv]:
        """A ``vector_entry_point`` for gymnasium's registry: ``(num_envs, max_episode_steps, **kwargs)``
        (a ``partial`` of a module-level function, so that an env's spec, and the env, can be pickled)."""
        return functools.partial(_make_vector, cls, env_class)

    @property
    def states(self) -> np.ndarray:
        """The current state index of every copy (a copy)."""
        return self._state.copy()

    def reset(
        self, *, seed: int | Sequence[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        rows = self._reset_rows(options)
        self._seed_copies(seed, rows)
        # the copies that start anew (reset_mask: the others keep their episode and report no state)
        fresh = slice(None) if rows is None else rows
        self._key[fresh] = keys = rng.episode_key_array(self._base[fresh], self._episode[fresh])
        self._state[fresh] = self._start_states(keys)
        self._t[fresh] = 0
        self._needs_reset[fresh] = False
        reported = np.zeros(self.num_envs, dtype=bool)
        reported[fresh] = True
        info = {"state": np.where(reported, self._state, 0), "_state": reported}
        return self.encoder.encode(self._state), info

    def _start_states(self, keys: np.ndarray) -> np.ndarray:
        if len(self._starts) == 1:
            return np.full(len(keys), self._starts[0], dtype=np.int64)
        draw = rng.uniform_array(keys, np.zeros(len(keys), dtype=np.int64))
        return self._starts[(draw * len(self._starts)).astype(np.int64)]

    def _check_actions(self, actions: Any) -> np.ndarray:
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs,) or actions.dtype.kind not in "iu":
            raise InvalidActionError(
                f"step() takes {self.num_envs} integer actions (shape ({self.num_envs},)); "
                f"got shape {actions.shape} of dtype {actions.dtype}"
            )
        if actions.min() < 0 or actions.max() >= self._n_actions:
            i = int(np.flatnonzero((actions < 0) | (actions >= self._n_actions))[0])
            raise InvalidActionError(
                f"action {actions[i]} of copy {i} is outside the action space Discrete({self._n_actions})"
            )
        return actions.astype(np.int64, copy=False)  # uint64 + int64 would promote to float64

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        self._check_started()
        actions = self._check_actions(actions)
        i = self._state * self._n_actions
        i += actions
        self._t += 1
        t = self._t
        flat = i * self._k
        if self._cdf_columns:  # some outcome is random: sample by inverse cdf, on raw random bits
            bits = rng.bits_array(self._key, t)
            for thresholds in self._cdf_columns:
                flat += bits > np.take(thresholds, i)
        state = np.take(self._next, flat)
        reward = np.take(self._reward, flat)
        terminated = np.take(self._terminal, state)
        if self.max_episode_steps is not None:
            truncated = t >= self.max_episode_steps
        else:
            truncated = np.zeros(self.num_envs, dtype=bool)

        if self._needs_reset.any():
            done = np.flatnonzero(self._needs_reset)  # integer indices: cheaper than repeated boolean masks
            self._episode[done] += 1
            keys = rng.episode_key_array(self._base[done], self._episode[done])
            self._key[done] = keys
            state[done] = self._start_states(keys)
            reward[done] = 0.0
            terminated[done] = False
            truncated[done] = False
            t[done] = 0
        self._state = state
        self._needs_reset = terminated | truncated
        info = {"state": state.copy(), "_state": self._all.copy()}
        return self.encoder.encode(state), reward, terminated, truncated, info

    def render(self) -> tuple[np.ndarray, ...] | None:
        """One RGB frame per copy (``render_mode="rgb_array"``)."""
        if self.render_mode is None:
            return None
        m = self.model
        frames = self.env.painter().frames(
            m.state_row[self._state], m.state_col[self._state], m.state_phase[self._state]
        )
        return tuple(frames)

    def close_extras(self, **kwargs: Any) -> None:
        self.env.close()


def _make_vector(
    cls: type[GridVectorEnv],
    env_class: Callable[..., GridWorld],
    num_envs: int = 1,
    max_episode_steps: int | None = None,
    **kwargs: Any,
) -> GridVectorEnv:
    return cls(env_class(**kwargs), num_envs=num_envs, max_episode_steps=max_episode_steps)
