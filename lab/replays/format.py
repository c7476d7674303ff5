"""The replay file format: one episode (an agent's, a person's, an evaluation's) as one ``.npz`` file.

The layout follows Minari's episode data. For an episode of ``n`` steps the archive holds:

==================  ============================  ===============================================
entry               shape, dtype                  what
==================  ============================  ===============================================
``meta``            0-d unicode (a JSON object)   ``format_version`` (1), ``id``, ``seed``,
                                                  ``env_id``, ``env_kwargs``,
                                                  ``max_episode_steps``, ``source``, ``created``,
                                                  ``lab_version``
``observations``    ``(n+1, ...)``                from ``reset`` and after every step
``actions``         ``(n, ...)``
``rewards``         ``(n,)`` float64
``terminations``    ``(n,)`` bool
``truncations``     ``(n,)`` bool
``infos.<key>``     ``(n+1, ...)``                numeric info entries, e.g. ``infos.state``
``frames``          ``(n+1, H, W, 3)`` uint8      optional: the rendered frames
==================  ============================  ===============================================

``seed`` is the integer given to ``env.reset(seed=...)`` at the start of the episode, so
``gymnasium.make(env_id, max_episode_steps=..., **env_kwargs)``, ``reset(seed=seed)`` and the
actions re-create the episode exactly (:func:`verify_episode`). ``source`` says who acted:
``"human"``, ``"agent:<name>"``, ``"eval"``...

Files are data, never code: they are read only with ``numpy.load(allow_pickle=False)``, and a file
holding a pickled object is rejected with :class:`ReplayError` before anything is unpickled.
Writes are atomic (a temporary file in the same folder, then a rename).
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from envs.seeding import is_seed
from lab.core.archive import read_archive
from lab.core.errors import LabError
from lab.core.files import atomic_path
from lab.core.version import lab_version

FORMAT_VERSION = 1
SUFFIX = ".npz"
ARRAYS = ("observations", "actions", "rewards", "terminations", "truncations")
META_KEYS = (
    "format_version",
    "id",
    "seed",
    "env_id",
    "env_kwargs",
    "max_episode_steps",
    "source",
    "created",
    "lab_version",
)
INFO_PREFIX = "infos."
INFO_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
NUMERIC_KINDS = "biuf"


class ReplayError(LabError):
    """A replay that cannot be read, written or re-simulated; the message says which file and why."""


def _now() -> datetime:
    return datetime.now().astimezone()


@dataclass(eq=False)
class Episode:
    """One recorded episode. ``observations`` and each ``infos`` entry have one row more than ``actions``."""

    id: str
    seed: int
    env_id: str
    env_kwargs: dict[str, Any]
    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminations: np.ndarray
    truncations: np.ndarray
    infos: dict[str, np.ndarray] = field(default_factory=dict)
    frames: np.ndarray | None = None
    source: str = "unknown"
    max_episode_steps: int | None = None
    lab_version: str = field(default_factory=lab_version)
    created: str = field(default_factory=lambda: _now().isoformat(timespec="seconds"))

    @property
    def length(self) -> int:
        """The number of steps (actions taken)."""
        return len(self.actions)

    @property
    def total_return(self) -> float:
        """The undiscounted sum of rewards."""
        return float(np.sum(self.rewards))

    @property
    def terminated(self) -> bool:
        return bool(self.length and self.terminations[-1])

    @property
    def truncated(self) -> bool:
        return bool(self.length and self.truncations[-1])

    def meta(self) -> dict[str, Any]:
        """The scalar fields, as stored in the ``meta`` entry."""
        return {
            "format_version": FORMAT_VERSION,
            "id": self.id,
            "seed": self.seed,
            "env_id": self.env_id,
            "env_kwargs": self.env_kwargs,
            "max_episode_steps": self.max_episode_steps,
            "source": self.source,
            "created": self.created,
            "lab_version": self.lab_version,
        }

    def arrays(self) -> dict[str, np.ndarray]:
        """The array entries, by their names in the file."""
        out = {name: np.asarray(getattr(self, name)) for name in ARRAYS}
        out.update({INFO_PREFIX + key: np.asarray(value) for key, value in self.infos.items()})
        if self.frames is not None:
            out["frames"] = np.asarray(self.frames)
        return out

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Episode):
            return NotImplemented
        mine, theirs = self.arrays(), other.arrays()
        return (
            self.meta() == other.meta()
            and mine.keys() == theirs.keys()
            and all(_same_array(mine[k], theirs[k]) for k in mine)
        )

    __hash__ = None  # type: ignore[assignment]  (mutable, compared by content)


def _same_array(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    return bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))


def check_json(value: Any, name: str) -> None:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ReplayError(f"{name} must be plain JSON data (numbers, strings, lists, dicts): {exc}") from None


def replay_path(folder: str | Path = "replays", env_id: str = "env", source: str = "unknown") -> Path:
    """A fresh file name such as ``replays/Maze-v0_human_2026-11-23T12-00-00_ab12.npz``."""
    folder = Path(folder)
    env = re.sub(r"[^A-Za-z0-9.-]+", "-", env_id.removeprefix("lab/")).strip("-") or "env"
    who = re.sub(r"[^A-Za-z0-9._-]+", "-", source).strip("-") or "unknown"
    stamp = _now().strftime("%Y-%m-%dT%H-%M-%S")
    while True:
        path = folder / f"{env}_{who}_{stamp}_{secrets.token_hex(2)}{SUFFIX}"
        if not path.exists():
            return path


def save_episode(episode: Episode, path: str | Path) -> Path:
    """Write ``episode`` to ``path`` (atomically; folders are made) and return the path."""
    path = Path(path)
    if path.suffix != SUFFIX:
        raise ReplayError(f"a replay file ends in {SUFFIX}; got {path.name!r}")
    for key in episode.infos:
        if not INFO_KEY.match(key):
            raise ReplayError(f"info key {key!r} cannot name a replay entry (letters, digits, _ and - only)")
    meta = episode.meta()
    check_json(meta, "the episode's metadata")
    _check_meta(meta, where=f"episode {episode.id!r}")  # what load_episode checks, checked first
    arrays = episode.arrays()
    _check_arrays(arrays, where=f"episode {episode.id!r}")
    arrays["meta"] = np.array(json.dumps(meta, allow_nan=False))
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)
        f.flush()
        os.fsync(f.fileno())  # on disk before the rename replaces an existing file with it
    return path


def load_episode(path: str | Path, frames: bool = True) -> Episode:
    """Read a replay, checking every field; ``frames=False`` skips reading the frames (they stay None).

    Raises :class:`ReplayError` for a missing, damaged or foreign file, a pickled payload, a
    ``format_version`` this lab does not read, or a missing or ill-shaped field (named).
    """
    return _read(Path(path), frames)[0]


def _read(path: Path, frames: bool) -> tuple[Episode, bool]:
    """The episode, and whether the file holds frames (checked from their header when not read)."""
    where = str(path)
    if not path.exists():
        raise ReplayError(f"no replay at {where}")
    if not path.is_file():
        raise ReplayError(f"{where} is not a file")
    skip = () if frames else ("frames",)
    meta, arrays = read_archive(path, where, ReplayError, headers_only=skip)
    meta = _check_meta(meta, where)
    _check_arrays(arrays, where)
    has_frames = "frames" in arrays
    if not frames:
        arrays.pop("frames", None)
    infos = {k.removeprefix(INFO_PREFIX): v for k, v in arrays.items() if k.startswith(INFO_PREFIX)}
    episode = Episode(
        id=meta["id"],
        seed=meta["seed"],
        env_id=meta["env_id"],
        env_kwargs=meta["env_kwargs"],
        observations=arrays["observations"],
        actions=arrays["actions"],
        rewards=arrays["rewards"],
        terminations=arrays["terminations"],
        truncations=arrays["truncations"],
        infos=infos,
        frames=arrays.get("frames"),
        source=meta["source"],
        max_episode_steps=meta["max_episode_steps"],
        lab_version=meta["lab_version"],
        created=meta["created"],
    )
    return episode, has_frames


MAKE_ARGS = frozenset({"render_mode", "max_episode_steps", "autoreset", "disable_env_checker"})
"""Arguments of ``gymnasium.make`` itself, not of the env: never among a replay's ``env_kwargs``."""

