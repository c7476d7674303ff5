"""Small envs whose every number is known, for tests that pin what the agents record."""

from __future__ import annotations

import gymnasium as gym
import numpy as np


class TwoStepEpisodes(gym.Env):
    """Episodes of two steps paying 1 each; episode 0 hits a time limit, episode 1 terminates, and so
    on alternately. The observation is ``10 * episode + step``, so every state has its own value."""

    observation_space = gym.spaces.Box(-100.0, 100.0, (1,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self):
        self.episode, self.t = -1, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.episode, self.t = self.episode + 1, 0
        return self._obs(), {}

    def _obs(self):
        return np.array([10.0 * self.episode + self.t], np.float32)

    def step(self, action):
        self.t += 1
        end = self.t == 2
        return self._obs(), 1.0, end and self.episode % 2 == 1, end and self.episode % 2 == 0, {}


if "TwoStepEpisodes-v0" not in gym.registry:  # DQN's copies are made from the id
    gym.register("TwoStepEpisodes-v0", entry_point=TwoStepEpisodes)
