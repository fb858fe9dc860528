"""``nx build-data``: Numerai's built datasets from the raw files, streamed by DuckDB.

From ``<data_dir>/<version>/`` raw files (downloaded through numerapi, generated
synthetically, or already there) this writes, next to them:

- ``full.parquet``: train rows + validation rows with ``data_type == "validation"``;
  ``data_type`` dropped, ``id`` a column, features int8.
- ``full_benchmark_models.parquet``: train benchmarks + validation benchmarks of those
  validation ids.
- ``downsampled_full.parquet``: rows of full whose era position (unique eras sorted
  numerically) satisfies ``position % step == offset``.
- ``downsampled_full_benchmark_models.parquet``: benchmark rows whose id is in
  downsampled_full.

Each output is one DuckDB ``COPY (query) TO`` statement kept in ``sql/`` (projection
and predicate pushdown into the parquet scans, streamed to the output), written to a
temporary name and renamed, so an interrupted build never leaves a file a later run
would reuse.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from nx.engine.errors import ConfigError, DataError
from nx.engine.paths import atomic_output, version_dir
from nx.engine.progress import NO_PROGRESS, Progress
from nx.engine.synthetic import RAW_FILES, generate_raw, parse_version

FULL = "full.parquet"
FULL_BENCHMARKS = "full_benchmark_models.parquet"
DOWNSAMPLED_FULL = "downsampled_full.parquet"
DOWNSAMPLED_BENCHMARKS = "downsampled_full_benchmark_models.parquet"
BUILT_FILES = (FULL, FULL_BENCHMARKS, DOWNSAMPLED_FULL, DOWNSAMPLED_BENCHMARKS)
BUILD_INPUTS = (
    "train.parquet",
    "validation.parquet",
    "train_benchmark_models.parquet",
    "validation_benchmark_models.parquet",
)


@dataclass(frozen=True)
class BuildResult:
    """Paths of what :func:`build_data` produced (downsampled ones None when skipped)."""

    version_dir: Path
    raw_files: list[Path]
    full: Path
    full_benchmark_models: Path
    downsampled_full: Path | None
    downsampled_full_benchmark_models: Path | None
    raw_source: str  # "synthetic", "downloaded" or "existing"
    built: list[Path] = field(default_factory=list)
    reused: list[Path] = field(default_factory=list)

    @property
    def outputs(self) -> list[Path]:
        paths = [
            self.full,
            self.full_benchmark_models,
            self.downsampled_full,
            self.downsampled_full_benchmark_models,
        ]
        return [p for p in paths if p is not None]


def check_downsample(step: int, offset: int) -> None:
    """Reject a downsample step below 2 or an offset outside [0, step)."""
    if step < 2:
        raise ConfigError(
            f"--downsample-eras-step must be at least 2 (got {step}); "
            "use the default 4, or --skip-downsample to skip downsampling"
        )
    if not 0 <= offset < step:
        raise ConfigError(
            f"--downsample-eras-offset must be in [0, {step - 1}] for step {step} "
            f"(got {offset}); pick an offset below the step"
        )


def read_sql(name: str) -> str:
    """The text of ``sql/<name>``."""
    return resources.files("nx.sql").joinpath(name).read_text()


def parquet_schema(path: Path) -> pa.Schema:
    """The schema of a parquet file (footer only), or a DataError naming the fix."""
    try:
        return pq.read_schema(path)
    except (pa.ArrowException, OSError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataError(
            f"{path} is not a readable parquet file ({reason}); delete it and run "
            "`nx build-data` again (or add --rebuild)"
        ) from None


def _require_columns(path: Path, schema: pa.Schema, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in schema.names]
    if missing:
        raise DataError(
            f"{path} has no column {', '.join(repr(c) for c in missing)} (Numerai's raw files "
            "always do); replace the file with Numerai's (`nx build-data --rebuild`) "
            "or regenerate it with `nx build-data --synthetic --rebuild`"
        )


def _feature_columns(schema: pa.Schema) -> list[str]:
    return [name for name in schema.names if name.startswith("feature_")]


def check_raw_files(vdir: Path) -> None:
    """Validate the build inputs' presence and schemas before anything is written."""
    for name in BUILD_INPUTS:
        path = vdir / name
        if not path.is_file():
            raise DataError(
                f"raw file {path} is missing; run `nx build-data` to download it "
                "(or `nx build-data --synthetic` for a synthetic dataset)"
            )
    schemas = {name: parquet_schema(vdir / name) for name in BUILD_INPUTS}
    _require_columns(vdir / "train.parquet", schemas["train.parquet"], ("id", "era"))
    _require_columns(
        vdir / "validation.parquet", schemas["validation.parquet"], ("id", "era", "data_type")
    )
    for name in BUILD_INPUTS[2:]:
        _require_columns(vdir / name, schemas[name], ("id", "era"))

    train_features = _feature_columns(schemas["train.parquet"])
    if not train_features:
        raise DataError(
            f"{vdir / 'train.parquet'} has no feature_* columns; replace it with Numerai's "
            "train.parquet or regenerate it with `nx build-data --synthetic --rebuild`"
        )
    validation_features = _feature_columns(schemas["validation.parquet"])
    only_train = sorted(set(train_features) - set(validation_features))
    only_validation = sorted(set(validation_features) - set(train_features))
    if only_train or only_validation:
        details = []
        if only_train:
            details.append(f"only in train.parquet: {_preview(only_train)}")
        if only_validation:
            details.append(f"only in validation.parquet: {_preview(only_validation)}")
        raise DataError(
            f"feature columns differ between train and validation in {vdir} "
            f"({'; '.join(details)}); download both files of the same data version again "
            "with `nx build-data --rebuild`"
        )


