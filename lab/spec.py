"""Run specs: what a training run is, as a typed, validated record read from YAML and flags.

A spec file looks like this (every key but ``env`` and ``agent`` has a default)::

    name: cliff-q               # the run directory: runs/<name>/
    env: lab/CliffWalk-v0
    env_kwargs: {}
    max_episode_steps: null     # null: the registered limit
    agent: q_learning
    hyperparameters: {learning_rate: 0.5, epsilon: 0.1, gamma: 1.0}
    total_timesteps: 50000
    seed: 0                     # or seeds: [0, 1, 2] for one run per seed (runs/<name>-seed<k>/)
    eval_interval: 5000         # timesteps between evaluations (0: only at the end)
    eval_episodes: 20
    record_episodes: 1          # evaluation episodes saved as replays at each evaluation
    checkpoint_interval: 10000  # timesteps between checkpoints (0: only at the end)
    keep_checkpoints: 3         # the newest checkpoints kept (0: all); best.npz is kept apart
    threads: 1                  # torch threads for neural agents (small networks run fastest on one)

Unknown keys are errors that name the closest valid key; values are checked for type and range.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import reprlib
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lab.core.errors import LabError
from lab.core.limits import MAX_SPEC_BYTES, max_threads
from lab.core.yaml_loader import load_yaml, load_yaml_value


class SpecError(LabError):
    """A spec that cannot describe a run: a typo, a wrong type, a value out of range."""


@dataclass
class RunSpec:
    env: str
    agent: str
    name: str | None = None
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    max_episode_steps: int | None = None
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    total_timesteps: int = 50_000
    seed: int = 0
    seeds: list[int] | None = None
    eval_interval: int = 5_000
    eval_episodes: int = 20
    record_episodes: int = 1
    checkpoint_interval: int = 10_000
    keep_checkpoints: int = 3
    threads: int = 1

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def per_seed(self) -> list[RunSpec]:
        """One spec per seed: ``seeds: [0, 1]`` gives runs ``<name>-seed0`` and ``<name>-seed1``."""
        if not self.seeds:
            return [self]
        return [
            dataclasses.replace(self, seed=s, seeds=None, name=f"{self.name}-seed{s}") for s in self.seeds
        ]


FIELDS = {f.name: f for f in dataclasses.fields(RunSpec)}
_INT_FIELDS = (
    "total_timesteps",
    "seed",
    "eval_interval",
    "eval_episodes",
    "record_episodes",
    "checkpoint_interval",
    "keep_checkpoints",
    "threads",
)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
MAX_SEEDS = 1000


def check_run_name(name: str) -> None:
    """A run's name names its folder: letters, digits, '.', '_' or '-' (every kind of spec)."""
    if not _NAME.match(name):
        raise SpecError(f"name {name!r} must be letters, digits, '.', '_' or '-' (it names a folder)")


