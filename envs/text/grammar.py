"""Grammar files: a readable probabilistic context-free grammar, read with lark and validated.

The format, one rule per line or spread over lines with ``|``::

    # comments run to the end of the line
    S   -> NP VP                     # the first rule's left side is the start symbol
    NP  -> Det N [0.7] | Det Adj N [0.3]
    Det -> "the" | "a"               # no probabilities: the alternatives share 1 evenly
    Adj -> "good" [1/2] | "bad" [1/2]
    @positive "good"                 # sentiment of words: @positive / @negative
    @negative "bad"

Names are nonterminals, quoted strings are words (terminals). The probabilities of one symbol's
alternatives sum to 1. Rules may not be empty, and no symbol may start with itself (left
recursion): the prefix parser reads sentences top-down. Recursion must be weak enough that every
derivation ends with probability 1 (the grammar is *consistent*); the reader checks all of this.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from envs.errors import GrammarError

GRAMMARS = Path(__file__).resolve().parent / "grammars"

_SYNTAX = r"""
start: item*
?item: rule | directive
rule: HEAD alt ("|" alt)*
alt: sym+ weight?
?sym: NAME -> nonterminal
    | STRING -> terminal
weight: "[" NUMBER ("/" NUMBER)? "]"
directive: "@" NAME STRING*
NAME: /[A-Za-z_][A-Za-z0-9_]*/
HEAD: /[A-Za-z_][A-Za-z0-9_]*\s*->/
STRING: /"[^"\s]+"/
NUMBER: /[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?|\.[0-9]+/
COMMENT: /#[^\n]*/
%ignore COMMENT
%import common.WS
%ignore WS
"""
_FORMAT = 'rules read: Name -> Symbol "word" [probability] | ...'
MAX_GRAMMAR_BYTES = 1 << 20
"""The largest grammar file read (the shipped ones are under 2 KB; a MiB holds ~100,000 alternatives)."""
MAX_NONTERMINALS = 1_000
"""The most nonterminals a grammar may have: the consistency check takes the eigenvalues of a square
matrix of that side (3 s at 1,000), and the parser keeps a row of every word for each."""
_DIRECTIVES = {"positive": 1, "negative": -1}


@dataclass(frozen=True)
class Symbol:
    """A grammar symbol: a word (``terminal``) or the name of a nonterminal."""

    name: str
    terminal: bool

    def __str__(self) -> str:
        return f'"{self.name}"' if self.terminal else self.name


@dataclass(frozen=True)
class Rule:
    """``lhs -> rhs`` chosen with probability ``prob`` among ``lhs``'s rules."""

    lhs: str
    rhs: tuple[Symbol, ...]
    prob: float
    line: int


@dataclass(frozen=True)
class Grammar:
    """A validated PCFG: rules by left side (file order), its words and their sentiment."""

    source: str
    start: str
    rules: dict[str, tuple[Rule, ...]]
    words: tuple[str, ...]
    sentiment: dict[str, int]


@cache
def _reader() -> tuple[Any, Any, type]:
    """The format's lark parser and its transformer to rules, built on first use (lark starts slowly)."""
    from lark import Lark, Token, Transformer, UnexpectedInput

    class ToRules(Transformer):
        def nonterminal(self, items: list[Token]) -> tuple[Symbol, int]:
            return Symbol(str(items[0]), False), items[0].line

        def terminal(self, items: list[Token]) -> tuple[Symbol, int]:
            return Symbol(str(items[0])[1:-1], True), items[0].line

        def weight(self, items: list[Token]) -> Fraction | float:
            if len(items) == 2:
                if Fraction(str(items[1])) == 0:
                    raise GrammarError(
                        f"line {items[0].line}: probability {items[0]}/{items[1]} divides by zero"
                    )
                return Fraction(str(items[0])) / Fraction(str(items[1]))
            return float(items[0])

        def alt(self, items: list) -> tuple[tuple[Symbol, ...], float | None, int]:
            weight = items[-1] if not isinstance(items[-1], tuple) else None
            syms = [s for s in items if isinstance(s, tuple)]
            return tuple(s for s, _ in syms), None if weight is None else float(weight), syms[0][1]

        def rule(self, items: list) -> tuple[str, str, list, int]:
            return "rule", str(items[0])[:-2].rstrip(), items[1:], items[0].line

        def directive(self, items: list[Token]) -> tuple[str, str, list, int]:
            return "directive", str(items[0]), [str(t)[1:-1] for t in items[1:]], items[0].line

        def start(self, items: list) -> list:
            return items

    return Lark(_SYNTAX, parser="lalr"), ToRules, UnexpectedInput


def load_grammar(path: str | Path) -> Grammar:
    """Read and validate a grammar file; a bare name such as ``"english"`` means a shipped grammar."""
    p = Path(path)
    if not p.suffix and not p.exists():
        p = GRAMMARS / f"{path}.pcfg"
    if not p.is_file():
        shipped = ", ".join(sorted(f.stem for f in GRAMMARS.glob("*.pcfg")))
        raise GrammarError(f"grammar file {path} not found (shipped grammars: {shipped})")
    if (size := p.stat().st_size) > MAX_GRAMMAR_BYTES:
        raise GrammarError(f"{p}: {size:,} bytes; a grammar file is read up to {MAX_GRAMMAR_BYTES:,} bytes")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise GrammarError(f"{p}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    return parse_grammar(text, source=str(p))


def parse_grammar(text: str, source: str = "<grammar>") -> Grammar:
    """Parse and validate grammar text (see the module docstring for the format)."""
    parser, to_rules, unexpected_input = _reader()
    try:
        items = to_rules().transform(parser.parse(text))
    except unexpected_input as e:
        got = (
            text[e.pos_in_stream : e.pos_in_stream + 12].split("\n")[0] if e.pos_in_stream is not None else ""
        )
        raise GrammarError(
            f"{source}, line {e.line}, column {e.column}: cannot read {got!r}; {_FORMAT}"
        ) from None
    except GrammarError as e:
        raise GrammarError(f"{source}, {e}") from None
    except Exception as e:  # lark wraps errors raised inside the transformer
        inner = getattr(e, "orig_exc", None)
        if isinstance(inner, GrammarError):
            raise GrammarError(f"{source}, {inner}") from None
        raise
    alternatives: dict[str, list[tuple[tuple[Symbol, ...], float | None, int]]] = {}
    sentiment: dict[str, int] = {}
    sentiment_lines: dict[str, int] = {}
    for kind, name, body, line in items:
        if kind == "directive":
            if name not in _DIRECTIVES:
                raise GrammarError(
                    f"{source}, line {line}: unknown directive @{name}; use @positive or @negative"
                )
            for word in body:
                sentiment[word] = _DIRECTIVES[name]
                sentiment_lines[word] = line
        else:
            alternatives.setdefault(name, []).extend(body)
    if not alternatives:
        raise GrammarError(f"{source}: no rules; {_FORMAT}")
    if len(alternatives) > MAX_NONTERMINALS:
        raise GrammarError(
            f"{source}: {len(alternatives):,} nonterminals; a grammar may have up to {MAX_NONTERMINALS:,}"
        )
    rules = {lhs: _weigh(source, lhs, alts) for lhs, alts in alternatives.items()}
    words: dict[str, None] = {}  # in order of first use
    for lhs, rs in rules.items():
        for r in rs:
            for s in r.rhs:
                if s.terminal:
                    words.setdefault(s.name)
                elif s.name not in rules:
                    raise GrammarError(
                        f"{source}, line {r.line}: symbol {s.name} (in a rule of {lhs}) is never defined; "
                        f"add a rule '{s.name} -> ...' or quote it if it is a word"
                    )
    for word, line in sentiment_lines.items():
        if word not in words:
            raise GrammarError(f'{source}, line {line}: sentiment word "{word}" appears in no rule')
    grammar = Grammar(source, next(iter(rules)), rules, tuple(words), sentiment)
    first_symbol_order(grammar)  # no left recursion
    _check_consistent(grammar)
    return grammar


def _weigh(
    source: str, lhs: str, alts: list[tuple[tuple[Symbol, ...], float | None, int]]
) -> tuple[Rule, ...]:
    given = [w for _, w, _ in alts if w is not None]
    line = alts[0][2]
    if given and len(given) != len(alts):
        raise GrammarError(
            f"{source}, line {line}: {lhs} gives probabilities to some alternatives but not all; "
            "give every alternative one, or none (they then share 1 evenly)"
        )
    if not given:
        return tuple(Rule(lhs, rhs, 1.0 / len(alts), ln) for rhs, _, ln in alts)
    for _, w, ln in alts:
        if not 0.0 < w <= 1.0:  # type: ignore[operator]
            raise GrammarError(f"{source}, line {ln}: a probability of {lhs} is {w}; it must lie in (0, 1]")
    total = sum(given)
    if abs(total - 1.0) > 1e-9:
        raise GrammarError(
            f"{source}, line {line}: the probabilities of {lhs}'s alternatives sum to {total:.10g}, not 1"
        )
    return tuple(Rule(lhs, rhs, float(w), ln) for rhs, w, ln in alts)  # type: ignore[arg-type]


def first_symbol_order(grammar: Grammar) -> list[str]:
    """The nonterminals, each after every nonterminal its rules start with; a :class:`GrammarError`
    when a symbol derives a string starting with itself (the top-down prefix parser would loop)."""
    first = {
        lhs: dict.fromkeys(r.rhs[0].name for r in rs if not r.rhs[0].terminal)
        for lhs, rs in grammar.rules.items()
    }
    done: dict[str, None] = {}  # in the order they finish: what a symbol starts with comes first
    for root in grammar.rules:
        if root in done:
            continue
        # depth-first along first symbols, with the path kept by hand: a chain of rules can be
        # deeper than Python's recursion limit
        path, branches = [root], [iter(first[root])]
        while path:
            b = next(branches[-1], None)
            if b is None:
                done[path.pop()] = None
                branches.pop()
            elif b in path:
                cycle = " -> ".join([*path[path.index(b) :], b])
                raise GrammarError(
                    f"{grammar.source}: left recursion {cycle} (a symbol starts with itself); "
                    "rewrite it right-recursively, e.g. Adjs -> Adj Adjs | Adj"
                )
            elif b not in done:
                path.append(b)
                branches.append(iter(first[b]))
    return list(done)


def expected_children(grammar: Grammar) -> tuple[list[str], np.ndarray]:
    """Nonterminals and ``M[a, b]``: the expected number of ``b`` in one rewrite of ``a``."""
    names = list(grammar.rules)
    index = {n: i for i, n in enumerate(names)}
    M = np.zeros((len(names), len(names)))
    for lhs, rs in grammar.rules.items():
        for r in rs:
            for s in r.rhs:
                if not s.terminal:
                    M[index[lhs], index[s.name]] += r.prob
    return names, M


def _check_consistent(grammar: Grammar) -> None:
    """Termination with probability 1 needs the spectral radius of the expected-children matrix < 1."""
    _, M = expected_children(grammar)
    radius = max(abs(np.linalg.eigvals(M))) if len(M) else 0.0
    if radius >= 1.0 - 1e-9:
        raise GrammarError(
            f"{grammar.source}: derivations may never end (each symbol expects {radius:.4g} >= 1 recursive "
            "children): lower the probabilities of the recursive alternatives"
        )
