"""nx build-data against a pandas re-derivation of Numerai's build semantics."""

from __future__ import annotations

import shutil

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nx.engine.data.build import BUILT_FILES, build_data, downsampled_eras
from tests.data import pandas_reference as ref


def _read(path) -> pd.DataFrame:
    return pd.read_parquet(path).reset_index(drop=True)


def _same(built: pd.DataFrame, expected: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(built, expected.reset_index(drop=True), check_dtype=True)


@pytest.fixture(scope="module")
def vdir(tiny_data_dir):
    return tiny_data_dir / "v5.2"


def test_full_equals_pandas_reference(vdir):
    _same(_read(vdir / "full.parquet"), ref.build_full(vdir))


def test_full_benchmarks_equal_pandas_reference(vdir):
    # pandas reads id back as the index, as from the reference builder's file
    built = pd.read_parquet(vdir / "full_benchmark_models.parquet")
    pd.testing.assert_frame_equal(built, ref.build_full_benchmarks(vdir), check_dtype=True)


def test_downsampled_equal_pandas_reference(vdir):
    full = ref.build_full(vdir)
    down = ref.downsample(full)
    _same(_read(vdir / "downsampled_full.parquet"), down)
    bench = ref.downsample_benchmarks(ref.build_full_benchmarks(vdir), down)
    built = pd.read_parquet(vdir / "downsampled_full_benchmark_models.parquet")
    pd.testing.assert_frame_equal(built, bench, check_dtype=True)


def test_built_schema(vdir):
    schema = pq.read_schema(vdir / "full.parquet")
    assert schema.names[:2] == ["id", "era"]
    assert "data_type" not in schema.names
    features = [f for f in schema if f.name.startswith("feature_")]
    assert features and all(f.type == pa.int8() for f in features)
    targets = [f for f in schema if f.name.startswith("target")]
    assert targets[0].name == "target" and all(pa.types.is_floating(f.type) for f in targets)
    bench = pq.read_schema(vdir / "full_benchmark_models.parquet")
    assert bench.names[0] == "era" and bench.names[-1] == "id"  # id: the pandas index
    assert all(n.startswith("v52_lgbm_") for n in bench.names[1:-1])


@pytest.mark.parametrize(("step", "offset"), [(2, 1), (5, 3)])
def test_downsample_step_and_offset(tmp_path, vdir, step, offset):
    data = tmp_path / "v5.2"
    shutil.copytree(vdir, data)
    build_data(tmp_path, step=step, offset=offset, rebuild=True, download=False)
    down = ref.downsample(ref.build_full(data), step, offset)
    _same(_read(data / "downsampled_full.parquet"), down)


def test_existing_outputs_are_reused_unless_rebuild(tmp_path, vdir):
    shutil.copytree(vdir, tmp_path / "v5.2")
    before = {n: (tmp_path / "v5.2" / n).stat().st_mtime_ns for n in BUILT_FILES}
    result = build_data(tmp_path, download=False)
    assert result.built == [] and len(result.reused) == 4 and result.raw_source == "existing"
    assert before == {n: (tmp_path / "v5.2" / n).stat().st_mtime_ns for n in BUILT_FILES}
    result = build_data(tmp_path, download=False, rebuild=True, skip_downsample=True)
    assert [p.name for p in result.built] == list(BUILT_FILES[:2])
    assert result.downsampled_full is None


def test_outputs_derived_from_a_rebuilt_one_are_rebuilt(tmp_path, vdir):
    shutil.copytree(vdir, tmp_path / "v5.2")
    (tmp_path / "v5.2" / "full.parquet").unlink()
    result = build_data(tmp_path, download=False)
    assert [p.name for p in result.built] == ["full.parquet", *BUILT_FILES[2:]]
    assert [p.name for p in result.reused] == ["full_benchmark_models.parquet"]


@given(
    eras=st.lists(st.integers(1, 1200), min_size=1, max_size=60),
    step=st.integers(2, 9),
    data=st.data(),
)
@settings(max_examples=50, deadline=None)
def test_downsampled_eras_keeps_every_step_th_position(eras, step, data):
    offset = data.draw(st.integers(0, step - 1))
    width = data.draw(st.sampled_from([4, 0]))  # zero-padded, or not: order stays numeric
    names = [f"{e:0{width}d}" for e in eras]
    unique = sorted(set(eras))
    expected = [f"{e:0{width}d}" for i, e in enumerate(unique) if i % step == offset]
    assert downsampled_eras(names, step, offset) == expected
