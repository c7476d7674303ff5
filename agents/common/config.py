"""Typed hyperparameters: one frozen dataclass per algorithm (stable-baselines3's names and defaults),
checked in one place.

An algorithm's config lists its fields with the helpers below (``count``, ``fraction``, ``positive``,
``flag``, ``choice``, ``schedule``, ...): each carries, in ``dataclasses.field(metadata=...)``, how a
given value is checked and resolved (a count written ``1e5`` becomes ``100000``; a schedule's form
becomes a :class:`~agents.common.schedules.Schedule`) and how it is written back. ``__post_init__``
applies them field by field, then :meth:`AgentConfig.check` the rules that tie fields together.

- :meth:`AgentConfig.from_kwargs` is how an agent reads the ``**hyperparameters`` it was given: an
  unknown key is refused naming the closest one; a hyperparameter an earlier version had is accepted
  at the value that is what agents do now (see :data:`REMOVED_HYPERPARAMETERS`).
- :meth:`AgentConfig.to_dict` is the JSON form saved in checkpoints and recorded by ``lab train``;
  fed back to ``from_kwargs`` it gives an equal config.
"""

from __future__ import annotations

import copy
import difflib
import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from agents.common.errors import AgentError
from agents.common.schedules import Schedule, make_schedule

if TYPE_CHECKING:
    from typing_extensions import Self

# What every agent takes as arguments of its own, before the config's fields.
AGENT_ARGUMENTS = ("seed", "gamma")

# Hyperparameters that earlier versions had: name -> (the value that is what agents do now, the version
# that removed it, what it did). Specs and checkpoints carrying that value still load; others are refused.
REMOVED_HYPERPARAMETERS: dict[str, tuple[Any, str, str]] = {
    "seeding": ("lab", "0.2.0", "seeding='sb3' repeated stable-baselines3's random numbers"),
}

ONE_OVER_N = "1/N"  # the tabular agents' step size: one over the pair's number of updates


def _is_number(value: Any) -> bool:
    """A finite real number (bools are not numbers here)."""
    return (
        not isinstance(value, (bool, np.bool_))
        and isinstance(value, (int, float, np.integer, np.floating))
        and math.isfinite(value)
    )


def whole_number(name: str, value: Any, minimum: int) -> int:
    """A count (``buffer_size``, ``n_steps``, a step budget) as an int: an int, or a float with a whole
    value, as YAML reads ``1e5``; anything else, or less than ``minimum``, is an :class:`AgentError`."""
    if isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise AgentError(f"{name} must be a whole number >= {minimum}; got {value!r}")
    return int(value)


# ----- field kinds: each a default plus how to resolve a given value (name, value) -> value -----

Resolve = Callable[[str, Any], Any]


def _same(value: Any) -> Any:
    return value


def _field(default: Any, resolve: Resolve, dump: Callable[[Any], Any] = _same) -> Any:
    metadata = {"resolve": resolve, "dump": dump}
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def count(default: int, minimum: int = 1, error: str | None = None) -> Any:
    """A whole number >= ``minimum`` (``1e5`` read as 100000); ``error`` replaces the message."""

    def resolve(name: str, value: Any) -> int:
        try:
            return whole_number(name, value, minimum)
        except AgentError:
            if error is None:
                raise
            raise AgentError(f"{error}; got {value!r}") from None

    return _field(default, resolve)


def fraction(default: float) -> Any:
    """A number in [0, 1]."""

    def resolve(name: str, value: Any) -> float:
        if not _is_number(value) or not 0.0 <= value <= 1.0:
            raise AgentError(f"{name} must be a number in [0, 1]; got {value!r}")
        return float(value)

    return _field(default, resolve)


def positive(default: float | None, nullable: bool = False) -> Any:
    """A finite number > 0 (or None when ``nullable``)."""

    def resolve(name: str, value: Any) -> float | None:
        if value is None and nullable:
            return None
        if not _is_number(value) or value <= 0:
            null = " or null" if nullable else ""
            raise AgentError(f"{name} must be a positive number{null}; got {value!r}")
        return float(value)

    return _field(default, resolve)


def non_negative(default: float) -> Any:
    """A finite number >= 0."""

    def resolve(name: str, value: Any) -> float:
        if not _is_number(value) or value < 0:
            raise AgentError(f"{name} must be a number >= 0; got {value!r}")
        return float(value)

    return _field(default, resolve)


def number(default: float) -> Any:
    """Any finite number."""

    def resolve(name: str, value: Any) -> float:
        if not _is_number(value):
            raise AgentError(f"{name} must be a finite number; got {value!r}")
        return float(value)

    return _field(default, resolve)


def flag(default: bool) -> Any:
    """True or false."""

    def resolve(name: str, value: Any) -> bool:
        if not isinstance(value, (bool, np.bool_)):
            raise AgentError(f"{name} must be true or false; got {value!r}")
        return bool(value)

    return _field(default, resolve)


