"""The lab's environments in gymnasium's registry, under the ``lab/`` namespace.

``import envs`` registers them; then ``gymnasium.make("lab/CliffWalk-v0")`` and
``gymnasium.make_vec("lab/CliffWalk-v0", num_envs=N, vectorization_mode="vector_entry_point")`` work.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym

from envs.grid import presets
from envs.grid.vector import GridVectorEnv
from envs.grid.world import GridWorld
from envs.text.env import TextGenEnv
from envs.text.vector import TextVectorEnv


@dataclass(frozen=True)
class EnvEntry:
    """One registered environment: its id, class, fixed kwargs, step limit and a one-line summary."""

    id: str
    cls: type[GridWorld]
    summary: str
    max_episode_steps: int
    kwargs: dict[str, Any] = field(default_factory=dict)


ENTRIES: tuple[EnvEntry, ...] = (
    EnvEntry(
        "lab/GridWorld-v0",
        GridWorld,
        "Any ASCII map (ascii_map=[...]): walls, pits, ice, wind, key and door",
        500,
    ),
    EnvEntry(
        "lab/CliffWalk-v0",
        presets.CliffWalk,
        "Sutton & Barto's 4x12 cliff: -1 a step, -100 and back to start for a fall",
        500,
    ),
    EnvEntry(
        "lab/WindyGrid-v0",
        presets.WindyGrid,
        "Sutton & Barto's 7x10 windy grid (king_moves=, stochastic_wind=)",
        500,
    ),
    EnvEntry(
        "lab/IceLake-v0",
        presets.IceLake,
        "FrozenLake's slippery 4x4 lake (map_name='8x8' for the big one)",
        100,
    ),
    EnvEntry(
        "lab/IceLake8x8-v0", presets.IceLake, "FrozenLake's slippery 8x8 lake", 200, {"map_name": "8x8"}
    ),
    EnvEntry(
        "lab/FourRooms-v0", presets.FourRooms, "Sutton, Precup & Singh's four rooms joined by hallways", 500
    ),
    EnvEntry(
        "lab/Maze-v0", presets.Maze, "A generated perfect maze (size= odd, maze_seed= fixes the layout)", 1000
    ),
    EnvEntry("lab/KeyDoor-v0", presets.KeyDoor, "Fetch the key, open the door, reach the goal", 300),
)


@dataclass(frozen=True)
class TextEntry:
    """One registered text-generation preset: its id, fixed kwargs and a one-line summary.

    Kept apart from :data:`ENTRIES` (grid worlds with a ``.model``) so that code reading grid entries
    is not handed a text environment; the episode ends by itself (``max_length``), so no step limit.
    """

    id: str
    summary: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    cls: type[TextGenEnv] = TextGenEnv


TEXT_ENTRIES: tuple[TextEntry, ...] = (
    TextEntry("lab/TextGen-v0", "Build a sentence token by token (language=, task=, reward=, max_length=)"),
    TextEntry(
        "lab/TextPositive-v0",
        "A grammatical English sentence with positive sentiment",
        {"language": "english", "task": "positive"},
    ),
    TextEntry(
        "lab/TextArithmetic-v0",
        "Answer a+b= in digits, exactly right (operands 0..99)",
        {"language": "arithmetic", "task": "add", "max_length": 4},
    ),
    TextEntry(
        "lab/TextDyck-v0", "Balanced brackets of at most 11 tokens", {"language": "dyck", "max_length": 12}
    ),
    TextEntry(
        "lab/TextReverse-v0",
        "Write the prompt's word reversed (alphabet 'abc', up to 4 letters)",
        {"language": "copy", "task": "reverse", "max_length": 5},
    ),
)


def register_all() -> None:
    """Register every entry (idempotent: ids already registered are left alone)."""
    for entry in ENTRIES:
        if entry.id in gym.registry:
            continue
        gym.register(
            id=entry.id,
            entry_point=f"{entry.cls.__module__}:{entry.cls.__name__}",
            vector_entry_point=GridVectorEnv.entry_point(entry.cls),
            max_episode_steps=entry.max_episode_steps,
            kwargs=dict(entry.kwargs),
        )
    for text in TEXT_ENTRIES:
        if text.id in gym.registry:
            continue
        gym.register(
            id=text.id,
            entry_point=f"{text.cls.__module__}:{text.cls.__name__}",
            vector_entry_point=TextVectorEnv.make,
            kwargs=dict(text.kwargs),
        )
