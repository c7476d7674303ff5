"""Samples as pictures and animations: the denoising chain of a diffusion model, and walks through
the latent space of a GAN or VAE (spherical interpolation between random latents, in a loop)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from lab.errors import LabError

if TYPE_CHECKING:
    from generative.base import GenerativeModel


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
        return RunDir.open(path).best_model()
    if not path.exists():
        raise LabError(f"no run directory or model file at {path}")
    return path


def open_model(target: str | Path) -> LoadedModel:
    from generative.checkpoint import load_model

    path = model_path(target)
    model, meta = load_model(path)
    return LoadedModel(model, meta, path)


def labels_for(model: GenerativeModel, n: int, label: int | None) -> torch.Tensor | None:
    """All ``label`` (checked against the model), or each label in turn for a conditional model."""
    if label is not None:
        if not model.conditional:
            raise LabError(f"this {model.family} is unconditional: --label needs a conditional model")
        if not 0 <= label < model.n_classes:
            raise LabError(f"--label must lie in 0..{model.n_classes - 1}; got {label}")
        return torch.full((n,), label, dtype=torch.long)
    if model.conditional:
        return torch.arange(n) % model.n_classes
    return None


def slerp(a: torch.Tensor, b: torch.Tensor, w: float) -> torch.Tensor:
    """Spherical interpolation, row by row: Gaussian latents keep their typical norm along the way
    (a straight line passes through unlikely, too-short vectors near its middle)."""
    na, nb = a / a.norm(dim=1, keepdim=True), b / b.norm(dim=1, keepdim=True)
    omega = torch.acos((na * nb).sum(1).clamp(-1 + 1e-7, 1 - 1e-7))[:, None]
    so = torch.sin(omega)
    return torch.sin((1 - w) * omega) / so * a + torch.sin(w * omega) / so * b


def latent_walk(
    model: GenerativeModel, n: int, labels: torch.Tensor | None, seed: int, anchors: int = 4, frames: int = 12
) -> Iterator[torch.Tensor]:
    """Image batches along a closed loop through ``anchors`` random latents per image (GAN, VAE)."""
    if not hasattr(model, "latent"):
        raise LabError(f"a {model.family} has no latent space to walk through")
    generator = torch.Generator().manual_seed(seed)
    points = [model.latent(n, generator) for _ in range(anchors)]  # type: ignore[attr-defined]
    for k in range(anchors):
        a, b = points[k], points[(k + 1) % anchors]
        for f in range(frames):
            yield model.decode(slerp(a, b, f / frames), labels)  # type: ignore[attr-defined]


def chain_pictures(
    model: GenerativeModel, n: int, labels: torch.Tensor | None, seed: int, every: int = 1, **options: Any
) -> tuple[torch.Tensor, list[np.ndarray]]:
    """The samples of a diffusion model and a tiled picture of its chain every ``every`` steps."""
    from generative.images import tile

    if not hasattr(model, "chain"):
        raise LabError(f"a {model.family} has no denoising chain")
    frames: list[np.ndarray] = []
    x = torch.empty(0)
    generator = torch.Generator().manual_seed(seed)
    for i, total, x in model.chain(n, labels, generator, **options):  # type: ignore[attr-defined]
        if i % every == 0 or i == total - 1:
            frames.append(tile(x.clamp(-1, 1).numpy()))
    return x.clamp(-1.0, 1.0), frames


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

    if n < 1:
        raise LabError(f"--n must be at least 1; got {n}")
    out = check_picture_path(out)
    if gif is not None and Path(gif).suffix.lower() != ".gif":
        raise LabError(f"--gif writes a .gif; got {Path(gif).name!r}")
    loaded = open_model(target)
    model = loaded.model
    options = {k: v for k, v in options.items() if v is not None}
    if options and model.family != "diffusion":
        raise LabError(
            f"--{', --'.join(sorted(options))} apply to diffusion models; this is a {model.family}"
        )
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
