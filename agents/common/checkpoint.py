"""The checkpoint file: one ``.npz`` holding arrays and a JSON metadata string, no pickle.

The layout, the atomic writes and the checks on reading are :mod:`lab.core.archive`'s; here every way a
file can be wrong (missing, truncated, not a zip, not ours, a pickled object inside) becomes an
:class:`AgentError`. A checkpoint also records its env (:func:`env_record`, made again by
:func:`make_saved_env`) and its spaces (:func:`describe_space`), so that loading can make the env
again and refuse one the model does not fit.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from agents.common.errors import AgentError
from lab.core.archive import read_archive, write_archive
from lab.core.environments import make_env, registered_env_id

FORMAT = "rl-lab-agent"
FORMAT_VERSION = 1


def checkpoint_path(path: str | os.PathLike) -> Path:
    """The path with ``.npz`` appended when it does not end in it."""
    text = os.fspath(path)
    path = Path(path)
    if path.name in ("", ".", "..") or text.endswith(("/", os.sep)):
        raise AgentError(f"{text!r} names a folder: give the checkpoint a file name, such as model.npz")
    path = path if path.suffix == ".npz" else path.with_name(path.name + ".npz")
    if path.is_dir():
        raise AgentError(f"{str(path)!r} is a folder: give the checkpoint another file name")
    return path


def write_checkpoint(path: str | os.PathLike, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> Path:
    """Write ``arrays`` and ``meta`` (stored as the 0-d unicode array ``"meta"``) atomically."""
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, **meta}
    return write_archive(checkpoint_path(path), meta, arrays, "checkpoint", AgentError)


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The metadata and arrays of a checkpoint, or an :class:`AgentError` saying what is wrong."""
    path = Path(path)
    if not path.exists() and path.suffix != ".npz" and checkpoint_path(path).exists():
        path = checkpoint_path(path)
    if not path.is_file():
        raise AgentError(f"no checkpoint at {path}: the file does not exist")
    what = f"{path} is not an agent checkpoint"
    meta, arrays = read_archive(path, what, AgentError)
    if meta.get("format") == "rl-lab-generative":
        raise AgentError(f"{path} is a generative model, not an agent checkpoint: use 'lab gen'")
    if meta.get("format") != FORMAT:
        raise AgentError(f"{what} (its metadata does not say {FORMAT!r})")
    if meta.get("format_version") != FORMAT_VERSION:
        raise AgentError(
            f"{path} is checkpoint format version {meta.get('format_version')!r}; this lab reads "
            f"version {FORMAT_VERSION}: load it with the lab version that wrote it "
            f"({meta.get('lab_version', 'unknown')})"
        )
    _check_meta(meta, path)
    return meta, arrays


def _check_meta(meta: dict[str, Any], path: Path) -> None:
    """The fields every reader relies on, of the right types (a file may have been edited or forged)."""
    env = meta.get("env")
    if env is not None:
        if not isinstance(env, dict):
            raise AgentError(f"{path}: its 'env' record is not a mapping; got {type(env).__name__}")
        steps = env.get("max_episode_steps")
        if not isinstance(env.get("id"), str) or (
            env.get("kwargs") is not None and not isinstance(env["kwargs"], dict)
        ):
            raise AgentError(f"{path}: its 'env' record needs an id (text) and kwargs (a mapping or null)")
        if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
            raise AgentError(
                f"{path}: its env max_episode_steps {steps!r} is not a whole number >= 1 or null"
            )


def describe_space(space: gym.Space) -> dict[str, Any]:
    """A JSON description of a space, enough to tell whether two spaces fit the same model."""
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    return {"type": type(space).__name__, "repr": str(space)}


def space_name(description: dict[str, Any]) -> str:
    """``Discrete(48)``-style text for a :func:`describe_space` dict."""
    if description.get("type") == "Discrete":
        start = description.get("start", 0)
        return f"Discrete({description.get('n')}" + (f", start={start})" if start else ")")
    return str(description.get("repr", description.get("type")))


def _json_or_none(value: Any) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return None
    return value


def env_record(env: gym.Env) -> dict[str, Any] | None:
    """What a checkpoint records of the env it was trained on, for :func:`make_saved_env`: its id,
    its kwargs (``None`` when they are not JSON) and its step limit; ``None`` for an env without a spec."""
    spec = env.spec
    if spec is None:
        return None
    return {
        "id": spec.id,
        "kwargs": _json_or_none(dict(spec.kwargs)),
        "max_episode_steps": spec.max_episode_steps,
    }


def make_saved_env(env_meta: Any, path: str | os.PathLike) -> gym.Env:
    """The env a checkpoint was trained on, made again from its id and kwargs."""
    if not isinstance(env_meta, dict) or not env_meta.get("id"):
        raise AgentError(f"{path} does not record which env it was trained on: pass env= to load it")
    env_id = registered_env_id(env_meta["id"], str(path), AgentError)  # never a "module:" id: no imports
    kwargs = env_meta.get("kwargs")
    if kwargs is None:
        raise AgentError(
            f"the env arguments of {env_id} could not be saved with {path}: pass env= to load it"
        )
    steps = env_meta.get("max_episode_steps")  # types checked by read_checkpoint
    kwargs = {k: v for k, v in kwargs.items() if k != "render_mode"}
    try:  # as the lab makes envs for agents: the text env's observation comes flattened
        return make_env(env_id, kwargs, max_episode_steps=steps)
    except Exception as exc:  # gymnasium raises many kinds; the user needs to know it failed and why
        raise AgentError(f"could not make the saved env {env_id} ({exc}): pass env= to load {path}") from exc
