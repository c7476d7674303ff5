"""Model files: one ``.npz`` of arrays plus a JSON metadata string, never pickle.

The layout is the agents' checkpoint format (:mod:`lab.core.archive`: a 0-d unicode ``meta`` entry,
atomic writes, ``allow_pickle=False``) with its own format name, so an agent checkpoint
handed to ``lab gen`` (or a model to ``lab watch``) is recognised and refused in one line.

Torch state dicts become flat arrays: ``<prefix>/<key>`` for each tensor. Optimiser states, whose
nested dicts hold tensors, numbers and lists keyed by integers, go through :func:`encode` /
:func:`decode`: tensors to arrays, the rest to JSON with dict keys kept as typed pairs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from lab.core.archive import read_archive, write_archive
from lab.core.errors import LabError
from lab.core.limits import MAX_PARAMETERS

if TYPE_CHECKING:
    from generative.base import GenerativeModel

FORMAT = "rl-lab-generative"
FORMAT_VERSION = 1
AGENT_FORMAT = "rl-lab-agent"


def write_model_file(path: str | Path, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> Path:
    """Write ``arrays`` and ``meta`` atomically (a temporary file, then a rename)."""
    return write_archive(Path(path), {"format": FORMAT, "format_version": FORMAT_VERSION, **meta}, arrays)


def read_model_file(path: str | Path, arrays: bool = True) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The metadata and arrays of a model file (``arrays=False``: the metadata alone), or a
    :class:`LabError` saying what is wrong with it."""
    path = Path(path)
    if not path.is_file():
        raise LabError(f"no model file at {path}")
    what = f"{path} is not a generative model file"
    meta, contents = read_archive(path, what, LabError, arrays)
    if meta.get("format") == AGENT_FORMAT:
        algorithm = meta.get("algorithm", "an agent")
        raise LabError(
            f"{path} is an agent checkpoint ({algorithm}), not a generative model: use 'lab watch/eval'"
        )
    if meta.get("format") != FORMAT:
        raise LabError(f"{what} (its metadata does not say {FORMAT!r})")
    if meta.get("format_version") != FORMAT_VERSION:
        raise LabError(
            f"{path} is model format version {meta.get('format_version')!r}; this lab reads {FORMAT_VERSION}"
        )
    return meta, contents


# ----- state dicts -----


def state_to_arrays(state: dict[str, torch.Tensor], prefix: str) -> dict[str, np.ndarray]:
    return {f"{prefix}/{key}": value.detach().cpu().numpy() for key, value in state.items()}


def state_from_arrays(arrays: dict[str, np.ndarray], prefix: str) -> dict[str, torch.Tensor]:
    start = f"{prefix}/"
    return {
        key[len(start) :]: torch.from_numpy(np.array(v)) for key, v in arrays.items() if key.startswith(start)
    }


