"""Next-token language models over token ids: the causal Transformer or the GRU, with sampling.

Token ids follow the text environment's vocabularies: ``0..V-1`` with ``0`` the end token, which
also starts every sequence (as GPT-2's ``<|endoftext|>`` does), and ``V`` the padding the env's
observations use. A sentence ``s`` is trained as input ``[0, s...]`` and targets ``[s..., 0]``, so
``q(s) = prod q(s_i | s_<i) * q(end | s)`` is a distribution over whole sentences. Files are the lab's
array archives (:mod:`lab.core.archive`): weights plus JSON metadata naming the vocabulary.
"""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lab.core.archive import read_archive, write_archive
from lab.core.errors import LabError
from lab.core.limits import MAX_PARAMETERS
from lab.nets.inference import EVAL_OUTPUTS, IGNORE
from lab.nets.layers import check_dropout, check_size, unknown_choice
from lab.nets.recurrent import RecurrentNet
from lab.nets.transformer import CausalTransformer

KINDS = ("transformer", "gru")
ARCHITECTURE = ("vocab_size", "kind", "context", "width", "layers", "heads", "dropout")  # model.config
FORMAT = "lab-language-model"
State = Any  # the Transformer's per-layer keys and values, or the GRU's hidden state


class LanguageModel(nn.Module):
    """``forward(tokens) -> (N, T, V)`` next-token logits for ``(N, T)`` ids in ``0..V`` (``V``: padding).

    ``kind="transformer"``: :class:`~lab.nets.transformer.CausalTransformer` (``context`` positions,
    ``width``, ``layers``, ``heads``); ``kind="gru"``: an embedding and
    :class:`~lab.nets.recurrent.RecurrentNet` (``width`` hidden units, ``layers`` layers, any length).
    :meth:`step` continues a sequence from a state (the key/value cache or the hidden state).
    """

    def __init__(
        self,
        vocab_size: int,
        kind: str = "transformer",
        context: int = 48,
        width: int = 64,
        layers: int = 2,
        heads: int = 4,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if kind not in KINDS:
            raise unknown_choice("language model kind", kind, KINDS)
        self.vocab_size = vocab_size = check_size("vocab_size", vocab_size)
        dropout = check_dropout(dropout)
        self.kind = kind
        if kind == "transformer":
            self.net: nn.Module = CausalTransformer(vocab_size + 1, context, width, layers, heads, dropout)
            self.context: int | None = operator.index(context)
        else:
            self.embedding = nn.Embedding(vocab_size + 1, width)
            self.net = RecurrentNet(width, width, vocab_size, "gru", layers, dropout)
            self.context = None
        self.config = {  # checked by the networks above; plain ints for the file's JSON metadata
            "vocab_size": vocab_size, "kind": kind, "context": operator.index(context),
            "width": operator.index(width), "layers": operator.index(layers),
            "heads": operator.index(heads), "dropout": dropout,
        }  # fmt: skip

    @property
    def max_length(self) -> int | None:
        """The longest sentence the model can score or end (its context less the start token)."""
        return None if self.context is None else self.context - 1

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.step(tokens)[0]

    def step(self, tokens: torch.Tensor, state: State = None) -> tuple[torch.Tensor, State]:
        """``(logits (N, T, V), state)`` for ``tokens`` continuing the sequence of ``state``."""
        if self.kind == "transformer":
            logits, state = self.net.forward_cached(tokens, state)
            return logits[..., : self.vocab_size], state
        return self.net(self.embedding(tokens), state)


# ----- data -----


def sequence_arrays(
    sentences: Sequence[Sequence[int]], vocab_size: int, max_length: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """``(X, Y)``: inputs ``[0, s...]`` padded with ``vocab_size``, targets ``[s..., 0]`` padded with
    ``-100`` (ignored by cross-entropy). Sentences longer than ``max_length`` are refused."""
    longest = max((len(s) for s in sentences), default=0)
    if max_length is not None and longest > max_length:
        raise ValueError(f"a sentence of {longest} tokens is longer than the model's {max_length}")
    n, width = len(sentences), longest + 1
    X = np.full((n, width), vocab_size, dtype=np.int64)
    Y = np.full((n, width), IGNORE, dtype=np.int64)
    for i, s in enumerate(sentences):
        X[i, 0] = 0
        X[i, 1 : len(s) + 1] = s
        Y[i, : len(s)] = s
        Y[i, len(s)] = 0
    return X, Y


@torch.no_grad()
def sentence_log_probs(
    model: LanguageModel, sentences: Sequence[Sequence[int]], batch_size: int = 512
) -> np.ndarray:
    """``log q(s)`` of each sentence (nats), end token included; the model's mode is left as it was.
    A batch holds at most ``batch_size`` sentences and :data:`EVAL_OUTPUTS` log-probabilities."""
    batch_size = check_size("batch_size", batch_size)
    width = max((len(s) for s in sentences), default=0) + 1
    batch_size = min(batch_size, max(1, EVAL_OUTPUTS // (width * model.vocab_size)))
    was_training = model.training
    model.eval()
    out = []
    try:
        for i in range(0, len(sentences), batch_size):
            X, Y = sequence_arrays(sentences[i : i + batch_size], model.vocab_size, model.max_length)
            log_p = torch.log_softmax(model(torch.from_numpy(X)).double(), dim=-1)
            y = torch.from_numpy(Y)
            picked = log_p.gather(-1, y.clamp(min=0).unsqueeze(-1)).squeeze(-1)
            out.append((picked * (y != IGNORE)).sum(1).numpy())
    finally:
        model.train(was_training)
    return np.concatenate(out) if out else np.zeros(0)


# ----- sampling -----


def check_sampling(temperature: float, top_k: int, top_p: float) -> None:
    """A ``ValueError`` naming the first bad sampling option."""
    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, numbers.Real)
        or not (math.isfinite(temperature) and temperature >= 0)
    ):
        raise ValueError(f"temperature must be a finite number >= 0 (0: greedy); got {temperature!r}")
    if isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral) or top_k < 0:
        raise ValueError(f"top_k must be a whole number >= 0 (0: no limit); got {top_k!r}")
    if isinstance(top_p, bool) or not isinstance(top_p, numbers.Real) or not 0 < top_p <= 1:
        raise ValueError(f"top_p must lie in (0, 1] (1: no limit); got {top_p!r}")


def filter_logits(
    logits: torch.Tensor, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0
) -> torch.Tensor:
    """Logits ``(N, V)`` divided by ``temperature``, with tokens outside the ``top_k`` most likely and
    outside the smallest set holding ``top_p`` of the probability (nucleus) set to ``-inf``."""
    check_sampling(temperature, top_k, top_p)
    if temperature == 0:  # greedy: only the most likely token stays
        top_k, temperature = 1, 1.0
    logits = logits / temperature
    if 0 < top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, -math.inf)
    if top_p < 1:
        ordered, order = torch.sort(logits, dim=-1, descending=True)
        probs = torch.softmax(ordered, dim=-1)
        before = probs.cumsum(-1) - probs  # mass of the tokens ranked above: the first always stays
        drop = torch.zeros_like(logits, dtype=torch.bool).scatter(-1, order, before >= top_p)
        logits = logits.masked_fill(drop, -math.inf)
    return logits


