"""``lab demo``: grid worlds come alive, each walked by the optimal (value-iteration) or a random policy.

With a display it opens one window (q or Esc quits); without one (or with ``--gif``) it renders
off-screen, with a progress bar, and writes an animated GIF of what the window shows.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lab.core.environments import make_env, resolve_env_id
from lab.core.errors import LabError


@dataclass(frozen=True)
class Scene:
    env_id: str
    title: str
    kwargs: dict[str, Any] = field(default_factory=dict)


SCENES: tuple[Scene, ...] = (
    Scene("lab/Maze-v0", "a 15x15 maze", {"size": 15, "maze_seed": 7}),
    Scene("lab/KeyDoor-v0", "key, door, goal"),
    Scene("lab/IceLake8x8-v0", "FrozenLake's slippery 8x8 lake"),
    Scene("lab/WindyGrid-v0", "the windy grid with king's moves", {"king_moves": True}),
    Scene("lab/CliffWalk-v0", "the cliff"),
)
HOLD_FRAMES = 6  # the last frame of an episode stays this many frames
TOUR_HEIGHT = 420  # pixels: the tour draws every world at most this tall, so a flat one (the cliff)
# does not sit on a canvas made for a square one (the maze) with two thirds of it empty
GIF_MIN_WIDTH = 360  # pixels: room for the status lines beside a small world
PAD = 6  # pixels of margin kept around the content when a GIF is cropped


def episode_frames(scene: Scene, policy: str, seed: int) -> Iterator[tuple[np.ndarray, list[str]]]:
    """Frames and status lines of one episode of ``scene`` under the planner's or a random policy."""
    from agents.planning import value_iteration

    env = make_env(scene.env_id, scene.kwargs, render_mode="rgb_array")
    try:
        rng = np.random.default_rng(seed)
        plan = value_iteration(env.unwrapped.transition_model(), gamma=0.99) if policy == "optimal" else None
        _, info = env.reset(seed=seed)
        who = "optimal policy (value iteration)" if plan is not None else "random policy"
        name = env.spec.id if env.spec is not None else scene.env_id
        header = f"{name}: {scene.title}" if scene.title else name
        steps, total, done = 0, 0.0, False
        yield env.render(), [header, who, f"step {steps}   return {total:g}"]
        while not done:
            action = (
                int(plan.policy[info["state"]]) if plan is not None else int(rng.integers(env.action_space.n))
            )
            _, reward, terminated, truncated, info = env.step(action)
            steps += 1
            total += float(reward)
            done = terminated or truncated
            status = f"step {steps}   reward {reward:+g}   return {total:g}"
            if done:
                status += "   - episode over" if terminated else "   - out of time"
            frame = env.render()
            for _ in range(HOLD_FRAMES if done else 1):
                yield frame, [header, who, status]
    finally:
        env.close()


def run_demo(
    env_id: str | None = None,
    kwargs: dict[str, Any] | None = None,
    policy: str = "optimal",
    episodes: int = 1,
    fps: float = 8.0,
    seed: int = 0,
    gif: str | None = None,
) -> Path | None:
    """Play the scenes in one window (q or Esc quits), or write them to a GIF when asked or when
    there is no display, with a progress bar while it works.

    Returns the GIF's path when one was written.
    """
    from envs.window import has_display

    if policy not in ("optimal", "random"):
        raise LabError(f"unknown policy {policy!r}; choose 'optimal' or 'random'")
    if episodes < 1 or fps <= 0:
        raise LabError("--episodes must be at least 1 and --fps positive")
    scenes = tour_scenes() if env_id is None else (Scene(resolve_env_id(env_id), "", kwargs or {}),)
    if gif is None and has_display():
        _play_in_window(scenes, policy, episodes, fps, seed)
        return None
    path = Path(gif or "demo.gif")
    if path.suffix.lower() != ".gif":
        raise LabError(f"the demo writes a GIF; give a path ending in .gif, not {path.name!r}")
    from lab.video import check_video_path

    check_video_path(path, fps)  # before the tour is rendered
    return _write_demo_gif(scenes, policy, episodes, fps, seed, path)


def tour_scenes() -> tuple[Scene, ...]:
    """The tour's scenes, each with cells small enough for its frame to be at most
    :data:`TOUR_HEIGHT` tall."""
    sized = []
    for scene in SCENES:
        env = make_env(scene.env_id, scene.kwargs)
        rows = env.unwrapped.model.layout.shape[0]
        tile = min(env.unwrapped.render_tile_size, TOUR_HEIGHT // rows)
        env.close()
        sized.append(Scene(scene.env_id, scene.title, {**scene.kwargs, "render_tile_size": tile}))
    return tuple(sized)


def _play_in_window(scenes: Sequence[Scene], policy: str, episodes: int, fps: float, seed: int) -> None:
    """One window, sized for the largest scene up front, until the tour ends or q / Esc / close."""
    import pygame

    from envs.window import FrameWindow

    window = FrameWindow("lab demo - q or Esc quits", fps=fps)
    for scene in scenes:
        env = make_env(scene.env_id, scene.kwargs, render_mode="rgb_array")
        env.reset(seed=seed)
        window.reserve(*env.render().shape[:2])
        env.close()
    try:
        for scene in scenes:
            for episode in range(episodes):
                for frame, lines in episode_frames(scene, policy, seed + episode):
                    window.show(frame, [*lines, "q or Esc quits"])
                    quit_keys = (pygame.K_q, pygame.K_ESCAPE)
                    if any(e.type == pygame.KEYDOWN and e.key in quit_keys for e in window.poll()):
                        return
                    if window.closed:
                        return
    finally:
        window.close()


def _write_demo_gif(
    scenes: Sequence[Scene], policy: str, episodes: int, fps: float, seed: int, path: Path
) -> Path:
    """Render the tour off-screen (the window's picture: frame and status lines) into a GIF."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from envs.window import with_status_bar
    from lab.video import write_video

    captured: list[np.ndarray] = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("demo", total=len(scenes) * episodes + 1)
        for scene in scenes:
            for episode in range(episodes):
                name = scene.env_id.removeprefix("lab/")
                progress.update(
                    task, description=f"rendering {name}, episode {episode + 1} ({policy} policy)"
                )
                for frame, lines in episode_frames(scene, policy, seed + episode):
                    captured.append(with_status_bar(frame, lines, min_width=GIF_MIN_WIDTH))
                progress.advance(task)
        progress.update(task, description=f"writing {path} ({len(captured)} frames)")
        write_video(fit_frames(captured), path, fps)
        progress.advance(task)
    return path


def fit_frames(frames: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Frames of different sizes on one canvas: each at the top left, the rest in the status bar's
    colour, then cropped to the part any frame covers (no empty border beyond the largest)."""
    from envs.window import BAR_BG

    height = max(f.shape[0] for f in frames)
    width = max(f.shape[1] for f in frames)
    canvas = np.empty((len(frames), height, width, 3), dtype=np.uint8)
    canvas[...] = BAR_BG
    for out, f in zip(canvas, frames, strict=True):
        out[: f.shape[0], : f.shape[1]] = f
    used = (canvas != np.asarray(BAR_BG, dtype=np.uint8)).any(axis=(0, 3))
    rows, cols = np.flatnonzero(used.any(axis=1)), np.flatnonzero(used.any(axis=0))
    if rows.size == 0:
        return list(canvas)
    margin = PAD
    top, bottom = 0, min(height, rows[-1] + 1 + margin)
    left, right = 0, min(width, cols[-1] + 1 + margin)
    return list(canvas[:, top:bottom, left:right])
