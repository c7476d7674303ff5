"""The exact MDP of a finite text environment: the prefix tree, as dense arrays.

Nodes are numbered as :class:`~envs.text.env.TextGenEnv`'s ``index`` observations:
``prompt * per_prompt + offsets[k] + (the k generated tokens read as a base-V number)``. Nodes
that end in the end token or hold ``max_length`` tokens are terminal; so are the nodes no episode
reaches (strings with the end token inside), kept so that the numbering stays a formula.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from envs.errors import TextError
from envs.grid.model import TransitionModel

if TYPE_CHECKING:
    from envs.text.env import TextGenEnv

MAX_DENSE_ENTRIES = 50_000_000  # 400 MB of float64 P[S, A, S']


def prefix_tree_model(env: TextGenEnv) -> TransitionModel:
    """``P[S, A, S']``, ``R[S, A]``, terminal flags and the start distribution of ``env``'s tree."""
    n = env.n_index_states()
    v, length, eos = env.n_tokens, env.max_length, env.eos
    if n * v * n > MAX_DENSE_ENTRIES:
        raise TextError(
            f"a dense model of {n} nodes x {v} tokens x {n} nodes is {n * v * n * 8 / 2**30:.1f} GiB; "
            "transition_model() needs a smaller version (lower max_length, fewer tokens or prompts)"
        )
    P = np.zeros((n, v, n))
    R = np.zeros((n, v))
    terminal = np.ones(n, dtype=bool)
    initial = np.zeros(n)
    for p in range(len(env.prompts)):
        base = p * env.per_prompt
        initial[base] = 1.0 / len(env.prompts)
        frontier: list[tuple[tuple[int, ...], int, int]] = [((), env.prompt_states[p], 0)]
        while frontier:
            generated, state, node = frontier.pop()
            k = len(generated)
            s = base + env.offsets[k] + node
            if k == length or (generated and generated[-1] == eos):
                continue
            terminal[s] = False
            for a in range(v):
                nxt, reward, _, _ = env.outcome(p, generated, state, a)
                child = node * v + a
                P[s, a, base + env.offsets[k + 1] + child] = 1.0
                R[s, a] = reward
                frontier.append(((*generated, a), nxt, child))
    for s in np.flatnonzero(terminal):
        P[s, :, s] = 1.0
    return TransitionModel(P=P, R=R, terminal=terminal, initial=initial)
