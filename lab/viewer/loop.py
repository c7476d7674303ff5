"""The viewer's loop: a pygame window that plays a :class:`~lab.viewer.sources.FrameSource` with a HUD
and keyboard control.

Keys: space pause/resume, right arrow one step (pauses), ``+``/``-`` speed, ``r`` restart,
``s`` screenshot (PNG, in the current folder), ``q``/Esc quit; seekable sources also: left arrow
one step back, Home/End, PageUp/PageDown or ``[``/``]`` ten steps back/forward.

The loop never blocks for longer than a frame: it waits for keys with a timeout and redraws (which
pumps the window's events) every time round. Keys come from a *key reader*, a function that
waits up to ``timeout_ms`` and returns a key name (pygame's, e.g. ``"space"``, ``"page up"``) or
None when the time ran out; tests pass their own to drive the loop headless.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lab.core.errors import LabError
from lab.core.limits import MAX_VIDEO_BYTES
from lab.viewer.overlays import Overlay
from lab.viewer.sources import FrameSource, ViewFrame

if TYPE_CHECKING:
    from envs.window import FrameWindow

KeyReader = Callable[[int], "str | None"]

FPS_STEPS: tuple[float, ...] = (0.5, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128)
SEEK_STEP = 10
IDLE_MS = 250  # how long a paused viewer waits for a key before redrawing
MESSAGE_SECONDS = 4.0
HUD_MIN_WIDTH = 360  # pixels: an exported video's status text wraps less on a small world
END_HOLD_SECONDS = 1.5  # with ``quit_at_end``, the last frame stays this long before the viewer closes

QUIT_KEYS = frozenset({"q", "escape"})
FASTER_KEYS = frozenset({"+", "=", "[+]"})
SLOWER_KEYS = frozenset({"-", "[-]"})
BACK_SEEK_KEYS = frozenset({"page up", "["})
FORWARD_SEEK_KEYS = frozenset({"page down", "]"})


def short_number(x: float, sign: bool = False) -> str:
    """``x`` for the HUD: two decimals at most, trailing zeros dropped (``-13``, ``0.92``, ``46.81``);
    values too small for that keep two significant digits (``0.0012``)."""
    text = f"{x:+.2f}" if sign else f"{x:.2f}"
    if abs(x) < 0.005 and x != 0:
        text = f"{x:+.2g}" if sign else f"{x:.2g}"
    elif "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def window_keys(window: FrameWindow) -> KeyReader:
    """A key reader on a :class:`~envs.window.FrameWindow` (pygame key names)."""

    def read(timeout_ms: int) -> str | None:
        code = window.wait_key(max(1, timeout_ms))
        if code is None:
            return None
        import pygame

        return pygame.key.name(code)

    return read


class Viewer:
    """Plays a :class:`FrameSource` in a window until the user quits (the module docstring lists the keys).

    ``screenshot_dir`` / ``screenshot_stem`` say where ``s`` saves PNGs (default: the current folder,
    the title). With ``quit_at_end`` the viewer closes by itself once the source ends while playing
    (``lab watch --episodes N``), after showing the last frame for a moment. ``window`` and ``keys``
    default to a new :class:`~envs.window.FrameWindow` and its keyboard; ``clock`` to
    ``time.monotonic`` (tests may pass their own).
    """

    def __init__(
        self,
        source: FrameSource,
        fps: float = 8.0,
        *,
        overlays: Sequence[Overlay] = (),
        screenshot_dir: str | Path | None = None,
        screenshot_stem: str | None = None,
        scale: int = 1,
        paused: bool = False,
        quit_at_end: bool = False,
        window: FrameWindow | None = None,
        keys: KeyReader | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        from envs.window import FrameWindow

        if fps <= 0:
            raise ValueError(f"fps must be positive; got {fps}")
        self.source = source
        self.fps = float(fps)
        self.overlays = list(overlays)
        self.screenshot_dir = Path(screenshot_dir) if screenshot_dir is not None else Path.cwd()
        self.screenshot_stem = screenshot_stem or _slug(source.title or "lab")
        self.playing = not paused
        self.quit_at_end = quit_at_end
        self._own_window = window is None
        self.window = window if window is not None else FrameWindow(f"lab - {source.title}", scale=scale)
        self.keys = keys if keys is not None else window_keys(self.window)
        self.clock = clock
        self.message = ""
        self._message_until = 0.0
        self.screenshots: list[Path] = []
        self.at_end = False
        self.closing = False  # played to the end with ``quit_at_end``: the last frame is held, then it closes

    # ----- the loop -----

    def run(self) -> None:
        """Show the source until q, Esc or the window is closed."""
        try:
            self.draw()
            deadline = self.clock() + 1.0 / self.fps
            while not self.window.closed:
                now = self.clock()
                wait = max(0.0, deadline - now) if self.playing else IDLE_MS / 1000
                key = self.keys(int(wait * 1000))
                if self.window.closed:
                    break
                if key is None:  # the wait ran out: time for the next frame
                    if self.playing:
                        self._advance()
                        deadline = max(deadline + 1.0 / self.fps, self.clock())
                        if self.at_end and self.quit_at_end:
                            self.closing = True
                            self.draw()
                            self._hold_then_quit()
                            break
                    self.draw()
                    continue
                was_playing, fps = self.playing, self.fps
                if not self.handle(key):
                    break
                if self.playing and (not was_playing or fps != self.fps):
                    deadline = self.clock() + 1.0 / self.fps
                self.draw()
        finally:
            if self._own_window:
                self.window.close()

    def _hold_then_quit(self) -> None:
        """Show the last frame for :data:`END_HOLD_SECONDS` (any key cuts it short)."""
        until = self.clock() + END_HOLD_SECONDS
        while not self.window.closed and (left := until - self.clock()) > 0:
            if self.keys(max(1, int(left * 1000))) is not None:
                return

    def _advance(self) -> None:
        if self.source.forward():
            self.at_end = False
        else:
            self.playing, self.at_end = False, True

    def handle(self, key: str) -> bool:
        """Act on one key; False means quit."""
        source = self.source
        if key in QUIT_KEYS:
            return False
        if key == "space":
            if self.at_end or (source.seekable and source.position >= source.length):
                source.restart()
                self.at_end = False
            self.playing = not self.playing
        elif key == "right":
            self.playing = False
            self._advance()
        elif key in FASTER_KEYS or key in SLOWER_KEYS:
            self.fps = _next_speed(self.fps, faster=key in FASTER_KEYS)
        elif key == "r":
            source.restart()
            self.at_end = False
        elif key == "s":
            self.screenshot()
        elif key in ("left", "home", "end") or key in BACK_SEEK_KEYS or key in FORWARD_SEEK_KEYS:
            if not source.seekable:
                self.say("a live stream cannot seek (r restarts it)")
                return True
            self.at_end = False
            if key == "left":
                self.playing = False
                source.seek(source.position - 1)
            elif key == "home":
                source.seek(0)
            elif key == "end":
                source.seek(source.length)
            else:
                source.seek(source.position + (SEEK_STEP if key in FORWARD_SEEK_KEYS else -SEEK_STEP))
        else:
            for overlay in self.overlays:
                if key == overlay.key:
                    overlay.enabled = not overlay.enabled
                    self.say(f"{overlay.name} {'on' if overlay.enabled else 'off'}")
        return True

    # ----- drawing -----

    def say(self, message: str) -> None:
        """Show ``message`` on the HUD's status line for a few seconds."""
        self.message = message
        self._message_until = self.clock() + MESSAGE_SECONDS

    def frame(self) -> np.ndarray:
        """The current frame with the enabled overlays drawn over it."""
        return with_overlays(self.source.current(), self.overlays)

    def status(self) -> list[str]:
        """The HUD's two lines about the frame: what is playing, and the step, last action, reward, return."""
        return status_lines(self.source)

    def hud(self) -> list[str]:
        """The status lines under the frame: :meth:`status`, the speed and overlays, a line for
        messages (kept even when empty, so the window does not grow when one appears), the keys."""
        view, source = self.source.current(), self.source
        state = "paused" if not self.playing else "playing"
        if self.closing:
            state = "end (closing; any key closes now)"
        elif self.at_end:
            state = "end (space plays again)"
        line3 = f"{self.fps:g} fps   {state}"
        for overlay in self.overlays:
            if overlay.enabled and overlay.describe is not None:
                line3 += f"   {overlay.describe(view)}"
        message = self.message if self.message and self.clock() < self._message_until else ""
        seek = "  <- step back  [ ] -/+10  Home End" if source.seekable else ""
        toggles = "".join(f"  {o.key} {o.name}" for o in self.overlays)
        keys1 = f"space pause  -> step{seek}"
        keys2 = f"+/- speed  r restart  s screenshot{toggles}  q quit"
        return [*self.status(), line3, message, keys1, keys2]

    def draw(self) -> None:
        self.window.show(self.frame(), self.hud())

    def screenshot(self) -> Path | None:
        """Save the window (HUD included) as a PNG in ``screenshot_dir`` (the current folder unless
        given; never beside the replay, where the tracked examples live). A file system error is said
        on the HUD's message line, and the viewer goes on; None then."""
        view = self.source.current()
        try:
            path = save_screenshot(
                self.window, self.screenshot_dir, f"{self.screenshot_stem}_step{view.step:04d}"
            )
        except OSError as exc:
            self.say(screenshot_failure(self.screenshot_dir, exc))
            return None
        self.screenshots.append(path)
        self.say(f"saved {path.name}")  # the full path goes to stdout; the status bar is narrow
        return path


