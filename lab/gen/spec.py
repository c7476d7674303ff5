"""Generative run specs: what ``lab gen train`` trains, read from YAML and flags.

A spec file looks like this (every key but ``model`` has a default)::

    name: digits-diffusion       # the run directory: runs/<name>/
    model: diffusion             # diffusion, vae, gan, cyclegan or pix2pix
    dataset: digits              # digits, grid, folder, themes or folders
    dataset_options: {}          # e.g. {path: my_images/, resize: 16x16} or {env: lab/Maze-v0, tile: 4}
    test_fraction: 0.2
    hyperparameters: {conditional: true}
    steps: 4000                  # optimisation steps (the learning-rate schedule spans them)
    minutes: null                # stop earlier after this much training time (null: no limit)
    seed: 0
    eval_interval: 1000          # steps between evaluations: sample grid, held-out loss (0: at the end)
    checkpoint_interval: 1000    # steps between checkpoints (0: only at the end)
    keep_checkpoints: 3          # the newest checkpoints kept (0: all)
    log_interval: 50             # steps per metrics.csv row
    samples: 64                  # images in each sample grid
    measure: true                # Frechet ratio (and conditional accuracy) at the end

Unknown keys are errors naming the closest valid key, and so are unknown models and data sets.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from lab.core.limits import MAX_SAMPLES
from lab.spec import (
    SpecError,
    check_positive_number,
    check_run_name,
    check_spec_fields,
    load_spec_file,
    spec_mapping,
)


@dataclass
class GenSpec:
    model: str
    name: str | None = None
    dataset: str = "digits"
    dataset_options: dict[str, Any] = field(default_factory=dict)
    test_fraction: float = 0.2
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    steps: int = 4000
    minutes: float | None = None
    seed: int = 0
    eval_interval: int = 1000
    checkpoint_interval: int = 1000
    keep_checkpoints: int = 3
    log_interval: int = 50
    samples: int = 64
    measure: bool = True

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


FIELDS = {f.name: f for f in dataclasses.fields(GenSpec)}
_INTS = (
    "steps",
    "seed",
    "eval_interval",
    "checkpoint_interval",
    "keep_checkpoints",
    "log_interval",
    "samples",
)
_NESTED = ("hyperparameters", "dataset_options")


def gen_spec_from_dict(data: Any, source: str = "the spec") -> GenSpec:
    """Validate a parsed spec, fill its defaults, and check its model and data set names."""
    from generative.data import DATASETS, unknown
    from generative.models import MODELS

    data = check_spec_fields(
        data, source, FIELDS, strings=("model", "dataset", "name"), counts=_INTS, mappings=_NESTED,
        at_least_one=("steps", "log_interval", "samples"),
    )  # fmt: skip
    if data.get("model") in (None, ""):
        raise SpecError(f"{source} needs 'model' ({', '.join(MODELS)})")
    if data.get("samples", 1) > MAX_SAMPLES:
        raise SpecError(f"samples must be at most {MAX_SAMPLES:,}; got {data['samples']}")
    check_positive_number("minutes", data.get("minutes"), nullable=True)
    fraction = data.get("test_fraction", 0.2)
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
        raise SpecError(f"test_fraction must lie strictly between 0 and 1; got {fraction!r}")
    if "measure" in data and not isinstance(data["measure"], bool):
        raise SpecError(f"measure is true or false; got {data['measure']!r}")
    values = {k: v for k, v in data.items() if v is not None or k in ("name", "minutes")}
    for key in ("dataset_options", "hyperparameters"):
        values[key] = dict(values.get(key) or {})
    spec = GenSpec(**values)
    if spec.model not in MODELS:
        raise unknown("model", spec.model, list(MODELS))
    if spec.dataset not in DATASETS:
        raise unknown("data set", spec.dataset, list(DATASETS))
    if spec.name is None:
        spec.name = f"{spec.dataset}-{spec.model}"
    check_run_name(spec.name)
    return spec


def spec_from_args(
    spec_file: str | None,
    overrides: list[str],
    **flags: Any,
) -> GenSpec:
    """A spec from a file (or none) plus flags (``model=``, ``dataset=``, ``steps=`` ...) and ``--set``s."""
    data, source = spec_mapping(spec_file, flags, overrides, FIELDS, _NESTED)
    return gen_spec_from_dict(data, source)


def load_gen_spec(path: Any) -> GenSpec:
    return gen_spec_from_dict(load_spec_file(path), str(path))
