"""Numerai's scores, per era, exactly as numerai-tools 0.7.2 computes them, fast.

Vocabulary (numerai-tools'), per era:

- ``tie_kept_rank(x) = (average rank - 0.5) / n`` over the n non-NaN values;
- ``gaussian(r) = ndtri(r)`` (inverse normal CDF), no re-standardisation;
- ``pow15(x) = sign(x) |x|^1.5``;
- ``numerai_corr(p, t)``: t centered over its non-NaN rows, rows with p and t both
  present kept, Pearson(pow15(gaussian(tie_kept_rank(p))), pow15(t));
- ``correlation_contribution(p, m, t)`` (BMC with a benchmark m, MMC with the
  meta model m): over rows with p, m, t present, p and m gaussianized ranks,
  ``p_perp = p - m (p.m)/(m.m)``, t times 4 when in [0, 1], centered, score
  ``t . p_perp / n``;
- ``neutralize(y, X, proportion) = y - proportion [X, 1] lstsq([X, 1], y)``;
- ``feature_neutral_corr(p, X, t)`` (FNC) = numerai_corr of the variance-normalized
  neutralize(gaussian(tie_kept_rank(p)), X) (ranked over rows with p present);
- ``feature_exposure``: max over features of |Pearson(p, feature)|.

NaN policy: NaN (or null) is a missing value; an era in which a score keeps fewer
than ``1 - max_nan_fraction`` of its rows raises :class:`~nx.engine.errors.ScoringError`
naming the era; a constant
prediction or a one-row era gives NaN for that era. Eras whose target is entirely
missing (not resolved yet) are not scored; eras where the benchmark or meta model is
entirely missing are left out of BMC/MMC.

Infinite values (+inf, -inf) are errors, not missing values: every function below
raises :class:`~nx.engine.errors.ScoringError` naming the column, how many infinite
values it holds and the first era with one, before computing anything (numerai-tools
would rank an infinite prediction as the largest value and turn an infinite target into
NaN or -1 correlations, numbers that look like results).

The summary of a per-era series (eras sorted) is its mean, std (ddof 0), sharpe
(mean/std) and max drawdown (largest fall of the cumulative sum from its running
maximum), NaN eras skipped and counted.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import polars as pl

from nx.engine.errors import ScoringError
from nx.engine.metrics import kernels
from nx.engine.metrics.neutralization import neutralize_block
from nx.engine.progress import NO_PROGRESS, Progress

DEFAULT_MAX_NAN_FRACTION = 0.2
LAST_ERAS = 200
_EXACT_FIT = 1e-9
SUMMARY_KEYS = ("mean", "std", "sharpe", "max_drawdown")

__all__ = [
    "DEFAULT_MAX_NAN_FRACTION",
    "EraLayout",
    "correlation_contribution",
    "feature_exposure",
    "feature_neutral_corr",
    "gaussianize",
    "neutralize",
    "numerai_corr",
    "score",
    "summarize",
    "tie_kept_rank",
]


# --------------------------------------------------------------------------- layout


class EraLayout:
    """Rows grouped by era once: ``order`` sorts rows by era (stably), era ``e`` owns
    sorted rows ``offsets[e]:offsets[e+1]``, ``eras`` are the era labels in order.

    Eras sort numerically when every label is a number ("0001" < "0575"), else as text.
    """

    def __init__(self, eras: Any) -> None:
        labels = pl.Series("era", eras) if not isinstance(eras, pl.Series) else eras
        if labels.null_count():
            raise ScoringError(
                f"era column '{labels.name}' has {labels.null_count()} missing values; "
                "give every row an era"
            )
        if isinstance(labels.dtype, pl.Enum):
            # Enum eras (as nx score reads them): remap the physical codes
            categories = pl.Series(labels.dtype.categories, dtype=pl.String)
            physical = labels.to_physical().to_numpy()
            used = np.flatnonzero(np.bincount(physical, minlength=len(categories)))
            self.eras = _sorted_eras(categories.gather(used))
            position = np.zeros(len(categories), dtype=np.int64)
            position[used] = _era_codes(categories.gather(used), self.eras)
            codes = position[physical]
        else:
            self.eras = _sorted_eras(labels.unique())
            codes = _era_codes(labels, self.eras)
        counts = np.bincount(codes, minlength=len(self.eras))
        self.offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.identity = bool(np.all(codes[1:] >= codes[:-1])) if len(codes) else True
        self.order = (
            None
            if self.identity
            else kernels.counting_order(codes.astype(np.int64, copy=False), len(self.eras))
        )
        self.n_rows = len(codes)

    def take(self, values: np.ndarray) -> np.ndarray:
        """Rows of ``values`` (first axis) in era order."""
        return values if self.order is None else values[self.order]

    def take_columns(self, values: np.ndarray) -> np.ndarray:
        """Columns (second axis) of a ``(k, n_rows)`` array in era order."""
        return values if self.order is None else values[:, self.order]

    def restore(self, values: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`take_columns`: back to the caller's row order."""
        if self.order is None:
            return values
        out = np.empty_like(values)
        out[:, self.order] = values
        return out

    def subset(self, keep_eras: np.ndarray) -> tuple[EraLayout, np.ndarray]:
        """A layout of only the eras in ``keep_eras`` (bool per era) and the sorted
        row positions that it keeps."""
        sizes = np.diff(self.offsets)
        rows = np.repeat(keep_eras, sizes)
        sub = object.__new__(EraLayout)
        sub.eras = self.eras.filter(pl.Series(keep_eras))
        sub.offsets = np.concatenate([[0], np.cumsum(sizes[keep_eras])]).astype(np.int64)
        sub.identity, sub.order, sub.n_rows = True, None, int(rows.sum())
        return sub, np.flatnonzero(rows)


