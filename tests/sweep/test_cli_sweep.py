"""``nx sweep`` through the real command on tiny synthetic data: local, resumed, failing,
on a local Dask cluster of 2 workers, and with a worker killed mid-config."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import assert_user_error, nx_run
from tests.sweep.conftest import nx_sweep, sweep_json, write_sweep

FIVE = (
    'name = "{round}-lr{model.params.learning_rate}-{data.feature_set}"\n'
    'round = "r1"\n'
    "[grid]\n"
    "model.params.learning_rate = [0.02, 0.1]\n"
    'data.feature_set = ["small", "medium"]\n'
    "[[list]]\n"
    'model.type = "tests.sweep.models:Failing"\n'
    "model.params.learning_rate = 9.0\n"
)
FAILING = "r1-lr9.0-small"


def _status(done) -> dict[str, str]:
    return {row["name"]: row["status"] for row in sweep_json(done)["configs"]}


def _predictions(folder: Path, name: str) -> pl.DataFrame:
    return pl.read_parquet(folder / "predictions" / f"{name}.parquet").sort("id")


def test_local_sweep_failure_recorded_leaderboard_and_resume(workdir, tiny_data_dir):
    path = write_sweep(workdir, FIVE)
    done = nx_sweep(path, "--data-dir", tiny_data_dir, "--output-dir", "exp", cwd=workdir)
    assert done.returncode == 1, done.stderr  # one config failed
    document = sweep_json(done)
    rows = document["configs"]
    assert [r["status"] for r in rows] == ["done"] * 4 + ["failed"]
    bmc = [r["bmc_mean"] for r in rows[:4]]
    assert bmc == sorted(bmc, reverse=True) and all(b is not None for b in bmc)
    assert [r["rank"] for r in rows] == [1, 2, 3, 4, None]
    assert rows[4]["name"] == FAILING
    assert "RuntimeError: boom from the test model" in rows[4]["error"]
    assert document["failed"] == 1 and document["round"] == "r1"

    exp = workdir / "exp"
    assert sorted(p.stem for p in (exp / "configs").glob("*.json")) == sorted(
        r["name"] for r in rows
    )
    assert sorted(p.stem for p in (exp / "results").glob("*.json")) == sorted(
        r["name"] for r in rows[:4]
    )
    for row in rows[:4]:  # the leaderboard's numbers are the results files' numbers
        results = json.loads((exp / "results" / f"{row['name']}.json").read_text())
        assert results["metrics"]["bmc"]["mean"] == pytest.approx(row["bmc_mean"], abs=1e-12)
    record = json.loads((exp / "sweeps" / "sweep.json").read_text())
    assert record["configs"][FAILING]["status"] == "failed"
    assert "boom" in record["configs"][FAILING]["error"]

    # a generated config is an ordinary config: nx train reproduces the sweep's predictions
    best = rows[0]["name"]
    again = nx_run(
        "train",
        exp / "configs" / f"{best}.json",
        "--data-dir",
        tiny_data_dir,
        "--output-dir",
        workdir / "again",
        cwd=workdir,
    )
    assert again.returncode == 0, again.stderr
    assert _predictions(workdir / "again", best).equals(_predictions(exp, best))

    # resume: complete configs are skipped, the failed one runs (and fails) again
    mtime = (exp / "results" / f"{best}.json").stat().st_mtime_ns
    resumed = nx_sweep(path, "--data-dir", tiny_data_dir, "--output-dir", "exp", cwd=workdir)
    assert resumed.returncode == 1
    status = _status(resumed)
    assert status.pop(FAILING) == "failed"
    assert set(status.values()) == {"skipped"}
    assert (exp / "results" / f"{best}.json").stat().st_mtime_ns == mtime

    # for people: the leaderboard and the error as they are (no rich markup eaten)
    env = {"PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    shown = nx_run(
        "sweep", path, "--data-dir", tiny_data_dir, "--output-dir", "exp", env=env, cwd=workdir
    )
    assert shown.returncode == 1 and shown.stdout == ""
    assert f"{FAILING} failed: RuntimeError: boom from the test model (see [model.params])" in (
        " ".join(shown.stderr.split())
    )


def test_sweep_help_shows_the_sweep_file_tables():
    shown = nx_run("sweep", "--help", env={"COLUMNS": "200"})
    assert "base config, [grid] and/or [[list]]." in shown.stdout


def test_interrupted_sweep_resumes_where_it_stopped(workdir, tiny_data_dir):
    marker = workdir / "interrupted"
    entries = "".join(f"[[list]]\nmodel.params.num_leaves = {leaves}\n" for leaves in (3, 5)) + (
        '[[list]]\nmodel.type = "tests.sweep.models:InterruptOnce"\n'
        f'model.params.marker = "{marker}"\n'
        "[[list]]\nmodel.params.num_leaves = 9\n"
    )
    path = write_sweep(workdir, 'name = "c{index}"\n' + entries)
    first = nx_sweep(path, "--data-dir", tiny_data_dir, "--output-dir", "exp", cwd=workdir)
    assert first.returncode == 130, first.stderr  # Ctrl-C (SIGINT) during config 3
    assert marker.exists()
    results = workdir / "exp" / "results"
    assert sorted(p.stem for p in results.glob("*.json")) == ["c1", "c2"]
    assert not list((workdir / "exp").rglob("*.tmp"))
    second = nx_sweep(path, "--data-dir", tiny_data_dir, "--output-dir", "exp", cwd=workdir)
    assert second.returncode == 0, second.stderr
    assert _status(second) == {"c1": "skipped", "c2": "skipped", "c3": "done", "c4": "done"}


def test_workers_2_with_a_killed_worker_writes_every_result_once(workdir, tiny_data_dir):
    marker = workdir / "killed"
    text = (
        'name = "c{index}"\n'
        "[grid]\n"
        "model.params.learning_rate = [0.02, 0.1]\n"
        "[[list]]\n"
        'model.type = "tests.sweep.models:DieOnce"\n'
        f'model.params.marker = "{marker}"\n'
    )
    path = write_sweep(workdir, text)
    done = nx_sweep(
        path, "--data-dir", tiny_data_dir, "--output-dir", "exp", "--workers", "2", cwd=workdir
    )
    assert done.returncode == 0, done.stderr
    assert marker.exists()  # a worker process really died mid-config
    rows = sweep_json(done)["configs"]
    assert len(rows) == 3 and {r["status"] for r in rows} == {"done"}
    exp = workdir / "exp"
    record = json.loads((exp / "sweeps" / "sweep.json").read_text())
    assert {e["status"] for e in record["configs"].values()} == {"done"}
    assert sorted(p.stem for p in (exp / "results").glob("*.json")) == sorted(
        r["name"] for r in rows
    )
    assert not [p for p in exp.rglob("*") if p.name.startswith(".")]  # no temp leftovers
    for row in rows:  # results point at the experiment dir, not a worker's scratch dir
        results = json.loads((exp / "results" / f"{row['name']}.json").read_text())
        assert results["output"]["output_dir"] == "exp"

    # the same configs run here, one after another, give the same predictions
    local = nx_sweep(path, "--data-dir", tiny_data_dir, "--output-dir", "local", cwd=workdir)
    assert local.returncode == 0, local.stderr
    for row in rows:
        assert _predictions(workdir / "local", row["name"]).equals(_predictions(exp, row["name"]))


def test_every_config_is_checked_before_any_runs(workdir, tiny_data_dir):
    path = write_sweep(workdir, '[grid]\ndata.target_col = ["target", "target_nope"]\n')
    done = nx_sweep(path, "--data-dir", tiny_data_dir, "--output-dir", "exp", cwd=workdir)
    assert_user_error(done, "sweep.toml", "config 2", "data.target_col", "target_nope")
    assert not (workdir / "exp").exists()


def test_results_the_sweep_did_not_make_are_never_overwritten(workdir, tiny_data_dir):
    own = nx_run(
        "train",
        workdir / "base.toml",
        "--data-dir",
        tiny_data_dir,
        "--output-dir",
        "exp",
        cwd=workdir,
    )
    assert own.returncode == 0, own.stderr
    before = (workdir / "exp" / "results" / "base.json").read_bytes()
    path = write_sweep(workdir, 'name = "base"\n[grid]\nmodel.params.num_leaves = [3]\n')
    done = nx_sweep(path, "--data-dir", tiny_data_dir, "--output-dir", "exp", cwd=workdir)
    assert_user_error(done, "not made by this sweep", "--output-dir")
    assert (workdir / "exp" / "results" / "base.json").read_bytes() == before

    # in its own dir it runs; --rerun runs a complete config again
    first = nx_sweep(path, "--data-dir", tiny_data_dir, "--output-dir", "own", cwd=workdir)
    assert first.returncode == 0, first.stderr
    results = workdir / "own" / "results" / "base.json"
    mtime = results.stat().st_mtime_ns
    again = nx_sweep(
        path, "--data-dir", tiny_data_dir, "--output-dir", "own", "--rerun", cwd=workdir
    )
    assert again.returncode == 0, again.stderr
    assert _status(again) == {"base": "done"} and results.stat().st_mtime_ns != mtime


def test_workers_and_scheduler_exclude_each_other(workdir, tiny_data_dir):
    path = write_sweep(workdir, "[grid]\nmodel.params.num_leaves = [3]\n")
    done = nx_sweep(
        path,
        "--data-dir",
        tiny_data_dir,
        "--workers",
        "2",
        "--scheduler",
        "tcp://127.0.0.1:1",
        cwd=workdir,
    )
    assert_user_error(done, "--workers and --scheduler")
