"""Exact probabilities of a PCFG: the prefix parser, the inside algorithm, lengths, entropy, sampling."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from envs.errors import GrammarError, TextError
from envs.text.grammar import Grammar, Rule, Symbol, load_grammar, parse_grammar
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


def test_inside_of_a_long_sentence_is_exact():
    # right recursion nests a rule per word: the inside algorithm met Python's recursion limit
    # near 300 words before it filled its table shortest spans first
    p = 0.3
    g = PCFG(parse_grammar(f'S -> "a" [{p}] | "a" S [{1 - p}]'))
    assert g.inside([0] * 320) == pytest.approx((1 - p) ** 319 * p, rel=1e-9)
    assert g.inside([0] * 320, count_parses=True) == 1.0


def test_chains_of_first_symbols_are_expanded_without_recursion_and_bounded():
    # A0 begins with A1, which begins with A2, ...: 300 deep, past Python's recursion limit when
    # the prefix parser's first expansions recursed; a^k y is reached by k first-symbol rewrites
    chain = "\n".join(f'A{i} -> A{i + 1} "x" [0.5] | "y" [0.5]' for i in range(300)) + '\nA300 -> "z"'
    g = PCFG(parse_grammar(chain))
    y, x = g.word_index["y"], g.word_index["x"]
    assert g.sentence_probability([y, x, x]) == pytest.approx(0.5**3, rel=1e-12)
    assert g.inside([y, x, x]) == pytest.approx(0.5**3, rel=1e-12)
    # two ways to go on at each of 40 levels: 2**40 ways to begin, refused rather than enumerated
    doubling = "\n".join(f'A{i} -> A{i + 1} "a" | A{i + 1} "b"' for i in range(40)) + '\nA40 -> "z"'
    with pytest.raises(GrammarError, match="expand to over 5,000,000 stack symbols"):
        PCFG(parse_grammar(doubling))
    # a Grammar built by hand skips the reader's checks: its left recursion is named as the reader names it
    rules = (
        Rule("S", (Symbol("S", False), Symbol("a", True)), 0.5, 1),
        Rule("S", (Symbol("a", True),), 0.5, 1),
    )
    with pytest.raises(GrammarError, match=r"by hand: left recursion S -> S \(a symbol starts with itself\)"):
        PCFG(Grammar("by hand", "S", {"S": rules}, ("a",), {}))


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


# "a b" has three derivations (through X, through Y, and directly): 0.4 + 0.2 + 0.2
AMBIGUOUS = PCFG(
    parse_grammar(
        'S -> "a" X [0.4] | "a" Y [0.2] | "a" "b" [0.2] | "a" "d" [0.1] | "c" [0.1]\n'
        'X -> "b" [1]\n'
        'Y -> "b" [1]\n'
    )
)


def test_an_ambiguous_sentence_sums_its_derivations():
    w = AMBIGUOUS.word_index
    a, b, d, c = w["a"], w["b"], w["d"], w["c"]
    assert AMBIGUOUS.inside([a, b]) == pytest.approx(0.8, rel=1e-12)
    assert AMBIGUOUS.inside([a, b], count_parses=True) == 3.0
    assert AMBIGUOUS.sentence_probability([a, b]) == pytest.approx(0.8, rel=1e-12)
    assert AMBIGUOUS.prefix_probability([a]) == pytest.approx(0.9, rel=1e-12)
    enumerated = AMBIGUOUS.enumerate(3)
    assert enumerated.keys() == {(a, b), (a, d), (c,)}
    assert [enumerated[s] for s in [(a, b), (a, d), (c,)]] == pytest.approx([0.8, 0.1, 0.1], rel=1e-12)
    assert AMBIGUOUS.length_distribution(3) == pytest.approx([0.0, 0.1, 0.9, 0.0], abs=1e-15)
    # after "a": "b" by three stacks (X, Y and the word itself), "d" by one
    nxt, end = AMBIGUOUS.next_word_distribution([a])
    assert end == 0.0
    assert nxt[[a, b, d, c]] == pytest.approx([0.0, 0.8 / 0.9, 0.1 / 0.9, 0.0], rel=1e-12)
    # the entropy of the derivations is the start's rule choice: more than the sentences' H(.8, .1, .1)
    assert AMBIGUOUS.entropy() == pytest.approx(
        -(0.4 * math.log(0.4) + 0.4 * math.log(0.2) + 0.2 * math.log(0.1))
    )


def test_dyck_by_hand():
    o, c = DYCK.word_index["("], DYCK.word_index[")"]
    # S -> P [0.7] | P S [0.3]; P -> "(" ")" [0.6] | "(" S ")" [0.4]
    assert DYCK.sentence_probability([o, c]) == pytest.approx(0.7 * 0.6, rel=1e-12)
    assert DYCK.prefix_probability([o, c]) == pytest.approx(0.6, rel=1e-12)
    nxt, end = DYCK.next_word_distribution([o, c])  # a whole sentence: end 0.7, go on with "(" 0.3
    assert (end, nxt[o], nxt[c]) == pytest.approx((0.7, 0.3, 0.0), rel=1e-12)
    assert DYCK.sentence_probability([o, o, c, c]) == pytest.approx(0.7 * 0.4 * 0.7 * 0.6, rel=1e-12)
    # expected uses: c_S = 1 + 0.3 c_S + 0.4 c_P and c_P = c_S, so both are 10/3
    h = -(0.7 * math.log(0.7) + 0.3 * math.log(0.3) + 0.6 * math.log(0.6) + 0.4 * math.log(0.4))
    assert DYCK.entropy() == pytest.approx(10 / 3 * h, rel=1e-12)


def test_the_automaton_carries_the_exact_next_token_probabilities():
    from envs.text.automaton import PrefixAutomaton
    from envs.text.vocabulary import Vocabulary

    vocab = Vocabulary(["c", "d", "b", "a"])  # token ids differ from the grammar's word indices
    automaton = PrefixAutomaton(AMBIGUOUS, vocab, 4)
    t = vocab.index
    after_a = automaton.run([t["a"]])
    expected = np.zeros(len(vocab))
    expected[t["b"]], expected[t["d"]] = 0.8, 0.1  # the parser's weights, normalised by P("a") = 0.9
    np.testing.assert_allclose(automaton.next_prob[after_a], expected / 0.9, rtol=1e-12, atol=0)
    np.testing.assert_allclose(automaton.next_prob[automaton.start][[t["a"], t["c"]]], [0.9, 0.1], rtol=1e-12)
    assert automaton.complete[automaton.run([t["a"], t["b"]])]
    assert automaton.mask(after_a, 4).tolist() == [t in ("b", "d") for t in vocab.tokens]


def test_left_corners_that_meet_add_up_and_enumeration_counts_its_prefixes():
    # S's two rules both start with "b" and leave ("e",): one expansion of weight 0.5 + 0.5
    g = PCFG(parse_grammar('S -> X "e" [0.5] | Y "e" [0.5]\nX -> "b" [1]\nY -> "b" [1]\n'))
    b, e = g.word_index["b"], g.word_index["e"]
    assert g.sentence_probability([b, e]) == pytest.approx(1.0, rel=1e-12)
    assert g.inside([b, e]) == pytest.approx(1.0, rel=1e-12)
    # AMBIGUOUS up to 3 words walks 5 prefixes: (), a, a b, a d, c
    assert len(AMBIGUOUS.enumerate(3, max_prefixes=5)) == 3
    with pytest.raises(TextError, match="have over 4 prefixes"):
        AMBIGUOUS.enumerate(3, max_prefixes=4)


def test_automaton_states_with_the_same_stacks_but_other_weights_stay_apart():
    from envs.text.automaton import PrefixAutomaton
    from envs.text.vocabulary import Vocabulary

    g = PCFG(
        parse_grammar(
            'S -> "a" X [0.3] | "a" Y [0.2] | "c" X [0.1] | "c" Y [0.4]\nX -> "b" [1]\nY -> "d" [1]\n'
        )
    )
    vocab = Vocabulary(g.words)
    automaton = PrefixAutomaton(g, vocab, 3)
    t = vocab.index
    after_a, after_c = automaton.run([t["a"]]), automaton.run([t["c"]])
    assert after_a != after_c  # both wait for X or Y, with weights 0.6 / 0.4 and 0.2 / 0.8
    assert automaton.next_prob[after_a][[t["b"], t["d"]]] == pytest.approx([0.6, 0.4], rel=1e-12)
    assert automaton.next_prob[after_c][[t["b"], t["d"]]] == pytest.approx([0.2, 0.8], rel=1e-12)