def sample(
    model: LanguageModel,
    n: int,
    generator: torch.Generator,
    max_length: int,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    cache: bool = True,
) -> list[tuple[int, ...]]:
    """``n`` sentences (ids without the end token), each cut at ``max_length`` tokens if it has not
    ended: :func:`sample_with_ends` without the flags."""
    return sample_with_ends(model, n, generator, max_length, temperature, top_k, top_p, cache)[0]


@torch.no_grad()
def sample_with_ends(
    model: LanguageModel,
    n: int,
    generator: torch.Generator,
    max_length: int,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    cache: bool = True,
) -> tuple[list[tuple[int, ...]], list[bool]]:
    """``(sentences, ended)``: ``n`` sentences drawn token by token until the end token, at most
    ``max_length`` tokens each (then one more draw says whether the sentence ends there); ``ended[i]``
    is False for a sentence cut at ``max_length``. ``cache`` feeds one new token per step (the
    key/value cache, the GRU's state); without it every step rescores the whole sequence: the same
    tokens, more work."""
    check_sampling(temperature, top_k, top_p)
    for what, value in (("n", n), ("max_length", max_length)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
            raise ValueError(f"{what} must be a whole number >= 0; got {value!r}")
    if model.max_length is not None and max_length > model.max_length:
        raise ValueError(f"max_length {max_length} is over the model's {model.max_length} tokens")
    was_training = model.training
    model.eval()
    try:
        tokens = torch.zeros(n, 1, dtype=torch.long)
        ended = torch.zeros(n, dtype=torch.bool)
        state: State = None
        for _ in range(max_length + 1):
            if cache:
                logits, state = model.step(tokens[:, -1:] if state is not None else tokens, state)
            else:
                logits = model(tokens)
            probs = torch.softmax(filter_logits(logits[:, -1].double(), temperature, top_k, top_p), -1)
            nxt = torch.multinomial(probs, 1, generator=generator).squeeze(1)
            nxt = torch.where(ended, torch.full_like(nxt, model.vocab_size), nxt)
            tokens = torch.cat([tokens, nxt[:, None]], dim=1)
            ended |= nxt == 0
            if bool(ended.all()):
                break
    finally:
        model.train(was_training)
    out = []
    for row in tokens[:, 1:].tolist():
        sentence = []
        for t in row:
            if t == 0 or t == model.vocab_size:
                break
            sentence.append(t)
        out.append(tuple(sentence[:max_length]))
    return out, ended.tolist()


# ----- files -----


def save_language_model(path: str | Path, model: LanguageModel, meta: dict[str, Any]) -> Path:
    """``model``'s weights and config, with ``meta`` (it must hold ``vocabulary``: the token strings)."""
    if len(meta.get("vocabulary", ())) != model.vocab_size:
        raise ValueError("meta['vocabulary'] must list the model's vocab_size token strings")
    arrays = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    return write_archive(Path(path), {**meta, "format": FORMAT, "config": model.config}, arrays)


def load_language_model(path: str | Path) -> tuple[LanguageModel, dict[str, Any]]:
    """A model saved by :func:`save_language_model` and its metadata; a :class:`LabError` otherwise."""
    path = Path(path)
    if not path.is_file():
        raise LabError(f"no language model file {path} (give a run's model.npz)")
    meta, arrays = read_archive(path, f"{path} is not a language model", LabError)
    config = meta.get("config")
    if meta.get("format") != FORMAT or not isinstance(config, dict):
        raise LabError(f"{path} is not a language model (made by lab lm train)")
    model = build_language_model(config, str(path))
    try:
        model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in arrays.items()})
    except (TypeError, ValueError, RuntimeError) as exc:
        raise LabError(f"{path} holds a damaged language model: {str(exc).splitlines()[0]}") from None
    return model, meta


