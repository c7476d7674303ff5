"""``lab gen sample``: a model opened from a run directory or a file, and its samples written as a
PNG grid and, optionally, a GIF of the denoising chain or of a latent walk."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from generative.base import GenerativeModel
from generative.sampling import chain_pictures, labels_for, latent_walk
from lab.core.errors import LabError
from lab.core.limits import MAX_SAMPLES


@dataclass
class LoadedModel:
    model: GenerativeModel
    meta: dict[str, Any]
    path: Path

    @property
    def class_names(self) -> list[str]:
        return list(self.meta.get("class_names") or [])


def model_path(target: str | Path) -> Path:
    """A model file from a run directory (its model.npz, else its latest checkpoint) or a file path."""
    from lab.runs import RunDir

    path = Path(target)
    if path.is_dir():
        return RunDir.open(path).model_file()
    if not path.exists():
        raise LabError(f"no run directory or model file at {path}")
    return path


def open_model(target: str | Path) -> LoadedModel:
    from generative.checkpoint import load_model

    path = model_path(target)
    model, meta = load_model(path)
    return LoadedModel(model, meta, path)


FLAGS = {"sampler": "--sampler", "steps": "--sample-steps", "eta": "--eta", "guidance": "--guidance"}


def check_sampling_options(model: Any, options: dict[str, Any]) -> dict[str, Any]:
    """The diffusion sampler's options that were given (``sampler``, ``steps``, ``eta``,
    ``guidance``), or a one-line error for any this model would ignore."""
    given = {k: v for k, v in options.items() if v is not None}
    flags = [FLAGS[k] for k in given]
    if given and model.family != "diffusion":
        verb = "applies" if len(flags) == 1 else "apply"
        raise LabError(f"{', '.join(flags)} {verb} to diffusion models; this is a {model.family}")
    if given.get("guidance") is not None and not model.conditional:
        raise LabError(
            "--guidance steers a conditional diffusion model towards its label; this one is unconditional"
        )
    sampler = given.get("sampler", model.hp.get("sampler"))
    ddim_only = [FLAGS[k] for k in ("steps", "eta") if k in given]
    if sampler == "ddpm" and ddim_only:
        verb = "sets" if len(ddim_only) == 1 else "set"
        raise LabError(f"{' and '.join(ddim_only)} {verb} the DDIM sampler; the DDPM sampler takes all steps")
    return given


def sample_to_files(
    target: str | Path,
    n: int = 64,
    out: str | Path = "samples.png",
    label: int | None = None,
    gif: str | Path | None = None,
    seed: int = 0,
    **options: Any,
) -> list[Path]:
    """``lab gen sample``: a PNG grid of ``n`` samples and, with ``gif``, the chain or latent walk."""
    from generative.images import check_picture_path, tile, write_gif, write_png

    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_SAMPLES:
        raise LabError(f"--n must be a whole number from 1 to {MAX_SAMPLES:,}; got {n!r}")
    for name in ("eta", "guidance"):
        value = options.get(name)
        if value is not None and (isinstance(value, bool) or not math.isfinite(value)):
            raise LabError(f"--{name} must be a finite number; got {value!r}")
    out = check_picture_path(out)
    if gif is not None and Path(gif).suffix.lower() != ".gif":
        raise LabError(f"--gif writes a .gif; got {Path(gif).name!r}")
    loaded = open_model(target)
    model = loaded.model
    options = check_sampling_options(model, options)
    if getattr(model, "translates", False):
        return [translation_picture(loaded, n, out, label, gif, seed)]
    labels = labels_for(model, n, label)
    written = []
    if model.family == "diffusion" and gif is not None:
        steps = options.get("steps") or model.hp["sample_steps"]
        total = model.hp["timesteps"] if options.get("sampler", model.hp["sampler"]) == "ddpm" else steps
        images, frames = chain_pictures(model, n, labels, seed, every=max(1, total // 60), **options)
        written.append(write_gif(frames, gif, fps=15))
    else:
        images = model.sample(n, labels, torch.Generator().manual_seed(seed), **options)
        if gif is not None:
            frames = [tile(batch.numpy()) for batch in latent_walk(model, n, labels, seed)]
            written.append(write_gif(frames, gif, fps=12, hold=0.0))
    columns = None
    if labels is not None and label is None and n >= model.n_classes:
        columns = model.n_classes
    written.insert(0, write_png(tile(images.numpy(), columns), out))
    return written


def translation_picture(
    loaded: LoadedModel, n: int, out: Path, label: int | None, gif: Any, seed: int
) -> Path:
    """A translation model's picture: ``n`` held-out images of its data set (chosen with ``seed``)
    in rows A, G(A), F(G(A)) (CycleGAN), true B."""
    from generative.images import tile, write_png
    from generative.translation_metrics import translation_grid
    from lab.gen.models import data_from_meta

    if label is not None or gif is not None:
        raise LabError(f"a {loaded.model.family} translates held-out images: it takes no --label or --gif")
    images, columns = translation_grid(loaded.model, data_from_meta(loaded.meta), n, seed)  # type: ignore[arg-type]
    return write_png(tile(images, columns), out)
