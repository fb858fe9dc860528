"""Fuzzing the CLI's numeric options and input files with hypothesis.

Whatever the values or file contents, ``nx`` ends in exit code 0, or in exit code 2
with exactly one line on stderr and no traceback. Each example runs the real Typer
app in-process (the same code as the ``nx`` executable, without a Python start-up per
example); any exception escaping the command fails the test with its traceback.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from nx.cli.app import app
from nx.engine.data.build import BUILT_FILES
from nx.engine.data.synthetic import MAX_FEATURES, RAW_FILES

FUZZ = settings(
    deadline=None,
    derandomize=True,  # the same examples on every run: a failure is reproducible
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def run_nx(*args) -> object:
    result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    check_outcome(result, args)
    return result


def check_outcome(result, args) -> None:
    """Exit 0, or exit 2 with one line on stderr and no traceback."""
    stderr = result.stderr
    assert "Traceback" not in stderr and "panicked" not in stderr, (args, stderr)
    if result.exit_code == 0:
        return
    assert result.exit_code == 2, (args, result.exit_code, stderr)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), (args, stderr)


def _int_option(small: tuple[int, int], special: list[int]):
    return st.one_of(st.integers(*small), st.sampled_from(special))


# Values that would build something stay tiny (a few hundred rows); the large ones are
# all values nx must refuse (too many eras or features, sizes that cannot fit in memory).
eras_values = _int_option((-3, 12), [0, 9999, 10**6, 2**63, -(2**63)])
rows_values = _int_option((-3, 40), [0, 10**9, 10**12, 2**64])
features_values = _int_option((-3, 14), [0, MAX_FEATURES + 1, 200_000, 10**7, 10**30])
seed_values = _int_option((-2, 3), [2**63 - 1, 2**63, 2**64, -(2**70)])
step_values = _int_option((-2, 6), [10**30, -(10**30)])
offset_values = _int_option((-2, 6), [10**30, -(10**30)])


@given(
    eras=eras_values,
    rows=rows_values,
    features=features_values,
    seed=seed_values,
    step=step_values,
    offset=offset_values,
)
@settings(FUZZ, max_examples=30)
def test_build_data_numeric_options(eras, rows, features, seed, step, offset):
    with tempfile.TemporaryDirectory() as data_dir:
        result = run_nx(
            "build-data",
            "--synthetic",
            "--data-dir",
            data_dir,
            "--quiet",
            "--eras",
            eras,
            "--rows-per-era",
            rows,
            "--features",
            features,
            "--seed",
            seed,
            "--downsample-eras-step",
            step,
            "--downsample-eras-offset",
            offset,
        )
        vdir = Path(data_dir) / "v5.2"
        if result.exit_code == 0:
            assert all((vdir / name).is_file() for name in RAW_FILES + BUILT_FILES[:2])
        else:  # refused before anything was written
            assert not any(vdir.glob("*.parquet"))
        assert not [p for p in Path(data_dir).rglob(".*.tmp")]


# ---- input files: damaged raw and built files ---------------------------------------------


def _damage(kind: str, original: bytes, junk: bytes, cut: float) -> bytes:
    if kind == "empty":
        return b""
    if kind == "junk":
        return junk
    if kind == "truncated":
        return original[: int(len(original) * cut)]
    if kind == "junk tail":  # a valid start, garbage footer
        return original[: int(len(original) * cut)] + junk
    return original


damages = st.dictionaries(
    st.sampled_from(RAW_FILES + BUILT_FILES),
    st.tuples(
        st.sampled_from(["empty", "junk", "truncated", "junk tail"]),
        st.binary(max_size=64),
        st.floats(0.0, 0.99),
    ),
    min_size=1,
    max_size=3,
)


@given(damaged=damages)
@settings(FUZZ, max_examples=25)
def test_data_info_and_offline_build_on_damaged_files(tiny_data_dir, damaged):
    with tempfile.TemporaryDirectory() as data_dir:
        vdir = Path(data_dir) / "v5.2"
        shutil.copytree(tiny_data_dir / "v5.2", vdir)
        for name, (kind, junk, cut) in damaged.items():
            (vdir / name).write_bytes(_damage(kind, (vdir / name).read_bytes(), junk, cut))
        info = run_nx("data", "info", "--data-dir", data_dir, "--json")
        assert info.exit_code == 0  # damaged files are listed with their problem
        run_nx("build-data", "--offline", "--data-dir", data_dir, "--quiet")
        assert not [p for p in vdir.glob(".*.tmp")]


# ---- nx score: prediction values, file contents, --max-nan-fraction ------------------------

special_floats = st.sampled_from([math.nan, math.inf, -math.inf, 0.0, 1e308, -1e-308, 5e-324])
prediction_values = st.one_of(st.floats(-10, 10), special_floats)


@pytest.fixture(scope="module")
def score_ids(tiny_data_dir) -> list[str]:
    frame = pl.read_parquet(tiny_data_dir / "v5.2" / "full.parquet", columns=["id", "era"])
    return frame.filter(pl.col("era") >= "0040")["id"].to_list()


@given(
    fill=prediction_values,
    share=st.floats(0.0, 1.0),
    constant=st.booleans(),
    max_nan=st.one_of(st.floats(-2, 2), special_floats),
    fmt=st.sampled_from(["csv", "parquet"]),
    seed=st.integers(0, 2**32 - 1),
)
@settings(FUZZ, max_examples=25)
def test_score_prediction_values(
    tiny_data_dir, score_ids, fill, share, constant, max_nan, fmt, seed
):
    rng = np.random.default_rng(seed)
    values = np.full(len(score_ids), 0.5) if constant else rng.random(len(score_ids))
    values[rng.random(len(score_ids)) < share] = fill  # a share of the rows gets the odd value
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"preds.{fmt}"
        frame = pl.DataFrame({"id": score_ids, "prediction": values})
        frame.write_csv(path) if fmt == "csv" else frame.write_parquet(path)
        run_nx(
            "score",
            path,
            "--data-dir",
            tiny_data_dir,
            "--json",
            "--max-nan-fraction",
            repr(max_nan),
        )


@given(text=st.text(alphabet='id,prediction era0123456789.-naNiIf\n"', max_size=200))
@settings(FUZZ, max_examples=25)
def test_score_arbitrary_csv_text(tiny_data_dir, text):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "preds.csv"
        path.write_text(text)
        run_nx("score", path, "--data-dir", tiny_data_dir, "--json")
        assert not [p for p in Path(folder).iterdir() if p.name != "preds.csv"]


# ---- nx train: numeric config values ------------------------------------------------------

toml_floats = st.one_of(st.floats(-2, 2), st.sampled_from([0.0, 1e300, -1e-300]))


def _toml(value) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(value)


@given(
    n_estimators=st.integers(-5, 3),
    learning_rate=st.one_of(toml_floats, special_floats),
    num_leaves=st.sampled_from([-1, 0, 1, 2, 7]),
    n_splits=st.integers(-1, 6),
    embargo=st.integers(-2, 70),
    max_train_samples=st.sampled_from([None, -1, 0, 1, 50, 10**12]),
    colsample=st.one_of(toml_floats, special_floats),
)
@settings(FUZZ, max_examples=12)
def test_train_numeric_config_values(
    tiny_data_dir,
    n_estimators,
    learning_rate,
    num_leaves,
    n_splits,
    embargo,
    max_train_samples,
    colsample,
):
    samples = "" if max_train_samples is None else f"max_train_samples = {max_train_samples}\n"
    config = f"""
[data]
feature_set = "small"
full_data_path = "v5.2/full.parquet"
benchmark_data_path = "v5.2/full_benchmark_models.parquet"
embargo_eras = {embargo}

[training]
{samples}
[training.cv]
n_splits = {n_splits}
embargo = {embargo}

[model]
type = "LGBMRegressor"

[model.params]
n_estimators = {n_estimators}
learning_rate = {_toml(learning_rate)}
num_leaves = {num_leaves}
colsample_bytree = {_toml(colsample)}
min_data_in_leaf = 5
n_jobs = 1
verbose = -1
"""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.toml"
        path.write_text(config)
        run_nx(
            "train",
            path,
            "--data-dir",
            tiny_data_dir,
            "--output-dir",
            Path(folder) / "out",
            "--json",
        )
