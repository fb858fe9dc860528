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


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_ctrl_c_right_after_a_temp_file_is_created_leaves_nothing(tmp_path, monkeypatch, kind):
    """Ctrl-C the moment the temporary file (folder) exists, before atomic_output has
    returned it: it was registered before it was created, so the CLI's clean-up
    removes it."""
    import os
    import signal

    from nx.engine import paths

    create = paths._create

    def create_then_interrupt(path, folder):
        create(path, folder)
        os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C does, at the worst moment

    monkeypatch.setattr(paths, "_create", create_then_interrupt)
    writer = paths.atomic_output if kind == "file" else paths.atomic_output_in_folder
    with pytest.raises(KeyboardInterrupt):
        with writer(tmp_path / "out.parquet"):
            pass
    paths.remove_pending_temp_files()  # what the CLI's interrupt handler does
    assert list(tmp_path.iterdir()) == []


def test_a_temp_file_that_cannot_be_created_is_not_left_registered(tmp_path, monkeypatch):
    """A full disk (or a read-only folder) at creation: the error reaches the caller,
    and nothing stays registered for the exit clean-up."""
    import errno

    from nx.engine import paths

    def full_disk(path, folder):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(paths, "_create", full_disk)
    before = set(paths._PENDING)
    with pytest.raises(OSError, match="No space"):
        with paths.atomic_output(tmp_path / "out.parquet"):
            pass
    assert paths._PENDING == before
    assert list(tmp_path.iterdir()) == []


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


@pytest.mark.parametrize("how", ["--debug", "NX_DEBUG"])
def test_debug_shows_the_traceback_and_the_error_line(tmp_path, how):
    args = ["build-data", "--offline", "--data-dir", tmp_path / "nowhere"]
    if how == "--debug":
        result = nx_run("--debug", *args)
    else:
        result = nx_run(*args, env={"NX_DEBUG": "1"})
    assert result.returncode == 2
    assert "Traceback (most recent call last)" in result.stderr
    assert "nx.engine.errors.DataError" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("Error: raw file")
    plain = nx_run(*args, env={"NX_DEBUG": "0"})
    assert plain.returncode == 2 and "Traceback" not in plain.stderr


def test_user_text_is_printed_without_rich_markup(tmp_path):
    from tests.conftest import assert_user_error

    odd = tmp_path / "add a [model.params] table [bold]x[/bold] [red]"
    result = nx_run("build-data", "--offline", "--data-dir", odd)
    assert_user_error(result, f"raw file {odd}/v5.2/train.parquet is missing")


def test_print_helpers_keep_brackets(capsys):
    from nx.cli.common import print_error, print_text, print_warning

    print_error("add a [model.params] table")
    print_warning("column [red] ignored")
    print_text("[dim]as is[/dim]")
    assert capsys.readouterr().err.splitlines() == [
        "Error: add a [model.params] table",
        "Warning: column [red] ignored",
        "[dim]as is[/dim]",
    ]


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (("build-data", "--eras", "abc"), ("Invalid value for '--eras'", "nx build-data --help")),
        (("build-data", "--nope"), ("No such option: --nope", "nx build-data --help")),
        (
            ("score", "p.csv", "--max-nan-fraction", "5"),
            ("'--max-nan-fraction'", "nx score --help"),
        ),
        (("data", "info", "extra"), ("unexpected extra argument", "nx data info --help")),
    ],
)
def test_usage_errors_are_one_line(args, fragments):
    from tests.conftest import assert_user_error

    assert_user_error(nx_run(*args), *fragments)


def test_no_command_prints_the_help():
    result = nx_run()
    assert "Usage" in result.stdout + result.stderr and "Traceback" not in result.stderr
