"""Replays: one episode (an agent's, a person's, an evaluation's) saved as one ``.npz`` file.

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
import uuid
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from lab.errors import LabError
from lab.files import atomic_path

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
# gymnasium.make's own arguments: not the environment's, so not stored in env_kwargs
MAKE_ARGS = frozenset({"render_mode", "max_episode_steps", "autoreset", "disable_env_checker"})
_INFO_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_NUMERIC_KINDS = "biuf"
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


class ReplayError(LabError):
    """A replay that cannot be read, written or re-simulated; the message says which file and why."""


def _lab_version() -> str:
    import lab

    return lab.__version__


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
    lab_version: str = field(default_factory=_lab_version)
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


# ----- recording -----


class EpisodeRecorder:
    """Collects one episode as it is played; :meth:`finish` returns the :class:`Episode`.

    ::

        rec = EpisodeRecorder("lab/Maze-v0", {"size": 9}, seed=3, source="agent:q_learning",
                              max_episode_steps=env.spec.max_episode_steps)
        obs, info = env.reset(seed=3)
        rec.start(obs, info)
        while not done:
            obs, reward, terminated, truncated, info = env.step(action)
            rec.step(action, obs, reward, terminated, truncated, info)
            done = terminated or truncated
        save_episode(rec.finish(), replay_path(env_id="lab/Maze-v0", source="agent:q_learning"))

    ``env_kwargs`` are the environment's arguments (``gymnasium.make``'s own, such as
    ``render_mode`` and ``max_episode_steps``, are left out). Info entries are kept when every info
    of the episode has them, as numbers or numeric arrays of one shape, under a name of letters,
    digits, ``_`` or ``-`` (others are left out).
    """

    def __init__(
        self,
        env_id: str,
        env_kwargs: Mapping[str, Any] | None = None,
        seed: int = 0,
        source: str = "unknown",
        max_episode_steps: int | None = None,
        record_frames: bool = False,
    ) -> None:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise ReplayError(f"a replay needs the integer seed given to reset(seed=...); got {seed!r}")
        kwargs = {k: v for k, v in (env_kwargs or {}).items() if k not in MAKE_ARGS}
        if max_episode_steps is None and env_kwargs and env_kwargs.get("max_episode_steps") is not None:
            max_episode_steps = int(env_kwargs["max_episode_steps"])
        _check_json(kwargs, "env_kwargs")
        self.env_id = env_id
        self.env_kwargs = kwargs
        self.seed = int(seed)
        self.source = source
        self.max_episode_steps = max_episode_steps
        self.record_frames = record_frames
        self._observations: list[Any] = []
        self._actions: list[Any] = []
        self._rewards: list[float] = []
        self._terminations: list[bool] = []
        self._truncations: list[bool] = []
        self._infos: list[Mapping[str, Any]] = []
        self._frames: list[np.ndarray] = []
        self._over = False

    @classmethod
    def for_env(
        cls,
        env: Any,
        seed: int,
        source: str,
        env_kwargs: Mapping[str, Any] | None = None,
        record_frames: bool = False,
    ) -> EpisodeRecorder:
        """A recorder for an env made by ``gymnasium.make``: id, kwargs and step limit from ``env.spec``."""
        spec = env.spec
        if spec is None:
            raise ReplayError("a replay needs an environment made with gymnasium.make (it has no spec)")
        if env_kwargs is None:
            import gymnasium as gym

            registered = gym.spec(spec.id).kwargs if spec.id in gym.registry else {}
            env_kwargs = {k: v for k, v in spec.kwargs.items() if k not in registered or registered[k] != v}
        return cls(spec.id, env_kwargs, seed, source, spec.max_episode_steps, record_frames)

    @property
    def length(self) -> int:
        return len(self._actions)

    def _frame(self, frame: np.ndarray | None) -> None:
        if not self.record_frames:
            return
        if frame is None:
            raise ReplayError("this recorder records frames: pass frame= (an (H, W, 3) uint8 array)")
        self._frames.append(np.asarray(frame, dtype=np.uint8))

    def start(self, obs: Any, info: Mapping[str, Any], frame: np.ndarray | None = None) -> None:
        """Record what ``reset(seed=seed)`` returned (and the first frame when recording frames)."""
        if self._observations:
            raise ReplayError("start() was already called; use a new EpisodeRecorder for each episode")
        self._observations.append(obs)
        self._infos.append(info)
        self._frame(frame)

    def step(
        self,
        action: Any,
        obs: Any,
        reward: float,
        terminated: bool,
        truncated: bool,
        info: Mapping[str, Any],
        frame: np.ndarray | None = None,
    ) -> None:
        """Record one ``env.step(action)`` and what it returned."""
        if not self._observations:
            raise ReplayError("call start(obs, info) with what reset() returned before step()")
        if self._over:
            raise ReplayError("the episode is over (terminated or truncated); finish() it")
        self._actions.append(action)
        self._observations.append(obs)
        self._rewards.append(float(reward))
        self._terminations.append(bool(terminated))
        self._truncations.append(bool(truncated))
        self._infos.append(info)
        self._frame(frame)
        self._over = bool(terminated or truncated)

    def finish(self, episode_id: str | None = None) -> Episode:
        """The recorded episode (if unfinished, its last step is neither terminated nor truncated)."""
        if not self._observations:
            raise ReplayError("nothing recorded: call start() with what reset() returned")
        try:
            observations = np.asarray(self._observations)
            actions = np.asarray(self._actions)
        except ValueError as exc:
            raise ReplayError(
                f"observations and actions must be numbers or arrays of one shape: {exc}"
            ) from None
        if actions.size == 0:
            actions = np.zeros((0,), dtype=np.int64)
        for name, arr in (("observations", observations), ("actions", actions)):
            if arr.dtype.kind not in _NUMERIC_KINDS:
                raise ReplayError(f"{name} must be numeric to be saved in a replay; got dtype {arr.dtype}")
        return Episode(
            id=episode_id or uuid.uuid4().hex,
            seed=self.seed,
            env_id=self.env_id,
            env_kwargs=dict(self.env_kwargs),
            observations=observations,
            actions=actions,
            rewards=np.asarray(self._rewards, dtype=np.float64),
            terminations=np.asarray(self._terminations, dtype=bool),
            truncations=np.asarray(self._truncations, dtype=bool),
            infos=_stack_infos(self._infos),
            frames=np.stack(self._frames) if self.record_frames else None,
            source=self.source,
            max_episode_steps=self.max_episode_steps,
        )


def _stack_infos(infos: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """The info entries every info has, as numbers or numeric arrays of one shape, stacked."""
    out: dict[str, np.ndarray] = {}
    for key in infos[0]:
        if not isinstance(key, str) or not _INFO_KEY.match(key) or not all(key in i for i in infos):
            continue
        try:
            values = [np.asarray(i[key]) for i in infos]
        except (ValueError, TypeError):
            continue
        if any(v.dtype.kind not in _NUMERIC_KINDS or v.shape != values[0].shape for v in values):
            continue
        out[key] = np.stack(values)
    return out


def _check_json(value: Any, name: str) -> None:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ReplayError(f"{name} must be plain JSON data (numbers, strings, lists, dicts): {exc}") from None


# ----- files -----


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
        if not _INFO_KEY.match(key):
            raise ReplayError(f"info key {key!r} cannot name a replay entry (letters, digits, _ and - only)")
    meta = episode.meta()
    _check_json(meta, "the episode's metadata")
    arrays = episode.arrays()
    _check_arrays(arrays, where=f"episode {episode.id!r}")
    arrays["meta"] = np.array(json.dumps(meta, allow_nan=False))
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)
        _readable(tmp)
    return path


def _readable(path: Path) -> None:
    """Give a temporary file (created private) the permissions of a normally created file."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


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
    with open(path, "rb") as f:
        head = f.read(6)
    if head.startswith(b"\x80"):
        raise ReplayError(
            f"{where} is a Python pickle, not a replay; pickles can run code, so they are never loaded"
        )
    if head.startswith(b"\x93NUMPY"):
        raise ReplayError(f"{where} is a single .npy array, not a replay (.npz archive)")
    if not head.startswith(_ZIP_MAGIC):
        raise ReplayError(f"{where} is not a replay: not an .npz archive")
    arrays: dict[str, np.ndarray] = {}
    try:
        with np.load(path, allow_pickle=False) as data:
            names = list(data.files)
            if "meta" not in names:
                listed = ", ".join(names) or "none"
                raise ReplayError(f"{where} is not a lab replay: it has no 'meta' entry (entries: {listed})")
            for name in names:
                if name == "frames" and not frames:
                    arrays[name] = _header_only(data, name)
                    continue
                try:
                    value = data[name]
                except ValueError as exc:
                    if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
                        raise ReplayError(
                            f"{where}: entry {name!r} holds pickled Python objects; replays hold plain "
                            "arrays only and pickles are never loaded"
                        ) from None
                    raise
                if not isinstance(value, np.ndarray):
                    raise ReplayError(f"{where}: entry {name!r} is not a numpy array")
                arrays[name] = value
    except ReplayError:
        raise
    except (zipfile.BadZipFile, EOFError) as exc:
        raise ReplayError(f"{where} is damaged or incomplete (cut short?): {exc}") from None
    except Exception as exc:  # zlib, ValueError, OSError... from a damaged archive
        raise ReplayError(f"{where} is damaged: {type(exc).__name__}: {exc}") from None
    meta = _read_meta(arrays.pop("meta"), where)
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


