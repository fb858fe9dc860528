"""A small experiment trained by the real ``nx train`` on the tiny synthetic data:
two LightGBM configs (5 and 10 trees) and a ridge, 4 expanding folds."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import pytest

from tests.conftest import nx_run

LGBM = """
[data]
feature_set = "small"
embargo_eras = 2
[training.cv]
n_splits = 4
[model]
type = "LGBMRegressor"
[model.params]
n_estimators = {trees}
learning_rate = 0.1
num_leaves = 7
n_jobs = 1
deterministic = true
force_col_wise = true
random_state = 7
verbose = -1
"""
RIDGE = """
[data]
feature_set = "medium"
embargo_eras = 2
[training.cv]
n_splits = 4
[model]
type = "Ridge"
[model.params]
alpha = 1.0
"""
RUNS = ("lgbm_5", "lgbm_10", "ridge")


@pytest.fixture(scope="session")
def experiment(tiny_data_dir, tmp_path_factory) -> Path:
    """The experiment dir (read-only for tests: copy it with ``experiment_copy``)."""
    root = tmp_path_factory.mktemp("report_experiment")
    configs = root / "configs_src"
    configs.mkdir()
    (configs / "lgbm_5.toml").write_text(LGBM.format(trees=5))
    (configs / "lgbm_10.toml").write_text(LGBM.format(trees=10))
    (configs / "ridge.toml").write_text(RIDGE)
    out = root / "exp"
    done = nx_run(
        "train", *sorted(configs.iterdir()), "--output-dir", out, "--data-dir", tiny_data_dir,
        "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture
def experiment_copy(experiment, tmp_path) -> Path:
    target = tmp_path / "exp"
    shutil.copytree(experiment, target)
    return target


def run_json(*args, subprocess: bool = False) -> dict:
    """``nx ARGS --json`` as a subprocess of the installed ``nx``, or (default, faster
    on a busy machine) through the same Typer app in this process."""
    if subprocess:
        done = nx_run(*args, "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)
    from typer.testing import CliRunner

    from nx.cli.app import app

    result = CliRunner().invoke(app, [*map(str, args), "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from the PNG header."""
    header = Path(path).read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])
