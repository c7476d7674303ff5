"""Run directories: everything a training run writes, in one folder it can be resumed from.

runs/<name>/
  spec.yaml            the resolved spec (defaults filled in, the agent's hyperparameters resolved)
  run.json             status: running / finished, timesteps, times, lab version
  metrics.csv          one row per training episode: timestep, episode, return, length
  eval.csv             one row per evaluation: mean/std return, success rate, exact optimality gap
  train.csv            training diagnostics (SB3's names: train/loss, train/approx_kl...) and time/fps,
                       at most one row per episode, the means over the updates since the last row
  tb/                  the same figures as TensorBoard events
  checkpoints/         ckpt-<timestep>.npz, written atomically at episode boundaries; the newest
                       ``keep_checkpoints`` are kept, and each records the trainer's own state
  model.npz            the final model
  best.npz             the model of the best evaluation so far (``lab eval/watch RUN --best``)
  .lock                held (flock) by the one process writing the run
  replays/             episodes recorded at evaluation time
  learning_curve.png   smoothed returns against timesteps, with evaluations and the optimum
  training.png         the diagnostics of train.csv, a panel each

The CSV and TensorBoard figures are written by :mod:`lab.run_logs`.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import shutil
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from lab.core.errors import LabError
from lab.core.files import write_text_atomic

T = TypeVar("T")

_CKPT = re.compile(r"^ckpt-(\d+)\.npz$")
LOCK = ".lock"


class RunStopped(Exception):
    """The user stopped a run (Ctrl-C) after its checkpoint was written; the message says how to go on."""


# The kinds of run, each told by a key only its spec.yaml holds, with the command group that runs
# it and its names for the actions where they differ from lab's own
RUN_KINDS: dict[str, tuple[str, str, dict[str, str]]] = {
    "agent": ("agent", "lab", {}),
    "generative model": ("dataset", "lab gen", {}),
    "language model": ("language", "lab lm", {"watch": "sample"}),
}


class RunDir:
    """The paths of one run directory, and the small files that describe it."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.spec = self.path / "spec.yaml"
        self.status_file = self.path / "run.json"
        self.metrics = self.path / "metrics.csv"
        self.evals = self.path / "eval.csv"
        self.training_log = self.path / "train.csv"
        self.tensorboard = self.path / "tb"
        self.checkpoints = self.path / "checkpoints"
        self.model = self.path / "model.npz"
        self.best = self.path / "best.npz"
        self.lock_file = self.path / LOCK
        self.force = False
        self.replays = self.path / "replays"
        self.curve = self.path / "learning_curve.png"

    @classmethod
    def new(cls, runs_dir: str | Path, name: str, command: str = "lab train", force: bool = False) -> RunDir:
        """A run directory that does not exist yet (nothing is written until the run starts);
        ``command`` is the one the error for an existing run suggests. With ``force`` an existing
        run is moved aside when the new one starts (:meth:`claim`)."""
        run = cls(Path(runs_dir) / name)
        if run.has_contents() and not force:
            raise LabError(
                f"{run.path} already exists; continue it with '{command} --resume {run.path}', "
                "start it again with --force (the old run is moved aside) or pick another name (--name)"
            )
        run.force = force
        return run

    def has_contents(self) -> bool:
        return self.path.is_dir() and any(p.name != LOCK for p in self.path.iterdir())

    @contextmanager
    def claim(self, fresh: bool) -> Iterator[None]:
        """Hold the run's lock while it trains: a second process on the same run is refused in one
        line. A ``fresh`` run must find the directory without a spec (checked under the lock, so two
        runs started at once cannot both create it); with ``force`` an old run is moved aside first."""
        if fresh and self.force and self.has_contents():
            self.move_aside()
        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
                raise LabError(
                    f"{self.path} is being trained by another process (pid {holder}); "
                    "wait for it to finish or pick another name (--name)"
                ) from None
            if fresh and self.spec.exists():
                raise LabError(f"{self.path} was created by another run just now; pick another name (--name)")
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def move_aside(self) -> Path:
        """Rename an old run to ``<name>.old-<UTC time>`` (refused while another process trains it)."""
        with self.claim(fresh=False):
            stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
            target = self.path.with_name(f"{self.path.name}.old-{stamp}")
            k = 1
            while target.exists():
                target, k = self.path.with_name(f"{self.path.name}.old-{stamp}-{k}"), k + 1
            self.path.rename(target)
        print(f"lab: moved the old run {self.path} aside to {target}", file=sys.stderr)
        return target

    def clear_outputs(self) -> None:
        """Everything a run wrote except its spec, status and lock (a run started again from step 0)."""
        for path in self.path.iterdir():
            if path.name in (self.spec.name, self.status_file.name, LOCK):
                continue
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()

    def remove_temporary_files(self) -> None:
        """The ``.*.tmp`` files a run killed in the middle of an atomic write leaves behind."""
        for path in self.path.rglob(".*.tmp"):
            path.unlink(missing_ok=True)

    @classmethod
    def open(cls, path: str | Path, kind: str = "", action: str = "") -> RunDir:
        """An existing run directory; with ``kind`` (a key of :data:`RUN_KINDS`), a run of another
        kind is refused with the command that ``action`` (``"train --resume"``, ``"eval"``,
        ``"watch"``) would be for it."""
        run = cls(path)
        if not run.path.is_dir():
            raise LabError(f"{run.path} is not a directory")
        if not run.spec.is_file():
            raise LabError(f"{run.path} is not a run directory (it has no spec.yaml)")
        found = run.kind()
        if kind and found and found != kind:
            group, actions = RUN_KINDS[found][1:]
            raise LabError(
                f"{run.path} is the run of {_article(found)}, not of {_article(kind)}: use '{group} "
                f"{actions.get(action, action)} {run.path}'"
            )
        return run

    def kind(self) -> str:
        """What the run trains (a key of :data:`RUN_KINDS`), told by its spec; "" when it cannot be
        read (the command's own reading of the spec then says why)."""
        from lab.spec import load_spec_file

        try:
            data = load_spec_file(self.spec)
        except LabError:
            return ""
        if not isinstance(data, dict):
            return ""
        return next((kind for kind, (key, *_) in RUN_KINDS.items() if key in data), "")

    def checkpoint_path(self, timestep: int) -> Path:
        return self.checkpoints / f"ckpt-{timestep:09d}.npz"

    def checkpoint_files(self) -> list[Path]:
        """The checkpoints, newest first."""
        if not self.checkpoints.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.checkpoints.iterdir() if (m := _CKPT.match(p.name))]
        return [p for _, p in sorted(found, reverse=True)]

    def latest_checkpoint(self) -> Path | None:
        files = self.checkpoint_files()
        return files[0] if files else None

    def prune_checkpoints(self, keep: int) -> None:
        """Delete all but the newest ``keep`` checkpoints (0 keeps every one)."""
        if keep > 0:
            for path in self.checkpoint_files()[keep:]:
                path.unlink(missing_ok=True)

    def load_latest(self, load: Callable[[Path], T]) -> tuple[Path, T] | None:
        """The newest checkpoint ``load`` accepts (None when there is none); a damaged one is skipped
        with a line saying so. When every checkpoint fails, the newest one's error is raised."""
        files = self.checkpoint_files()
        first_error: LabError | None = None
        for k, path in enumerate(files):
            try:
                return path, load(path)
            except LabError as exc:
                first_error = first_error or exc
                if k + 1 < len(files):
                    print(
                        f"lab: cannot resume from {path.name} ({exc}); trying {files[k + 1].name}",
                        file=sys.stderr,
                    )
        if first_error is not None:
            raise first_error
        return None

    def model_file(self, best: bool = False) -> Path:
        """What ``lab eval`` and ``lab watch`` load: with ``best`` the best evaluated model, else the
        final model, or the latest checkpoint of an unfinished run."""
        if best:
            if not self.best.is_file():
                raise LabError(
                    f"{self.path} has no best.npz (it is written at each evaluation that beats the best)"
                )
            return self.best
        if self.model.is_file():
            return self.model
        latest = self.latest_checkpoint()
        if latest is None:
            raise LabError(f"{self.path} has no model.npz and no checkpoint yet")
        return latest

    def read_status(self) -> dict[str, Any]:
        """The run's status (``run.json``); ``{}`` when it is missing or damaged (not a JSON object)."""
        try:
            status = json.loads(self.status_file.read_text())
        except (OSError, ValueError):
            return {}
        return status if isinstance(status, dict) else {}

    def refuse_if_finished(self, how_far: str | None = None) -> None:
        """``--resume`` of a finished run (its status says so and its model is written) is one line;
        ``how_far`` describes the run's length (default: the step its status records)."""
        status = self.read_status()
        if status.get("status") == "finished" and self.model.is_file():
            how_far = how_far or f"step {status.get('step')}"
            raise LabError(f"{self.path} already finished ({how_far}); nothing to resume")

    def write_status(self, **fields: Any) -> None:
        status = {**self.read_status(), **fields, "updated": now()}
        write_text_atomic(self.status_file, json.dumps(status, indent=2))


