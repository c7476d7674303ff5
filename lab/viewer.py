"""The interactive viewer: a pygame loop that plays a stream of frames with a HUD and keyboard control.

It shows a :class:`FrameSource`: a recorded episode (:class:`ReplaySource`, seekable) for
``lab replay``, or a live stream (:class:`LiveSource`, an agent acting in an environment; not
seekable but restartable) for ``lab watch``. :class:`Overlay` s draw over the frame and are toggled
with a key; :func:`value_overlay` is a value heatmap with greedy-action arrows for grid worlds.

Keys: space pause/resume, right arrow one step (pauses), ``+``/``-`` speed, ``r`` restart,
``s`` screenshot (PNG), ``q``/Esc quit; seekable sources also: left arrow one step back,
Home/End, PageUp/PageDown or ``[``/``]`` ten steps back/forward.

The loop never blocks for longer than a frame: it waits for keys with a timeout and redraws (which
pumps the window's events) every time round. Keys come from a *key reader*, a function that
waits up to ``timeout_ms`` and returns a key name (pygame's, e.g. ``"space"``, ``"page up"``) or
None when the time ran out; tests pass their own to drive the loop headless.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from envs.grid.model import GridModel
    from envs.window import FrameWindow
    from lab.replays import Episode

KeyReader = Callable[[int], "str | None"]

FPS_STEPS: tuple[float, ...] = (0.5, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128)
SEEK_STEP = 10
IDLE_MS = 250  # how long a paused viewer waits for a key before redrawing
MESSAGE_SECONDS = 4.0

QUIT_KEYS = frozenset({"q", "escape"})
FASTER_KEYS = frozenset({"+", "=", "[+]"})
SLOWER_KEYS = frozenset({"-", "[-]"})
BACK_SEEK_KEYS = frozenset({"page up", "["})
FORWARD_SEEK_KEYS = frozenset({"page down", "]"})


@dataclass(frozen=True)
class ViewFrame:
    """One frame to show and what the HUD says about it.

    ``step`` counts actions since the episode's reset (0 = just reset); ``action``, ``reward`` are
    those of the step that led here (None at reset); ``total`` is the return so far; ``state`` the
    environment state index when known (overlays use it); ``note`` says how an episode ended;
    ``obs`` is the observation the agent acts on next (live streams only; action panels read it).
    """

    frame: np.ndarray
    step: int
    episode: int | str | None = None
    action: str | None = None
    reward: float | None = None
    total: float = 0.0
    state: int | None = None
    note: str = ""
    obs: Any = field(default=None, repr=False, compare=False)  # what the agent acts on next (live only)


class FrameSource:
    """What the viewer plays. Subclasses provide :meth:`current`, :meth:`forward` and :meth:`restart`;
    seekable ones also :attr:`length`, :attr:`position` and :meth:`seek`."""

    title: str = ""
    seekable: bool = False

    def current(self) -> ViewFrame:
        raise NotImplementedError

    def forward(self) -> bool:
        """Move one frame on; False (staying put) at the end."""
        raise NotImplementedError

    def restart(self) -> None:
        raise NotImplementedError

    @property
    def length(self) -> int:
        """The index of the last frame (the number of steps), seekable sources only."""
        raise TypeError(f"{type(self).__name__} is not seekable")

    @property
    def position(self) -> int:
        raise TypeError(f"{type(self).__name__} is not seekable")

    def seek(self, t: int) -> None:
        raise TypeError(f"{type(self).__name__} is not seekable")


class ReplaySource(FrameSource):
    """A recorded episode: frame ``t`` shows the state after ``t`` steps, ``0..episode.length``."""

    seekable = True

    def __init__(
        self,
        episode: Episode,
        frames: Sequence[np.ndarray],
        action_names: Sequence[str] = (),
        ending: str = "",
        title: str = "",
        label: str | None = None,
    ) -> None:
        if len(frames) != episode.length + 1:
            raise ValueError(
                f"an episode of {episode.length} steps has {episode.length + 1} frames; got {len(frames)}"
            )
        self.episode = episode
        self.frames = frames
        self.action_names = tuple(action_names)
        self.ending = ending
        self.title = title or episode.env_id
        self.label = label if label is not None else f"{episode.source}, seed {episode.seed}"
        self._returns = np.concatenate([[0.0], np.cumsum(episode.rewards)])
        self._states = episode.infos.get("state")
        self._t = 0

    @property
    def length(self) -> int:
        return self.episode.length

    @property
    def position(self) -> int:
        return self._t

    def seek(self, t: int) -> None:
        self._t = int(np.clip(t, 0, self.length))

    def forward(self) -> bool:
        if self._t >= self.length:
            return False
        self._t += 1
        return True

    def restart(self) -> None:
        self._t = 0

    def _action_name(self, action: np.ndarray) -> str:
        if action.ndim == 0 and action.dtype.kind in "iu" and 0 <= int(action) < len(self.action_names):
            return self.action_names[int(action)]
        return str(action.tolist())

    def current(self) -> ViewFrame:
        t, ep = self._t, self.episode
        return ViewFrame(
            frame=np.asarray(self.frames[t]),
            step=t,
            episode=self.label,
            action=None if t == 0 else self._action_name(ep.actions[t - 1]),
            reward=None if t == 0 else float(ep.rewards[t - 1]),
            total=float(self._returns[t]),
            state=None if self._states is None or self._states.ndim != 1 else int(self._states[t]),
            note=self.ending if t == self.length else "",
        )


class LiveSource(FrameSource):
    """A live stream: ``factory()`` returns a fresh iterator of :class:`ViewFrame` (e.g. an agent
    acting in an environment, episode after episode); :meth:`restart` calls it again."""

    def __init__(self, factory: Callable[[], Iterator[ViewFrame]], title: str = "") -> None:
        self.factory = factory
        self.title = title
        self._it: Iterator[ViewFrame] = iter(())
        self._view: ViewFrame | None = None
        self.restart()

    def restart(self) -> None:
        close = getattr(self._it, "close", None)
        if close is not None:
            close()
        self._it = iter(self.factory())
        try:
            self._view = next(self._it)
        except StopIteration:
            raise ValueError("the live source yielded no frame") from None

    def forward(self) -> bool:
        try:
            self._view = next(self._it)
        except StopIteration:
            return False
        return True

    def current(self) -> ViewFrame:
        assert self._view is not None
        return self._view


def short_number(x: float, sign: bool = False) -> str:
    """``x`` for the HUD: two decimals at most, trailing zeros dropped (``-13``, ``0.92``, ``46.81``);
    values too small for that keep two significant digits (``0.0012``)."""
    text = f"{x:+.2f}" if sign else f"{x:.2f}"
    if abs(x) < 0.005 and x != 0:
        text = f"{x:+.2g}" if sign else f"{x:.2g}"
    elif "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def episode_stream(
    env: Any, act: Callable[[Any, dict[str, Any]], Any], seed: int = 0, episodes: int | None = None
) -> Iterator[ViewFrame]:
    """Frames of ``env`` (made with ``render_mode="rgb_array"``) acted on by ``act(obs, info)``,
    episode after episode (``reset(seed=seed + k)`` for episode ``k``; forever when ``episodes`` is None).

    For a :class:`LiveSource`: ``LiveSource(lambda: episode_stream(env, act), title=...)``.
    On the lab's grid worlds actions are named and the last frame says how the episode ended.
    """
    from lab.action_names import action_names

    grid = env.unwrapped
    names = action_names(env)
    for k in itertools.count() if episodes is None else range(episodes):
        obs, info = env.reset(seed=seed + k)
        total, t, done = 0.0, 0, False
        state = info.get("state")
        yield ViewFrame(env.render(), 0, episode=k + 1, state=state, obs=obs)
        while not done:
            action = act(obs, info)
            obs, reward, terminated, truncated, info = env.step(action)
            t, total, done = t + 1, total + float(reward), bool(terminated or truncated)
            state = info.get("state")
            note = ""
            if done:
                note = "out of time" if not terminated else "episode over"
                if state is not None and hasattr(grid, "model"):
                    from lab.play import ending

                    note = ending(grid, int(state), bool(terminated))
            discrete = isinstance(action, (int, np.integer)) and 0 <= action < len(names)
            name = names[int(action)] if discrete else str(np.asarray(action).tolist())
            yield ViewFrame(
                env.render(), t, k + 1, name, float(reward), total, state, note, obs=None if done else obs
            )


@dataclass
class Overlay:
    """A drawing over the frame, toggled with ``key``: ``draw(frame, view)`` returns the new frame;
    ``describe(view)``, when given, adds a few words to the HUD while the overlay is on."""

    key: str
    name: str
    draw: Callable[[np.ndarray, ViewFrame], np.ndarray]
    enabled: bool = False
    describe: Callable[[ViewFrame], str] | None = None


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
    """Plays a :class:`FrameSource` in a window until the user quits (see the module docstring for keys).

    ``screenshot_dir`` / ``screenshot_stem`` say where ``s`` saves PNGs (default: the current folder,
    the title). ``window`` and ``keys`` default to a new :class:`~envs.window.FrameWindow` and its
    keyboard; ``clock`` to ``time.monotonic`` (tests may pass their own).
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
        self._own_window = window is None
        self.window = window if window is not None else FrameWindow(f"lab - {source.title}", scale=scale)
        self.keys = keys if keys is not None else window_keys(self.window)
        self.clock = clock
        self.message = ""
        self._message_until = 0.0
        self.screenshots: list[Path] = []
        self.at_end = False

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
        view = self.source.current()
        frame = view.frame
        for overlay in self.overlays:
            if overlay.enabled:
                frame = overlay.draw(np.array(frame, dtype=np.uint8), view)
        return frame

    def hud(self) -> list[str]:
        """The status lines under the frame."""
        view, source = self.source.current(), self.source
        episode = f"episode {view.episode}" if isinstance(view.episode, int) else view.episode
        head = source.title + (f"   {episode}" if episode is not None else "")
        step = f"step {view.step}" + (f"/{source.length}" if source.seekable else "")
        action = "-" if view.action is None else view.action
        reward = "-" if view.reward is None else short_number(view.reward, sign=True)
        line2 = f"{step}   action {action}   reward {reward}   return {short_number(view.total)}"
        if view.note:
            line2 += f"   {view.note}"
        state = "paused" if not self.playing else "playing"
        if self.at_end:
            state = "end (space plays again)"
        line3 = f"{self.fps:g} fps   {state}"
        for overlay in self.overlays:
            if overlay.enabled and overlay.describe is not None:
                line3 += f"   {overlay.describe(view)}"
        if self.message and self.clock() < self._message_until:
            line3 += f"   {self.message}"
        seek = "  <- step back  [ ] -/+10  Home End" if source.seekable else ""
        toggles = "".join(f"  {o.key} {o.name}" for o in self.overlays)
        keys1 = f"space pause  -> step{seek}"
        keys2 = f"+/- speed  r restart  s screenshot{toggles}  q quit"
        return [head, line2, line3, keys1, keys2]

    def draw(self) -> None:
        self.window.show(self.frame(), self.hud())

    def screenshot(self) -> Path:
        """Save the window (HUD included) as a PNG beside the replay or in the current folder."""
        import imageio.v3 as iio

        from lab.files import atomic_path

        view = self.source.current()
        base = f"{self.screenshot_stem}_step{view.step:04d}"
        for n in itertools.count():
            path = self.screenshot_dir / (f"{base}.png" if n == 0 else f"{base}_{n}.png")
            if not path.exists():
                break
        with atomic_path(path) as tmp:
            iio.imwrite(tmp, self.window.snapshot(), extension=".png")
        self.screenshots.append(path)
        self.say(f"saved {path.name}")  # the full path goes to stdout; the status bar is narrow
        print(f"screenshot: {path}", flush=True)
        return path


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text.removeprefix("lab/")).strip("-") or "lab"