def _era_codes(labels: pl.Series, eras: pl.Series) -> np.ndarray:
    """Position of each row's era in ``eras`` (a hash lookup, no sort), as small
    unsigned (String eras) or 64-bit integers."""
    if labels.dtype == pl.String:
        return labels.cast(pl.Enum(eras.to_list())).to_physical().to_numpy()
    lookup = pl.DataFrame({"era": eras, "code": np.arange(len(eras))})
    codes = labels.to_frame("era").join(lookup, on="era", how="left", maintain_order="left")
    return codes["code"].to_numpy().astype(np.int64)


def _sorted_eras(unique: pl.Series) -> pl.Series:
    if unique.dtype == pl.String:
        numeric = unique.str.to_integer(strict=False)
        if numeric.null_count() == 0:
            return unique.gather(numeric.arg_sort())
    return unique.sort()


def _as_layout(eras: Any) -> EraLayout:
    if isinstance(eras, EraLayout):
        return eras
    return EraLayout(eras)


def _matrix(values: Any, n_rows: int | None = None) -> np.ndarray:
    """A ``(columns, rows)`` float64 matrix from a 1-D or ``(rows, columns)`` input."""
    if isinstance(values, pl.DataFrame):
        array = values.to_numpy().astype(np.float64)
    elif isinstance(values, pl.Series):
        array = values.to_numpy().astype(np.float64)
    else:
        array = np.asarray(values, dtype=np.float64)
    array = array[:, None] if array.ndim == 1 else array
    if n_rows is not None and array.shape[0] != n_rows:
        raise ScoringError(f"got {array.shape[0]} rows where {n_rows} were expected")
    return np.ascontiguousarray(array.T)


def _is_float32(values: Any) -> bool:
    """Whether ``values`` (one column) is float32: numerai-tools then does numerai_corr's
    target arithmetic in float32 (:func:`nx.engine.metrics.kernels.numerai_target_float32`)."""
    if isinstance(values, pl.DataFrame):
        return values.width == 1 and values.dtypes[0] == pl.Float32
    if isinstance(values, pl.Series):
        return values.dtype == pl.Float32
    return getattr(values, "dtype", None) == np.float32


def _one_era(n: int) -> np.ndarray:
    return np.zeros(n, dtype=np.int64)


