"""Grammar files: the shipped ones read, and every kind of bad file is one clear GrammarError."""

from __future__ import annotations

import pytest

from envs import GrammarError
from envs.text.grammar import GRAMMARS, load_grammar, parse_grammar


def test_shipped_grammars_read():
    english = load_grammar("english")
    assert english.start == "S"
    assert 30 <= len(english.words) <= 80
    assert english.sentiment["good"] == 1 and english.sentiment["hates"] == -1
    assert load_grammar(GRAMMARS / "dyck.pcfg").words == ("(", ")")


def test_format_features():
    g = parse_grammar(
        """
        # a comment
        S -> A "x" [1/3] | "y"   # trailing comment
             [2/3]
        A -> "a" | "b" | "c"
        @negative "x"
        """
    )
    assert [r.prob for r in g.rules["S"]] == pytest.approx([1 / 3, 2 / 3])
    assert [r.prob for r in g.rules["A"]] == [1 / 3] * 3  # no probabilities: shared evenly
    assert set(g.words) == {"a", "b", "c", "x", "y"}
    assert g.sentiment == {"x": -1}
    # a rule may continue over several lines and the same symbol may have several rule lines
    g2 = parse_grammar('S -> "a" [0.5]\nS -> "b" [0.5]')
    assert len(g2.rules["S"]) == 2


BAD = [
    ('S -> "a" [0.5] | "b" [0.4]', "sum to 0.9"),
    ('S -> A "b"', "symbol A (in a rule of S) is never defined"),
    ('S -> "a" [0.5] | "b"', "some alternatives but not all"),
    ("S -> -> x", "line 1"),
    ('S "a"', "cannot read"),
    ('S -> "a" [1.5] | "b" [-0.5]', "cannot read"),
    ('S -> "a" [0] | "b" [1]', "must lie in (0, 1]"),
    ('S -> S "a" [0.5] | "a" [0.5]', "left recursion S -> S"),
    ('S -> A "x"\nA -> B "y" [0.5] | "z" [0.5]\nB -> A | "w"', "left recursion"),
    ('S -> "a" S [0.6] | "a" [0.4]\n', None),  # fine: right recursion, subcritical
    ('S -> "a" S S [0.5] | "a" [0.5]', "may never end"),
    ('S -> "a" S [1.0]', "may never end"),
    ("", "no rules"),
    ("# only a comment\n", "no rules"),
    ('S -> "a"\n@happy "a"', "unknown directive @happy"),
    ('S -> "a"\n@positive "b"', 'sentiment word "b" appears in no rule'),
    ('S -> "a" [1/0]', "divides by zero"),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_bad_grammars_name_the_problem(text, message):
    if message is None:
        parse_grammar(text)
        return
    with pytest.raises(GrammarError) as e:
        parse_grammar(text, source="my.pcfg")
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_bad_files(tmp_path):
    with pytest.raises(GrammarError, match=r"not found .*shipped grammars: dyck, english"):
        load_grammar(tmp_path / "missing.pcfg")
    with pytest.raises(GrammarError, match="not found"):
        load_grammar("klingon")
    binary = tmp_path / "latin1.pcfg"
    binary.write_bytes('S -> "caf\xe9"'.encode("latin-1"))
    with pytest.raises(GrammarError, match="not UTF-8"):
        load_grammar(binary)
    edited = tmp_path / "mine.pcfg"
    edited.write_text((GRAMMARS / "english.pcfg").read_text().replace("[0.75]", "[0.7]"))
    with pytest.raises(
        GrammarError, match=r"mine.pcfg, line \d+: the probabilities of NP's alternatives sum to 0.95"
    ):
        load_grammar(edited)


def test_rule_heads_may_sit_on_their_own_line():
    # the reader tells a rule's head from a symbol by its arrow, wherever the arrow's line is
    g = parse_grammar('S\n  -> A "x"\nA->"a" | B\nB\n->\n"b"')
    assert [[str(s) for s in r.rhs] for r in g.rules["S"]] == [["A", '"x"']]
    assert [[str(s) for s in r.rhs] for r in g.rules["A"]] == [['"a"'], ["B"]]
    assert g.words == ("x", "a", "b")


def test_large_grammars_are_bounded_before_they_are_checked(tmp_path):
    big = tmp_path / "big.pcfg"
    big.write_text("S -> " + " | ".join(f'"w{i}"' for i in range(120_000)))
    with pytest.raises(GrammarError, match=r"big.pcfg: 1,\d{3},\d{3} bytes; a grammar file is read up to"):
        load_grammar(big)
    many = "\n".join(f'A{i} -> "a" A{i + 1} [0.5] | "b" [0.5]' for i in range(1_000)) + '\nA1000 -> "c"'
    with pytest.raises(GrammarError, match="1,001 nonterminals; a grammar may have up to 1,000"):
        parse_grammar(many)
    # thousands of alternatives of one symbol read quickly (a second, not minutes)
    assert len(parse_grammar("S -> " + " | ".join(f'"w{i}"' for i in range(5_000))).words) == 5_000


def test_left_recursion_through_a_long_chain_is_named():
    # a chain of rules each starting with the next is deeper than Python's recursion limit
    chain = "\n".join(f'A{i} -> A{i + 1} "x" [0.5] | "y" [0.5]' for i in range(999))
    with pytest.raises(GrammarError, match=r"left recursion A0 -> A1 -> .* -> A999 -> A0"):
        parse_grammar(chain + '\nA999 -> A0 "z" [0.5] | "z" [0.5]')
    assert len(parse_grammar(chain + '\nA999 -> "z"').rules) == 1_000