def closest_key(key: str, options: list[str]) -> str:
    """``'; did you mean ...?'`` (or the list of valid keys) for an error about an unknown key."""
    close = difflib.get_close_matches(key, options, n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else f"; valid keys: {', '.join(options)}"


def is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def whole_counts(data: dict[str, Any], keys: Collection[str]) -> dict[str, Any]:
    """``data`` with whole-valued floats under ``keys`` as ints, so ``total_timesteps: 1e5`` counts."""
    return {
        k: int(v) if k in keys and isinstance(v, float) and v.is_integer() else v for k, v in data.items()
    }


def check_spec_fields(
    data: Any,
    source: str,
    fields: Collection[str],
    *,
    strings: Collection[str] = (),
    counts: Collection[str] = (),
    at_least_one: Collection[str] = (),
    mappings: Collection[str] = (),
) -> dict[str, Any]:
    """The checks every kind of spec (runs, ``lab gen``, ``lab lm``) makes: a mapping of known keys
    (an unknown one names the closest), ``strings`` strings or null, ``counts`` whole numbers >= 0
    (``1e5`` counts), the ``at_least_one`` among them >= 1, ``mappings`` mappings with string keys
    or null. Returns
    ``data`` with its counts as ints."""
    if not isinstance(data, dict):
        raise SpecError(f"{source} must be a mapping of keys to values; got {type(data).__name__}")
    for key in data:
        if key not in fields:
            raise SpecError(f"unknown key {key!r} in {source}{closest_key(str(key), list(fields))}")
    for key in strings:
        if data.get(key) is not None and not isinstance(data[key], str):
            raise SpecError(f"{key} must be a string; got {_short(data[key])}")
    data = whole_counts(data, counts)
    for key in counts:
        least = 1 if key in at_least_one else 0
        if key in data and (not is_whole(data[key]) or data[key] < least):
            raise SpecError(f"{key} must be a whole number >= {least}; got {_short(data[key])}")
    for key in mappings:
        if data.get(key) is not None and not isinstance(data[key], dict):
            raise SpecError(f"{key} must be a mapping (key: value); got {_short(data[key])}")
        for name in data.get(key) or {}:  # they become keyword arguments: names, not numbers or null
            if not isinstance(name, str):
                raise SpecError(f"the keys of {key} must be names (strings); got {_short(name)}")
    return data


def check_positive_number(key: str, value: Any, nullable: bool = False) -> None:
    """A finite number > 0 (or None where ``nullable``), else a :class:`SpecError` naming ``key``."""
    if value is None and nullable:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise SpecError(
            f"{key} must be a positive number{' or null' if nullable else ''}; got {_short(value)}"
        )


def spec_from_dict(data: Any, source: str = "the spec") -> RunSpec:
    """Validate a parsed spec and fill its defaults."""
    data = check_spec_fields(
        data, source, FIELDS, strings=("env", "agent", "name"), counts=_INT_FIELDS,
        at_least_one=("total_timesteps", "threads"), mappings=("env_kwargs", "hyperparameters"),
    )  # fmt: skip
    for required in ("env", "agent"):
        if data.get(required) in (None, ""):
            raise SpecError(f"{source} needs {required!r} (e.g. env: lab/CliffWalk-v0, agent: q_learning)")
    data = whole_counts(data, ("max_episode_steps",))
    if isinstance(data.get("seeds"), list):  # seeds: [1e3] counts as [1000], as seed: 1e3 does
        data["seeds"] = [int(s) if isinstance(s, float) and s.is_integer() else s for s in data["seeds"]]
    if data.get("threads", 1) > max_threads():
        raise SpecError(
            f"threads must be at most {max_threads()} (four per CPU core here); got {data['threads']}"
        )
    if data.get("eval_episodes", 1) == 0:
        raise SpecError("eval_episodes must be at least 1 (each evaluation averages over them)")
    if data.get("max_episode_steps") is not None and (
        not is_whole(data["max_episode_steps"]) or data["max_episode_steps"] < 1
    ):
        raise SpecError(
            f"max_episode_steps must be a whole number >= 1 or null; got {_short(data['max_episode_steps'])}"
        )
    seeds = data.get("seeds")
    if seeds is not None and (
        not isinstance(seeds, list) or not seeds or not all(is_whole(s) and s >= 0 for s in seeds)
    ):
        raise SpecError(f"seeds must be a non-empty list of whole numbers >= 0; got {_short(seeds)}")
    if seeds is not None and len(seeds) > MAX_SEEDS:
        raise SpecError(f"seeds lists {len(seeds)} seeds; one spec runs at most {MAX_SEEDS}")
    from envs.seeding import is_seed  # here: lab gen and lm read specs without loading the envs

    for seed in [data.get("seed", 0), *(seeds or [])]:  # what the agents, numpy and torch take
        if not is_seed(seed):
            raise SpecError(f"a seed is a whole number from 0 to 2**64 - 1; got {seed}")
    if seeds is not None and len(set(seeds)) < len(seeds):
        twice = sorted(s for s, n in Counter(seeds).items() if n > 1)
        raise SpecError(
            f"seeds lists {', '.join(map(str, twice))} more than once; each seed names one run "
            "(<name>-seed<k>), so list each once"
        )
    data = drop_repeated_seed(data)
    if "seed" in (data.get("hyperparameters") or {}):
        raise SpecError(
            f"hyperparameters.seed ({_short(data['hyperparameters']['seed'])}) is not the run's seed "
            f"({data.get('seed', 0)}): set the seed at the top level (seed:, or --seed), not among the "
            "hyperparameters"
        )
    values = {k: v for k, v in data.items() if v is not None or k in ("name", "max_episode_steps", "seeds")}
    for key in ("env_kwargs", "hyperparameters"):
        values[key] = dict(values.get(key) or {})
    spec = RunSpec(**values)
    if spec.name is None:  # a folder name: another namespace's '/' (phys2d/CartPole-v1) becomes '-'
        short_env = spec.env.removeprefix("lab/").rsplit("-v", 1)[0]
        spec.name = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{short_env}-{spec.agent}").strip("-.") or "run"
    check_run_name(spec.name)
    return spec


def drop_repeated_seed(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` without ``hyperparameters.seed`` where it repeats the top-level seed, as the
    ``spec.yaml`` of earlier runs does (the run's seed is the top-level one)."""
    hyperparameters = data.get("hyperparameters")
    if isinstance(hyperparameters, dict) and hyperparameters.get("seed", object()) == data.get("seed", 0):
        data = {**data, "hyperparameters": {k: v for k, v in hyperparameters.items() if k != "seed"}}
    return data


def _short(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters, for messages about values of any size."""
    text = reprlib.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def load_spec_file(
    path: str | Path, what: str = "spec file", error: type[LabError] = SpecError, aliases: bool = False
) -> Any:
    """The raw mapping of a YAML spec file (``what`` names the kind in messages, ``error`` is their
    class, ``aliases`` allows YAML's anchors and tags), with a clear error for a missing, oversized,
    unreadable (not UTF-8, no permission), malformed or empty file."""
    path = Path(path)
    if not path.is_file():
        raise error(f"no {what} at {path}")
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_SPEC_BYTES + 1)
    except OSError as exc:
        raise error(f"cannot read the {what} {path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_SPEC_BYTES:
        raise error(f"{path} is over {MAX_SPEC_BYTES >> 20} MiB; a {what} is a page of YAML at most")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{path} is not UTF-8 text (byte {exc.start} cannot be decoded)") from None
    try:
        data = load_yaml(text, aliases=aliases)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise error(f"{path} is not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if data is None:
        raise error(f"{path} is empty")
    return data


def apply_overrides(
    data: dict[str, Any],
    pairs: list[str],
    fields: Collection[str] = FIELDS,
    nested: tuple[str, ...] = ("env_kwargs", "hyperparameters"),
) -> dict[str, Any]:
    """Apply ``--set key=value`` pairs; dotted keys reach into the ``nested`` mappings
    (``hyperparameters.epsilon=0.2``). Values are YAML; ``fields`` are the spec's valid keys."""
    data = {**data}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise SpecError(f"--set takes key=value; got {pair!r}")
        value = load_yaml_value(raw)
        head, _, rest = key.partition(".")
        if head not in fields:
            raise SpecError(f"unknown key {head!r} in --set{closest_key(head, list(fields))}")
        if rest:
            if head not in nested:
                raise SpecError(f"--set {key}: only {' and '.join(nested)} hold nested keys")
            if "." in rest:
                inner, _, leaf = rest.partition(".")
                raise SpecError(
                    f"--set {key}: --set reaches one level into {head}; give {inner}'s whole value, "
                    f"e.g. --set '{head}.{inner}={{{leaf.split('.')[0]}: {raw}}}'"
                )
            if data.get(head) is not None and not isinstance(data[head], dict):
                raise SpecError(
                    f"--set {key}: {head} must be a mapping (key: value); got {_short(data[head])}"
                )
            data[head] = {**(data.get(head) or {}), rest: value}
        else:
            data[head] = value
    return data


def spec_mapping(
    spec_file: str | None,
    flags: dict[str, Any],
    overrides: list[str],
    fields: Collection[str] = FIELDS,
    nested: tuple[str, ...] = ("env_kwargs", "hyperparameters"),
) -> tuple[dict[str, Any], str]:
    """A spec file's mapping (``{}`` without one), the flags given (not None) over it, then the
    ``--set`` pairs; and the source its errors name (the file, or "the flags")."""
    data: Any = load_spec_file(spec_file) if spec_file else {}
    source = spec_file or "the flags"
    if not isinstance(data, dict):
        raise SpecError(f"{source} must be a mapping of keys to values")
    data = drop_repeated_seed(data)  # before --seed: a saved spec re-runs with another seed
    data.update({key: value for key, value in flags.items() if value is not None})
    return apply_overrides(data, overrides, fields, nested), source


def save_spec(spec: Any, path: Path) -> None:
    """Write a spec of any kind (a run's, ``lab gen``'s, ``lab lm``'s) as the YAML of its ``to_dict()``."""
    from lab.core.files import write_text_atomic

    write_text_atomic(path, yaml.safe_dump(spec.to_dict(), sort_keys=False))