def _header_only(data: Any, name: str) -> np.ndarray:
    """A stand-in of an entry's shape and dtype, read from its ``.npy`` header only (no data)."""
    with data.zip.open(f"{name}.npy") as f:
        version = np.lib.format.read_magic(f)
        read = (
            np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        )
        shape, _, dtype = read(f)
    return np.broadcast_to(np.zeros((), dtype=dtype), shape)


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


def _read_meta(raw: np.ndarray, where: str) -> dict[str, Any]:
    if raw.ndim != 0 or raw.dtype.kind != "U":
        raise ReplayError(
            f"{where}: 'meta' must be a JSON string (0-d unicode array); got {raw.dtype} {raw.shape}"
        )
    try:
        meta = json.loads(str(raw[()]))
    except json.JSONDecodeError as exc:
        raise ReplayError(f"{where}: 'meta' is not valid JSON: {exc}") from None
    if not isinstance(meta, dict):
        raise ReplayError(f"{where}: 'meta' must be a JSON object")
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
    return meta


def _check_arrays(arrays: Mapping[str, np.ndarray], where: str) -> None:
    """Every required array present, numeric, and of lengths n+1 / n consistent with ``actions``."""
    for name in ARRAYS:
        if name not in arrays:
            raise ReplayError(f"{where}: the replay lacks the {name!r} array")
    for name, arr in arrays.items():
        if arr.dtype.kind not in _NUMERIC_KINDS:
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


