"""The training pipeline against plain pandas/numpy versions of the same steps."""

from __future__ import annotations

import tomllib

import numpy as np
import pandas as pd
import polars as pl
import pytest

from nx.engine.errors import ConfigError, DataError
from nx.engine.progress import Progress
from nx.engine.train import (
    folds_for,
    load_training_data,
    oof_predictions,
    residual_to_benchmark,
    subtract_benchmark,
)
from nx.engine.train.config import parse_config
from nx.engine.train.models import ModelSpec
from tests.train.conftest import BENCHMARK, FAST_LGBM, write_dataset
from tests.train.reference import pandas_oof


def config_from(text: str, name: str = "exp.toml"):
    return parse_config(tomllib.loads(text), name)


def nx_oof(config, data_dir):
    data = load_training_data(config, data_dir)
    spec = ModelSpec(config.model.type, dict(config.model.params))
    frame, _, facts = oof_predictions(config, data, folds_for(config, data.eras), spec)
    return frame, facts


@pytest.mark.parametrize(
    ("max_train_samples", "bin_sample"), [(None, None), (700, None), (None, 300)]
)
def test_oof_equals_handwritten_pandas_lightgbm_loop(small_data_dir, max_train_samples, bin_sample):
    extra = f"max_train_samples = {max_train_samples}\n" if max_train_samples else ""
    params = FAST_LGBM
    if bin_sample:  # LightGBM bins from a row sample: nx must draw the same rows
        params = params.replace(
            "[model.params]", f"[model.params]\nbin_construct_sample_cnt = {bin_sample}"
        )
    config = config_from(
        params
        + '[data]\nfeature_set = "medium"\nembargo_eras = 3\n'
        + f"[training]\n{extra}[training.cv]\nn_splits = 4\n"
    )
    ours, facts = nx_oof(config, small_data_dir)
    features = [f"feature_{i:03d}" for i in range(12)]
    theirs = pandas_oof(
        small_data_dir, features, config.model.params, 4, 3, max_train_samples=max_train_samples
    )
    assert ours["id"].n_unique() == ours.height == len(theirs)
    merged = ours.to_pandas().merge(theirs, on="id", suffixes=("", "_ref"))
    assert len(merged) == len(theirs)
    assert (merged["era"] == merged["era_ref"]).all()
    assert (merged["cv_fold"] == merged["cv_fold_ref"]).all()
    np.testing.assert_allclose(merged["prediction"], merged["prediction_ref"], rtol=0, atol=1e-9)
    assert [f["fold"] for f in facts] == [1, 2, 3]
    if max_train_samples:  # the reference reports the count after sampling
        assert all(
            f["train_rows"] == min(700, f["train_rows_available"]) == f["train_rows_fitted"]
            for f in facts
        )


def test_features_stay_int8_and_only_needed_columns_are_read(small_data_dir):
    config = config_from(FAST_LGBM)
    data = load_training_data(config, small_data_dir)
    assert data.source.features.dtype == np.int8
    assert data.source.feature_names == [f"feature_{i:03d}" for i in range(6)]  # "small" set
    assert data.source.extra is None


def test_nan_missing_all_twos(tmp_path):
    root = write_dataset(tmp_path, n_eras=12, rows_per_era=30, n_features=6, all_twos=(4, 2))
    config = config_from(FAST_LGBM + "[preprocessing]\nnan_missing_all_twos = true\n")
    data = load_training_data(config, root)
    era4 = np.flatnonzero(data.era_codes == 4)
    block = data.source.take(era4)
    assert np.isnan(block[:, 2]).all() and not np.isnan(np.delete(block, 2, axis=1)).any()
    others = data.source.take(np.flatnonzero(data.era_codes != 4))
    assert not np.isnan(others).any()
    # the mask is exactly "every value of the feature in the era equals missing_value"
    frame = pd.read_parquet(root / "v5.2" / "full.parquet")
    cols = data.source.feature_names
    expected = frame[cols].eq(2).groupby(frame["era"]).transform("all").to_numpy()
    order = frame["era"].map({e: i for i, e in enumerate(data.eras)}).to_numpy()
    assert (np.isnan(data.source.take(np.arange(len(frame)))) == expected).all()
    assert (order == data.era_codes).all()


