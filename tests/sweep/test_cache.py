"""The feature-matrix cache: written once, mapped after, identical results, invalidated
when the parquet changes, listed and cleared by ``nx data cache``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from nx.engine.data.cache import CACHE_ENV, cache_dir
from nx.engine.train import load_training_data, train_config
from nx.engine.train.config import parse_config
from tests.conftest import nx_run

CONFIG = {
    "data": {"feature_set": "medium", "embargo_eras": 2},
    "training": {"cv": {"n_splits": 3}},
    "model": {
        "type": "LGBMRegressor",
        "params": {"n_estimators": 10, "num_leaves": 7, "n_jobs": 1, "verbose": -1},
    },
}


@pytest.fixture
def data_dir(tmp_path, tiny_data_dir) -> Path:
    copy = tmp_path / "data"
    shutil.copytree(tiny_data_dir / "v5.2", copy / "v5.2")
    return copy


def _config(name: str = "cached"):
    return parse_config(CONFIG, f"{name}.toml")


def _cache_json(data_dir: Path, *args: str) -> dict:
    done = nx_run("data", "cache", *args, "--data-dir", data_dir, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_cached_matrix_is_mapped_and_gives_identical_predictions(data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, "off")
    plain = load_training_data(_config(), data_dir)
    off = train_config(_config(), data_dir=data_dir, output_dir=tmp_path / "off")
    assert not cache_dir(data_dir).exists()

    monkeypatch.setenv(CACHE_ENV, "on")
    first = train_config(_config(), data_dir=data_dir, output_dir=tmp_path / "first")
    assert len(list(cache_dir(data_dir).glob("*.npy"))) == 1
    mapped = load_training_data(_config(), data_dir)
    assert isinstance(mapped.source.features, np.memmap)
    assert not mapped.source.features.flags.writeable
    assert mapped.source.features.dtype == np.int8
    assert np.array_equal(np.asarray(mapped.source.features), plain.source.features)
    second = train_config(_config(), data_dir=data_dir, output_dir=tmp_path / "second")

    frames = [pl.read_parquet(r.predictions_path) for r in (off, first, second)]
    assert frames[0].equals(frames[1]) and frames[0].equals(frames[2])
    assert not list(cache_dir(data_dir).glob(".*.tmp"))


def test_a_changed_parquet_is_never_read_from_the_cache(data_dir, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, "on")
    before = load_training_data(_config(), data_dir)
    name = before.feature_names[0]
    listed = _cache_json(data_dir, "list")["entries"]
    assert [(e["feature_set"], e["stale"], e["features"]) for e in listed] == [
        ("medium", False, len(before.feature_names))
    ]

    path = data_dir / "v5.2" / "full.parquet"
    frame = pl.read_parquet(path)
    flipped = frame.with_columns((4 - pl.col(name)).cast(pl.Int8).alias(name))
    flipped.write_parquet(path)
    assert _cache_json(data_dir, "list")["entries"][0]["stale"] is True

    after = load_training_data(_config(), data_dir)
    assert np.array_equal(np.asarray(after.source.features[:, 0]), 4 - before.source.features[:, 0])
    entries = _cache_json(data_dir, "list")["entries"]  # the stale matrix was replaced
    assert len(entries) == 1 and entries[0]["stale"] is False

    flipped.write_parquet(path)  # changed again (new mtime): stale until read
    assert _cache_json(data_dir, "clear", "--stale")["removed"][0]["stale"] is True
    load_training_data(_config(), data_dir)
    assert len(_cache_json(data_dir, "clear")["removed"]) == 1
    assert _cache_json(data_dir, "list")["entries"] == []
    done = nx_run("data", "cache", "list", "--data-dir", data_dir)
    assert done.returncode == 0 and "No cached feature matrices" in done.stderr
