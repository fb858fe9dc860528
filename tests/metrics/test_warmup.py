"""Compiling on two cores when numba's cache is cold (``nx.engine._numba.ChildCompile``,
``nx.engine.metrics.warmup``): the child's kernels land in the cache the parent
reads, the child never outlives its parent or a Ctrl-C, prints nothing, and a cold
``nx score`` gives the numbers of a warm one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tests.conftest import NX_EXE, nx_run

KERNELS = """
import time

from nx.engine._numba import njit


@njit(cache=True)
def twice(x):
    return 2 * x


def compile_twice():
    twice(1)


def fail():
    raise RuntimeError("this step fails")


def sleep_long():
    time.sleep(120)
"""


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    """A module of kernels on the path, and an empty numba cache."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "tiny_kernels.py").write_text(KERNELS)
    return {
        **os.environ,
        "PYTHONPATH": str(tmp_path / "src"),
        "NUMBA_CACHE_DIR": str(tmp_path / "cache"),
    }


def _python(script: str, env: dict[str, str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        **kwargs,
    )


def _gone(pid: int) -> bool:
    """The process has exited (reaped, or a zombie waiting for its new parent)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def _wait_gone(pid: int, seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _gone(pid):
            return True
        time.sleep(0.1)
    return False


def _processes_using(cache: Path) -> list[int]:
    """Running processes whose environment points numba at ``cache``."""
    marker = f"NUMBA_CACHE_DIR={cache}".encode() + b"\0"
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and marker in (proc / "environ").read_bytes():
                if not _gone(int(proc.name)):
                    found.append(int(proc.name))
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


def test_the_parent_loads_what_the_child_compiled(env):
    done = _python(
        """
        import tiny_kernels
        from nx.engine._numba import ChildCompile, cache_is_cold

        cold = cache_is_cold(tiny_kernels.twice)
        child = ChildCompile(["tiny_kernels:compile_twice"])
        reported = child.wait_for("tiny_kernels:compile_twice")
        child.wait()
        value = tiny_kernels.twice(21)
        hits = sum(tiny_kernels.twice.stats.cache_hits.values())
        print(cold, reported, value, hits, cache_is_cold(tiny_kernels.twice))
        """,
        env,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "True", "42", "1", "False"]
    assert done.stderr == ""


def test_a_failing_child_says_nothing_and_the_parent_goes_on(env):
    done = _python(
        """
        import tiny_kernels
        from nx.engine._numba import ChildCompile

        child = ChildCompile(["tiny_kernels:fail", "tiny_kernels:compile_twice"])
        print(child.wait_for("tiny_kernels:compile_twice"))
        child.wait()
        child.wait()  # idempotent
        print(tiny_kernels.twice(21))
        """,
        env,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "42"]
    assert done.stderr == ""


def test_the_child_exits_when_its_parent_is_killed(env):
    done = _python(
        """
        import os, signal
        from nx.engine._numba import ChildCompile

        child = ChildCompile(["tiny_kernels:sleep_long"])
        print(child._process.pid, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """,
        env,
    )
    assert done.returncode == -signal.SIGKILL
    assert _wait_gone(int(done.stdout)), "the child outlived its parent"


def test_ctrl_c_ends_parent_and_child(env):
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                """
                from nx.engine._numba import ChildCompile

                child = ChildCompile(["tiny_kernels:sleep_long"])
                print(child._process.pid, flush=True)
                try:
                    child.wait()
                except KeyboardInterrupt:
                    child.wait()
                    print("interrupted", flush=True)
                """
            ),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,  # its own process group, as a terminal's job
    )
    child_pid = int(parent.stdout.readline())
    time.sleep(1.0)  # both running
    os.killpg(parent.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    out, err = parent.communicate(timeout=60)
    assert out.strip() == "interrupted"
    assert err == ""
    assert _wait_gone(child_pid)


def test_cold_nx_score_gives_the_warm_numbers(tiny_data_dir, tmp_path):
    """A cold cache (the child compiles half the kernels) and then a warm one: the
    same document, nothing on stderr, and no process left behind."""
    ids = pl.read_parquet(tiny_data_dir / "v5.2" / "full.parquet", columns=["id"])["id"]
    preds = tmp_path / "preds.parquet"
    rng = np.random.default_rng(3)
    pl.DataFrame({"id": ids, "prediction": rng.random(len(ids))}).write_parquet(preds)
    cache = tmp_path / "cache"
    args = ["score", preds, "--data-dir", tiny_data_dir, "--json"]
    cold = nx_run(*args, env={"NUMBA_CACHE_DIR": str(cache)})
    assert cold.returncode == 0, cold.stderr
    assert cold.stderr == ""
    kernels = sorted(p.name for p in cache.rglob("*.nbc"))
    assert any(name.startswith("join._index_keys") for name in kernels)  # by the child
    assert any(name.startswith("kernels._score_eras") for name in kernels)
    warm = nx_run(*args, env={"NUMBA_CACHE_DIR": str(cache)})
    assert warm.returncode == 0 and warm.stderr == ""
    assert json.loads(cold.stdout) == json.loads(warm.stdout)
    assert sorted(p.name for p in cache.rglob("*.nbc")) == kernels  # nothing compiled again
    assert not _processes_using(cache), "a process of the cold run is still running"


def test_ctrl_c_during_a_cold_compile_ends_nx_score(tiny_data_dir, tmp_path):
    """Ctrl-C while a cold cache compiles: one line, exit 130, no traceback, and
    neither the warm-up's child nor anything else of the run left running."""
    ids = pl.read_parquet(tiny_data_dir / "v5.2" / "full.parquet", columns=["id"])["id"]
    preds = tmp_path / "preds.parquet"
    pl.DataFrame({"id": ids, "prediction": np.linspace(0, 1, len(ids))}).write_parquet(preds)
    cache = tmp_path / "cache"
    run = subprocess.Popen(
        [NX_EXE, "score", str(preds), "--data-dir", str(tiny_data_dir), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NUMBA_CACHE_DIR": str(cache)},
        start_new_session=True,  # its own process group, as a terminal's job
    )
    deadline = time.monotonic() + 60
    while not list(cache.rglob("*.nbi")) and time.monotonic() < deadline:
        time.sleep(0.05)  # compiling has begun once the first kernel is cached
    assert run.poll() is None, "the cold run ended before it could be interrupted"
    os.killpg(run.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    out, err = run.communicate(timeout=120)
    assert run.returncode == 130, err
    assert out == ""
    assert "Interrupted" in err and "Traceback" not in err
    left = [pid for pid in _processes_using(cache) if not _wait_gone(pid)]
    assert not left, "a process of the interrupted run is still running"
