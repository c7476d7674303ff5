"""Recurrent networks: GRU or LSTM over sequences, with a linear read-out."""

from __future__ import annotations

import torch
from torch import nn


class RecurrentNet(nn.Module):
    """``forward(x[, state]) -> (outputs, state)`` for batch-first sequences ``(N, T, input_size)``.

    ``outputs`` is ``(N, T, out_features)`` (the read-out of every step); ``state`` is the GRU's
    hidden tensor or the LSTM's ``(h, c)`` pair, to carry across calls (e.g. episode chunks).
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
        cells = {"gru": nn.GRU, "lstm": nn.LSTM}
        if kind not in cells:
            raise ValueError(f"unknown recurrent kind {kind!r}; choose 'gru' or 'lstm'")
        self.kind = kind
        self.rnn = cells[kind](input_size, hidden_size, num_layers, batch_first=True, dropout=dropout)
        self.out_features = out_features or hidden_size
        self.readout = nn.Linear(hidden_size, self.out_features) if out_features else nn.Identity()

    def forward(self, x: torch.Tensor, state: torch.Tensor | tuple[torch.Tensor, torch.Tensor] | None = None):
        outputs, state = self.rnn(x, state)
        return self.readout(outputs), state