def pandas_residual(y, x, eras, fit_intercept=True, proportion=1.0):
    frame = pd.DataFrame({"y": y, "x": x, "era": eras})
    out = pd.Series(np.nan, index=frame.index)
    for _, group in frame.dropna().groupby("era"):
        yc, xc = group["y"], group["x"]
        if fit_intercept:
            yc, xc = yc - yc.mean(), xc - xc.mean()
        denom = (xc * xc).sum()
        alpha = (xc * yc).sum() / denom if denom != 0 else 0.0
        out[group.index] = yc - alpha * xc
    return (1 - proportion) * frame["y"] + proportion * out if proportion < 1 else out


@pytest.mark.parametrize(("fit_intercept", "proportion"), [(True, 1.0), (False, 1.0), (True, 0.5)])
def test_residual_to_benchmark_matches_pandas(fit_intercept, proportion):
    rng = np.random.default_rng(3)
    n = 400
    eras = rng.integers(0, 5, n)
    x = rng.random(n)
    y = 2 * x + rng.normal(size=n)
    x[[3, 17]] = np.nan
    got = residual_to_benchmark(y, x, eras, fit_intercept=fit_intercept, proportion=proportion)
    want = pandas_residual(y, x, eras, fit_intercept, proportion).to_numpy()
    np.testing.assert_allclose(got, want, atol=1e-12)
    # residuals are orthogonal to the benchmark within each era
    if proportion == 1.0 and fit_intercept:
        for era in range(5):
            ok = (eras == era) & np.isfinite(x)
            assert abs(np.dot(got[ok], x[ok] - x[ok].mean())) < 1e-9


def test_subtract_benchmark_matches_pandas():
    rng = np.random.default_rng(4)
    n = 300
    eras = rng.integers(0, 4, n)
    x = rng.random(n)
    x[eras == 3] = 0.5  # constant era: z = 0
    y = rng.random(n)
    frame = pd.DataFrame({"x": x, "era": eras})
    grouped = frame.groupby("era")["x"]
    std = grouped.transform(lambda s: s.std(ddof=0))
    z = ((frame["x"] - grouped.transform("mean")) / std).where(std != 0, 0.0)
    np.testing.assert_allclose(subtract_benchmark(y, x, eras, scale=0.07), y - 0.07 * z, atol=1e-12)


def test_target_transform_trains_on_residual_labels(small_data_dir):
    config = config_from(
        FAST_LGBM + '[model.target_transform]\ntype = "residual_to_benchmark"\n'
        "[training.cv]\nn_splits = 3\n"
    )
    frame, _ = nx_oof(config, small_data_dir)
    plain, _ = nx_oof(config_from(FAST_LGBM + "[training.cv]\nn_splits = 3\n"), small_data_dir)
    assert frame.height == plain.height
    assert not np.allclose(frame["prediction"].to_numpy(), plain["prediction"].to_numpy())


def test_input_groups_join_benchmarks_baseline_and_era(small_data_dir, tmp_path):
    baseline = pl.read_parquet(small_data_dir / "v5.2" / "full.parquet").select(
        "id", "era", pl.col("target").alias("prediction")
    )
    baseline.sample(fraction=1.0, shuffle=True, seed=1).write_parquet(tmp_path / "base.parquet")
    config = config_from(
        FAST_LGBM.replace(
            "[model.params]",
            'x_groups = ["features", "baseline"]\n'
            'input_groups = ["features", "benchmark_models", "baseline", "era"]\n'
            f'baseline = {{ name = "base", predictions_path = "{tmp_path / "base.parquet"}" }}\n'
            "[model.params]",
        )
    )
    data = load_training_data(config, small_data_dir)
    assert data.source.extra_names == [BENCHMARK, "v52_lgbm_teager2b20", "base", "era"]
    # the reference's X columns: the listed groups, then era and benchmark_models
    features = [f"feature_{i:03d}" for i in range(6)]
    assert data.x_columns == [*features, "base", "era", BENCHMARK, "v52_lgbm_teager2b20"]
    full = pl.read_parquet(small_data_dir / "v5.2" / "full.parquet")
    bench = pl.read_parquet(small_data_dir / "v5.2" / "full_benchmark_models.parquet")
    expected = full.select("id").join(bench, on="id", how="left", maintain_order="left")
    np.testing.assert_allclose(data.source.extra[:, 0], expected[BENCHMARK].to_numpy(), rtol=1e-6)
    np.testing.assert_allclose(data.source.extra[:, 2], full["target"].to_numpy(), rtol=1e-6)
    np.testing.assert_array_equal(data.source.extra[:, 3], full["era"].cast(int).to_numpy())
    frame, _ = nx_oof(config, small_data_dir)
    assert frame["prediction"].is_finite().all()


