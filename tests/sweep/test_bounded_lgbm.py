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

from nx.engine.train import lgbm_data
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


def _reference(train_params, rounds, dense, target, names, **layout):
    return lightgbm.train(
        {**train_params, **layout},
        lightgbm.Dataset(dense, label=target, feature_name=names),
        num_boost_round=rounds,
    )


@pytest.mark.parametrize("nan_missing", [False, True])
def test_memory_saving_paths_train_lightgbms_model_in_both_histogram_layouts(
    monkeypatch, nan_missing
):
    """Column ranges binned one at a time and joined, rows pushed and predicted in small
    batches, column-wise histograms, the booster reloaded without its training state:
    the trees and predictions are still those of ``lightgbm.train`` on the float
    matrix, with LightGBM's automatic layout and with each layout forced."""
    monkeypatch.setattr(lgbm_data, "PARTS_MIN_VALUES", 0)
    monkeypatch.setattr(lgbm_data, "COLUMN_PARTS", 5)
    monkeypatch.setattr(lgbm_data, "BATCH_BYTES", 1)  # MIN_BATCH_ROWS rows a batch
    monkeypatch.setattr(lgbm_data, "MIN_BATCH_ROWS", 1_000)
    joined = []
    add = lightgbm.Dataset.add_features_from
    monkeypatch.setattr(
        lightgbm.Dataset,
        "add_features_from",
        lambda self, other: joined.append(other.num_feature()) or add(self, other),
    )
    features, era_codes, target = numerai_like()
    n_eras = int(era_codes.max()) + 1
    mask = _nan_mask(features, era_codes, n_eras) if nan_missing else None
    names = [f"feature_{j}" for j in range(features.shape[1])]
    source = MatrixSource(features, names, era_codes=era_codes, nan_mask=mask)
    rows, val = np.flatnonzero(era_codes < 30), np.flatnonzero(era_codes >= 30)

    model = ModelSpec("LGBMRegressor", dict(PARAMS)).fit(
        SimpleNamespace(source=source), rows, target[rows]
    )
    assert joined == [5, 5, 5, 4]  # four ranges joined to the first: the path is taken
    assert "[force_col_wise: 1]" in model.booster.model_to_string()
    assert model.booster.num_trees() == PARAMS["n_estimators"]

    dense = features.astype(np.float64)
    if mask is not None:
        dense[mask[era_codes]] = np.nan
    train_params, rounds = lightgbm_train_params(PARAMS)
    ours = model.booster.dump_model()
    predictions = model.predict_source(source, val)
    for layout in ({}, {"force_row_wise": True}, {"force_col_wise": True}):
        reference = _reference(train_params, rounds, dense[rows], target[rows], names, **layout)
        theirs = reference.dump_model()
        assert ours["tree_info"] == theirs["tree_info"], layout
        assert ours["feature_infos"] == theirs["feature_infos"], layout
        assert np.array_equal(predictions, reference.predict(dense[val])), layout


def test_column_ranges_keep_the_sparse_columns_in_one_range():
    """LightGBM groups the columns sparser than 40% non-default together, in column
    order: no range may cut through their span (else each range would group its own)."""
    n = 24
    splittable = np.ones(n, dtype=bool)
    second_round = np.zeros(n, dtype=bool)
    facts = (None, None, None, splittable, None, None, second_round)
    assert lgbm_data.column_ranges(n, facts) == [(i, i + 3) for i in range(0, n, 3)]
    second_round[[4, 11]] = True
    second_round[20] = True
    splittable[20] = False  # dropped by LightGBM's pre-filter: not grouped
    assert lgbm_data.column_ranges(n, facts) == [
        (0, 3),
        (3, 12),
        (12, 15),
        (15, 18),
        (18, 21),
        (21, 24),
    ]


def test_an_explicit_histogram_layout_is_kept():
    assert lgbm_data.histogram_params({"num_leaves": 7}) == {
        "num_leaves": 7,
        "force_col_wise": True,
    }
    for given in ({"force_row_wise": True}, {"force_col_wise": False}, {"force_row_wise": False}):
        assert lgbm_data.histogram_params(given) == given
    features, era_codes, target = numerai_like(n_eras=10, rows_per_era=100, n_features=12)
    source = MatrixSource(features, [f"f{j}" for j in range(12)])
    rows = np.arange(len(target))
    params = {**PARAMS, "n_estimators": 2, "force_row_wise": True}
    model = ModelSpec("LGBMRegressor", params).fit(SimpleNamespace(source=source), rows, target)
    text = model.booster.model_to_string()
    assert "[force_row_wise: 1]" in text and "[force_col_wise: 0]" in text
