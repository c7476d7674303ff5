"""Experience replay: a numpy ring buffer of transitions, with n-step returns folded in on the way in.

Each stored transition is ``(obs, action, reward, next_obs, discount)`` where ``reward`` is the
discounted sum of up to ``n`` rewards and ``discount`` is what multiplies the bootstrap value
``max_a Q(next_obs, a)``: ``gamma ** k`` after ``k`` steps, or 0 when the episode terminated inside
them. A time limit (truncation) is not the task ending, so it keeps its bootstrap from the
observation the episode was cut at. Observations keep their dtype: uint8 pixels stay uint8 (a
quarter of float32's memory).

:class:`PrioritizedReplayBuffer` samples in proportion to ``priority ** alpha`` (Schaul et al., 2016,
the proportional variant) through a sum-tree, so sampling and updating cost ``O(batch * log capacity)``
in a handful of vectorised numpy operations.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from agents.common.errors import AgentError
from lab.core.limits import MAX_BUFFER_BYTES

FIELDS = ("obs", "next_obs", "actions", "rewards", "discounts")


class ReplayBuffer:
    """Uniform replay of the last ``capacity`` transitions."""

    def __init__(
        self, capacity: int, obs_shape: tuple[int, ...], obs_dtype: np.dtype, n_step: int, gamma: float
    ) -> None:
        if capacity < 1 or n_step < 1:
            raise ValueError(f"capacity and n_step must be >= 1; got {capacity} and {n_step}")
        row = 2 * int(np.prod(obs_shape, dtype=np.int64)) * np.dtype(obs_dtype).itemsize + 16
        if capacity * row > MAX_BUFFER_BYTES:  # refused before allocating: sizes can come from files
            raise AgentError(
                f"a replay buffer of {capacity:,} transitions would take {capacity * row / 2**30:.3g} GiB; "
                f"buffer_size is at most {MAX_BUFFER_BYTES // row:,} for these observations"
            )
        self.capacity, self.n_step, self.gamma = int(capacity), int(n_step), float(gamma)
        self.obs = np.zeros((self.capacity, *obs_shape), dtype=obs_dtype)
        self.next_obs = np.zeros((self.capacity, *obs_shape), dtype=obs_dtype)
        self.actions = np.zeros(self.capacity, dtype=np.int64)
        self.rewards = np.zeros(self.capacity, dtype=np.float32)
        self.discounts = np.zeros(self.capacity, dtype=np.float32)
        self.size = 0
        self._next = 0
        self._pending: deque[tuple[np.ndarray, int, float]] = deque()
        self._restored_order = np.arange(0)  # see restore()

    def __len__(self) -> int:
        return self.size

    def _store(self, obs, action: int, reward: float, next_obs, discount: float) -> None:
        i = self._next
        self.obs[i] = obs  # a copy into the ring: the caller's array may be reused
        self.actions[i] = action
        self.rewards[i] = reward
        self.next_obs[i] = next_obs
        self.discounts[i] = discount
        self._stored(i)
        self._next = i + 1 if i + 1 < self.capacity else 0
        if self.size < self.capacity:
            self.size += 1

    def _stored(self, index: int) -> None:
        """A transition went into slot ``index`` (the prioritized buffer gives it a priority)."""

    def _emit_oldest(self, next_obs, terminated: bool) -> None:
        """Store the oldest pending step with the n-step return of the steps after it."""
        total, scale = 0.0, 1.0
        for _, _, r in self._pending:
            total += scale * r
            scale *= self.gamma
        obs, action, _ = self._pending.popleft()
        self._store(obs, action, total, next_obs, 0.0 if terminated else scale)

    def add(self, obs, action: int, reward: float, next_obs, terminated: bool, truncated: bool) -> None:
        """Add one environment step; at the episode's end every pending step is stored."""
        if self.n_step == 1:  # the common case, without the queue
            self._store(obs, action, reward, next_obs, 0.0 if terminated else self.gamma)
            return
        self._pending.append((np.array(obs), int(action), float(reward)))
        if terminated or truncated:
            while self._pending:
                self._emit_oldest(next_obs, terminated)
        elif len(self._pending) == self.n_step:
            self._emit_oldest(next_obs, False)

    def add_many(self, obs, actions, rewards, next_obs, terminated) -> None:
        """Add one step of each of several env copies, in order, as that many :meth:`add` calls
        would, in a few array writes. One-step returns only: ``n_step`` folds one stream of steps."""
        if self.n_step != 1:
            raise ValueError(f"add_many stores one-step transitions; this buffer has n_step={self.n_step}")
        count = len(actions)
        if count == 0:
            return
        kept = slice(max(count - self.capacity, 0), count)  # more than the ring holds: the last ones stay
        index = (self._next + np.arange(count)[kept]) % self.capacity
        self.obs[index] = obs[kept]
        self.actions[index] = actions[kept]
        self.rewards[index] = rewards[kept]
        self.next_obs[index] = next_obs[kept]
        self.discounts[index] = np.where(terminated[kept], 0.0, self.gamma)
        self._stored_many(index)
        self._next = (self._next + count) % self.capacity
        self.size = min(self.size + count, self.capacity)

    def _stored_many(self, index: np.ndarray) -> None:
        """Transitions went into the slots ``index`` (the prioritized buffer gives them priorities)."""

    def start_episode(self) -> None:
        """Forget the steps of an episode abandoned before it ended, so they never join the next one's."""
        self._pending.clear()

    def sample_indices(self, shape: int | tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        return rng.integers(0, self.size, size=shape)

    def gather(self, index: np.ndarray) -> tuple[np.ndarray, ...]:
        """``(obs, actions, rewards, next_obs, discounts)`` at ``index`` (any shape)."""
        return (
            self.obs[index],
            self.actions[index],
            self.rewards[index],
            self.next_obs[index],
            self.discounts[index],
        )

    def sample(self, batch_size: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        return self.gather(self.sample_indices(batch_size, rng))

    # ----- checkpoints -----

    def state_arrays(self) -> dict[str, np.ndarray]:
        """The filled part of the ring as it lies (so a restored buffer samples the very same
        transitions), and the slot written next. A next observation that is the observation stored
        ``n_step`` slots on (the common case: one stream of steps, within an episode) is saved as that
        slot's index (``next_index``), the others whole (``next_extra``, with ``next_index`` -1): about
        half the size of two copies. The comparison is of raw bytes, so restoring is bit-exact."""
        n = self.size
        obs, next_obs = self.obs[:n], self.next_obs[:n]
        following = (np.arange(n) + self.n_step) % self.capacity
        following[following >= n] = 0  # not filled yet: compared, will not match (or match exactly)
        same = (as_bytes(next_obs) == as_bytes(obs[following])).all(axis=1) if n else np.zeros(0, bool)
        return {
            "obs": obs.copy(),
            "next_index": np.where(same, following, -1).astype(np.int32 if n < 2**31 else np.int64),
            "next_extra": next_obs[~same].copy(),
            "actions": self.actions[:n].copy(),
            "rewards": self.rewards[:n].copy(),
            "discounts": self.discounts[:n].copy(),
            "position": np.array(self._next),
        }

    def _order(self) -> np.ndarray:
        """The filled slots, oldest first."""
        if self.size < self.capacity:
            return np.arange(self.size)
        return (np.arange(self.capacity) + self._next) % self.capacity

    def restore(self, arrays: dict[str, np.ndarray]) -> None:
        """Put back :meth:`state_arrays`, exactly as it was in a buffer of the same capacity; a smaller
        one keeps the newest transitions. Older checkpoints (without ``position``) saved ``next_obs``
        whole and the transitions oldest first."""
        fields = {name: np.asarray(arrays[name]) for name in ("obs", "actions", "rewards", "discounts")}
        if fields["obs"].shape[1:] != self.obs.shape[1:]:
            raise AgentError("the checkpoint's replay buffer holds observations of another shape")
        if "next_index" in arrays:
            index, extra = np.asarray(arrays["next_index"]), np.asarray(arrays["next_extra"])
            next_obs = np.empty_like(fields["obs"])
            has = index >= 0
            next_obs[has] = fields["obs"][index[has]]
            next_obs[~has] = extra
            fields["next_obs"] = next_obs
        else:
            fields["next_obs"] = np.asarray(arrays["next_obs"])
        n, position = len(fields["obs"]), int(arrays.get("position", 0))
        if n <= self.capacity and (n == self.capacity or position == n):  # fits as it lay
            order = np.arange(n)
            self._next = position % self.capacity
        else:  # another capacity: oldest first, the newest that fit
            order = ((np.arange(n) + position) % n)[max(0, n - self.capacity) :]
            self._next = len(order) % self.capacity
        for name in FIELDS:
            getattr(self, name)[: len(order)] = fields[name][order]
        self.size = len(order)
        self._pending.clear()
        self._restored_order = order  # what the prioritized buffer reorders its priorities by


def as_bytes(rows: np.ndarray) -> np.ndarray:
    """Each row of an array as its raw bytes ``(n, bytes per row)``: a bit-exact comparison."""
    return np.ascontiguousarray(rows).view(np.uint8).reshape(len(rows), -1)


class SumTree:
    """Sums over a binary tree of ``capacity`` leaf priorities (leaves padded to a power of two)."""

    def __init__(self, capacity: int) -> None:
        self.leaves = 1 << max(0, (capacity - 1).bit_length())
        self.tree = np.zeros(2 * self.leaves, dtype=np.float64)  # node i has children 2i, 2i+1; root 1

    @property
    def total(self) -> float:
        return float(self.tree[1])

    def set(self, index: np.ndarray, value: np.ndarray) -> None:
        nodes = np.asarray(index, dtype=np.int64) + self.leaves
        self.tree[nodes] = value
        nodes = np.unique(nodes >> 1)
        while nodes[0] >= 1:
            self.tree[nodes] = self.tree[2 * nodes] + self.tree[2 * nodes + 1]
            if nodes[0] == 1:
                break
            nodes = np.unique(nodes >> 1)

    def get(self, index: np.ndarray) -> np.ndarray:
        return self.tree[np.asarray(index, dtype=np.int64) + self.leaves]

    def find(self, mass: np.ndarray) -> np.ndarray:
        """The leaf where each cumulative ``mass`` (in ``[0, total)``) falls."""
        nodes = np.ones(len(mass), dtype=np.int64)
        mass = np.array(mass, dtype=np.float64)
        while nodes[0] < self.leaves:
            left = 2 * nodes
            left_sum = self.tree[left]
            go_right = mass >= left_sum
            mass -= np.where(go_right, left_sum, 0.0)
            nodes = left + go_right
        return nodes - self.leaves


class PrioritizedReplayBuffer(ReplayBuffer):
    """Proportional prioritized replay: ``P(i) ∝ p_i ** alpha``, importance weights ``(N P(i)) ** -beta``
    normalised by their maximum. New transitions get the largest priority seen so far."""

    def __init__(
        self,
        capacity: int,
        obs_shape: tuple[int, ...],
        obs_dtype: np.dtype,
        n_step: int,
        gamma: float,
        alpha: float = 0.6,
        eps: float = 1e-6,
    ) -> None:
        super().__init__(capacity, obs_shape, obs_dtype, n_step, gamma)
        self.alpha, self.eps = float(alpha), float(eps)
        self.tree = SumTree(self.capacity)
        self.max_priority = 1.0

    def _stored(self, index: int) -> None:
        tree = self.tree.tree
        node = index + self.tree.leaves
        tree[node] = self.max_priority**self.alpha
        node >>= 1
        while node:  # scalar walk to the root: far cheaper than the vectorised set for one leaf
            tree[node] = tree[2 * node] + tree[2 * node + 1]
            node >>= 1

    def _stored_many(self, index: np.ndarray) -> None:
        self.tree.set(index, np.full(len(index), self.max_priority**self.alpha))

    def sample_indices(self, shape: int | tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        """Stratified: one draw in each of ``batch_size`` equal slices of the total priority."""
        n = int(np.prod(shape))
        total = self.tree.total
        mass = (np.arange(n) + rng.random(n)) * (total / n)
        index = np.minimum(self.tree.find(np.minimum(mass, np.nextafter(total, 0))), self.size - 1)
        return index.reshape(shape)

    def weights(self, index: np.ndarray, beta: float) -> np.ndarray:
        """Importance-sampling weights ``(N P(i)) ** -beta / max``, as float32."""
        probability = self.tree.get(index) / self.tree.total
        weights = (self.size * probability) ** -beta
        return (weights / weights.max()).astype(np.float32)

    def update_priorities(self, index: np.ndarray, td_errors: np.ndarray) -> None:
        priority = np.abs(np.asarray(td_errors, dtype=np.float64)) + self.eps
        self.max_priority = max(self.max_priority, float(priority.max()))
        self.tree.set(index, priority**self.alpha)

    def state_arrays(self) -> dict[str, np.ndarray]:
        arrays = super().state_arrays()
        arrays["priorities"] = self.tree.get(np.arange(self.size))
        arrays["max_priority"] = np.array(self.max_priority)
        return arrays

    def restore(self, arrays: dict[str, np.ndarray]) -> None:
        super().restore(arrays)
        self.tree = SumTree(self.capacity)
        if "priorities" in arrays and self.size:
            self.tree.set(np.arange(self.size), np.asarray(arrays["priorities"])[self._restored_order])
            self.max_priority = float(arrays["max_priority"])
        elif self.size:
            self.tree.set(np.arange(self.size), np.full(self.size, self.max_priority**self.alpha))
