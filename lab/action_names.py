"""Names for an env's actions in the viewer's HUD and bar charts: the grid worlds' moves, the text
env's tokens, and those of the classic-control and Box2D envs, whose actions gymnasium documents only
by number."""

from __future__ import annotations

from typing import Any

from gymnasium import spaces

# Discrete actions in order, by env id without its version.
KNOWN: dict[str, tuple[str, ...]] = {
    "CartPole": ("left", "right"),
    "MountainCar": ("left", "none", "right"),
    "Acrobot": ("torque -1", "torque 0", "torque +1"),
    "LunarLander": ("none", "left engine", "main engine", "right engine"),
}


def action_names(env: Any) -> tuple[str, ...]:
    """One name per action of ``env``'s Discrete action space, or ``()`` when its actions have no
    names here (a Box space, an env this module does not know): then show the numbers."""
    space = env.action_space
    if not isinstance(space, spaces.Discrete):
        return ()
    n = int(space.n)
    inner = getattr(env, "unwrapped", env)
    vocabulary = getattr(inner, "vocabulary", None)
    if vocabulary is not None and len(vocabulary.tokens) == n:  # the text env: the tokens as drawn
        from envs.text.painter import visible

        return tuple(visible(token) for token in vocabulary.tokens)
    if hasattr(inner, "model"):  # the lab's grid worlds: four moves, or eight with king's moves
        from envs.grid.model import ACTION_NAMES

        return tuple(ACTION_NAMES[:n]) if n <= len(ACTION_NAMES) else ()
    spec = getattr(env, "spec", None) or getattr(inner, "spec", None)
    if spec is None:
        return ()
    names = KNOWN.get(spec.id.rsplit("/", 1)[-1].rsplit("-v", 1)[0], ())
    return names if len(names) == n else ()
