"""Text generation posed as an MDP: languages with exact verifiers and probabilities, and the env.

A sentence is built token by token (state: the prompt and the tokens so far; action: the next
token); named scorers reward the finished text. See ``docs/text.md``.
"""

from envs.text.corpus import sample_corpus
from envs.text.env import TextGenEnv
from envs.text.grammar import Grammar, load_grammar, parse_grammar
from envs.text.languages import ArithmeticLanguage, CopyLanguage, GrammarLanguage, Language, make_language
from envs.text.pcfg import PCFG
from envs.text.vector import TextVectorEnv

__all__ = [
    "PCFG",
    "ArithmeticLanguage",
    "CopyLanguage",
    "Grammar",
    "GrammarLanguage",
    "Language",
    "TextGenEnv",
    "TextVectorEnv",
    "load_grammar",
    "make_language",
    "parse_grammar",
    "sample_corpus",
]
