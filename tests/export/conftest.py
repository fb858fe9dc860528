"""A Python 3.12 runtime venv built once per test run, and models saved by ``nx train --final``.

The runtime is built by the real ``nx runtime install --python 3.12`` into
``$NX_TEST_RUNTIME_DIR`` when set (a cache kept between runs while developing; an
up-to-date runtime there is reused), else into the session's temporary folder (CI:
built on every run, about a minute).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import nx_run

RUNTIME = "3.12"

# LightGBM on the small set (final fit only), the same with the benchmark columns as
# inputs and NaN for all-twos features, and a ridge on the medium set.
CONFIGS = {
    "lgbm": """
[data]
feature_set = "small"
[training]
final_fit = true
[training.cv]
enabled = false
[model]
type = "LGBMRegressor"
[model.params]
n_estimators = 25
learning_rate = 0.1
num_leaves = 7
n_jobs = 1
deterministic = true
force_col_wise = true
verbose = -1
""",
    "bench": """
[data]
feature_set = "small"
[preprocessing]
nan_missing_all_twos = true
[training]
final_fit = true
[training.cv]
enabled = false
[model]
type = "LGBMRegressor"
input_groups = ["features", "benchmark_models"]
[model.params]
n_estimators = 25
learning_rate = 0.1
num_leaves = 7
n_jobs = 1
verbose = -1
""",
    "ridge": """
[data]
feature_set = "medium"
[training]
final_fit = true
[training.cv]
enabled = false
[model]
type = "Ridge"
[model.params]
alpha = 10.0
""",
}


@pytest.fixture(scope="session")
def runtime_env(tmp_path_factory) -> dict[str, str]:
    """Environment for ``nx`` subprocesses whose runtime dir holds a ready 3.12 runtime."""
    cache = os.environ.get("NX_TEST_RUNTIME_DIR")
    root = Path(cache) if cache else tmp_path_factory.mktemp("runtimes")
    env = {"NX_RUNTIME_DIR": str(root)}
    done = nx_run("runtime", "install", "--python", RUNTIME, "--json", env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "ready"
    return env


def runtime_python(env: dict[str, str]) -> Path:
    return Path(env["NX_RUNTIME_DIR"]) / f"py{RUNTIME}" / "bin" / "python"


def run_in_runtime(env: dict[str, str], code: str, *args: str, cwd: Path | None = None):
    """Run ``code`` with the runtime's interpreter, isolated (nx cannot be imported)."""
    return subprocess.run(
        [str(runtime_python(env)), "-I", "-c", code, *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
    )


@pytest.fixture(scope="session")
def models(tiny_data_dir, tmp_path_factory) -> dict[str, Path]:
    """``{name: models/<name>/}`` trained by one ``nx train --final`` on the tiny data."""
    folder = tmp_path_factory.mktemp("export_models")
    paths = []
    for name, text in CONFIGS.items():
        path = folder / f"{name}.toml"
        path.write_text(text)
        paths.append(path)
    done = nx_run(
        "train",
        *paths,
        "--data-dir",
        tiny_data_dir,
        "--output-dir",
        folder / "exp",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    return {name: folder / "exp" / "models" / name for name in CONFIGS}
