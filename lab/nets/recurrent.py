"""Recurrent networks: a GRU or LSTM over batch-first sequences, with an optional linear read-out."""

from __future__ import annotations

import torch
from torch import nn

from lab.nets import layers

KINDS = {"gru": nn.GRU, "lstm": nn.LSTM}

State = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


class RecurrentNet(nn.Module):
    """``forward(x, state=None) -> (outputs, state)`` on sequences ``(N, T, input_size)``.

    ``outputs`` is ``(N, T, out_features)``: the read-out of every step (the last layer's hidden
    state when ``out_features`` is ``None``). ``state`` is the GRU's ``h`` or the LSTM's ``(h, c)``,
    each ``(num_layers, N, hidden_size)``; passing it back in continues the sequence, which is how a
    recurrent agent carries memory across rollout chunks (zero it where an episode starts).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int = 64,
        out_features: int | None = None,
        kind: str = "gru",
        num_layers: int = 1,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if kind not in KINDS:
            raise layers.unknown_choice("recurrent kind", kind, list(KINDS))
        input_size = layers.check_size("RecurrentNet input_size", input_size)
        hidden_size = layers.check_size("RecurrentNet hidden_size", hidden_size)
        num_layers = layers.check_size("RecurrentNet num_layers", num_layers)
        dropout = layers.check_dropout(dropout)
        self.kind, self.hidden_size, self.num_layers = kind, hidden_size, num_layers
        # PyTorch applies dropout between stacked layers only, and warns when there is just one.
        self.rnn = KINDS[kind](
            input_size, hidden_size, num_layers, batch_first=True, dropout=dropout if num_layers > 1 else 0.0
        )
        if out_features is None:
            self.readout: nn.Module = nn.Identity()
            self.out_features = hidden_size
        else:
            out_features = layers.check_size("RecurrentNet out_features", out_features)
            self.readout = nn.Linear(hidden_size, out_features)
            self.out_features = out_features

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> State:
        """The zero state for ``batch_size`` sequences (what ``state=None`` means)."""
        h = torch.zeros(self.num_layers, batch_size, self.hidden_size, device=device)
        return (h, torch.zeros_like(h)) if self.kind == "lstm" else h

    def forward(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        if x.dim() != 3:
            raise ValueError(
                f"RecurrentNet expects batch-first sequences (N, T, features); got {tuple(x.shape)}"
            )
        outputs, state = self.rnn(x, state)
        return self.readout(outputs), state
