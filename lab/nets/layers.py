"""Choices by name, shared by every network: activations, normalisation and weight initialisation.

Names rather than classes keep specs and hyperparameters plain data (YAML, JSON checkpoints), and a
typo is a one-line error naming the closest valid choice.
"""

from __future__ import annotations

import difflib
import math
import operator
import platform

import torch
from torch import nn


def cpu_vendor(cpuinfo: str = "/proc/cpuinfo") -> str:
    """The CPU maker's id as the CPU reports it ("GenuineIntel", "AuthenticAMD", ...), or "" where
    it can't be read: Linux's ``cpuinfo`` file, else ``platform.processor()`` (which names it on
    Windows)."""
    try:
        with open(cpuinfo, encoding="ascii", errors="replace") as info:
            for line in info:
                if line.startswith("vendor_id"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    processor = platform.processor()
    return next((v for v in ("GenuineIntel", "AuthenticAMD") if v in processor), "")


def torch_tanh_is_slow(vendor: str, mkl: bool) -> bool:
    """Whether torch's CPU tanh kernel runs its slow path on a CPU by ``vendor`` in a torch built
    with MKL (``mkl``). Such a torch computes tanh with MKL's ``vsTanh``, and MKL runs its generic SSE
    code on CPUs not made by Intel: on an Intel Xeon, ``MKL_ENABLE_INSTRUCTIONS=SSE4_2`` makes a
    2,048 x 64 tanh take 281 us instead of 32, what it took on an AMD EPYC. torch's sigmoid is its
    own vectorised code on every CPU (43 us there)."""
    return mkl and vendor != "GenuineIntel"


# Decided once per process from the machine alone (not by timing), so a seed's run repeats exactly
# on one machine; the two forms agree to 2.5e-7 (tests/test_nets.py).
_SIGMOID_FORM = torch_tanh_is_slow(cpu_vendor(), torch.backends.mkl.is_available())


class _SigmoidTanh(torch.autograd.Function):
    """tanh(x) as 2 sigmoid(2x) - 1, differentiated from its output as tanh is: 1 - tanh(x)^2."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor) -> torch.Tensor:
        y = torch.sigmoid(x * 2.0).mul_(2.0).sub_(1.0)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> torch.Tensor:
        (y,) = ctx.saved_tensors  # type: ignore[attr-defined]
        return torch.addcmul(grad, grad * y, y, value=-1.0)  # grad - grad y^2, one kernel fewer


class Tanh(nn.Tanh):
    """``nn.Tanh``, computed as ``2 sigmoid(2x) - 1`` where torch's own tanh kernel is slow
    (:func:`torch_tanh_is_slow`: MKL on a CPU not made by Intel), and as ``torch.tanh`` elsewhere,
    where it is the faster (one thread, forward and backward of 256 x 64 on an Intel Xeon: 25 us
    against 49 us; the sigmoid form's own autograd function costs Python calls as well). The same
    function to within 2.5e-7 either way; tanh is the default activation of every actor-critic.
    Still an ``nn.Tanh``, so code that asks ``isinstance(m, nn.Tanh)`` sees one.

    Inside ``torch.compile`` (the agents' ``compile: true``) it is always the sigmoid form: there
    TorchInductor writes the kernels, and its tanh (SLEEF's, accurate to 1 ulp) is its slowest
    element-wise function, while its sigmoid is an exponential. On the Intel Xeon, a compiled PPO
    step of the grid env's networks (2,048 x 64) takes 3,155 us with tanh and 2,574 us with the
    sigmoid form (eager: 2,852)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if _SIGMOID_FORM or torch.compiler.is_compiling():
            return _SigmoidTanh.apply(x)
        return torch.tanh(x)


ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": Tanh,
    "sigmoid": nn.Sigmoid,
    "identity": nn.Identity,
}
NORMS = (None, "batch", "layer")
INITS = ("default", "he", "xavier", "orthogonal")

_WEIGHTED = (
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
)
# torch.nn.init's name for each activation's gain; the smooth ReLU variants are close enough to ReLU.
_GAIN_NAMES = {
    "relu": "relu",
    "leaky_relu": "leaky_relu",
    "elu": "relu",
    "gelu": "relu",
    "silu": "relu",
    "tanh": "tanh",
    "sigmoid": "sigmoid",
    "identity": "linear",
    "linear": "linear",
}


def unknown_choice(kind: str, name: object, options: list[str] | tuple, cutoff: float = 0.6) -> ValueError:
    """A ``ValueError`` for an unknown name that suggests the closest valid one (case aside, with
    ``difflib``'s similarity ``cutoff``)."""
    names = [str(option) for option in options]
    lowered = {n.lower(): n for n in names}
    close = difflib.get_close_matches(str(name).lower(), list(lowered), n=1, cutoff=cutoff)
    hint = f"; did you mean {lowered[close[0]]!r}?" if close else ""
    return ValueError(f"unknown {kind} {name!r}{hint} (choose from {', '.join(names)})")


def activation(name: str) -> nn.Module:
    """A fresh activation module (``"identity"`` for none)."""
    if name not in ACTIVATIONS:
        raise unknown_choice("activation", name, list(ACTIVATIONS))
    return ACTIVATIONS[name]()


def check_norm(name: str | None) -> str | None:
    if name not in NORMS:
        raise unknown_choice("normalisation", name, NORMS)
    return name


def check_size(what: str, value: object) -> int:
    """A layer width or count: a whole number >= 1 (numpy integers allowed, bools not)."""
    try:
        number = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        number = 0
    if isinstance(value, bool) or number < 1:
        raise ValueError(f"{what} must be a whole number >= 1; got {value!r}")
    return number


def check_dropout(p: float) -> float:
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout must be a probability in [0, 1); got {p!r}")
    return float(p)


def norm_1d(name: str | None, features: int) -> nn.Module | None:
    """BatchNorm or LayerNorm over feature vectors (``None``: no normalisation)."""
    if check_norm(name) == "batch":
        return nn.BatchNorm1d(features)
    if name == "layer":
        return nn.LayerNorm(features)
    return None


def norm_2d(name: str | None, channels: int) -> nn.Module | None:
    """BatchNorm over channels, or for ``"layer"`` GroupNorm with one group: LayerNorm over each
    image's channels and pixels, which unlike ``nn.LayerNorm`` needs no fixed spatial size."""
    if check_norm(name) == "batch":
        return nn.BatchNorm2d(channels)
    if name == "layer":
        return nn.GroupNorm(1, channels)
    return None


def gain(activation_name: str) -> float:
    """The gain that keeps activations' variance steady through layers followed by this activation."""
    if activation_name not in _GAIN_NAMES:
        raise unknown_choice("activation", activation_name, list(_GAIN_NAMES))
    return nn.init.calculate_gain(_GAIN_NAMES[activation_name])


def initialize(
    module: nn.Module, scheme: str = "default", activation_name: str = "relu", gain_value: float | None = None
) -> nn.Module:
    """Re-initialise the weight of every Linear and convolution in ``module``, biases to zero; returns it.

    ``he`` (Kaiming normal, variance ``gain**2 / fan_in``: 2 / fan_in for ReLU) keeps ReLU networks'
    signal from fading; ``xavier`` (uniform, variance ``gain**2 * 2 / (fan_in + fan_out)``) suits
    tanh-like ones; ``orthogonal`` (``W W^T = gain**2 I``) is the usual choice for RL policies and
    values. The gain is that of ``activation_name`` (the activation after the layer) unless
    ``gain_value`` is given. ``default`` leaves PyTorch's own initialisation.
    """
    if scheme not in INITS:
        raise unknown_choice("initialisation", scheme, INITS)
    if scheme == "default":
        return module
    g = gain(activation_name) if gain_value is None else float(gain_value)
    for layer in module.modules():
        if not isinstance(layer, _WEIGHTED):
            continue
        if scheme == "he":
            fan_in = nn.init._calculate_fan_in_and_fan_out(layer.weight)[0]
            nn.init.normal_(layer.weight, 0.0, g / math.sqrt(fan_in))
        elif scheme == "xavier":
            nn.init.xavier_uniform_(layer.weight, gain=g)
        else:
            nn.init.orthogonal_(layer.weight, gain=g)
        if layer.bias is not None:
            nn.init.zeros_(layer.bias)
    return module
