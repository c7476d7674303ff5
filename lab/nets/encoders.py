"""A sensible encoder for a gymnasium observation space: the first layers of an agent's network.

Every encoder takes a batch of raw observations as a tensor (as the env returns them, stacked),
returns ``(N, out_features)`` float features, and does its own scaling, so agents never need to
know whether they see state numbers, coordinates, symbolic planes or pixels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from lab.nets import layers
from lab.nets.cnn import GridCNN, NatureCNN
from lab.nets.mlp import MLP

NATURE_MIN_SIZE = 36  # NatureCNN's strides need at least 36x36; smaller frames get GridCNN
POOL_ABOVE = 24  # GridCNN pools frames larger than this, to keep its flattened head small


class DiscreteEncoder(nn.Module):
    """A state number -> a learned embedding: what a one-hot times a matrix computes, without the one-hot."""

    def __init__(self, space: spaces.Discrete, features: int) -> None:
        super().__init__()
        self.n, self.start = int(space.n), int(space.start)
        self.embedding = nn.Embedding(self.n, features)
        self.out_features = features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        index = x.long().reshape(-1) - self.start
        if len(index) and (int(index.min()) < 0 or int(index.max()) >= self.n):
            low, high = int(index.min()) + self.start, int(index.max()) + self.start
            raise ValueError(
                f"observations must lie in [{self.start}, {self.start + self.n}) for this Discrete({self.n})"
                f" encoder; got values from {low} to {high}"
            )
        return self.embedding(index)


def _channel_range(space: spaces.Box, channel_axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel ``(low, span)`` that maps the space's bounds onto [0, 1]; ``(0, 1)`` (no change)
    for a channel whose bounds are infinite or empty."""
    channels = space.shape[channel_axis]
    low = np.moveaxis(np.broadcast_to(space.low, space.shape), channel_axis, -1).reshape(-1, channels)
    high = np.moveaxis(np.broadcast_to(space.high, space.shape), channel_axis, -1).reshape(-1, channels)
    low, high = low.astype(np.float64).min(0), high.astype(np.float64).max(0)
    bounded = np.isfinite(low) & np.isfinite(high) & (high > low)
    return np.where(bounded, low, 0.0), np.where(bounded, high - low, 1.0)


