"""Aligning the rows of two files by id, for ``nx score`` (numba).

Ids are reduced to two independent 64-bit hashes, and two ids match when both
hashes are equal (a chance collision of both is about 1e-26 for millions of ids; one
equal hash alone is not a match). A radix-partitioned hash join: both sides are
grouped by the top bits of their keys (one counting pass and one scatter pass),
then each group of left keys (about 500 of them) goes into a small open-addressing
table that stays in cache while the right keys of the same group look it up.
Every pass reads memory in order, which is what makes this several times faster
than sorting both sides or probing one table of millions of slots at random.
"""

from __future__ import annotations

import numpy as np

from nx.engine._numba import njit
from nx.engine.metrics import warmup

EMPTY = -1
_GROUP_BITS = 9  # about 2**9 keys per group: its table (16 KiB) stays in L1/L2


@njit(cache=True, error_model="numpy", nogil=True)
def _partition(keys: np.ndarray, second: np.ndarray, shift: int):
    """``keys`` grouped by their top bits (``key >> shift``): group ``g`` is
    ``group_keys[offsets[g]:offsets[g+1]]``, with their ``second`` hashes and rows."""
    n = keys.shape[0]
    n_groups = 1 << (64 - shift)
    offsets = np.zeros(n_groups + 1, dtype=np.int64)
    for i in range(n):
        offsets[np.int64(keys[i] >> np.uint64(shift)) + 1] += 1
    for g in range(n_groups):
        offsets[g + 1] += offsets[g]
    fill = offsets[:-1].copy()
    group_keys = np.empty(n, dtype=np.uint64)
    group_second = np.empty(n, dtype=np.uint64)
    group_rows = np.empty(n, dtype=np.int64)
    for i in range(n):
        g = np.int64(keys[i] >> np.uint64(shift))
        j = fill[g]
        fill[g] = j + 1
        group_keys[j] = keys[i]
        group_second[j] = second[i]
        group_rows[j] = i
    return offsets, group_keys, group_second, group_rows


@njit(cache=True, error_model="numpy", nogil=True, inline="always")
def _table_size(count: int) -> int:
    size = 2
    while size < 2 * count:
        size <<= 1
    return size


@njit(cache=True, error_model="numpy", nogil=True)
def _fill_table(keys, second, rows, lo: int, hi: int, table, slot_rows, size: int) -> bool:
    """Put the key pairs ``keys[lo:hi], second[lo:hi]`` (rows ``rows[lo:hi]``) into
    the first ``size`` slots (low bits of the key, linear probing); True when a pair
    repeats (its first row is kept)."""
    mask = size - 1
    slot_rows[:size] = EMPTY
    repeated = False
    for j in range(lo, hi):
        key, key2 = keys[j], second[j]
        s = np.int64(key & np.uint64(mask))
        while slot_rows[s] != EMPTY and (table[s, 0] != key or table[s, 1] != key2):
            s = (s + 1) & mask
        if slot_rows[s] != EMPTY:
            repeated = True
        else:
            table[s, 0] = key
            table[s, 1] = key2
            slot_rows[s] = rows[j]
    return repeated


@njit(cache=True, error_model="numpy", nogil=True)
def _index_keys(keys: np.ndarray, second: np.ndarray):
    """The kernel of :func:`index_keys`."""
    n = keys.shape[0]
    bits = 1
    while (1 << (bits + _GROUP_BITS)) < n:
        bits += 1
    shift = 64 - bits
    offsets, group_keys, group_second, group_rows = _partition(keys, second, shift)
    size = _table_size(np.max(offsets[1:] - offsets[:-1]))
    table = np.empty((size, 2), dtype=np.uint64)
    slot_rows = np.empty(size, dtype=np.int64)
    repeated = False
    for g in range(offsets.shape[0] - 1):
        lo, hi = offsets[g], offsets[g + 1]
        if hi - lo > 1:
            size = _table_size(hi - lo)
            if _fill_table(group_keys, group_second, group_rows, lo, hi, table, slot_rows, size):
                repeated = True
    return shift, offsets, group_keys, group_second, group_rows, repeated


@njit(cache=True, error_model="numpy", nogil=True)
def _lookup(shift: int, offsets, group_keys, group_second, group_rows, keys, second):
    """The kernel of :func:`lookup`."""
    right_offsets, right_keys, right_second, right_rows = _partition(keys, second, shift)
    out = np.full(group_rows.shape[0], EMPTY, dtype=np.int64)
    size = _table_size(np.max(offsets[1:] - offsets[:-1]))
    table = np.empty((size, 2), dtype=np.uint64)
    slot_rows = np.empty(size, dtype=np.int64)
    repeated = False
    for g in range(offsets.shape[0] - 1):
        lo, hi = offsets[g], offsets[g + 1]
        if hi == lo or right_offsets[g] == right_offsets[g + 1]:
            continue
        size = _table_size(hi - lo)
        _fill_table(group_keys, group_second, group_rows, lo, hi, table, slot_rows, size)
        mask = size - 1
        for j in range(right_offsets[g], right_offsets[g + 1]):
            key, key2 = right_keys[j], right_second[j]
            s = np.int64(key & np.uint64(mask))
            while slot_rows[s] != EMPTY:
                if table[s, 0] == key and table[s, 1] == key2:
                    left = slot_rows[s]
                    if out[left] != EMPTY:
                        repeated = True
                    out[left] = right_rows[j]
                    break
                s = (s + 1) & mask
    return out, repeated


def index_keys(keys: np.ndarray, second: np.ndarray):
    """The left side of the join (hash pairs ``keys``, ``second``): ``(shift, offsets,
    group_keys, group_second, group_rows, repeated)``; ``repeated`` says whether some
    pair occurs twice."""
    warmup.wait_for_child()  # a cold cache: a child may be compiling these kernels
    return _index_keys(keys, second)


def lookup(shift: int, offsets, group_keys, group_second, group_rows, keys, second):
    """For each left row (of :func:`index_keys`) the row of the right pairs ``keys``,
    ``second`` holding the same pair (``EMPTY`` when none), and whether two right
    rows share a left pair."""
    warmup.wait_for_child()
    return _lookup(shift, offsets, group_keys, group_second, group_rows, keys, second)


def compile_kernels() -> None:
    """Compile (or load from the cache) the join's kernels for the argument types
    ``nx score`` gives them: read-only hashes, as polars hands them over."""
    keys = np.zeros(1, dtype=np.uint64)
    keys.flags.writeable = False
    index = _index_keys(keys, keys)
    _lookup(*index[:-1], keys, keys)