def encode(value: Any, prefix: str, arrays: dict[str, np.ndarray]) -> Any:
    """A JSON-able copy of nested dicts/lists, tensors moved into ``arrays`` under ``prefix``."""
    if isinstance(value, torch.Tensor):
        key = f"{prefix}#{len(arrays)}"
        arrays[key] = value.detach().cpu().numpy()
        return {"__array__": key}
    if isinstance(value, dict):
        return {"__dict__": [[k, encode(v, prefix, arrays)] for k, v in value.items()]}
    if isinstance(value, (list, tuple)):
        return [encode(v, prefix, arrays) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot store a {type(value).__name__} in a model file")


def decode(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(value, dict) and "__array__" in value:
        return torch.from_numpy(np.array(arrays[value["__array__"]]))
    if isinstance(value, dict) and "__dict__" in value:
        return {k: decode(v, arrays) for k, v in value["__dict__"]}
    if isinstance(value, list):
        return [decode(v, arrays) for v in value]
    return value


# ----- whole models -----


def save_model(path: str | Path, model: GenerativeModel, extra: dict[str, Any] | None = None) -> Path:
    """Weights (EMA included), optimiser states and the step, enough to resume training exactly."""
    arrays: dict[str, np.ndarray] = {}
    for name, module in model.modules().items():
        arrays.update(state_to_arrays(module.state_dict(), f"module/{name}"))
    optimizers = {
        name: encode(opt.state_dict(), f"opt/{name}", arrays) for name, opt in model.optimizers().items()
    }
    meta = {
        "family": model.family, "hyperparameters": model.hp, "shape": list(model.shape),
        "n_classes": model.n_classes, "step": model.step, "total_steps": model.total_steps,
        "ema_updates": getattr(getattr(model, "ema", None), "updates", 0), "optimizers": optimizers,
        **(extra or {}),
    }  # fmt: skip
    return write_model_file(path, meta, arrays)


def load_model(path: str | Path, family: str | None = None) -> tuple[GenerativeModel, dict[str, Any]]:
    """The model in a file, ready to sample or to train on; ``family`` (when given) must match."""
    from generative.models import model_class

    path = Path(path)
    meta, arrays = read_model_file(path)
    if meta.get("kind") == "classifier":
        raise LabError(f"{path} is an evaluation classifier, not a generative model")
    saved = meta.get("family")
    if family is not None and saved != family:
        raise LabError(f"{path} holds a {saved} model, not a {family}: this run cannot continue from it")
    cls = model_class(str(saved))
    _check_model_meta(meta, path)
    _check_weights(cls, meta, arrays, path)
    with torch.random.fork_rng(devices=[]):  # construction draws initial weights: keep the global RNG
        model = cls(tuple(meta["shape"]), int(meta["n_classes"]), meta["hyperparameters"])
    try:
        for name, module in model.modules().items():
            module.load_state_dict(state_from_arrays(arrays, f"module/{name}"))
        for name, opt in model.optimizers().items():
            opt.load_state_dict(decode(meta["optimizers"][name], arrays))
    except (RuntimeError, KeyError, ValueError) as exc:
        raise LabError(
            f"{path} does not fit the {saved} model it names (damaged or edited?): {exc}"
        ) from None
    model.step, model.total_steps = int(meta["step"]), int(meta["total_steps"])
    ema = getattr(model, "ema", None)
    if ema is not None:
        ema.updates = int(meta.get("ema_updates", 0))
    return model, meta


# ----- checks of a file's metadata, before anything is built from it -----

MAX_IMAGE_SIDE = 1024
MAX_CLASSES = 10_000
MAX_HYPERPARAMETER = 1_000_000  # timesteps, sample_steps, batch_size...: larger is never a real model


def _whole(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _check_model_meta(meta: dict[str, Any], path: Path) -> None:
    """The fields a model is built from: types and ranges, so a forged file cannot ask for a huge model."""
    shape = meta.get("shape")
    if not (
        isinstance(shape, list)
        and len(shape) == 3
        and _whole(shape[0], 1, 8)  # up to 4 per image; a translation model stacks its two domains
        and all(_whole(side, 1, MAX_IMAGE_SIDE) for side in shape[1:])
    ):
        raise LabError(
            f"{path}: its image shape {shape!r} is not [channels 1-8, height, width] "
            f"with sides up to {MAX_IMAGE_SIDE}"
        )
    if not _whole(meta.get("n_classes"), 0, MAX_CLASSES):
        raise LabError(
            f"{path}: n_classes must be a whole number 0-{MAX_CLASSES}; got {meta.get('n_classes')!r}"
        )
    for key in ("step", "total_steps"):
        if not _whole(meta.get(key), 0, 2**62):
            raise LabError(f"{path}: {key} must be a whole number >= 0; got {meta.get(key)!r}")
    hp = meta.get("hyperparameters")
    if not isinstance(hp, dict):
        raise LabError(f"{path}: its hyperparameters are not a mapping; got {type(hp).__name__}")
    for key, value in hp.items():
        if (
            isinstance(value, (int, float))
            and not isinstance(value, bool)
            and abs(value) > MAX_HYPERPARAMETER
        ):
            raise LabError(f"{path}: hyperparameter {key} is {value!r}; at most {MAX_HYPERPARAMETER:,}")
    if not isinstance(meta.get("optimizers"), dict):
        raise LabError(f"{path}: its optimizer states are missing or not a mapping")


def model_size(cls: type[GenerativeModel], shape: Any, n_classes: Any, hyperparameters: Any) -> int:
    """The number of values (weights and buffers, EMA copies included) a model of ``cls`` would hold,
    counted by building it on torch's ``meta`` device: no memory, no data. Raises the model's own
    :class:`LabError` for bad hyperparameters."""
    with torch.device("meta"), torch.random.fork_rng(devices=[]):
        shell = cls(tuple(shape), int(n_classes), hyperparameters)
    return sum(t.numel() for module in shell.modules().values() for t in module.state_dict().values())


def check_model_size(cls: type[GenerativeModel], shape: Any, n_classes: int, hyperparameters: Any) -> None:
    """Refuse, before building it, a model of more than :data:`~lab.core.limits.MAX_PARAMETERS` values."""
    size = model_size(cls, shape, n_classes, hyperparameters)
    if size > MAX_PARAMETERS:
        raise LabError(
            f"a {cls.family} with these hyperparameters holds {size:,} weights; the lab builds at most "
            f"{MAX_PARAMETERS:,} (fewer channels or blocks)"
        )


def _check_weights(
    cls: type[GenerativeModel], meta: dict[str, Any], arrays: dict[str, np.ndarray], path: Path
) -> None:
    """Size the model the metadata describes (:func:`model_size`) and refuse a file that does not hold
    that many weights, or holds NaN or infinite ones, before building it."""
    try:
        needed = model_size(cls, meta["shape"], meta["n_classes"], meta["hyperparameters"])
    except LabError as exc:
        raise LabError(f"{path}: {exc}") from None
    except (TypeError, ValueError, RuntimeError, KeyError, OverflowError) as exc:
        raise LabError(f"{path} does not describe a model this lab can build ({exc})") from None
    held = sum(a.size for key, a in arrays.items() if key.startswith("module/"))
    if needed > held:
        raise LabError(
            f"{path} names a {meta.get('family')} model of {needed:,} weights but holds {held:,} "
            "(damaged or edited?)"
        )
    for key, array in arrays.items():
        if array.dtype.kind in "fc" and not np.isfinite(array).all():
            raise LabError(
                f"{path}: its {key!r} array holds NaN or infinite values (a diverged or damaged model)"
            )
