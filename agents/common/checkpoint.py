"""The checkpoint file: one ``.npz`` holding arrays and a JSON metadata string, no pickle.

The layout, the atomic writes and the checks on reading are :mod:`lab.core.archive`'s; here every way a
file can be wrong (missing, truncated, not a zip, not ours, a pickled object inside) becomes an
:class:`AgentError`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from agents.common.errors import AgentError
from lab.core.archive import read_archive, write_archive

FORMAT = "rl-lab-agent"
FORMAT_VERSION = 1


def checkpoint_path(path: str | os.PathLike) -> Path:
    """The path with ``.npz`` appended when it does not end in it."""
    path = Path(path)
    if path.name in ("", ".", ".."):
        raise AgentError(f"{str(path)!r} names a folder: give the checkpoint a file name, such as model.npz")
    return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")


def write_checkpoint(path: str | os.PathLike, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> Path:
    """Write ``arrays`` and ``meta`` (stored as the 0-d unicode array ``"meta"``) atomically."""
    return write_archive(
        checkpoint_path(path), {"format": FORMAT, "format_version": FORMAT_VERSION, **meta}, arrays
    )


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
