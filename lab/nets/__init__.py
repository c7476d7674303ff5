"""The supervised core: networks built from ``torch.nn`` and one ``fit()`` loop.

Agents use these as function approximators (Q-networks, policies, values) and generative models as
building blocks. Importing it imports torch, so the ``lab`` command imports it only inside the
commands that train networks.
"""

from lab.nets.cnn import CNN, GridCNN, NatureCNN
from lab.nets.encoders import encoder_for_space
from lab.nets.fit import History, fit
from lab.nets.inference import accuracy, predict
from lab.nets.language_model import LanguageModel
from lab.nets.layers import gain, initialize
from lab.nets.mlp import MLP
from lab.nets.recurrent import RecurrentNet
from lab.nets.training_choices import flush_denormals, lr_factor, make_optimizer, set_learning_rate
from lab.nets.transformer import CausalTransformer

__all__ = [
    "CNN",
    "MLP",
    "CausalTransformer",
    "GridCNN",
    "History",
    "LanguageModel",
    "NatureCNN",
    "RecurrentNet",
    "accuracy",
    "encoder_for_space",
    "fit",
    "flush_denormals",
    "gain",
    "initialize",
    "lr_factor",
    "make_optimizer",
    "predict",
    "set_learning_rate",
]
