"""Generative models of images and of the lab's own environments: a diffusion model (DDPM/DDIM), a
VAE and a GAN, each optionally conditioned on a label, built on torch and the supervised core
(``lab.nets``, whose classifier measures them), trained and measured on small data that needs no
download. ``lab gen`` (``lab.gen.cli``) trains, samples, evaluates and watches them; see
``docs/generative.md``. Importing the package imports nothing heavy: the modules load torch."""
