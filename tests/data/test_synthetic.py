"""The synthetic dataset has Numerai's schema and realistic content."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nx.engine.data import synthetic
from nx.engine.data.synthetic import RAW_FILES, SCALES, generate_raw, resolve_scale


@pytest.fixture(scope="module")
def raw(tiny_data_dir):
    vdir = tiny_data_dir / "v5.2"
    return {
        name: pd.read_parquet(vdir / name) if name.endswith(".parquet") else None
        for name in RAW_FILES
    } | {"vdir": vdir}


@pytest.fixture(scope="module")
def features_json(tiny_data_dir):
    return json.loads((tiny_data_dir / "v5.2" / "features.json").read_text())


def test_raw_files_are_indexed_by_numerai_like_ids(raw):
    all_ids = []
    for name in RAW_FILES:
        if name.endswith(".parquet"):
            frame = raw[name]
            assert frame.index.name == "id", name
            assert frame.index.str.fullmatch(r"n[0-9a-f]{15}").all(), name
            assert frame["era"].str.fullmatch(r"\d{4}").all(), name
    for name in ("train.parquet", "validation.parquet", "live.parquet"):
        all_ids.extend(raw[name].index)
    assert len(all_ids) == len(set(all_ids))


def test_eras_and_data_types(raw):
    train, validation, live = raw["train.parquet"], raw["validation.parquet"], raw["live.parquet"]
    assert set(train["data_type"]) == {"train"}
    assert set(validation["data_type"]) == {"validation", "test"}
    assert train["era"].max() < validation["era"].min()
    assert live["era"].nunique() == 1 and set(live["data_type"]) == {"live"}
    assert live["era"].iloc[0] > validation["era"].max()
    eras = pd.concat([train["era"], validation["era"]]).unique()
    assert list(eras) == [f"{i:04d}" for i in range(1, SCALES["tiny"].eras + 1)]
    rows = train.groupby("era").size()
    assert rows.between(90, 110).all()


def test_features_are_int8_equal_frequency_bins_with_missing_eras(raw, features_json):
    train = raw["train.parquet"]
    names = features_json["feature_sets"]["all"]
    assert len(names) == SCALES["tiny"].n_features and all(n.startswith("feature_") for n in names)
    assert (train[names].dtypes == np.int8).all()
    values = train[names].to_numpy()
    assert values.min() == 0 and values.max() == 4
    all_twos = train.groupby("era")[names].agg(lambda s: bool((s == 2).all()))
    assert all_twos.to_numpy().any()  # some features missing for whole eras
    era = train[train["era"] == "0020"][names]
    n = len(era)
    for col in names:
        counts = era[col].value_counts()
        if len(counts) > 1:
            assert counts.between(n // 5, n // 5 + 1).all() and len(counts) == 5


def test_targets(raw, features_json):
    train, validation = raw["train.parquet"], raw["validation.parquet"]
    targets = features_json["targets"]
    assert targets[0] == "target" and "target_ender_20" in targets and len(targets) == 41
    assert all(t in train.columns for t in targets)
    assert train["target"].equals(train["target_ender_20"])
    scored = pd.concat([train, validation[validation["data_type"] == "validation"]])
    assert scored["target"].notna().all()
    shares = scored["target"].value_counts(normalize=True).sort_index()
    assert list(shares.index) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert np.allclose(shares.to_numpy(), [0.05, 0.2, 0.5, 0.2, 0.05], atol=0.01)
    assert scored["target_alpha_20"].nunique() == 7
    assert scored[targets].isna().any().sum() >= 3  # some auxiliary targets have NaN
    test_rows = validation[validation["data_type"] == "test"]
    assert len(test_rows) > 0 and test_rows[targets].isna().all().all()


def test_feature_sets(features_json):
    sets = features_json["feature_sets"]
    small, medium, all_ = set(sets["small"]), set(sets["medium"]), set(sets["all"])
    assert small < medium < all_
    assert len(sets["small"]) == 10
    groups = synthetic.FEATURE_GROUPS
    assert set().union(*(set(sets[g]) for g in groups)) == all_


def test_benchmarks_and_meta_model(raw):
    train, validation = raw["train.parquet"], raw["validation.parquet"]
    train_b, valid_b = (
        raw["train_benchmark_models.parquet"],
        raw["validation_benchmark_models.parquet"],
    )
    live_b, meta = raw["live_benchmark_models.parquet"], raw["meta_model.parquet"]
    expected = [
        f"v52_lgbm_{n}{h}" for n in ("cyrusd", "teager2b", "ender", "jasper") for h in (20, 60)
    ]
    for frame in (train_b, valid_b, live_b):
        assert list(frame.columns) == ["era", *expected]
        values = frame[expected].to_numpy()
        assert np.isfinite(values).all() and values.min() > 0 and values.max() <= 1
    # absent for the earliest eras, present in later train eras and every validation era
    first = train_b["era"].min()
    assert "0001" < first < train["era"].max()
    assert set(train_b.index) == set(train.index[train["era"] >= first])
    assert set(valid_b.index) == set(validation.index)
    assert set(live_b.index) == set(raw["live.parquet"].index)
    assert list(meta.columns) == ["era", "numerai_meta_model"]
    assert set(meta.index) <= set(validation.index)
    # model-like: the benchmark is positively correlated with its target
    joined = train[["target"]].join(train_b[["v52_lgbm_ender20"]], how="inner")
    assert joined["v52_lgbm_ender20"].corr(joined["target"], method="spearman") > 0.01


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a = generate_raw(tmp_path / "a", scale="tiny", eras=12, seed=5)
    b = generate_raw(tmp_path / "b", scale="tiny", eras=12, seed=5)
    c = generate_raw(tmp_path / "c", scale="tiny", eras=12, seed=6)
    for pa_, pb in zip(a, b, strict=True):
        assert pa_.read_bytes() == pb.read_bytes(), pa_.name
    assert a[1].read_bytes() != c[1].read_bytes()


def test_v53_names(tmp_path):
    generate_raw(tmp_path, scale="tiny", eras=12, data_version="v5.3")
    names = pq.read_schema(tmp_path / "train_benchmark_models.parquet").names
    assert "v53_lgbm_ender20" in names and not any(n.startswith("v52_") for n in names)
    sets = json.loads((tmp_path / "features.json").read_text())["feature_sets"]
    assert "quantum" in sets


def test_era_by_era_writer_streams_numerai_width(tmp_path, monkeypatch):
    """The full-scale path: 2,748 features, several row groups flushed while generating."""
    monkeypatch.setattr(synthetic, "_ROW_GROUP_ROWS", 100)
    generate_raw(tmp_path, scale="full", eras=10, rows_per_era=40)
    meta = pq.read_metadata(tmp_path / "train.parquet")
    assert meta.num_columns == 3 + 2748 + 41
    train_eras = pq.read_table(tmp_path / "train.parquet", columns=["era"]).column(0)
    assert meta.num_row_groups >= math.floor(len(train_eras) / 100)
    assert pq.read_schema(tmp_path / "train.parquet").field(5).type == pa.int8()


def test_interrupted_generation_leaves_nothing(tmp_path, monkeypatch):
    original = synthetic._World.draw_era

    def failing(self, index):
        if index == 5:
            raise KeyboardInterrupt
        return original(self, index)

    monkeypatch.setattr(synthetic._World, "draw_era", failing)
    with pytest.raises(KeyboardInterrupt):
        generate_raw(tmp_path, scale="tiny")
    assert list(tmp_path.iterdir()) == []


def test_resolve_scale_overrides():
    assert resolve_scale("small", None, None, None) == SCALES["small"]
    assert resolve_scale("tiny", 30, None, 50).eras == 30
    assert resolve_scale("tiny", 30, None, 50).n_features == 50
