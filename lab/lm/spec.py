"""Language-model run specs: what ``lab lm train`` trains, read from YAML and flags.

A spec file (``configs/lm-english.yaml``; every key has a default)::

    name: lm-english             # the run directory: runs/<name>/
    language: english            # english, dyck, a .pcfg file, arithmetic, copy, text:file.txt
    language_options: {}         # the language's own options (max_operand, alphabet, ...)
    model: transformer           # transformer or gru
    hyperparameters: {context: 40, width: 64, layers: 2, heads: 4, dropout: 0.0}
    steps: 3000                  # optimisation steps
    batch_size: 64
    lr: 0.003                    # AdamW; cosine-decayed from round to round
    grad_clip: 1.0
    checkpoint_interval: 500     # steps per round: one fit() over fresh sentences, then a checkpoint
    keep_checkpoints: 3
    validation_size: 1000        # validation sentences, measured after every round
    eval_samples: 1000           # the final exact evaluation: temperature-1 samples
    eval_held_out: 2000          # and test-split sentences
    seed: 0

Unknown keys are errors naming the closest valid key.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

from lab.spec import (
    SpecError,
    check_positive_number,
    check_run_name,
    check_spec_fields,
    closest_key,
    load_spec_file,
    spec_mapping,
)

MODELS = ("transformer", "gru")
HYPERPARAMETERS = {"context": 40, "width": 64, "layers": 2, "heads": 4, "dropout": 0.0}


@dataclass
class LMSpec:
    name: str | None = None
    language: str = "english"
    language_options: dict[str, Any] = field(default_factory=dict)
    model: str = "transformer"
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    steps: int = 3000
    batch_size: int = 64
    lr: float = 3e-3
    grad_clip: float = 1.0
    checkpoint_interval: int = 500
    keep_checkpoints: int = 3
    validation_size: int = 1000
    eval_samples: int = 1000
    eval_held_out: int = 2000
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


FIELDS = {f.name: f for f in dataclasses.fields(LMSpec)}
_INTS = (
    "steps", "batch_size", "checkpoint_interval", "keep_checkpoints", "validation_size", "eval_samples",
    "eval_held_out", "seed",
)  # fmt: skip
_NESTED = ("hyperparameters", "language_options")


def lm_spec_from_dict(data: Any, source: str = "the spec") -> LMSpec:
    """Validate a parsed spec and fill its defaults (the model's hyperparameters included)."""
    data = check_spec_fields(
        data, source, FIELDS, strings=("model", "language", "name"), counts=_INTS, mappings=_NESTED,
        at_least_one=("steps", "batch_size", "checkpoint_interval", "validation_size", "eval_samples",
                      "eval_held_out"),
    )  # fmt: skip
    for key in ("lr", "grad_clip"):
        check_positive_number(key, data.get(key, 1.0))
    values = {k: v for k, v in data.items() if v is not None or k == "name"}
    spec = LMSpec(**values)
    if spec.model not in MODELS:
        raise SpecError(f"unknown model {spec.model!r}{closest_key(spec.model, list(MODELS))}")
    unknown = set(spec.hyperparameters) - set(HYPERPARAMETERS)
    if unknown:
        key = sorted(unknown)[0]
        raise SpecError(f"unknown hyperparameter {key!r}{closest_key(key, list(HYPERPARAMETERS))}")
    spec.hyperparameters = {**HYPERPARAMETERS, **spec.hyperparameters}
    if spec.name is None:
        spec.name = f"lm-{re.sub(r'[^A-Za-z0-9._-]', '-', spec.language.split('/')[-1])}"
    check_run_name(spec.name)
    return spec


def spec_from_args(spec_file: str | None, overrides: list[str], **flags: Any) -> LMSpec:
    """A spec from a file (or none) plus flags (``language=``, ``model=``, ``steps=`` ...) and ``--set``s."""
    data, source = spec_mapping(spec_file, flags, overrides, FIELDS, _NESTED)
    return lm_spec_from_dict(data, source)


def load_lm_spec(path: Any) -> LMSpec:
    return lm_spec_from_dict(load_spec_file(path), str(path))
