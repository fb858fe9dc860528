"""The hash join behind ``nx score``'s id alignment against a plain dict (hypothesis)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from nx.engine.metrics.join import EMPTY, index_keys, lookup

# few distinct values so that repeats, misses and equal first hashes all occur
small_keys = st.lists(st.integers(0, 40), max_size=300)


def _pairs(values: list[int], collide: bool) -> tuple[np.ndarray, np.ndarray]:
    """Hash pairs of ``values``; ``collide`` gives every value the same first hash
    (only the second tells them apart), and spreads them over groups otherwise."""
    values = np.array(values, dtype=np.uint64)
    first = np.zeros_like(values) if collide else values * np.uint64(0x9E3779B97F4A7C15)
    first.flags.writeable = False  # as polars hands them over
    return first, values + np.uint64(1)


@settings(max_examples=80, deadline=None)
@given(left=small_keys, right=small_keys, collide=st.booleans())
def test_lookup_matches_a_dict(left, right, collide):
    index = index_keys(*_pairs(left, collide))
    assert index[-1] == (len(set(left)) < len(left))
    if index[-1]:
        return
    rows, repeated = lookup(*index[:-1], *_pairs(right, collide))
    assert repeated == any(right.count(v) > 1 for v in set(left))
    if not repeated:
        where = {v: j for j, v in enumerate(right)}
        assert rows.tolist() == [where.get(v, EMPTY) for v in left]


def test_millions_of_shuffled_ids():
    rng = np.random.default_rng(0)
    n = 1_200_000
    first = rng.integers(0, 2**63, n, dtype=np.uint64) * np.uint64(2)
    second = rng.integers(0, 2**63, n, dtype=np.uint64)
    order = rng.permutation(n)[: n // 2]
    rows, repeated = lookup(*index_keys(first[order], second[order])[:-1], first, second)
    assert not repeated and np.array_equal(rows, order)
