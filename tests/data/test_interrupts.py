"""Kills and interrupts of the real ``nx build-data`` process (real signals), then a re-run.

Whatever moment a run ends at, the next run must not reuse an output built from other
raw files, must not leave temporary files behind for ever, and an interrupt must end
in one line (no Python traceback, no Rust panic).
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import polars as pl
import pytest

from nx.engine.data.build import BUILT_FILES
from nx.engine.data.synthetic import RAW_FILES, synthetic_marker
from tests.conftest import NX_EXE, nx_run


def _start(*args) -> subprocess.Popen:
    return subprocess.Popen(
        [NX_EXE, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _wait_for(condition, process: subprocess.Popen, timeout: float = 60.0) -> bool:
    """Poll ``condition()`` every millisecond; False if the process ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if process.poll() is not None:
            return condition()
        time.sleep(0.001)
    raise AssertionError("timed out waiting for the nx process")


def _ids(path: Path) -> set[str]:
    return set(pl.read_parquet(path, columns=["id"])["id"].to_list())


def _seed_of(path: Path) -> int | None:
    marker = synthetic_marker(path)
    return None if marker is None else marker["seed"]


def _temp_files(vdir: Path) -> list[str]:
    return sorted(p.name for p in vdir.iterdir() if p.name.startswith(".") and p.suffix == ".tmp")


def _writing(vdir: Path, name: str) -> bool:
    """A sink of ``name`` has opened its file in its temporary folder."""
    return any(
        (vdir / temp / name).exists() for temp in _temp_files(vdir) if temp.startswith(f".{name}.")
    )


def _one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr and "panicked" not in stderr, stderr
    return lines[0]


@pytest.fixture
def seed1_dir(tmp_path) -> Path:
    built = nx_run(
        "build-data",
        "--synthetic",
        "--scale",
        "tiny",
        "--seed",
        "1",
        "--data-dir",
        tmp_path,
        "--quiet",
    )
    assert built.returncode == 0, built.stderr
    return tmp_path


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_killed_after_raw_files_are_regenerated_outputs_are_rebuilt(seed1_dir, sig):
    vdir = seed1_dir / "v5.2"
    process = _start(
        "build-data",
        "--synthetic",
        "--rebuild",
        "--scale",
        "tiny",
        "--seed",
        "7",
        "--data-dir",
        seed1_dir,
        "--quiet",
    )
    # features.json is the last raw file renamed into place: then every raw file is seed 7
    _wait_for(lambda: _seed_of(vdir / "features.json") == 7, process)
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=60)
    if sig == signal.SIGINT and process.returncode == 130:
        assert _one_line(stderr).startswith("Interrupted (Ctrl-C)")
    assert all(_seed_of(vdir / name) == 7 for name in RAW_FILES)

    rerun = nx_run("build-data", "--synthetic", "--data-dir", seed1_dir, "--json")
    assert rerun.returncode == 0, rerun.stderr
    outputs = json.loads(rerun.stdout)["outputs"]
    raw_ids = _ids(vdir / "train.parquet") | _ids(vdir / "validation.parquet")
    assert _ids(vdir / "full.parquet") <= raw_ids
    assert _ids(vdir / "downsampled_full.parquet") <= _ids(vdir / "full.parquet")
    bench_ids = _ids(vdir / "train_benchmark_models.parquet") | _ids(
        vdir / "validation_benchmark_models.parquet"
    )
    assert _ids(vdir / "full_benchmark_models.parquet") <= bench_ids
    for name in BUILT_FILES:  # a file the killed run did not rebuild is rebuilt now
        if outputs[name]["status"] == "reused":
            assert _ids(vdir / name) <= raw_ids | bench_ids
    assert _temp_files(vdir) == []