def _next_speed(fps: float, faster: bool) -> float:
    if faster:
        return next((f for f in FPS_STEPS if f > fps + 1e-9), FPS_STEPS[-1])
    return next((f for f in reversed(FPS_STEPS) if f < fps - 1e-9), FPS_STEPS[0])


# ----- the value heatmap -----

_ARROWS: dict[tuple[int, int, int], np.ndarray] = {}


def _arrow_mask(tile: int, dr: int, dc: int) -> np.ndarray:
    """Antialiased coverage ``(tile, tile)`` of an arrow pointing along (row ``dr``, column ``dc``)."""
    key = (tile, dr, dc)
    if key not in _ARROWS:
        d = np.array([dc, dr], dtype=np.float64)
        d /= np.linalg.norm(d)
        perp = np.array([-d[1], d[0]])
        centre = np.full(2, tile / 2)
        tip, tail = centre + 0.32 * tile * d, centre - 0.30 * tile * d
        base = tip - 0.26 * tile * d
        ys, xs = np.mgrid[0:tile, 0:tile] + 0.5
        p = np.stack([xs, ys], axis=-1)
        # the shaft: distance to the segment tail-base, minus its half width
        ab = base - tail
        h = np.clip(((p - tail) @ ab) / (ab @ ab), 0, 1)
        shaft = np.linalg.norm(p - tail - h[..., None] * ab, axis=-1) - max(0.9, 0.055 * tile)
        # the head: a triangle, as the largest of its three edges' signed distances
        corners = [tip, base + 0.2 * tile * perp, base - 0.2 * tile * perp]
        edges = []
        for a, b in zip(corners, corners[1:] + corners[:1], strict=True):
            e = b - a
            n = np.array([e[1], -e[0]]) / np.linalg.norm(e)
            inner = np.mean(corners, axis=0)
            if (inner - a) @ n > 0:
                n = -n
            edges.append((p - a) @ n)
        head = np.max(edges, axis=0)
        _ARROWS[key] = np.clip(0.5 - np.minimum(shaft, head), 0.0, 1.0)
    return _ARROWS[key]


