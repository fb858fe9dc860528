"""``nx score`` and ``nx train`` (subprocess) on input that must not give a number:
infinite values, a meta model file without its column, null ids, header-only CSVs,
and ``--per-era`` paths that cannot be written (refused before the work)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tests.conftest import assert_user_error, nx_run
from tests.train.conftest import FAST_LGBM


@pytest.fixture(scope="module")
def full(tiny_data_dir) -> pl.DataFrame:
    return pl.read_parquet(tiny_data_dir / "v5.2" / "full.parquet")


@pytest.fixture(scope="module")
def preds(full, tmp_path_factory) -> Path:
    rng = np.random.default_rng(11)
    path = tmp_path_factory.mktemp("safety") / "preds.parquet"
    full.select("id").with_columns(prediction=pl.Series(rng.random(full.height))).write_parquet(
        path
    )
    return path


def _eras_in_order(full: pl.DataFrame) -> list[str]:
    return sorted(full["era"].unique().to_list(), key=int)


def _with_infinite(frame: pl.DataFrame, column: str, ids: list[str]) -> pl.DataFrame:
    """``column`` set to +inf / -inf (alternating) at ``ids``."""
    signs = {i: (np.inf if k % 2 == 0 else -np.inf) for k, i in enumerate(ids)}
    values = [signs.get(i, v) for i, v in zip(frame["id"], frame[column], strict=True)]
    return frame.with_columns(pl.Series(column, values, dtype=pl.Float64))


def _copy_data_dir(tiny_data_dir: Path, tmp_path: Path) -> Path:
    local = tmp_path / "data"
    shutil.copytree(tiny_data_dir / "v5.2", local / "v5.2")
    return local


def _no_per_era(folder: Path) -> bool:
    return not list(folder.glob("per_era*")) and not list(folder.glob(".per_era*"))


def _ids_in_era(full: pl.DataFrame, era: str, n: int) -> list[str]:
    return full.filter(pl.col("era") == era)["id"].head(n).to_list()


# ----------------------------------------------------------------- infinite values


def test_infinite_target_is_an_error_naming_count_and_first_era(
    tiny_data_dir, full, preds, tmp_path
):
    eras = _eras_in_order(full)
    bad = _ids_in_era(full, eras[3], 2) + _ids_in_era(full, eras[10], 1)
    data_dir = _copy_data_dir(tiny_data_dir, tmp_path)
    _with_infinite(full, "target", bad).write_parquet(data_dir / "v5.2" / "full.parquet")
    out = tmp_path / "per_era.parquet"
    result = nx_run("score", preds, "--data-dir", data_dir, "--per-era", out, "--json")
    assert_user_error(
        result, "target column 'target'", "3 infinite values", f"first in era {eras[3]}"
    )
    assert result.stdout == ""
    assert _no_per_era(tmp_path)


def test_infinite_predictions_are_an_error(tiny_data_dir, full, preds, tmp_path):
    eras = _eras_in_order(full)
    frame = pl.read_parquet(preds)
    path = tmp_path / "inf_preds.csv"
    _with_infinite(frame, "prediction", _ids_in_era(full, eras[7], 1)).write_csv(path)
    result = nx_run("score", path, "--data-dir", tiny_data_dir)
    assert_user_error(
        result, "prediction column 'prediction'", "1 infinite value", f"era {eras[7]}"
    )


def test_infinite_benchmark_is_an_error_naming_the_column(tiny_data_dir, full, preds, tmp_path):
    eras = _eras_in_order(full)
    bench = pl.read_parquet(tiny_data_dir / "v5.2" / "full_benchmark_models.parquet")
    path = tmp_path / "bench.parquet"
    bench_eras = sorted(bench["era"].unique().to_list(), key=int)
    ids = bench.filter(pl.col("era") == bench_eras[0])["id"].head(4).to_list()
    _with_infinite(bench, "v52_lgbm_ender20", ids).write_parquet(path)
    result = nx_run("score", preds, "--data-dir", tiny_data_dir, "--benchmark-data", path)
    first = full.filter(pl.col("id").is_in(ids))["era"].unique().to_list()
    assert first and set(first) <= set(eras)
    assert_user_error(
        result, "benchmark column 'v52_lgbm_ender20'", "4 infinite values", f"era {first[0]}"
    )


def test_meta_model_file_without_its_column_is_refused(tiny_data_dir, preds, tmp_path):
    """Pointing --meta-model at the predictions file used to score MMC against them (0)."""
    result = nx_run("score", preds, "--data-dir", tiny_data_dir, "--meta-model", preds)
    assert_user_error(result, "no 'numerai_meta_model' column", "prediction")
    meta = pl.read_parquet(tiny_data_dir / "v5.2" / "meta_model.parquet")
    ok = nx_run(
        "score", preds, "--data-dir", tiny_data_dir, "--meta-model",
        tiny_data_dir / "v5.2" / "meta_model.parquet", "--max-nan-fraction", "0.99", "--json",
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert "numerai_meta_model" in meta.columns


def test_train_with_an_infinite_target_fails_in_one_line(tiny_data_dir, full, tmp_path):
    """nx train scores its OOF predictions with nx.engine.metrics: same rule, no results."""
    eras = _eras_in_order(full)
    data_dir = _copy_data_dir(tiny_data_dir, tmp_path)
    bad = _ids_in_era(full, eras[40], 2)
    _with_infinite(full, "target", bad).write_parquet(data_dir / "v5.2" / "full.parquet")
    config = tmp_path / "inf.toml"
    config.write_text(FAST_LGBM + "[training.cv]\nn_splits = 3\nembargo = 2\n")
    out = tmp_path / "exp"
    result = nx_run("train", config, "--data-dir", data_dir, "--output-dir", out, "--json")
    assert_user_error(result, "target column 'target'", "2 infinite values", f"era {eras[40]}")
    assert result.stdout == ""
    assert not (out / "results" / "inf.json").exists()
    assert not (out / "predictions" / "inf.parquet").exists()


# ----------------------------------------------------------------- ids and CSVs


def test_null_ids_are_counted_as_missing_ids(tiny_data_dir, preds, tmp_path):
    frame = pl.read_parquet(preds)
    holes = frame.with_columns(
        pl.when(pl.int_range(pl.len()) < 5).then(None).otherwise(pl.col("id")).alias("id")
    )
    path = tmp_path / "null_ids.parquet"
    holes.write_parquet(path)
    result = nx_run("score", path, "--data-dir", tiny_data_dir)
    assert_user_error(result, "5 rows", "have no id in 'id'")
    assert "duplicate" not in result.stderr


def test_header_only_csv_has_no_rows(tiny_data_dir, tmp_path):
    path = tmp_path / "header.csv"
    path.write_text("id,prediction\n")
    assert_user_error(nx_run("score", path, "--data-dir", tiny_data_dir), "has no rows")
    empty_column = tmp_path / "empty_column.csv"
    empty_column.write_text("id,prediction\nn1,\nn2,\n")
    assert_user_error(
        nx_run("score", empty_column, "--data-dir", tiny_data_dir),
        "prediction column 'prediction'",
        "has no values",
    )


# ----------------------------------------------------------------- --per-era


def test_per_era_csv_is_csv(tiny_data_dir, preds, tmp_path):
    csv, parquet = tmp_path / "per_era.csv", tmp_path / "per_era.parquet"
    for path in (csv, parquet):
        result = nx_run("score", preds, "--data-dir", tiny_data_dir, "--per-era", path, "--json")
        assert result.returncode == 0, result.stderr
    assert csv.read_bytes()[:4] != b"PAR1"
    from_csv = pl.read_csv(csv, schema_overrides={"era": pl.String})
    from_parquet = pl.read_parquet(parquet).with_columns(pl.col("era").cast(pl.String))
    assert from_csv.columns == from_parquet.columns
    assert from_csv["era"].to_list() == from_parquet["era"].to_list()
    assert np.allclose(from_csv["corr"], from_parquet["corr"], rtol=1e-12, equal_nan=True)


def _read_only_folder(tmp_path: Path) -> Path:
    """A folder this process cannot create files in (root ignores modes: /proc)."""
    if os.geteuid() == 0:
        return Path("/proc")
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o555)
    return folder


@pytest.mark.parametrize("case", ["directory", "read_only", "under_a_file", "extension"])
def test_unwritable_per_era_is_refused_before_scoring(tiny_data_dir, full, preds, tmp_path, case):
    """With an era over the NaN limit too, the --per-era error comes first: it is
    checked before any file is read or scored."""
    target = {
        "directory": tmp_path,
        "read_only": _read_only_folder(tmp_path) / "per_era.parquet",
        "under_a_file": preds / "per_era.parquet",
        "extension": tmp_path / "per_era.txt",
    }[case]
    expected = {
        "directory": "is a directory",
        "read_only": "cannot write in",
        "under_a_file": "is a file, not a folder",
        "extension": ".parquet or .csv",
    }[case]
    first_era = _ids_in_era(full, _eras_in_order(full)[0], 10_000)
    frame = pl.read_parquet(preds).with_columns(
        pl.when(pl.col("id").is_in(first_era))
        .then(None)
        .otherwise("prediction")
        .alias("prediction")
    )
    holes = tmp_path / "holes.parquet"
    frame.write_parquet(holes)
    before = sorted(p.name for p in tmp_path.iterdir())
    result = nx_run("score", holes, "--data-dir", tiny_data_dir, "--per-era", target)
    assert_user_error(result, "--per-era", expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    if case == "read_only" and target.parent != Path("/proc"):
        target.parent.chmod(0o755)
