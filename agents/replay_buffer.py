"""Experience replay: a numpy ring buffer of transitions, with n-step returns folded in on the way in.

Each stored transition is ``(obs, action, reward, next_obs, discount)`` where ``reward`` is the
discounted sum of up to ``n`` rewards and ``discount`` is what multiplies the bootstrap value
``max_a Q(next_obs, a)``: ``gamma ** k`` after ``k`` steps, or 0 when the episode terminated inside
them. A time limit (truncation) is not the task ending, so it keeps its bootstrap. Observations
keep their dtype: uint8 pixels stay uint8 (a quarter of float32's memory).
"""

from __future__ import annotations

from collections import deque

import numpy as np


class ReplayBuffer:
    """Uniform replay of the last ``capacity`` transitions."""

    def __init__(
        self, capacity: int, obs_shape: tuple[int, ...], obs_dtype: np.dtype, n_step: int, gamma: float
    ):
        if capacity < 1 or n_step < 1:
            raise ValueError(f"capacity and n_step must be >= 1; got {capacity} and {n_step}")
        self.capacity, self.n_step, self.gamma = int(capacity), int(n_step), float(gamma)
        self.obs = np.zeros((self.capacity, *obs_shape), dtype=obs_dtype)
        self.next_obs = np.zeros((self.capacity, *obs_shape), dtype=obs_dtype)
        self.actions = np.zeros(self.capacity, dtype=np.int64)
        self.rewards = np.zeros(self.capacity, dtype=np.float32)
        self.discounts = np.zeros(self.capacity, dtype=np.float32)
        self.size = 0
        self._next = 0
        self._pending: deque[tuple[np.ndarray, int, float]] = deque()

    def __len__(self) -> int:
        return self.size

    def _store(
        self, obs: np.ndarray, action: int, reward: float, next_obs: np.ndarray, discount: float
    ) -> None:
        i = self._next
        self.obs[i], self.actions[i], self.rewards[i] = obs, action, reward
        self.next_obs[i], self.discounts[i] = next_obs, discount
        self._next = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def _emit_oldest(self, next_obs: np.ndarray, terminated: bool) -> None:
        """Store the oldest pending step with the n-step return of the steps after it."""
        total, scale = 0.0, 1.0
        for _, _, r in self._pending:
            total += scale * r
            scale *= self.gamma
        obs, action, _ = self._pending.popleft()
        self._store(obs, action, total, next_obs, 0.0 if terminated else scale)

    def add(self, obs, action: int, reward: float, next_obs, terminated: bool, truncated: bool) -> None:
        """Add one environment step; at the episode's end every pending step is stored."""
        self._pending.append((np.array(obs), int(action), float(reward)))
        next_obs = np.asarray(next_obs)
        if terminated or truncated:
            while self._pending:
                self._emit_oldest(next_obs, terminated)
        elif len(self._pending) == self.n_step:
            self._emit_oldest(next_obs, False)

    def sample(self, batch_size: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        index = rng.integers(0, self.size, size=batch_size)
        return (
            self.obs[index],
            self.actions[index],
            self.rewards[index],
            self.next_obs[index],
            self.discounts[index],
        )