def _reject_infinite(
    values: np.ndarray, layout: EraLayout | None, names: Sequence[str], what: str
) -> None:
    """Raise for the first column of ``values`` (``(columns, rows)``, rows in era
    order) holding +-inf: the message names it, its count of infinite values and the
    first era with one."""
    if values.dtype.kind != "f" or values.size == 0:
        return
    infinite = np.isinf(values)
    if not infinite.any():
        return
    c = int(np.flatnonzero(infinite.any(axis=1))[0])
    rows = np.flatnonzero(infinite[c])
    where = ""
    if layout is not None and len(layout.offsets) > 2:
        era = int(np.searchsorted(layout.offsets, rows[0], side="right")) - 1
        where = f" (first in era {layout.eras[era]})"
    raise ScoringError(
        f"{what} column '{names[c]}' has {len(rows)} infinite value"
        f"{'s' if len(rows) != 1 else ''}{where}; nx scores finite numbers only (NaN counts "
        "as missing): replace them with finite values or NaN"
    )


def _column_names(values: Any, n: int, what: str) -> list[str]:
    """Names for messages: a frame's columns, a series' name, else positions."""
    columns = getattr(values, "columns", None)
    if columns is not None and len(columns) == n:
        return [str(c) for c in columns]
    name = getattr(values, "name", None)
    if n == 1:
        return [str(name) if name is not None else what]
    return [str(i) for i in range(n)]


# ------------------------------------------------------------------ low-level API


def tie_kept_rank(values: Any, eras: Any = None) -> np.ndarray:
    """Per era (or over all rows when ``eras`` is None): (average rank - 0.5) / n.

    ``values``: 1-D or (rows, columns); NaN stays NaN and is not counted in n.
    """
    x = _matrix(values)
    layout = _as_layout(_one_era(x.shape[1]) if eras is None else eras)
    x = layout.take_columns(x)
    _reject_infinite(x, layout, _column_names(values, x.shape[0], "values"), "values")
    out = layout.restore(kernels.tie_kept_rank_eras(x, layout.offsets))
    return _shape_like(out, values)


def gaussianize(values: Any, eras: Any = None, power: bool = False) -> np.ndarray:
    """ndtri(tie_kept_rank(values)) per era, then sign(x)|x|^1.5 when ``power``."""
    x = _matrix(values)
    layout = _as_layout(_one_era(x.shape[1]) if eras is None else eras)
    x = layout.take_columns(x)
    _reject_infinite(x, layout, _column_names(values, x.shape[0], "values"), "values")
    out = kernels.gauss_rank_eras(x, layout.offsets, power)
    return _shape_like(layout.restore(out), values)


def _shape_like(out_cols: np.ndarray, values: Any) -> np.ndarray:
    ndim = np.ndim(values) if not isinstance(values, pl.DataFrame) else 2
    return out_cols[0] if ndim == 1 else out_cols.T


def _check_kept(
    kept: np.ndarray,
    sizes: np.ndarray,
    max_nan_fraction: float,
    eras: pl.Series,
    columns: Sequence[str],
    what: str,
    skip: np.ndarray | None = None,
) -> None:
    """Raise for the first era where a score dropped more rows than allowed.

    Same test as numerai-tools: ``kept / n >= 1 - max_nan_fraction``.
    """
    threshold = 1 - max_nan_fraction
    ratio = kept / np.maximum(sizes, 1)[:, None]
    bad = (ratio < threshold) & (sizes[:, None] > 0)
    if skip is not None:
        bad &= ~skip
    if bad.any():
        e, c = np.argwhere(bad)[0]
        dropped = int(sizes[e] - kept[e, c])
        raise ScoringError(
            f"era {eras[int(e)]}: {what} of column '{columns[c]}' drops {dropped} of "
            f"{int(sizes[e])} rows with missing values ({dropped / sizes[e]:.0%}, limit "
            f"{max_nan_fraction:.0%}); fill or remove them, or raise the limit "
            "(--max-nan-fraction; max_nan_fraction in Python)"
        )