class ImageEncoder(nn.Module):
    """``(N, H, W, C)`` (or channels-first ``(N, C, H, W)``) images -> features, through a CNN.

    Each channel is scaled by the space's own bounds, ``(x - low) / (high - low)``: 255 for pixels,
    1 (or the strongest wind) for symbolic planes, so every input lands in [0, 1] and one learning
    rate suits all observation types.
    """

    def __init__(
        self,
        space: spaces.Box,
        features: int,
        channels_last: bool = True,
        activation: str = "relu",
        norm: str | None = None,
        init: str | None = None,
        cnn_channels: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        self.channels_last = channels_last
        if channels_last:
            height, width, channels = space.shape
        else:
            channels, height, width = space.shape
        low, span = _channel_range(space, -1 if channels_last else 0)
        shape = (1, channels, 1, 1)
        self.register_buffer("low", torch.as_tensor(low, dtype=torch.float32).view(shape))
        self.register_buffer("scale", torch.as_tensor(1.0 / span, dtype=torch.float32).view(shape))
        # The same constants for every entry of one observation, as the forward pass uses them: a
        # broadcast over the batch alone runs vectorised, where per-channel constants over the
        # channels-last pixels ran element by element (5x slower for 64 frames of 36x36x3). Not in
        # checkpoints, which hold the per-channel buffers above; refilled from them after a load.
        per_entry = (height, width, channels) if channels_last else (channels, height, width)
        for name in ("low", "scale"):
            self.register_buffer(f"{name}_per_entry", torch.empty(per_entry), persistent=False)
        self._fill_per_entry()
        self.register_load_state_dict_post_hook(_refill_per_entry)
        options = {"activation": activation, "norm": norm, **({"init": init} if init else {})}
        if min(height, width) >= NATURE_MIN_SIZE:
            self.cnn: nn.Module = NatureCNN(channels, height, width, out_features=features, **options)
        else:
            pool = max(height, width) > POOL_ABOVE
            if cnn_channels is not None:
                options["channels"] = tuple(cnn_channels)
            self.cnn = GridCNN(channels, height, width, out_features=features, pool=pool, **options)
        self.out_features = features

    @torch.no_grad()
    def _fill_per_entry(self) -> None:
        """``low`` and ``scale`` per channel, copied to every entry of ``low_per_entry`` and
        ``scale_per_entry`` (channels last: the last dimension; else the first)."""
        for name in ("low", "scale"):
            channel = getattr(self, name).flatten()
            getattr(self, f"{name}_per_entry").copy_(
                channel if self.channels_last else channel.view(-1, 1, 1)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError(f"ImageEncoder expects a batch of images (4 dimensions); got {tuple(x.shape)}")
        if x.is_floating_point():
            x = x.float()  # float64 -> float32; integers become float32 in the subtraction
        x = (x - self.low_per_entry).mul_(self.scale_per_entry)
        return self.cnn(x.permute(0, 3, 1, 2) if self.channels_last else x)


def _refill_per_entry(module: ImageEncoder, incompatible_keys: object) -> None:
    """After ``load_state_dict``: the forward pass's constants follow the loaded ``low`` and ``scale``."""
    module._fill_per_entry()


class VectorEncoder(nn.Module):
    """A feature vector -> an MLP with an activated output; bounded entries are first scaled to [0, 1]
    (grid coordinates run to the map's size, which would otherwise dominate the key/door flags)."""

    def __init__(
        self,
        space: spaces.Box | spaces.MultiBinary,
        features: int,
        hidden: Sequence[int],
        activation: str = "relu",
        norm: str | None = None,
        init: str | None = None,
    ) -> None:
        super().__init__()
        size = int(space.shape[0])
        if isinstance(space, spaces.Box):
            low, span = _channel_range(space, 0)
        else:
            low, span = np.zeros(size), np.ones(size)
        self.register_buffer("low", torch.as_tensor(low, dtype=torch.float32))
        self.register_buffer("scale", torch.as_tensor(1.0 / span, dtype=torch.float32))
        init = init or "default"
        self.mlp = MLP(size, features, hidden=hidden, activation=activation, norm=norm, init=init)
        self.act = layers.activation(activation)
        self.out_features = features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.mlp((x.float().reshape(x.shape[0], -1) - self.low) * self.scale))


def token_layout(space: spaces.Space) -> tuple[int, int] | None:
    """``(V, slots)`` when ``space`` is the text environment's observation ``Dict(length, tokens)``
    flattened by gymnasium (``FlattenObservation``: ``[length, tokens...]``, integers, the length
    bounded by the number of slots, every token by ``V``, the padding); ``None`` otherwise."""
    if not isinstance(space, spaces.Box) or len(space.shape) != 1 or space.shape[0] < 2:
        return None
    if not np.issubdtype(space.dtype, np.integer) or np.any(space.low != 0):
        return None
    slots, high = space.shape[0] - 1, space.high
    if int(high[0]) != slots or np.any(high[1:] != high[1]) or int(high[1]) < 1:
        return None
    return int(high[1]), slots


class TokenSequenceEncoder(nn.Module):
    """A token prefix -> features: an embedding and a GRU over ``[0, tokens...]``, read at the last
    token (id 0, the end token, starts the sequence as it does for the language models).

    Takes the flattened text observation (:func:`token_layout`): ``x[:, 0]`` tokens are filled, the rest
    of ``x[:, 1:]`` is padding.
    """

    def __init__(self, space: spaces.Box, features: int) -> None:
        super().__init__()
        from lab.nets.recurrent import RecurrentNet

        layout = token_layout(space)
        if layout is None:
            raise ValueError(f"{space} is not a flattened token observation")
        self.vocab_size, self.slots = layout
        self.embedding = nn.Embedding(self.vocab_size + 1, features)
        self.rnn = RecurrentNet(features, features)
        self.out_features = features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.long()
        length = x[:, 0].clamp(0, self.slots)
        tokens = torch.cat([torch.zeros_like(x[:, :1]), x[:, 1:].clamp(0, self.vocab_size)], dim=1)
        outputs, _ = self.rnn(self.embedding(tokens))
        return outputs[torch.arange(len(x), device=x.device), length]


def image_layout(space: spaces.Space) -> str | None:
    """``"channels_last"`` for ``(H, W, C)`` image Boxes, ``"channels_first"`` for ``(C, H, W)``
    frame stacks, ``None`` otherwise; at most 16 channels, channels-last preferred when both fit."""
    if not isinstance(space, spaces.Box) or len(space.shape) != 3:
        return None
    if space.shape[-1] <= 16:
        return "channels_last"
    if space.shape[0] <= 16:
        return "channels_first"
    return None


def encoder_for_space(
    space: spaces.Space,
    features: int = 64,
    hidden: Sequence[int] = (64,),
    activation: str = "relu",
    norm: str | None = None,
    init: str | None = None,
    cnn_channels: Sequence[int] | None = None,
) -> nn.Module:
    """The encoder for observations of ``space``; the module has ``out_features``.

    - ``Discrete`` -> a learned embedding of the state number.
    - the text environment's flattened observation (:func:`token_layout`) -> a GRU over the tokens.
    - ``Box`` vector (or ``MultiBinary`` vector) -> an MLP with ``hidden`` layers.
    - image ``Box`` ``(H, W, C)`` (or ``(C, H, W)``) -> per-channel scaling to [0, 1], then
      :class:`~lab.nets.cnn.GridCNN` below 36x36 (grids, small pixel frames) and
      :class:`~lab.nets.cnn.NatureCNN` from 36x36 up.

    ``init=None`` keeps each network's own default (He for the grid CNN, orthogonal for NatureCNN,
    PyTorch's for the MLP). ``cnn_channels`` sets the grid CNN's channels per layer (default 32, 64).
    """
    layers.check_size("encoder features", features)
    if isinstance(space, spaces.Discrete):
        return DiscreteEncoder(space, features)
    if token_layout(space) is not None:
        return TokenSequenceEncoder(space, features)  # type: ignore[arg-type]
    layout = image_layout(space)
    if layout is not None:
        return ImageEncoder(space, features, layout == "channels_last", activation, norm, init, cnn_channels)  # type: ignore[arg-type]
    if isinstance(space, (spaces.Box, spaces.MultiBinary)) and len(space.shape) == 1:
        return VectorEncoder(space, features, hidden, activation, norm, init)
    raise ValueError(
        f"no encoder for the observation space {space}: the lab's encoders take Discrete spaces, "
        "flattened text observations, 1-D Box or MultiBinary vectors, and (H, W, C) or (C, H, W) "
        "image Boxes of at most 16 channels "
        "(flatten other Boxes, or pick the fields of a Dict, with a gymnasium observation wrapper)"
    )