def build_language_model(config: Any, source: str) -> LanguageModel:
    """An untrained :class:`LanguageModel` of the architecture ``config`` (``model.config``, as files
    record it), sized on torch's ``meta`` device first: a :class:`LabError` naming ``source`` for a
    config that is not one, or that would hold over :data:`~lab.core.limits.MAX_PARAMETERS` weights."""
    if not isinstance(config, dict) or not set(config) <= set(ARCHITECTURE) or "vocab_size" not in config:
        raise LabError(
            f"{source}: a language model's architecture is a mapping of vocab_size and "
            f"{', '.join(ARCHITECTURE[1:])}; got {config!r}"
        )
    try:
        with torch.device("meta"), torch.random.fork_rng(devices=[]):
            size = sum(p.numel() for p in LanguageModel(**config).state_dict().values())
        if size > MAX_PARAMETERS:
            raise LabError(
                f"{source}: its language model would hold {size:,} weights; the lab builds at most "
                f"{MAX_PARAMETERS:,}"
            )
        return LanguageModel(**config)
    except (TypeError, ValueError, RuntimeError, OverflowError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise LabError(f"{source}: not a language model this lab can build ({reason})") from None


def check_vocabulary(meta: dict[str, Any], tokens: Sequence[str], where: str, path: str | Path) -> None:
    """A :class:`LabError` unless the model file's vocabulary is ``tokens``, in order."""
    saved = list(meta.get("vocabulary", []))
    if saved != list(tokens):
        first = next((i for i, (a, b) in enumerate(zip(saved, tokens, strict=False)) if a != b), None)
        detail = (
            f"{len(saved)} tokens against {len(tokens)}" if first is None
            else f"token {first} is {saved[first]!r} there, {tokens[first]!r} here"
        )  # fmt: skip
        language = meta.get("language", "another language")
        raise LabError(f"{path} was trained on {language} with another vocabulary than {where} ({detail})")


class LanguageModelActor(nn.Module):
    """A policy's action logits from a language model: the flattened text observation
    (:func:`lab.nets.encoders.token_layout`: ``[length, tokens...]``) -> the model's next-token logits
    after ``[0, tokens[:length]]``, so the policy starts as the pre-trained model's distribution."""

    def __init__(self, model: LanguageModel, space: Any) -> None:
        super().__init__()
        from lab.nets.encoders import token_layout

        layout = token_layout(space)
        if layout is None:
            raise ValueError(f"a language model reads text observations; this env has {space}")
        vocab, slots = layout
        if vocab != model.vocab_size:
            raise ValueError(
                f"the language model has a vocabulary of {model.vocab_size} tokens but this env has {vocab}: "
                "give a model trained on the env's language (lab lm train --language ...)"
            )
        if model.max_length is not None and slots > model.max_length:
            raise ValueError(
                f"the env's observations hold {slots} tokens, over the model's {model.max_length}"
            )
        self.model, self.slots = model, slots

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.long()
        length = x[:, 0].clamp(0, self.slots)
        tokens = torch.cat([torch.zeros_like(x[:, :1]), x[:, 1:].clamp(0, self.model.vocab_size)], dim=1)
        return self.model(tokens)[torch.arange(len(x), device=x.device), length]
