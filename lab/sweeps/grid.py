"""Expanding a sweep: ``--seeds 0-19`` and ``--grid key=v1,v2`` into one run spec per trial.

Grid keys are the dotted names of ``lab train --set`` (``hyperparameters.learning_rate``,
``env_kwargs.size``, ``total_timesteps``); each value is YAML, taken as the type of the key's current
value (``1`` for a float key is ``1.0``), and every configuration is checked, agent and environment
built once, before any trial starts.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any

from lab.core.errors import LabError
from lab.core.yaml_loader import load_yaml_value
from lab.spec import FIELDS, RunSpec, apply_overrides, closest_key, is_whole, spec_from_dict

# Keys a grid may not vary: the sweep names its trials and gives their seeds itself.
NOT_GRID_KEYS = ("name", "seed", "seeds")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Trial:
    """One run of a sweep: a configuration (its overrides of the base spec) and a seed."""

    name: str
    config: str  # the configuration's label, shared by its seeds: "learning_rate=0.1,epsilon=0.2"
    seed: int
    overrides: dict[str, Any]

    def spec_data(self, base: dict[str, Any]) -> dict[str, Any]:
        """The trial's spec as a mapping: the base spec with its overrides, seed and name."""
        data = apply_overrides(base, [])
        for key, value in self.overrides.items():
            head, _, rest = key.partition(".")
            if rest:
                data[head] = {**(data.get(head) or {}), rest: value}
            else:
                data[head] = value
        data.pop("seeds", None)
        return {**data, "seed": self.seed, "name": self.name}


def parse_seeds(text: str) -> list[int]:
    """``"0-19"``, ``"0,3,7"`` or ``"0-4,10"`` as a sorted list of distinct seeds."""
    seeds: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        low, dash, high = part.partition("-")
        try:
            first, last = (int(low), int(high)) if dash else (int(part), int(part))
        except ValueError:
            raise LabError(
                f"--seeds takes whole numbers and ranges like 0-19 or 0,3,7; got {text!r}"
            ) from None
        if first < 0 or last < first:
            raise LabError(f"--seeds range {part!r} must go up from a number >= 0 (e.g. 0-19)")
        seeds.update(range(first, last + 1))
    return sorted(seeds)


def spec_seeds(raw: Any, where: str) -> list[int]:
    """The seeds a spec lists (``[0, 1, 2]``, or a range such as ``"0-19"``), sorted, each once: a
    seed listed twice would run one trial twice and count it twice."""
    if isinstance(raw, str):
        return parse_seeds(raw)
    if isinstance(raw, list) and raw and all(is_whole(s) and s >= 0 for s in raw):
        return sorted({int(s) for s in raw})
    raise LabError(f"{where} must list whole numbers >= 0, or give a range such as 0-19; got {raw!r}")


def split_values(text: str) -> list[str]:
    """Split ``v1,v2`` on the commas outside brackets, so a value may be ``{type: linear, start: 1}``."""
    values, depth, current = [], 0, ""
    for char in text:
        if char in "[{(":
            depth += 1
        elif char in "]})":
            depth -= 1
        if char == "," and depth == 0:
            values.append(current.strip())
            current = ""
        else:
            current += char
    values.append(current.strip())
    return values


def parse_grid(pairs: list[str]) -> dict[str, list[Any]]:
    """``["hyperparameters.learning_rate=0.1,0.5"]`` as ``{key: [values]}``, in the order given."""
    grid: dict[str, list[Any]] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key or not raw.strip():
            raise LabError(f"--grid takes key=value1,value2; got {pair!r}")
        if key in grid:
            raise LabError(f"--grid {key} is given twice; list all its values in one --grid")
        values = [load_yaml_value(v) for v in split_values(raw)]
        if len({repr(v) for v in values}) < len(values):
            raise LabError(f"--grid {key} lists a value twice: {raw}")
        grid[key] = values
    return grid