_META_TYPES: dict[str, tuple[type, ...]] = {
    "id": (str,),
    "seed": (int,),
    "env_id": (str,),
    "env_kwargs": (dict,),
    "max_episode_steps": (int, type(None)),
    "source": (str,),
    "created": (str,),
    "lab_version": (str,),
}


def _check_meta(meta: dict[str, Any], where: str) -> dict[str, Any]:
    """``meta`` when it is a replay's metadata of the version this lab reads, every key of its type."""
    version = meta.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ReplayError(f"{where}: 'meta' has no integer format_version; is it a lab replay?")
    if version != FORMAT_VERSION:
        newer = " (written by a newer lab: upgrade to read it)" if version > FORMAT_VERSION else ""
        raise ReplayError(
            f"{where} has replay format_version {version}; this lab reads version {FORMAT_VERSION}{newer}"
        )
    for key, types in _META_TYPES.items():
        if key not in meta:
            raise ReplayError(f"{where}: 'meta' lacks {key!r}")
        value = meta[key]
        if not isinstance(value, types) or isinstance(value, bool):
            wanted = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            raise ReplayError(f"{where}: meta {key!r} must be {wanted}; got {value!r}")
    if not is_seed(meta["seed"]):
        raise ReplayError(
            f"{where}: meta 'seed' must be a reset seed from 0 to 2**64 - 1; got {meta['seed']}"
        )
    made_with = sorted(MAKE_ARGS & set(meta["env_kwargs"]))
    if made_with:  # a replay says how to build its env, never how to show it (a window) or wrap it
        raise ReplayError(f"{where}: meta 'env_kwargs' may not hold {', '.join(made_with)}")
    return meta


