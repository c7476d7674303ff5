"""A vocabulary: token strings and their ids, with the end-of-sentence token at id 0."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from envs.errors import VocabularyError

EOS = "<eos>"


class Vocabulary:
    """Token strings numbered from 0; id 0 is ``<eos>``, which ends a sentence."""

    def __init__(self, tokens: Iterable[str], max_size: int | None = None) -> None:
        tokens = list(tokens)
        if EOS in tokens:  # it would be the end token, not a word: sentences would end inside
            raise VocabularyError(f"a token is spelled {EOS}, as the end token is; rename it in the text")
        self.tokens: tuple[str, ...] = (EOS, *dict.fromkeys(tokens))
        if max_size is not None and len(self.tokens) > max_size:
            raise VocabularyError(
                f"the vocabulary has {len(self.tokens)} tokens (with {EOS}), "
                f"over the configured size {max_size}"
            )
        self.index = {t: i for i, t in enumerate(self.tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def eos(self) -> int:
        return 0

    def encode(self, tokens: Sequence[str], what: str = "text") -> tuple[int, ...]:
        """Token strings to ids; an unknown token is a :class:`VocabularyError` naming it."""
        try:
            return tuple(self.index[t] for t in tokens)
        except KeyError as e:
            known = " ".join(self.tokens[1:21]) + (" ..." if len(self.tokens) > 21 else "")
            raise VocabularyError(
                f"{what} has the unknown token {e.args[0]!r}; the vocabulary: {known}"
            ) from None

    def decode(self, ids: Sequence[int]) -> list[str]:
        return [self.tokens[i] for i in ids]
