"""``nx score`` end to end on the tiny synthetic data dir, and every bad input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import polars as pl
import pytest

from nx.engine import metrics
from tests.conftest import assert_user_error, nx_run


@pytest.fixture(scope="module")
def data_dir(tiny_data_dir):
    return tiny_data_dir


@pytest.fixture(scope="module")
def full(data_dir):
    return pl.read_parquet(data_dir / "v5.2" / "full.parquet")


@pytest.fixture(scope="module")
def preds(full, tmp_path_factory):
    """A predictions file with only id + two prediction columns (era/target joined)."""
    rng = np.random.default_rng(7)
    frame = full.select("id").with_columns(
        prediction=pl.Series(np.round(rng.random(full.height), 2)),
        other=pl.Series(rng.random(full.height)),
    )
    path = tmp_path_factory.mktemp("preds") / "preds.parquet"
    frame.write_parquet(path)
    return path


def _json(result) -> dict:
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_json_matches_the_api(nx, data_dir, preds, full):
    doc = _json(nx("score", preds, "--data-dir", data_dir, "--json"))
    assert set(doc) == {"rows", "eras", "columns"}
    assert doc["rows"] == full.height and doc["eras"] == full["era"].n_unique()
    assert set(doc["columns"]) == {"prediction"}
    sections = doc["columns"]["prediction"]
    assert set(sections) == {"corr", "bmc", "bmc_last_200_eras"}

    bench = pl.read_parquet(data_dir / "v5.2" / "full_benchmark_models.parquet")
    joined = (
        pl.read_parquet(preds)
        .join(full.select("id", "era", "target"), on="id")
        .join(bench.select("id", "v52_lgbm_ender20"), on="id", how="left")
    )
    _, summary = metrics.score(joined, ["prediction"], benchmark_col="v52_lgbm_ender20")
    for section in ("corr", "bmc"):
        for key, value in summary["prediction"][section].items():
            assert sections[section][key] == pytest.approx(value, rel=1e-12, abs=1e-15)


def test_several_columns_csv_features_meta_and_per_era(nx, data_dir, preds, tmp_path):
    csv = tmp_path / "preds.csv"
    pl.read_parquet(preds).write_csv(csv)
    out = tmp_path / "per_era.parquet"
    result = nx(
        "score",
        csv,
        "--data-dir",
        data_dir,
        "--pred-col",
        "prediction",
        "--pred-col",
        "other",
        "--features",
        "small",
        "--meta-model",
        data_dir / "v5.2" / "meta_model.parquet",
        "--max-nan-fraction",
        "0.99",
        "--per-era",
        out,
        "--json",
    )
    doc = _json(result)
    assert set(doc["columns"]) == {"prediction", "other"}
    assert set(doc["columns"]["other"]) == {
        "corr",
        "bmc",
        "bmc_last_200_eras",
        "mmc",
        "fnc",
        "feature_exposure",
    }
    per_era = pl.read_parquet(out)
    assert per_era.columns == [
        "era",
        "column",
        "corr",
        "bmc",
        "corr_with_benchmark",
        "mmc",
        "fnc",
        "max_feature_exposure",
    ]
    assert per_era.height == 2 * doc["eras"]


def test_default_columns_and_table(nx, data_dir, full, tmp_path):
    """Without --pred-col, every column but id/era/target/feature is scored."""
    path = tmp_path / "p.parquet"
    full.select("id", "era", "target", pl.col("target_xerxes_20").alias("model_a")).with_columns(
        model_b=pl.col("model_a") * -1
    ).write_parquet(path)
    result = nx("score", path, "--data-dir", data_dir)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert "model_a" in result.stderr and "model_b" in result.stderr and "bmc" in result.stderr


def test_no_benchmark_file_skips_bmc(nx, data_dir, preds, tmp_path):
    local = tmp_path / "data"
    shutil.copytree(data_dir / "v5.2", local / "v5.2")
    (local / "v5.2" / "full_benchmark_models.parquet").unlink()
    doc = _json(nx("score", preds, "--data-dir", local, "--json"))
    assert set(doc["columns"]["prediction"]) == {"corr"}


@pytest.mark.parametrize("id_col, era_col", [("numerai_ticker", "date"), ("symbol", "date")])
def test_signals_and_crypto_shaped_files(nx, tmp_path, id_col, era_col):
    rng = np.random.default_rng(3)
    dates = np.repeat(["2024-01-05", "2024-01-12", "2024-01-19"], 50)
    tickers = [f"T{i} US" for i in range(len(dates))]
    data = pl.DataFrame({id_col: tickers, era_col: dates, "target": rng.random(len(dates))})
    data_path = tmp_path / "signals_data.parquet"
    data.write_parquet(data_path)
    preds = tmp_path / "signal.csv"
    pl.DataFrame({id_col: tickers, "signal": rng.random(len(dates))}).write_csv(preds)
    doc = _json(
        nx(
            "score",
            preds,
            "--id-col",
            id_col,
            "--era-col",
            era_col,
            "--data",
            data_path,
            "--benchmark-data",
            data_path,
            "--benchmark-model",
            "target",
            "--json",
        )
    )
    assert doc["eras"] == 3 and set(doc["columns"]["signal"]) >= {"corr", "bmc"}
    # era and target already in the file: no join needed
    both = tmp_path / "both.parquet"
    data.with_columns(signal=pl.col("target") + 0.1).write_parquet(both)
    doc = _json(
        nx(
            "score",
            both,
            "--id-col",
            id_col,
            "--era-col",
            era_col,
            "--json",
            "--data-dir",
            tmp_path,
        )
    )
    assert doc["columns"]["signal"]["corr"]["mean"] > 0.9


def test_subprocess_json_is_alone_on_stdout(data_dir, preds):
    result = nx_run("score", preds, "--data-dir", data_dir, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["rows"] > 0
    assert result.stderr == ""


# ------------------------------------------------------------------ bad input


def _write(path, frame: pl.DataFrame):
    frame.write_parquet(path) if path.suffix == ".parquet" else frame.write_csv(path)
    return path


def test_missing_file(nx, data_dir, tmp_path):
    assert_user_error(nx("score", tmp_path / "nope.parquet", "--data-dir", data_dir), "not found")


def test_empty_files(nx, data_dir, tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert_user_error(nx("score", empty, "--data-dir", data_dir), "is empty")
    no_rows = _write(
        tmp_path / "no_rows.parquet",
        pl.DataFrame(
            {"id": [], "prediction": []}, schema={"id": pl.String, "prediction": pl.Float64}
        ),
    )
    assert_user_error(nx("score", no_rows, "--data-dir", data_dir), "no rows")


def test_missing_and_non_numeric_columns(nx, data_dir, preds, full, tmp_path):
    assert_user_error(
        nx("score", preds, "--data-dir", data_dir, "--pred-col", "nope"),
        "prediction column 'nope'",
        "columns there",
    )
    text = _write(tmp_path / "text.parquet", full.select("id", prediction=pl.col("era")))
    assert_user_error(nx("score", text, "--data-dir", data_dir), "'prediction'", "not numeric")
    assert_user_error(
        nx("score", preds, "--data-dir", data_dir, "--target", "target_nope"),
        "target_nope",
    )


def test_duplicate_ids(nx, data_dir, preds, tmp_path):
    frame = pl.read_parquet(preds)
    dup = _write(tmp_path / "dup.parquet", pl.concat([frame, frame.head(3)]))
    assert_user_error(nx("score", dup, "--data-dir", data_dir), "3 duplicate ids")


def test_unknown_ids_are_counted(nx, data_dir, preds, tmp_path):
    frame = pl.read_parquet(preds)
    extra = pl.DataFrame(
        {"id": ["nx_unknown_1", "nx_unknown_2"], "prediction": [0.1, 0.2], "other": [0.3, 0.4]}
    )
    path = _write(tmp_path / "extra.parquet", pl.concat([frame, extra]))
    assert_user_error(nx("score", path, "--data-dir", data_dir), "2 of", "not in")


def test_era_over_the_nan_limit_leaves_no_output(nx, data_dir, preds, full, tmp_path):
    first_era = full.filter(pl.col("era") == full["era"].min())["id"]
    frame = pl.read_parquet(preds).with_columns(
        pl.when(pl.col("id").is_in(first_era.to_list()))
        .then(None)
        .otherwise(pl.col("prediction"))
        .alias("prediction")
    )
    path = _write(tmp_path / "holes.parquet", frame)
    out = tmp_path / "per_era.parquet"
    result = nx("score", path, "--data-dir", data_dir, "--per-era", out)
    assert_user_error(result, f"era {full['era'].min()}", "--max-nan-fraction")
    assert list(tmp_path.glob("per_era*")) == [] and list(tmp_path.glob(".per_era*")) == []


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--data", "missing.parquet"], ["data file", "not found"]),
        (["--features", "nonsense"], ["unknown feature set 'nonsense'"]),
        (["--benchmark-model", "nope"], ["benchmark model 'nope' not found"]),
        (["--benchmark-model", "lgbm_ender"], []),
        (["--meta-model", "missing.parquet"], ["meta model file", "not found"]),
    ],
)
def test_bad_options(nx, data_dir, preds, args, fragments, tmp_path):
    args = [str(tmp_path / a) if a.endswith(".parquet") else a for a in args]
    result = nx("score", preds, "--data-dir", data_dir, *args)
    if fragments:
        assert_user_error(result, *fragments)
    else:  # lgbm_ender matches nothing uniquely (ender20 / ender60 end differently)
        assert_user_error(result, "lgbm_ender")


def test_no_data_to_join(nx, preds, tmp_path):
    assert_user_error(nx("score", preds, "--data-dir", tmp_path), "nx build-data", "--data")


def test_duplicate_ids_in_the_data(nx, data_dir, preds, full, tmp_path):
    data = tmp_path / "dup_data.parquet"
    pl.concat(
        [full.select("id", "era", "target"), full.select("id", "era", "target").head(2)]
    ).write_parquet(data)
    assert_user_error(nx("score", preds, "--data-dir", data_dir, "--data", data), "duplicate ids")


def test_benchmark_rows_missing_for_some_ids(nx, data_dir, preds, tmp_path):
    """Ids the benchmark file lacks get no benchmark (eras without any are left out)."""
    bench = pl.read_parquet(data_dir / "v5.2" / "full_benchmark_models.parquet")
    first_eras = bench["era"].unique().sort()[:3]
    path = tmp_path / "bench.parquet"
    bench.filter(~pl.col("era").is_in(first_eras.to_list())).write_parquet(path)
    doc = _json(nx("score", preds, "--data-dir", data_dir, "--benchmark-data", path, "--json"))
    full_doc = _json(nx("score", preds, "--data-dir", data_dir, "--json"))
    assert (
        doc["columns"]["prediction"]["bmc"]["eras"]
        == full_doc["columns"]["prediction"]["bmc"]["eras"] - 3
    )


def test_features_all_without_features_json(nx, data_dir, preds, tmp_path):
    local = tmp_path / "data"
    shutil.copytree(data_dir / "v5.2", local / "v5.2")
    (local / "v5.2" / "features.json").unlink()
    doc = _json(nx("score", preds, "--data-dir", local, "--features", "all", "--json"))
    assert {"fnc", "feature_exposure"} <= set(doc["columns"]["prediction"])
    assert_user_error(
        nx("score", preds, "--data-dir", local, "--features", "small"),
        "features.json",
        "--features all",
    )
