"""Numba kernels behind :mod:`nx.engine.metrics`: per-era ranks, corr, BMC/MMC.

Layout: rows are grouped by era once; era ``e`` owns rows ``offsets[e]:offsets[e+1]``.
Prediction columns are stacked as ``preds[c, row]`` so one pass scores them all;
reference columns (benchmark, meta model) as ``refs[r, row]``. Kernels parallelise
over eras with ``prange`` and return small per-era arrays.

Which rows each step sees follows numerai-tools 0.7.2 exactly (see
``numerai-reference.md`` section 4); NaN marks a missing value everywhere.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from nx.engine.ndtri import ndtri

NAN = np.nan


@njit(cache=True, error_model="numpy", nogil=True, inline="always")
def signed_pow15(x: float) -> float:
    """sign(x) * |x| ** 1.5."""
    if x >= 0.0:
        return x * math.sqrt(x)
    return -((-x) * math.sqrt(-x))


@njit(cache=True, error_model="numpy", nogil=True)
def valid_order(values: np.ndarray) -> np.ndarray:
    """Indices of the non-NaN entries of ``values``, sorted by value."""
    n = values.shape[0]
    idx = np.empty(n, dtype=np.int64)
    k = 0
    for i in range(n):
        if not math.isnan(values[i]):
            idx[k] = i
            k += 1
    idx = idx[:k]
    sub = np.empty(k)
    for j in range(k):
        sub[j] = values[idx[j]]
    order = np.argsort(sub)
    out = np.empty(k, dtype=np.int64)
    for j in range(k):
        out[j] = idx[order[j]]
    return out


@njit(cache=True, error_model="numpy", nogil=True)
def fill_rank_table(table: np.ndarray, table_pow: np.ndarray, k: int) -> None:
    """table[i] = ndtri((i + 0.5) / k): the gaussianized untied rank i of k values.

    ndtri is odd around 0.5, so half the values mirror the other half.
    """
    half = (k + 1) // 2
    for i in range(half):
        g = ndtri((2.0 * i + 1.0) / (2.0 * k))
        table[i] = g
        table[k - 1 - i] = -g
    if k % 2 == 1:
        table[k // 2] = 0.0
    for i in range(k):
        table_pow[i] = signed_pow15(table[i])


@njit(cache=True, error_model="numpy", nogil=True)
def gauss_ranks(
    values: np.ndarray,
    order: np.ndarray,
    mask: np.ndarray,
    out: np.ndarray,
    out_pow: np.ndarray,
    scratch: np.ndarray,
    table: np.ndarray,
    table_pow: np.ndarray,
    table_k: np.ndarray,
) -> int:
    """Tie-kept rank -> gaussianize (and signed power 1.5) over the rows in ``mask``.

    ``order`` sorts the non-NaN rows of ``values``; only rows with ``mask`` set count.
    With k such rows, a tie group at filtered sorted positions s..e gets the average
    rank (s + e + 2) / 2, so (rank - 0.5) / k = (s + e + 1) / (2k) and the gaussian
    value ndtri of that. Writes ``out[row]`` and ``out_pow[row]`` (= signed power
    1.5) for those rows; returns k. ``table*`` cache the untied values for one k.
    """
    k = 0
    for j in range(order.shape[0]):
        row = order[j]
        if mask[row]:
            scratch[k] = row
            k += 1
    if k == 0:
        return 0
    if table_k[0] != k:
        fill_rank_table(table, table_pow, k)
        table_k[0] = k
    s = 0
    while s < k:
        v = values[scratch[s]]
        e = s
        while e + 1 < k and values[scratch[e + 1]] == v:
            e += 1
        j2 = s + e + 1
        if j2 % 2 == 1:
            g = table[j2 // 2]
            gp = table_pow[j2 // 2]
        else:
            g = ndtri(j2 / (2.0 * k))
            gp = signed_pow15(g)
        for j in range(s, e + 1):
            out[scratch[j]] = g
            out_pow[scratch[j]] = gp
        s = e + 1
    return k


@njit(cache=True, error_model="numpy", nogil=True)
def pearson_masked(x: np.ndarray, y: np.ndarray, mask: np.ndarray) -> float:
    """Pearson correlation of x and y over ``mask`` (NaN for < 2 rows or zero variance)."""
    n = 0
    sx = 0.0
    sy = 0.0
    for i in range(x.shape[0]):
        if mask[i]:
            n += 1
            sx += x[i]
            sy += y[i]
    if n < 2:
        return NAN
    mx = sx / n
    my = sy / n
    sxx = 0.0
    syy = 0.0
    sxy = 0.0
    for i in range(x.shape[0]):
        if mask[i]:
            dx = x[i] - mx
            dy = y[i] - my
            sxx += dx * dx
            syy += dy * dy
            sxy += dx * dy
    if sxx == 0.0 or syy == 0.0:
        return NAN
    r = sxy / math.sqrt(sxx * syy)
    return min(1.0, max(-1.0, r))


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
def _era_workspace(n: int):
    return (
        np.empty(n),
        np.empty(n),
        np.empty(n, dtype=np.int64),
        np.empty(n),
        np.empty(n),
        np.full(1, -1, dtype=np.int64),
    )


@njit(cache=True, error_model="numpy", parallel=True)
def numerai_corr_eras(preds: np.ndarray, target: np.ndarray, offsets: np.ndarray):
    """Per-era numerai_corr of every prediction column against ``target``.

    Per era: center the target over its non-NaN rows; keep rows where prediction and
    target are present; prediction -> tie-kept rank -> gaussianize -> signed power 1.5;
    target -> signed power 1.5; Pearson correlation.

    Returns ``(corr[e, c], kept[e, c])``; ``kept`` is the number of rows used, for the
    caller's NaN-limit check.
    """
    n_eras = offsets.shape[0] - 1
    n_cols = preds.shape[0]
    corr = np.full((n_eras, n_cols), NAN)
    kept = np.zeros((n_eras, n_cols), dtype=np.int64)
    for e in prange(n_eras):
        lo = offsets[e]
        hi = offsets[e + 1]
        n = hi - lo
        g, gp, scratch, table, table_pow, table_k = _era_workspace(n)
        t = target[lo:hi]
        tp = np.empty(n)
        centered_pow15(t, tp)
        mask = np.empty(n, dtype=np.bool_)
        for c in range(n_cols):
            p = preds[c, lo:hi]
            for i in range(n):
                mask[i] = not (math.isnan(t[i]) or math.isnan(p[i]))
            order = valid_order(p)
            k = gauss_ranks(p, order, mask, g, gp, scratch, table, table_pow, table_k)
            kept[e, c] = k
            if k > 0:
                corr[e, c] = pearson_masked(gp, tp, mask)
    return corr, kept


@njit(cache=True, error_model="numpy", parallel=True)
def score_eras(
    preds: np.ndarray,
    target: np.ndarray,
    refs: np.ndarray,
    offsets: np.ndarray,
    corr_with_ref: np.ndarray,
):
    """numerai_corr, correlation_contribution and corr-with-reference in one pass.

    ``refs[r]`` are reference columns (benchmark for BMC, meta model for MMC).
    correlation_contribution per era, over rows where prediction, reference and
    target are all present: p, m = gaussianize(tie-kept rank) of prediction and
    reference; p_perp = p - m (p.m)/(m.m); target t times 4 when every t is in
    [0, 1], then centered; score = t . p_perp / n.
    Corr with reference (when ``corr_with_ref[r]``): numerai_corr with the
    reference as the target (centered over its own non-NaN rows).

    Returns ``corr[e, c], contrib[e, c, r], cwr[e, c, r]`` and the kept-row counts
    ``kept[e, c, s]`` for s = 0 (corr), 1 + r (contribution), 1 + R + r (cwr).
    """
    n_eras = offsets.shape[0] - 1
    n_cols = preds.shape[0]
    n_refs = refs.shape[0]
    corr = np.full((n_eras, n_cols), NAN)
    contrib = np.full((n_eras, n_cols, n_refs), NAN)
    cwr = np.full((n_eras, n_cols, n_refs), NAN)
    kept = np.zeros((n_eras, n_cols, 1 + 2 * n_refs), dtype=np.int64)
    for e in prange(n_eras):
        lo = offsets[e]
        hi = offsets[e + 1]
        n = hi - lo
        g, gp, scratch, table, table_pow, table_k = _era_workspace(n)
        m = np.empty(n)
        m_pow = np.empty(n)
        t = target[lo:hi]
        tp = np.empty(n)
        centered_pow15(t, tp)
        ref_orders = []
        ref_tp = np.empty((n_refs, n))
        for r in range(n_refs):
            ref = refs[r, lo:hi]
            ref_orders.append(valid_order(ref))
            if corr_with_ref[r]:
                centered_pow15(ref, ref_tp[r])
        mask = np.empty(n, dtype=np.bool_)
        for c in range(n_cols):
            p = preds[c, lo:hi]
            order = valid_order(p)
            for i in range(n):
                mask[i] = not (math.isnan(t[i]) or math.isnan(p[i]))
            k = gauss_ranks(p, order, mask, g, gp, scratch, table, table_pow, table_k)
            kept[e, c, 0] = k
            if k > 0:
                corr[e, c] = pearson_masked(gp, tp, mask)
            for r in range(n_refs):
                ref = refs[r, lo:hi]
                for i in range(n):
                    mask[i] = not (math.isnan(t[i]) or math.isnan(p[i]) or math.isnan(ref[i]))
                k = gauss_ranks(p, order, mask, g, gp, scratch, table, table_pow, table_k)
                gauss_ranks(ref, ref_orders[r], mask, m, m_pow, scratch, table, table_pow, table_k)
                kept[e, c, 1 + r] = k
                if k > 0:
                    contrib[e, c, r] = _contribution(g, m, t, mask, k)
                if corr_with_ref[r]:
                    for i in range(n):
                        mask[i] = not (math.isnan(p[i]) or math.isnan(ref[i]))
                    k = gauss_ranks(p, order, mask, g, gp, scratch, table, table_pow, table_k)
                    kept[e, c, 1 + n_refs + r] = k
                    if k > 0:
                        cwr[e, c, r] = pearson_masked(gp, ref_tp[r], mask)
    return corr, contrib, cwr, kept


@njit(cache=True, error_model="numpy", nogil=True)
def _contribution(p: np.ndarray, m: np.ndarray, t: np.ndarray, mask: np.ndarray, k: int) -> float:
    """t4c . (p - m (p.m)/(m.m)) / k over ``mask`` (see :func:`score_eras`)."""
    in_unit = True
    for i in range(t.shape[0]):
        if mask[i] and (t[i] < 0.0 or t[i] > 1.0):
            in_unit = False
            break
    scale = 4.0 if in_unit else 1.0
    total = 0.0
    for i in range(t.shape[0]):
        if mask[i]:
            total += t[i] * scale
    mean = total / k
    tp_ = 0.0
    tm = 0.0
    pm = 0.0
    mm = 0.0
    for i in range(t.shape[0]):
        if mask[i]:
            tc = t[i] * scale - mean
            tp_ += tc * p[i]
            tm += tc * m[i]
            pm += p[i] * m[i]
            mm += m[i] * m[i]
    return (tp_ - tm * (pm / mm)) / k


@njit(cache=True, error_model="numpy", parallel=True)
def gauss_rank_eras(values: np.ndarray, offsets: np.ndarray, power: bool) -> np.ndarray:
    """Per era and column: tie-kept rank -> gaussianize (-> signed power 1.5 if ``power``).

    ``values[c, row]``; NaN stays NaN and is left out of the ranking.
    """
    n_eras = offsets.shape[0] - 1
    n_cols = values.shape[0]
    out = np.full(values.shape, NAN)
    for e in prange(n_eras):
        lo = offsets[e]
        hi = offsets[e + 1]
        n = hi - lo
        g, gp, scratch, table, table_pow, table_k = _era_workspace(n)
        mask = np.empty(n, dtype=np.bool_)
        for c in range(n_cols):
            v = values[c, lo:hi]
            for i in range(n):
                mask[i] = not math.isnan(v[i])
            order = valid_order(v)
            gauss_ranks(v, order, mask, g, gp, scratch, table, table_pow, table_k)
            src = gp if power else g
            for i in range(n):
                if mask[i]:
                    out[c, lo + i] = src[i]
    return out


@njit(cache=True, error_model="numpy", parallel=True)
def tie_kept_rank_eras(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Per era and column: (average rank - 0.5) / (non-NaN count); NaN stays NaN."""
    n_eras = offsets.shape[0] - 1
    n_cols = values.shape[0]
    out = np.full(values.shape, NAN)
    for e in prange(n_eras):
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
    return out


