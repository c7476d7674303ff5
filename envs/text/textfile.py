"""A user's text file as a language: one sentence per non-empty line, characters or BPE subwords.

Subwords come from HuggingFace ``tokenizers``: a BPE model trained on the file, with spaces kept
as the ``▁`` mark (Metaspace), so joining the tokens gives the text back.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from envs.errors import CorpusError, TextError, VocabularyError
from envs.text.languages import GENERIC_TASKS, Language
from envs.text.vocabulary import Vocabulary

SPACE = "▁"


def read_lines(path: str | Path) -> list[str]:
    """The non-empty lines of a UTF-8 text file, or a :class:`CorpusError` saying what is wrong."""
    p = Path(path)
    if p.is_dir():
        raise CorpusError(f"corpus file {p} is a folder: give a text file (text:path/to/file.txt)")
    if not p.is_file():
        raise CorpusError(f"corpus file {p} not found")
    try:
        text = p.read_bytes().decode("utf-8-sig")  # a byte-order mark starts the file, not its text
    except UnicodeDecodeError as e:
        raise CorpusError(f"{p}: not UTF-8 text (byte {e.start}: {e.reason}); save it as UTF-8") from None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        raise CorpusError(f"{p}: empty; a corpus file needs at least one non-empty line")
    return lines


class TextFileLanguage(Language):
    """The lines of a text file; ``tokenizer="char"`` or ``"bpe"`` (needs ``vocab_size``).

    Nothing is ungrammatical here, so every token is always allowed; tasks are the generic
    ``keyword`` and ``length``.
    """

    def __init__(self, path: str | Path, tokenizer: str = "char", vocab_size: int | None = None) -> None:
        self.lines = read_lines(path)
        if vocab_size is not None and (
            isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 2
        ):
            raise TextError(f"vocab_size must be an integer >= 2; got {vocab_size!r}")
        if tokenizer == "char":
            self._bpe = None
            chars = sorted({c for line in self.lines for c in line})
            vocab = Vocabulary(chars, max_size=vocab_size)
            separator = ""
        elif tokenizer == "bpe":
            if vocab_size is None:
                raise TextError("tokenizer='bpe' needs vocab_size= (the number of subwords, with <eos>)")
            self._alphabet = {c for line in self.lines for c in line.replace(" ", SPACE)} | {SPACE}
            self._bpe = _train_bpe(self.lines, vocab_size, self._alphabet)
            vocab = Vocabulary(
                sorted(self._bpe.get_vocab(), key=self._bpe.get_vocab().get), max_size=vocab_size
            )
            separator = ""
        else:
            raise TextError(f"unknown tokenizer {tokenizer!r}; choose 'char' or 'bpe'")
        super().__init__(Path(path).name, vocab, None, False, GENERIC_TASKS, separator)

    def tokenize(self, text: str) -> list[str]:
        if self._bpe is None:
            return list(text)
        # BPE has no unknown token: it would drop a character the file never holds, without a word
        unknown = sorted(set(text.replace(" ", SPACE)) - self._alphabet)
        if unknown:
            raise VocabularyError(
                f"{text!r} has characters the file {self.name} does not: {' '.join(map(repr, unknown))}"
            )
        return self._bpe.encode(text).tokens

    def text(self, ids: Sequence[int]) -> str:
        out = "".join(self.vocabulary.decode(ids))
        return out.replace(SPACE, " ").strip() if self._bpe is not None else out

    def corpus_item(self, rng: np.random.Generator) -> tuple[str, tuple[int, ...]]:
        line = self.lines[int(rng.integers(len(self.lines)))]
        return line, self.encode(line, "corpus line")


def _train_bpe(lines: list[str], vocab_size: int, alphabet: set[str]):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    if len(alphabet) + 1 > vocab_size:
        raise VocabularyError(
            f"the file has {len(alphabet)} distinct characters, so its vocabulary (with <eos>) is over the "
            f"configured size {vocab_size}; raise vocab_size to at least {len(alphabet) + 1}"
        )
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - 1, special_tokens=[], initial_alphabet=sorted(alphabet), show_progress=False
    )
    tok.train_from_iterator(lines, trainer=trainer)
    return tok
