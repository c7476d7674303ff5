"""``lab demo``: grid worlds come alive, each walked by the optimal (value-iteration) or a random policy.

With a display it opens a window; without one (or with ``--gif``) it renders off-screen and writes
an animated GIF of exactly what the window would show.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
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


def has_display() -> bool:
    """Whether a real window can open here (False on a headless Linux machine or with the dummy driver)."""
    if os.environ.get("SDL_VIDEODRIVER") in ("dummy", "offscreen"):
        return False
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


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
    """Play the scenes in a window, or write them to a GIF when asked or when there is no display.

    Returns the GIF's path when one was written.
    """
    from envs.window import FrameWindow

    if policy not in ("optimal", "random"):
        raise LabError(f"unknown policy {policy!r}; choose 'optimal' or 'random'")
    if episodes < 1 or fps <= 0:
        raise LabError("--episodes must be at least 1 and --fps positive")
    scenes = SCENES if env_id is None else (Scene(resolve_env_id(env_id), "", kwargs or {}),)
    headless = gif is not None or not has_display()
    if headless:
        os.environ["SDL_VIDEODRIVER"] = "dummy"
        gif = gif or "demo.gif"
    window = FrameWindow("lab demo", fps=None if headless else fps)
    captured: list[np.ndarray] = []
    try:
        for scene in scenes:
            for episode in range(episodes):
                for frame, lines in episode_frames(scene, policy, seed + episode):
                    window.show(frame, lines)
                    if window.closed:
                        return None
                    if headless:
                        captured.append(window.snapshot())
    finally:
        window.close()
    if gif is None:
        return None
    return write_gif(captured, Path(gif), fps)


def write_gif(frames: list[np.ndarray], path: Path, fps: float) -> Path:
    """Write frames (padded to one size) as a looping GIF, atomically: a temporary file, then a rename."""
    import imageio.v3 as iio

    from envs.window import BAR_BG

    if path.suffix.lower() != ".gif":
        raise LabError(f"the demo writes a GIF; give a path ending in .gif, not {path.name!r}")
    height = max(f.shape[0] for f in frames)
    width = max(f.shape[1] for f in frames)
    padded = np.empty((len(frames), height, width, 3), dtype=np.uint8)
    padded[...] = BAR_BG
    for i, f in enumerate(frames):
        padded[i, : f.shape[0], : f.shape[1]] = f
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    iio.imwrite(tmp, padded, extension=".gif", duration=int(1000 / fps), loop=0)
    tmp.replace(path)
    return path
