"""``lab lm eval``: a language model measured exactly against its language's own probability model.

For a grammar language (English, Dyck, a ``.pcfg`` file), with ``p`` the grammar's sentence
distribution (:class:`envs.text.PCFG`) and ``q`` the model's (end token included):

- ``grammatical``: the share of temperature-1 samples that the grammar contains (exact membership);
  a sample that has not ended within the model's length counts as not grammatical.
- ``nll``: the mean ``-log q(s)`` per sentence over held-out (test split) sentences, beside
  ``true_nll``, the mean ``-log p(s)`` over the same sentences, and ``entropy``, ``H(p)`` in nats
  (None for a grammar found ambiguous: a held-out sentence with two parses makes the grammar's
  derivation entropy only an upper bound of ``H(p)``); ``nll_over_entropy`` is their ratio.
  ``held_out_log_ratio = nll - true_nll`` is the mean ``log p(s)/q(s)`` over those sentences. It is
  not ``KL(p || q)``: the test split holds sentence types chosen by a hash, not a sample of ``p``
  (Dyck's likeliest sentences are all in train); ``kl_enumerated`` is the KL.
- ``kl_enumerated``: the exact KL between ``p`` and ``q`` on the outcomes "each sentence of at most
  ``kl_length`` tokens" (all enumerated with ``pcfg.enumerate``) and "any longer sentence" (one
  outcome): ``sum_L p log(p/q) + (1 - P(L)) log((1 - P(L)) / (1 - Q(L)))``. Merging outcomes never
  raises a KL, so it is a lower bound of ``KL(p || q)``, and equal to it for a finite language
  (``kl_mass`` = 1). ``kl_mass`` is ``P(L)``, ``kl_model_mass`` ``Q(L)``; ``None`` where enumeration
  would be too large.

Other languages (arithmetic, copy, text files) have no sentence probabilities: ``nll`` alone.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from envs.errors import TextError
from lab.core.errors import LabError

EVAL_SEED_OFFSET = 7919
MAX_ENUMERATED = 50_000  # sentences the exact KL sums over, at most
KL_LENGTHS = {"dyck": 12, "english": 4}  # enumeration lengths known to stay small


@dataclass
class LMEvaluation:
    samples: int
    grammatical: float | None
    mean_sample_length: float
    held_out: int
    nll: float
    true_nll: float | None
    entropy: float | None
    nll_over_entropy: float | None
    held_out_log_ratio: float | None
    kl_length: int | None
    kl_enumerated: float | None
    kl_mass: float | None
    kl_model_mass: float | None
    examples: list[str]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        lines = [f"held-out NLL {self.nll:.4f} nats/sentence over {self.held_out} test sentences"]
        if self.true_nll is not None:
            entropy = (
                f"; entropy {self.entropy:.4f}; NLL / entropy {self.nll_over_entropy:.4f}"
                if self.entropy is not None
                else "; no exact entropy: the grammar is ambiguous"
            )
            lines[0] += (
                f" (true model on the same sentences {self.true_nll:.4f}; mean log p/q on them "
                f"{self.held_out_log_ratio:.4f}{entropy})"
            )
        if self.grammatical is not None:
            lines.append(
                f"grammatical samples {100 * self.grammatical:.1f}% of {self.samples} at temperature 1 "
                f"(mean length {self.mean_sample_length:.2f})"
            )
        if self.kl_enumerated is not None:
            lines.append(
                f"exact KL(true || model) on the sentences of <= {self.kl_length} tokens and the rest: "
                f"{self.kl_enumerated:.5f} nats, a lower bound of the whole "
                f"(they hold {100 * (self.kl_mass or 0):.2f}% of the language, "
                f"{100 * (self.kl_model_mass or 0):.2f}% of the model)"
            )
        return "\n".join(lines)


def _words(language: Any, ids: tuple[int, ...]) -> list[int]:
    pcfg = language.pcfg
    tokens = language.vocabulary.tokens
    return [pcfg.word_index.get(tokens[i], -1) for i in ids]


def evaluate(
    model: Any,
    language: Any,
    seed: int = 0,
    samples: int = 1000,
    held_out: int = 2000,
    kl_length: int | None = None,
) -> LMEvaluation:
    """The figures of the module docstring (``kl_length=None``: the language's known small length)."""
    from lab.lm.train import corpus
    from lab.nets.language_model import sample_with_ends, sentence_log_probs

    exact = language.pcfg is not None and language.prompt_in_grammar
    longest = model.max_length or 64
    test = corpus(language, held_out, "test", seed + EVAL_SEED_OFFSET, model.max_length)
    nll = float(-sentence_log_probs(model, test).mean())
    generator = torch.Generator().manual_seed(seed + EVAL_SEED_OFFSET)
    drawn, ended = sample_with_ends(model, samples, generator, longest)
    lengths = [len(s) for s in drawn]
    examples = [language.text(s) for s in drawn[:5]]
    grammatical = true_nll = entropy = ratio = kl_est = kl_enum = kl_mass = kl_q_mass = None
    if exact:
        pcfg = language.pcfg
        # a sample cut at the model's length without its end token is not a sentence
        inside = [e and pcfg.contains(_words(language, s)) for s, e in zip(drawn, ended, strict=True)]
        grammatical = float(np.mean(inside))
        true_nll = float(-np.mean([math.log(pcfg.sentence_probability(_words(language, s))) for s in test]))
        kl_est = nll - true_nll
        if not _ambiguous(language, test):
            entropy = float(pcfg.entropy())
            ratio = nll / entropy
        if kl_length is None:
            kl_length = KL_LENGTHS.get(language.name)
        if kl_length is not None:
            kl_enum, kl_mass, kl_q_mass = enumerated_kl(model, language, kl_length)
    return LMEvaluation(
        samples, grammatical, float(np.mean(lengths)) if lengths else 0.0, len(test), nll, true_nll, entropy,
        ratio, kl_est, kl_length if kl_enum is not None else None, kl_enum, kl_mass, kl_q_mass, examples,
    )  # fmt: skip


def _ambiguous(language: Any, sentences: Any, checked: int = 200, longest: int = 60) -> bool:
    """Whether one of the first ``checked`` sentences (of at most ``longest`` tokens) has two parses."""
    pcfg = language.pcfg
    short = [s for s in sentences[:checked] if len(s) <= longest]
    return any(pcfg.inside(_words(language, s), count_parses=True) > 1 for s in short)


def enumerated_kl(model: Any, language: Any, max_length: int) -> tuple[float, float, float]:
    """``(KL on L's sentences and the rest, P(L), Q(L))`` for ``L`` the sentences of at most ``max_length``
    tokens (see the module docstring)."""
    from lab.nets.language_model import sentence_log_probs

    if model.max_length is not None and max_length > model.max_length:
        raise LabError(f"the KL length {max_length} is over the model's {model.max_length} tokens")
    pcfg = language.pcfg
    try:  # the prefixes of the sentences, the walk's cost: about 10 a sentence on english
        sentences = pcfg.enumerate(max_length, max_prefixes=20 * MAX_ENUMERATED)
    except TextError as exc:
        raise LabError(f"{language.name}: {exc}: give a smaller --kl-length") from None
    if len(sentences) > MAX_ENUMERATED:
        raise LabError(
            f"{language.name} has {len(sentences):,} sentences of up to {max_length} tokens, over "
            f"{MAX_ENUMERATED:,}: give a smaller --kl-length"
        )
    index = language.vocabulary.index
    ids = [tuple(index[pcfg.words[w]] for w in words) for words in sentences]
    p = np.array(list(sentences.values()))
    log_q = sentence_log_probs(model, ids)
    p_mass, q_mass = float(p.sum()), float(np.exp(log_q).sum())
    kl = float(np.sum(p * (np.log(p) - log_q)))
    rest_p, rest_q = 1.0 - p_mass, 1.0 - q_mass
    if rest_p > 1e-12:
        kl += rest_p * (math.log(rest_p) - math.log(max(rest_q, 1e-300)))
    return max(kl, 0.0), p_mass, q_mass
