"""A run's outputs are one set: checked before the work, never mixed with an earlier run's,
never replacing an earlier result unless asked (``--overwrite``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import NX_EXE, assert_user_error, nx_run, nx_run_unprivileged
from tests.train.conftest import FAST_LGBM, write_config

REPO = Path(__file__).resolve().parents[2]

CONFIG = """
[data]
feature_set = "small"
embargo_eras = 4

[training.cv]
n_splits = 3

[output]
results_name = "run"
"""

HANGING = """
[model]
type = "tests.train.custom_models:HangingModel"

[model.params]
record_path = "{record}"
hang_at = {hang_at}
marker = "{marker}"
"""


def run_ids(out: Path, name: str = "run") -> dict[str, str | None]:
    """The run id each output of ``name`` records (None where the file is absent)."""
    results = out / "results" / f"{name}.json"
    predictions = out / "predictions" / f"{name}.parquet"
    manifest = out / "models" / name / "manifest.json"
    return {
        "results": json.loads(results.read_text())["output"]["run_id"]
        if results.exists()
        else None,
        "predictions": pq.ParquetFile(predictions).metadata.metadata[b"nx_run_id"].decode()
        if predictions.exists()
        else None,
        "model": json.loads(manifest.read_text())["run_id"] if manifest.exists() else None,
    }


def test_outputs_record_one_run_id(tiny_data_dir, tmp_path):
    config = write_config(tmp_path / "run.toml", CONFIG + FAST_LGBM)
    out = tmp_path / "out"
    result = nx_run("train", config, "--data-dir", tiny_data_dir, "--output-dir", out, "--final")
    assert result.returncode == 0, result.stderr
    ids = run_ids(out)
    assert ids["results"] and len(set(ids.values())) == 1, ids
    assert not list(out.glob(".nx-run-*"))


def test_rerun_keeps_the_earlier_result_unless_overwrite(tiny_data_dir, tmp_path):
    config = write_config(tmp_path / "run.toml", CONFIG + FAST_LGBM)
    out = tmp_path / "out"
    args = ("train", config, "--data-dir", tiny_data_dir, "--output-dir", out, "--final")
    assert nx_run(*args).returncode == 0
    first = run_ids(out)
    before = (out / "results" / "run.json").read_bytes()

    again = nx_run(*args)
    assert_user_error(again, "holds an earlier run of 'run'", "--overwrite")
    assert (out / "results" / "run.json").read_bytes() == before
    assert run_ids(out) == first

    replaced = nx_run(*args, "--overwrite")
    assert replaced.returncode == 0, replaced.stderr
    assert "replaced the earlier run's outputs" in replaced.stderr
    second = run_ids(out)
    assert len(set(second.values())) == 1 and second["results"] != first["results"]


def test_kill_mid_run_leaves_the_earlier_set_whole(tiny_data_dir, tmp_path):
    """SIGKILL during the final fit of a re-run: the earlier outputs stay one whole set, and
    the next run removes the killed run's staging folder."""
    out = tmp_path / "out"
    normal = write_config(tmp_path / "run.toml", CONFIG + FAST_LGBM)
    base = ("train", "--data-dir", tiny_data_dir, "--output-dir", out, "--final")
    assert nx_run(base[0], normal, *base[1:]).returncode == 0
    first = run_ids(out)
    files = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}

    marker = tmp_path / "hanging"
    record = tmp_path / "fits.jsonl"
    # three CV folds, one of them empty (expanding): two fold fits, then the final fit hangs
    hanging = CONFIG + HANGING.format(record=record, hang_at=3, marker=marker)
    config = write_config(tmp_path / "hang.toml", hanging)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [NX_EXE, base[0], str(config), *map(str, base[1:]), "--overwrite"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline, "the final fit never started"
        time.sleep(0.1)
    process.send_signal(signal.SIGKILL)
    process.wait()

    assert run_ids(out) == first
    assert {p: p.read_bytes() for p in files} == files
    assert list(out.glob(".nx-run-run-*")), "the killed run staged its outputs aside"

    rerun = nx_run(base[0], normal, *base[1:], "--overwrite")
    assert rerun.returncode == 0, rerun.stderr
    assert not list(out.glob(".nx-run-*"))
    assert len(set(run_ids(out).values())) == 1


def test_output_dir_that_is_a_file(tiny_data_dir, tmp_path):
    config = write_config(tmp_path / "run.toml", CONFIG + FAST_LGBM)
    out = tmp_path / "out"
    out.write_text("not a folder")
    result = nx_run("train", config, "--data-dir", tiny_data_dir, "--output-dir", out)
    assert_user_error(result, f"{out} is a file, not a folder", "--output-dir")
    assert "Training" not in result.stderr
    assert out.read_text() == "not a folder"


def test_read_only_output_dir(tiny_data_dir, tmp_path):
    config = write_config(tmp_path / "run.toml", CONFIG + FAST_LGBM)
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o555)
    try:
        result = nx_run_unprivileged(
            "train", config, "--data-dir", tiny_data_dir, "--output-dir", out
        )
        assert_user_error(result, f"{out} is not writable", "--output-dir")
        assert "Training" not in result.stderr
        assert list(out.iterdir()) == []
    finally:
        out.chmod(0o755)


def test_negative_trees_fail_before_the_data_is_read(tiny_data_dir, tmp_path):
    config = write_config(
        tmp_path / "run.toml", CONFIG + FAST_LGBM.replace("n_estimators = 20", "n_estimators = -5")
    )
    out = tmp_path / "out"
    result = nx_run("train", config, "--data-dir", tiny_data_dir, "--output-dir", out)
    assert_user_error(result, "model.params.n_estimators: must be at least 1, got -5")
    assert "Reading" not in result.stderr
    assert not out.exists()


@pytest.fixture
def full_disk(tmp_path):
    """A 2 MiB tmpfs (root only): too small for a run's outputs."""
    mount = tmp_path / "full"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.decode().strip()}")
    (mount / "filler").write_bytes(b"\0" * (2 * 2**20 - 64 * 1024))
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def test_full_disk_fails_before_training(tiny_data_dir, tmp_path, full_disk):
    config = write_config(tmp_path / "run.toml", CONFIG + FAST_LGBM)
    out = full_disk / "out"
    result = nx_run("train", config, "--data-dir", tiny_data_dir, "--output-dir", out)
    assert_user_error(result, "MiB free, this run needs about", "--output-dir")
    assert "Training" not in result.stderr
    assert not out.exists()
