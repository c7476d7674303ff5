"""Generative models of images and of the lab's own environments: GAN, VAE and diffusion models
built on the supervised core (``lab.nets``), trained and measured on small data that needs no
download. The package is installed with the lab so that its place in the layout is fixed; its
models arrive with the generative-models work (see ``docs/design.md``)."""
