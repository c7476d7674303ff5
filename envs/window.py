"""A small pygame window that shows RGB frames with a few lines of status text below them.

pygame is imported lazily, inside the methods, so importing this module costs nothing and works
where no display (or no pygame) is available. :func:`has_display` says whether a real window can
open; :func:`with_status_bar` draws the same picture (frame and status lines) off-screen, for videos.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
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


SCREEN_MARGIN = (40, 80)  # pixels left free around a fitted window (title bar, panels, docks)


def quiet_sdl() -> None:
    """Keep SDL and pygame quiet: no support prompt, and a private ``XDG_RUNTIME_DIR`` when none is
    set (SDL warns "XDG_RUNTIME_DIR is invalid or not set" otherwise). Call before pygame starts."""
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if sys.platform.startswith("linux") and not (runtime and os.path.isdir(runtime)):
        private = tempfile.mkdtemp(prefix="lab-xdg-")  # mode 0700, as SDL wants
        atexit.register(shutil.rmtree, private, True)
        os.environ["XDG_RUNTIME_DIR"] = private


HEADLESS_DRIVERS = ("dummy", "offscreen")  # SDL's video drivers that show nothing


def has_display() -> bool:
    """Whether a real window can open here: False on a headless Linux machine, with SDL's dummy or
    offscreen driver, or when DISPLAY names a server that cannot be reached (SDL then falls back to
    its offscreen driver without a word, and a window would wait, unseen, for keys)."""
    if os.environ.get("SDL_VIDEODRIVER") in HEADLESS_DRIVERS:
        return False
    named = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    if sys.platform.startswith("linux") and not named:
        return False  # the fast path: no need to start SDL
    return _video_driver() not in (None, *HEADLESS_DRIVERS)


def _video_driver() -> str | None:
    """The video driver SDL picks here (None when none starts); a display started here is stopped again."""
    pygame = _pygame()
    if pygame.display.get_init():  # a window is open: ask, and leave it be
        return pygame.display.get_driver()
    try:
        pygame.display.init()
    except pygame.error:
        return None
    try:
        return pygame.display.get_driver()
    finally:
        pygame.display.quit()


def _pygame() -> ModuleType:
    quiet_sdl()
    import pygame

    return pygame


def _font() -> pygame.font.Font:
    pygame = _pygame()
    if not pygame.font.get_init():
        pygame.font.init()
    return pygame.font.Font(None, FONT_SIZE)


def wrap(font: pygame.font.Font, lines: Sequence[str], width: int) -> list[str]:
    """``lines`` broken at spaces so that each row fits ``width`` pixels of status bar (a single
    word wider than that keeps its own row)."""
    room = width - 2 * PAD
    rows: list[str] = []
    for line in map(str, lines):
        if font.size(line.rstrip())[0] <= room:  # most lines fit: one measurement each
            rows.append(line.rstrip())
            continue
        row = ""
        for word in line.split(" "):
            candidate = f"{row} {word}" if row else word
            if row.strip() and word and font.size(candidate.rstrip())[0] > room:
                rows.append(row.rstrip())
                row = word
            else:
                row = candidate
        rows.append(row.rstrip())
    return rows


def _paint(
    target: pygame.Surface,
    font: pygame.font.Font,
    frame: np.ndarray,
    size: tuple[int, int],
    rows: Sequence[str],
) -> None:
    """Draw ``frame`` scaled to ``size`` (centred at the top) and the status ``rows`` under it."""
    pygame = _pygame()
    surface = pygame.surfarray.make_surface(frame.astype(np.uint8, copy=False).swapaxes(0, 1))
    if size != (frame.shape[1], frame.shape[0]):
        whole = size[0] % frame.shape[1] == 0 and size[1] % frame.shape[0] == 0
        surface = (pygame.transform.scale if whole else pygame.transform.smoothscale)(surface, size)
    target.fill(BAR_BG)
    target.blit(surface, ((target.get_width() - size[0]) // 2, 0))
    y = size[1] + PAD
    for row in rows:
        target.blit(font.render(str(row), True, BAR_TEXT), (PAD, y))
        y += font.get_linesize()


def with_status_bar(frame: np.ndarray, lines: Sequence[str], min_width: int = 0) -> np.ndarray:
    """``frame`` with the status ``lines`` drawn under it as a window shows them (no display needed):
    a new ``(H + bar, max(W, min_width), 3)`` uint8 array."""
    pygame = _pygame()
    frame = np.asarray(frame)
    font = _font()
    width = max(frame.shape[1], min_width)
    rows = wrap(font, lines, width)
    bar = len(rows) * font.get_linesize() + 2 * PAD if rows else 0
    canvas = pygame.Surface((width, frame.shape[0] + bar))
    _paint(canvas, font, frame, (frame.shape[1], frame.shape[0]), rows)
    return pygame.surfarray.array3d(canvas).swapaxes(0, 1).copy()


class FrameWindow:
    """Shows ``(H, W, 3)`` uint8 frames, upscaled ``scale`` times (nearest neighbour).

    The window opens on the first :meth:`show` and grows to the largest frame shown so far (at least
    ``min_width`` wide; a smaller frame sits centred on the bar colour); the status bar grows to the
    most lines shown so far. Neither shrinks, so the window does not jump between frames or scenes.
    A window that would not fit the screen is scaled down to fit it (``fit_to_screen``; not under
    SDL's dummy driver, so off-screen snapshots keep the frame's size). When the user closes it the
    window closes (:meth:`close`), and ``closed`` turns true, as after :meth:`close`; :meth:`show`
    then does nothing.
    """

    def __init__(
        self,
        title: str,
        fps: float | None = None,
        scale: int = 1,
        min_width: int = 480,
        fit_to_screen: bool = True,
    ) -> None:
        if scale < 1:
            raise ValueError(f"scale must be a positive integer; got {scale}")
        self.title = title
        self.fps = fps
        self.scale = int(scale)
        self.min_width = int(min_width)
        self.fit_to_screen = fit_to_screen
        self.closed = False
        self.shrink = 1.0  # below 1 when the window was scaled down to fit the screen
        self._screen: pygame.Surface | None = None
        self._font: pygame.font.Font | None = None
        self._clock: pygame.time.Clock | None = None
        self._frame_size: tuple[int, int] = (0, 0)  # the largest scaled frame so far, before shrinking
        self._opened_for: tuple[int, int] = (0, 0)  # the frame size the window was last sized for
        self._bar_lines = 0

    def reserve(self, height: int, width: int) -> None:
        """Make room for frames up to ``height`` x ``width`` pixels before they come (one window size
        for a series of scenes)."""
        w, h = width * self.scale, height * self.scale
        self._frame_size = (max(self._frame_size[0], w), max(self._frame_size[1], h))

    def _open(self, n_lines: int) -> None:
        pygame = _pygame()

        if self._screen is None:
            pygame.display.init()
            pygame.display.set_caption(self.title)
            self._font = _font()
            self._clock = pygame.time.Clock()
        self._bar_lines = max(self._bar_lines, n_lines)
        self._opened_for = self._frame_size
        w, h = self._frame_size
        bar = self._bar_height()
        self.shrink = 1.0
        if self.fit_to_screen and pygame.display.get_driver() not in HEADLESS_DRIVERS:
            screen_w, screen_h = pygame.display.get_desktop_sizes()[0]
            room_w, room_h = screen_w - SCREEN_MARGIN[0], screen_h - SCREEN_MARGIN[1] - bar
            self.shrink = min(1.0, room_w / max(w, 1), room_h / max(h, 1))
        area = self._area()
        self._screen = pygame.display.set_mode((max(area[0], self.min_width), area[1] + bar))

    def _area(self) -> tuple[int, int]:
        """The frame area's size on screen (after shrinking to fit)."""
        w, h = self._frame_size
        return max(1, round(w * self.shrink)), max(1, round(h * self.shrink))

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
        self.reserve(frame.shape[0], frame.shape[1])
        if self._screen is None or self._frame_size != self._opened_for or len(lines) > self._bar_lines:
            self._open(len(lines))
        assert self._screen is not None and self._font is not None and self._clock is not None
        rows = wrap(self._font, lines, self._screen.get_width())
        if len(rows) > self._bar_lines:  # a long line took two rows: the bar grows to fit
            self._open(len(rows))
        size = (
            max(1, round(frame.shape[1] * self.scale * self.shrink)),
            max(1, round(frame.shape[0] * self.scale * self.shrink)),
        )
        _paint(self._screen, self._font, frame, size, rows)
        pygame.display.flip()
        pygame.event.pump()
        if pygame.event.peek(pygame.QUIT):  # closed by the user (a human-mode env's window too): gone
            self.close()
            return
        if self.fps:
            self._clock.tick(self.fps)

    def wrap(self, lines: Sequence[str], width: int) -> list[str]:
        """``lines`` broken at spaces to fit ``width`` pixels of status bar (:func:`wrap`)."""
        assert self._font is not None
        return wrap(self._font, lines, width)

    def poll(self) -> list[pygame.event.Event]:
        """The pending events; a QUIT among them closes the window."""
        if self._screen is None:
            return []
        pygame = _pygame()

        events = pygame.event.get()
        if any(e.type == pygame.QUIT for e in events):
            self.close()
        return events

    def wait_key(self, timeout_ms: int = 50) -> int | None:
        """Wait up to ``timeout_ms`` for a key press and return its key code or None (QUIT closes the
        window)."""
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
                self.close()
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
        pygame.display.quit()
