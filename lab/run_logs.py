"""The figures a run writes as it goes, in its run directory (:class:`lab.runs.RunDir`):
``metrics.csv`` (episodes), ``eval.csv``, ``train.csv`` and their TensorBoard scalars
(:class:`MetricsLog`), and the CSV helpers the agent, generative and language-model trainers share:
one figures row (:func:`write_figures`), the finite figures to TensorBoard (:func:`add_finite_scalars`),
the rows a resumed run keeps (:func:`keep_rows_until`), and a CSV read back as columns
(:func:`read_csv`)."""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from lab.core.errors import LabError
from lab.core.files import atomic_path
from lab.runs import RunDir

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
        add_finite_scalars(self.tb, timestep, row)

    def episode(self, timestep: int, episode: int, ret: float, length: int) -> None:
        self._episode_writer.writerow((timestep, episode, repr(float(ret)), length))
        self.tb.add_scalar("episode/return", ret, timestep)
        self.tb.add_scalar("episode/length", length, timestep)

    def evaluation(self, timestep: int, row: dict[str, Any]) -> None:
        write_figures(self._eval_writer, self.tb, timestep, EVAL_FIELDS[1:], row, "eval/")
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
    rows: Any, tb: Any, step: int, fields: Sequence[str], row: dict[str, Any], prefix: str
) -> None:
    """One row of a figures CSV (``rows``, a ``csv.writer``): the step, then each of ``fields`` from
    ``row`` as a float (an empty cell where it has none, or None); and each finite figure as the
    TensorBoard scalar ``prefix + name`` (:func:`add_finite_scalars`)."""
    figures = {k: float(v) for k, v in row.items() if v is not None}
    rows.writerow([step, *("" if k not in figures else repr(figures[k]) for k in fields)])
    add_finite_scalars(tb, step, figures, prefix)


def add_finite_scalars(tb: Any, step: int, figures: dict[str, float], prefix: str = "") -> None:
    """Each finite figure as the TensorBoard scalar ``prefix + name``: TensorBoard takes finite
    numbers only (a NaN figure, such as an undefined explained variance, is left out)."""
    for key, value in figures.items():
        if math.isfinite(value):
            tb.add_scalar(prefix + key, value, step)


def keep_rows_until(path: Path, header: Sequence[str], start: int, limit: int | None = None) -> int:
    """Rewrite the CSV ``path`` (atomically) as ``header`` and its rows whose first cell, a step, is
    at most ``start`` (none when ``start`` is 0: a new run), at most ``limit`` of them: how a resumed
    run drops what a killed one wrote after its checkpoint. Returns how many rows were kept."""
    rows: list[list[str]] = []
    if path.is_file() and start > 0:
        try:
            with path.open(newline="") as f:
                rows = [r for r in list(csv.reader(f))[1:] if r and int(r[0]) <= start][:limit]
        except (UnicodeDecodeError, csv.Error, ValueError) as exc:
            raise damaged_log(path, exc) from None
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
    try:
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            for row in reader:
                for key, value in row.items():
                    if key is None:  # a row longer than the header: its extra cells, a list
                        raise ValueError(f"line {reader.line_num} has more cells than the header")
                    columns.setdefault(key, []).append(float(value) if value not in ("", None) else math.nan)
    except (UnicodeDecodeError, csv.Error, ValueError) as exc:
        raise damaged_log(path, exc) from None
    return columns


def damaged_log(path: Path, exc: Exception) -> LabError:
    """The one-line error of a CSV log that is not the lab's (binary, edited, cut)."""
    reason = "not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else str(exc).splitlines()[0][:120]
    return LabError(f"{path} is damaged ({reason}); move it away (the run's other files are kept)")
