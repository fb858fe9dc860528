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
import os
import sys
import tempfile
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

__all__ = ["CACHE_DIR", "njit", "configure_cache", "choose_cache_dir", "user_cache_dir"]