def numerai_corr(
    predictions: Any,
    target: Any,
    eras: Any = None,
    max_nan_fraction: float = DEFAULT_MAX_NAN_FRACTION,
) -> np.ndarray:
    """Per-era numerai_corr: returns ``(eras, columns)`` (or ``(eras,)`` for 1-D input).

    Per era: t <- t - mean(t over non-NaN); keep rows where p and t are present;
    p <- pow15(gaussian(tie_kept_rank(p))), t <- pow15(t); Pearson(p, t).
    """
    p = _matrix(predictions)
    t = _matrix(target, p.shape[1])[0]
    layout = _as_layout(_one_era(p.shape[1]) if eras is None else eras)
    p, t = layout.take_columns(p), layout.take(t)
    names = _column_names(predictions, p.shape[0], "predictions")
    _reject_infinite(p, layout, names, "prediction")
    _reject_infinite(t[None], layout, _column_names(target, 1, "target"), "target")
    corr, kept = kernels.numerai_corr_eras(p, t, layout.offsets, _is_float32(target))
    _check_kept(kept, np.diff(layout.offsets), max_nan_fraction, layout.eras, names, "corr")
    return corr[:, 0] if np.ndim(predictions) == 1 else corr


def correlation_contribution(
    predictions: Any,
    reference: Any,
    target: Any,
    eras: Any = None,
    max_nan_fraction: float = DEFAULT_MAX_NAN_FRACTION,
) -> np.ndarray:
    """Per-era correlation contribution (BMC against a benchmark, MMC against the
    meta model): ``(eras, columns)`` or ``(eras,)``.

    Per era, over rows where p, m (reference) and t are present:
    p, m <- gaussian(tie_kept_rank(.)); p_perp = p - m (p.m)/(m.m);
    t <- 4 t if every t is in [0, 1]; t <- t - mean(t); score = t . p_perp / n.
    """
    p = _matrix(predictions)
    m = _matrix(reference, p.shape[1])
    t = _matrix(target, p.shape[1])[0]
    layout = _as_layout(_one_era(p.shape[1]) if eras is None else eras)
    p, m, t = layout.take_columns(p), layout.take_columns(m), layout.take(t)
    names = _column_names(predictions, p.shape[0], "predictions")
    _reject_infinite(p, layout, names, "prediction")
    _reject_infinite(m, layout, _column_names(reference, 1, "reference"), "reference")
    _reject_infinite(t[None], layout, _column_names(target, 1, "target"), "target")
    _, contrib, _, kept = kernels.score_eras(p, t, m, layout.offsets, np.zeros(1, dtype=np.bool_))
    sizes = np.diff(layout.offsets)
    _check_kept(kept[:, :, 1], sizes, max_nan_fraction, layout.eras, names, "contribution")
    return contrib[:, 0, 0] if np.ndim(predictions) == 1 else contrib[:, :, 0]


def neutralize(
    values: Any, neutralizers: Any, proportion: float = 1.0, eras: Any = None
) -> np.ndarray:
    """Per era: ``y - proportion * [X, 1] beta``, beta = lstsq([X, 1], y, rcond=1e-6).

    ``values`` 1-D or (rows, columns), no NaN; ``neutralizers`` (rows, k), no NaN.
    A column with zero variance in an era gives NaN there (as numerai-tools).
    """
    y = _matrix(values).T
    x = np.asarray(
        neutralizers.to_numpy() if isinstance(neutralizers, pl.DataFrame) else neutralizers
    )
    x = x[:, None] if x.ndim == 1 else x
    if np.isnan(y).any() or (x.dtype.kind == "f" and np.isnan(x).any()):
        raise ScoringError("neutralize: values and neutralizers must not contain NaN")
    layout = _as_layout(_one_era(y.shape[0]) if eras is None else eras)
    ys, xs = layout.take(y), layout.take(x)
    _reject_infinite(ys.T, layout, _column_names(values, ys.shape[1], "values"), "values")
    _reject_infinite(xs.T, layout, _column_names(neutralizers, xs.shape[1], "x"), "neutralizer")
    out = np.empty_like(ys)
    for e in range(len(layout.offsets) - 1):
        lo, hi = layout.offsets[e], layout.offsets[e + 1]
        out[lo:hi] = neutralize_block(ys[lo:hi], xs[lo:hi], proportion)
    out = layout.restore(out.T).T
    return out[:, 0] if np.ndim(values) == 1 else out