def choice(default: str, options: tuple[str, ...]) -> Any:
    """One of a few strings."""

    def resolve(name: str, value: Any) -> str:
        if value not in options:
            raise AgentError(f"{name} must be {' or '.join(map(repr, options))}; got {value!r}")
        return value

    return _field(default, resolve)


def mapping(default: dict[str, Any], check: Callable[[Any], dict[str, Any]]) -> Any:
    """A dict checked by ``check`` (``policy_kwargs``), which raises :class:`AgentError` or returns it."""
    return _field(default, lambda name, value: check(value), lambda value: copy.deepcopy(value))


def schedule(
    default: float | str,
    low: float,
    high: float,
    *,
    open_low: bool = False,
    positive_start: bool = False,
    one_over_n: bool = False,
    nullable: bool = False,
    error: str | None = None,
    range_error: str | None = None,
) -> Any:
    """A :class:`~agents.common.schedules.Schedule` (a number, ``"lin_<x>"`` or a schedule dict) whose
    values lie in ``[low, high]`` (``(low, high]`` when ``open_low``) and, when ``positive_start``, starts
    above 0; ``one_over_n`` also takes the string ``"1/N"`` (kept as that string), ``nullable`` None
    (off). ``error`` is the
    message for a value of the wrong kind or range (a schedule dict's own faults are named as such),
    ``range_error`` one for the range alone."""

    def resolve(name: str, value: Any) -> Schedule | str | None:
        if value is None and nullable:
            return None
        if one_over_n and isinstance(value, str) and value.replace(" ", "").upper() == ONE_OVER_N:
            return ONE_OVER_N
        zoo_form = isinstance(value, str) and value.startswith("lin_")
        if error and not (isinstance(value, (dict, Schedule)) or _is_number(value) or zoo_form):
            raise AgentError(f"{error}; got {value!r}")
        resolved = make_schedule(value, name)
        least, most = resolved.bounds()
        if (
            (least <= low if open_low else least < low)
            or most > high
            or (positive_start and not resolved.value(0) > 0)
        ):
            message = range_error or error or f"{name}'s values must lie in [{low}, {high}]"
            raise AgentError(f"{message}; got {value!r}")
        return resolved

    return _field(
        default, resolve, lambda value: value if value is None or isinstance(value, str) else value.config()
    )


def rate(default: float | str | None, name: str = "learning_rate", nullable: bool = False) -> Any:
    """A neural agent's learning rate or PPO's clip ranges: a positive number, rl-zoo's ``"lin_<x>"``
    or a schedule dict, starting above 0 (or None when ``nullable``)."""
    null = ", or null" if nullable else ""
    error = f"{name} must be a positive number or 'lin_<number>' (or a schedule dict){null}"
    return schedule(default, 0.0, math.inf, positive_start=True, nullable=nullable, error=error)


# ----- the base class -----


@dataclass(frozen=True)
class AgentConfig:
    """An algorithm's hyperparameters (besides ``seed`` and ``gamma``), checked and resolved."""

    # Earlier names of fields, renamed to stable-baselines3's: specs and checkpoints using them load.
    renamed: ClassVar[dict[str, str]] = {}

    def __post_init__(self) -> None:
        for f in fields(self):
            object.__setattr__(self, f.name, f.metadata["resolve"](f.name, getattr(self, f.name)))
        self.check()

    def check(self) -> None:
        """Rules that tie several fields together: raise :class:`AgentError`."""

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def from_kwargs(cls, agent_name: str, given: dict[str, Any]) -> Self:
        """The config of ``given`` (an agent's ``**hyperparameters``), with defaults for the rest."""
        given = dict(given)
        for key, (kept, version, what) in REMOVED_HYPERPARAMETERS.items():
            if key in given and (value := given.pop(key)) != kept:
                raise AgentError(
                    f"{agent_name}'s {key}={value!r} was removed in rl-lab {version} ({what}): "
                    f"drop it from the spec (a checkpoint saved with it needs rl-lab < {version})"
                )
        for old_name, name in cls.renamed.items():
            if old_name in given:
                if name in given:
                    raise AgentError(f"{agent_name}: give {name} only ({old_name} is its earlier name)")
                given[name] = given.pop(old_name)
        names = cls.names()
        for key in given:
            if key not in names:
                everything = [*AGENT_ARGUMENTS, *names]
                close = difflib.get_close_matches(key, everything, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise AgentError(
                    f"{agent_name} has no hyperparameter {key!r}{hint} "
                    f"(its hyperparameters: {', '.join(everything)})"
                )
        return cls(**given)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (checkpoints, ``lab train``'s record): what ``from_kwargs`` reads back."""
        return {f.name: f.metadata["dump"](getattr(self, f.name)) for f in fields(self)}