def _article(noun: str) -> str:
    return f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def resolve_model_path(target: str | Path, best: bool = False) -> Path:
    """A run directory's model for ``lab eval``/``lab watch`` (``best``: its best.npz); a file as given."""
    path = Path(target)
    if path.is_dir():
        return RunDir.open(path).model_file(best=best)
    if best:
        raise LabError(f"--best takes a run directory; {path} is a file")
    return path


@contextmanager
def disk_full_is_an_error(run: RunDir, command: str) -> Iterator[None]:
    """A full disk (or quota) becomes one line; the atomic writes leave every earlier file intact."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        where = f" writing {exc.filename}" if exc.filename else ""
        latest = run.latest_checkpoint()
        kept = f"; the last good checkpoint is {latest.name}" if latest else ""
        raise LabError(
            f"no space left on the disk{where}{kept}: free some space, then '{command} --resume {run.path}'"
        ) from None


class StopOnInterrupt:
    """Within ``with``, Ctrl-C (SIGINT) asks the run to stop at its next safe point, where it writes
    a checkpoint; a second Ctrl-C stops at once. Outside the main thread it does nothing."""

    def __init__(self) -> None:
        self.requested = False
        self._installed = False
        self._previous: Any = None

    def __enter__(self) -> StopOnInterrupt:
        self._installed = threading.current_thread() is threading.main_thread()
        if self._installed:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nlab: stopping at the next checkpoint (Ctrl-C again stops at once)", file=sys.stderr)

    def __exit__(self, *exc: object) -> None:
        if self._installed:  # None: a handler not set from Python; the default is the best we can do
            signal.signal(signal.SIGINT, self._previous if self._previous is not None else signal.SIG_DFL)
