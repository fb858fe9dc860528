"""``nx numerai upload`` and ``nx numerai submit`` as subprocesses against a fake Numerai API
served on 127.0.0.1: the bytes must arrive intact and the calls come in Numerai's order."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import cloudpickle
import polars as pl
import pytest

from ..conftest import nx_run
from .conftest import fake_env
from .fake_api import MODEL_ID, SECRET_KEY

UPLOAD_ORDER = [
    "account",
    "computePickleDockerImages",
    "computePickleDataVersions",
    "computePickleUploadAuth",
    "PUT stored-model.pkl",
    "createComputePickleUpload",
    "computePickles",  # pending
    "computePickles",  # succeeded
    "assignPickleToModel",
]


def _predict(live_features):
    return live_features.iloc[:, :1].rank(pct=True)


@pytest.fixture
def pickle_file(tmp_path):
    path = tmp_path / "model.pkl"
    path.write_bytes(cloudpickle.dumps(_predict) + bytes(range(256)) * 64)
    return path


def test_upload_sends_the_bytes_in_numerais_order(fake_numerai, pickle_file):
    result = nx_run(
        "numerai", "upload", pickle_file, "--model", "nx_model", "--skip-check",
        "--poll-interval", "0", "--json",
        env=fake_env(fake_numerai),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert fake_numerai.calls == UPLOAD_ORDER
    assert fake_numerai.uploads["stored-model.pkl"] == pickle_file.read_bytes()
    registered = fake_numerai.pickles["pickle-1"]
    assert registered["dockerImageId"] == "img-312"  # --runtime 3.12 -> "Python 3.12"
    assert registered["dataVersionId"] == "dv-52"
    assert registered["filename"] == "stored-model.pkl"
    assert fake_numerai.assigned == [(MODEL_ID, "pickle-1")]
    document = json.loads(result.stdout)
    assert document["pickle_id"] == "pickle-1"
    assert document["validation_status"] == "succeeded"
    assert document["assigned"] is True
    assert document["bytes"] == pickle_file.stat().st_size
    assert SECRET_KEY not in result.stdout + result.stderr


def test_failed_validation_prints_the_log_and_exits_3(fake_numerai, pickle_file):
    fake_numerai.validation = ["failed"]
    result = nx_run(
        "--debug", "numerai", "upload", pickle_file, "--model", "nx_model", "--skip-check",
        "--poll-interval", "0",
        env=fake_env(fake_numerai),
    )  # fmt: skip
    assert result.returncode == 3, result.stderr
    assert "ModuleNotFoundError: No module named 'mylib'" in result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(error_lines) == 1 and "validation of model.pkl failed" in error_lines[0]
    assert "assignPickleToModel" not in fake_numerai.calls
    assert fake_numerai.calls[-1] == "triggerLogs"
    assert SECRET_KEY not in result.stdout + result.stderr


_WITH_STUB_CHECK = """
import sys, types
from pathlib import Path
from nx.engine.errors import ExportError
MARKER, OUTCOME = Path(sys.argv[1]), sys.argv[2]
stub = types.ModuleType("nx.engine.export")
def check_pickle(pickle_path, *, runtime="3.12", data_dir=None):
    MARKER.write_text(f"{Path(pickle_path).name} {runtime}")
    if OUTCOME == "fail":
        raise ExportError("model.pkl imports 'mylib', which Numerai's runtime lacks")
stub.check_pickle = check_pickle
sys.modules["nx.engine.export"] = stub
from nx.cli.app import main
sys.argv = ["nx", *sys.argv[3:]]
main()
"""


@pytest.mark.parametrize("outcome", ["pass", "fail"])
def test_upload_runs_check_pickle_first(fake_numerai, pickle_file, tmp_path, outcome):
    """The check for the runtime runs before anything is sent; a failing check stops all."""
    marker = tmp_path / "checked.txt"
    args = ["numerai", "upload", str(pickle_file), "--model", "nx_model", "--runtime", "3.11",
            "--no-wait", "--data-dir", str(tmp_path)]  # fmt: skip
    result = _run_with_stub_check(fake_numerai, marker, outcome, *args)
    assert marker.is_file(), result.stderr
    assert marker.read_text() == "model.pkl 3.11"
    if outcome == "fail":
        assert result.returncode == 2
        assert "Error: model.pkl imports 'mylib'" in result.stderr
        assert fake_numerai.calls == []
    else:
        assert result.returncode == 0, result.stderr
        assert fake_numerai.pickles["pickle-1"]["dockerImageId"] == "img-311"
        assert "computePickles" not in fake_numerai.calls  # --no-wait
        assert fake_numerai.calls[-1] == "assignPickleToModel"


def _run_with_stub_check(fake, marker, outcome, *args):
    return subprocess.run(
        [sys.executable, "-c", _WITH_STUB_CHECK, str(marker), outcome, *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, **fake_env(fake)},
    )


def test_submit_sends_the_file_in_numerais_order(fake_numerai, tiny_data_dir, tmp_path):
    live = pl.read_parquet(tiny_data_dir / "v5.2" / "live.parquet", columns=["id"])
    predictions = tmp_path / "preds.csv"
    live.with_columns(prediction=pl.int_range(pl.len()) / pl.len()).write_csv(predictions)
    result = nx_run(
        "numerai", "submit", predictions, "--model", "nx_model",
        "--data-dir", tiny_data_dir, "--json",
        env=fake_env(fake_numerai),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert fake_numerai.calls == [
        "account",
        "submissionUploadAuth",
        "PUT sub-preds.csv",
        "createSubmission",
    ]
    assert fake_numerai.uploads["sub-preds.csv"] == predictions.read_bytes()
    assert fake_numerai.submissions == [{"filename": "sub-preds.csv", "modelId": MODEL_ID}]
    document = json.loads(result.stdout)
    assert document["submission_id"] == "submission-1"
    assert document["validation"]["rows"] == live.height
    assert document["validation"]["live_ids_checked_against"].endswith("live.parquet")


def test_submit_refuses_ids_that_are_not_live(fake_numerai, tiny_data_dir, tmp_path):
    live = pl.read_parquet(tiny_data_dir / "v5.2" / "live.parquet", columns=["id"])
    predictions = tmp_path / "preds.csv"
    live.head(live.height - 3).with_columns(prediction=pl.lit(0.5)).write_csv(predictions)
    result = nx_run(
        "numerai", "submit", predictions, "--model", "nx_model", "--data-dir", tiny_data_dir,
        env=fake_env(fake_numerai),
    )  # fmt: skip
    assert result.returncode == 2
    assert "3 live ids have no prediction" in result.stderr
    assert fake_numerai.calls == []
