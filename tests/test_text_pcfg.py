"""Exact probabilities of a PCFG: the prefix parser, the inside algorithm, lengths, entropy, sampling."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from envs.text.grammar import load_grammar, parse_grammar
from envs.text.pcfg import PCFG

ENGLISH = PCFG(load_grammar("english"))
DYCK = PCFG(load_grammar("dyck"))
# every English sentence of at most 4 words (2,700 of them), and Dyck's of at most 10 brackets
ENGLISH_4 = ENGLISH.enumerate(4)
DYCK_10 = DYCK.enumerate(10)


@pytest.mark.parametrize(("pcfg", "sentences", "length"), [(ENGLISH, ENGLISH_4, 4), (DYCK, DYCK_10, 10)])
def test_enumerated_mass_is_one_minus_the_longer_tail(pcfg, sentences, length):
    # two independent computations: the prefix parser's enumeration and a length DP over rules
    by_length = pcfg.length_distribution(length)
    assert sum(sentences.values()) == pytest.approx(by_length.sum(), abs=1e-12)
    for n in range(length + 1):
        assert sum(p for s, p in sentences.items() if len(s) == n) == pytest.approx(by_length[n], abs=1e-12)
    # and the mass grows towards 1 as the bound grows: the grammar is consistent
    longer = pcfg.length_distribution(60).sum()
    assert by_length.sum() < longer <= 1.0 + 1e-12
    assert longer > 0.95


@pytest.mark.parametrize(("pcfg", "sentences"), [(ENGLISH, ENGLISH_4), (DYCK, DYCK_10)])
def test_inside_equals_the_prefix_parser_and_parses_are_unique(pcfg, sentences):
    for sentence, p in list(sentences.items())[::7]:
        assert pcfg.inside(sentence) == pytest.approx(p, rel=1e-12)
        assert pcfg.sentence_probability(sentence) == pytest.approx(p, rel=1e-12)
        assert pcfg.inside(sentence, count_parses=True) == 1.0  # unambiguous: entropy is exact
        assert pcfg.contains(sentence) and not pcfg.contains(sentence[:-1])
    assert ENGLISH.inside(ENGLISH.words.index("the") for _ in range(3)) == 0.0


def test_hand_computed_probability():
    w = ENGLISH.word_index
    # S -> NP VP; NP -> Det Nom (0.75); Det "the" (0.5); Nom -> N (0.7); N "dog" (1/10);
    # VP -> Vi (0.35); Vi "sleeps" (1/6)
    expected = 0.75 * 0.5 * 0.7 * 0.1 * 0.35 / 6
    assert ENGLISH.sentence_probability([w["the"], w["dog"], w["sleeps"]]) == pytest.approx(
        expected, rel=1e-12
    )
    assert ENGLISH.prefix_probability([w["the"]]) == pytest.approx(0.5, rel=1e-12)
    assert ENGLISH.prefix_probability([w["dog"]]) == 0.0


@given(st.integers(0, 10_000))
def test_prefix_probability_bounds_the_enumerated_extensions(i):
    # for Dyck, P(prefix) >= the enumerated sentences with that prefix >= P(prefix) - P(length > 10)
    sentences = list(DYCK_10)
    sentence = sentences[i % len(sentences)]
    prefix = sentence[: i % (len(sentence) + 1)]
    p = DYCK.prefix_probability(prefix)
    below = sum(q for s, q in DYCK_10.items() if s[: len(prefix)] == prefix)
    tail = 1.0 - DYCK.length_distribution(10).sum()
    assert below <= p + 1e-12
    assert below >= p - tail - 1e-12


@given(st.lists(st.integers(0, 45), max_size=5))
def test_next_word_distribution_is_the_ratio_of_prefix_probabilities(words):
    words = [w % len(ENGLISH.words) for w in words]
    p = ENGLISH.prefix_probability(words)
    nxt, end = ENGLISH.next_word_distribution(words)
    if p == 0:
        assert nxt.sum() == 0 and end == 0
        return
    assert nxt.sum() + end == pytest.approx(1.0, abs=1e-12)
    assert end == pytest.approx(ENGLISH.sentence_probability(words) / p, rel=1e-9, abs=1e-15)
    for w in np.flatnonzero(nxt)[:5]:
        assert nxt[w] == pytest.approx(ENGLISH.prefix_probability([*words, int(w)]) / p, rel=1e-9)


def test_entropy_of_a_geometric_language_is_exact():
    # S -> "a" [p] | "a" S [1 - p]: a^n has probability (1-p)^(n-1) p, entropy H_b(p) / p
    p = 0.3
    g = PCFG(parse_grammar(f'S -> "a" [{p}] | "a" S [{1 - p}]'))
    h_b = -(p * math.log(p) + (1 - p) * math.log(1 - p))
    assert g.entropy() == pytest.approx(h_b / p, rel=1e-12)
    # and the enumeration converges to it
    sentences = g.enumerate(200)
    assert -sum(q * math.log(q) for q in sentences.values()) == pytest.approx(h_b / p, rel=1e-9)


def test_english_entropy_matches_sampled_surprisal():
    rng = np.random.default_rng(0)
    surprisal = np.array([-math.log(ENGLISH.sentence_probability(ENGLISH.sample(rng))) for _ in range(1500)])
    se = surprisal.std() / math.sqrt(len(surprisal))
    assert abs(surprisal.mean() - ENGLISH.entropy()) < 4 * se


def test_sampler_is_seeded_and_follows_the_probabilities():
    a = [DYCK.sample(np.random.default_rng(5)) for _ in range(3)]
    b = [DYCK.sample(np.random.default_rng(5)) for _ in range(3)]
    assert a == b
    rng = np.random.default_rng(1)
    n = 4000
    counts = Counter(tuple(DYCK.sample(rng)) for _ in range(n))
    for sentence, p in sorted(DYCK_10.items(), key=lambda kv: -kv[1])[:4]:
        assert abs(counts[sentence] / n - p) < 4 * math.sqrt(p * (1 - p) / n)
    for s in list(counts)[:50]:
        assert DYCK.sentence_probability(s) > 0
