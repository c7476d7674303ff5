"""Progress bars of the lab's long commands: rich columns that keep a line within 80 characters and
say what each figure is (``elapsed 0:01:02``, ``left 0:03:00``)."""

from __future__ import annotations

import math

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn
from rich.text import Text

from lab.core.progress_lines import LineProgress


def compact_count(n: float) -> str:
    """A count in at most 5 characters: ``9,999``, ``72.5k``, ``100k``, ``1.25M``."""
    n = float(n)
    if n < 10_000:
        return f"{n:,.0f}"
    if n < 999_500:
        return f"{n / 1e3:.1f}k" if n < 99_950 else f"{n / 1e3:.0f}k"
    return f"{n / 1e6:.2f}M" if n < 9_995_000 else f"{n / 1e6:.0f}M"


def compact_number(x: float) -> str:
    """A figure such as a return or a loss in at most 8 characters."""
    if not math.isfinite(x):
        return "-"
    if abs(x) >= 1e5:
        return f"{x:.1e}"
    if abs(x) >= 100:
        return f"{x:,.1f}"
    return f"{x:.3g}"


def clock(seconds: float) -> str:
    """``H:MM:SS``, hours counting on past a day (``26:00:00``)."""
    minutes, secs = divmod(max(0, int(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


class LabelledTime(ProgressColumn):
    """``elapsed 0:01:02`` or ``left 0:03:00`` (``left -:--:--`` until there is an estimate)."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def render(self, task: Task) -> Text:
        seconds = task.finished_time if self.kind == "elapsed" and task.finished else None
        if seconds is None:
            seconds = task.elapsed if self.kind == "elapsed" else task.time_remaining
        shown = "-:--:--" if seconds is None else clock(seconds)
        return Text(
            f"{self.kind} {shown}",
            style="progress.elapsed" if self.kind == "elapsed" else "progress.remaining",
        )


def timed_progress(
    *columns: ProgressColumn | str, console: Console | None = None, disable: bool = False
) -> Progress:
    """A progress bar of ``columns`` followed by the labelled elapsed and remaining times (a line
    every half minute where the output is not a terminal)."""
    return LineProgress(
        *columns, LabelledTime("elapsed"), LabelledTime("left"), console=console, disable=disable
    )


def measuring_bar(description: str, disable: bool = False, console: Console | None = None) -> Progress:
    """A bar for a measurement counted in items (images generated, episodes played)."""
    return timed_progress(
        TextColumn(description),
        BarColumn(bar_width=20),
        TextColumn("{task.completed:,}/{task.total:,}"),
        console=console,
        disable=disable,
    )


def training_progress(disable: bool = False, console: Console | None = None) -> Progress:
    """The bar of ``lab train``, within 80 columns: bar, steps, episodes, mean return, times."""
    return timed_progress(
        BarColumn(bar_width=10),
        TextColumn("{task.fields[steps]}"),
        TextColumn("ep {task.fields[episodes]}"),
        TextColumn("return {task.fields[mean_return]}"),
        console=console,
        disable=disable,
    )


def progress_fields(timestep: int, total: int, episodes: int, mean_return: float) -> dict[str, str]:
    """The figures of :func:`training_progress`, each a few characters wide."""
    return {
        "steps": f"{compact_count(timestep)}/{compact_count(total)}",
        "episodes": compact_count(episodes),
        "mean_return": compact_number(mean_return),
    }


def render(progress: Progress, width: int = 80) -> str:
    """What ``progress`` shows now, as plain text at ``width`` columns (for tests and logs)."""
    console = Console(width=width, record=True, force_terminal=False, color_system=None)
    with console.capture() as captured:
        console.print(progress.get_renderable())
    return captured.get()
