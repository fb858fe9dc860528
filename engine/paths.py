"""Where nx keeps datasets (``<data_dir>/<data_version>/<file>``; the CLI reads the
data dir from ``--data-dir`` or ``$NX_DATA_DIR``) and how it writes files atomically.

Every file nx writes goes through :func:`atomic_output`: a hidden temporary file
``.<name>.nx<pid>.<random>.tmp`` next to the target, renamed onto it when complete.
A run killed with SIGKILL (or a crash) leaves its temporary file behind; the pid in
the name tells a later run that its writer is gone (:func:`stale_temp_files`), so
that run removes it (:func:`remove_stale_temp_files`).
"""

from __future__ import annotations

import atexit
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DATA_VERSION = "v5.2"
DATA_DIR_ENV = "NX_DATA_DIR"
DEFAULT_DATA_DIR = Path("data")

# .<target name>.nx<pid>.<random part>.tmp; before pids were recorded the
# names were .<target name>.<random>.tmp (8 characters of [a-z0-9_]).
_TEMP_NAME = re.compile(r"^\.(?P<target>.+)\.nx(?P<pid>\d+)\.[a-z0-9_]+\.tmp$")
_OLD_TEMP_NAME = re.compile(r"^\.(?P<target>.+)\.[a-z0-9_]{8}\.tmp$")


# Temporary files (and folders) of this process's unfinished atomic writes. An interrupt
# can land inside contextlib's own exit code, before a writer's ``finally`` runs; the
# CLI's interrupt handler (and exit) then removes what is left with remove_pending_temp_files.
_PENDING: set[Path] = set()


def remove_pending_temp_files() -> None:
    """Remove the temporary files of this process's unfinished atomic writes."""
    for path in list(_PENDING):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            try:
                path.unlink(missing_ok=True)
            except OSError:
                pass  # nothing more to do at exit; a later run removes stale ones
        _PENDING.discard(path)


atexit.register(remove_pending_temp_files)


def _create(path: Path, folder: bool) -> None:
    """Create ``path`` exclusively: a folder, or an empty file (both umask-based)."""
    if folder:
        os.mkdir(path)
    else:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))


def _new_temp(path: Path, folder: bool = False) -> Path:
    """Create and register a new temporary file (or folder) for ``path``.

    The name is registered in ``_PENDING`` before it is created, so Ctrl-C at any
    moment leaves nothing that the CLI's clean-up does not know of. (Holding the
    signal instead is not enough: another thread may receive it, and Python then
    raises in this one at once.)
    """
    while True:
        tmp = path.parent / f".{path.name}.nx{os.getpid()}.{secrets.token_hex(4)}.tmp"
        _PENDING.add(tmp)
        try:
            _create(tmp, folder)
        except FileExistsError:
            _PENDING.discard(tmp)
            continue
        except OSError:  # not created (read-only folder, full disk...)
            _PENDING.discard(tmp)
            raise
        return tmp  # an interrupt inside _create leaves it registered: it may exist


def version_dir(data_dir: Path | str, data_version: str = DEFAULT_DATA_VERSION) -> Path:
    """The folder holding one data version's raw and built files."""
    return Path(data_dir) / data_version


@contextmanager
def atomic_output(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success.

    On any error (KeyboardInterrupt included) the temporary file is removed, so an
    interrupted or failed write never leaves a truncated file where a later run would
    find (and reuse) it. Only SIGKILL leaves the temporary file; its name records the
    writer's pid so that the next run can tell it is stale and remove it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_temp(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
        _PENDING.discard(tmp)


@contextmanager
def atomic_output_in_folder(path: Path | str) -> Iterator[Path]:
    """Like :func:`atomic_output`, for writers that may still be running after an
    interrupt (a Polars sink on a worker thread): the temporary file lives in a
    hidden temporary folder, which is removed on error, so a writer that opens its
    file late finds no folder to create it in, instead of leaving a file behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    folder = _new_temp(path, folder=True)
    tmp = folder / path.name
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        for _ in range(5):  # a late writer may create its file while the folder goes
            shutil.rmtree(folder, ignore_errors=True)
            if not folder.exists():
                break
        _PENDING.discard(folder)


@dataclass(frozen=True)
class TempFile:
    """A temporary file (or folder) of :func:`atomic_output` found in a folder."""

    path: Path
    target: str  # the name of the file it was going to become
    pid: int | None  # the writer's pid (None: written by an nx without pids in names)
    stale: bool  # True when its writer is no longer running


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def temp_files(folder: Path | str) -> list[TempFile]:
    """nx's temporary files in ``folder`` (by name), each marked stale or in use."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.iterdir()):
        match = _TEMP_NAME.match(path.name)
        if match:
            pid = int(match["pid"])
            found.append(TempFile(path, match["target"], pid, not _running(pid)))
            continue
        match = _OLD_TEMP_NAME.match(path.name)
        if match:
            found.append(TempFile(path, match["target"], None, True))
    return found


def stale_temp_files(folder: Path | str) -> list[TempFile]:
    """Temporary files in ``folder`` left by nx runs that are no longer running."""
    return [temp for temp in temp_files(folder) if temp.stale]


def remove_stale_temp_files(folder: Path | str) -> list[Path]:
    """Remove the stale temporary files of earlier nx runs in ``folder``; return them.

    Best effort: a file that cannot be removed (read-only folder) is left in place.
    """
    removed = []
    for temp in stale_temp_files(folder):
        try:
            if temp.path.is_dir():
                shutil.rmtree(temp.path)
            else:
                temp.path.unlink()
        except FileNotFoundError:
            continue
        except OSError:
            continue
        removed.append(temp.path)
    return removed


def check_writable(folder: Path | str, *, fix: str) -> None:
    """Raise a one-line error unless files can be created in ``folder`` (made if absent).

    ``fix`` ends the message (e.g. "or pick another --data-dir").
    """
    from nx.engine.errors import DataError

    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise DataError(f"{folder} is a file, not a folder; {fix}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=f".nx{os.getpid()}.", suffix=".tmp", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise DataError(f"cannot write to {folder} ({reason}); {fix}") from None