def _fnc_inputs(
    preds: np.ndarray, features: np.ndarray, layout: EraLayout, progress: Progress
) -> tuple[np.ndarray, np.ndarray]:
    """Variance-normalized neutral predictions (columns, rows) in era order, and a
    per-(era, column) flag for degenerate eras (constant after neutralizing).

    Eras are solved on a thread per core, each with single-threaded BLAS (nested
    BLAS threads thrash on small machines).
    """
    gauss = kernels.gauss_rank_eras(preds, layout.offsets, False)
    n_eras = len(layout.offsets) - 1
    neutral = np.full(preds.shape, np.nan)
    degenerate = np.zeros((n_eras, preds.shape[0]), dtype=bool)

    def one_era(e: int) -> None:
        lo, hi = layout.offsets[e], layout.offsets[e + 1]
        present = ~np.isnan(preds[:, lo:hi])
        # columns sharing the same present rows share one Gram matrix
        groups: dict[bytes, list[int]] = {}
        for c in range(preds.shape[0]):
            groups.setdefault(np.packbits(present[c]).tobytes(), []).append(c)
        for cols in groups.values():
            kept = np.flatnonzero(present[cols[0]])
            if len(kept) == 0:
                continue
            rows = slice(lo, hi) if len(kept) == hi - lo else kept + lo
            x = features[rows]
            if x.dtype.kind == "f" and np.isnan(x).any():
                raise ScoringError(
                    f"era {layout.eras[e]}: features have missing values; FNC and "
                    "feature exposure need complete features"
                )
            inputs = gauss[cols][:, rows].T
            resid = neutralize_block(inputs, x)
            std = resid.std(axis=0)
            # An exact fit (e.g. fewer rows than features) leaves only rounding
            # noise, whose ranks would be arbitrary: call that era NaN.
            std[std <= _EXACT_FIT * inputs.std(axis=0)] = np.nan
            with np.errstate(invalid="ignore", divide="ignore"):
                resid = resid / std
            for j, c in enumerate(cols):
                if not np.isfinite(resid[:, j]).all():
                    degenerate[e, c] = True
                else:
                    neutral[c, rows] = resid[:, j]

    with progress.task("Neutralizing against features", total=n_eras) as task:
        with _single_threaded_blas() as workers:
            if workers <= 1:
                for e in range(n_eras):
                    one_era(e)
                    task.advance()
            else:
                from concurrent.futures import ThreadPoolExecutor

                with ThreadPoolExecutor(workers) as pool:
                    for _ in pool.map(one_era, range(n_eras)):
                        task.advance()
    return neutral, degenerate


