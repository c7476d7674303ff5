"""Recording episodes as replays while anything (an agent, the viewer, an evaluation) steps an env."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from lab.replays import EpisodeRecorder, replay_path, save_episode


class RecordEpisodes(gym.Wrapper):
    """Saves every episode that finishes (terminated or truncated) as a replay in ``folder``.

    Replays are re-simulated from their seed, so every episode starts from an explicit seed: when
    ``reset`` gets none, the wrapper draws one and passes it on. ``saved`` lists the files written;
    ``limit`` stops recording after that many episodes.
    """

    def __init__(self, env: gym.Env, folder: str | Path, source: str, limit: int | None = None) -> None:
        super().__init__(env)
        self.folder = Path(folder)
        self.source = source
        self.limit = limit
        self.saved: list[Path] = []
        self._recorder: EpisodeRecorder | None = None
        self._seeds = np.random.default_rng()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        if seed is None:
            seed = int(self._seeds.integers(2**31))
        obs, info = self.env.reset(seed=seed, options=options)
        self._recorder = None
        if self.limit is None or len(self.saved) < self.limit:
            self._recorder = EpisodeRecorder.for_env(self.env, seed, self.source)
            self._recorder.start(obs, info)
        return obs, info

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        if self._recorder is not None:
            self._recorder.step(action, obs, reward, terminated, truncated, info)
            if terminated or truncated:
                path = replay_path(self.folder, self.env.spec.id, self.source)
                self.saved.append(save_episode(self._recorder.finish(), path))
                self._recorder = None
        return obs, reward, terminated, truncated, info
