"""Counter-based random numbers for the grid worlds.

Every random draw of a grid world is a pure function of three integers: the seed, the episode
number since that seed, and the step number within the episode. A single environment evaluates it
with Python integers; :class:`~envs.grid.vector.GridVectorEnv` evaluates the same function on
arrays of thousands of environments at once. That is what lets the batched environment reproduce
N single environments exactly, bit for bit, without a Python loop over them.

The mixing function is SplitMix64's finalizer (Steele, Lea & Flood, 2014), a bijection on 64-bit
integers with good avalanche; uniforms take its top 53 bits, as numpy's generators do.
"""

from __future__ import annotations

import numpy as np

MASK64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15  # 2**64 / golden ratio, SplitMix64's increment
_M1, _M2 = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB
_U53 = 2.0**-53


def mix64(z: int) -> int:
    """SplitMix64's finalizer on a Python integer."""
    z &= MASK64
    z = ((z ^ (z >> 30)) * _M1) & MASK64
    z = ((z ^ (z >> 27)) * _M2) & MASK64
    return z ^ (z >> 31)


def seed_key(seed: int) -> int:
    """The stream key for a user's seed."""
    return mix64((seed + 1) * GOLDEN)


def episode_key(base: int, episode: int) -> int:
    """The key of one episode: the seed's key mixed with the episode number."""
    return mix64(base ^ mix64((episode + 1) * GOLDEN))


def next_episode(
    seed: int | None, base: int | None, episode: int, np_random: np.random.Generator
) -> tuple[int, int, int]:
    """``(base key, episode number, episode key)`` at a reset: a new seed starts its stream at episode
    0; without one the stream goes on (the first time from ``np_random``, gymnasium's own seeding)."""
    if seed is not None:
        base, episode = seed_key(seed), 0
    elif base is None:
        base, episode = int(np_random.integers(2**63)), 0
    else:
        episode += 1
    return base, episode, episode_key(base, episode)


def uniform(key: int, counter: int) -> float:
    """A uniform float in [0, 1) for draw number ``counter`` of the episode ``key``."""
    return (mix64(key + (counter + 1) * GOLDEN) >> 11) * _U53


# --- the same functions on uint64 arrays (wrap-around arithmetic is numpy's for unsigned arrays) ---

_S30, _S27, _S31, _S11 = (np.uint64(k) for k in (30, 27, 31, 11))
_AM1, _AM2, _AGOLDEN = np.uint64(_M1), np.uint64(_M2), np.uint64(GOLDEN)
_ONE = np.uint64(1)


def _mix64_inplace(z: np.ndarray) -> np.ndarray:
    """:func:`mix64` element-wise, overwriting the uint64 array ``z``; one scratch array."""
    scratch = np.empty_like(z)  # an array even for 0-d z (a ufunc would return a scalar, unusable as out=)
    np.right_shift(z, _S30, out=scratch)
    z ^= scratch
    z *= _AM1
    np.right_shift(z, _S27, out=scratch)
    z ^= scratch
    z *= _AM2
    np.right_shift(z, _S31, out=scratch)
    z ^= scratch
    return z


def mix64_array(z: np.ndarray) -> np.ndarray:
    """:func:`mix64` element-wise on a uint64 array (returns a new array)."""
    return _mix64_inplace(np.array(z, dtype=np.uint64))


def seed_key_array(seeds: np.ndarray) -> np.ndarray:
    return mix64_array((seeds.astype(np.uint64) + _ONE) * _AGOLDEN)


def episode_key_array(base: np.ndarray, episode: np.ndarray) -> np.ndarray:
    return mix64_array(base ^ mix64_array((episode.astype(np.uint64) + _ONE) * _AGOLDEN))


def bits_array(keys: np.ndarray, counters: np.ndarray) -> np.ndarray:
    """The 64 random bits behind :func:`uniform`, element-wise (uint64)."""
    bits = np.array(counters, dtype=np.uint64)  # a new array, also for scalars, so the in-place steps stick
    bits += _ONE
    bits *= _AGOLDEN
    bits += keys
    return _mix64_inplace(bits)


def uniform_array(keys: np.ndarray, counters: np.ndarray) -> np.ndarray:
    """:func:`uniform` element-wise: float64 array in [0, 1)."""
    bits = bits_array(keys, counters)
    bits >>= _S11
    out = bits.astype(np.float64)
    out *= _U53
    return out


def bits_thresholds(cdf: np.ndarray) -> np.ndarray:
    """Integer thresholds ``T`` with ``bits > T`` exactly when ``uniform >= cdf`` for the same draw.

    ``uniform`` is ``(bits >> 11) * 2**-53`` exactly, so ``uniform >= c`` holds iff
    ``bits >= ceil(c * 2**53) * 2**11``; entries ``>= 1`` (never reached) map to the largest uint64.
    Comparing raw bits saves the batched sampler a shift, a conversion and a multiply per draw.
    """
    cdf = np.asarray(cdf, dtype=np.float64)
    if (cdf <= 0).any():
        raise ValueError("cumulative probabilities of real outcomes are > 0")
    steps = np.ceil(np.minimum(cdf, 1.0) * 2.0**53).astype(np.uint64)
    thresholds = (steps << _S11) - _ONE
    thresholds[cdf >= 1.0] = np.uint64(MASK64)
    return thresholds