@njit(cache=True, error_model="numpy", parallel=True)
def exposure_eras(preds: np.ndarray, features: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Per era and column: max over features of |Pearson(prediction, feature)|.

    Over the rows where the prediction is present; features with zero variance in
    the era (correlation undefined) are skipped; NaN when none is left.
    ``features[row, j]`` (any numeric dtype, no NaN).
    """
    n_eras = offsets.shape[0] - 1
    n_cols = preds.shape[0]
    n_feat = features.shape[1]
    out = np.full((n_eras, n_cols), NAN)
    for e in prange(n_eras):
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
    return out


@njit(cache=True, error_model="numpy")
def summary_stats(values: np.ndarray):
    """(mean, std ddof 0, sharpe, max drawdown, n_nan) of a per-era series, NaN skipped.

    Max drawdown = max over eras of (running max of cumsum - cumsum), >= 0.
    """
    n = 0
    total = 0.0
    n_nan = 0
    for v in values:
        if math.isnan(v):
            n_nan += 1
        else:
            n += 1
            total += v
    if n == 0:
        return NAN, NAN, NAN, NAN, n_nan
    mean = total / n
    ss = 0.0
    for v in values:
        if not math.isnan(v):
            ss += (v - mean) ** 2
    std = math.sqrt(ss / n)
    sharpe = mean / std if std > 0.0 else NAN
    cum = 0.0
    peak = -np.inf
    drawdown = 0.0
    for v in values:
        if math.isnan(v):
            continue
        cum += v
        peak = max(peak, cum)
        drawdown = max(drawdown, peak - cum)
    return mean, std, sharpe, drawdown, n_nan
