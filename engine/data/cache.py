"""The feature-matrix cache: a config's feature columns as one memory-mappable ``.npy``.

Decoding thousands of parquet columns is most of a small training run's time, and
every config of a sweep reads the same columns again. The first read of a
(data file, feature list) writes the matrix (int8 for Numerai features) to
``<data_dir>/.nx-cache/features/<file stem>-<feature set>-<key>.npy`` next to a
small ``.json`` describing it; every later read maps that file read-only instead
of decoding parquet, and processes on one machine share its pages.

The key hashes the data file's resolved path, size and mtime (ns) and the exact
feature names, so a rewritten parquet (or a redefined feature set) never reuses an
old matrix; the stale entry is removed when its replacement is written. Both
files are written atomically (temporary file, then rename), the ``.npy`` first,
so a reader that finds the ``.json`` finds a complete matrix.

Set ``NX_FEATURE_CACHE=off`` to read parquet every time (and write nothing).
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nx.engine.errors import DataError
from nx.engine.paths import atomic_output

CACHE_ENV = "NX_FEATURE_CACHE"
CACHE_SUBDIR = Path(".nx-cache") / "features"
FORMAT = 1

Allocate = Callable[[tuple[int, int], Any], np.ndarray]


def cache_dir(data_dir: Path | str) -> Path:
    """Where the feature matrices of ``data_dir`` are cached."""
    return Path(data_dir) / CACHE_SUBDIR


def cache_enabled() -> bool:
    return os.environ.get(CACHE_ENV, "on").strip().lower() not in ("off", "0", "false", "no")


def _file_facts(data_file: Path) -> dict[str, Any]:
    stat = data_file.stat()
    return {
        "data_file": str(data_file.resolve()),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
    }


def _key(facts: dict[str, Any], features: list[str]) -> str:
    document = json.dumps([FORMAT, facts, features], separators=(",", ":"))
    return hashlib.sha256(document.encode()).hexdigest()[:20]


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:60]


def cached_feature_matrix(
    data_dir: Path | str,
    data_file: Path,
    features: list[str],
    feature_set: str,
    read: Callable[[Allocate], np.ndarray],
    warn: Callable[[str], None] = lambda message: None,
) -> np.ndarray:
    """The feature matrix of ``features`` in ``data_file``, mapped from the cache when fresh.

    ``read(allocate)`` decodes the parquet into ``allocate(shape, dtype)``; on a miss
    the allocation is a memory-mapped temporary ``.npy`` under the cache, renamed into
    place once complete, and the returned matrix is the read-only mapping. A cache
    that cannot be written (read-only or full disk) is skipped with a warning.
    """
    if not features or not cache_enabled():
        return read(np.empty)
    folder = cache_dir(data_dir)
    facts = _file_facts(data_file)
    key = _key(facts, features)
    stem = f"{_safe(data_file.stem)}-{_safe(feature_set)}-{key}"
    npy, meta = folder / f"{stem}.npy", folder / f"{stem}.json"
    if meta.is_file() and npy.is_file():
        try:
            matrix = np.load(npy, mmap_mode="r")
            if matrix.ndim == 2 and matrix.shape[1] == len(features):
                return matrix
        except (OSError, ValueError):
            pass  # unreadable: rebuilt below
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_output(npy) as tmp:
            holder: dict[str, np.ndarray] = {}

            def allocate(shape: tuple[int, int], dtype: Any) -> np.ndarray:
                holder["out"] = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)
                return holder["out"]

            read(allocate)
            out = holder.pop("out")
            out.flush()
            release_pages(out)
            del out
            if _file_facts(data_file) != facts:
                raise DataError(
                    f"{data_file} changed while nx read it; run again once it is written"
                )
        document = {
            **facts,
            "feature_set": feature_set,
            "n_features": len(features),
            "features_sha256": hashlib.sha256("\n".join(features).encode()).hexdigest(),
            "format": FORMAT,
        }
        with atomic_output(meta) as tmp:
            tmp.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    except OSError as error:
        warn(f"feature cache not written under {folder} ({error}); reading parquet instead")
        return read(np.empty)
    _drop_stale(folder, facts["data_file"], document["features_sha256"], keep=stem)
    return np.load(npy, mmap_mode="r")


def release_pages(matrix: np.ndarray) -> None:
    """Drop a mapped matrix's resident pages from this process (the page cache keeps them).

    Clean file pages that this process no longer needs stop counting in its RSS;
    the next access maps them again from the page cache (or the disk). No-op for
    ordinary arrays.
    """
    handle = getattr(matrix, "_mmap", None)
    if handle is None:
        base = getattr(matrix, "base", None)
        handle = getattr(base, "_mmap", None) if base is not None else None
    if isinstance(handle, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED"):
        try:
            handle.madvise(mmap.MADV_DONTNEED)
        except (OSError, ValueError):
            pass  # only a memory optimisation


@dataclass(frozen=True)
class CacheEntry:
    """One cached matrix: its files, what it was built from, and whether that changed."""

    npy: Path
    meta: Path
    data_file: str
    feature_set: str
    n_features: int
    n_rows: int | None
    n_bytes: int
    stale: bool  # the data file changed or is gone: never used again


def _entries(folder: Path) -> list[CacheEntry]:
    found = []
    for meta in sorted(folder.glob("*.json")):
        npy = meta.with_suffix(".npy")
        try:
            document = json.loads(meta.read_text(encoding="utf-8"))
            data_file = Path(document["data_file"])
            fresh = data_file.is_file() and _file_facts(data_file) == {
                k: document[k] for k in ("data_file", "size", "mtime_ns")
            }
            n_rows = int(np.load(npy, mmap_mode="r").shape[0]) if npy.is_file() else None
        except (OSError, ValueError, KeyError, TypeError):
            document, fresh, n_rows = {}, False, None
        found.append(
            CacheEntry(
                npy=npy,
                meta=meta,
                data_file=str(document.get("data_file", "?")),
                feature_set=str(document.get("feature_set", "?")),
                n_features=int(document.get("n_features", 0)),
                n_rows=n_rows,
                n_bytes=npy.stat().st_size if npy.is_file() else 0,
                stale=not fresh or n_rows is None,
            )
        )
    return found


def list_cache(data_dir: Path | str) -> list[CacheEntry]:
    """Every cached matrix under ``data_dir`` (stale ones included, marked)."""
    folder = cache_dir(data_dir)
    return _entries(folder) if folder.is_dir() else []


def clear_cache(data_dir: Path | str, stale_only: bool = False) -> list[CacheEntry]:
    """Delete cached matrices (all, or only stale ones); returns what was deleted."""
    folder = cache_dir(data_dir)
    removed = [e for e in list_cache(data_dir) if e.stale or not stale_only]
    for entry in removed:
        entry.meta.unlink(missing_ok=True)  # the .json first: readers need both files
        entry.npy.unlink(missing_ok=True)
    if not stale_only and folder.is_dir():
        for leftover in folder.glob(".*.tmp"):  # from writers killed mid-write
            leftover.unlink(missing_ok=True)
    return removed


def _drop_stale(folder: Path, data_file: str, features_sha: str, keep: str) -> None:
    """Remove older matrices of the same data file and features (the file has changed)."""
    for entry in _entries(folder):
        if entry.meta.stem == keep or entry.data_file != data_file:
            continue
        try:
            document = json.loads(entry.meta.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if document.get("features_sha256") == features_sha:
            entry.meta.unlink(missing_ok=True)
            entry.npy.unlink(missing_ok=True)
