"""Least-squares neutralization of prediction columns against neutralizers (one era).

numerai-tools solves ``lstsq([X, 1], y, rcond=1e-6)`` with an SVD per era; the
residual only depends on the column space of ``[X, 1]``, so nx solves the same
problem through the centered Gram matrix, which costs one BLAS ``syrk`` per era:

- centering X is the intercept: ``y - Xb - c`` minimised over (b, c) equals
  ``yc - Xc b`` minimised over b (yc, Xc centered);
- for integer neutralizers (Numerai's int8 features) ``n^2 Cov(X) = n X'X - s s'``
  (s = column sums) is formed EXACTLY: every product and partial sum is an integer
  below 2^24 (float32 syrk) or 2^53 (float64), so the only rounding is in the solve;
- the Gram is scaled to unit diagonal and Cholesky-factored; its error then grows
  with cond(Xc) only in directions that barely change the residual.

Rank deficiency: a column constant in the era (Numerai's "all twos") has zero
variance and lies in the intercept's span, so it is dropped exactly, as the
pseudo-inverse does. Any other near-singular Gram (Cholesky fails or a pivot falls
under 1e-10) falls back to ``numpy.linalg.lstsq`` with ``rcond=1e-6`` itself.
"""

from __future__ import annotations

import numpy as np

from nx.engine._numba import njit

_F32_EXACT = float(2**24)
_F64_EXACT = float(2**53)
_MIN_PIVOT = 1e-10
RCOND = 1e-6


