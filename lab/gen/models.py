"""A generative run's model: built from its spec, the record its file keeps beside the weights, the
data set that record names, and the training throughput the benchmark reads."""

from __future__ import annotations

import time
from typing import Any

import torch

from generative.base import GenerativeModel
from generative.data import ImageData, load_dataset
from lab.core.errors import LabError
from lab.gen.seeding import Batches, mix, step_generator
from lab.gen.spec import GenSpec


def build_model(spec: GenSpec, data: ImageData) -> GenerativeModel:
    """The spec's model for this data, its initial weights drawn from the seed (global RNG untouched)."""
    from generative.checkpoint import check_model_size
    from generative.models import model_class

    cls = model_class(spec.model)
    hp = dict(spec.hyperparameters)
    if "levels" in cls.DEFAULTS:
        hp.setdefault("levels", data.levels)
    check_model_size(cls, data.shape, data.n_classes, hp)  # hyperparameters can ask for terabytes
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(mix(spec.seed, 3))
        model = cls(data.shape, data.n_classes, hp)
    model.total_steps = spec.steps
    return model


def model_meta(spec: GenSpec, data: ImageData) -> dict[str, Any]:
    """What a model file records beside its weights: the run's spec and how to reload its data."""
    return {"spec": spec.to_dict(), "data": data.info, "class_names": data.class_names, "levels": data.levels}


def data_from_meta(meta: dict[str, Any]) -> ImageData:
    """The data set (and split) a model was trained on, from its file's metadata."""
    info = dict(meta.get("data") or {})
    name = info.pop("dataset", None)
    if name is None:
        raise LabError("the model file does not record its data set; give one with --dataset")
    seed = int(info.pop("seed", 0))
    fraction = float(info.pop("test_fraction", 0.2))
    options = {k: v for k, v in info.items() if k in _OPTION_KEYS.get(name, ())}
    return load_dataset(name, options, seed, fraction)


_OPTION_KEYS = {
    "digits": ("size",),
    "grid": ("env", "tile", "env_kwargs"),
    "folder": ("path", "resize", "channels"),
    "themes": ("themes", "rows", "cols", "tile", "train", "test", "paired"),
    "folders": ("path_a", "path_b", "resize"),
}


def images_per_second(model: GenerativeModel, data: ImageData, steps: int, seed: int = 0) -> float:
    """Training throughput over ``steps`` steps (for the benchmark)."""
    batches = Batches(len(data.train_x), int(model.hp["batch_size"]), seed)
    x, y = torch.from_numpy(data.train_x), torch.from_numpy(data.train_y)
    tick = time.perf_counter()
    images = 0
    for step in range(steps):
        index = batches.indices(step)
        model.train_step(x[index], y[index], step_generator(seed, step))
        images += len(index)
    return images / (time.perf_counter() - tick)
