"""The checkpoint file: one ``.npz`` holding arrays and a JSON metadata string, no pickle.

Files cross machines, so they are data, never code: :func:`read_checkpoint` loads with
``allow_pickle=False`` and turns every way a file can be wrong (missing, truncated, not a zip, not
ours, a pickled object inside) into an :class:`AgentError`. Writes are atomic: a temporary file in
the same folder, then ``os.replace``, so a reader never sees half a checkpoint.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from agents.errors import AgentError

FORMAT = "rl-lab-agent"
FORMAT_VERSION = 1


def checkpoint_path(path: str | os.PathLike) -> Path:
    """The path with ``.npz`` appended when it does not end in it."""
    path = Path(path)
    return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")


def write_checkpoint(path: str | os.PathLike, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> Path:
    """Write ``arrays`` and ``meta`` (stored as the 0-d unicode array ``"meta"``) atomically."""
    path = checkpoint_path(path)
    if "meta" in arrays:
        raise ValueError("'meta' is reserved for the metadata string")
    document = json.dumps({"format": FORMAT, "format_version": FORMAT_VERSION, **meta}, sort_keys=True)
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, meta=np.array(document), **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return path


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The metadata and arrays of a checkpoint, or an :class:`AgentError` saying what is wrong."""
    path = Path(path)
    if not path.exists() and path.suffix != ".npz" and checkpoint_path(path).exists():
        path = checkpoint_path(path)
    if not path.is_file():
        raise AgentError(f"no checkpoint at {path}: the file does not exist")
    what = f"{path} is not an agent checkpoint"
    if not zipfile.is_zipfile(path):
        raise AgentError(f"{what}: it is not an .npz (zip) archive, or it is truncated")
    try:
        with np.load(path, allow_pickle=False) as data:
            if "meta" not in data.files:
                raise AgentError(f"{what} (no 'meta' entry)")
            arrays = {name: data[name] for name in data.files}
    except AgentError:
        raise
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise AgentError(
                f"{what}: it holds pickled Python objects, which could run code and are never loaded"
            ) from None
        raise AgentError(f"{what}, or it is damaged: {exc}") from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error, KeyError, RuntimeError) as exc:
        raise AgentError(f"{what}, or it is truncated or damaged: {exc}") from None
    meta_array = arrays.pop("meta")
    if meta_array.ndim != 0 or meta_array.dtype.kind != "U":
        raise AgentError(f"{what} ('meta' is not a JSON string)")
    try:
        meta = json.loads(str(meta_array[()]))
    except json.JSONDecodeError as exc:
        raise AgentError(f"{what} ('meta' is not valid JSON: {exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise AgentError(f"{what} (its metadata does not say {FORMAT!r})")
    if meta.get("format_version") != FORMAT_VERSION:
        raise AgentError(
            f"{path} is checkpoint format version {meta.get('format_version')!r}; this lab reads "
            f"version {FORMAT_VERSION}: load it with the lab version that wrote it "
            f"({meta.get('lab_version', 'unknown')})"
        )
    return meta, arrays
