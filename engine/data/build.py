"""``nx build-data``: Numerai's built datasets from the raw files, streamed by Polars.

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

The two benchmark files are laid out as pandas writes them, like the reference
builder's (and Numerai's raw files): ``id`` stored last and named as the pandas index
in the ``pandas`` schema metadata, so ``pandas.read_parquet`` gives id as the index
and era plus the model columns as columns. Readers that go by column name (Polars,
nx) see ``id`` as a column either way.

Each output is one Polars lazy query (projection and predicate pushdown into the
parquet scans) run by the streaming engine straight into ``sink_parquet``, so the
data never sits whole in memory; row order follows the raw files. Outputs are
written to a temporary name and renamed, so an interrupted build never leaves a
file a later run would reuse; what each output was built from is recorded
(:mod:`nx.engine.data.manifest`) and an output is reused only while that still
matches. Raw files are never overwritten unless asked: nx's synthetic files carry a
marker (:func:`~nx.engine.data.synthetic.synthetic_marker`), and ``--synthetic``
refuses to replace files without it unless ``replace_raw``.

Why Polars and not DuckDB ``COPY ... TO``: on 1M rows x 541 columns DuckDB's parquet
writer took twice the time and four times the memory of Polars' sink (measured on
the benchmark data), and its hash joins do not keep row order across threads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from nx.engine.data import manifest
from nx.engine.data.synthetic import (
    RAW_FILES,
    check_generation_fits,
    check_seed,
    generate_raw,
    parse_version,
    resolve_scale,
    synthetic_marker,
    synthetic_spec,
)
from nx.engine.eras import era_sort_key
from nx.engine.errors import ConfigError, DataError
from nx.engine.paths import (
    atomic_output_in_folder,
    check_writable,
    remove_stale_temp_files,
    version_dir,
)
from nx.engine.progress import NO_PROGRESS, Progress
from nx.engine.resources import run_interruptibly

if TYPE_CHECKING:
    import polars as pl

FULL = "full.parquet"
FULL_BENCHMARKS = "full_benchmark_models.parquet"
DOWNSAMPLED_FULL = "downsampled_full.parquet"
DOWNSAMPLED_BENCHMARKS = "downsampled_full_benchmark_models.parquet"
BUILT_FILES = (FULL, FULL_BENCHMARKS, DOWNSAMPLED_FULL, DOWNSAMPLED_BENCHMARKS)
# What each output is read from (files of the same version dir): any change makes it stale.
BUILT_FROM = {
    FULL: ["train.parquet", "validation.parquet"],
    FULL_BENCHMARKS: [
        "validation.parquet",
        "train_benchmark_models.parquet",
        "validation_benchmark_models.parquet",
    ],
    DOWNSAMPLED_FULL: [FULL],
    DOWNSAMPLED_BENCHMARKS: [FULL_BENCHMARKS, DOWNSAMPLED_FULL],
}
COMPRESSION = "snappy"  # the fastest codec to write and read back among those measured
# min/max statistics over ~550 columns (the string ids above all) cost a third of the
# write time on the benchmark data; readers of these files scan whole eras anyway.
STATISTICS = {"min": False, "max": False, "null_count": True, "distinct_count": False}
# Readers (Polars included) hold a few row groups in flight: small groups, small memory.
ROW_GROUP_ROWS = 20_000
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
    # why each built output was (re)built: "not built", "train.parquet changed ...", ...
    reasons: dict[str, str] = field(default_factory=dict)
    synthetic: dict | None = None  # the generator settings when the raw files are nx's
    removed: list[Path] = field(default_factory=list)  # stale outputs not rebuilt
    removed_temp_files: list[Path] = field(default_factory=list)  # of killed earlier runs

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


def downsampled_eras(eras: list[str], step: int, offset: int) -> list[str]:
    """Eras kept by downsampling: with the unique eras sorted numerically, those whose
    position satisfies ``position % step == offset``."""
    return sorted(set(eras), key=era_sort_key)[offset::step]


def _full_query(vdir: Path) -> pl.LazyFrame:
    """Train rows + validation rows with data_type "validation": id, era, features, targets."""
    import polars as pl
    import polars.selectors as cs

    columns = [pl.col("id"), pl.col("era"), cs.starts_with("feature_"), cs.starts_with("target")]
    train = pl.scan_parquet(vdir / "train.parquet").select(columns)
    validation = (
        pl.scan_parquet(vdir / "validation.parquet")
        .filter(pl.col("data_type") == "validation")
        .select(columns)
    )
    return pl.concat([train, validation], how="diagonal")


def _benchmark_query(vdir: Path) -> pl.LazyFrame:
    """Train benchmarks + validation benchmarks of the validation ids that carry targets."""
    import polars as pl

    def predictions(name: str) -> pl.LazyFrame:
        frame = pl.scan_parquet(vdir / name)
        return frame.select(pl.col("id"), pl.col("era"), pl.exclude("id", "era", "data_type"))

    scored_ids = (
        pl.scan_parquet(vdir / "validation.parquet")
        .filter(pl.col("data_type") == "validation")
        .select("id")
    )
    validation = predictions("validation_benchmark_models.parquet").join(
        scored_ids, on="id", how="semi", maintain_order="left"
    )
    return pl.concat([predictions("train_benchmark_models.parquet"), validation], how="diagonal")


def _downsample_query(full: Path, step: int, offset: int) -> pl.LazyFrame:
    """Rows of full.parquet whose era is kept by :func:`downsampled_eras`."""
    import polars as pl

    frame = pl.scan_parquet(full)
    eras = frame.select(pl.col("era").unique()).collect()["era"].to_list()
    return frame.filter(pl.col("era").is_in(downsampled_eras(eras, step, offset)))


def _downsample_benchmark_query(benchmarks: Path, downsampled_full: Path) -> pl.LazyFrame:
    """Benchmark rows whose id is in downsampled_full.parquet, in file order."""
    import polars as pl

    ids = pl.scan_parquet(downsampled_full).select("id")
    return pl.scan_parquet(benchmarks).join(ids, on="id", how="semi", maintain_order="left")


# Outputs written with ``id`` as their pandas index (the reference builder's layout).
PANDAS_INDEXED = {FULL_BENCHMARKS: "id", DOWNSAMPLED_BENCHMARKS: "id"}


def _pandas_indexed(query: pl.LazyFrame, index: str) -> tuple[pl.LazyFrame, pa.Schema]:
    """``query`` with ``index`` moved last, and the arrow schema that names it the pandas
    index (the ``pandas`` metadata ``DataFrame.to_parquet`` writes for a frame indexed by it)."""
    import polars as pl

    query = query.select(pl.exclude(index), pl.col(index))
    empty = pl.DataFrame(schema=query.collect_schema())
    schema = empty.to_arrow().schema
    metadata = pa.Table.from_pandas(
        empty.to_pandas().set_index(index), schema=schema, preserve_index=True
    ).schema.metadata
    return query, schema.with_metadata(metadata)


def _sink(query: pl.LazyFrame, output: Path) -> None:
    """Stream a lazy query to ``output`` through a temporary file (renamed on success).

    The sink runs on a worker thread (:func:`run_interruptibly`): Ctrl-C then stops
    the build at once and removes the temporary file, where interrupting Polars'
    parquet sink itself panics in Rust with a backtrace.
    """
    schema = None
    if output.name in PANDAS_INDEXED:
        query, schema = _pandas_indexed(query, PANDAS_INDEXED[output.name])
    with atomic_output_in_folder(output) as tmp:
        run_interruptibly(
            lambda: query.sink_parquet(
                tmp,
                compression=COMPRESSION,
                statistics=STATISTICS,
                row_group_size=ROW_GROUP_ROWS,
                arrow_schema=schema,
            )
        )


def _names(names: list[str], limit: int = 3) -> str:
    return _preview(list(names), limit)


def _spec_text(spec: dict) -> str:
    return (
        f"seed {spec.get('seed')}, {spec.get('eras')} eras x {spec.get('rows_per_era')} rows x "
        f"{spec.get('n_features')} features, nx {spec.get('nx_version')}"
    )


def raw_origins(vdir: Path) -> dict[str, dict | None]:
    """For each raw file present: its synthetic marker, or None when nx did not generate it."""
    return {name: synthetic_marker(vdir / name) for name in RAW_FILES if (vdir / name).is_file()}


def check_raw_set(vdir: Path, origins: dict[str, dict | None]) -> dict | None:
    """The raw files must be one set: all Numerai's (unmarked) or one synthetic run's.

    Returns the synthetic settings of the set (None for Numerai's files). A mix is
    what an interrupted regeneration or a half-replaced folder leaves behind.
    """
    synthetic = {name: m for name, m in origins.items() if m is not None}
    foreign = [name for name, m in origins.items() if m is None]
    if synthetic and foreign:
        raise DataError(
            f"the raw files in {vdir} are a mix of synthetic ones ({_names(list(synthetic))}) "
            f"and ones nx did not generate ({_names(foreign)}); replace them all with "
            "Numerai's (`nx build-data --rebuild`) or with synthetic ones "
            "(`nx build-data --synthetic --replace-raw`)"
        )
    specs = {json.dumps(m, sort_keys=True) for m in synthetic.values()}
    if len(specs) > 1:
        described = "; ".join(sorted(_spec_text(json.loads(spec)) for spec in specs))
        raise DataError(
            f"the synthetic raw files in {vdir} come from different runs ({described}: an "
            "interrupted regeneration); regenerate them with `nx build-data --synthetic --rebuild`"
        )
    return next(iter(synthetic.values()), None)


def _requested_spec(
    scale: str | None,
    seed: int | None,
    eras: int | None,
    rows_per_era: int | None,
    n_features: int | None,
    data_version: str,
) -> tuple[dict, bool]:
    """The synthetic settings asked for, and whether any was given explicitly."""
    explicit = any(v is not None for v in (scale, seed, eras, rows_per_era, n_features))
    size = resolve_scale(scale or "small", eras, rows_per_era, n_features)
    seed = 42 if seed is None else seed
    check_seed(seed)
    return synthetic_spec(size, seed, data_version), explicit


def _synthetic_raw(
    vdir: Path,
    data_version: str,
    *,
    scale: str | None,
    seed: int | None,
    eras: int | None,
    rows_per_era: int | None,
    n_features: int | None,
    rebuild: bool,
    replace_raw: bool,
    progress: Progress,
) -> bool:
    """Generate the synthetic raw files unless an up-to-date set is there; True if generated."""
    requested, explicit = _requested_spec(scale, seed, eras, rows_per_era, n_features, data_version)
    origins = raw_origins(vdir)
    foreign = [name for name, marker in origins.items() if marker is None]
    if foreign and not replace_raw:
        raise DataError(
            f"{vdir} holds raw files that nx did not generate ({_names(foreign)}: downloaded "
            "from Numerai, or your own) and synthetic data would replace them; use another "
            "--data-dir, or replace them with `nx build-data --synthetic --replace-raw`"
        )
    specs = {json.dumps(m, sort_keys=True) for m in origins.values() if m is not None}
    current = json.loads(specs.pop()) if len(specs) == 1 else None
    up_to_date = (
        not (rebuild or replace_raw)
        and len(origins) == len(RAW_FILES)
        and current is not None
        and (not explicit or current == requested)
    )
    if up_to_date:
        return False
    check_generation_fits(resolve_scale(scale or "small", eras, rows_per_era, n_features))
    check_writable(vdir, fix="make it writable or pick another --data-dir")
    generate_raw(
        vdir,
        scale=scale or "small",
        eras=eras,
        rows_per_era=rows_per_era,
        n_features=n_features,
        seed=requested["seed"],
        data_version=data_version,
        progress=progress,
    )
    return True


def _downloaded_raw(
    vdir: Path, data_version: str, *, rebuild: bool, replace_raw: bool, progress: Progress
) -> bool:
    """Download the raw files that are missing (all with ``rebuild``); True if any was."""
    from nx.engine.data.download import download_raw

    overwrite = rebuild or replace_raw
    synthetic = [name for name, marker in raw_origins(vdir).items() if marker is not None]
    if synthetic and not overwrite:
        raise DataError(
            f"{vdir} holds synthetic raw files ({_names(synthetic)}, made by `nx build-data "
            "--synthetic`); add --rebuild to replace them with Numerai's files, or --synthetic "
            "to build from them"
        )
    missing = [name for name in RAW_FILES if overwrite or not (vdir / name).is_file()]
    if missing:
        check_writable(vdir, fix="make it writable or pick another --data-dir")
    return bool(download_raw(vdir, data_version, overwrite=overwrite, progress=progress))


def _options(name: str, step: int, offset: int) -> dict:
    if name in (DOWNSAMPLED_FULL, DOWNSAMPLED_BENCHMARKS):
        return {"downsample_eras_step": step, "downsample_eras_offset": offset}
    return {}


def build_data(
    data_dir: Path,
    data_version: str = "v5.2",
    *,
    synthetic: bool = False,
    scale: str | None = None,
    seed: int | None = None,
    eras: int | None = None,
    rows_per_era: int | None = None,
    n_features: int | None = None,
    step: int = 4,
    offset: int = 0,
    skip_downsample: bool = False,
    rebuild: bool = False,
    replace_raw: bool = False,
    download: bool = True,
    progress: Progress = NO_PROGRESS,
) -> BuildResult:
    """Get the raw files of ``data_version`` and build Numerai's datasets from them.

    Raw files: with ``synthetic`` they are generated (:func:`generate_raw`) unless a
    complete set of nx's synthetic files is there (with the settings asked for, when
    any of ``scale``, ``seed``, ``eras``, ``rows_per_era``, ``n_features`` is given;
    otherwise ``small`` and 42) or with ``rebuild``; raw files nx did not generate
    are only replaced with ``replace_raw``. Otherwise missing ones are downloaded
    through numerapi (all of them again with ``rebuild``), unless ``download`` is
    False; synthetic files are only replaced by downloads with ``rebuild``.

    Built files are reused only while their build record matches (inputs' sizes and
    mtimes, options, nx version), and always rebuilt with ``rebuild``. Stale
    temporary files of killed earlier runs in the version folder are removed first.

    Example::

        result = build_data(Path("data"), synthetic=True, scale="tiny", seed=1)
        result.full  # Path("data/v5.2/full.parquet")
    """
    parse_version(data_version)
    if not skip_downsample:
        check_downsample(step, offset)
    vdir = version_dir(data_dir, data_version)
    if vdir.exists() and not vdir.is_dir():
        raise DataError(f"{vdir} is a file, not a folder; move it away or pick another --data-dir")
    raw_files = [vdir / name for name in RAW_FILES]
    removed_temp = remove_stale_temp_files(vdir)

    raw_source = "existing"
    try:
        if synthetic:
            generated = _synthetic_raw(
                vdir,
                data_version,
                scale=scale,
                seed=seed,
                eras=eras,
                rows_per_era=rows_per_era,
                n_features=n_features,
                rebuild=rebuild,
                replace_raw=replace_raw,
                progress=progress,
            )
            raw_source = "synthetic" if generated else raw_source
        elif download:
            fetched = _downloaded_raw(
                vdir, data_version, rebuild=rebuild, replace_raw=replace_raw, progress=progress
            )
            raw_source = "downloaded" if fetched else raw_source
    except OSError as error:
        raise _write_error(vdir, error) from None
    check_raw_files(vdir)
    synthetic_settings = check_raw_set(vdir, raw_origins(vdir))

    outputs = {name: vdir / name for name in BUILT_FILES}
    wanted = list(BUILT_FILES[:2] if skip_downsample else BUILT_FILES)
    reasons: dict[str, str] = {}
    for name in wanted:  # in build order: an output read from one that is rebuilt is stale
        reason = "--rebuild" if rebuild else None
        reason = reason or next(
            (f"{source} is rebuilt" for source in BUILT_FROM[name] if source in reasons), None
        )
        reason = reason or manifest.stale_reason(
            vdir, name, BUILT_FROM[name], _options(name, step, offset)
        )
        if reason is not None:
            reasons[name] = reason
    todo = [name for name in wanted if name in reasons]
    built, reused = [], [outputs[n] for n in wanted if n not in todo]
    removed: list[Path] = []
    for name in BUILT_FILES:  # an unwanted output left stale is removed, never left to mislead
        if name in wanted or not outputs[name].exists():
            continue
        sources = BUILT_FROM[name]
        if any(source in reasons or outputs.get(source) in removed for source in sources) or (
            manifest.stale_reason(vdir, name, sources) is not None
        ):
            removed.append(outputs[name])
    if todo or removed:
        check_writable(vdir, fix="make it writable or pick another --data-dir")
    for path in removed:  # never leave a stale downsampled file next to a rebuilt full
        path.unlink()
        manifest.forget_output(vdir, path.name)
    if todo:
        import polars as pl

        queries = {
            FULL: lambda: _full_query(vdir),
            FULL_BENCHMARKS: lambda: _benchmark_query(vdir),
            DOWNSAMPLED_FULL: lambda: _downsample_query(outputs[FULL], step, offset),
            DOWNSAMPLED_BENCHMARKS: lambda: _downsample_benchmark_query(
                outputs[FULL_BENCHMARKS], outputs[DOWNSAMPLED_FULL]
            ),
        }
        with progress.task("Building datasets", total=len(todo)) as task:
            for name in todo:
                try:
                    query = run_interruptibly(queries[name])
                    _sink(query, outputs[name])
                    manifest.record_output(
                        vdir, name, BUILT_FROM[name], _options(name, step, offset)
                    )
                except pl.exceptions.PolarsError as error:
                    reason = " ".join(str(error).split())[:300]
                    raise DataError(
                        f"building {name} in {vdir} failed: {reason}; check the raw files "
                        "(`nx data info`) or fetch them again with `nx build-data --rebuild`"
                    ) from None
                except OSError as error:
                    raise _write_error(vdir, error) from None
                built.append(outputs[name])
                task.advance()

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
        reasons={name: reasons[name] for name in todo},
        synthetic=synthetic_settings,
        removed=removed,
        removed_temp_files=removed_temp,
    )


def _write_error(vdir: Path, error: OSError) -> DataError:
    reason = error.strerror or type(error).__name__
    where = error.filename or vdir
    return DataError(
        f"writing {where} failed ({reason}); free disk space or fix the folder's "
        "permissions, or pick another --data-dir"
    )