def test_benchmark_era_disagreement_is_a_data_error(tmp_path):
    root = write_dataset(tmp_path, n_eras=10, rows_per_era=20, n_features=6)
    path = root / "v5.2" / "full_benchmark_models.parquet"
    bench = pl.read_parquet(path)
    bench.with_columns(
        pl.when(pl.int_range(pl.len()) == 5).then(pl.lit("0099")).otherwise("era").alias("era")
    ).write_parquet(path)
    config = config_from(FAST_LGBM)
    with pytest.raises(DataError, match="another era"):
        load_training_data(config, root)


class Recorder(Progress):
    def __init__(self):
        self.warnings = []

    def warn(self, message):
        self.warnings.append(message)


def test_gpu_device_falls_back_to_cpu_with_a_warning(small_data_dir):
    config = config_from(
        FAST_LGBM.replace("[model.params]", '[model.params]\ndevice_type = "cuda"')
    )
    data = load_training_data(config, small_data_dir)
    recorder = Recorder()
    spec = ModelSpec(config.model.type, dict(config.model.params), recorder)
    frame, _, _ = oof_predictions(config, data, folds_for(config, data.eras), spec)
    assert len(recorder.warnings) == 1 and "CPU" in recorder.warnings[0]
    assert spec.params["device_type"] == "cpu"
    cpu = config_from(FAST_LGBM)
    reference, _ = nx_oof(cpu, small_data_dir)
    np.testing.assert_allclose(frame["prediction"].to_numpy(), reference["prediction"].to_numpy())


def test_ridge_matches_numpy_least_squares(small_data_dir):
    config = config_from(
        '[model]\ntype = "Ridge"\n[model.params]\nalpha = 10.0\n[training.cv]\nn_splits = 2\n'
        "[data]\nembargo_eras = 0\n"
    )
    data = load_training_data(config, small_data_dir)
    frame, _, _ = oof_predictions(
        config, data, folds_for(config, data.eras), ModelSpec("Ridge", {"alpha": 10.0})
    )
    fold = folds_for(config, data.eras)[0]
    train = np.isin(np.array(data.eras)[data.era_codes], fold.train_eras)
    x = data.source.features[train].astype(float)
    y = data.target[train]
    xm, ym = x.mean(axis=0), y.mean()
    coef = np.linalg.solve((x - xm).T @ (x - xm) + 10.0 * np.eye(x.shape[1]), (x - xm).T @ (y - ym))
    val = np.isin(np.array(data.eras)[data.era_codes], fold.val_eras)
    want = (data.source.features[val].astype(float) - xm) @ coef + ym
    np.testing.assert_allclose(np.sort(frame["prediction"].to_numpy()), np.sort(want), atol=1e-9)


class MeanModel:
    """A minimal fit/predict estimator importable as tests.train.test_training:MeanModel."""

    def __init__(self, shift=0.0):
        self.shift = shift

    def fit(self, X, y):
        self.mean_ = float(np.mean(y)) + self.shift
        self.n_columns_ = X.shape[1]
        return self

    def predict(self, X):
        assert X.shape[1] == self.n_columns_
        return np.full(len(X), self.mean_)


def test_any_estimator_by_import_path(small_data_dir):
    config = config_from(
        '[model]\ntype = "tests.train.test_training:MeanModel"\n[model.params]\nshift = 1.0\n'
    )
    frame, _ = nx_oof(config, small_data_dir)
    assert (frame["prediction"] > 1.0).all()


