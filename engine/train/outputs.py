"""One run's outputs as one set: a reader never sees files of two runs mixed.

A run writes everything (predictions, resolved config, final model, results) into a
staging folder ``<output_dir>/.nx-run-<name>-<run_id>/`` first. Then it removes the
earlier ``results/<name>.json``, moves each staged file into place, and moves the new
results file in last. The results file is the run's commit marker: when it exists,
every other output of that name comes from the same run, and each one records the
run's id (``output.run_id`` in the results, ``run_id`` in the model manifest, the
``nx_run_id`` key of the predictions file's parquet metadata). A run stopped at any
point leaves either the earlier complete set, or no results file (an unfinished run
that the next run replaces); its staging folder is removed by the next run.

Before any data is read, :func:`check_outputs` proves the output dir can be written
(a probe file in each output folder), that the disk has room for the predictions, and
that an earlier result is only replaced when the caller says so (``overwrite``).
"""

from __future__ import annotations

import errno
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from nx.engine.errors import ConfigError, DataError
from nx.engine.train.config import TrainConfig
from nx.engine.train.results import output_paths

STAGING_PREFIX = ".nx-run-"
PREDICTION_BYTES_PER_ROW = 64  # id, era, target, prediction, cv_fold, with room to spare
SPACE_MARGIN_BYTES = 64 * 2**20


def _out_dir(config: TrainConfig, output_dir: Path | str | None) -> Path:
    return Path(output_dir or config.output.output_dir or "experiments")


def _write_problem(error: OSError, path: Path) -> str:
    if error.errno == errno.ENOSPC:
        return f"the disk holding {path} is full; free space or pass --output-dir elsewhere"
    if error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return f"{path} is not writable; fix its permissions or pass --output-dir"
    if error.errno in (errno.ENOTDIR, errno.EEXIST):
        return f"{path} is a file, not a folder; remove it or pass --output-dir"
    return f"cannot write {path} ({error.strerror}); pass another --output-dir"


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _probe(folder: Path) -> None:
    """Prove ``folder`` can be written (a file created and removed in it, or in its nearest
    existing parent when it does not exist yet, which then must be a folder); nothing is
    left behind. Raises DataError naming the folder and the fix."""
    existing = _nearest_existing(folder)
    try:
        if not existing.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "Not a directory", str(existing))
        probe = existing / f"{STAGING_PREFIX}probe-{uuid.uuid4().hex}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise DataError(f"output dir: {_write_problem(error, existing)}") from None


def check_outputs(
    config: TrainConfig,
    output_dir: Path | str | None,
    *,
    final: bool = False,
    overwrite: bool = False,
    expected_rows: int | None = None,
) -> Path:
    """Fail before any work when this run's outputs cannot be written; returns the out dir.

    Checks: an earlier result of the same name is kept unless ``overwrite``; every output
    folder can be created and written; the disk has room for ``expected_rows`` OOF rows.
    """
    out = _out_dir(config, output_dir)
    paths = output_paths(config, out)
    if paths["results"].exists() and not overwrite:
        raise ConfigError(
            f"{paths['results']} holds an earlier run of {config.name!r}; pass --overwrite "
            "to replace it, or give this run another output.results_name or --output-dir"
        )
    folders = {paths[key].parent for key in ("results", "config")}
    if config.training.cv.enabled:
        folders.add(paths["predictions"].parent)
    if final or config.training.final_fit:
        folders.add(out / "models")
    for folder in sorted(folders):
        _probe(folder)
    if expected_rows:
        needed = expected_rows * PREDICTION_BYTES_PER_ROW + SPACE_MARGIN_BYTES
        free = shutil.disk_usage(_nearest_existing(out)).free
        if free < needed:
            raise DataError(
                f"output dir: {out} has {free / 2**20:.0f} MiB free, this run needs about "
                f"{needed / 2**20:.0f} MiB; free space or pass --output-dir elsewhere"
            )
    return out


def expected_rows(path: Path) -> int | None:
    """Rows of a parquet file from its footer (None when it cannot be read)."""
    try:
        return pq.ParquetFile(path).metadata.num_rows
    except Exception:
        return None


@dataclass
class RunOutputs:
    """The staging folder of one run and the final paths its files move to."""

    config: TrainConfig
    out: Path
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])

    def __post_init__(self) -> None:
        self.paths = output_paths(self.config, self.out)
        self.model_path = self.out / "models" / self.config.name
        self._remove_stale_staging()
        self.staging = self.out / f"{STAGING_PREFIX}{self.config.name}-{self.run_id}"
        with self.writing():
            self.staging.mkdir(parents=True)

    def _remove_stale_staging(self) -> None:
        """Staging folders of this name left by runs that were killed."""
        if self.out.is_dir():
            for stale in self.out.glob(f"{STAGING_PREFIX}{self.config.name}-*"):
                if stale.is_dir():
                    shutil.rmtree(stale, ignore_errors=True)

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Writes into the staging folder: a full disk or lost permission is one DataError."""
        try:
            yield
        except OSError as error:
            raise DataError(f"output dir: {_write_problem(error, self.out)}") from None

    def staged(self, key: str) -> Path:
        """Where the file ``key`` (predictions, config, results) or ``model`` is staged."""
        return self.staging / ("model" if key == "model" else f"{key}{self.paths[key].suffix}")

    def commit(self) -> None:
        """Move the staged files into place, the results file last (the commit marker)."""
        moves = [
            (self.staged(key), self.paths[key])
            for key in ("predictions", "config")
            if self.staged(key).exists()
        ]
        with self.writing():
            self.paths["results"].unlink(missing_ok=True)
            for staged, final in moves:
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staged, final)
            if self.staged("model").exists():
                self._swap_dir(self.staged("model"), self.model_path)
            self.paths["results"].parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.staged("results"), self.paths["results"])

    def _swap_dir(self, staged: Path, final: Path) -> None:
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():
            old = self.staging / "replaced-model"
            os.replace(final, old)
        os.replace(staged, final)

    def discard(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)

    def record(self, results: dict[str, Any]) -> dict[str, Any]:
        """``results`` with this run's id in its output section."""
        results.setdefault("output", {})["run_id"] = self.run_id
        return results
