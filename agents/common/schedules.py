"""Schedules: a number that changes as training goes on (the exploration rate, for one).

Every schedule is read on one clock, the agent's env step count: ``value(step, total_steps)``
where ``step`` is the number of env steps taken so far (``Agent.num_timesteps``) and
``total_steps`` the step count the current ``learn`` call trains up to (its ``total_timesteps``,
plus the steps already taken when it carries on with ``reset_num_timesteps=False``, as SB3 counts).

In hyperparameters a schedule is written as

- a number: constant;
- ``"lin_<x>"`` (rl-baselines3-zoo's form): from ``x`` down to 0 over the whole of ``total_steps``,
  a linear schedule with ``fraction=1`` that keeps its text as its hyperparameter form;
- ``{"type": "linear", "start": 1.0, "end": 0.05, "fraction": 0.5}``: from ``start`` to ``end``
  in a straight line over the first ``fraction`` of ``total_steps``, then ``end``;
- ``{"type": "exponential", "start": 1.0, "end": 0.01, "decay": 0.999}``:
  ``max(end, start * decay ** step)``, a factor of ``decay`` per env step, never below ``end``.

A linear schedule depends on ``total_steps``, so a resumed run repeats an uninterrupted one
exactly only when it is resumed with the same ``total_timesteps`` (which is what resuming means);
constant and exponential schedules depend on the step count alone.
"""

from __future__ import annotations

import difflib
import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import numpy as np

from agents.common.errors import AgentError

ZOO_PREFIX = "lin_"

SCHEDULE_KEYS: dict[str, tuple[str, ...]] = {
    "linear": ("start", "end", "fraction"),
    "exponential": ("start", "end", "decay"),
}


class Schedule(ABC):
    """A value as a function of the env step count (see the module docstring for the clock)."""

    @abstractmethod
    def value(self, step: int, total_steps: int | None = None) -> float:
        """The value after ``step`` env steps of a run that trains to ``total_steps``."""

    @abstractmethod
    def bind(self, total_steps: int | None) -> Callable[[int], float]:
        """``value`` with ``total_steps`` fixed: a plain function of the step, for hot loops."""

    @abstractmethod
    def config(self) -> float | dict[str, Any]:
        """The hyperparameter form (JSON): a float, or a dict with ``type`` and every parameter."""

    def bounds(self) -> tuple[float, float]:
        """The smallest and largest value the schedule can take."""
        ends = self._ends()
        return min(ends), max(ends)

    @abstractmethod
    def _ends(self) -> tuple[float, float]:
        """The first and the last value."""

    def __eq__(self, other: object) -> bool:  # configs holding schedules compare by their form
        return isinstance(other, Schedule) and type(self) is type(other) and self.config() == other.config()

    __hash__ = None  # type: ignore[assignment]  (mutable-looking: equal by value)


class ConstantSchedule(Schedule):
    """The same value at every step."""

    def __init__(self, value: float) -> None:
        self._value = float(value)

    def value(self, step: int, total_steps: int | None = None) -> float:
        return self._value

    def bind(self, total_steps: int | None) -> Callable[[int], float]:
        value = self._value
        return lambda step: value

    def config(self) -> float:
        return self._value

    def _ends(self) -> tuple[float, float]:
        return self._value, self._value

    def __repr__(self) -> str:
        return f"ConstantSchedule({self._value!r})"


class LinearSchedule(Schedule):
    """From ``start`` to ``end`` over the first ``fraction`` of training, then ``end``.

    Before any ``total_steps`` is known (no ``learn`` call yet) the value is ``start``.
    """

    def __init__(self, start: float, end: float, fraction: float) -> None:
        self.start, self.end, self.fraction = float(start), float(end), float(fraction)

    def value(self, step: int, total_steps: int | None = None) -> float:
        return self.bind(total_steps)(step)

    def bind(self, total_steps: int | None) -> Callable[[int], float]:
        start, end = self.start, self.end
        if not total_steps:
            return lambda step: start
        span = self.fraction * total_steps
        if span <= 0:  # no time to decay: straight to the end value
            return lambda step: end

        def linear(step: int) -> float:
            progress = step / span
            if progress >= 1.0:
                return end
            return (1.0 - progress) * start + progress * end

        return linear

    def config(self) -> dict[str, Any]:
        return {"type": "linear", "start": self.start, "end": self.end, "fraction": self.fraction}

    def _ends(self) -> tuple[float, float]:
        return self.start, self.end

    def __repr__(self) -> str:
        return f"LinearSchedule(start={self.start!r}, end={self.end!r}, fraction={self.fraction!r})"


