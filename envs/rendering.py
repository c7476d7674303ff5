"""``render()`` and ``close()`` for the lab's environments, which draw their own frames.

An env that subclasses :class:`FrameRendering` defines ``ansi()`` (its text picture), ``frame()``
(an ``(H, W, 3)`` uint8 image) and ``window_lines()`` (the status lines under the picture in a
window). ``render_mode`` picks one: ``ansi`` and ``rgb_array`` return them, ``human`` shows the frame
in a pygame window opened on the first call (pygame is imported only then).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


class FrameRendering(gym.Env):
    """A ``gym.Env`` whose ``render()``/``close()`` come from its ``ansi()``, ``frame()`` and
    ``window_lines()``."""

    _window: Any = None  # the pygame window of render_mode "human", once opened

    def render(self) -> np.ndarray | str | None:
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode= to the constructor")
            return None
        if self.render_mode == "ansi":
            return self.ansi()
        if self.render_mode == "rgb_array":
            return self.frame()
        if self._window is None:
            from envs.window import FrameWindow

            name = self.spec.id if self.spec is not None else type(self).__name__
            self._window = FrameWindow(name, fps=self.metadata["render_fps"])
        self._window.show(self.frame(), self.window_lines())
        return None

    def close(self) -> None:
        if self._window is not None:
            self._window.close()
            self._window = None
