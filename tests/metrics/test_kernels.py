"""The kernels against plain numpy/scipy versions (hypothesis)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.special import ndtri as scipy_ndtri
from scipy.stats import rankdata

from nx.engine import metrics
from nx.engine.metrics import kernels
from nx.engine.metrics.ndtri import ndtri_array

SETTINGS = settings(max_examples=50, deadline=None)

# values with many ties (few distinct values) and NaN
tied = st.lists(
    st.one_of(
        st.sampled_from([0.0, 0.25, 0.5, 1.0, -3.0]),
        st.just(float("nan")),
        st.floats(-1e6, 1e6, allow_nan=False),
    ),
    min_size=1,
    max_size=60,
)


def _plain_rank(x: np.ndarray) -> np.ndarray:
    out = np.full(x.shape, np.nan)
    ok = ~np.isnan(x)
    if ok.any():
        out[ok] = (rankdata(x[ok], method="average") - 0.5) / ok.sum()
    return out


def _plain_pow15(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.abs(x) ** 1.5


def test_ndtri_full_precision():
    rng = np.random.default_rng(0)
    p = np.concatenate(
        [rng.random(200_000), np.logspace(-300, -1, 2000), 1 - np.logspace(-15, -1, 500)]
    )
    ours, ref = ndtri_array(p), scipy_ndtri(p)
    assert np.max(np.abs(ours - ref) / np.abs(ref)) < 1e-14
    assert list(ndtri_array(np.array([0.0, 0.5, 1.0]))) == [-np.inf, 0.0, np.inf]
    assert np.isnan(ndtri_array(np.array([np.nan, -0.1, 1.1]))).all()


@SETTINGS
@given(tied)
def test_tie_kept_rank(values):
    x = np.array(values)
    np.testing.assert_array_equal(metrics.tie_kept_rank(x), _plain_rank(x))


@SETTINGS
@given(tied)
def test_gaussianize(values):
    x = np.array(values)
    g = scipy_ndtri(_plain_rank(x))
    np.testing.assert_allclose(metrics.gaussianize(x), g, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(
        metrics.gaussianize(x, power=True), _plain_pow15(g), rtol=1e-13, atol=1e-15
    )


@SETTINGS
@given(
    hnp.arrays(
        np.float64,
        st.tuples(st.integers(2, 5), st.integers(1, 40)),
        elements=st.floats(0, 1, allow_nan=False),
    ),
    st.integers(0, 4),
)
def test_rank_per_era_with_columns(values, n_eras):
    """Several columns and eras in one call equal era-by-era, column-by-column ranks."""
    values = values.T  # (rows, columns)
    eras = np.arange(values.shape[0]) % (n_eras + 1)
    ours = metrics.tie_kept_rank(values, eras)
    for e in np.unique(eras):
        for c in range(values.shape[1]):
            np.testing.assert_array_equal(ours[eras == e, c], _plain_rank(values[eras == e, c]))


@SETTINGS
@given(
    st.integers(3, 80),
    st.integers(1, 12),
    st.integers(0, 2**32 - 1),
    st.sampled_from(["int8", "float64"]),
    st.floats(0.0, 1.0),
)
def test_neutralize_matches_lstsq(n, k, seed, dtype, proportion):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 5, (n, k)).astype(dtype)
    if k > 2:
        x[:, 0] = 2  # constant column (numerai's "all twos")
        x[:, 1] = x[:, 2]  # duplicate column: rank deficient
    if dtype == "float64":
        x = x + rng.normal(0, 0.1, x.shape)
    y = rng.normal(size=(n, 2))
    design = np.hstack([x.astype(np.float64), np.ones((n, 1))])
    expected = y - proportion * design @ np.linalg.lstsq(design, y, rcond=1e-6)[0]
    np.testing.assert_allclose(metrics.neutralize(y, x, proportion), expected, atol=1e-9)


def test_neutralize_constant_column_is_nan():
    x = np.arange(10.0)[:, None]
    out = metrics.neutralize(np.column_stack([np.ones(10), np.arange(10.0) ** 2]), x)
    assert np.isnan(out[:, 0]).all() and np.isfinite(out[:, 1]).all()


@SETTINGS
@given(st.integers(2, 60), st.integers(0, 2**32 - 1))
def test_numerai_corr_and_contribution_one_era(n, seed):
    rng = np.random.default_rng(seed)
    p = np.round(rng.random(n), 1)
    m = np.round(rng.random(n), 1)
    t = rng.choice([0.0, 0.25, 0.5, 0.75, 1.0], n)
    gp = _plain_pow15(scipy_ndtri(_plain_rank(p)))
    tp = _plain_pow15(t - t.mean())
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = np.corrcoef(gp, tp)[0, 1] if gp.std() > 0 and tp.std() > 0 else np.nan
    np.testing.assert_allclose(metrics.numerai_corr(p, t), [expected], atol=1e-12)
    g, gm = scipy_ndtri(_plain_rank(p)), scipy_ndtri(_plain_rank(m))
    with np.errstate(invalid="ignore", divide="ignore"):
        perp = g - gm * (g @ gm) / (gm @ gm)
    t4 = 4 * t - (4 * t).mean()
    np.testing.assert_allclose(
        metrics.correlation_contribution(p, m, t), [t4 @ perp / n], atol=1e-12
    )


@SETTINGS
@given(st.integers(3, 60), st.integers(1, 6), st.integers(0, 2**32 - 1))
def test_feature_exposure(n, k, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 5, (n, k)).astype(np.int8)
    p = rng.random(n)
    corrs = [abs(np.corrcoef(p, x[:, j])[0, 1]) for j in range(k) if x[:, j].std() > 0]
    expected = max(corrs) if corrs else np.nan
    np.testing.assert_allclose(metrics.feature_exposure(p, x), [expected], atol=1e-12)


@SETTINGS
@given(st.lists(st.one_of(st.floats(-1, 1), st.just(float("nan"))), min_size=1, max_size=50))
def test_summarize(values):
    x = np.array(values)
    ok = x[~np.isnan(x)]
    out = metrics.summarize(x)
    assert out["nan_eras"] == int(np.isnan(x).sum()) and out["eras"] == len(x)
    if ok.size == 0:
        assert np.isnan(out["mean"])
        return
    cum = np.cumsum(ok)
    assert out["mean"] == pytest.approx(ok.mean(), abs=1e-12)
    assert out["std"] == pytest.approx(ok.std(), abs=1e-12)
    assert out["max_drawdown"] == pytest.approx(np.max(np.maximum.accumulate(cum) - cum), abs=1e-12)
    if ok.std() > 0:
        assert out["sharpe"] == pytest.approx(ok.mean() / ok.std(), rel=1e-9)


@SETTINGS
@given(
    st.lists(
        st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, 1e-310])),
        max_size=300,
    )
)
def test_sort_any_floats(values):
    """The spread sort orders any doubles (subnormal, huge, infinite; NaN left out)."""
    x = np.array(values, dtype=np.float64)
    order = kernels.valid_order(x)
    assert sorted(order.tolist()) == np.flatnonzero(~np.isnan(x)).tolist()
    assert np.array_equal(np.sort(x[order]), x[order])  # (np.diff would warn on inf - inf)
