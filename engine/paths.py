"""Where nx keeps datasets (``<data_dir>/<data_version>/<file>``; the CLI reads the
data dir from ``--data-dir`` or ``$NX_DATA_DIR``) and how it writes files atomically."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DEFAULT_DATA_VERSION = "v5.2"
DATA_DIR_ENV = "NX_DATA_DIR"
DEFAULT_DATA_DIR = Path("data")


def version_dir(data_dir: Path | str, data_version: str = DEFAULT_DATA_VERSION) -> Path:
    """The folder holding one data version's raw and built files."""
    return Path(data_dir) / data_version


@contextmanager
def atomic_output(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success.

    On any error the temporary file is removed, so an interrupted or failed write
    never leaves a truncated file where a later run would find (and reuse) it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp creates owner-only files; outputs get the usual umask-based mode.
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o666 & ~umask)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