def known_values(spec: RunSpec) -> dict[str, Any]:
    """Every key a grid may vary, dotted, with its current value: the spec's fields, the agent's
    resolved hyperparameters (defaults included) and the env arguments the spec gives."""
    from agents.common.errors import AgentError
    from lab.train import agent_class, make_run_env

    env = make_run_env(spec)
    try:
        agent = agent_class(spec.agent)(env, seed=spec.seed, **spec.hyperparameters)
    except (AgentError, TypeError) as exc:
        raise LabError(str(exc)) from None
    finally:
        env.close()
    values: dict[str, Any] = {
        k: v for k, v in spec.to_dict().items() if k not in ("env_kwargs", "hyperparameters")
    }
    values.update({f"hyperparameters.{k}": v for k, v in agent.hyperparameters.items() if k != "seed"})
    values.update({f"env_kwargs.{k}": v for k, v in spec.env_kwargs.items()})
    return values


def typed_value(key: str, value: Any, current: Any) -> Any:
    """``value`` as the type of the key's ``current`` value; a value of another kind is an error."""
    if isinstance(current, bool) or current is None or isinstance(current, (dict, list)):
        if isinstance(current, bool) and not isinstance(value, bool):
            raise LabError(f"--grid {key}: {value!r} is not true or false")
        return value
    if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(current, int) and isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(current, (int, float)) and (isinstance(value, bool) or not isinstance(value, (int, float))):
        if isinstance(value, (str, dict)) and key.startswith("hyperparameters."):
            return value  # a schedule ({type: linear, ...}) or a form such as '1/N': the agent checks it
        raise LabError(f"--grid {key}: {value!r} is not a number (it is {current!r} in the spec)")
    if isinstance(current, str) and not isinstance(value, str):
        return str(value)
    return value


def check_keys(
    grid: dict[str, list[Any]], known: dict[str, Any], flag: str = "--grid"
) -> dict[str, list[Any]]:
    """The grid with every value typed; an unknown key names the closest valid one (and ``flag``, the
    option that gave it)."""
    typed: dict[str, list[Any]] = {}
    for key, values in grid.items():
        if key in NOT_GRID_KEYS:
            raise LabError(
                f"{flag} cannot vary {key!r}: the sweep gives each trial its seed and name (--seeds)"
            )
        head, _, rest = key.partition(".")
        if head not in FIELDS:
            raise LabError(f"unknown key {key!r} in {flag}{closest_key(key, sorted(known))}")
        if head == "env_kwargs" and rest:
            typed[key] = [typed_value(key, v, known.get(key)) for v in values]
            continue
        if key not in known:
            raise LabError(f"unknown key {key!r} in {flag}{closest_key(key, sorted(known))}")
        typed[key] = [typed_value(key, v, known[key]) for v in values]
    for key, values in typed.items():  # 1 and 1.0 are one learning rate: two would count one run twice
        seen = [repr(v) for v in values]
        twice = next((v for v, text in zip(values, seen, strict=True) if seen.count(text) > 1), None)
        if twice is not None:
            raise LabError(f"{flag} {key} lists the value {twice!r} twice")
    return typed


def label(overrides: dict[str, Any]) -> str:
    """A configuration's label: its overrides by their last name (``learning_rate=0.1,epsilon=0.2``)."""
    if not overrides:
        return "base"
    return ",".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in overrides.items())


def expand(base: dict[str, Any], seeds: list[int], grid: dict[str, list[Any]]) -> list[Trial]:
    """Every configuration of the grid (its product) with every seed; each configuration is checked
    by building its agent and environment once. ``base`` is a spec mapping without ``seeds``."""
    spec = spec_from_dict(base, "the sweep's spec")
    grid = check_keys(grid, known_values(spec))
    configs = [dict(zip(grid, combo, strict=True)) for combo in itertools.product(*grid.values())]
    used: set[str] = set()
    trials: list[Trial] = []
    for index, overrides in enumerate(configs):
        if overrides:  # check this configuration before anything runs
            first = Trial("check", label(overrides), seeds[0], overrides)
            known_values(spec_from_dict(first.spec_data(base), f"--grid {label(overrides)}"))
        tag = _UNSAFE.sub("_", label(overrides).replace("=", "-").replace(",", "_"))
        tag = tag if tag not in used else f"c{index}"
        used.add(tag)
        prefix = f"{spec.name}-{tag}" if overrides else str(spec.name)
        trials.extend(Trial(f"{prefix}-seed{s}", label(overrides), s, overrides) for s in seeds)
    return trials
