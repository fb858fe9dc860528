"""The real commands on tiny synthetic data."""

from __future__ import annotations

import json

import pyarrow.parquet as pq

from nx.engine.data.build import BUILT_FILES
from nx.engine.data.manifest import MANIFEST
from nx.engine.data.synthetic import RAW_FILES
from tests.conftest import nx_run


def test_build_data_synthetic_tiny_writes_every_file(nx, tmp_path):
    result = nx(
        "build-data", "--synthetic", "--scale", "tiny", "--data-dir", tmp_path, "--seed", "3"
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    vdir = tmp_path / "v5.2"
    assert {p.name for p in vdir.iterdir()} == {*RAW_FILES, *BUILT_FILES, MANIFEST}
    assert "full.parquet" in result.stderr and "built" in result.stderr


def test_build_data_json_and_reuse(nx, tmp_path):
    args = ("build-data", "--synthetic", "--data-dir", tmp_path, "--json")
    first = nx(*args, "--scale", "tiny", "--skip-downsample")
    document = json.loads(first.stdout)
    assert document["raw_source"] == "synthetic"
    assert set(document["outputs"]) == set(BUILT_FILES[:2])
    rows = pq.read_metadata(tmp_path / "v5.2" / "full.parquet").num_rows
    assert document["outputs"]["full.parquet"] == {
        "path": str(tmp_path / "v5.2" / "full.parquet"),
        "rows": rows,
        "bytes": (tmp_path / "v5.2" / "full.parquet").stat().st_size,
        "status": "built",
        "reason": "new",
    }
    again = json.loads(nx(*args).stdout)
    assert again["raw_source"] == "existing"
    assert again["outputs"]["full.parquet"]["status"] == "reused"
    assert again["outputs"]["downsampled_full.parquet"]["status"] == "built"


def test_explicit_sizes(nx, tmp_path):
    result = nx(
        "build-data",
        "--synthetic",
        "--eras",
        "20",
        "--rows-per-era",
        "30",
        "--features",
        "12",
        "--data-dir",
        tmp_path,
        "--quiet",
        "--downsample-eras-step",
        "5",
        "--downsample-eras-offset",
        "2",
    )
    assert result.exit_code == 0, result.stderr
    info = json.loads(nx("data", "info", "--data-dir", tmp_path, "--json").stdout)
    files = {f["name"]: f for f in info["files"]}
    assert files["train.parquet"]["features"] == 12
    assert files["full.parquet"]["eras"] == 20 - 1  # the last era is a test era
    assert files["downsampled_full.parquet"]["eras"] == 4  # positions 2, 7, 12, 17
    assert files["downsampled_full.parquet"]["first_era"] == "0003"


def test_data_info(nx, tiny_data_dir):
    result = nx("data", "info", "--data-dir", tiny_data_dir, "--json")
    assert result.exit_code == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["missing_raw"] == [] and info["missing_built"] == []
    assert info["feature_sets"]["all"] == 40
    files = {f["name"]: f for f in info["files"]}
    assert files["live.parquet"]["eras"] == 1
    assert files["full.parquet"]["kind"] == "built" and files["features.json"]["kind"] == "raw"
    table = nx("data", "info", "--data-dir", tiny_data_dir)
    assert table.exit_code == 0 and table.stdout == ""
    assert "validation.parquet" in table.stderr and "Feature sets: small 10" in table.stderr


def test_installed_command_end_to_end(tmp_path):
    built = nx_run(
        "build-data", "--synthetic", "--scale", "tiny", "--data-dir", tmp_path, "--quiet"
    )
    assert built.returncode == 0, built.stderr
    info = nx_run("data", "info", "--data-dir", tmp_path)
    assert info.returncode == 0 and "full.parquet" in info.stderr
    bad = nx_run("build-data", "--offline", "--data-dir", tmp_path / "nowhere")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "is missing" in bad.stderr
