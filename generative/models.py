"""The model families by the names specs use; each is imported on first use."""

from __future__ import annotations

import importlib

from generative.base import GenerativeModel

MODELS = {
    "diffusion": "generative.diffusion:Diffusion",
    "vae": "generative.vae:VAE",
    "gan": "generative.gan:GAN",
    "cyclegan": "generative.cyclegan:CycleGAN",
    "pix2pix": "generative.pix2pix:Pix2Pix",
}


def model_class(name: str) -> type[GenerativeModel]:
    """The class of family ``name``, or a one-line error with the closest name."""
    if name not in MODELS:
        from generative.data import unknown

        raise unknown("model", name, list(MODELS))
    module, _, attr = MODELS[name].partition(":")
    return getattr(importlib.import_module(module), attr)