# ----- re-simulation -----


@dataclass(frozen=True)
class Difference:
    """Where a re-simulation first departs from the recording."""

    step: int
    field: str
    recorded: str
    simulated: str

    def __str__(self) -> str:
        when = "reset (step 0)" if self.step == 0 else f"step {self.step}"
        return f"{when}: {self.field} recorded {self.recorded}, re-simulated {self.simulated}"


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of :func:`verify_episode`: ``steps`` checked and the first :class:`Difference`, if any."""

    steps: int
    difference: Difference | None = None

    @property
    def ok(self) -> bool:
        return self.difference is None

    def __str__(self) -> str:
        if self.difference is None:
            return f"matches exactly ({self.steps} steps)"
        return f"differs at {self.difference}"


def _show(value: Any) -> str:
    arr = np.asarray(value)
    if arr.size == 1:
        return repr(arr.reshape(()).item())
    if arr.size <= 8:
        return np.array2string(arr, separator=", ")
    return f"an array of shape {arr.shape}"


def _differs(recorded: Any, simulated: Any) -> bool:
    a, b = np.asarray(recorded), np.asarray(simulated)
    if a.shape != b.shape:
        return True
    return not np.array_equal(a, b, equal_nan=a.dtype.kind in "fc" and b.dtype.kind in "fc")


def make_replay_env(episode: Episode, render_mode: str | None = None) -> Any:
    """The episode's environment, made as it was recorded; :class:`ReplayError` when it no longer can be."""
    import gymnasium as gym

    import envs  # noqa: F401  (registers the lab/ ids)
    from envs.errors import EnvError

    if episode.env_id not in gym.registry:
        raise ReplayError(
            f"the replay's environment {episode.env_id!r} is not registered here; run 'lab envs' to list them"
        )
    kwargs = dict(episode.env_kwargs)
    if render_mode is not None:
        kwargs["render_mode"] = render_mode
    try:
        return gym.make(episode.env_id, max_episode_steps=episode.max_episode_steps, **kwargs)
    except (TypeError, ValueError, EnvError, gym.error.Error) as exc:
        raise ReplayError(
            f"the replay's environment {episode.env_id} no longer accepts its arguments "
            f"{json.dumps(episode.env_kwargs)}: {exc}"
        ) from None


