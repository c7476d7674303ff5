"""The text environment's observation read back: the prefix it holds, the prefix parser's state after
it, and from that the language's exact next-token probabilities and the grammatical next tokens.

``lab play`` lists tokens by these probabilities and ``lab watch`` draws them beside an agent's
choices; both read them from the observation on screen (the ``Dict(length, tokens)`` of the env or
its flattened ``[length, tokens...]``, as ``lab.core.environments.make_env`` gives it).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from envs.text import TextGenEnv


def text_env(env: Any) -> TextGenEnv | None:
    """The :class:`~envs.text.TextGenEnv` inside ``env``'s wrappers, or None for any other env."""
    inner = getattr(env, "unwrapped", env)
    return inner if isinstance(inner, TextGenEnv) else None


def prefix_ids(obs: Any) -> list[int]:
    """The token ids an observation holds: the prompt, then the generated tokens."""
    if isinstance(obs, dict):
        length, tokens = int(np.asarray(obs["length"]).ravel()[0]), np.asarray(obs["tokens"])
    else:
        flat = np.asarray(obs).ravel()
        length, tokens = int(flat[0]), flat[1:]
    return [int(t) for t in tokens[:length]]


def prompt_length(text: TextGenEnv, ids: list[int]) -> int:
    """How many of ``ids`` are the episode's prompt (the longest of the task's prompts they start with;
    a prompt ends at its one delimiter, ``=`` or ``|``, so exactly one can match)."""
    return max((len(p) for p in text.prompts if tuple(ids[: len(p)]) == p), default=0)


def prefix_state(text: TextGenEnv, obs: Any) -> int:
    """The prefix automaton's state after the text in ``obs`` (the state the env's masks come from).

    When the prompt belongs to the grammar (English) the whole prefix is read from the start; otherwise
    the grammar covers the answer only, and the prompt is skipped.
    """
    ids = prefix_ids(obs)
    if not text.language.prompt_in_grammar:
        ids = ids[prompt_length(text, ids) :]
    return text.automaton.run(ids)


def allowed_tokens(text: TextGenEnv, obs: Any) -> np.ndarray:
    """The env's action mask after the text in ``obs``: the tokens that continue a grammatical prefix
    that can still end within ``max_length`` (every token when the env does not mask)."""
    if not text.action_mask:
        return np.ones(text.n_tokens, dtype=bool)
    ids = prefix_ids(obs)
    generated = len(ids) - prompt_length(text, ids)
    return text.automaton.mask(prefix_state(text, obs), text.max_length - generated).copy()


def next_token_probabilities(text: TextGenEnv, obs: Any) -> np.ndarray | None:
    """The language's exact probability of each token next after the text in ``obs`` (the end token's
    included); None for a language without a probability model (a text file)."""
    if text.language.pcfg is None:
        return None
    return text.automaton.next_prob[prefix_state(text, obs)].copy()
