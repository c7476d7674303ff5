"""A causal Transformer decoder (GPT-style): tokens in, next-token logits out, with a key/value cache."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from lab.nets.layers import check_dropout, check_size

KeyValues = tuple[torch.Tensor, torch.Tensor]  # one layer's keys and values, (N, heads, T, width/heads)


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention in which position ``t`` attends to positions ``0..t`` only.

    ``scaled_dot_product_attention(is_causal=True)`` applies the mask inside the fused kernel, so
    no ``T x T`` mask tensor is built.
    """

    def __init__(self, width: int, heads: int, dropout: float) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"the width ({width}) must be divisible by the number of heads ({heads})")
        self.heads, self.dropout = heads, dropout
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)
        self.residual_dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_cached(x)[0]

    def forward_cached(
        self, x: torch.Tensor, past: KeyValues | None = None
    ) -> tuple[torch.Tensor, KeyValues]:
        """``(output, keys and values)`` of ``x``, ``(N, T, width)``; with ``past`` (the keys and values
        of the positions before), ``x`` continues that sequence."""
        n, t, width = x.shape
        q, k, v = self.qkv(x).view(n, t, 3, self.heads, width // self.heads).permute(2, 0, 3, 1, 4)
        before = 0 if past is None else past[0].shape[2]
        if past is not None:
            k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
        mask = None
        if before and t > 1:  # new position i sees the past and the new positions up to i
            mask = torch.ones(t, before + t, dtype=torch.bool, device=x.device).tril(before)
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0,
            is_causal=before == 0 and t > 1,
        )  # fmt: skip
        return self.residual_dropout(self.out(y.transpose(1, 2).reshape(n, t, width))), (k, v)


class Block(nn.Module):
    """Pre-LayerNorm residual block: ``x + attention(LN(x))``, then ``x + MLP(LN(x))`` (4x wide, GELU).

    Normalising before each sub-layer leaves the residual path an identity, which trains stably
    without the warm-up the original post-LN Transformer needed.
    """

    def __init__(self, width: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.attention = CausalSelfAttention(width, heads, dropout)
        self.mlp = nn.Sequential(
            nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width), nn.Dropout(dropout)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_cached(x)[0]

    def forward_cached(
        self, x: torch.Tensor, past: KeyValues | None = None
    ) -> tuple[torch.Tensor, KeyValues]:
        attended, present = self.attention.forward_cached(self.ln1(x), past)
        x = x + attended
        return x + self.mlp(self.ln2(x)), present


class CausalTransformer(nn.Module):
    """Token + learned position embeddings, ``layers`` pre-LN blocks, a final LayerNorm, a linear head.

    ``forward(tokens)`` maps ``(N, T)`` integer tokens (``T <= context``) to ``(N, T, vocab_size)``
    logits; position ``t``'s logits depend only on tokens ``0..t``, so one forward pass scores every
    next-token prediction of a sequence, and generation appends one token at a time.
    """

    def __init__(
        self,
        vocab_size: int,
        context: int = 64,
        width: int = 128,
        layers: int = 2,
        heads: int = 4,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        sizes = {"vocab_size": vocab_size, "context": context, "width": width}
        for what, size in {**sizes, "layers": layers, "heads": heads}.items():
            check_size(f"CausalTransformer {what}", size)
        check_dropout(dropout)
        self.vocab_size, self.context, self.out_features = vocab_size, context, vocab_size
        self.tokens = nn.Embedding(vocab_size, width)
        self.positions = nn.Embedding(context, width)
        self.embedding_dropout = nn.Dropout(dropout)
        self.blocks = nn.Sequential(*(Block(width, heads, dropout) for _ in range(layers)))
        self.ln = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocab_size)
        self.apply(_gpt_init)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.forward_cached(tokens)[0]

    def forward_cached(
        self, tokens: torch.Tensor, cache: list[KeyValues] | None = None
    ) -> tuple[torch.Tensor, list[KeyValues]]:
        """``(logits, cache)``: ``tokens`` continue the sequence whose per-layer keys and values are
        ``cache`` (``None``: a new sequence), so generation feeds one new token per step instead of
        the whole sequence again; the logits equal those of :meth:`forward` on the whole sequence."""
        if tokens.dim() != 2:
            raise ValueError(
                f"CausalTransformer expects (N, T) integer tokens; got shape {tuple(tokens.shape)}"
            )
        before = 0 if cache is None else cache[0][0].shape[2]
        t = before + tokens.shape[1]
        if t > self.context:
            raise ValueError(f"a sequence of {t} tokens is longer than the context of {self.context}")
        x = self.tokens(tokens) + self.positions(torch.arange(before, t, device=tokens.device))
        x = self.embedding_dropout(x)
        present: list[KeyValues] = []
        for i, block in enumerate(self.blocks):
            x, kv = block.forward_cached(x, None if cache is None else cache[i])
            present.append(kv)
        return self.head(self.ln(x)), present


def _gpt_init(module: nn.Module) -> None:
    """GPT-2's initialisation: N(0, 0.02) weights and embeddings, zero biases; small weights keep
    the residual stream near the embeddings at the start."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)
