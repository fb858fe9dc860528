"""Every bad input of nx build-data: one-line error, exit 2, no output left behind."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from nx.engine.data.synthetic import RAW_FILES
from tests.conftest import assert_user_error

from .conftest import listing


def _build(nx, data_dir, *extra):
    return nx("build-data", "--offline", "--data-dir", data_dir, "--quiet", *extra)


def _rewrite(path, transform):
    table = pq.read_table(path)
    pq.write_table(transform(table), path)


def _assert_nothing_built(vdir, expected):
    assert listing(vdir) == expected


def test_missing_raw_file(nx, raw_dir):
    vdir = raw_dir / "v5.2"
    (vdir / "validation.parquet").unlink()
    before = listing(vdir)
    result = _build(nx, raw_dir)
    assert_user_error(result, "validation.parquet is missing", "nx build-data")
    _assert_nothing_built(vdir, before)


def test_file_that_is_not_parquet(nx, raw_dir):
    vdir = raw_dir / "v5.2"
    (vdir / "train.parquet").write_text("<html>not a parquet file</html>")
    result = _build(nx, raw_dir)
    assert_user_error(result, "train.parquet is not a readable parquet file", "--rebuild")
    _assert_nothing_built(vdir, set(RAW_FILES))


@pytest.mark.parametrize(
    ("file", "column"),
    [
        ("train.parquet", "era"),
        ("validation.parquet", "data_type"),
        ("validation.parquet", "id"),
        ("train_benchmark_models.parquet", "era"),
    ],
)
def test_raw_file_without_a_required_column(nx, raw_dir, file, column):
    vdir = raw_dir / "v5.2"
    _rewrite(vdir / file, lambda t: t.drop_columns([column]))
    result = _build(nx, raw_dir)
    assert_user_error(result, f"{file} has no column '{column}'")
    _assert_nothing_built(vdir, set(RAW_FILES))


def test_feature_columns_differ(nx, raw_dir):
    vdir = raw_dir / "v5.2"
    dropped = next(n for n in pq.read_schema(vdir / "validation.parquet").names if "feature_" in n)
    _rewrite(vdir / "validation.parquet", lambda t: t.drop_columns([dropped]))
    result = _build(nx, raw_dir)
    assert_user_error(
        result,
        "feature columns differ between train and validation",
        f"only in train.parquet: {dropped}",
    )
    _assert_nothing_built(vdir, set(RAW_FILES))


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (("--downsample-eras-step", "1"), ("--downsample-eras-step must be at least 2 (got 1)",)),
        (("--downsample-eras-step", "0"), ("--downsample-eras-step must be at least 2 (got 0)",)),
        (
            ("--downsample-eras-offset", "4"),
            ("--downsample-eras-offset must be in [0, 3]", "got 4"),
        ),
        (("--downsample-eras-offset", "-1"), ("--downsample-eras-offset must be in [0, 3]",)),
        (
            ("--downsample-eras-step", "3", "--downsample-eras-offset", "3"),
            ("must be in [0, 2] for step 3",),
        ),
    ],
)
def test_bad_downsample_options(nx, raw_dir, args, fragments):
    result = _build(nx, raw_dir, *args)
    assert_user_error(result, *fragments)
    _assert_nothing_built(raw_dir / "v5.2", set(RAW_FILES))


def test_bad_downsample_options_checked_before_generating(nx, tmp_path):
    result = nx(
        "build-data",
        "--synthetic",
        "--scale",
        "tiny",
        "--data-dir",
        tmp_path,
        "--downsample-eras-step",
        "1",
    )
    assert_user_error(result, "--downsample-eras-step")
    assert list(tmp_path.iterdir()) == []


def test_failing_query_leaves_no_partial_output(nx, raw_dir):
    vdir = raw_dir / "v5.2"
    # data_type as numbers: the validation filter fails inside DuckDB mid-build
    import pyarrow as pa

    def numeric_data_type(table):
        index = table.schema.get_field_index("data_type")
        return table.set_column(index, "data_type", pa.array(range(table.num_rows)))

    _rewrite(vdir / "validation.parquet", numeric_data_type)
    result = _build(nx, raw_dir)
    assert_user_error(result, "building full.parquet", "failed")
    _assert_nothing_built(vdir, set(RAW_FILES))


def test_synthetic_options_need_synthetic(nx, tmp_path):
    result = nx("build-data", "--data-dir", tmp_path, "--scale", "tiny", "--seed", "3")
    assert_user_error(result, "--scale, --seed apply only to synthetic data", "add --synthetic")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--scale", "huge"), "unknown --scale 'huge'"),
        (("--eras", "3"), "--eras must be at least 8 (got 3)"),
        (("--rows-per-era", "5"), "--rows-per-era must be at least 20"),
        (("--features", "2"), "--features must be at least 10"),
        (("--data-version", "latest"), "--data-version 'latest' is not a Numerai data version"),
    ],
)
def test_bad_synthetic_options(nx, tmp_path, args, fragment):
    result = nx("build-data", "--synthetic", "--data-dir", tmp_path, *args)
    assert_user_error(result, fragment)
    assert list(tmp_path.rglob("*")) in ([], [tmp_path / "v5.2"])


def test_offline_and_synthetic_exclude_each_other(nx, tmp_path):
    assert_user_error(
        nx("build-data", "--synthetic", "--offline", "--data-dir", tmp_path), "--offline"
    )


def test_data_info_without_data(nx, tmp_path):
    assert_user_error(nx("data", "info", "--data-dir", tmp_path), "does not exist", "nx build-data")


def test_data_info_reports_a_broken_file(nx, raw_dir):
    (raw_dir / "v5.2" / "live.parquet").write_text("garbage")
    result = nx("data", "info", "--data-dir", raw_dir, "--json")
    assert result.exit_code == 0, result.stderr
    import json

    files = {f["name"]: f for f in json.loads(result.stdout)["files"]}
    assert files["live.parquet"]["problem"].startswith("not a readable parquet file")
    assert files["train.parquet"]["rows"] > 0