def tinted_states(model: GridModel) -> np.ndarray:
    """Which states the heatmap colours: not terminal, not on a goal or pit cell (those keep their look)."""
    from envs.grid.layout import Tile

    tiles = model.layout.tiles[model.state_row, model.state_col]
    return ~model.terminal & (tiles != Tile.GOAL) & (tiles != Tile.PIT)


def value_heatmap(
    frame: np.ndarray,
    model: GridModel,
    values: np.ndarray,
    policy: np.ndarray | None = None,
    phase: int = 0,
    *,
    agent_state: int | None = None,
    alpha: float = 0.6,
    value_range: tuple[float, float] | None = None,
    cmap: str = "viridis",
) -> np.ndarray:
    """``frame`` with every non-terminal cell of ``phase`` tinted by its value and a greedy arrow.

    ``values[S]`` and ``policy[S]`` (an action per state) are indexed like the model's states;
    colours span ``value_range`` (default: the smallest to largest value of the tinted states, in
    every phase) on matplotlib's ``cmap``. Goal and pit cells, terminal states and ``agent_state``'s
    cell are left as drawn, so their pictures stay readable. Returns a new uint8 frame.
    """
    from matplotlib import colormaps

    frame = np.asarray(frame)
    h, w = model.layout.shape
    t = frame.shape[0] // h
    if frame.ndim != 3 or frame.shape != (h * t, w * t, 3) or t < 1:
        raise ValueError(
            f"a frame of this {h}x{w} map is ({h}t, {w}t, 3) for a tile size t; got {frame.shape}"
        )
    values = np.asarray(values, dtype=np.float64)
    if values.shape != (model.n_states,):
        raise ValueError(f"values must have one entry per state ({model.n_states}); got shape {values.shape}")
    if not 0 <= phase < model.n_phases:
        raise ValueError(f"phase must lie in [0, {model.n_phases - 1}]; got {phase}")
    shown = tinted_states(model)
    if value_range is None:
        finite = values[shown & np.isfinite(values)]
        value_range = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    states = phase * model.n_cells + np.arange(model.n_cells)
    states = states[shown[states] & (states != agent_state)]
    lo, hi = value_range
    norm = np.clip((values[states] - lo) / (hi - lo), 0, 1) if hi > lo else np.full(len(states), 0.5)
    norm = np.nan_to_num(norm, nan=0.0)
    colours = colormaps[cmap](norm)[:, :3]
    out = frame.astype(np.float32)
    blocks = out.reshape(h, t, w, t, 3)
    rows, cols = model.state_row[states], model.state_col[states]
    blocks[rows, :, cols] = (1 - alpha) * blocks[rows, :, cols] + alpha * 255 * colours[:, None, None, :]
    if policy is not None and t >= 6:
        policy = np.asarray(policy)
        light = colours @ np.array([0.2126, 0.7152, 0.0722]) > 0.45
        for i, s in enumerate(states):
            dr, dc = model.moves[int(policy[s])]
            mask = _arrow_mask(t, dr, dc)[..., None]
            ink = np.array((25, 25, 35) if light[i] else (250, 250, 250), dtype=np.float32)
            cell = blocks[rows[i], :, cols[i]]
            blocks[rows[i], :, cols[i]] = (1 - mask) * cell + mask * ink
    return np.round(out).clip(0, 255).astype(np.uint8)