@contextmanager
def _single_threaded_blas() -> Iterator[int]:
    """Limit BLAS to one thread and yield how many era workers to run."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield max(1, min(os.cpu_count() or 1, 8))


def feature_neutral_corr(
    predictions: Any,
    features: Any,
    target: Any,
    eras: Any = None,
    max_nan_fraction: float = DEFAULT_MAX_NAN_FRACTION,
) -> np.ndarray:
    """Per-era FNC: numerai_corr(variance_normalize(neutralize(gaussian(
    tie_kept_rank(p)), features)), t); ``(eras, columns)`` or ``(eras,)``.

    Ranking and neutralizing use every row with a prediction (NaN targets included);
    only the final numerai_corr drops rows without a target. An era whose neutral
    prediction is constant gives NaN.
    """
    p = _matrix(predictions)
    t = _matrix(target, p.shape[1])[0]
    x = np.asarray(features.to_numpy() if isinstance(features, pl.DataFrame) else features)
    layout = _as_layout(_one_era(p.shape[1]) if eras is None else eras)
    p, x, t = layout.take_columns(p), layout.take(x), layout.take(t)
    names = _column_names(predictions, p.shape[0], "predictions")
    _reject_infinite(p, layout, names, "prediction")
    _reject_infinite(t[None], layout, _column_names(target, 1, "target"), "target")
    _reject_infinite(x.T, layout, _column_names(features, x.shape[1], "feature"), "feature")
    neutral, degenerate = _fnc_inputs(p, x, layout, NO_PROGRESS)
    fnc, kept = kernels.numerai_corr_eras(neutral, t, layout.offsets, _is_float32(target))
    sizes = np.diff(layout.offsets)
    _check_kept(kept, sizes, max_nan_fraction, layout.eras, names, "fnc", degenerate)
    return fnc[:, 0] if np.ndim(predictions) == 1 else fnc


def feature_exposure(predictions: Any, features: Any, eras: Any = None) -> np.ndarray:
    """Per era: max over features of |Pearson(p, feature)| over rows with p present
    (features constant in the era are skipped); ``(eras, columns)`` or ``(eras,)``."""
    p = _matrix(predictions)
    x = np.asarray(features.to_numpy() if isinstance(features, pl.DataFrame) else features)
    layout = _as_layout(_one_era(p.shape[1]) if eras is None else eras)
    p, x = layout.take_columns(p), np.ascontiguousarray(layout.take(x))
    _reject_infinite(p, layout, _column_names(predictions, p.shape[0], "predictions"), "prediction")
    _reject_infinite(x.T, layout, _column_names(features, x.shape[1], "feature"), "feature")
    out = kernels.exposure_eras(p, x, layout.offsets)
    return out[:, 0] if np.ndim(predictions) == 1 else out


def summarize(per_era: Any) -> dict[str, float]:
    """Summary of a per-era series in era order: mean, std (ddof 0), sharpe = mean/std
    (NaN when std is 0), max_drawdown = max(running max of cumsum - cumsum), NaN eras
    skipped; ``nan_eras`` counts them and ``eras`` counts all."""
    values = np.asarray(per_era, dtype=np.float64)
    _reject_infinite(values.reshape(1, -1), None, ["per_era"], "per-era score")
    mean, std, sharpe, drawdown, n_nan = kernels.summary_stats(values)
    return {
        "mean": float(mean),
        "std": float(std),
        "sharpe": float(sharpe),
        "max_drawdown": float(drawdown),
        "eras": int(values.shape[0]),
        "nan_eras": int(n_nan),
    }


# ------------------------------------------------------------------ score()


def _column_matrix(frame: pl.DataFrame, cols: Sequence[str], what: str) -> np.ndarray:
    for col in cols:
        if col not in frame.columns:
            raise ScoringError(
                f"{what} column '{col}' not found; available: {_preview(frame.columns)}"
            )
        dtype = frame.schema[col]
        if not (dtype.is_numeric() or dtype == pl.Null):
            raise ScoringError(
                f"{what} column '{col}' is not numeric ({dtype}); pass numeric values"
            )
    if not cols:
        return np.empty((0, frame.height))
    # column by column: a float64 column without nulls is read without a copy
    return np.stack([frame[c].cast(pl.Float64).to_numpy() for c in cols])


def _preview(columns: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(columns[:limit])
    return shown + (f", ... ({len(columns)} in all)" if len(columns) > limit else "")


def _to_polars(frame: Any) -> pl.DataFrame:
    if isinstance(frame, pl.DataFrame):
        return frame
    if isinstance(frame, pl.LazyFrame):
        return frame.collect()
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is optional
        pd = None
    if pd is not None and isinstance(frame, pd.DataFrame):
        if frame.index.name is not None and frame.index.name not in frame.columns:
            frame = frame.reset_index()
        return pl.from_pandas(frame)
    raise ScoringError(f"score() needs a polars or pandas DataFrame, got {type(frame).__name__}")


def score(
    frame: Any,
    pred_cols: list[str],
    target_col: str = "target",
    era_col: str = "era",
    benchmark_col: str | None = None,
    meta_col: str | None = None,
    feature_cols: list[str] | None = None,
    max_nan_fraction: float = DEFAULT_MAX_NAN_FRACTION,
    progress: Progress = NO_PROGRESS,
) -> tuple[pl.DataFrame, dict[str, dict[str, Any]]]:
    """Score prediction columns per era; returns ``(per_era, summary)``.

    ``per_era`` (polars, tidy): ``era``, ``column`` then ``corr`` and, when their
    inputs are given, ``bmc``, ``corr_with_benchmark``, ``mmc``, ``fnc``,
    ``max_feature_exposure``. ``summary``: ``{pred_col: {"corr": {...}, "bmc": {...,
    "avg_corr_with_benchmark"}, "bmc_last_200_eras": {...}, "mmc": {...},
    "fnc": {...}, "feature_exposure": {"mean_max", "max_max"}}}``, each score
    section holding mean, std, sharpe, max_drawdown, eras and nan_eras.

    Example::

        per_era, summary = score(df, ["prediction"], benchmark_col="v52_lgbm_ender20")
        summary["prediction"]["corr"]["sharpe"]
    """
    if not 0 <= max_nan_fraction < 1:
        raise ScoringError(f"max_nan_fraction must be in [0, 1), got {max_nan_fraction}")
    if not pred_cols:
        raise ScoringError("no prediction column to score; name at least one")
    df = _to_polars(frame)
    if era_col not in df.columns:
        raise ScoringError(f"era column '{era_col}' not found; available: {_preview(df.columns)}")
    target = _column_matrix(df, [target_col], "target")[0]
    preds = _column_matrix(df, pred_cols, "prediction")
    refs_cols = [c for c in (benchmark_col, meta_col) if c is not None]
    refs = _column_matrix(df, refs_cols, "benchmark/meta model")

    layout = EraLayout(df[era_col])
    source_rows = layout.order  # None: the rows are in era order already
    if source_rows is not None:
        target, preds, refs = target[source_rows], preds[:, source_rows], refs[:, source_rows]
    if layout.n_rows == 0:
        raise ScoringError("no rows to score")
    _reject_infinite(target[None], layout, [target_col], "target")
    _reject_infinite(preds, layout, pred_cols, "prediction")
    for r, ref_col in enumerate(refs_cols):
        what = "benchmark" if ref_col == benchmark_col else "meta model"
        _reject_infinite(refs[r : r + 1], layout, [ref_col], what)
    # Eras with no target at all are not resolved yet: nothing to score there.
    has_target = _eras_with_values(target, layout.offsets)
    if not has_target.any():
        raise ScoringError(f"no era has any '{target_col}' value; nothing to score")
    if not has_target.all():
        layout, rows = layout.subset(has_target)
        source_rows, target, preds, refs = (
            rows if source_rows is None else source_rows[rows],
            target[rows],
            preds[:, rows],
            refs[:, rows],
        )
    sizes = np.diff(layout.offsets)
    eras = layout.eras

    with progress.task("Scoring", total=None):
        corr_with_ref = np.array([c == benchmark_col for c in refs_cols], dtype=np.bool_)
        float32 = np.array([df.schema[c] == pl.Float32 for c in [target_col, *refs_cols]])
        corr, contrib, cwr, kept = kernels.score_eras(
            preds, target, refs, layout.offsets, corr_with_ref, float32
        )
    _check_kept(kept[:, :, 0], sizes, max_nan_fraction, eras, pred_cols, "corr")
    columns: dict[str, np.ndarray] = {"corr": corr}
    in_section: dict[str, np.ndarray] = {}  # metric -> per era: does the era count
    n_refs = len(refs_cols)
    for r, ref_col in enumerate(refs_cols):
        has_ref = _eras_with_values(refs[r], layout.offsets)
        skip = np.repeat(~has_ref[:, None], len(pred_cols), axis=1)
        metric = "bmc" if ref_col == benchmark_col else "mmc"
        _check_kept(kept[:, :, 1 + r], sizes, max_nan_fraction, eras, pred_cols, metric, skip)
        columns[metric] = np.where(has_ref[:, None], contrib[:, :, r], np.nan)
        in_section[metric] = has_ref
        if corr_with_ref[r]:
            cwr_kept = kept[:, :, 1 + n_refs + r]
            what = "corr with benchmark"
            _check_kept(cwr_kept, sizes, max_nan_fraction, eras, pred_cols, what, skip)
            columns["corr_with_benchmark"] = np.where(has_ref[:, None], cwr[:, :, r], np.nan)
    if feature_cols:
        features = _feature_matrix(df, feature_cols)
        features = features if source_rows is None else features[source_rows]
        _reject_infinite(features.T, layout, feature_cols, "feature")
        neutral, degenerate = _fnc_inputs(preds, features, layout, progress)
        fnc, fnc_kept = kernels.numerai_corr_eras(neutral, target, layout.offsets, float32[0])
        _check_kept(fnc_kept, sizes, max_nan_fraction, eras, pred_cols, "fnc", degenerate)
        columns["fnc"] = fnc
        columns["max_feature_exposure"] = kernels.exposure_eras(
            preds, np.ascontiguousarray(features), layout.offsets
        )
    return _assemble(eras, pred_cols, columns, in_section)


def _eras_with_values(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Per era: does ``values`` (rows in era order) hold any non-NaN value there."""
    missing = np.isnan(values)
    if not missing.any():  # the usual case: one quick pass
        return np.ones(len(offsets) - 1, dtype=bool)
    return np.add.reduceat(~missing, offsets[:-1]) > 0 if len(values) else missing[:0]