@njit(cache=True, error_model="numpy", nogil=True)
def xt_y(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """x' y for x (n, k) of any numeric dtype and y (n, m) float64.

    Each output sums over the rows in row order; the innermost loop runs along a row
    of x, so it vectorizes.
    """
    n, k = x.shape
    m = y.shape[1]
    out_t = np.zeros((m, k))
    for i in range(n):
        row = x[i]
        for c in range(m):
            yv = y[i, c]
            acc = out_t[c]
            for j in range(k):
                acc[j] += float(row[j]) * yv
    return np.ascontiguousarray(out_t.T)


@njit(cache=True, error_model="numpy", nogil=True, fastmath={"reassoc"})
def x_beta(x: np.ndarray, beta: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """x beta - shift for x (n, k) of any numeric dtype, beta (k, m), shift (m,).

    The sum over j may be reassociated (SIMD lanes): a rounding-level difference.
    """
    n, k = x.shape
    m = beta.shape[1]
    beta_t = np.ascontiguousarray(beta.T)
    out = np.empty((n, m))
    for i in range(n):
        row = x[i]
        for c in range(m):
            b = beta_t[c]
            acc = 0.0
            for j in range(k):
                acc += float(row[j]) * b[j]
            out[i, c] = acc - shift[c]
    return out


@njit(cache=True, error_model="numpy", nogil=True)
def column_sums(x: np.ndarray) -> np.ndarray:
    """Column sums of x (n, k) as float64, adding rows in order."""
    n, k = x.shape
    out = np.zeros(k)
    for i in range(n):
        row = x[i]
        for j in range(k):
            out[j] += float(row[j])
    return out


@njit(cache=True, error_model="numpy", nogil=True)
def cholesky_solve(lower: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve (L L') z = rhs by forward then back substitution."""
    k, m = rhs.shape
    z = rhs.copy()
    for c in range(m):
        for i in range(k):
            acc = z[i, c]
            for j in range(i):
                acc -= lower[i, j] * z[j, c]
            z[i, c] = acc / lower[i, i]
        for i in range(k - 1, -1, -1):
            acc = z[i, c]
            for j in range(i + 1, k):
                acc -= lower[j, i] * z[j, c]
            z[i, c] = acc / lower[i, i]
    return z


@njit(cache=True, error_model="numpy", nogil=True)
def _scaled_int_cov(gram: np.ndarray, sums: np.ndarray, n: int, exact: bool):
    """From the exact X'X (any float dtype) and column sums: (n^2 Cov(X) over the
    non-constant columns, scaled to unit diagonal; the kept-column mask; the scale)."""
    k = gram.shape[0]
    diag = np.empty(k)
    for j in range(k):
        diag[j] = n * float(gram[j, j]) - sums[j] * sums[j]
    limit = 0.0
    if not exact:
        for i in range(k):
            for j in range(k):
                limit = max(limit, abs(float(gram[i, j])))
        limit *= 1e-12
    keep = diag > limit
    idx = np.flatnonzero(keep)
    m = idx.shape[0]
    scale = np.empty(m)
    for a in range(m):
        scale[a] = 1.0 / np.sqrt(diag[idx[a]])
    out = np.empty((m, m))
    for a in range(m):
        i = idx[a]
        for b in range(m):
            j = idx[b]
            out[a, b] = (n * float(gram[i, j]) - sums[i] * sums[j]) * scale[a] * scale[b]
    return out, keep, scale


def _scaled_gram(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(n^2 Cov(X) restricted to non-constant columns, their mask, column means, scale)."""
    n = x.shape[0]
    if x.dtype.kind in "iub":
        maxabs = float(np.abs(x).max(initial=0))
        if n * maxabs * maxabs < _F32_EXACT:
            xf = x.astype(np.float32)
            gram = xf.T @ xf
        else:
            xf = x.astype(np.float64)
            gram = xf.T @ xf
        sums = column_sums(x)
        exact = n * n * maxabs * maxabs < _F64_EXACT
        cov, keep, scale = _scaled_int_cov(gram, sums, n, exact)
        return cov, keep, sums / n, scale
    xd = np.asarray(x, dtype=np.float64)
    means = xd.mean(axis=0)
    xc = xd - means
    cov_n2 = n * (xc.T @ xc)
    diag = np.diag(cov_n2)
    keep = diag > 1e-24 * max(float(diag.max(initial=0)), 1e-300)
    cov_n2 = cov_n2[np.ix_(keep, keep)]
    scale = 1.0 / np.sqrt(np.diag(cov_n2))
    return cov_n2 * scale[:, None] * scale[None, :], keep, means, scale


def neutralize_block(
    values: np.ndarray, neutralizers: np.ndarray, proportion: float = 1.0
) -> np.ndarray:
    """``values - proportion * [X, 1] beta`` with beta = lstsq([X, 1], values, rcond=1e-6).

    ``values`` (n, m) float64 without NaN, ``neutralizers`` X (n, k) without NaN, one
    era. A column of ``values`` with zero variance gives NaN (as numerai-tools).
    """
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[0]
    out = np.full(values.shape, np.nan)
    live = np.ptp(values, axis=0) > 0 if n > 1 else np.zeros(values.shape[1], dtype=bool)
    if not live.any():
        return out
    y = values[:, live]
    y_mean = y.mean(axis=0)
    yc = y - y_mean
    fitted = None
    if neutralizers.shape[1] > 0 and n > 1:
        cov, keep, means, scale = _scaled_gram(neutralizers)
        if not keep.any():
            fitted = np.zeros_like(yc)
        else:
            try:
                lower = np.linalg.cholesky(cov)
                ok = float(np.diag(lower).min()) ** 2 > _MIN_PIVOT
            except np.linalg.LinAlgError:
                ok = False
            if ok:
                x_kept = (
                    neutralizers
                    if keep.all() and neutralizers.flags.c_contiguous
                    else np.ascontiguousarray(neutralizers[:, keep])
                )
                rhs = xt_y(x_kept, np.ascontiguousarray(yc)) * scale[:, None]
                beta = n * cholesky_solve(lower, rhs) * scale[:, None]
                fitted = x_beta(x_kept, beta, means[keep] @ beta)
    else:
        fitted = np.zeros_like(yc)
    if fitted is None:
        design = np.hstack([np.asarray(neutralizers, dtype=np.float64), np.ones((n, 1))])
        beta = np.linalg.lstsq(design, y, rcond=RCOND)[0]
        out[:, live] = y - proportion * (design @ beta)
        return out
    out[:, live] = y - proportion * (y_mean + fitted)
    return out
