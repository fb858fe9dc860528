"""Reference-format configs through the real ``nx train`` against the reference's rules.

The oracle is ``tests/train/reference.py:reference_oof``, a plain pandas + LightGBM
loop written from the reference framework's rules (x_groups normalized, X filtered
to the features by the LightGBM wrapper, ``default_rng`` row sampling, ...).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.train.conftest import BENCHMARK, write_config
from tests.train.reference import reference_oof

PARAMS = {
    "n_estimators": 15,
    "learning_rate": 0.1,
    "num_leaves": 7,
    "min_data_in_leaf": 20,
    "colsample_bytree": 0.5,
    "deterministic": True,
    "force_col_wise": True,
    "n_jobs": 1,
    "random_state": 1337,
    "verbose": -1,
}
REFERENCE_KEYS_OF_A_FOLD = ("fold", "train_eras", "val_eras", "train_rows", "val_rows")


def reference_config(**changes) -> dict:
    """The shape of the reference's shipped small baseline, on the tiny synthetic data."""
    config = {
        "data": {
            "data_version": "v5.2",
            "embargo_eras": 4,
            "era_col": "era",
            "feature_set": "medium",
            "target_col": "target",
            "full_data_path": "v5.2/full.parquet",
            "benchmark_data_path": "v5.2/full_benchmark_models.parquet",
        },
        "model": {
            "x_groups": ["features", "era", "benchmark_models"],
            "params": dict(PARAMS),
            "type": "LGBMRegressor",
        },
        "output": {"results_name": "small_lgbm_ender20_baseline"},
        "preprocessing": {"missing_value": 2.0, "nan_missing_all_twos": False},
        "training": {
            "cv": {"embargo": 4, "enabled": True, "min_train_size": 0, "mode": "expanding"}
        },
    }
    for section, values in changes.items():
        config[section] = {**config.get(section, {}), **values}
    return config


def run_nx(nx, config: dict, data_dir: Path, tmp_path: Path, name: str = "ref"):
    path = write_config(tmp_path / f"{name}.py", f"CONFIG = {config!r}\n")
    out = tmp_path / "out"
    result = nx("train", path, "--data-dir", data_dir, "--output-dir", out, "--json")
    assert result.exit_code == 0, result.stderr
    results_name = config.get("output", {}).get("results_name", name)
    results = json.loads((out / "results" / f"{results_name}.json").read_text())
    predictions = pd.read_parquet(out / results["output"]["predictions_file"])
    return predictions, results, result


def assert_same_as_reference(
    predictions: pd.DataFrame, reference: pd.DataFrame, target_dtype=np.float32
) -> None:
    """Same rows, order, values and dtypes (the target keeps the data file's dtype)."""
    assert list(predictions.columns) == ["id", "era", "target", "prediction", "cv_fold"]
    assert len(predictions) == len(reference)
    # same rows in the same order (fold by fold, data order within a fold)
    np.testing.assert_array_equal(predictions["id"].to_numpy(), reference["id"].to_numpy())
    np.testing.assert_array_equal(predictions["era"].to_numpy(), reference["era"].to_numpy())
    np.testing.assert_array_equal(predictions["cv_fold"], reference["cv_fold"])
    np.testing.assert_array_equal(predictions["target"], reference["target"])
    for column in ("target", "prediction", "cv_fold"):
        assert predictions[column].dtype == reference[column].dtype, column
    assert predictions["target"].dtype == target_dtype and predictions["cv_fold"].dtype == np.int64
    diff = np.abs(predictions["prediction"].to_numpy() - reference["prediction"].to_numpy())
    assert diff.max() <= 1e-9
    assert predictions["prediction"].std() > 0  # a real model, not a constant


def assert_cv_facts(results: dict, facts: dict) -> None:
    assert results["cv"]["folds_used"] == facts["folds_used"]
    ours = [{k: f[k] for k in REFERENCE_KEYS_OF_A_FOLD} for f in results["cv"]["folds"]]
    assert ours == facts["folds"]


def test_reference_config_with_all_x_groups_matches_reference(nx, tiny_data_dir, tmp_path):
    """x_groups features/era/benchmark_models: LightGBM still trains on the features only."""
    config = reference_config()
    predictions, results, _ = run_nx(nx, config, tiny_data_dir, tmp_path)
    reference, facts = reference_oof(tiny_data_dir, config)
    assert_same_as_reference(predictions, reference)
    assert_cv_facts(results, facts)
    # the reference's results keys, paths as the config wrote them
    assert results["model"]["x_groups"] == ["features", "era", "benchmark_models"]
    assert (
        results["model"]["input_columns"]
        == json.loads((tiny_data_dir / "v5.2" / "features.json").read_text())["feature_sets"][
            "medium"
        ]
    )
    assert results["data"]["full_data_path"] == "v5.2/full.parquet"
    assert results["benchmark"]["file"] == "v5.2/full_benchmark_models.parquet"
    assert (
        results["output"]["predictions_file"] == "predictions/small_lgbm_ender20_baseline.parquet"
    )
    assert Path(results["output"]["output_dir"]).is_absolute()
    for section in ("corr", "bmc", "bmc_last_200_eras"):
        assert {"mean", "std", "sharpe", "max_drawdown", "consistency"} <= set(
            results["metrics"][section]
        )
    assert "avg_corr_with_benchmark" in results["metrics"]["bmc"]
    assert results["training"]["data_sampling"] == {"max_train_samples": None, "sample_seed": None}


def test_max_train_samples_draws_the_reference_rows(nx, tiny_data_dir, tmp_path):
    """default_rng(seed).choice rows; data_needed (with aliases) stands in for x_groups."""
    config = reference_config(training={"max_train_samples": 1000, "sample_seed": 7})
    del config["model"]["x_groups"]
    config["model"]["data_needed"] = ["benchmarks", "y"]
    predictions, results, _ = run_nx(nx, config, tiny_data_dir, tmp_path)
    reference, facts = reference_oof(tiny_data_dir, config)
    assert_same_as_reference(predictions, reference)
    assert_cv_facts(results, facts)
    folds = results["cv"]["folds"]
    assert all(f["train_rows"] == min(1000, f["train_rows_available"]) for f in folds)
    assert sum(f["train_rows_available"] > 1000 for f in folds) >= 2  # sampling happened
    assert results["training"]["data_sampling"] == {"max_train_samples": 1000, "sample_seed": 7}
    assert results["model"]["data_needed"] == ["benchmarks", "y"]


@pytest.mark.parametrize("proportion", [1.0, 0.5])
def test_residual_transform_matches_reference(nx, small_data_dir, tmp_path, proportion):
    """The transform sees the sampled fold's X (benchmark and era columns), as in the reference.

    ``small_data_dir`` keeps ``id`` as a plain column of its benchmark file (the layout
    nx wrote before), so this also runs on that layout.
    """
    transform = {
        "type": "residual_to_benchmark",
        "benchmark_col": BENCHMARK,
        "proportion": proportion,
    }
    config = reference_config(
        data={"feature_set": "medium", "full_data_path": None, "benchmark_data_path": None},
        model={"target_transform": transform},
        training={"max_train_samples": 900},
    )
    config["data"] = {k: v for k, v in config["data"].items() if v is not None}
    config["training"]["cv"].update(embargo=3, n_splits=4)
    predictions, results, _ = run_nx(nx, config, small_data_dir, tmp_path)
    reference, facts = reference_oof(small_data_dir, config)
    assert_same_as_reference(predictions, reference, target_dtype=np.float64)  # stored so there
    assert_cv_facts(results, facts)
    assert results["model"]["target_transform"] == transform