def _preview(names: list[str], limit: int = 3) -> str:
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown} and {len(names) - limit} more"


def downsampled_eras(connection, path: Path, step: int, offset: int) -> list[str]:
    """Eras kept by downsampling: position in the numerically sorted unique eras
    satisfies ``position % step == offset``."""
    eras = [
        row[0]
        for row in connection.execute(read_sql("unique_eras.sql"), {"path": str(path)}).fetchall()
    ]
    return eras[offset::step]


def _copy(connection, sql_name: str, output: Path, **params: object) -> None:
    """Run one ``COPY (...) TO $output`` query of ``sql/`` into ``output`` atomically."""
    with atomic_output(output) as tmp:
        connection.execute(read_sql(sql_name), {**params, "output": str(tmp)})


def build_data(
    data_dir: Path,
    data_version: str = "v5.2",
    *,
    synthetic: bool = False,
    scale: str = "small",
    seed: int = 42,
    eras: int | None = None,
    rows_per_era: int | None = None,
    n_features: int | None = None,
    step: int = 4,
    offset: int = 0,
    skip_downsample: bool = False,
    rebuild: bool = False,
    download: bool = True,
    progress: Progress = NO_PROGRESS,
) -> BuildResult:
    """Get the raw files of ``data_version`` and build Numerai's datasets from them.

    Raw files: with ``synthetic`` they are generated (:func:`generate_raw`) when one is
    absent or ``rebuild``; otherwise missing ones are downloaded through numerapi
    (all of them again with ``rebuild``), unless ``download`` is False. Built files
    that exist are reused unless ``rebuild`` or the raw files were just (re)made.

    Example::

        result = build_data(Path("data"), synthetic=True, scale="tiny", seed=1)
        result.full  # Path("data/v5.2/full.parquet")
    """
    parse_version(data_version)
    if not skip_downsample:
        check_downsample(step, offset)
    vdir = version_dir(data_dir, data_version)
    raw_files = [vdir / name for name in RAW_FILES]

    raw_source = "existing"
    if synthetic:
        if rebuild or not all(p.is_file() for p in raw_files):
            generate_raw(
                vdir,
                scale=scale,
                eras=eras,
                rows_per_era=rows_per_era,
                n_features=n_features,
                seed=seed,
                data_version=data_version,
                progress=progress,
            )
            raw_source = "synthetic"
    elif download:
        from nx.engine.download import download_raw

        fetched = download_raw(vdir, data_version, overwrite=rebuild, progress=progress)
        if fetched:
            raw_source = "downloaded"
    check_raw_files(vdir)

    outputs = {name: vdir / name for name in BUILT_FILES}
    wanted = list(BUILT_FILES[:2] if skip_downsample else BUILT_FILES)
    fresh = rebuild or raw_source != "existing"
    todo = [name for name in wanted if fresh or not outputs[name].is_file()]
    built, reused = [], [outputs[n] for n in wanted if n not in todo]
    if todo:
        import duckdb

        connection = duckdb.connect(config={"preserve_insertion_order": True})
        # DuckDB turns long IN lists into a hash join, which reorders rows across
        # threads; the era filter stays a plain (order-keeping) filter without it.
        connection.execute("SET disabled_optimizers = 'in_clause'")
        params = {
            FULL: (
                "build_full.sql",
                {"train": vdir / "train.parquet", "validation": vdir / "validation.parquet"},
            ),
            FULL_BENCHMARKS: (
                "build_full_benchmark_models.sql",
                {
                    "train_benchmarks": vdir / "train_benchmark_models.parquet",
                    "validation_benchmarks": vdir / "validation_benchmark_models.parquet",
                    "validation": vdir / "validation.parquet",
                },
            ),
            DOWNSAMPLED_FULL: ("downsample_full.sql", {"full": outputs[FULL]}),
            DOWNSAMPLED_BENCHMARKS: (
                "downsample_benchmark_models.sql",
                {
                    "full_benchmark_models": outputs[FULL_BENCHMARKS],
                    "downsampled_full": outputs[DOWNSAMPLED_FULL],
                },
            ),
        }
        try:
            with progress.task("Building datasets", total=len(todo)) as task:
                for name in todo:
                    sql_name, args = params[name]
                    args = {k: str(v) for k, v in args.items()}
                    if name == DOWNSAMPLED_FULL:
                        args["eras"] = downsampled_eras(connection, outputs[FULL], step, offset)
                    _copy(connection, sql_name, outputs[name], **args)
                    built.append(outputs[name])
                    task.advance()
        except duckdb.Error as error:
            reason = " ".join(str(error).split())
            raise DataError(
                f"building {name} in {vdir} failed: {reason}; check the raw files "
                "(`nx data info`) or rebuild them with `nx build-data --rebuild`"
            ) from None
        finally:
            connection.close()

    return BuildResult(
        version_dir=vdir,
        raw_files=raw_files,
        full=outputs[FULL],
        full_benchmark_models=outputs[FULL_BENCHMARKS],
        downsampled_full=None if skip_downsample else outputs[DOWNSAMPLED_FULL],
        downsampled_full_benchmark_models=None
        if skip_downsample
        else outputs[DOWNSAMPLED_BENCHMARKS],
        raw_source=raw_source,
        built=built,
        reused=reused,
    )
