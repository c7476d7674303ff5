"""Atomic file writes: a temporary file in the same folder, then a rename, so a reader (or a run
killed mid-write) only ever sees the old file or the complete new one. And the paths a run records."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lab.core.errors import LabError


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on error it is removed.
    A folder at ``path`` is refused first (the rename would fail after all the work, naming the
    temporary file)."""
    path = Path(path)
    if path.is_dir():
        raise LabError(f"{path} is a folder: give a file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, default_file_mode())  # mkstemp makes 0600 files; give the usual permissions
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def default_file_mode() -> int:
    """The mode ``open()`` gives a new file (0o666 less the umask), for files made by ``mkstemp``."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def write_text_atomic(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def absolute_language(name: str) -> str:
    """A text language's name (``english``, ``text:FILE``, a ``.pcfg`` file) with a file's path made
    absolute, so that a run's spec and model name the same file when the run is evaluated, sampled
    or resumed from another folder."""
    prefix = "text:" if name.startswith("text:") else ""
    path = Path(name.removeprefix(prefix))
    return prefix + str(path.resolve()) if (prefix or path.suffix) and path.is_file() else name
