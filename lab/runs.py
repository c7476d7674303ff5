"""Run directories: everything a training run writes, in one folder it can be resumed from.

runs/<name>/
  spec.yaml            the resolved spec (defaults filled in, the agent's hyperparameters resolved)
  run.json             status: running / finished, timesteps, times, lab version
  metrics.csv          one row per training episode: timestep, episode, return, length
  eval.csv             one row per evaluation: mean/std return, success rate, exact optimality gap
  train.csv            training diagnostics (SB3's names: train/loss, train/approx_kl...) and time/fps,
                       at most one row per episode, the means over the updates since the last row
  tb/                  the same figures as TensorBoard events
  checkpoints/         ckpt-<timestep>.npz, written atomically at episode boundaries
  model.npz            the final model
  replays/             episodes recorded at evaluation time
  learning_curve.png   smoothed returns against timesteps, with evaluations and the optimum
  training.png         the diagnostics of train.csv, a panel each
"""

from __future__ import annotations

import csv
import json
import math
import re
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from lab.core.errors import LabError
from lab.core.files import atomic_path, write_text_atomic

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
        self.replays = self.path / "replays"
        self.curve = self.path / "learning_curve.png"

    @classmethod
    def new(cls, runs_dir: str | Path, name: str, command: str = "lab train") -> RunDir:
        """A run directory that does not exist yet (nothing is written until the run starts);
        ``command`` is the one the error for an existing run suggests for resuming it."""
        run = cls(Path(runs_dir) / name)
        if run.path.exists() and any(run.path.iterdir()):
            raise LabError(
                f"{run.path} already exists; continue it with '{command} --resume {run.path}' "
                "or pick another name (--name)"
            )
        return run

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

    def latest_checkpoint(self) -> Path | None:
        if not self.checkpoints.is_dir():
            return None
        found = [(int(m.group(1)), p) for p in self.checkpoints.iterdir() if (m := _CKPT.match(p.name))]
        return max(found)[1] if found else None

    def best_model(self) -> Path:
        """The final model, or the latest checkpoint of an unfinished run."""
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

    def write_status(self, **fields: Any) -> None:
        status = {**self.read_status(), **fields, "updated": now()}
        write_text_atomic(self.status_file, json.dumps(status, indent=2))


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class MetricsLog:
    """Episode and evaluation figures, to CSV and TensorBoard.

    Opening a log at ``start_timestep > 0`` (a resumed run) first drops the rows a killed run wrote
    after its last checkpoint, so the files read as one uninterrupted run.
    """

    def __init__(self, run: RunDir, start_timestep: int = 0) -> None:
        from tensorboardX import SummaryWriter

        self.run = run
        for path, fields in ((run.metrics, EPISODE_FIELDS), (run.evals, EVAL_FIELDS)):
            self._truncate(path, fields, start_timestep)
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
    def _truncate(path: Path, fields: tuple[str, ...], start: int) -> None:
        rows: list[list[str]] = []
        if path.is_file() and start > 0:
            with path.open(newline="") as f:
                rows = [r for r in csv.reader(f)][1:]
            rows = [r for r in rows if r and int(r[0]) <= start]
        if path.is_file() and start == 0:
            rows = []
        with atomic_path(path) as tmp, tmp.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(fields)
            writer.writerows(rows)

    @staticmethod
    def _truncate_training(path: Path, start: int) -> list[str] | None:
        """Drop the training rows after ``start`` (all of them for a new run); the header kept, if any."""
        if not path.is_file() or start == 0:
            path.unlink(missing_ok=True)
            return None
        with path.open(newline="") as f:
            rows = list(csv.reader(f))
        if not rows:
            return None
        kept = [r for r in rows[1:] if r and int(r[0]) <= start]
        with atomic_path(path) as tmp, tmp.open("w", newline="") as f:
            csv.writer(f).writerows([rows[0], *kept])
        return rows[0]

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
        self._eval_writer.writerow(
            [timestep, *("" if row[k] is None else repr(float(row[k])) for k in EVAL_FIELDS[1:])]
        )
        self._evals.flush()
        for key, value in row.items():
            if value is not None and math.isfinite(value):  # TensorBoard takes finite numbers only
                self.tb.add_scalar(f"eval/{key}", value, timestep)

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