def test_unknown_model_type_is_a_config_error():
    from nx.engine.train import check_config

    with pytest.raises(ConfigError, match="model.type"):
        check_config(config_from('[model]\ntype = "XGBoost"\n[model.params]\n'))
    with pytest.raises(ConfigError, match="cannot import"):
        check_config(config_from('[model]\ntype = "no_such_pkg.mod:Model"\n[model.params]\n'))


def test_oof_equals_pandas_loop_on_built_synthetic_data(tiny_data_dir):
    """Same parity on the data layer's built files (v5.2/full.parquet from build-data)."""
    import json

    config = config_from(FAST_LGBM + "[data]\nembargo_eras = 4\n[training.cv]\nn_splits = 5\n")
    ours, _ = nx_oof(config, tiny_data_dir)
    features = json.loads((tiny_data_dir / "v5.2" / "features.json").read_text())["feature_sets"][
        "small"
    ]
    theirs = pandas_oof(tiny_data_dir, features, config.model.params, 5, 4)
    merged = ours.to_pandas().merge(theirs, on="id", suffixes=("", "_ref"))
    assert len(merged) == len(theirs) == ours.height
    np.testing.assert_allclose(merged["prediction"], merged["prediction_ref"], rtol=0, atol=1e-9)


def test_model_on_benchmark_columns_only(small_data_dir):
    config = config_from(
        FAST_LGBM.replace("[model.params]", 'input_groups = ["benchmark_models"]\n[model.params]')
    )
    data = load_training_data(config, small_data_dir)
    assert data.source.columns == [BENCHMARK, "v52_lgbm_teager2b20"]
    frame, _ = nx_oof(config, small_data_dir)
    assert frame["prediction"].is_finite().all() and frame["prediction"].n_unique() > 1


def test_blocked_mode_predicts_every_era_once(small_data_dir):
    config = config_from(
        FAST_LGBM + '[data]\nembargo_eras = 2\n[training.cv]\nn_splits = 4\nmode = "blocked"\n'
    )
    frame, facts = nx_oof(config, small_data_dir)
    full = pl.read_parquet(small_data_dir / "v5.2" / "full.parquet")
    assert frame.height == full.height and frame["id"].n_unique() == full.height
    assert [f["fold"] for f in facts] == [0, 1, 2, 3]
    assert all(f["train_eras"] == 40 - 10 - 2 * (1 if f["fold"] in (0, 3) else 2) for f in facts)


def test_expanding_mode_leaves_fold_zero_eras_out(small_data_dir):
    config = config_from(FAST_LGBM + "[data]\nembargo_eras = 1\n[training.cv]\nn_splits = 4\n")
    frame, _ = nx_oof(config, small_data_dir)
    assert sorted(frame["era"].unique().to_list())[0] == "0011"
    assert frame["cv_fold"].min() == 1


def test_min_data_in_leaf_prefilters_features_as_lgbmregressor_does(tmp_path):
    """LightGBM drops features no split of min_data_in_leaf rows can use before it samples
    colsample_bytree; nx's streamed dataset must drop the same ones as a matrix does."""
    root = write_dataset(tmp_path, n_eras=24, rows_per_era=100, n_features=8, seed=3)
    path = root / "v5.2" / "full.parquet"
    full = pl.read_parquet(path)
    rare = (pl.int_range(pl.len()) % 50 == 0).cast(pl.Int8)  # 2% ones: no split of 150 rows
    full.with_columns(rare.alias("feature_007")).write_parquet(path)
    text = FAST_LGBM.replace("min_data_in_leaf = 20", "min_data_in_leaf = 150")
    text = text.replace("[model.params]", "[model.params]\ncolsample_bytree = 0.5")
    config = config_from(text + '[data]\nfeature_set = "medium"\nembargo_eras = 2\n')
    ours, _ = nx_oof(config, root)
    features = [f"feature_{i:03d}" for i in range(8)]
    theirs = pandas_oof(root, features, config.model.params, 5, 2)
    merged = ours.to_pandas().merge(theirs, on="id", suffixes=("", "_ref"))
    assert len(merged) == len(theirs) == ours.height
    np.testing.assert_allclose(merged["prediction"], merged["prediction_ref"], rtol=0, atol=1e-9)
