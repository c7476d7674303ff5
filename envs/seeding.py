"""How the batched envs seed their copies, so that copy ``i`` replays a single env exactly.

A single env reset with ``seed=s`` numbers its episodes 0, 1, 2...; each episode's randomness is a
pure function of ``(s, episode)`` (``envs.grid.rng``). A batched env keeps one base key and one
episode number per copy: ``reset(seed=s)`` gives copy ``i`` the seed ``s + i`` (or the list's
``i``-th seed), as gymnasium's vector envs do, and a reset without a seed starts every copy's next
episode (the first unseeded reset draws the bases from ``np_random``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from gymnasium.vector import VectorEnv

from envs.errors import EnvError
from envs.grid import rng


class SeededCopies(VectorEnv):
    """A :class:`VectorEnv` base with per-copy episode keys (``_base``, ``_episode``)."""

    _base: np.ndarray
    _episode: np.ndarray
    _seeded: bool

    def _seed_copies(self, seed: int | Sequence[int] | None) -> None:
        """``reset``'s seeding: every copy's base key and episode number (and ``np_random``)."""
        n = self.num_envs
        if seed is None:
            super().reset()
            if not self._seeded:
                self._base = self.np_random.integers(2**63, size=n).astype(np.uint64)
                self._episode[:] = 0
                self._seeded = True
            else:
                self._episode += 1
            return
        if isinstance(seed, (int, np.integer)):
            super().reset(seed=int(seed))
            seeds = int(seed) + np.arange(n, dtype=np.int64)
        else:
            seeds = np.asarray(seed)
            if seeds.shape != (n,) or seeds.dtype.kind not in "iu":
                raise EnvError(f"reset(seed=...) takes one int, or a list of {n} ints (one per copy)")
            super().reset()
        self._base = rng.seed_key_array(seeds)
        self._episode[:] = 0
        self._seeded = True