def test_sigkill_during_generation_leaves_temp_files_that_info_shows_and_the_next_run_removes(
    tmp_path,
):
    vdir = tmp_path / "v5.2"
    process = _start(
        "build-data", "--synthetic", "--scale", "tiny", "--data-dir", tmp_path, "--quiet"
    )
    assert _wait_for(lambda: vdir.is_dir() and len(_temp_files(vdir)) == len(RAW_FILES), process)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    left = _temp_files(vdir)
    assert len(left) == len(RAW_FILES)
    assert not any((vdir / name).exists() for name in RAW_FILES)

    info = nx_run("data", "info", "--data-dir", tmp_path, "--json")
    assert info.returncode == 0, info.stderr
    document = json.loads(info.stdout)
    temps = {f["name"]: f for f in document["files"] if f["kind"] == "temp"}
    assert sorted(temps) == left
    assert all(f["status"].startswith("stale: left by a killed nx run") for f in temps.values())
    assert document["stale_temp_files"] == left
    table = nx_run("data", "info", "--data-dir", tmp_path)
    assert "Temporary files of killed runs" in table.stderr and left[0] in table.stderr

    rerun = nx_run("build-data", "--synthetic", "--scale", "tiny", "--data-dir", tmp_path, "--json")
    assert rerun.returncode == 0, rerun.stderr
    assert sorted(Path(p).name for p in json.loads(rerun.stdout)["removed_temp_files"]) == left
    assert _temp_files(vdir) == []
    assert all((vdir / name).is_file() for name in RAW_FILES + BUILT_FILES)


@pytest.mark.parametrize(
    ("sig", "code", "label"),
    [
        (signal.SIGTERM, 143, "Terminated (SIGTERM)"),
        (signal.SIGINT, 130, "Interrupted (Ctrl-C)"),
    ],
)
def test_interrupted_generation_removes_its_temp_files(tmp_path, sig, code, label):
    vdir = tmp_path / "v5.2"
    process = _start(
        "build-data", "--synthetic", "--scale", "tiny", "--data-dir", tmp_path, "--quiet"
    )
    assert _wait_for(lambda: vdir.is_dir() and len(_temp_files(vdir)) == len(RAW_FILES), process)
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == code, stderr
    assert _one_line(stderr).startswith(label)
    left = {p.name for p in vdir.iterdir()}
    assert _temp_files(vdir) == [], left
    # a signal during the final renames can leave some complete raw files: never a temp
    # file, never an output; the next run regenerates the incomplete set
    assert left <= set(RAW_FILES), left
    rerun = nx_run(
        "build-data", "--synthetic", "--scale", "tiny", "--data-dir", tmp_path, "--quiet"
    )
    assert rerun.returncode == 0, rerun.stderr
    assert {_seed_of(vdir / name) for name in RAW_FILES} == {42}


def test_sigint_while_polars_writes_parquet_is_one_line(seed1_dir):
    """Ctrl-C in the middle of a sink: no Rust panic, no partial or temporary file."""
    vdir = seed1_dir / "v5.2"
    before = (vdir / "full.parquet").read_bytes()
    interrupted = 0
    for _ in range(8):  # a tiny sink takes milliseconds: try until one is caught mid-write
        process = _start("build-data", "--offline", "--rebuild", "--data-dir", seed1_dir, "--quiet")
        caught = _wait_for(lambda: _writing(vdir, "full.parquet"), process)
        if caught:
            process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
        if process.returncode == 0:
            continue
        assert process.returncode == 130, stderr
        assert _one_line(stderr).startswith("Interrupted (Ctrl-C)")
        assert _temp_files(vdir) == []
        interrupted += 1
        if interrupted == 2:
            break
    assert interrupted > 0
    # the interrupted --rebuild replaced nothing: the earlier full.parquet is intact and
    # still matches its raw files, so a plain run rightly reuses it
    assert (vdir / "full.parquet").read_bytes() == before
    rerun = nx_run("build-data", "--offline", "--data-dir", seed1_dir, "--json")
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads(rerun.stdout)["outputs"]["full.parquet"]["status"] == "reused"
    assert _ids(vdir / "full.parquet") <= _ids(vdir / "train.parquet") | _ids(
        vdir / "validation.parquet"
    )
