"""The bounded-memory LightGBM dataset trains the model LightGBM's defaults train.

nx builds the dataset from the int8 matrix in row batches with a small bin sample
(when provably equivalent); the reference is ``lightgbm.train`` on the float matrix
with LightGBM's own sampling. Trees and predictions must be identical.
"""

from __future__ import annotations

from types import SimpleNamespace

import lightgbm
import numpy as np
import pytest

from nx.engine.train.lgbm_data import SMALL_SAMPLE_ROWS, small_bin_sample
from nx.engine.train.models import MatrixSource, ModelSpec, lightgbm_train_params

PARAMS = {
    "n_estimators": 25,
    "learning_rate": 0.1,
    "max_depth": 4,
    "num_leaves": 15,
    "colsample_bytree": 0.5,
    "min_data_in_leaf": 50,
    "n_jobs": 1,
    "random_state": 7,
    "verbose": -1,
}


def numerai_like(n_eras=40, rows_per_era=300, n_features=24, seed=3):
    """Equal-frequency 0..4 features (int8), some all-2 in some eras, one with a rare
    value, and a target that depends on it (so trees split on it)."""
    rng = np.random.default_rng(seed)
    n = n_eras * rows_per_era
    latent = rng.standard_normal((n, 4))
    raw = latent[:, rng.integers(0, 4, n_features)] + rng.standard_normal((n, n_features))
    ranks = raw.argsort(axis=0).argsort(axis=0)
    features = (ranks * 5 // n).astype(np.int8)
    era_codes = np.repeat(np.arange(n_eras, dtype=np.int32), rows_per_era)
    for era, col in [(3, 0), (10, 5), (11, 5), (30, 7)]:
        features[era_codes == era, col] = 2
    # columns added late (all 2 before era 28, as Numerai's newer features): mostly one
    # value, so LightGBM's bundling step groups them; the small sample must agree
    features[era_codes < 28, -4:] = 2
    # a column whose top value is rare (a few rows): a too-small bin sample would miss it
    rare = features[:, 1] == 4
    features[rare, 1] = 3
    features[rng.choice(n, 9, replace=False), 1] = 4
    signal = latent[:, 0] + 3 * (features[:, 1] == 4)
    target = np.clip(np.round((signal + rng.standard_normal(n)) / 2 + 2), 0, 4) / 4
    return features, era_codes, target


def _nan_mask(features, era_codes, n_eras):
    mask = np.zeros((n_eras, features.shape[1]), dtype=bool)
    for era in range(n_eras):
        mask[era] = (features[era_codes == era] == 2).all(axis=0)
    return mask


@pytest.mark.parametrize("nan_missing", [False, True])
def test_identical_trees_and_predictions_to_lightgbm_defaults(nan_missing):
    features, era_codes, target = numerai_like()
    n_eras = int(era_codes.max()) + 1
    mask = _nan_mask(features, era_codes, n_eras) if nan_missing else None
    names = [f"feature_{j}" for j in range(features.shape[1])]
    source = MatrixSource(features, names, era_codes=era_codes, nan_mask=mask)
    rows = np.flatnonzero(era_codes < 30)  # a fold's train rows
    val = np.flatnonzero(era_codes >= 30)

    train_params, rounds = lightgbm_train_params(PARAMS)
    # the small sample is taken here (the test would be vacuous otherwise)
    dataset_probe = lightgbm.Dataset(np.zeros((len(rows), 1)), params=train_params)
    positions = dataset_probe._create_sample_indices(total_nrow=len(rows))
    small = small_bin_sample(source, rows, positions, train_params)
    assert small is not None and SMALL_SAMPLE_ROWS <= len(small) < len(positions)

    # LightGBM reads only the training data's model matrix
    data = SimpleNamespace(source=source)
    model = ModelSpec("LGBMRegressor", dict(PARAMS)).fit(data, rows, target[rows])

    dense = features.astype(np.float64)
    if mask is not None:
        dense[mask[era_codes]] = np.nan
    reference = lightgbm.train(
        train_params,
        lightgbm.Dataset(dense[rows], label=target[rows], feature_name=names),
        num_boost_round=rounds,
    )
    ours, theirs = model.booster.dump_model(), reference.dump_model()
    assert ours["tree_info"] == theirs["tree_info"]
    assert ours["feature_infos"] == theirs["feature_infos"]
    assert np.array_equal(model.predict_source(source, val), reference.predict(dense[val]))


def test_float_columns_and_categorical_params_keep_lightgbm_sampling():
    features, era_codes, target = numerai_like(n_eras=20)
    names = [f"f{j}" for j in range(features.shape[1])]
    rows = np.arange(len(target))
    positions = np.arange(len(rows), dtype=np.int32)
    extra = MatrixSource(
        features, names, extra=target[:, None].astype(np.float32), extra_names=["x"]
    )
    assert small_bin_sample(extra, rows, positions, {}) is None
    plain = MatrixSource(features, names)
    assert small_bin_sample(plain, rows, positions, {"categorical_feature": [0]}) is None
    assert small_bin_sample(plain, rows, positions, {}) is not None
