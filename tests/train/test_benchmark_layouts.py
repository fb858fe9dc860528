"""Benchmark files in each layout: the reference's pandas loaders and nx read them alike.

Layouts: ``pandas`` (id as the pandas index, pandas metadata: what Numerai ships,
what the reference's builder writes and what ``nx build-data`` writes), ``column``
(id a plain first column without pandas metadata: what nx wrote before) and ``raw``
(Numerai's validation benchmark file as shipped).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest

from tests.train.conftest import write_config

BENCHMARK = "v52_lgbm_ender20"


def reference_builder_benchmarks(vdir: Path) -> pd.DataFrame:
    """full_benchmark_models the reference's way: id index, train + scored validation ids."""
    train = pd.read_parquet(vdir / "train_benchmark_models.parquet")
    validation = pd.read_parquet(vdir / "validation_benchmark_models.parquet")
    kinds = pd.read_parquet(vdir / "validation.parquet", columns=["data_type"])
    scored = kinds.index[kinds["data_type"] == "validation"]
    for frame in (train, validation):
        if "id" in frame.columns:
            frame.set_index("id", inplace=True)
    validation = validation.loc[validation.index.intersection(scored)]
    return pd.concat([train, validation], axis=0)


def reference_loader(path: Path, era_col: str = "era") -> pd.DataFrame:
    """The reference's load_benchmark_predictions: two columns read, index named id."""
    frame = pd.read_parquet(path, columns=[era_col, BENCHMARK])
    if frame.index.name is None:
        frame.index.name = "id"
    return frame


def reference_attach(path: Path, id_col: str = "id") -> pd.DataFrame:
    """The reference's attach_benchmark_models read: whole file, id made the index."""
    frame = pd.read_parquet(path)
    if id_col in frame.columns:
        frame = frame.set_index(id_col)
    return frame


def write_layout(source: Path, target: Path, layout: str) -> None:
    if layout == "pandas":
        shutil.copy(source, target)
    else:  # id a plain first column, no pandas metadata (Polars writes none)
        frame = pl.read_parquet(source)
        frame.select("id", pl.exclude("id")).write_parquet(target)


@pytest.fixture(scope="module")
def built(tiny_data_dir) -> Path:
    return tiny_data_dir / "v5.2"


def test_built_benchmarks_read_as_the_reference_builder_writes_them(built):
    expected = reference_builder_benchmarks(built)
    ours = pd.read_parquet(built / "full_benchmark_models.parquet")
    pd.testing.assert_frame_equal(ours, expected)
    ids = pd.read_parquet(built / "downsampled_full.parquet", columns=["id"])["id"]
    down = pd.read_parquet(built / "downsampled_full_benchmark_models.parquet")
    pd.testing.assert_frame_equal(down, expected.loc[expected.index.intersection(ids)])
    assert down.index.name == "id" and list(down.columns) == list(expected.columns)


def test_reference_loaders_on_each_layout(built, tmp_path):
    full_ids = pd.read_parquet(built / "full.parquet", columns=["id"])["id"]
    truth = reference_attach(built / "full_benchmark_models.parquet")
    for layout in ("pandas", "column"):
        path = tmp_path / f"{layout}.parquet"
        write_layout(built / "full_benchmark_models.parquet", path, layout)
        attached = reference_attach(path)
        pd.testing.assert_frame_equal(attached, truth, check_index_type=False)
        loaded = reference_loader(path)
        overlap = loaded.index.intersection(full_ids)
        if layout == "pandas":  # what nx builds: every benchmark id found in full.parquet
            assert len(overlap) == len(loaded) == len(truth)
        else:  # the old layout: the loader saw a RangeIndex ("No overlapping ids")
            assert overlap.empty
    raw = reference_loader(built / "validation_benchmark_models.parquet")
    assert raw.index.name == "id" and raw.index.isin(full_ids).any()


CONFIG = """
[data]
feature_set = "small"
embargo_eras = 4
benchmark_data_path = "{bench}"
[training.cv]
n_splits = 4
[model]
type = "LGBMRegressor"
target_transform = "subtract_benchmark"
[model.params]
n_estimators = 5
num_leaves = 4
n_jobs = 1
verbose = -1
[output]
results_name = "{name}"
"""


def test_nx_train_and_score_read_every_layout(nx, tiny_data_dir, tmp_path):
    built = tiny_data_dir / "v5.2"
    out = tmp_path / "out"
    results, scores = {}, {}
    for layout in ("pandas", "column", "raw"):
        if layout == "raw":
            path = built / "validation_benchmark_models.parquet"
        else:
            path = tmp_path / f"{layout}.parquet"
            write_layout(built / "full_benchmark_models.parquet", path, layout)
            config = write_config(
                tmp_path / f"{layout}.toml", CONFIG.format(bench=path, name=layout)
            )
            run = nx("train", config, "--data-dir", tiny_data_dir, "--output-dir", out, "--json")
            assert run.exit_code == 0, run.stderr
            results[layout] = json.loads((out / "results" / f"{layout}.json").read_text())
        predictions = out / "predictions" / "pandas.parquet"
        run = nx(
            "score", predictions, "--data-dir", tiny_data_dir, "--benchmark-data", path, "--json"
        )
        assert run.exit_code == 0, run.stderr
        scores[layout] = json.loads(run.stdout)["columns"]["prediction"]
    assert results["pandas"]["metrics"] == results["column"]["metrics"]
    first = pd.read_parquet(out / "predictions" / "pandas.parquet")
    second = pd.read_parquet(out / "predictions" / "column.parquet")
    np.testing.assert_array_equal(first["prediction"], second["prediction"])
    assert scores["pandas"] == scores["column"]
    # the raw file holds validation eras only: BMC over those eras, computed all the same
    assert scores["raw"]["bmc"]["eras"] < scores["pandas"]["bmc"]["eras"]
    assert np.isfinite(scores["raw"]["bmc"]["mean"])
