"""Driving the play window in tests: it returns the keys a test names (then q) and records the frames
and status lines it shows."""

from __future__ import annotations

import numpy as np

from envs.window import FrameWindow


def feed_keys(monkeypatch, names: list[str]) -> list[tuple[np.ndarray, list[str]]]:
    """Make the play window return these keys (pygame's names, then q) and record what it shows."""
    import pygame

    code_of = {
        pygame.key.name(getattr(pygame, k)): getattr(pygame, k) for k in dir(pygame) if k.startswith("K_")
    }
    codes = [code_of[name] for name in [*names, "q"]]
    shown: list[tuple[np.ndarray, list[str]]] = []
    original_show = FrameWindow.show

    def show(self, frame, lines=()):
        shown.append((np.array(frame), list(lines)))
        original_show(self, frame, lines)

    monkeypatch.setattr(FrameWindow, "show", show)
    monkeypatch.setattr(FrameWindow, "wait_key", lambda self, timeout_ms=50: codes.pop(0))
    return shown
