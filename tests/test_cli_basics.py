import json
import math

import pytest

from nx.cli.common import _json_safe
from nx.engine.paths import atomic_output

from .conftest import nx_run


def test_version_and_help(nx):
    result = nx("--version")
    assert result.exit_code == 0
    assert result.stdout.startswith("nx ")
    assert "Usage" in nx("--help").stdout


def test_installed_console_script_runs():
    result = nx_run("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("nx ")


def test_atomic_output_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "out.parquet"
    with pytest.raises(RuntimeError):
        with atomic_output(target) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
    with atomic_output(target) as tmp:
        tmp.write_text("done")
    assert [p.name for p in tmp_path.iterdir()] == ["out.parquet"]
    assert target.read_text() == "done"


def test_json_safe_writes_nan_as_null():
    doc = _json_safe({"a": math.nan, "b": [1.0, math.inf], "c": {"d": 2}})
    assert json.loads(json.dumps(doc)) == {"a": None, "b": [1.0, None], "c": {"d": 2}}


def test_atomic_output_uses_the_umask_mode(tmp_path):
    import os

    umask = os.umask(0o022)
    try:
        with atomic_output(tmp_path / "f.txt") as tmp:
            tmp.write_text("x")
    finally:
        os.umask(umask)
    assert (tmp_path / "f.txt").stat().st_mode & 0o777 == 0o644
