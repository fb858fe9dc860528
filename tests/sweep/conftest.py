"""Sweep fixtures: a tiny base config and helpers to write sweep files and run ``nx sweep``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import nx_run

REPO = Path(__file__).resolve().parents[2]

BASE = """
[data]
feature_set = "small"
embargo_eras = 2
[training.cv]
n_splits = 3
[model]
type = "LGBMRegressor"
[model.params]
n_estimators = 15
learning_rate = 0.05
max_depth = 3
num_leaves = 7
min_data_in_leaf = 20
n_jobs = 1
random_state = 1
verbose = -1
"""


@pytest.fixture
def workdir(tmp_path) -> Path:
    (tmp_path / "base.toml").write_text(BASE)
    return tmp_path


def write_sweep(folder: Path, text: str, name: str = "sweep.toml") -> Path:
    path = folder / name
    path.write_text('base = "base.toml"\n' + text)
    return path


def nx_sweep(*args, cwd: Path):
    """``nx sweep ... --json`` as a subprocess; the test models are importable on workers."""
    env = {"PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return nx_run("sweep", *args, "--json", env=env, cwd=cwd)


def sweep_json(done) -> dict:
    return json.loads(done.stdout)
