"""Target transforms: the training label after ``model.target_transform``.

Both follow the reference framework's definitions (see the docstrings); rows whose
benchmark value is missing get a NaN label and are left out of training.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from nx.engine.train.config import TrainConfig

if TYPE_CHECKING:
    from nx.engine.train.inputs import TrainingData


def residual_to_benchmark(
    y: np.ndarray,
    x: np.ndarray,
    groups: np.ndarray | None,
    *,
    fit_intercept: bool = True,
    proportion: float = 1.0,
) -> np.ndarray:
    """Per group (era), over finite rows: ``yc - alpha * xc`` with ``alpha = xc.yc / xc.xc``.

    ``yc``/``xc`` are centred when ``fit_intercept``; alpha is 0 when ``xc.xc`` is 0.
    Rows where y or x is not finite get NaN. With ``proportion < 1`` the result is
    ``(1 - p) * y + p * residual``.
    """
    y = np.asarray(y, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    codes = np.zeros(len(y), dtype=np.int64) if groups is None else np.asarray(groups, np.int64)
    ok = np.isfinite(y) & np.isfinite(x)
    out = np.full(len(y), np.nan)
    if not ok.any():
        return out
    g, yy, xx = codes[ok], y[ok], x[ok]
    n_groups = int(g.max()) + 1
    if fit_intercept:
        counts = np.bincount(g, minlength=n_groups).astype(np.float64)
        safe = np.maximum(counts, 1)
        yy = yy - (np.bincount(g, yy, n_groups) / safe)[g]
        xx = xx - (np.bincount(g, xx, n_groups) / safe)[g]
    sxx = np.bincount(g, xx * xx, n_groups)
    sxy = np.bincount(g, xx * yy, n_groups)
    alpha = np.divide(sxy, sxx, out=np.zeros(n_groups), where=sxx != 0)
    out[ok] = yy - alpha[g] * xx
    if proportion != 1.0:
        out = (1.0 - proportion) * y + proportion * out
    return out


def subtract_benchmark(
    y: np.ndarray, x: np.ndarray, groups: np.ndarray, *, scale: float = 0.07
) -> np.ndarray:
    """``y - scale * z`` with z the per-group z-score of x (ddof 0; z = 0 where std is 0)."""
    y = np.asarray(y, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    codes = np.asarray(groups, dtype=np.int64)
    ok = np.isfinite(x)
    z = np.full(len(x), np.nan)
    if ok.any():
        g, xx = codes[ok], x[ok]
        n_groups = int(g.max()) + 1
        counts = np.maximum(np.bincount(g, minlength=n_groups), 1).astype(np.float64)
        mean = np.bincount(g, xx, n_groups) / counts
        var = np.bincount(g, xx * xx, n_groups) / counts - mean * mean
        std = np.sqrt(np.maximum(var, 0.0))
        diff = xx - mean[g]
        z[ok] = np.divide(diff, std[g], out=np.zeros_like(diff), where=std[g] != 0)
    return y - float(scale) * z


def transformed_target(config: TrainConfig, data: TrainingData, rows: np.ndarray) -> np.ndarray:
    """The training labels of ``rows`` after ``model.target_transform`` (if any)."""
    y = data.target[rows]
    transform = config.model.target_transform
    if transform is None:
        return y
    x = data.transform_benchmark[rows]
    groups = data.era_codes[rows]
    if transform.type == "residual_to_benchmark":
        return residual_to_benchmark(
            y,
            x,
            groups if transform.per_era else None,
            fit_intercept=transform.fit_intercept,
            proportion=transform.proportion,
        )
    return subtract_benchmark(y, x, groups, scale=transform.scale)
