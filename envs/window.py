"""A small pygame window that shows RGB frames with a few lines of status text below them.

pygame is imported lazily, inside the methods, so importing this module costs nothing and works
where no display (or no pygame) is available.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from os import PathLike
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pygame

FONT_SIZE = 22
PAD = 6
BAR_BG = (36, 41, 51)
BAR_TEXT = (226, 230, 238)


def _pygame() -> ModuleType:
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    import pygame

    return pygame


class FrameWindow:
    """Shows ``(H, W, 3)`` uint8 frames, upscaled ``scale`` times (nearest neighbour).

    The window opens on the first :meth:`show` and follows the frame's size (at least ``min_width``
    wide, a narrower frame centred); the status bar grows to
    the most lines shown so far and never shrinks, so the window does not jump. ``closed`` turns true
    when the user closes it or :meth:`close` is called; :meth:`show` then does nothing.
    """

    def __init__(self, title: str, fps: float | None = None, scale: int = 1, min_width: int = 480) -> None:
        if scale < 1:
            raise ValueError(f"scale must be a positive integer; got {scale}")
        self.title = title
        self.fps = fps
        self.scale = int(scale)
        self.min_width = int(min_width)
        self.closed = False
        self._screen: pygame.Surface | None = None
        self._font: pygame.font.Font | None = None
        self._clock: pygame.time.Clock | None = None
        self._frame_size: tuple[int, int] = (0, 0)
        self._bar_lines = 0

    def _open(self, size: tuple[int, int], n_lines: int) -> None:
        pygame = _pygame()

        if self._screen is None:
            pygame.display.init()
            pygame.font.init()
            pygame.display.set_caption(self.title)
            self._font = pygame.font.Font(None, FONT_SIZE)
            self._clock = pygame.time.Clock()
        self._frame_size = size
        self._bar_lines = max(self._bar_lines, n_lines)
        w, h = size
        self._screen = pygame.display.set_mode((max(w, self.min_width), h + self._bar_height()))

    def _bar_height(self) -> int:
        if self._bar_lines == 0 or self._font is None:
            return 0
        return self._bar_lines * self._font.get_linesize() + 2 * PAD

    def show(self, frame: np.ndarray, lines: Sequence[str] = ()) -> None:
        """Draw ``frame`` and the status ``lines`` (one row of text each), then keep the window responsive."""
        if self.closed:
            return
        pygame = _pygame()

        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"a frame is an (H, W, 3) array; got shape {frame.shape}")
        size = (frame.shape[1] * self.scale, frame.shape[0] * self.scale)
        if self._screen is None or size != self._frame_size or len(lines) > self._bar_lines:
            self._open(size, len(lines))
        assert self._screen is not None and self._font is not None and self._clock is not None
        lines = self.wrap(lines, self._screen.get_width())
        if len(lines) > self._bar_lines:  # a long line took two rows: the bar grows to fit
            self._open(size, len(lines))

        surface = pygame.surfarray.make_surface(frame.astype(np.uint8, copy=False).swapaxes(0, 1))
        if self.scale != 1:
            surface = pygame.transform.scale(surface, size)
        width = self._screen.get_width()
        if width > size[0]:  # a narrow frame sits centred on the bar colour, so the status text fits
            self._screen.fill(BAR_BG, pygame.Rect(0, 0, width, size[1]))
        self._screen.blit(surface, ((width - size[0]) // 2, 0))
        if self._bar_lines:
            bar = pygame.Rect(0, size[1], width, self._bar_height())
            self._screen.fill(BAR_BG, bar)
            y = bar.top + PAD
            for line in lines:
                self._screen.blit(self._font.render(str(line), True, BAR_TEXT), (PAD, y))
                y += self._font.get_linesize()
        pygame.display.flip()
        pygame.event.pump()
        if pygame.event.peek(pygame.QUIT):
            self.closed = True
        if self.fps:
            self._clock.tick(self.fps)

    def wrap(self, lines: Sequence[str], width: int) -> list[str]:
        """``lines`` broken at spaces so that each row fits ``width`` pixels of status bar (a single
        word wider than that keeps its own row)."""
        assert self._font is not None
        room = width - 2 * PAD
        rows: list[str] = []
        for line in map(str, lines):
            if self._font.size(line.rstrip())[0] <= room:  # most lines fit: one measurement each
                rows.append(line.rstrip())
                continue
            row = ""
            for word in line.split(" "):
                candidate = f"{row} {word}" if row else word
                if row.strip() and word and self._font.size(candidate.rstrip())[0] > room:
                    rows.append(row.rstrip())
                    row = word
                else:
                    row = candidate
            rows.append(row.rstrip())
        return rows

    def poll(self) -> list[pygame.event.Event]:
        """The pending events; a QUIT among them sets ``closed``."""
        if self._screen is None:
            return []
        pygame = _pygame()

        events = pygame.event.get()
        if any(e.type == pygame.QUIT for e in events):
            self.closed = True
        return events

    def wait_key(self, timeout_ms: int = 50) -> int | None:
        """Wait up to ``timeout_ms`` for a key press and return its key code or None; QUIT sets ``closed``."""
        if self._screen is None or self.closed:
            return None
        pygame = _pygame()

        deadline = time.monotonic() + timeout_ms / 1000
        while True:
            left = int((deadline - time.monotonic()) * 1000)
            if left <= 0:
                return None
            event = pygame.event.wait(left)
            if event.type == pygame.QUIT:
                self.closed = True
                return None
            if event.type == pygame.KEYDOWN:
                return int(event.key)
            if event.type == pygame.WINDOWEXPOSED:
                pygame.display.flip()

    def save_screenshot(self, path: str | PathLike[str]) -> None:
        """Save the whole window, status bar included, as an image (format from the file extension)."""
        if self._screen is None:
            raise RuntimeError("the window has not shown a frame yet")
        pygame = _pygame()

        pygame.image.save(self._screen, str(path))

    def snapshot(self) -> np.ndarray:
        """The window's pixels, status bar included, as an ``(H, W, 3)`` uint8 array (for GIFs and tests)."""
        if self._screen is None:
            raise RuntimeError("the window has not shown a frame yet")
        pygame = _pygame()

        return pygame.surfarray.array3d(self._screen).swapaxes(0, 1).copy()

    def close(self) -> None:
        """Close the window; safe to call more than once."""
        self.closed = True
        if self._screen is None:
            return
        pygame = _pygame()

        self._screen = None
        self._font = None
        self._clock = None
        pygame.font.quit()
        pygame.display.quit()