def _check_arrays(arrays: Mapping[str, np.ndarray], where: str) -> None:
    """Every required array present, numeric, and of lengths n+1 / n consistent with ``actions``."""
    for name in ARRAYS:
        if name not in arrays:
            raise ReplayError(f"{where}: the replay lacks the {name!r} array")
    for name, arr in arrays.items():
        if arr.dtype.kind not in NUMERIC_KINDS:
            raise ReplayError(f"{where}: {name!r} must be a numeric array; got dtype {arr.dtype}")
    actions = arrays["actions"]
    if actions.ndim < 1:
        raise ReplayError(f"{where}: 'actions' must have one row per step; got a 0-d array")
    n = len(actions)
    for name in ("rewards", "terminations", "truncations"):
        if arrays[name].shape != (n,):
            raise ReplayError(
                f"{where}: {name!r} must have shape ({n},) (one per action); got {arrays[name].shape}"
            )
    if arrays["rewards"].dtype.kind != "f":
        raise ReplayError(f"{where}: 'rewards' must be floating point; got {arrays['rewards'].dtype}")
    for name in ("terminations", "truncations"):
        if arrays[name].dtype != np.bool_:
            raise ReplayError(f"{where}: {name!r} must be bool; got {arrays[name].dtype}")
    if n and (arrays["terminations"][:-1] | arrays["truncations"][:-1]).any():
        step = int(np.flatnonzero(arrays["terminations"][:-1] | arrays["truncations"][:-1])[0]) + 1
        raise ReplayError(f"{where}: the episode ends at step {step} but goes on to step {n}")
    for name, arr in arrays.items():
        per_step = name == "observations" or name.startswith(INFO_PREFIX)
        if per_step and (arr.ndim < 1 or len(arr) != n + 1):
            got = "a 0-d array" if arr.ndim < 1 else f"{len(arr)}"
            raise ReplayError(
                f"{where}: {name!r} must have {n + 1} rows (one per step, plus reset); got {got}"
            )
    if "frames" in arrays:
        frames = arrays["frames"]
        if frames.ndim != 4 or len(frames) != n + 1 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ReplayError(
                f"{where}: 'frames' must be ({n + 1}, H, W, 3) uint8; got {frames.shape} {frames.dtype}"
            )


@dataclass(frozen=True)
class ReplaySummary:
    """One line of ``lab replays``: what a file holds, or why it cannot be read (``error``)."""

    path: Path
    env_id: str = ""
    source: str = ""
    length: int = 0
    total_return: float = 0.0
    created: str = ""
    has_frames: bool = False
    error: str | None = None


def list_replays(folder: str | Path = "replays") -> list[tuple[Path, ReplaySummary]]:
    """Every ``.npz`` under ``folder`` (and sub-folders), sorted, with its summary or why it is unreadable."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ReplayError(f"no replay folder {folder}")
    out = []
    for path in sorted(folder.rglob(f"*{SUFFIX}")):
        if path.name.startswith("."):  # a write in progress
            continue
        try:
            ep, has_frames = _read(path, frames=False)
            summary = ReplaySummary(
                path, ep.env_id, ep.source, ep.length, ep.total_return, ep.created, has_frames
            )
        except ReplayError as exc:
            reason = str(exc).removeprefix(str(path)).lstrip(": ")
            summary = ReplaySummary(path, error=reason)
        out.append((path, summary))
    return out
