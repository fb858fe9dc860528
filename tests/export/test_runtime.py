"""``nx runtime install|list`` through the real command."""

from __future__ import annotations

import json
import os
from pathlib import Path

from nx.engine.export.runtimes import RUNTIMES
from tests.conftest import assert_user_error, nx_run
from tests.export.conftest import RUNTIME, run_in_runtime


def test_installed_runtime_has_exactly_the_pins_and_no_nx(runtime_env):
    listing = nx_run("runtime", "list", "--json", env=runtime_env)
    assert listing.returncode == 0, listing.stderr
    runtimes = {r["runtime"]: r for r in json.loads(listing.stdout)["runtimes"]}
    assert set(runtimes) == {"3.10", "3.11", "3.12", "3.13"}
    assert runtimes[RUNTIME]["status"] == "ready"
    assert runtimes[RUNTIME]["python"].startswith("3.12.")
    assert runtimes["3.12"]["pins"]["lightgbm"] == "4.5.0"
    assert runtimes["3.10"]["pins"]["numpy"] == "1.26.4"

    # what pip installed, read by the runtime's own interpreter
    code = (
        "import json, sys\n"
        "from importlib.metadata import version, PackageNotFoundError\n"
        "names = json.loads(sys.argv[1])\n"
        "out = {n: version(n) for n in names}\n"
        "try:\n"
        "    version('nx'); out['nx'] = 'installed'\n"
        "except PackageNotFoundError:\n"
        "    pass\n"
        "print(json.dumps({'versions': out, 'python': sys.version_info[:2]}))\n"
    )
    done = run_in_runtime(runtime_env, code, json.dumps(list(RUNTIMES[RUNTIME])))
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["versions"] == RUNTIMES[RUNTIME]  # nx is not there, every pin is exact
    assert found["python"] == [3, 12]


def test_install_again_reuses_the_runtime(runtime_env):
    marker = Path(runtime_env["NX_RUNTIME_DIR"]) / f"py{RUNTIME}" / "nx-runtime.json"
    before = marker.stat().st_mtime_ns
    done = nx_run("runtime", "install", "--python", RUNTIME, env=runtime_env)
    assert done.returncode == 0, done.stderr
    assert "ready" in done.stderr
    assert marker.stat().st_mtime_ns == before


def test_runtime_list_table(tmp_path):
    done = nx_run("runtime", "list", env={"NX_RUNTIME_DIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    for fragment in ("3.10", "3.13", "not installed", "4.6.0", "1.26.4"):
        assert fragment in done.stderr


def test_unknown_runtime_and_missing_interpreter(tmp_path):
    env = {"NX_RUNTIME_DIR": str(tmp_path)}
    assert_user_error(
        nx_run("runtime", "install", "--python", "3.9", env=env), "unknown runtime '3.9'", "3.12"
    )
    assert_user_error(
        nx_run("runtime", "install", "--python-exe", tmp_path / "nope", env=env),
        "not a Python 3.12 interpreter",
    )
    # no pyenv and nothing on PATH
    bare = {**env, "PYENV_ROOT": str(tmp_path / "no-pyenv"), "PATH": str(Path(os.__file__).parent)}
    done = nx_run("runtime", "install", "--python", "3.13", env=bare)
    assert_user_error(done, "no Python 3.13 interpreter found", "--python-exe")
    assert not any(tmp_path.iterdir())


def test_unreachable_index_is_one_line_and_leaves_nothing(tmp_path):
    env = {
        "NX_RUNTIME_DIR": str(tmp_path),
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_INDEX_URL": "http://127.0.0.1:9/simple",
        "PIP_EXTRA_INDEX_URL": "",
        "PIP_FIND_LINKS": "",
        "PIP_NO_CACHE_DIR": "1",
        "PIP_RETRIES": "0",
        "PIP_TIMEOUT": "5",
    }
    done = nx_run("runtime", "install", "--python", RUNTIME, "--json", env=env)
    assert done.stdout == ""
    assert_user_error(done, "package index is reachable", f"nx runtime install --python {RUNTIME}")
    assert list(tmp_path.iterdir()) == []  # no half-built runtime