class ZooLinearSchedule(LinearSchedule):
    """rl-zoo's ``"lin_<x>"``: from ``x`` to 0 over the whole run; its form stays the text it was given."""

    def __init__(self, text: str, start: float) -> None:
        super().__init__(start, 0.0, 1.0)
        self.text = text

    def config(self) -> str:  # type: ignore[override]
        return self.text

    def __repr__(self) -> str:
        return f"ZooLinearSchedule({self.text!r})"


class ExponentialSchedule(Schedule):
    """``start`` shrinking by a factor ``decay`` per env step, never below ``end``."""

    def __init__(self, start: float, end: float, decay: float) -> None:
        self.start, self.end, self.decay = float(start), float(end), float(decay)

    def value(self, step: int, total_steps: int | None = None) -> float:
        return self.bind(total_steps)(step)

    def bind(self, total_steps: int | None) -> Callable[[int], float]:
        start, end, decay = self.start, self.end, self.decay
        if decay == 1.0 or start == end:
            return lambda step: start

        def exponential(step: int) -> float:
            value = start * decay**step
            return value if value > end else end

        return exponential

    def config(self) -> dict[str, Any]:
        return {"type": "exponential", "start": self.start, "end": self.end, "decay": self.decay}

    def _ends(self) -> tuple[float, float]:
        return self.end, self.start

    def __repr__(self) -> str:
        return f"ExponentialSchedule(start={self.start!r}, end={self.end!r}, decay={self.decay!r})"


def _number(value: Any, where: str) -> float:
    if (
        isinstance(value, (bool, np.bool_))
        or not isinstance(value, (int, float, np.integer, np.floating))
        or not math.isfinite(value)
    ):
        raise AgentError(f"{where} must be a finite number; got {value!r}")
    return float(value)


def _suggest(word: str, choices: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def make_schedule(spec: float | str | dict[str, Any] | Schedule, name: str = "schedule") -> Schedule:
    """A :class:`Schedule` from its hyperparameter form: a number, ``"lin_<x>"``, or a dict with a ``type``.

    ``name`` is the hyperparameter's name, used in error messages.
    """
    if isinstance(spec, Schedule):
        return spec
    if isinstance(spec, dict):
        kind = spec.get("type")
        if not isinstance(kind, str) or kind not in SCHEDULE_KEYS:  # a list or dict is not hashable
            got = "no 'type'" if kind is None else f"type {kind!r}"
            hint = _suggest(kind, tuple(SCHEDULE_KEYS)) if isinstance(kind, str) else ""
            raise AgentError(
                f"{name}: a schedule dict needs 'type' set to one of {', '.join(map(repr, SCHEDULE_KEYS))}; "
                f"got {got}{hint}"
            )
        keys = SCHEDULE_KEYS[kind]
        for key in spec:
            if key != "type" and key not in keys:
                raise AgentError(
                    f"{name}: a {kind} schedule has no {key!r}{_suggest(str(key), keys)} "
                    f"(its keys: type, {', '.join(keys)})"
                )
        missing = [key for key in keys if key not in spec]
        if missing:
            raise AgentError(f"{name}: a {kind} schedule needs {', '.join(map(repr, missing))}")
        start = _number(spec["start"], f"{name}['start']")
        end = _number(spec["end"], f"{name}['end']")
        if kind == "linear":
            fraction = _number(spec["fraction"], f"{name}['fraction']")
            if not 0.0 < fraction <= 1.0:
                raise AgentError(
                    f"{name}['fraction'] is the share of total_timesteps the line spans, in (0, 1]; "
                    f"got {fraction}"
                )
            return LinearSchedule(start, end, fraction)
        decay = _number(spec["decay"], f"{name}['decay']")
        if not 0.0 < decay <= 1.0:
            raise AgentError(f"{name}['decay'] is the factor per env step, in (0, 1]; got {decay}")
        if not 0.0 <= end <= start:
            raise AgentError(
                f"{name}: an exponential schedule decays from start down to end, so 0 <= end <= start; "
                f"got start={start}, end={end}"
            )
        return ExponentialSchedule(start, end, decay)
    if isinstance(spec, str) and spec.startswith(ZOO_PREFIX):
        try:
            start = float(spec[len(ZOO_PREFIX) :])
        except ValueError:
            start = math.nan
        if not math.isfinite(start):
            raise AgentError(f"{name}: {spec!r} is not 'lin_<number>' (rl-zoo's linear decay to 0)")
        return ZooLinearSchedule(spec, start)
    if isinstance(spec, (int, float, np.integer, np.floating)) and not isinstance(spec, (bool, np.bool_)):
        return ConstantSchedule(_number(spec, name))
    raise AgentError(
        f"{name} must be a number (constant), 'lin_<number>' or a schedule dict such as "
        f'{{"type": "linear", "start": 1.0, "end": 0.05, "fraction": 0.5}}; got {spec!r}'
    )
