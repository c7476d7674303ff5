"""``lab play``: a person plays a grid world with the keyboard, one move per key press, or builds a
sentence in a text env one token at a time (:mod:`lab.text_play`).

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


class GridGame:
    """One player's episodes of a grid world: what to draw, and the move each key makes.
    :meth:`press` returns the episode's return when that key finished it."""

    def __init__(self, env: Any, name: str, recording: bool) -> None:
        self.env, self.grid, self.name, self.recording = env, env.unwrapped, name, recording
        self.n_actions = int(env.action_space.n)
        self.total, self.over, self.message = 0.0, False, ""

    def reset(self, seed: int) -> None:
        self.message = "new episode" if self.message else "your move"
        self.env.reset(seed=seed)
        self.total, self.over = 0.0, False

    def frame(self) -> Any:
        return self.env.render()

    def lines(self) -> list[str]:
        return [f"{self.name}: {self.message}", self.grid.status_lines()[0], controls(self.n_actions)]

    def press(self, key: str) -> float | None:
        action = MOVE_KEYS.get(key)
        if self.over or action is None or action >= self.n_actions:
            return None
        _, reward, terminated, truncated, info = self.env.step(action)
        self.total += float(reward)
        self.message = f"reward {reward:+g}"
        if not (terminated or truncated):
            return None
        self.over = True
        saved = " - replay saved" if self.recording else ""
        self.message = f"{ending(self.grid, info['state'], terminated)}{saved} - r to play again, q to quit"
        return self.total


def play(
    env_id: str,
    kwargs: dict[str, Any] | None = None,
    seed: int | None = None,
    scale: int = 1,
    record_dir: str | Path | None = None,
) -> list[float]:
    """Let the user play episodes of a grid world or a text env in a window until they quit; returns
    the finished episodes' returns.

    With ``record_dir``, each finished episode is saved there as a replay; the paths are printed on exit.
    """
    from envs.window import FrameWindow
    from lab.recording import RecordEpisodes
    from lab.text_play import TextGame
    from lab.text_prefix import text_env

    env = make_env(env_id, kwargs, render_mode="rgb_array")
    is_text = text_env(env) is not None
    if not is_text and not hasattr(env.unwrapped, "status_lines"):
        env.close()
        raise LabError(f"{env_id} is not one of the lab's grid worlds or text envs, which lab play drives")
    name = env.spec.id if env.spec is not None else env_id
    window = FrameWindow(f"lab play - {name}", scale=scale)
    returns: list[float] = []
    seeds = _episode_seeds(seed)
    if record_dir is not None:
        env = RecordEpisodes(env, record_dir, "human")
    recording = record_dir is not None
    game = TextGame(env, name, recording, window) if is_text else GridGame(env, name, recording)
    game.reset(next(seeds))
    try:
        while not window.closed:
            window.show(game.frame(), game.lines())
            key = window.wait_key(100)
            if key is None:
                continue
            import pygame

            key_name = pygame.key.name(key)
            if key_name in QUIT_KEYS:
                break
            if key_name in RESTART_KEYS:
                game.reset(next(seeds))
                continue
            finished = game.press(key_name)
            if finished is not None:
                returns.append(finished)
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
