"""The counter-based random numbers: the array functions compute exactly the scalar ones."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from envs.grid import rng

U64 = st.integers(0, 2**64 - 1)
SMALL = st.integers(0, 2**62)


def test_mix64_known_values():
    # SplitMix64: the first outputs of the generator seeded with 0 are mix64(k * GOLDEN), k = 1, 2, ...
    assert rng.mix64(rng.GOLDEN) == 0xE220A8397B1DCDAF
    assert rng.mix64((2 * rng.GOLDEN) & rng.MASK64) == 0x6E789E6AA1B965F4
    assert rng.mix64(0) == 0
    assert rng.mix64(2**64) == 0  # reduced mod 2**64


@given(st.lists(U64, min_size=1, max_size=50))
def test_mix64_array_equals_scalar(values):
    arr = np.array(values, dtype=np.uint64)
    keep = arr.copy()
    out = rng.mix64_array(arr)
    assert out.tolist() == [rng.mix64(v) for v in values]
    np.testing.assert_array_equal(arr, keep)  # input untouched


@given(st.lists(st.integers(0, 2**63 - 1), min_size=1, max_size=50))
def test_seed_key_array_equals_scalar(seeds):
    assert rng.seed_key_array(np.array(seeds, dtype=np.int64)).tolist() == [rng.seed_key(s) for s in seeds]


@given(st.lists(st.tuples(U64, st.integers(0, 2**40)), min_size=1, max_size=50))
def test_episode_key_array_equals_scalar(pairs):
    base = np.array([b for b, _ in pairs], dtype=np.uint64)
    episode = np.array([e for _, e in pairs], dtype=np.int64)
    keep = base.copy(), episode.copy()
    out = rng.episode_key_array(base, episode)
    assert out.tolist() == [rng.episode_key(b, e) for b, e in pairs]
    np.testing.assert_array_equal(base, keep[0])
    np.testing.assert_array_equal(episode, keep[1])


@given(st.lists(st.tuples(U64, st.integers(0, 2**40)), min_size=1, max_size=50))
def test_uniform_array_equals_scalar(pairs):
    keys = np.array([k for k, _ in pairs], dtype=np.uint64)
    counters = np.array([c for _, c in pairs], dtype=np.int64)
    keep = keys.copy(), counters.copy()
    out = rng.uniform_array(keys, counters)
    assert out.dtype == np.float64
    expected = [rng.uniform(k, c) for k, c in pairs]
    assert out.tolist() == expected  # bit for bit
    assert all(0.0 <= u < 1.0 for u in expected)
    np.testing.assert_array_equal(keys, keep[0])
    np.testing.assert_array_equal(counters, keep[1])


@given(U64, st.integers(0, 2**40))
def test_zero_dimensional_inputs(key, counter):
    assert float(rng.uniform_array(np.array(key, dtype=np.uint64), np.array(counter))) == rng.uniform(
        key, counter
    )
    assert int(rng.mix64_array(np.array(key, dtype=np.uint64))) == rng.mix64(key)
    assert float(rng.uniform_array(np.uint64(key), np.int64(counter))) == rng.uniform(key, counter)


@given(SMALL, SMALL)
def test_uniform_is_top_53_bits(key, counter):
    u = rng.uniform(key, counter)
    bits = rng.mix64(key + (counter + 1) * rng.GOLDEN)
    assert u == (bits >> 11) / 2**53


def test_uniform_distribution_moments():
    key = rng.episode_key(rng.seed_key(0), 0)
    u = rng.uniform_array(np.full(200_000, key, dtype=np.uint64), np.arange(200_000))
    assert abs(u.mean() - 0.5) < 4 * np.sqrt(1 / 12 / len(u))
    assert abs(u.var() - 1 / 12) < 0.002
    counts = np.bincount((u * 10).astype(int), minlength=10)
    expected = len(u) / 10
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < 30  # 9 degrees of freedom: p < 0.0005


def test_streams_are_distinct():
    keys = {rng.seed_key(s) for s in range(1000)}
    assert len(keys) == 1000
    base = rng.seed_key(0)
    assert len({rng.episode_key(base, e) for e in range(1000)}) == 1000


@pytest.mark.parametrize("n", [1, 7, 4096])
def test_mix64_array_large_batches(n):
    values = np.random.default_rng(n).integers(0, 2**63, size=n, dtype=np.int64).astype(
        np.uint64
    ) * np.uint64(3)
    assert rng.mix64_array(values).tolist() == [rng.mix64(int(v)) for v in values]


@given(st.lists(st.tuples(U64, st.integers(0, 2**40)), min_size=1, max_size=50))
def test_bits_array_equals_scalar(pairs):
    keys = np.array([k for k, _ in pairs], dtype=np.uint64)
    counters = np.array([c for _, c in pairs], dtype=np.int64)
    expected = [rng.mix64(k + (c + 1) * rng.GOLDEN) for k, c in pairs]
    assert rng.bits_array(keys, counters).tolist() == expected
    assert [(b >> 11) * 2.0**-53 for b in expected] == [rng.uniform(k, c) for k, c in pairs]


CDF = st.one_of(
    st.floats(min_value=2.0**-60, max_value=1.0, exclude_min=False),
    st.integers(1, 2**53).map(lambda m: m * 2.0**-53),  # exactly on a uniform's grid
    st.sampled_from([1 / 3, 2 / 3, 0.1, 0.5, 1 - 2.0**-53, 1.0, 2.0]),
)


@given(CDF, st.integers(-3, 3), st.integers(0, 2047))
def test_bits_thresholds_match_float_comparison(c, offset, low):
    threshold = int(rng.bits_thresholds(np.array([c]))[0])
    # draws whose uniform lies right around c: the comparison must agree bit for bit
    m = min(max(int(np.ceil(min(c, 1.0) * 2.0**53)) + offset, 0), 2**53 - 1)
    bits = (m << 11) | low
    u = (bits >> 11) * 2.0**-53
    assert (bits > threshold) == (u >= c)


def test_bits_thresholds_edges():
    t = rng.bits_thresholds(np.array([1.0, 2.0, 0.5]))
    assert t.dtype == np.uint64
    assert t[0] == t[1] == np.uint64(rng.MASK64)  # never exceeded: the last real outcome and padding
    assert int(t[2]) == (2**52 << 11) - 1  # u >= 0.5 iff the top bit is set
    with pytest.raises(ValueError):
        rng.bits_thresholds(np.array([0.0]))
