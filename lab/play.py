"""``lab play``: a person plays a grid world with the keyboard, one move per key press.

With ``record_dir`` every finished episode is saved there as a replay (source ``"human"``). Each
episode starts with ``reset(seed=...)`` and an explicit seed (``seed``, ``seed + 1``, ... or a
random first seed) so the replay can be re-simulated and verified.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from envs.grid.layout import Tile
from envs.grid.model import DOWN, DOWN_LEFT, DOWN_RIGHT, LEFT, RIGHT, UP, UP_LEFT, UP_RIGHT
from lab.core.environments import make_env
from lab.core.errors import LabError

# pygame key names -> action: arrows, WASD, vi keys and the keypad; y u b n and the keypad's corners
# for the diagonals
MOVE_KEYS: dict[str, int] = {
    "up": UP, "w": UP, "k": UP, "[8]": UP,
    "right": RIGHT, "d": RIGHT, "l": RIGHT, "[6]": RIGHT,
    "down": DOWN, "s": DOWN, "j": DOWN, "[2]": DOWN,
    "left": LEFT, "a": LEFT, "h": LEFT, "[4]": LEFT,
    "u": UP_RIGHT, "[9]": UP_RIGHT,
    "n": DOWN_RIGHT, "[3]": DOWN_RIGHT,
    "b": DOWN_LEFT, "[1]": DOWN_LEFT,
    "y": UP_LEFT, "[7]": UP_LEFT,
}  # fmt: skip
QUIT_KEYS = {"escape", "q"}
RESTART_KEYS = {"r"}


def controls(n_actions: int) -> str:
    moves = "arrows/WASD move" + (", y u b n diagonals" if n_actions == 8 else "")
    return f"{moves}, r restart, q quit"


def ending(grid: Any, state: int, terminated: bool) -> str:
    """How an episode ended, in words."""
    if not terminated:
        return "out of time"
    model = grid.model
    tile = model.layout.tiles[model.state_row[state], model.state_col[state]]
    return "goal reached!" if tile == Tile.GOAL else "fell into a pit"


def play(
    env_id: str,
    kwargs: dict[str, Any] | None = None,
    seed: int | None = None,
    scale: int = 1,
    record_dir: str | Path | None = None,
) -> list[float]:
    """Let the user play episodes in a window until they quit; returns the finished episodes' returns.

    With ``record_dir``, each finished episode is saved there as a replay; the paths are printed on exit.
    """
    from envs.window import FrameWindow
    from lab.recording import RecordEpisodes

    env = make_env(env_id, kwargs, render_mode="rgb_array")
    grid = env.unwrapped
    if not hasattr(grid, "status_lines"):
        raise LabError(f"{env_id} is not a grid world; lab play drives the lab's grid worlds")
    n_actions = int(env.action_space.n)
    name = env.spec.id if env.spec is not None else env_id
    window = FrameWindow(f"lab play - {name}", scale=scale)
    returns: list[float] = []
    seeds = _episode_seeds(seed)
    if record_dir is not None:
        env = RecordEpisodes(env, record_dir, "human")

    def new_episode() -> None:
        env.reset(seed=next(seeds))

    new_episode()
    total, over, message = 0.0, False, "your move"
    try:
        while not window.closed:
            lines = [f"{name}: {message}", grid.status_lines()[0], controls(n_actions)]
            window.show(env.render(), lines)
            key = window.wait_key(100)
            if key is None:
                continue
            import pygame

            key_name = pygame.key.name(key)
            if key_name in QUIT_KEYS:
                break
            if key_name in RESTART_KEYS:
                new_episode()
                total, over, message = 0.0, False, "new episode"
                continue
            action = MOVE_KEYS.get(key_name)
            if over or action is None or action >= n_actions:
                continue
            _, reward, terminated, truncated, info = env.step(action)
            total += float(reward)
            message = f"reward {reward:+g}"
            if terminated or truncated:
                over = True
                returns.append(total)
                message = f"{ending(grid, info['state'], terminated)} - r to play again, q to quit"
                if record_dir is not None:
                    message = message.replace(" - r to", " - replay saved - r to")
    finally:
        window.close()
        env.close()
        for path in env.saved if isinstance(env, RecordEpisodes) else []:
            print(f"saved replay {path} (watch it: lab replay {path})")
    return returns


def _episode_seeds(seed: int | None) -> Iterator[int]:
    """``seed``, ``seed + 1``, ...; from a random first seed when ``seed`` is None."""
    first = secrets.randbelow(2**31) if seed is None else int(seed)
    return itertools.count(first)
