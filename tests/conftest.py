"""Shared fixtures: run the real ``nx`` command in-process or as a subprocess."""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nx.cli.app import app

NX_EXE = shutil.which("nx", path=str(Path(sys.executable).parent)) or "nx"


def nx_run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None):
    """Run the installed ``nx`` executable; returns the CompletedProcess (text mode)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [NX_EXE, *map(str, args)], capture_output=True, text=True, env=full_env, cwd=cwd
    )


def _without_root_override():
    """As root, drop CAP_DAC_OVERRIDE so that folder permissions apply to the command."""
    if os.geteuid() != 0:
        return None
    libc = ctypes.CDLL(None, use_errno=True)

    def drop() -> None:
        if libc.prctl(24, 1, 0, 0, 0) != 0:  # PR_CAPBSET_DROP, CAP_DAC_OVERRIDE
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")

    return drop


def nx_run_unprivileged(*args: str):
    """``nx_run`` for which read-only folders are read-only, also when the tests run as root."""
    return subprocess.run(
        [NX_EXE, *map(str, args)],
        capture_output=True,
        text=True,
        preexec_fn=_without_root_override(),
    )


@pytest.fixture
def nx():
    """In-process invocation of the real Typer app: ``nx("score", path)`` -> Result.

    ``result.stdout`` and ``result.stderr`` are kept apart, ``result.exit_code``
    is the exit status.
    """
    runner = CliRunner()

    def invoke(*args: str, env: dict[str, str] | None = None):
        return runner.invoke(app, [str(a) for a in args], env=env, catch_exceptions=False)

    return invoke


def assert_user_error(result, *fragments: str) -> None:
    """A user error: exit code 2, one line on stderr naming the problem, no traceback."""
    stderr = result.stderr
    assert result.exit_code == 2 if hasattr(result, "exit_code") else result.returncode == 2, stderr
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


TINY_SEED = 1


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory) -> Path:
    """A data dir holding ``v5.2/`` with every raw and built file (``--scale tiny``, seed 1).

    Shared by the whole session: treat it as read-only (copy it to modify files).
    """
    from nx.engine.data.build import build_data

    data_dir = tmp_path_factory.mktemp("tiny_data")
    build_data(data_dir, "v5.2", synthetic=True, scale="tiny", seed=TINY_SEED)
    return data_dir