def _feature_matrix(df: pl.DataFrame, feature_cols: Sequence[str]) -> np.ndarray:
    """Features as one (rows, k) array, keeping a shared integer dtype (int8 stays int8)."""
    missing = [c for c in feature_cols if c not in df.columns]
    if missing:
        raise ScoringError(
            f"feature column '{missing[0]}' not found ({len(missing)} missing); "
            "score with a feature set that the data has"
        )
    schema = df.select(feature_cols).schema
    dtypes = set(schema.values())
    if not all(d.is_numeric() for d in dtypes):
        bad = next(c for c, d in schema.items() if not d.is_numeric())
        raise ScoringError(f"feature column '{bad}' is not numeric ({schema[bad]})")
    if len(dtypes) == 1 and next(iter(dtypes)).is_integer():
        array = df.select(feature_cols).to_numpy()
    else:
        array = df.select(pl.col(c).cast(pl.Float64) for c in feature_cols).to_numpy()
    if array.dtype.kind == "f" and np.isnan(array).any():
        raise ScoringError(
            "features have missing values; FNC and feature exposure need complete features"
        )
    return np.ascontiguousarray(array)


def _assemble(
    eras: pl.Series,
    pred_cols: Sequence[str],
    columns: dict[str, np.ndarray],
    in_section: dict[str, np.ndarray],
) -> tuple[pl.DataFrame, dict[str, dict[str, Any]]]:
    n_eras, n_cols = len(eras), len(pred_cols)
    per_era = pl.DataFrame(
        {
            "era": eras.gather(np.repeat(np.arange(n_eras), n_cols)),
            "column": pl.Series(list(pred_cols) * n_eras, dtype=pl.String),
            **{name: values.reshape(-1) for name, values in columns.items()},
        }
    )
    summary: dict[str, dict[str, Any]] = {}
    for c, col in enumerate(pred_cols):
        out: dict[str, Any] = {"corr": summarize(columns["corr"][:, c])}
        for metric in ("bmc", "mmc"):
            if metric not in columns:
                continue
            eras_in = in_section[metric]
            series = columns[metric][eras_in, c]
            out[metric] = summarize(series)
            if metric == "bmc":
                with_bench = columns["corr_with_benchmark"][eras_in, c]
                out["bmc"]["avg_corr_with_benchmark"] = _nanmean(with_bench)
                last = summarize(series[-LAST_ERAS:])
                last["avg_corr_with_benchmark"] = _nanmean(with_bench[-LAST_ERAS:])
                out["bmc_last_200_eras"] = last
        if "fnc" in columns:
            out["fnc"] = summarize(columns["fnc"][:, c])
            exposure = columns["max_feature_exposure"][:, c]
            finite = exposure[np.isfinite(exposure)]
            out["feature_exposure"] = {
                "mean_max": float(finite.mean()) if finite.size else float("nan"),
                "max_max": float(finite.max()) if finite.size else float("nan"),
                "eras": int(exposure.size),
                "nan_eras": int(exposure.size - finite.size),
            }
        summary[col] = out
    return per_era, summary


def _nanmean(values: np.ndarray) -> float:
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else float("nan")
