"""``lab gen``: the application side of the generative models: specs, the training run, sampling to
files and the live watch window. The models, their data and their metrics live in ``generative/``."""
