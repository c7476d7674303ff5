"""Seeded corpora of a language, in disjoint train / validation / test splits."""

from __future__ import annotations

import numpy as np

from envs.errors import TextError
from envs.text.languages import Language, check_split, split_of


def sample_corpus(language: Language, n: int, split: str = "train", seed: int = 0) -> list[tuple[int, ...]]:
    """``n`` items (token ids, without the end token) of ``split``, drawn with ``seed``.

    Items are drawn from the language (grammar samples, arithmetic problems, words, lines of the
    file) and kept when their key hashes into the split, so an item is in one split only, on every
    machine; the same seed gives the same list.
    """
    check_split(split)
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise TextError(f"n must be a whole number >= 0; got {n!r}")
    rng = np.random.default_rng(seed)
    out: list[tuple[int, ...]] = []
    tries = 0
    seen: set[str] = set()  # while none is in the split: a small language may have none there
    last_new = 0
    while len(out) < n:
        key, ids = language.corpus_item(rng)
        if split_of(key) == split:
            out.append(ids)
        elif not out and key not in seen:
            seen.add(key)
            last_new = tries
        tries += 1
        if not out and tries - last_new > 1000:
            raise TextError(
                f"the {language.name} corpus has no item in the {split} split: its {len(seen)} distinct "
                f"item(s) drawn in {tries} tries are all in the others"
            )
        if tries > 1000 * (n + 10) and len(out) < n:
            raise TextError(
                f"the {language.name} corpus has too few items in the {split} split for {n} samples"
            )
    return out
