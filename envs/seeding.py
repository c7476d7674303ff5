"""How the batched envs seed their copies, so that copy ``i`` replays a single env exactly.

A single env reset with ``seed=s`` numbers its episodes 0, 1, 2...; each episode's randomness is a
pure function of ``(s, episode)`` (``envs.grid.rng``). A batched env keeps one base key and one
episode number per copy: ``reset(seed=s)`` gives copy ``i`` the seed ``s + i`` (or the list's
``i``-th seed), as gymnasium's vector envs do, and a reset without a seed starts every copy's next
episode (the first unseeded reset draws the bases from ``np_random``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium.error import ResetNeeded
from gymnasium.vector import VectorEnv

from envs.errors import EnvError
from envs.grid import rng


def is_seed(value: Any) -> bool:
    """Whether ``value`` is a reset seed as the lab takes it everywhere (agents, replays, the ``lab``
    command): a whole number from 0 to 2**64 - 1, numpy integers included, bools not."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and 0 <= value < 2**64


class SeededCopies(VectorEnv):
    """A :class:`VectorEnv` base with per-copy episode keys (``_base``, ``_episode``)."""

    _base: np.ndarray
    _episode: np.ndarray
    _seeded: bool

    def _init_copies(self, num_envs: int, max_episode_steps: int | None) -> None:
        """Check the copy count and the step limit, and start every copy unseeded."""
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise EnvError(f"num_envs must be a positive integer; got {num_envs!r}")
        if max_episode_steps is not None and (
            not isinstance(max_episode_steps, (int, np.integer)) or max_episode_steps < 1
        ):
            raise EnvError(f"max_episode_steps must be a positive integer or None; got {max_episode_steps!r}")
        self.num_envs = int(num_envs)
        self._base = np.zeros(self.num_envs, dtype=np.uint64)
        self._episode = np.zeros(self.num_envs, dtype=np.int64)
        self._seeded = False
        self._started = False  # reset() has run: step() before it would read no episode's state

    def _check_started(self) -> None:
        if not self._started:
            raise ResetNeeded("call reset() before step(): the copies have no episode yet")

    def _reset_rows(self, options: dict[str, Any] | None) -> np.ndarray | None:
        """The copies gymnasium's ``options={"reset_mask": mask}`` resets (``None``: all of them), checked
        as ``SyncVectorEnv`` checks it; only copies of a started env can be reset alone."""
        mask = (options or {}).get("reset_mask")
        if mask is None:
            return None
        if not isinstance(mask, np.ndarray) or mask.dtype != bool or mask.shape != (self.num_envs,):
            raise EnvError(f"reset_mask must be a numpy bool array of shape ({self.num_envs},); got {mask!r}")
        if not mask.any():
            raise EnvError("reset_mask resets no copy: mark at least one True")
        if not self._started:
            raise EnvError("reset_mask resets some copies; the first reset() starts them all")
        return np.flatnonzero(mask)

    def _seed_copies(self, seed: int | Sequence[int] | None, rows: np.ndarray | None = None) -> None:
        """``reset``'s seeding: the base key and episode number of every copy, or of copies ``rows``
        (``reset_mask``; the others carry on), and ``np_random``."""
        n = self.num_envs
        rows = np.arange(n) if rows is None else rows
        self._started = True
        if seed is None:
            super().reset()
            if not self._seeded:
                self._base = self.np_random.integers(2**63, size=n).astype(np.uint64)
                self._episode[:] = 0
                self._seeded = True
            else:
                self._episode[rows] += 1
            return
        if isinstance(seed, (int, np.integer)):
            super().reset(seed=int(seed))  # refuses a negative seed, as a single env does
            # copy i's seed is seed + i; the keys read seeds modulo 2**64, which uint64 sums wrap to
            seeds = np.uint64(int(seed) % 2**64) + np.arange(n, dtype=np.uint64)
        else:
            seeds = np.asarray(seed)
            if seeds.shape != (n,) or seeds.dtype.kind not in "iu" or (seeds < 0).any():
                raise EnvError(f"reset(seed=...) takes one int, or a list of {n} ints >= 0 (one per copy)")
            super().reset()
        self._base[rows] = rng.seed_key_array(seeds[rows])
        self._episode[rows] = 0
        self._seeded = True
