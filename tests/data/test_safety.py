"""nx build-data never overwrites raw files it did not make, never reuses a stale output,
and refuses what cannot work (read-only folders, sizes that cannot fit) in one line."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from nx.engine.data.build import BUILT_FILES
from nx.engine.data.manifest import MANIFEST
from nx.engine.data.synthetic import MAX_FEATURES, RAW_FILES, synthetic_marker
from tests.conftest import assert_user_error, nx_run, nx_run_unprivileged

from .conftest import listing, without_synthetic_marker


def _as_numerai(vdir: Path) -> dict[str, bytes]:
    """Turn the tiny synthetic raw files into unmarked ones, as Numerai serves them."""
    contents = {}
    for name in RAW_FILES:
        contents[name] = without_synthetic_marker(vdir / name)
        (vdir / name).write_bytes(contents[name])
    return contents


def _json(result) -> dict:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


# ---- raw files nx did not make are never overwritten unasked ----------------------------


def test_synthetic_refuses_to_replace_numerai_files_when_one_is_missing(raw_dir):
    vdir = raw_dir / "v5.2"
    numerai = _as_numerai(vdir)
    (vdir / "live.parquet").unlink()
    result = nx_run("build-data", "--synthetic", "--scale", "tiny", "--data-dir", raw_dir)
    assert_user_error(result, "nx did not generate", "train.parquet", "--replace-raw")
    for name in RAW_FILES:
        if name != "live.parquet":
            assert (vdir / name).read_bytes() == numerai[name]
    assert listing(vdir) == set(RAW_FILES) - {"live.parquet"}

    replaced = _json(
        nx_run(
            "build-data",
            "--synthetic",
            "--scale",
            "tiny",
            "--replace-raw",
            "--data-dir",
            raw_dir,
            "--json",
            "--skip-downsample",
        )
    )
    assert replaced["raw_source"] == "synthetic" and replaced["synthetic"]["seed"] == 42
    assert all(synthetic_marker(vdir / name) is not None for name in RAW_FILES)


def test_demo_refuses_to_replace_numerai_files(raw_dir, tmp_path):
    vdir = raw_dir / "v5.2"
    numerai = _as_numerai(vdir)
    (vdir / "meta_model.parquet").unlink()
    out = tmp_path / "demo"
    result = nx_run("demo", "--data-dir", raw_dir, "--output-dir", out)
    assert_user_error(result, "nx did not generate", "--replace-raw")
    assert not out.exists()
    assert {name: (vdir / name).read_bytes() for name in RAW_FILES if name in listing(vdir)} == {
        name: body for name, body in numerai.items() if name != "meta_model.parquet"
    }


def test_synthetic_refuses_a_complete_set_of_numerai_files(raw_dir):
    vdir = raw_dir / "v5.2"
    numerai = _as_numerai(vdir)
    result = nx_run("build-data", "--synthetic", "--rebuild", "--data-dir", raw_dir)
    assert_user_error(result, "nx did not generate", "--replace-raw")
    assert {name: (vdir / name).read_bytes() for name in RAW_FILES} == numerai


def test_download_refuses_to_mix_numerai_files_into_synthetic_ones(raw_dir):
    vdir = raw_dir / "v5.2"
    (vdir / "live.parquet").unlink()
    before = {name: (vdir / name).read_bytes() for name in RAW_FILES if name != "live.parquet"}
    result = nx_run("build-data", "--data-dir", raw_dir)  # would download live.parquet
    assert_user_error(result, "holds synthetic raw files", "--rebuild", "--synthetic")
    assert {name: (vdir / name).read_bytes() for name in before} == before


def test_a_mix_of_synthetic_and_other_raw_files_is_refused(raw_dir):
    vdir = raw_dir / "v5.2"
    (vdir / "validation.parquet").write_bytes(without_synthetic_marker(vdir / "validation.parquet"))
    result = nx_run("build-data", "--offline", "--data-dir", raw_dir)
    assert_user_error(result, "a mix of synthetic ones", "validation.parquet")
    assert listing(vdir) == set(RAW_FILES)


def test_raw_files_of_two_synthetic_runs_are_regenerated(raw_dir, tmp_path):
    vdir = raw_dir / "v5.2"
    other = nx_run(
        "build-data",
        "--synthetic",
        "--scale",
        "tiny",
        "--seed",
        "5",
        "--data-dir",
        tmp_path / "other",
        "--quiet",
        "--skip-downsample",
    )
    assert other.returncode == 0, other.stderr
    shutil.copy2(tmp_path / "other" / "v5.2" / "train.parquet", vdir / "train.parquet")
    offline = nx_run("build-data", "--offline", "--data-dir", raw_dir)
    assert_user_error(offline, "come from different runs", "seed 1", "seed 5", "--rebuild")
    document = _json(nx_run("build-data", "--synthetic", "--data-dir", raw_dir, "--json"))
    assert document["raw_source"] == "synthetic"  # the set was nx's own: regenerated
    seeds = {synthetic_marker(vdir / name)["seed"] for name in RAW_FILES}
    assert seeds == {42}


def test_data_info_tells_synthetic_from_numerai_files(raw_dir):
    vdir = raw_dir / "v5.2"
    info = _json(nx_run("data", "info", "--data-dir", raw_dir, "--json"))
    assert info["synthetic"]["seed"] == 1 and info["synthetic"]["eras"] == 60
    assert {f["status"] for f in info["files"] if f["kind"] == "raw"} == {"synthetic"}
    table = nx_run("data", "info", "--data-dir", raw_dir)
    assert "synthetic: seed 1, 60 eras x 100 rows x 40 features" in " ".join(table.stderr.split())
    _as_numerai(vdir)
    info = _json(nx_run("data", "info", "--data-dir", raw_dir, "--json"))
    assert info["synthetic"] is None
    assert {f["status"] for f in info["files"] if f["kind"] == "raw"} == {"not synthetic"}


def test_explicit_other_settings_regenerate_nx_synthetic_files(raw_dir):
    vdir = raw_dir / "v5.2"
    same = _json(nx_run("build-data", "--synthetic", "--data-dir", raw_dir, "--json"))
    assert same["raw_source"] == "existing"  # no setting given: any synthetic set is used
    again = _json(
        nx_run(
            "build-data",
            "--synthetic",
            "--scale",
            "tiny",
            "--seed",
            "1",
            "--data-dir",
            raw_dir,
            "--json",
        )
    )
    assert again["raw_source"] == "existing"
    assert {v["status"] for v in again["outputs"].values()} == {"reused"}
    other = _json(
        nx_run(
            "build-data",
            "--synthetic",
            "--scale",
            "tiny",
            "--seed",
            "2",
            "--data-dir",
            raw_dir,
            "--json",
        )
    )
    assert (
        other["raw_source"] == "synthetic" and synthetic_marker(vdir / "train.parquet")["seed"] == 2
    )
    assert {v["status"] for v in other["outputs"].values()} == {"built"}


# ---- outputs are rebuilt whenever what they were built from changed ---------------------


@pytest.fixture
def built_dir(tmp_path, tiny_data_dir) -> Path:
    shutil.copytree(tiny_data_dir / "v5.2", tmp_path / "v5.2")  # keeps mtimes: records hold
    return tmp_path


def _statuses(result) -> dict[str, str]:
    return {k: v["status"] for k, v in _json(result)["outputs"].items()}


def test_copied_data_dir_is_reused(built_dir):
    result = nx_run("build-data", "--offline", "--data-dir", built_dir, "--json")
    assert set(_statuses(result).values()) == {"reused"}


def test_a_touched_raw_file_rebuilds_what_was_built_from_it(built_dir):
    vdir = built_dir / "v5.2"
    os.utime(vdir / "train_benchmark_models.parquet")
    result = nx_run("build-data", "--offline", "--data-dir", built_dir, "--json")
    outputs = _json(result)["outputs"]
    assert {k: v["status"] for k, v in outputs.items()} == {
        "full.parquet": "reused",
        "full_benchmark_models.parquet": "built",
        "downsampled_full.parquet": "reused",
        "downsampled_full_benchmark_models.parquet": "built",
    }
    assert (
        "train_benchmark_models.parquet changed"
        in outputs["full_benchmark_models.parquet"]["reason"]
    )


def test_other_downsample_options_rebuild_the_downsampled_files(built_dir):
    result = nx_run(
        "build-data",
        "--offline",
        "--data-dir",
        built_dir,
        "--json",
        "--downsample-eras-offset",
        "1",
    )
    outputs = _json(result)["outputs"]
    assert outputs["downsampled_full.parquet"]["status"] == "built"
    assert "downsample_eras_offset 0 -> 1" in outputs["downsampled_full.parquet"]["reason"]
    assert outputs["full.parquet"]["status"] == "reused"


@pytest.mark.parametrize("change", ["no record", "other nx version", "output replaced"])
def test_outputs_without_a_matching_record_are_rebuilt(built_dir, change):
    vdir = built_dir / "v5.2"
    if change == "no record":
        (vdir / MANIFEST).unlink()
    elif change == "other nx version":
        document = json.loads((vdir / MANIFEST).read_text())
        document["outputs"]["full.parquet"]["nx_version"] = "0.0.1"
        (vdir / MANIFEST).write_text(json.dumps(document))
    else:
        shutil.copy(vdir / "downsampled_full.parquet", vdir / "full.parquet")
    info = _json(nx_run("data", "info", "--data-dir", built_dir, "--json"))
    full = next(f for f in info["files"] if f["name"] == "full.parquet")
    assert full["status"].startswith("stale: ")
    statuses = _statuses(nx_run("build-data", "--offline", "--data-dir", built_dir, "--json"))
    assert statuses["full.parquet"] == "built"
    assert statuses["downsampled_full.parquet"] == "built"  # read from the rebuilt full
    info = _json(nx_run("data", "info", "--data-dir", built_dir, "--json"))
    assert {f["status"] for f in info["files"] if f["kind"] == "built"} == {"up to date"}


def test_skip_downsample_removes_downsampled_files_left_stale(built_dir):
    vdir = built_dir / "v5.2"
    os.utime(vdir / "train.parquet")
    document = _json(
        nx_run("build-data", "--offline", "--skip-downsample", "--data-dir", built_dir, "--json")
    )
    assert sorted(Path(p).name for p in document["removed_stale_outputs"]) == sorted(
        BUILT_FILES[2:]
    )
    assert not (vdir / "downsampled_full.parquet").exists()


# ---- one line instead of a traceback: folders that cannot be written, impossible sizes ---


def test_read_only_data_dir(tmp_path):
    data_dir = tmp_path / "readonly"
    data_dir.mkdir()
    data_dir.chmod(0o555)
    try:
        result = nx_run_unprivileged(
            "build-data", "--synthetic", "--scale", "tiny", "--data-dir", data_dir
        )
        assert_user_error(result, f"cannot write to {data_dir}", "Permission denied", "--data-dir")
        assert list(data_dir.iterdir()) == []
    finally:
        data_dir.chmod(0o755)


def test_read_only_version_dir_with_raw_files(raw_dir):
    vdir = raw_dir / "v5.2"
    vdir.chmod(0o555)
    try:
        result = nx_run_unprivileged("build-data", "--offline", "--data-dir", raw_dir)
        assert_user_error(result, f"cannot write to {vdir}", "Permission denied")
        assert listing(vdir) == set(RAW_FILES)
    finally:
        vdir.chmod(0o755)


def test_read_only_version_dir_that_is_up_to_date_builds_nothing(built_dir):
    vdir = built_dir / "v5.2"
    vdir.chmod(0o555)
    try:
        result = nx_run_unprivileged("build-data", "--offline", "--data-dir", built_dir, "--json")
        assert set(_statuses(result).values()) == {"reused"}
        info = nx_run_unprivileged("data", "info", "--data-dir", built_dir, "--json")
        assert info.returncode == 0, info.stderr
    finally:
        vdir.chmod(0o755)


def test_data_dir_that_is_a_file(tmp_path):
    target = tmp_path / "file"
    target.write_text("not a folder")
    result = nx_run("build-data", "--synthetic", "--scale", "tiny", "--data-dir", target)
    assert_user_error(result, "--data-dir")
    assert target.read_text() == "not a folder"


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (("--features", "200000"), (f"--features must be at most {MAX_FEATURES:,}",)),
        (
            ("--features", "40000", "--rows-per-era", "2000000"),
            ("needs about", "of memory, more than the", "lower --rows-per-era or --features"),
        ),
        (("--rows-per-era", "1000000000"), ("needs about", "available on this machine")),
        (("--seed", "-1"), ("--seed must be in [0, 2**63)",)),
    ],
)
def test_sizes_that_cannot_work_are_refused_before_anything_is_allocated(tmp_path, args, fragments):
    result = nx_run("build-data", "--synthetic", "--scale", "tiny", "--data-dir", tmp_path, *args)
    assert_user_error(result, *fragments)
    assert list(tmp_path.iterdir()) == []  # not even the version folder