def save_screenshot(window: FrameWindow, folder: str | Path, base: str) -> Path:
    """Save ``window`` (status bar included) as ``folder/base.png`` (``base_1.png``... when taken) and
    print the path: the screenshot key of the viewer and of ``lab play``."""
    import imageio.v3 as iio

    from lab.core.files import atomic_path

    for n in itertools.count():
        path = Path(folder) / (f"{base}.png" if n == 0 else f"{base}_{n}.png")
        if not path.exists():
            break
    with atomic_path(path) as tmp:
        iio.imwrite(tmp, window.snapshot(), extension=".png")
    print(f"screenshot: {path}", flush=True)
    return path


def screenshot_failure(folder: str | Path, exc: OSError) -> str:
    """The HUD's line for a screenshot that could not be saved in ``folder`` (full disk, no permission)."""
    return f"could not save screenshot in {folder}: {exc.strerror or exc}"


def with_overlays(view: ViewFrame, overlays: Sequence[Overlay]) -> np.ndarray:
    """``view``'s frame with the enabled ``overlays`` drawn over it."""
    frame = view.frame
    for overlay in overlays:
        if overlay.enabled:
            frame = overlay.draw(np.array(frame, dtype=np.uint8), view)
    return frame


def video_frames(
    source: FrameSource,
    overlays: Sequence[Overlay] = (),
    hud: bool = False,
    check: Callable[[np.ndarray], None] | None = None,
) -> list[np.ndarray]:
    """Every frame of ``source`` from its start to its end, with the enabled overlays, and with
    ``hud`` the viewer's status lines under each (frames padded to one size, as videos need).
    ``check`` sees the first frame before the others are made (a video's size limit)."""
    from envs.window import BAR_BG, with_status_bar

    source.restart()
    frames, held = [], 0
    while True:
        view = source.current()
        frame = with_overlays(view, overlays)
        if hud:
            notes = [o.describe(view) for o in overlays if o.enabled and o.describe is not None]
            lines = [*status_lines(source), "   ".join(n for n in notes if n)]
            frame = with_status_bar(frame, [line for line in lines if line], min_width=HUD_MIN_WIDTH)
        frames.append(np.asarray(frame, dtype=np.uint8))
        if check is not None and len(frames) == 1:
            check(frames[0])
        held += frames[-1].nbytes
        if held > MAX_VIDEO_BYTES:  # the frames are written at the end, so they are held until then
            raise LabError(
                f"a video holds at most {MAX_VIDEO_BYTES / 2**30:g} GiB of frames; {len(frames):,} frames "
                "passed it: ask for fewer --episodes"
            )
        if not source.forward():
            break
    height, width = max(f.shape[0] for f in frames), max(f.shape[1] for f in frames)
    if any(f.shape[:2] != (height, width) for f in frames):
        padded = np.empty((len(frames), height, width, 3), dtype=np.uint8)
        padded[...] = BAR_BG
        for out, f in zip(padded, frames, strict=True):
            out[: f.shape[0], : f.shape[1]] = f
        frames = list(padded)
    return frames


