"""Numba kernels behind :mod:`nx.engine.metrics`: per-era ranks, corr, BMC/MMC.

Layout: rows are grouped by era once; era ``e`` owns rows ``offsets[e]:offsets[e+1]``.
Prediction columns are stacked as ``preds[c, row]`` so one pass scores them all;
reference columns (benchmark, meta model) as ``refs[r, row]``. Each public function
is a Python wrapper that allocates the small per-era outputs and runs a jitted
kernel over ranges of eras on a thread per core (the kernels release the GIL).

Compile time matters as much as run time here: a cold cache compiles every kernel
a command calls (the score kernel alone once took ~14 s of CPU). So the kernels
are serial (``parallel=True`` compiled every loop a second time as a parfor for
little gain over threads), the wrappers hand them C-contiguous float64 arrays so
that each kernel is compiled for one set of argument types, and no kernel uses
numba's array-to-array slice assignment (its broadcasting and error-message code
cost seconds to compile): :func:`_copy` loops instead. Small helpers are plain
jitted functions, not ``inline="always"``: numba typed and lowered an inlined
helper again at every call site, while LLVM inlines small functions anyway.

Which rows each step sees follows numerai-tools 0.7.2 exactly (see
``numerai-reference.md`` section 4); NaN marks a missing value everywhere.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from nx.engine._numba import njit
from nx.engine.metrics.ndtri import central_rank_values, ndtri

NAN = np.nan
# below this many rows a call runs on the calling thread (threads cost ~0.1 ms)
_THREADED_ROWS = 20_000
_CHUNKS_PER_WORKER = 4


def _floats(values: np.ndarray) -> np.ndarray:
    """``values`` as a C-contiguous float64 array (no copy when it already is one)."""
    return np.ascontiguousarray(values, dtype=np.float64)


def _workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _over_eras(kernel: Callable, offsets: np.ndarray, inputs: tuple, outputs: tuple) -> None:
    """Run ``kernel(*inputs, e0, e1, *outputs)`` over all eras: on the calling thread
    for small inputs, else in era ranges of about equal rows on a thread per core
    (each range writes its own eras' outputs)."""
    n_eras = offsets.shape[0] - 1
    workers = min(_workers(), n_eras)
    if workers <= 1 or offsets[-1] < _THREADED_ROWS:
        kernel(*inputs, 0, n_eras, *outputs)
        return
    n_chunks = min(n_eras, workers * _CHUNKS_PER_WORKER)
    cuts = np.searchsorted(offsets, np.linspace(0, offsets[-1], n_chunks + 1)[1:-1])
    bounds = np.unique(np.concatenate([[0], np.minimum(cuts, n_eras), [n_eras]]))
    with ThreadPoolExecutor(workers, thread_name_prefix="nx-eras") as pool:
        futures = [
            pool.submit(kernel, *inputs, int(e0), int(e1), *outputs)
            for e0, e1 in zip(bounds[:-1], bounds[1:], strict=True)
        ]
        for future in futures:
            future.result()


@njit(cache=True, error_model="numpy", nogil=True)
def signed_pow15(x: float) -> float:
    """sign(x) * |x| ** 1.5."""
    if x >= 0.0:
        return x * math.sqrt(x)
    return -((-x) * math.sqrt(-x))


_INSERTION_MAX = 24
# 0 as an int64 (a literal 0 would compile a callee once more for the literal type)
_ZERO = np.int64(0)
_SPREAD_DEPTH = 4
# bucket = int((v - min) * scale) must stay finite: wider ranges go to the merge sort
_MAX_SCALE = 1e300


@njit(cache=True, error_model="numpy", nogil=True)
def _insertion_sort(keys: np.ndarray, idx: np.ndarray, lo: int, hi: int) -> None:
    for i in range(lo + 1, hi):
        key = keys[i]
        item = idx[i]
        j = i - 1
        while j >= lo and keys[j] > key:
            keys[j + 1] = keys[j]
            idx[j + 1] = idx[j]
            j -= 1
        keys[j + 1] = key
        idx[j + 1] = item


@njit(cache=True, error_model="numpy", nogil=True)
def _copy(dst: np.ndarray, src: np.ndarray) -> None:
    """dst[i] = src[i]: a plain loop (numba's array-to-array slice assignment pulls in
    broadcasting and error-formatting code that costs seconds to compile)."""
    for i in range(src.shape[0]):
        dst[i] = src[i]


@njit(cache=True, error_model="numpy", nogil=True)
def sort_valid(values: np.ndarray, keys: np.ndarray, idx: np.ndarray, buffers) -> int:
    """Sort the non-NaN entries of ``values`` into ``keys[:k]`` (their positions into
    ``idx[:k]``; ties in any order); returns k. ``buffers`` from :func:`_buffers`.

    A spread sort: a range is distributed into as many buckets as items by linear
    interpolation between its min and max (a counting sort), then each bucket is
    sorted the same way (insertion sort when small; a range of equal keys is done).
    Linear time for the smooth or heavily tied data that predictions are; past a few
    levels a range falls back to a merge sort, so the worst case stays O(n log n).
    The first level is fused with the NaN filtering: one pass for min/max, one to
    bucket, one to scatter. (One function with its own stack of ranges: each level
    of jitted calls is optimized again inside its caller, so depth costs compile
    time.)
    """
    tmp_keys, tmp_idx, bucket, counts = buffers
    n = values.shape[0]
    k = _ZERO
    vmin = np.inf
    vmax = -np.inf
    for i in range(n):
        v = values[i]
        if not math.isnan(v):
            k += 1
            vmin = min(vmin, v)
            vmax = max(vmax, v)
    width = vmax - vmin
    scale = k / width if width > 0.0 else 0.0
    # ranges (lo, hi, depth) left to sort: disjoint, longer than _INSERTION_MAX each
    stack = np.empty((k // _INSERTION_MAX + 2, 3), dtype=np.int64)
    top = 0
    if k <= _INSERTION_MAX or not (0.0 < width < np.inf and scale < _MAX_SCALE):
        j = 0
        for i in range(n):
            if not math.isnan(values[i]):
                keys[j] = values[i]
                idx[j] = i
                j += 1
        if k > 1 and width != 0.0:
            stack[0, 0] = 0
            stack[0, 1] = k
            stack[0, 2] = 0
            top = 1
    else:
        counts[: k + 1] = 0
        for i in range(n):
            v = values[i]
            if not math.isnan(v):
                b = min(int((v - vmin) * scale), k - 1)
                bucket[i] = b
                counts[b + 1] += 1
        largest = 0
        for b in range(k):
            largest = max(largest, counts[b + 1])
            counts[b + 1] += counts[b]
        for i in range(n):
            v = values[i]
            if not math.isnan(v):
                b = bucket[i]
                c = counts[b]
                keys[c] = v
                idx[c] = i
                counts[b] = c + 1
        if largest <= _INSERTION_MAX:
            # keys are out of order only within their small buckets: one insertion
            # pass over everything finishes them
            _insertion_sort(keys, idx, _ZERO, k)
            return k
        start = _ZERO
        for b in range(k):
            end = counts[b]
            if end - start > 1:
                if end - start <= _INSERTION_MAX:
                    _insertion_sort(keys, idx, start, end)
                else:
                    stack[top, 0] = start
                    stack[top, 1] = end
                    stack[top, 2] = 0
                    top += 1
            start = end
    while top > 0:
        top -= 1
        lo = stack[top, 0]
        hi = stack[top, 1]
        depth = stack[top, 2]
        m = hi - lo
        if m <= _INSERTION_MAX:
            _insertion_sort(keys, idx, lo, hi)
            continue
        vmin = keys[lo]
        vmax = keys[lo]
        for i in range(lo + 1, hi):
            vmin = min(vmin, keys[i])
            vmax = max(vmax, keys[i])
        if vmin == vmax:
            continue
        width = vmax - vmin
        if depth >= _SPREAD_DEPTH or not (width < np.inf and m / width < _MAX_SCALE):
            # merge sort: runs of _INSERTION_MAX items by insertion, then runs
            # merged pairwise (stably) between the range and the tmp buffers
            for first in range(lo, hi, _INSERTION_MAX):
                _insertion_sort(keys, idx, first, min(first + _INSERTION_MAX, hi))
            src_k, src_i = keys[lo:hi], idx[lo:hi]
            dst_k, dst_i = tmp_keys[:m], tmp_idx[:m]
            in_tmp = False
            run = _INSERTION_MAX
            while run < m:
                for left in range(0, m, 2 * run):
                    mid = min(left + run, m)
                    right = min(left + 2 * run, m)
                    a, z = left, mid
                    for o in range(left, right):
                        if z >= right or (a < mid and src_k[a] <= src_k[z]):
                            dst_k[o] = src_k[a]
                            dst_i[o] = src_i[a]
                            a += 1
                        else:
                            dst_k[o] = src_k[z]
                            dst_i[o] = src_i[z]
                            z += 1
                src_k, dst_k = dst_k, src_k
                src_i, dst_i = dst_i, src_i
                in_tmp = not in_tmp
                run *= 2
            if in_tmp:
                for i in range(m):
                    keys[lo + i] = src_k[i]
                    idx[lo + i] = src_i[i]
            continue
        scale = m / width
        counts[: m + 1] = 0
        for i in range(m):
            b = min(int((keys[lo + i] - vmin) * scale), m - 1)
            bucket[i] = b
            counts[b + 1] += 1
        for b in range(m):
            counts[b + 1] += counts[b]
        for i in range(m):
            b = bucket[i]
            c = counts[b]
            tmp_keys[c] = keys[lo + i]
            tmp_idx[c] = idx[lo + i]
            counts[b] = c + 1
        for i in range(m):
            keys[lo + i] = tmp_keys[i]
            idx[lo + i] = tmp_idx[i]
        start = 0
        for b in range(m):
            end = counts[b]
            if end - start > 1:
                if end - start <= _INSERTION_MAX:
                    _insertion_sort(keys, idx, lo + start, lo + end)
                else:
                    stack[top, 0] = lo + start
                    stack[top, 1] = lo + end
                    stack[top, 2] = depth + 1
                    top += 1
            start = end
    return k


@njit(cache=True, error_model="numpy", nogil=True)
def _buffers(n: int):
    return (
        np.empty(n),
        np.empty(n, dtype=np.int64),
        np.empty(n, dtype=np.int64),
        np.empty(2 * n + 2, dtype=np.int64),
    )


@njit(cache=True, error_model="numpy", nogil=True)
def valid_order(values: np.ndarray) -> np.ndarray:
    """Indices of the non-NaN entries of ``values``, sorted by value (ties in any order)."""
    n = values.shape[0]
    idx = np.empty(n, dtype=np.int64)
    k = sort_valid(values, np.empty(n), idx, _buffers(n))
    return idx[:k]


@njit(cache=True, error_model="numpy", nogil=True)
def fill_rank_table(table: np.ndarray, table_pow: np.ndarray, k: int) -> None:
    """table[i] = ndtri((i + 0.5) / k): the gaussianized untied rank i of k values,
    table_pow[i] = pow15(table[i]).

    ndtri is odd around 0.5, so half the values mirror the other half; the central
    region of AS241 is a branch-free loop that LLVM vectorizes.
    """
    half = (k + 1) // 2
    # first index whose p is in AS241's central region |p - 0.5| <= 0.425
    i0 = half
    for i in range(half):
        if abs((2.0 * i + 1.0) / (2.0 * k) - 0.5) <= 0.425:
            i0 = i
            break
    for i in range(i0):
        table[i] = ndtri((2.0 * i + 1.0) / (2.0 * k))
    central_rank_values(table, i0, half, k)
    for i in range(half):
        g = table[i]
        table[k - 1 - i] = -g
        gp = -((-g) * math.sqrt(-g)) if g < 0.0 else g * math.sqrt(g)
        table_pow[i] = gp
        table_pow[k - 1 - i] = -gp
    if k % 2 == 1:
        table[k // 2] = 0.0
        table_pow[k // 2] = 0.0


@njit(cache=True, error_model="numpy", nogil=True)
def _rank_table(tables, k: int):
    """The (table, table_pow) of :func:`fill_rank_table` for k values, cached in ``tables``."""
    table, table_pow, table_k = tables
    if table_k[0] != k:
        fill_rank_table(table, table_pow, k)
        table_k[0] = k
    return table, table_pow


@njit(cache=True, error_model="numpy", nogil=True)
def _tie_group(keys, s: int, k: int, table, table_pow):
    """The tie group starting at sorted position s: (its last position e, g, pow15(g)).

    Its average rank is (s + e + 2) / 2, so (rank - 0.5) / k = (s + e + 1) / (2k)
    (bit for bit the fraction pandas forms) and g = ndtri of that: from the table
    of untied values when s + e + 1 is odd.
    """
    v = keys[s]
    e = s
    while e + 1 < k and keys[e + 1] == v:
        e += 1
    j2 = s + e + 1
    if j2 % 2 == 1:
        return e, table[j2 // 2], table_pow[j2 // 2]
    g = ndtri(j2 / (2.0 * k))
    return e, g, signed_pow15(g)


@njit(cache=True, error_model="numpy", nogil=True)
def _tables(n: int):
    return np.empty(n), np.empty(n), np.full(1, -1, dtype=np.int64)


@njit(cache=True, error_model="numpy", nogil=True)
def ranks_sorted(keys, idx, k: int, out: np.ndarray, out_pow: np.ndarray, tables) -> int:
    """Tie-kept rank -> gaussianize (and signed power 1.5) of k sorted values.

    A tie group at sorted positions s..e gets the average rank (s + e + 2) / 2, so
    (rank - 0.5) / k = (s + e + 1) / (2k), and the gaussian value ndtri of that
    (bit for bit the fraction pandas forms). Writes ``out[idx[j]]`` and
    ``out_pow[idx[j]]``; ``tables`` cache the untied values for one k.
    """
    if k == 0:
        return 0
    table, table_pow = _rank_table(tables, k)
    s = _ZERO
    while s < k:
        e, g, gp = _tie_group(keys, s, k, table, table_pow)
        for j in range(s, e + 1):
            out[idx[j]] = g
            out_pow[idx[j]] = gp
        s = e + 1
    return k


@njit(cache=True, error_model="numpy", nogil=True)
def centered_pow15(values: np.ndarray, out: np.ndarray) -> int:
    """out = signed_pow15(values - mean over non-NaN values); returns the non-NaN count."""
    n = 0
    total = 0.0
    for i in range(values.shape[0]):
        if not math.isnan(values[i]):
            n += 1
            total += values[i]
    mean = total / n if n > 0 else 0.0
    for i in range(values.shape[0]):
        out[i] = signed_pow15(values[i] - mean)
    return n


@njit(cache=True, error_model="numpy", nogil=True)
def _select(keys, idx, k_valid: int, mask, sel_keys, sel_idx) -> int:
    """Keep the sorted rows whose ``mask`` is set (sorted order is preserved)."""
    m = 0
    for j in range(k_valid):
        row = idx[j]
        if mask[row]:
            sel_keys[m] = keys[j]
            sel_idx[m] = row
            m += 1
    return m


@njit(cache=True, error_model="numpy", nogil=True)
def _walk(keys, idx, k: int, tables, ys, zs, sums_y, sums_z):
    """Walk k sorted values as gaussianized tie-kept ranks g, gp = pow15(g).

    Returns (sum gp, sum gp^2) and fills ``sums_y[i] = sum gp * ys[i][row]`` and
    ``sums_z[i] = sum g * zs[i][row]``.
    """
    table, table_pow = _rank_table(tables, k)
    ny = ys.shape[0]
    nz = zs.shape[0]
    sums_y[:] = 0.0
    sums_z[:] = 0.0
    s_gp = 0.0
    s_gp2 = 0.0
    s = _ZERO
    while s < k:
        e, g, gp = _tie_group(keys, s, k, table, table_pow)
        cnt = e - s + 1
        s_gp += gp * cnt
        s_gp2 += gp * gp * cnt
        if e == s:
            row = idx[s]
            for i in range(ny):
                sums_y[i] += gp * ys[i, row]
            for i in range(nz):
                sums_z[i] += g * zs[i, row]
        else:
            for i in range(ny):
                acc = 0.0
                for j in range(s, e + 1):
                    acc += ys[i, idx[j]]
                sums_y[i] += gp * acc
            for i in range(nz):
                acc = 0.0
                for j in range(s, e + 1):
                    acc += zs[i, idx[j]]
                sums_z[i] += g * acc
        s = e + 1
    return s_gp, s_gp2


@njit(cache=True, error_model="numpy", nogil=True)
def _walk_one_ref(keys, idx, k: int, tables, packed, out):
    """:func:`_walk` for one reference, its four per-row inputs packed in one row of
    ``packed`` (y, w, t4, m: one cache line per row visited): out = (sum gp*y,
    sum gp*w, sum g*t4, sum g*m); returns (sum gp, sum gp^2)."""
    table, table_pow = _rank_table(tables, k)
    s_gp = 0.0
    s_gp2 = 0.0
    s_y = 0.0
    s_w = 0.0
    s_t = 0.0
    s_m = 0.0
    s = _ZERO
    while s < k:
        e, g, gp = _tie_group(keys, s, k, table, table_pow)
        ay = 0.0
        aw = 0.0
        at = 0.0
        am = 0.0
        for j in range(s, e + 1):
            row = idx[j]
            ay += packed[row, 0]
            aw += packed[row, 1]
            at += packed[row, 2]
            am += packed[row, 3]
        cnt = e - s + 1
        s_gp += gp * cnt
        s_gp2 += gp * gp * cnt
        s_y += gp * ay
        s_w += gp * aw
        s_t += g * at
        s_m += g * am
        s = e + 1
    out[0] = s_y
    out[1] = s_w
    out[2] = s_t
    out[3] = s_m
    return s_gp, s_gp2


@njit(cache=True, error_model="numpy", nogil=True)
def _pearson_from_sums(k: int, s_x, s_xx, s_xy, s_y, s_yy) -> float:
    """Pearson from sums over k rows; y is pre-shifted to a near-zero mean, and the
    gaussianized x is symmetric around 0, so the one-pass formulas lose nothing."""
    if k < 2:
        return NAN
    sxx = s_xx - s_x * s_x / k
    syy = s_yy - s_y * s_y / k
    sxy = s_xy - s_x * s_y / k
    if sxx <= 0.0 or syy <= 0.0:
        return NAN
    r = sxy / math.sqrt(sxx * syy)
    return min(1.0, max(-1.0, r))


@njit(cache=True, error_model="numpy", nogil=True)
def _shifted(values: np.ndarray, mask: np.ndarray, out: np.ndarray):
    """out = values - mean(values over mask) where mask, 0 elsewhere; returns
    (count, sum of out, sum of out^2) over mask (two-pass, exact enough)."""
    n = 0
    total = 0.0
    for i in range(values.shape[0]):
        if mask[i]:
            n += 1
            total += values[i]
    mean = total / n if n > 0 else 0.0
    s1 = 0.0
    s2 = 0.0
    for i in range(values.shape[0]):
        if mask[i]:
            d = values[i] - mean
            out[i] = d
            s1 += d
            s2 += d * d
        else:
            out[i] = 0.0
    return n, s1, s2


@njit(cache=True, error_model="numpy", nogil=True)
def _target4_centered(t: np.ndarray, mask: np.ndarray, out: np.ndarray, buf32) -> None:
    """out = t (times 4 when every t over mask is in [0, 1]) centered over mask.

    With ``buf32`` (float32, one item per row; empty for a float64 target) in
    float32 arithmetic, as numerai-tools does for a float32 target: the mean is
    numpy's pairwise float32 sum over the float32 count, and t - mean is rounded
    to float32 (it is not exact when the mean is below 2).
    """
    in_unit = True
    for i in range(t.shape[0]):
        if mask[i] and (t[i] < 0.0 or t[i] > 1.0):
            in_unit = False
            break
    if buf32.shape[0] > 0:
        scale32 = np.float32(4.0) if in_unit else np.float32(1.0)
        m = _ZERO
        for i in range(t.shape[0]):
            if mask[i]:
                buf32[m] = np.float32(t[i]) * scale32
                m += 1
        mean32 = _sum32(buf32, _ZERO, m) / np.float32(m) if m > 0 else np.float32(0.0)
        for i in range(t.shape[0]):
            out[i] = np.float32(t[i]) * scale32 - mean32 if mask[i] else 0.0
        return
    scale = 4.0 if in_unit else 1.0
    n = 0
    total = 0.0
    for i in range(t.shape[0]):
        if mask[i]:
            n += 1
            total += t[i] * scale
    mean = total / n if n > 0 else 0.0
    for i in range(t.shape[0]):
        out[i] = t[i] * scale - mean if mask[i] else 0.0


@njit(cache=True, error_model="numpy", nogil=True)
def _block_sum32(a: np.ndarray, lo: int, n: int):
    """numpy's float32 sum of at most 128 items ``a[lo:lo + n]``: 8 accumulators."""
    if n < 8:
        res = np.float32(-0.0)
        for i in range(lo, lo + n):
            res += a[i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = 8
    while i < n - n % 8:
        j = lo + i
        r0 += a[j]
        r1 += a[j + 1]
        r2 += a[j + 2]
        r3 += a[j + 3]
        r4 += a[j + 4]
        r5 += a[j + 5]
        r6 += a[j + 6]
        r7 += a[j + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@njit(cache=True, error_model="numpy", nogil=True)
def _sum32(a: np.ndarray, lo: int, n: int):
    """``a[lo:lo + n].sum()`` of a float32 array bit for bit as numpy sums it: pairwise
    (halves cut at a multiple of 8, down to blocks of at most 128 items), in float32.

    numpy recurses; this walks the same tree with a stack (a numba function that
    calls itself cannot be loaded from the cache into a caller compiled later).
    """
    if n <= 128:
        return _block_sum32(a, lo, n)
    # tasks (lo, n): n >= 0 sums a range, n = -1 adds the last two sums
    tasks = np.empty((128, 2), dtype=np.int64)
    sums = np.empty(64, dtype=np.float32)
    tasks[0, 0] = lo
    tasks[0, 1] = n
    n_tasks = 1
    n_sums = 0
    while n_tasks > 0:
        n_tasks -= 1
        t_lo = tasks[n_tasks, 0]
        t_n = tasks[n_tasks, 1]
        if t_n < 0:
            n_sums -= 1
            sums[n_sums - 1] = sums[n_sums - 1] + sums[n_sums]
        elif t_n <= 128:
            sums[n_sums] = _block_sum32(a, t_lo, t_n)
            n_sums += 1
        else:
            half = t_n // 2
            half -= half % 8
            tasks[n_tasks, 1] = -1  # after both halves: add them
            tasks[n_tasks + 1, 0] = t_lo + half
            tasks[n_tasks + 1, 1] = t_n - half
            tasks[n_tasks + 2, 0] = t_lo
            tasks[n_tasks + 2, 1] = half
            n_tasks += 3
    return sums[0]


@njit(cache=True, error_model="numpy", nogil=True)
def _dot_masked(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    total = 0.0
    for i in range(a.shape[0]):
        if mask[i]:
            total += a[i] * b[i]
    return total


@njit(cache=True, error_model="numpy", nogil=True)
def _score_eras(
    preds,
    target,
    target_y,
    refs,
    refs_y,
    refs_y_given,
    offsets,
    corr_with_ref,
    e0,
    e1,
    corr,
    contrib,
    cwr,
    kept,
):
    """Eras ``e0:e1`` of :func:`score_eras`, written into its outputs. Sums are taken
    walking each column's sorted order, so ranks are never scattered back to rows.

    (One function: a kernel called from another jitted function is optimized again
    inside its caller, which doubled the compile time of this, the largest kernel.)
    """
    n_cols = preds.shape[0]
    n_refs = refs.shape[0]
    for e in range(e0, e1):
        lo = offsets[e]
        hi = offsets[e + 1]
        n = hi - lo
        t = target[lo:hi]
        buffers = _buffers(n)
        tables = _tables(n)
        keys = np.empty(n)
        idx = np.empty(n, dtype=np.int64)
        sel_keys = np.empty(n)
        sel_idx = np.empty(n, dtype=np.int64)
        junk = np.empty(n)
        m2 = np.empty(n)
        t4c2 = np.empty(n)
        np.empty(n)
        p_valid = np.empty(n, dtype=np.bool_)
        mask = np.empty(n, dtype=np.bool_)

        # target: centered over its non-NaN rows, powered, then shifted (for the sums)
        t_valid = np.empty(n, dtype=np.bool_)
        for i in range(n):
            t_valid[i] = not math.isnan(t[i])
        tp = np.empty(n)
        # a float32 target (target_y given): numerai-tools' float32 arithmetic
        buf32 = np.empty(n if target_y.shape[0] > 0 else 0, dtype=np.float32)
        if target_y.shape[0] > 0:
            t_count = 0
            for i in range(n):
                tp[i] = target_y[lo + i]
                t_count += t_valid[i]
        else:
            t_count = centered_pow15(t, tp)
        t_full = t_count == n
        ty = np.empty(n)
        _, ty_s, ty_ss = _shifted(tp, t_valid, ty)

        # per reference: its sort; over rows with a target (base): its ranks m, the
        # x4-centered target and the sums that do not depend on the prediction
        ref_keys = np.empty((n_refs, n))
        ref_idx = np.empty((n_refs, n), dtype=np.int64)
        ref_k = np.zeros(n_refs, dtype=np.int64)
        base = np.empty((n_refs, n), dtype=np.bool_)
        base_k = np.zeros(n_refs, dtype=np.int64)
        m_base = np.empty((n_refs, n))
        t4c = np.empty((n_refs, n))
        tm_base = np.zeros(n_refs)
        mm_base = np.zeros(n_refs)
        ref_y = np.empty((n_refs, n))
        ref_y_s = np.zeros(n_refs)
        ref_y_ss = np.zeros(n_refs)
        for r in range(n_refs):
            ref = refs[r, lo:hi]
            ref_k[r] = sort_valid(ref, ref_keys[r], ref_idx[r], buffers)
            for i in range(n):
                base[r, i] = t_valid[i] and not math.isnan(ref[i])
            kb = _select(ref_keys[r], ref_idx[r], ref_k[r], base[r], sel_keys, sel_idx)
            base_k[r] = ranks_sorted(sel_keys, sel_idx, kb, m_base[r], junk, tables)
            _target4_centered(t, base[r], t4c[r], buf32)
            tm_base[r] = _dot_masked(t4c[r], m_base[r], base[r])
            mm_base[r] = _dot_masked(m_base[r], m_base[r], base[r])
            if corr_with_ref[r]:
                if refs_y_given[r]:  # numerai-tools' float32 arithmetic
                    for i in range(n):
                        junk[i] = refs_y[r, lo + i]
                else:
                    centered_pow15(ref, junk)
                for i in range(n):
                    mask[i] = not math.isnan(ref[i])
                _, ref_y_s[r], ref_y_ss[r] = _shifted(junk, mask, ref_y[r])

        # With no NaN anywhere in the era one walk per column gives every sum.
        refs_full = True
        for r in range(n_refs):
            refs_full = refs_full and ref_k[r] == n
        n_w = 0
        for r in range(n_refs):
            if corr_with_ref[r]:
                n_w += 1
        ys_all = np.empty((1 + n_w, n))
        _copy(ys_all[0], ty)
        w_pos = np.zeros(n_refs, dtype=np.int64)
        j = 1
        for r in range(n_refs):
            if corr_with_ref[r]:
                _copy(ys_all[j], ref_y[r])
                w_pos[r] = j
                j += 1
        zs_all = np.empty((2 * n_refs, n))
        for r in range(n_refs):
            _copy(zs_all[2 * r], t4c[r])
            _copy(zs_all[2 * r + 1], m_base[r])
        sums_y = np.empty(max(1 + n_w, 4))
        sums_z = np.empty(2 * n_refs)
        ys1 = np.empty((1, n))
        zs2 = np.empty((2, n))
        sy1 = np.empty(1)
        sz2 = np.empty(2)
        no_z = np.empty((0, n))
        no_sz = np.empty(0)

        packed = np.empty((0, 4))  # the one-reference walk's inputs, made on first use
        for c in range(n_cols):
            p = preds[c, lo:hi]
            k_p = sort_valid(p, keys, idx, buffers)
            p_full = k_p == n
            if p_full and t_full and refs_full:
                if n_refs == 1:  # the common case, with its sums in registers
                    if packed.shape[0] == 0:
                        packed = np.empty((n, 4))
                        for i in range(n):
                            packed[i, 0] = ys_all[0, i]
                            packed[i, 1] = ys_all[n_w, i]
                            packed[i, 2] = zs_all[0, i]
                            packed[i, 3] = zs_all[1, i]
                    s_gp, s_gp2 = _walk_one_ref(keys, idx, n, tables, packed, sums_y)
                    sums_z[0] = sums_y[2]
                    sums_z[1] = sums_y[3]
                else:
                    s_gp, s_gp2 = _walk(keys, idx, n, tables, ys_all, zs_all, sums_y, sums_z)
                for slot in range(kept.shape[2]):
                    kept[e, c, slot] = n
                corr[e, c] = _pearson_from_sums(n, s_gp, s_gp2, sums_y[0], ty_s, ty_ss)
                for r in range(n_refs):
                    s_gt = sums_z[2 * r]
                    s_gm = sums_z[2 * r + 1]
                    contrib[e, c, r] = (s_gt - tm_base[r] * (s_gm / mm_base[r])) / n
                    if corr_with_ref[r]:
                        w = sums_y[w_pos[r]]
                        cwr[e, c, r] = _pearson_from_sums(
                            n, s_gp, s_gp2, w, ref_y_s[r], ref_y_ss[r]
                        )
                continue
            if not p_full:
                for i in range(n):
                    p_valid[i] = not math.isnan(p[i])
            # numerai_corr: rows with prediction and target
            for i in range(n):
                mask[i] = t_valid[i] and (p_full or p_valid[i])
            k = _select(keys, idx, k_p, mask, sel_keys, sel_idx)
            kept[e, c, 0] = k
            if k > 0:
                y_s = 0.0
                y_ss = 0.0
                for i in range(n):
                    if mask[i]:
                        y_s += ty[i]
                        y_ss += ty[i] * ty[i]
                _copy(ys1[0], ty)
                s_gp, s_gp2 = _walk(sel_keys, sel_idx, k, tables, ys1, no_z, sy1, no_sz)
                corr[e, c] = _pearson_from_sums(k, s_gp, s_gp2, sy1[0], y_s, y_ss)
            for r in range(n_refs):
                ref = refs[r, lo:hi]
                # correlation contribution: rows with prediction, reference and target
                if p_full:
                    kb = _select(keys, idx, k_p, base[r], sel_keys, sel_idx)
                    _copy(zs2[0], t4c[r])
                    _copy(zs2[1], m_base[r])
                    s_tm, s_mm = tm_base[r], mm_base[r]
                else:
                    for i in range(n):
                        mask[i] = base[r, i] and p_valid[i]
                    kb = _select(ref_keys[r], ref_idx[r], ref_k[r], mask, sel_keys, sel_idx)
                    ranks_sorted(sel_keys, sel_idx, kb, m2, junk, tables)
                    _target4_centered(t, mask, t4c2, buf32)
                    s_tm = _dot_masked(t4c2, m2, mask)
                    s_mm = _dot_masked(m2, m2, mask)
                    kb = _select(keys, idx, k_p, mask, sel_keys, sel_idx)
                    _copy(zs2[0], t4c2)
                    _copy(zs2[1], m2)
                kept[e, c, 1 + r] = kb
                if kb > 0:
                    _walk(sel_keys, sel_idx, kb, tables, no_z, zs2, no_sz, sz2)
                    # t . (p - m (p.m)/(m.m)) / n
                    contrib[e, c, r] = (sz2[0] - s_tm * (sz2[1] / s_mm)) / kb
                if corr_with_ref[r]:
                    # numerai_corr with the reference as target: rows with both present
                    for i in range(n):
                        mask[i] = (p_full or p_valid[i]) and not math.isnan(ref[i])
                    kw = _select(keys, idx, k_p, mask, sel_keys, sel_idx)
                    kept[e, c, 1 + n_refs + r] = kw
                    if kw > 0:
                        y_s = 0.0
                        y_ss = 0.0
                        for i in range(n):
                            if mask[i]:
                                y_s += ref_y[r, i]
                                y_ss += ref_y[r, i] * ref_y[r, i]
                        _copy(ys1[0], ref_y[r])
                        s_gp, s_gp2 = _walk(sel_keys, sel_idx, kw, tables, ys1, no_z, sy1, no_sz)
                        cwr[e, c, r] = _pearson_from_sums(kw, s_gp, s_gp2, sy1[0], y_s, y_ss)


def compile_sort_kernels() -> None:
    """Compile (or load) :func:`sort_valid` and :func:`_target4_centered` (with its
    float32 sum) with the argument types :func:`_score_eras` gives them, so that
    compiling the scorer finds them cached (see :mod:`nx.engine.metrics.warmup`)."""
    n = 2
    sort_valid(np.zeros(n), np.empty(n), np.empty(n, dtype=np.int64), _buffers(n))
    mask = np.ones(n, dtype=np.bool_)
    _target4_centered(np.zeros(n), mask, np.empty(n), np.empty(n, dtype=np.float32))


def compile_rank_kernels() -> None:
    """Compile (or load) the scorer's rank and walk kernels (:func:`ranks_sorted`,
    :func:`_walk`, :func:`_walk_one_ref`, and the rank tables and ndtri they call)
    with the argument types :func:`_score_eras` gives them."""
    n = 2
    keys = np.zeros(n)
    idx = np.arange(n, dtype=np.int64)
    tables = _tables(n)
    ranks_sorted(keys, idx, n, np.empty(n), np.empty(n), tables)
    rows = np.zeros((1, n))
    _walk(keys, idx, n, tables, rows, rows, np.empty(1), np.empty(1))
    _walk_one_ref(keys, idx, n, tables, np.zeros((n, 4)), np.empty(4))


def score_eras(
    preds: np.ndarray,
    target: np.ndarray,
    refs: np.ndarray,
    offsets: np.ndarray,
    corr_with_ref: np.ndarray,
    float32: np.ndarray | None = None,
):
    """numerai_corr, correlation_contribution and corr-with-reference in one pass.

    ``refs[r]`` are reference columns (benchmark for BMC, meta model for MMC).
    correlation_contribution per era, over rows where prediction, reference and
    target are all present: p, m = gaussianize(tie-kept rank) of prediction and
    reference; p_perp = p - m (p.m)/(m.m); target t times 4 when every t is in
    [0, 1], then centered; score = t . p_perp / n.
    Corr with reference (when ``corr_with_ref[r]``): numerai_corr with the
    reference as the target (centered over its own non-NaN rows).

    ``float32[i]`` says that the target (i = 0) or reference i - 1 comes from a
    float32 column (Numerai's files): numerai-tools then centers and powers it as
    numerai_corr's target in float32 arithmetic, and so does this (see
    :func:`numerai_target_float32`); float64 columns are done in float64.

    Returns ``corr[e, c], contrib[e, c, r], cwr[e, c, r]`` and the kept-row counts
    ``kept[e, c, s]`` for s = 0 (corr), 1 + r (contribution), 1 + R + r (cwr).
    """
    preds, target, refs = _floats(preds), _floats(target), _floats(refs)
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    corr_with_ref = np.ascontiguousarray(corr_with_ref, dtype=np.bool_)
    n_eras = offsets.shape[0] - 1
    n_cols = preds.shape[0]
    n_refs = refs.shape[0]
    single = np.zeros(1 + n_refs, dtype=np.bool_)
    if float32 is not None:
        single[:] = float32
    target_y = numerai_target_float32(target, offsets) if single[0] else np.empty(0, np.float32)
    refs_y_given = single[1:] & corr_with_ref
    refs_y = np.empty((n_refs, 0), dtype=np.float32)
    if refs_y_given.any():
        refs_y = np.full(refs.shape, NAN, dtype=np.float32)
        for r in np.flatnonzero(refs_y_given):
            refs_y[r] = numerai_target_float32(refs[r], offsets)
    corr = np.full((n_eras, n_cols), NAN)
    contrib = np.full((n_eras, n_cols, n_refs), NAN)
    cwr = np.full((n_eras, n_cols, n_refs), NAN)
    kept = np.zeros((n_eras, n_cols, 1 + 2 * n_refs), dtype=np.int64)
    inputs = (preds, target, target_y, refs, refs_y, refs_y_given, offsets, corr_with_ref)
    _over_eras(_score_eras, offsets, inputs, (corr, contrib, cwr, kept))
    return corr, contrib, cwr, kept


def numerai_target_float32(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """numerai_corr's target, per era ``sign(t - mean) * |t - mean| ** 1.5``, computed
    as numerai-tools computes it for a float32 column (float32, NaN where t is).

    pandas takes the mean of a float32 Series in float32 (numpy's pairwise sum of the
    values with NaN as 0, over the float32 count), the subtraction is float32, and so
    is numpy's power (whose float32 loop is not correctly rounded: on AVX-512 machines
    about 1 value in 5 differs from the float64 power rounded to float32 by an ulp).
    In float64 these steps give per-era correlations that differ from numerai-tools'
    by up to ~1e-8, so they are done here with the same numpy calls (in era ranges
    on a thread per core: numpy releases the GIL).
    """
    values32 = np.ascontiguousarray(values, dtype=np.float32)
    out = np.empty_like(values32)
    _over_eras(_target_float32_eras, offsets, (values32, offsets), (out,))
    return out


def _target_float32_eras(values32, offsets, e0: int, e1: int, out) -> None:
    """Eras ``e0:e1`` of :func:`numerai_target_float32`."""
    lo, hi = offsets[e0], offsets[e1]
    values = values32[lo:hi]
    missing = np.isnan(values)
    sizes = np.diff(offsets[e0 : e1 + 1])
    counts = sizes.astype(np.float32)
    filled = values
    if missing.any():
        filled = np.where(missing, np.float32(0.0), values)
        n_missing = np.concatenate([[0], np.cumsum(missing)])
        ends = offsets[e0 : e1 + 1] - lo
        counts = (sizes - (n_missing[ends[1:]] - n_missing[ends[:-1]])).astype(np.float32)
    means = np.empty(e1 - e0, dtype=np.float32)
    with np.errstate(invalid="ignore", divide="ignore"):  # an era without values: NaN
        for e in range(e0, e1):
            era = filled[offsets[e] - lo : offsets[e + 1] - lo]
            means[e - e0] = era.sum(dtype=np.float32) / counts[e - e0]
    centered = values - np.repeat(means, sizes)
    # sign(c) * |c| ** 1.5 as numerai-tools writes it; copysign gives the same values
    np.copysign(np.abs(centered) ** np.float32(1.5), centered, out=out[lo:hi])


def numerai_corr_eras(
    preds: np.ndarray, target: np.ndarray, offsets: np.ndarray, float32: bool = False
):
    """Per-era numerai_corr of every prediction column against ``target``.

    Per era: center the target over its non-NaN rows; keep rows where prediction and
    target are present; prediction -> tie-kept rank -> gaussianize -> signed power 1.5;
    target -> signed power 1.5; Pearson correlation.

    Returns ``(corr[e, c], kept[e, c])``; ``kept`` is the number of rows used, for the
    caller's NaN-limit check. ``float32``: the target comes from a float32 column (see
    :func:`score_eras`). (:func:`score_eras` without references: the same compiled
    kernel.)
    """
    preds = _floats(preds)
    no_refs = np.empty((0, preds.shape[1]))
    no_cwr = np.zeros(0, dtype=np.bool_)
    corr, _, _, kept = score_eras(preds, target, no_refs, offsets, no_cwr, np.array([float32]))
    return corr, kept[:, :, 0]


@njit(cache=True, error_model="numpy", nogil=True)
def _gauss_rank_eras(values, offsets, power, e0, e1, out):
    """Eras ``e0:e1`` of :func:`gauss_rank_eras`, written into ``out``."""
    n_cols = values.shape[0]
    for e in range(e0, e1):
        lo = offsets[e]
        hi = offsets[e + 1]
        n = hi - lo
        buffers = _buffers(n)
        tables = _tables(n)
        keys = np.empty(n)
        idx = np.empty(n, dtype=np.int64)
        g = np.empty(n)
        gp = np.empty(n)
        for c in range(n_cols):
            v = values[c, lo:hi]
            k = sort_valid(v, keys, idx, buffers)
            ranks_sorted(keys, idx, k, g, gp, tables)
            src = gp if power else g
            for j in range(k):
                out[c, lo + idx[j]] = src[idx[j]]


def gauss_rank_eras(values: np.ndarray, offsets: np.ndarray, power: bool) -> np.ndarray:
    """Per era and column: tie-kept rank -> gaussianize (-> signed power 1.5 if ``power``).

    ``values[c, row]``; NaN stays NaN and is left out of the ranking.
    """
    values = _floats(values)
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    out = np.full(values.shape, NAN)
    _over_eras(_gauss_rank_eras, offsets, (values, offsets, bool(power)), (out,))
    return out


@njit(cache=True, error_model="numpy", nogil=True)
def _tie_kept_rank_eras(values, offsets, e0, e1, out):
    """Eras ``e0:e1`` of :func:`tie_kept_rank_eras`, written into ``out``."""
    n_cols = values.shape[0]
    for e in range(e0, e1):
        lo = offsets[e]
        hi = offsets[e + 1]
        for c in range(n_cols):
            v = values[c, lo:hi]
            order = valid_order(v)
            k = order.shape[0]
            s = 0
            while s < k:
                e2 = s
                while e2 + 1 < k and v[order[e2 + 1]] == v[order[s]]:
                    e2 += 1
                r = (s + e2 + 1) / (2.0 * k)
                for j in range(s, e2 + 1):
                    out[c, lo + order[j]] = r
                s = e2 + 1


def tie_kept_rank_eras(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Per era and column: (average rank - 0.5) / (non-NaN count); NaN stays NaN."""
    values = _floats(values)
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    out = np.full(values.shape, NAN)
    _over_eras(_tie_kept_rank_eras, offsets, (values, offsets), (out,))
    return out


@njit(cache=True, error_model="numpy", nogil=True)
def _exposure_eras(preds, features, offsets, e0, e1, out):
    """Eras ``e0:e1`` of :func:`exposure_eras`, written into ``out``."""
    n_cols = preds.shape[0]
    n_feat = features.shape[1]
    for e in range(e0, e1):
        lo = offsets[e]
        hi = offsets[e + 1]
        for c in range(n_cols):
            p = preds[c, lo:hi]
            n = 0
            sp = 0.0
            for i in range(hi - lo):
                if not math.isnan(p[i]):
                    n += 1
                    sp += p[i]
            if n < 2:
                continue
            mp = sp / n
            spp = 0.0
            for i in range(hi - lo):
                if not math.isnan(p[i]):
                    spp += (p[i] - mp) ** 2
            if spp == 0.0:
                continue
            sx = np.zeros(n_feat)
            sxx = np.zeros(n_feat)
            sxp = np.zeros(n_feat)
            for i in range(hi - lo):
                if math.isnan(p[i]):
                    continue
                dp = p[i] - mp
                row = features[lo + i]
                for j in range(n_feat):
                    x = float(row[j])
                    sx[j] += x
                    sxx[j] += x * x
                    sxp[j] += x * dp
            best = -1.0
            for j in range(n_feat):
                var_n = sxx[j] - sx[j] * sx[j] / n
                if var_n <= 1e-12 * max(sxx[j], 1e-300):
                    continue
                a = abs(sxp[j] / math.sqrt(var_n * spp))
                if a > best:
                    best = a
            if best >= 0.0:
                out[e, c] = min(best, 1.0)


def exposure_eras(preds: np.ndarray, features: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Per era and column: max over features of |Pearson(prediction, feature)|.

    Over the rows where the prediction is present; features with zero variance in
    the era (correlation undefined) are skipped; NaN when none is left.
    ``features[row, j]`` (any numeric dtype, no NaN; compiled once per dtype).
    """
    preds = _floats(preds)
    features = np.ascontiguousarray(features)
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    out = np.full((offsets.shape[0] - 1, preds.shape[0]), NAN)
    _over_eras(_exposure_eras, offsets, (preds, features, offsets), (out,))
    return out


@njit(cache=True, error_model="numpy", nogil=True)
def counting_order(codes: np.ndarray, n_codes: int) -> np.ndarray:
    """Stable order grouping rows by code (0 <= code < n_codes): a counting sort."""
    starts = np.zeros(n_codes + 1, dtype=np.int64)
    for c in codes:
        starts[c + 1] += 1
    for c in range(n_codes):
        starts[c + 1] += starts[c]
    order = np.empty(codes.shape[0], dtype=np.int64)
    for i in range(codes.shape[0]):
        c = codes[i]
        order[starts[c]] = i
        starts[c] += 1
    return order


def summary_stats(values: np.ndarray):
    """(mean, std ddof 0, sharpe, max drawdown, n_nan) of a per-era series, NaN skipped.

    Max drawdown = max over eras of (running max of cumsum - cumsum), >= 0. Plain
    numpy (a series has one value per era: nothing to compile); sums are taken in
    order (``cumsum``), as a loop would.
    """
    values = np.asarray(values, dtype=np.float64)
    present = values[~np.isnan(values)]
    n_nan = values.shape[0] - present.shape[0]
    if present.shape[0] == 0:
        return NAN, NAN, NAN, NAN, n_nan
    cum = np.cumsum(present)
    mean = cum[-1] / present.shape[0]
    std = math.sqrt(np.cumsum((present - mean) ** 2)[-1] / present.shape[0])
    sharpe = mean / std if std > 0.0 else NAN
    drawdown = max(0.0, float(np.max(np.maximum.accumulate(cum) - cum)))
    return float(mean), std, sharpe, drawdown, n_nan


@njit(cache=True, error_model="numpy", nogil=True)
def match_sorted(left_sorted, left_order, right_sorted, right_order):
    """Rows aligning two key sets given each one's sorted keys and sorting order: for
    each left row the right row with the same key (-1 if none), by one merge pass;
    also whether the right keys repeat (then the caller does not use the answer)."""
    n_left = left_sorted.shape[0]
    n_right = right_sorted.shape[0]
    duplicate = False
    for j in range(1, n_right):
        if right_sorted[j] == right_sorted[j - 1]:
            duplicate = True
            break
    out = np.full(n_left, -1, dtype=np.int64)
    j = 0
    for i in range(n_left):
        key = left_sorted[i]
        while j < n_right and right_sorted[j] < key:
            j += 1
        if j < n_right and right_sorted[j] == key:
            out[left_order[i]] = right_order[j]
    return out, duplicate
