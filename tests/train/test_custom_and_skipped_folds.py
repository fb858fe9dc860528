"""Custom models get what the reference's wrappers get; folds without benchmark are skipped."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tests.conftest import assert_user_error
from tests.train.conftest import write_config

CUSTOM = """
[data]
feature_set = "small"
embargo_eras = 4

[training.cv]
n_splits = 5

[model]
type = "tests.train.custom_models:RecordingModel"
{extra}
[model.params]
record_path = "{record}"
slope = 0.01
"""


def train_custom(nx, data_dir, tmp_path, extra=""):
    tmp_path.mkdir(parents=True, exist_ok=True)
    record = tmp_path / "fits.jsonl"
    config = write_config(tmp_path / "custom.toml", CUSTOM.format(extra=extra, record=record))
    out = tmp_path / "out"
    result = nx("train", config, "--data-dir", data_dir, "--output-dir", out, "--json")
    assert result.exit_code == 0, result.stderr
    fits = [json.loads(line) for line in record.read_text().splitlines()]
    results = json.loads((out / "results" / "custom.json").read_text())
    predictions = pd.read_parquet(out / "predictions" / "custom.parquet")
    return fits, results, predictions


def expected_predictions(data_dir, features, results) -> pd.DataFrame:
    """mean(train y) + 0.01 * first feature, fold by fold, from the data file."""
    full = pd.read_parquet(data_dir / "v5.2" / "full.parquet")
    eras = sorted(full["era"].unique(), key=int)
    parts = []
    for fold in results["cv"]["folds"]:
        first, last = fold["train_era_range"]
        train = full[full["era"].isin(eras[eras.index(first) : eras.index(last) + 1])]
        vfirst, vlast = fold["val_era_range"]
        val = full[full["era"].isin(eras[eras.index(vfirst) : eras.index(vlast) + 1])]
        mean = float(np.mean(train["target"].to_numpy(dtype=np.float64)))
        parts.append(mean + 0.01 * val[features[0]].to_numpy(dtype=np.float64))
    return np.concatenate(parts)


def test_custom_model_gets_reference_dataframes(nx, tiny_data_dir, tmp_path):
    fits, results, predictions = train_custom(nx, tiny_data_dir, tmp_path)
    vdir = tiny_data_dir / "v5.2"
    features = json.loads((vdir / "features.json").read_text())["feature_sets"]["small"]
    bench_cols = [c for c in pd.read_parquet(vdir / "full_benchmark_models.parquet").columns]
    bench_cols.remove("era")
    assert len(fits) == results["cv"]["folds_used"] == 4
    for fit, fold in zip(fits, results["cv"]["folds"], strict=True):
        assert fit["kind"] == "DataFrame"
        # the reference's X: features, era, benchmark models (x_groups defaults)
        assert fit["columns"] == [*features, "era", *bench_cols]
        assert {fit["dtypes"][f] for f in features} == {"int8"}
        assert fit["dtypes"]["era"] == "str"
        assert {fit["dtypes"][c] for c in bench_cols} == {"float32"}
        assert fit["rows"] == fold["train_rows"]
        assert (fit["y_kind"], fit["y_name"], fit["y_dtype"]) == ("Series", "target", "float32")
        assert fit["y_index_matches"]
        assert fit["feature_cols"] == features  # constructor argument, as the reference's
    np.testing.assert_allclose(
        predictions["prediction"],
        expected_predictions(tiny_data_dir, features, results),
        atol=1e-12,
    )
    assert results["model"]["input_format"] == "pandas"


def test_custom_model_numpy_path_and_prediction_batches(nx, tiny_data_dir, tmp_path):
    fits, results, numpy_predictions = train_custom(
        nx, tiny_data_dir, tmp_path / "numpy", extra='input_format = "numpy"'
    )
    features = json.loads((tiny_data_dir / "v5.2" / "features.json").read_text())["feature_sets"][
        "small"
    ]
    assert [f["kind"] for f in fits] == ["ndarray"] * 4
    assert all(f["dtype"] == "float32" and f["shape"][1] == len(features) for f in fits)
    _, _, batched = train_custom(
        nx, tiny_data_dir, tmp_path / "batched", extra="prediction_batch_size = 7"
    )
    np.testing.assert_allclose(batched["prediction"], numpy_predictions["prediction"], atol=1e-9)


def transform_config(tmp_path, extra=""):
    return write_config(
        tmp_path / "transform.toml",
        """
[data]
feature_set = "small"
embargo_eras = 4
[training.cv]
n_splits = 5
[model]
type = "LGBMRegressor"
target_transform = "residual_to_benchmark"
[model.params]
n_estimators = 5
num_leaves = 4
min_data_in_leaf = 20
n_jobs = 1
verbose = -1
"""
        + extra,
    )


def test_fold_without_benchmark_values_is_skipped_with_a_warning(nx, tiny_data_dir, tmp_path):
    """Fold 1 trains on eras 0001-0007; the synthetic benchmark starts at era 0009."""
    out = tmp_path / "out"
    result = nx(
        "train", transform_config(tmp_path), "--data-dir", tiny_data_dir, "--output-dir", out
    )
    assert result.exit_code == 0, result.stderr
    assert "fold 1 skipped" in result.stderr and "v52_lgbm_ender20" in result.stderr
    results = json.loads((out / "results" / "transform.json").read_text())
    cv = results["cv"]
    assert cv["skipped_folds"] == [0, 1] and cv["folds_used"] == 3
    assert cv["skip_reasons"] == {
        "0": "no train eras",
        "1": "no benchmark values in train eras",
    }
    predictions = pd.read_parquet(out / "predictions" / "transform.parquet")
    assert sorted(predictions["cv_fold"].unique()) == [2, 3, 4]
    # fold 2 has benchmark values in only part of its train eras: rows without one
    # are left out of the fit, the count after sampling stays the reference's
    fold2 = cv["folds"][0]
    assert fold2["fold"] == 2 and 0 < fold2["train_rows_fitted"] < fold2["train_rows"]


def test_every_fold_without_benchmark_is_an_error(nx, tiny_data_dir, tmp_path):
    # two folds: fold 1 trains on eras 0001-0008 only, none of which has a benchmark
    config = transform_config(tmp_path).read_text().replace("n_splits = 5", "n_splits = 2")
    config = config.replace("embargo_eras = 4", "embargo_eras = 21")
    path = write_config(tmp_path / "all_skipped.toml", config)
    out = tmp_path / "out"
    result = nx("train", path, "--data-dir", tiny_data_dir, "--output-dir", out)
    assert result.exit_code == 2
    assert "every fold was skipped" in result.stderr
    assert not (out / "predictions").exists()


@pytest.mark.parametrize(
    "bad", ['input_groups = ["features", "baseline"]', 'input_groups = ["id"]']
)
def test_input_groups_errors(nx, tiny_data_dir, tmp_path, bad):
    path = (
        transform_config(tmp_path).read_text().replace("[model.params]", bad + "\n[model.params]")
    )
    result = nx("train", write_config(tmp_path / "bad.toml", path), "--data-dir", tiny_data_dir)
    assert_user_error(result, "model.input_groups")
