"""``nx train`` / ``nx demo`` through the real CLI: outputs, --json, and every config error."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tests.conftest import assert_user_error
from tests.train.conftest import FAST_LGBM, write_config


def no_outputs(folder: Path) -> bool:
    return not folder.exists() or not any(p.is_file() for p in folder.rglob("*"))


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        (FAST_LGBM + "[data]\nfeature_sett = 'small'\n", ["data.feature_sett", "unknown key"]),
        (FAST_LGBM + "[training.cv]\nn_splits = 'five'\n", ["training.cv.n_splits"]),
        (FAST_LGBM + "[training.cv]\nn_splits = 41\n", ["training.cv.n_splits", "40 eras"]),
        (
            FAST_LGBM + "[data]\nfeature_set = 'huge'\n",
            ["data.feature_set", "'huge'", "all, medium, small"],
        ),
        (
            FAST_LGBM + "[data]\ntarget_col = 'target_bob_20'\n",
            ["data.target_col", "target_aux_20"],
        ),
        ("[model]\ntype = 'LGBMRegressor'\n", ["model.params", "missing"]),
        ("[model]\ntype = 'Nope'\n[model.params]\n", ["model.type", "unknown model"]),
        (
            FAST_LGBM + "[data]\nbenchmark_model = 'v52_lgbm_ender20'\n"
            "[model.target_transform]\ntype = 'subtract_benchmark'\nbenchmark_col = 'zzz'\n",
            ["model.target_transform.benchmark_col", "zzz"],
        ),
        (FAST_LGBM + "[data]\nfull_data_path = 'v5.2/absent.parquet'\n", ["absent.parquet"]),
        (
            FAST_LGBM + "[data]\nbenchmark_model = 'v52_lgbm_nope'\n",
            ["data.benchmark_model", "v52_lgbm_teager2b20"],
        ),
        (
            FAST_LGBM.replace("n_estimators = 20", "n_estimators = 'many'"),
            ["model.params.n_estimators"],
        ),
        (FAST_LGBM.replace("num_leaves = 7", "num_leaves = -3"), ["model.params", "num_leaves"]),
        (
            "[model]\ntype = 'Ridge'\n[model.params]\nlambda = 1.0\n",
            ["model.params", "alpha and fit_intercept"],
        ),
    ],
)
def test_config_errors_are_one_line_and_leave_no_output(
    nx, small_data_dir, tmp_path, text, fragments
):
    config = write_config(tmp_path / "exp.toml", text)
    out = tmp_path / "out"
    result = nx("train", config, "--data-dir", small_data_dir, "--output-dir", out)
    assert_user_error(result, *fragments)
    if "absent" not in text:
        assert str(config) in result.stderr
    assert no_outputs(out)


def test_missing_config_file(nx, tmp_path):
    assert_user_error(nx("train", tmp_path / "nope.toml"), "nope.toml", "not found")


def test_duplicate_results_names(nx, small_data_dir, tmp_path):
    a = write_config(tmp_path / "a.toml", FAST_LGBM + "[output]\nresults_name = 'same'\n")
    b = write_config(tmp_path / "b.toml", FAST_LGBM + "[output]\nresults_name = 'same'\n")
    out = tmp_path / "out"
    result = nx("train", a, b, "--data-dir", small_data_dir, "--output-dir", out)
    assert_user_error(result, "b.toml", "output.results_name", "'same'")
    assert no_outputs(out)


def test_missing_data_dir_names_build_data(nx, tmp_path):
    config = write_config(tmp_path / "exp.toml", FAST_LGBM)
    result = nx("train", config, "--data-dir", tmp_path / "nodata")
    assert_user_error(result, "features.json", "nx build-data")


def test_train_writes_outputs_and_json(nx, small_data_dir, tmp_path):
    a = write_config(tmp_path / "a.toml", FAST_LGBM + "[training.cv]\nn_splits = 4\n")
    b = write_config(tmp_path / "b.toml", FAST_LGBM + "[training.cv]\nn_splits = 3\n")
    out = tmp_path / "exp"
    result = nx(
        "train", a, b, "--data-dir", small_data_dir, "--output-dir", out, "--final", "--json"
    )
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert [row["name"] for row in document["configs"]] == ["a", "b"]
    for name in ("a", "b"):
        predictions = pl.read_parquet(out / "predictions" / f"{name}.parquet")
        assert predictions.columns == ["id", "era", "target", "prediction", "cv_fold"]
        assert predictions["id"].n_unique() == predictions.height
        results = json.loads((out / "results" / f"{name}.json").read_text())
        assert set(results) >= {
            "model",
            "preprocessing",
            "data",
            "benchmark",
            "output",
            "metrics",
            "cv",
            "training",
        }
        assert set(results["metrics"]) == {"corr", "bmc", "bmc_last_200_eras"}
        assert results["data"]["oof_rows"] == predictions.height
        assert (out / "configs" / f"{name}.json").is_file()
        manifest = json.loads((out / "models" / name / "manifest.json").read_text())
        assert manifest["features"] == [f"feature_{i:03d}" for i in range(6)]
        assert (out / "models" / name / manifest["model_file"]).is_file()


def test_results_metrics_equal_metrics_engine_on_predictions_file(small_data_dir, tmp_path):
    from nx.engine import metrics
    from nx.engine.train import train_config
    from nx.engine.train.config import load_config

    config = load_config(
        write_config(tmp_path / "m.toml", FAST_LGBM + "[training.cv]\nn_splits = 4\n")
    )
    result = train_config(config, data_dir=small_data_dir, output_dir=tmp_path / "exp")
    results = json.loads(result.results_path.read_text())
    predictions = pl.read_parquet(result.predictions_path)
    per_era, summary = metrics.score(predictions, ["prediction"])
    corr = dict(results["metrics"]["corr"])
    # the reference's consistency: share of scored eras with a positive corr
    scored = per_era["corr"].drop_nans()
    assert corr.pop("consistency") == pytest.approx((scored > 0).mean(), abs=1e-12)
    assert corr == pytest.approx(summary["prediction"]["corr"], abs=1e-12)
    bench = pl.read_parquet(small_data_dir / "v5.2" / "full_benchmark_models.parquet")
    joined = predictions.join(bench.select("id", "v52_lgbm_ender20"), on="id", how="inner")
    _, summary = metrics.score(joined, ["prediction"], benchmark_col="v52_lgbm_ender20")
    for key in ("bmc", "bmc_last_200_eras"):
        section = {k: v for k, v in results["metrics"][key].items() if k != "consistency"}
        assert section == pytest.approx(summary["prediction"][key], abs=1e-12)


def test_final_artifact_predicts_like_a_model_trained_on_all_eras(small_data_dir, tmp_path):
    from nx.engine.train import load_training_data, train_config
    from nx.engine.train.config import load_config
    from nx.engine.train.models import load_artifact

    config = load_config(
        write_config(tmp_path / "f.toml", FAST_LGBM + "[training]\nfinal_fit = true\n")
    )
    result = train_config(config, data_dir=small_data_dir, output_dir=tmp_path / "exp")
    manifest, model = load_artifact(result.model_dir)
    assert manifest["target"] == "target" and manifest["data_version"] == "v5.2"
    assert manifest["nx_version"]
    data = load_training_data(config, small_data_dir)
    import lightgbm as lgb

    params = dict(config.model.params)
    x = data.source.take(np.arange(data.n_rows))
    reference = lgb.LGBMRegressor(**params).fit(x, data.target)
    np.testing.assert_allclose(model.predict(x), reference.predict(x), atol=1e-9)


def test_gpu_fallback_keeps_json_stdout_clean(nx, small_data_dir, tmp_path):
    text = FAST_LGBM.replace("[model.params]", '[model.params]\ndevice_type = "gpu"')
    config = write_config(tmp_path / "g.toml", text + "[training.cv]\nn_splits = 3\n")
    result = nx(
        "train", config, "--data-dir", small_data_dir, "--output-dir", tmp_path / "o", "--json"
    )
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)  # exactly one JSON document, nothing else
    assert document["configs"][0]["name"] == "g"
    assert "training on CPU instead" in result.stderr


def test_demo_smoke_shipped_baseline_on_small_synthetic(nx, tmp_path):
    """The reference smoke test: shipped baseline, --scale small data, 0.005 < corr mean < 0.04."""
    data_dir, out = tmp_path / "data", tmp_path / "demo"
    result = nx("demo", "--data-dir", data_dir, "--output-dir", out, "--json")
    assert result.exit_code == 0, result.stderr
    row = json.loads(result.stdout)["configs"][0]
    assert 0.005 < row["corr_mean"] < 0.04, row["metrics"]["corr"]
    assert row["bmc_mean"] is not None
    assert (data_dir / "v5.2" / "downsampled_full.parquet").is_file()
    for key in ("predictions", "results", "config"):
        assert Path(row[key]).is_file()


def test_human_output_is_a_table_and_paths_on_stderr(nx, small_data_dir, tmp_path):
    config = write_config(tmp_path / "h.toml", FAST_LGBM + "[training.cv]\nn_splits = 3\n")
    out = tmp_path / "o"
    result = nx("train", config, "--data-dir", small_data_dir, "--output-dir", out, "--final")
    assert result.exit_code == 0 and result.stdout == ""
    for text in (
        "corr mean",
        "bmc last 200",
        str(out / "results" / "h.json"),
        str(out / "models" / "h"),
    ):
        assert text in result.stderr


def test_final_fit_without_cv(nx, small_data_dir, tmp_path):
    text = FAST_LGBM + "[training]\nfinal_fit = true\n[training.cv]\nenabled = false\n"
    config = write_config(tmp_path / "f.toml", text)
    out = tmp_path / "o"
    result = nx("train", config, "--data-dir", small_data_dir, "--output-dir", out, "--json")
    assert result.exit_code == 0, result.stderr
    row = json.loads(result.stdout)["configs"][0]
    assert row["predictions"] is None and row["metrics"] == {}
    assert (out / "models" / "f" / "model.txt").is_file()
    assert not (out / "predictions").exists()
    results = json.loads((out / "results" / "f.json").read_text())
    assert results["cv"]["folds"] == [] and results["training"]["final_fit"] is True


def test_cv_disabled_without_final_fit_is_an_error(nx, small_data_dir, tmp_path):
    config = write_config(tmp_path / "c.toml", FAST_LGBM + "[training.cv]\nenabled = false\n")
    assert_user_error(nx("train", config, "--data-dir", small_data_dir), "training.cv.enabled")


def test_reference_framework_python_config_runs_as_is(nx, small_data_dir, tmp_path):
    from tests.train.test_config import REFERENCE_PY

    text = REFERENCE_PY.replace("'n_estimators': 2000", "'n_estimators': 5")
    text = text.replace("'embargo_eras': 13", "'embargo_eras': 2").replace(
        "'embargo': 13", "'embargo': 2"
    )
    config = write_config(tmp_path / "small_lgbm_ender20_baseline.py", text)
    out = tmp_path / "o"
    result = nx("train", config, "--data-dir", small_data_dir, "--output-dir", out, "--json")
    assert result.exit_code == 0, result.stderr
    results = json.loads((out / "results" / "small_lgbm_ender20_baseline.json").read_text())
    assert results["data"]["feature_set"] == "medium" and results["cv"]["embargo"] == 2
    assert [f["fold"] for f in results["cv"]["folds"]] == [1, 2, 3, 4]


def test_every_config_is_checked_before_training_starts(nx, small_data_dir, tmp_path):
    good = write_config(tmp_path / "good.toml", FAST_LGBM)
    bad = write_config(tmp_path / "bad.toml", FAST_LGBM + "[training.cv]\nn_splits = 99\n")
    out = tmp_path / "out"
    result = nx("train", good, bad, "--data-dir", small_data_dir, "--output-dir", out)
    assert_user_error(result, "bad.toml", "training.cv.n_splits")
    assert no_outputs(out)


def test_baseline_errors_name_their_keys(nx, small_data_dir, tmp_path):
    base = tmp_path / "base.parquet"
    pl.DataFrame({"id": ["a"], "pred": [0.5]}).write_parquet(base)
    head = FAST_LGBM.replace(
        "[model.params]", 'x_groups = ["features", "baseline"]\n[model.params]'
    )
    missing = write_config(
        tmp_path / "m.toml",
        head + f'[model.baseline]\npredictions_path = "{tmp_path / "nope.parquet"}"\n',
    )
    assert_user_error(
        nx("train", missing, "--data-dir", small_data_dir), "model.baseline.predictions_path"
    )
    wrong_col = write_config(
        tmp_path / "w.toml", head + f'[model.baseline]\npredictions_path = "{base}"\n'
    )
    assert_user_error(
        nx("train", wrong_col, "--data-dir", small_data_dir), "model.baseline.pred_col"
    )
