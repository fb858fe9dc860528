"""The synthetic targets carry a Numerai-like signal: weak out of sample, overfit in sample."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from scipy.special import ndtri
from scipy.stats import rankdata

from nx.engine.data.build import build_data


def _per_era_corr(eras: np.ndarray, prediction: np.ndarray, target: np.ndarray) -> np.ndarray:
    """numerai_corr per era: gaussianized ranks ** 1.5 against centered target ** 1.5."""
    scores = []
    for era in np.unique(eras):
        mask = eras == era
        g = ndtri((rankdata(prediction[mask]) - 0.5) / mask.sum())
        t = target[mask] - target[mask].mean()
        scores.append(
            np.corrcoef(np.sign(g) * np.abs(g) ** 1.5, np.sign(t) * np.abs(t) ** 1.5)[0, 1]
        )
    return np.array(scores)


def test_lightgbm_reaches_a_numerai_like_corr(tmp_path):
    lightgbm = pytest.importorskip("lightgbm")
    # the default demo dataset (scale small, seed 42): train eras vs validation eras
    result = build_data(tmp_path, synthetic=True, scale="small", skip_downsample=True)
    small = json.loads((result.version_dir / "features.json").read_text())["feature_sets"]["small"]
    full = pl.read_parquet(result.full, columns=["era", *small, "target"])
    eras = full["era"].to_numpy()
    split = pl.read_parquet(result.version_dir / "validation.parquet", columns=["era"])["era"].min()
    train, test = eras < split, eras >= split
    X, y = full.select(small).to_numpy(), full["target"].to_numpy()
    model = lightgbm.LGBMRegressor(
        n_estimators=300,
        learning_rate=0.03,
        max_depth=5,
        num_leaves=31,
        colsample_bytree=0.1,
        n_jobs=2,
        verbose=-1,
    ).fit(X[train], y[train])
    in_sample = _per_era_corr(eras[train], model.predict(X[train]), y[train]).mean()
    out_of_sample = _per_era_corr(eras[test], model.predict(X[test]), y[test]).mean()
    assert 0.005 < out_of_sample < 0.04
    assert in_sample > out_of_sample + 0.05