def status_lines(source: FrameSource) -> list[str]:
    """What is playing and the current frame's step, the action and reward that led to it, and the
    return: the HUD's first two lines, also drawn under exported videos (``--hud``). The action is
    the last one taken ("last action"): an agent's panel beside it shows the next one's choice."""
    view = source.current()
    episode = f"episode {view.episode}" if isinstance(view.episode, int) else view.episode
    head = source.title + (f"   {episode}" if episode is not None else "")
    step = f"step {view.step}" + (f"/{source.length}" if source.seekable else "")
    action = "-" if view.action is None else view.action
    reward = "-" if view.reward is None else short_number(view.reward, sign=True)
    line = f"{step}   last action {action}   reward {reward}   return {short_number(view.total)}"
    return [head, line + (f"   {view.note}" if view.note else "")]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text.removeprefix("lab/")).strip("-") or "lab"


def _next_speed(fps: float, faster: bool) -> float:
    """The next speed of :data:`FPS_STEPS` above (``faster``) or below ``fps``; past the ladder's end
    (``--fps 1000``, ``--fps 0.01``) the speed stays, so faster never slows and slower never speeds up."""
    if faster:
        return next((f for f in FPS_STEPS if f > fps + 1e-9), max(fps, FPS_STEPS[-1]))
    return next((f for f in reversed(FPS_STEPS) if f < fps - 1e-9), min(fps, FPS_STEPS[0]))
