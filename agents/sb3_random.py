"""stable-baselines3's random numbers, so that an agent can repeat an SB3 run number for number.

SB3 seeds python's, numpy's and torch's global generators and the env's action space with the run's
seed, and passes the seed to the env's first reset only (env copy ``i`` of a vector env gets
``seed + i``; later resets continue each env's own stream). Initial weights and PPO's action
samples come from torch's generator. Its DQN draws, per env step, ``action_space.sample()`` before
``learning_starts``; after it one ``np.random.rand()`` against epsilon and, when that explores,
``action_space.sample()``; and per gradient step ``np.random.randint(0, transitions_stored,
batch_size)`` (the second draw it makes there, of an env index below 1, takes nothing from the
generator). Its PPO draws one ``np.random.permutation`` of the rollout per epoch.

:class:`SB3Random` makes the same numpy draws from a private ``RandomState`` seeded as numpy's
global one would be (the global generator is left alone) and the action samples from the env's
action space.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from agents.errors import AgentError
from agents.random_stream import pcg_state_array, set_pcg_state

SEEDINGS = ("lab", "sb3")  # an agent's own seeding, or stable-baselines3's


def check_seeding(value: object) -> str:
    """The ``seeding`` hyperparameter of DQN and PPO, or an :class:`AgentError`."""
    if value not in SEEDINGS:
        raise AgentError(f"seeding must be 'lab' or 'sb3'; got {value!r}")
    return str(value)


class SB3Random:
    """The numpy and action-space random numbers of an SB3 run seeded ``seed`` (the action space: for
    the off-policy algorithms' random actions)."""

    def __init__(self, seed: int, action_space: spaces.Discrete | None = None) -> None:
        self.numpy = np.random.RandomState(seed)
        self.action_space = action_space
        self._start = 0
        if action_space is not None:
            action_space.seed(seed)
            self._start = int(action_space.start)
        self.coin = self.numpy.random_sample  # np.random.rand(): one uniform float in [0, 1)

    def random_action(self) -> int:
        """``action_space.sample()`` as an action index (0-based)."""
        assert self.action_space is not None
        return int(self.action_space.sample()) - self._start

    def batch_indices(self, stored: int, batch_size: int, batches: int) -> np.ndarray:
        """``(batches, batch_size)`` replay indices below ``stored``, one ``randint`` per batch."""
        return np.stack([self.numpy.randint(0, stored, size=batch_size) for _ in range(batches)])

    # ----- checkpoints -----

    def state_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        _, keys, position, has_gauss, gauss = self.numpy.get_state(legacy=True)
        arrays = {
            f"{prefix}.mt19937": np.asarray(keys, dtype=np.uint32),
            f"{prefix}.position": np.array([position, has_gauss], dtype=np.int64),
            f"{prefix}.gauss": np.array(gauss, dtype=np.float64),
        }
        if self.action_space is not None:
            arrays[f"{prefix}.action_space"] = pcg_state_array(self.action_space.np_random)
        return arrays

    def restore(self, arrays: dict[str, np.ndarray], prefix: str) -> None:
        try:
            position, has_gauss = (int(x) for x in arrays[f"{prefix}.position"])
            keys = np.asarray(arrays[f"{prefix}.mt19937"], dtype=np.uint32)
            self.numpy.set_state(("MT19937", keys, position, has_gauss, float(arrays[f"{prefix}.gauss"])))
            if self.action_space is not None:
                set_pcg_state(self.action_space.np_random, arrays[f"{prefix}.action_space"])
        except (KeyError, TypeError, ValueError) as exc:
            raise AgentError(f"the checkpoint's SB3 random-number state is not usable: {exc}") from None
