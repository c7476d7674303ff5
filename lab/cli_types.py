"""How the ``lab`` command reads its arguments: :class:`LabArgumentParser`, and argument types that
check a flag's value as argparse reads it, so a bad value (``--fps nan``, ``--scale 0``,
``--n 2000000``) is one usage line and exit status 2."""

from __future__ import annotations

import argparse
import difflib
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from lab.core.errors import LabError
from lab.core.limits import MAX_EPISODES, MAX_SAMPLES, max_threads

MIN_FPS, MAX_FPS = 0.01, 1000.0
MAX_SCALE = 32


class LabArgumentParser(argparse.ArgumentParser):
    """``argparse`` with its usage errors as the lab's other errors (one line, exit status 2), and a
    misspelt option answered with the closest one (``--stpes``: did you mean ``--steps``?).
    Subcommand parsers inherit the class, so every command gets both."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.option_names: list[str] = []  # filled by add_argument, which the base __init__ calls for -h
        super().__init__(*args, **kwargs)

    def add_argument(self, *names: Any, **kwargs: Any) -> argparse.Action:
        self.option_names.extend(n for n in names if isinstance(n, str) and n.startswith("-"))
        return super().add_argument(*names, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        namespace, extras = super().parse_known_args(args, namespace)
        for extra in extras:
            if extra.startswith("--"):
                name = extra.partition("=")[0]
                if name in self.option_names:  # the main parser's option, given after the command
                    self.error(f"{name} goes before the command: {self.prog} {name} COMMAND ...")
                close = difflib.get_close_matches(name, self.option_names, n=1)
                if close:
                    self.error(f"unrecognized argument {name}; did you mean {close[0]}?")
        return namespace, extras


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _whole(text: str) -> int:
    """A whole number, also written as a float with no fraction (``1e5``), as specs read it."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value.is_integer():  # nan and inf are not whole either
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")
    return int(value)


def frame_rate(text: str) -> float:
    """Frames per second: a finite number from 0.01 to 1000."""
    value = _number(text)
    if not MIN_FPS <= value <= MAX_FPS:
        raise argparse.ArgumentTypeError(f"frames per second lie in [{MIN_FPS:g}, {MAX_FPS:g}]; got {text}")
    return value


def finite(text: str) -> float:
    """Any finite number (``nan`` and ``inf`` refused)."""
    return _number(text)


def whole_in(low: int, high: int) -> Callable[[str], int]:
    """A whole number from ``low`` to ``high``."""

    def parse(text: str) -> int:
        value = _whole(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected a whole number from {low} to {high}; got {text}")
        return value

    parse.__name__ = "whole number"  # argparse names the type in its messages
    return parse


def random_seed(text: str) -> int:
    """A random seed: a whole number from 0 to 2**64 - 1 (what the agents, numpy and torch take)."""
    from envs.seeding import is_seed

    value = _whole(text)
    if not is_seed(value):
        raise argparse.ArgumentTypeError(f"a seed is a whole number from 0 to 2**64 - 1; got {text}")
    return value


def scale(text: str) -> int:
    """How many times to enlarge a picture: 1 to 32."""
    return whole_in(1, MAX_SCALE)(text)


def step_count(text: str) -> int:
    """Env steps: a whole number >= 1 (``1e5`` counts)."""
    value = _whole(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1; got {text}")
    return value


def episode_count(text: str) -> int:
    """Episodes to play: 1 to :data:`lab.core.limits.MAX_EPISODES`."""
    return whole_in(1, MAX_EPISODES)(text)


def sample_count(text: str) -> int:
    """Images to draw: 1 to :data:`lab.core.limits.MAX_SAMPLES`."""
    return whole_in(1, MAX_SAMPLES)(text)


def thread_count(text: str) -> int:
    """Compute threads: 1 to four per CPU core."""
    return whole_in(1, max_threads())(text)


def folder(text: str) -> str:
    """A folder, there already or made when it is first written to; an existing file is refused."""
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file; give a folder")
    return text


def refuse_with_resume(args: argparse.Namespace, flags: Sequence[str]) -> None:
    """``--resume`` continues a run from its own ``spec.yaml``: a :class:`LabError` naming any of
    ``flags`` (``"spec"`` the positional spec file, else an option such as ``"--steps"``) that was
    given with it, rather than ignoring them."""
    given = [
        "the spec file" if flag == "spec" else flag
        for flag in flags
        if getattr(args, flag.lstrip("-").replace("-", "_"), None) not in (None, False, [])
    ]
    if given:
        listed = given[0] if len(given) == 1 else f"{', '.join(given[:-1])} and {given[-1]}"
        raise LabError(
            f"--resume continues a run from its own spec.yaml: leave out {listed} "
            "(start a new run to change them)"
        )