def simulate(episode: Episode, env: Any) -> Iterator[tuple[int, Difference | None]]:
    """Re-play ``episode`` in ``env``: ``reset(seed)``, then each action; yields ``(t, difference)``.

    ``t`` runs from 0 (after reset) to the number of steps; ``env`` holds the state after step ``t``
    when it is yielded. Stops after the first difference in observations, rewards, terminations,
    truncations or a recorded info entry the environment also reports.
    """
    obs, info = env.reset(seed=episode.seed)
    first = _first_difference(0, episode, obs, None, info)
    yield 0, first
    if first is not None:
        return
    for t, action in enumerate(episode.actions, start=1):
        act = action.item() if action.ndim == 0 else action
        try:
            obs, reward, terminated, truncated, info = env.step(act)
        except Exception as exc:  # the environment refused the recorded action
            yield t, Difference(t, "actions", _show(action), f"an error: {exc}")
            return
        diff = _first_difference(t, episode, obs, (reward, terminated, truncated), info)
        yield t, diff
        if diff is not None:
            return


def _first_difference(
    t: int, episode: Episode, obs: Any, outcome: tuple[float, bool, bool] | None, info: Mapping[str, Any]
) -> Difference | None:
    checks: list[tuple[str, Any, Any]] = [("observations", episode.observations[t], obs)]
    if outcome is not None:
        reward, terminated, truncated = outcome
        checks += [
            ("rewards", episode.rewards[t - 1], float(reward)),
            ("terminations", episode.terminations[t - 1], bool(terminated)),
            ("truncations", episode.truncations[t - 1], bool(truncated)),
        ]
    checks += [(INFO_PREFIX + k, v[t], info[k]) for k, v in episode.infos.items() if k in info]
    for name, recorded, simulated in checks:
        if _differs(recorded, simulated):
            return Difference(t, name, _show(recorded), _show(simulated))
    return None


def episode_frames(episode: Episode) -> Sequence[np.ndarray]:
    """The episode's ``n+1`` frames: the stored ones, else re-rendered by re-simulation.

    Re-rendering re-plays the episode and checks it against the recording as it goes
    (:class:`ReplayError` at the first difference). For the lab's grid worlds the frames are then
    drawn on demand from the recorded states, so a long episode costs no memory.
    """
    if episode.frames is not None:
        return episode.frames
    env = make_replay_env(episode, render_mode="rgb_array")
    grid = env.unwrapped
    lazy = "state" in episode.infos and hasattr(grid, "painter") and hasattr(grid, "model")
    frames: list[np.ndarray] = []
    try:
        for _, diff in simulate(episode, env):
            if diff is not None:
                raise ReplayError(
                    f"the replay no longer matches its environment at {diff}, so its frames cannot be "
                    "re-rendered (lab replay FILE --verify checks a replay)"
                )
            if not lazy:
                frames.append(np.asarray(env.render(), dtype=np.uint8))
    finally:
        env.close()
    return _StateFrames(grid, episode.infos["state"]) if lazy else frames


class _StateFrames(Sequence[np.ndarray]):
    """A grid world's frames drawn on demand from state indices (the painter caches every cell)."""

    def __init__(self, grid: Any, states: np.ndarray) -> None:
        model = grid.model
        self._painter = grid.painter()
        self._rows = model.state_row[states]
        self._cols = model.state_col[states]
        self._phases = model.state_phase[states]

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, t: Any) -> Any:
        if isinstance(t, slice):
            return [self[i] for i in range(*t.indices(len(self)))]
        return self._painter.frame(int(self._rows[t]), int(self._cols[t]), int(self._phases[t]))


def env_fps(env_id: str, default: float = 8.0) -> float:
    """The environment's ``metadata["render_fps"]`` (without making it), or ``default``."""
    import gymnasium as gym

    import envs  # noqa: F401  (registers the lab/ ids)

    try:
        creator = gym.envs.registration.load_env_creator(gym.spec(env_id).entry_point)
        fps = getattr(creator, "metadata", {}).get("render_fps")
    except Exception:  # unknown id, entry point gone: fall back to the default
        return default
    return float(fps) if isinstance(fps, (int, float)) and fps > 0 else default


def verify_episode(episode: Episode) -> VerifyResult:
    """Re-simulate the episode and compare it step by step with the recording."""
    env = make_replay_env(episode)
    try:
        t = 0
        for t, diff in simulate(episode, env):
            if diff is not None:
                return VerifyResult(t, diff)
        return VerifyResult(t)
    finally:
        env.close()
