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
"""

from __future__ import annotations

import csv
import errno
import fcntl
import json
import math
import os
import re
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO, TypeVar

from lab.core.errors import LabError
from lab.core.files import atomic_path, write_text_atomic

T = TypeVar("T")

EPISODE_FIELDS = ("timestep", "episode", "return", "length")
EVAL_FIELDS = (
    "timestep",
    "mean_return",
    "std_return",
    "success_rate",
    "optimal_value",
    "policy_value",
    "gap",
)
_CKPT = re.compile(r"^ckpt-(\d+)\.npz$")
LOCK = ".lock"


class RunStopped(Exception):
    """The user stopped a run (Ctrl-C) after its checkpoint was written; the message says how to go on."""


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
    def open(cls, path: str | Path) -> RunDir:
        run = cls(path)
        if not run.path.is_dir():
            raise LabError(f"{run.path} is not a directory")
        if not run.spec.is_file():
            raise LabError(f"{run.path} is not a run directory (it has no spec.yaml)")
        return run

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
        try:
            return json.loads(self.status_file.read_text())
        except (OSError, ValueError):
            return {}

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


class MetricsLog:
    """Episode and evaluation figures, to CSV and TensorBoard.

    Opening a log at ``start_timestep > 0`` (a resumed run) first drops the rows a killed run wrote
    after its last checkpoint, so the files read as one uninterrupted run.
    """

    def __init__(self, run: RunDir, start_timestep: int = 0) -> None:
        from tensorboardX import SummaryWriter

        self.run = run
        for path, fields in ((run.metrics, EPISODE_FIELDS), (run.evals, EVAL_FIELDS)):
            keep_rows_until(path, fields, start_timestep)
        self._episodes = run.metrics.open("a", newline="")
        self._evals = run.evals.open("a", newline="")
        self._episode_writer = csv.writer(self._episodes)
        self._eval_writer = csv.writer(self._evals)
        self.tb = SummaryWriter(str(run.tensorboard), purge_step=start_timestep or None)
        self._start, self._opened = start_timestep, time.perf_counter()  # for time/fps
        self._training_fields = self._truncate_training(run.training_log, start_timestep)
        self._training: TextIO | None = None  # opened at the first row: tabular agents write none
        self._training_writer: csv.DictWriter | None = None

    @staticmethod
    def _truncate_training(path: Path, start: int) -> list[str] | None:
        """Drop the training rows after ``start`` (all of them for a new run); the header kept, if any."""
        if not path.is_file() or start == 0:
            path.unlink(missing_ok=True)
            return None
        with path.open(newline="") as f:
            header = next(csv.reader(f), None)
        if header is not None:
            keep_rows_until(path, header, start)
        return header

    def training(self, timestep: int, figures: dict[str, float]) -> None:
        """An agent's training diagnostics (``agent.training_figures()``) and ``time/fps``, the env steps
        per second since this log opened, as a row of ``train.csv`` and TensorBoard scalars. Nothing
        when ``figures`` is empty (no update since the last row). The columns are the first row's."""
        if not figures:
            return
        elapsed = time.perf_counter() - self._opened
        row = {**figures, "time/fps": (timestep - self._start) / elapsed if elapsed > 0 else math.nan}
        if self._training is None or self._training_writer is None:
            self._training = self.run.training_log.open("a", newline="")
            fields = self._training_fields or ["timestep", *sorted(row)]
            self._training_writer = csv.DictWriter(self._training, fields, restval="", extrasaction="ignore")
            if self._training_fields is None:
                self._training_writer.writeheader()
        self._training_writer.writerow({"timestep": timestep, **{k: repr(float(v)) for k, v in row.items()}})
        for key, value in row.items():
            if math.isfinite(value):
                self.tb.add_scalar(key, value, timestep)

    def episode(self, timestep: int, episode: int, ret: float, length: int) -> None:
        self._episode_writer.writerow((timestep, episode, repr(float(ret)), length))
        self.tb.add_scalar("episode/return", ret, timestep)
        self.tb.add_scalar("episode/length", length, timestep)

    def evaluation(self, timestep: int, row: dict[str, Any]) -> None:
        figures = {k: float(v) for k, v in row.items() if v is not None}
        write_figures(self._eval_writer, self.tb, timestep, EVAL_FIELDS[1:], figures, "eval/")
        self._evals.flush()

    def flush(self) -> None:
        self._episodes.flush()
        self._evals.flush()
        if self._training is not None:
            self._training.flush()
        self.tb.flush()

    def close(self) -> None:
        self.flush()
        self._episodes.close()
        self._evals.close()
        if self._training is not None:
            self._training.close()
        self.tb.close()


def write_figures(
    rows: Any, tb: Any, step: int, fields: Sequence[str], figures: dict[str, float], prefix: str
) -> None:
    """One row of a figures CSV (``rows``, a ``csv.writer``): the step, then each of ``fields`` from
    ``figures`` (an empty cell where it has none); and each finite figure as the TensorBoard scalar
    ``prefix + name`` (TensorBoard takes finite numbers only)."""
    rows.writerow([step, *("" if k not in figures else repr(figures[k]) for k in fields)])
    for key, value in figures.items():
        if math.isfinite(value):
            tb.add_scalar(prefix + key, value, step)


def keep_rows_until(path: Path, header: Sequence[str], start: int, limit: int | None = None) -> int:
    """Rewrite the CSV ``path`` (atomically) as ``header`` and its rows whose first cell, a step, is
    at most ``start`` (none when ``start`` is 0: a new run), at most ``limit`` of them: how a resumed
    run drops what a killed one wrote after its checkpoint. Returns how many rows were kept."""
    rows: list[list[str]] = []
    if path.is_file() and start > 0:
        with path.open(newline="") as f:
            rows = [r for r in list(csv.reader(f))[1:] if r and int(r[0]) <= start][:limit]
    with atomic_path(path) as tmp, tmp.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return len(rows)


def read_csv(path: Path) -> dict[str, list[float]]:
    """A metrics CSV as columns of floats (empty cells as NaN)."""
    columns: dict[str, list[float]] = {}
    if not path.is_file():
        return columns
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            for key, value in row.items():
                columns.setdefault(key, []).append(float(value) if value not in ("", None) else float("nan"))
    return columns
