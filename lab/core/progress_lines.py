"""rich's progress bar draws nothing on an output that is not a terminal (a pipe, a log file, a job
run under ``nohup``) until it ends, so a long run would say nothing for hours. :class:`LineProgress`
is that bar, printing its line there every ``every`` seconds instead."""

from __future__ import annotations

from time import monotonic
from typing import Any

from rich.progress import Progress, TaskID

LINE_EVERY = 30.0
"""Seconds between the lines a bar prints where the output is not a terminal."""


class LineProgress(Progress):
    """``rich.progress.Progress`` that, on an output that is not a terminal (nor a notebook), prints
    its current line as it is updated, at most once every ``every`` seconds."""

    def __init__(self, *columns: Any, every: float = LINE_EVERY, **kwargs: Any) -> None:
        super().__init__(*columns, **kwargs)
        self.every = every
        self._last_line = monotonic()

    def update(self, task_id: TaskID, **kwargs: Any) -> None:
        super().update(task_id, **kwargs)
        self._line_if_due()

    def advance(self, task_id: TaskID, advance: float = 1) -> None:
        super().advance(task_id, advance)
        self._line_if_due()

    def _line_if_due(self) -> None:
        console = self.console
        if self.disable or console.is_terminal or console.is_jupyter or not self.live.is_started:
            return
        now = monotonic()
        if now - self._last_line >= self.every:
            self._last_line = now
            console.print(self.get_renderable())
