"""numba for nx: import ``njit`` from here, never from numba directly.

Importing this module points numba's on-disk cache (the compiled kernels of every
``cache=True`` function) at a per-user directory before numba is imported, so that
no kernel is compiled, or looked up, anywhere else:

1. ``$NUMBA_CACHE_DIR`` when the user has set it (numba's own setting wins);
2. else the user's cache directory, ``$XDG_CACHE_HOME/nx/numba`` (default
   ``~/.cache/nx/numba``; ``~/Library/Caches/nx/numba`` on macOS,
   ``%LOCALAPPDATA%\\nx\\Cache\\numba`` on Windows), whether or not the installed
   package is writable: the source tree of an editable install stays clean and a
   read-only install (system site-packages, a container image) still caches;
3. else, when that cannot be created or written, the package's own ``__pycache__``
   (numba's default) if it is writable, else ``<tmp>/nx-numba-<user>``.

numba keeps one subfolder per source folder there, keyed by its path, and checks
each entry against a hash of its source file, so several checkouts or versions of
nx share the directory without reusing each other's kernels.
"""

from __future__ import annotations

import getpass
import importlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

CACHE_ENV = "NUMBA_CACHE_DIR"
PACKAGE_DIR = Path(__file__).resolve().parent


def user_cache_dir(environ: Mapping[str, str] = os.environ, platform: str = sys.platform) -> Path:
    """nx's numba folder under the platform's per-user cache directory."""
    if platform == "win32":
        base = environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "nx" / "Cache" / "numba"
    if platform == "darwin":
        return Path.home() / "Library" / "Caches" / "nx" / "numba"
    base = environ.get("XDG_CACHE_HOME", "")
    # XDG: a relative XDG_CACHE_HOME is invalid and must be ignored
    root = Path(base) if os.path.isabs(base) else Path.home() / ".cache"
    return root / "nx" / "numba"


def writable_dir(path: Path) -> bool:
    """Whether ``path`` exists (after creating it) and this process may write there."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(path, os.W_OK | os.X_OK)


def choose_cache_dir(
    environ: Mapping[str, str] = os.environ,
    package_dir: Path = PACKAGE_DIR,
    is_writable: Callable[[Path], bool] = writable_dir,
) -> Path | None:
    """The folder numba should cache nx's kernels in; None means numba's default
    (next to the source files, in the package's ``__pycache__``)."""
    if environ.get(CACHE_ENV):
        return Path(environ[CACHE_ENV])
    try:
        user_dir = user_cache_dir(environ)
    except RuntimeError:  # no home directory to be found
        user_dir = None
    if user_dir is not None and is_writable(user_dir):
        return user_dir
    if is_writable(package_dir):
        return None
    user = environ.get("USER") or environ.get("USERNAME") or _login_name()
    return Path(tempfile.gettempdir()) / f"nx-numba-{user}"


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry for this uid (some containers)
        return str(os.getuid()) if hasattr(os, "getuid") else "user"


def configure_cache() -> Path | None:
    """Set ``NUMBA_CACHE_DIR`` for this process (and numba's config, when numba was
    imported before nx); returns the folder, or None for numba's default."""
    cache_dir = choose_cache_dir()
    if cache_dir is not None:
        os.environ[CACHE_ENV] = str(cache_dir)
        config = sys.modules.get("numba.core.config")
        if config is not None:
            config.CACHE_DIR = str(cache_dir)
    return cache_dir


CACHE_DIR = configure_cache()

from numba import njit  # noqa: E402  (after the cache directory is set)


def cache_is_cold(kernel) -> bool:
    """Whether numba's cache holds nothing at all for the jitted ``kernel`` (no index
    file: a fresh install or an emptied cache). False when unsure."""
    try:
        index = kernel._cache._cache_file._index_path
    except AttributeError:  # not a cache=True kernel, or another numba's internals
        return False
    return not os.path.exists(index)


class ChildCompile:
    """A child Python process that compiles (and caches) some kernels while this
    process compiles others.

    numba compiles under one lock per process, so a thread cannot compile alongside
    the main work; a second process can, and numba writes its cache files atomically
    (temporary file, then rename), so both may write the same cache and each loads
    what the other cached. The child calls each ``"module:function"`` of ``steps`` in
    order (each compiles kernels by calling them) and reports each one done on its
    stdout; it prints nothing else, and it exits as soon as this process is gone (it
    watches its stdin pipe, which ends when the parent exits or is killed) or when
    Ctrl-C reaches the terminal's process group. :meth:`wait` reaps it.
    """

    def __init__(self, steps: list[str]):
        code = f"from nx.engine._numba import child_main; child_main({steps!r})"
        self._process = subprocess.Popen(
            [sys.executable, "-c", code],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self._done: set[str] = set()
        self._lock = threading.Lock()

    def wait_for(self, step: str) -> bool:
        """Until the child has done ``step`` (True) or has exited without it (False)."""
        with self._lock:
            while step not in self._done and self._read_report():
                pass
            return step in self._done

    def interrupted(self) -> bool:
        """Whether the child ended by Ctrl-C (SIGINT reaches the whole process group)."""
        return self._process.poll() == -signal.SIGINT

    def wait(self, timeout: float = 300.0) -> None:
        """Until the child has exited (killed after ``timeout`` seconds); idempotent."""
        try:
            self._process.wait(timeout)  # (thread-safe, and not under the lock)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        with self._lock:
            while self._read_report():  # what it reported before exiting
                pass
            for pipe in (self._process.stdin, self._process.stdout):
                if pipe is not None:
                    pipe.close()

    def _read_report(self) -> bool:
        """Read one line of the child's report; False at its end."""
        stdout = self._process.stdout
        line = stdout.readline() if stdout is not None and not stdout.closed else ""
        if line:
            self._done.add(line.strip())
        return bool(line)


def child_main(steps: list[str]) -> None:
    """The body of a :class:`ChildCompile` process."""

    def exit_with_parent() -> None:
        sys.stdin.buffer.read()  # returns at end of file: the parent is gone
        os._exit(0)

    threading.Thread(target=exit_with_parent, daemon=True).start()
    for step in steps:
        module, function = step.split(":")
        getattr(importlib.import_module(module), function)()
        print(step, flush=True)


__all__ = [
    "CACHE_DIR",
    "njit",
    "configure_cache",
    "choose_cache_dir",
    "user_cache_dir",
    "cache_is_cold",
    "ChildCompile",
]