def value_overlay(
    model: GridModel,
    values: np.ndarray | Callable[[], tuple[np.ndarray, np.ndarray | None]],
    policy: np.ndarray | None = None,
    *,
    key: str = "v",
    name: str = "values",
    enabled: bool = False,
    alpha: float = 0.6,
) -> Overlay:
    """A toggled :func:`value_heatmap` for a grid world.

    ``values`` is ``V[S]`` (with ``policy[S]``), or a function returning ``(V, policy)``, called at
    each draw (so a learning agent's current estimates show) or, for an expensive plan, once and
    cached by the caller. The key/door phase and the agent's cell come from the frame's ``state``.
    """

    def current() -> tuple[np.ndarray, np.ndarray | None]:
        return values() if callable(values) else (values, policy)

    def draw(frame: np.ndarray, view: ViewFrame) -> np.ndarray:
        V, pi = current()
        phase = 0 if view.state is None else int(model.state_phase[view.state])
        return value_heatmap(frame, model, V, pi, phase, agent_state=view.state, alpha=alpha)

    def describe(view: ViewFrame) -> str:
        V, _ = current()
        here = "" if view.state is None else f"V here {V[view.state]:.3g}, "
        live = V[tinted_states(model)]
        span = f"{live.min():.3g} to {live.max():.3g}" if live.size else "-"
        return f"{here}range {span}"

    return Overlay(key=key, name=name, draw=draw, enabled=enabled, describe=describe)


def cached(fn: Callable[[], Any]) -> Callable[[], Any]:
    """``fn`` computed on the first call only (for a plan that is costly and never changes)."""
    box: list[Any] = []

    def get() -> Any:
        if not box:
            box.append(fn())
        return box[0]

    return get
