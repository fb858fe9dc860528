"""``nx data info``: what a data directory holds for one data version.

Row counts and columns come from parquet footers; eras from a DuckDB scan of the
``era`` column alone, so even Numerai-sized files are summarised in seconds.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

import pyarrow.parquet as pq

from nx.engine.data.build import BUILT_FILES
from nx.engine.data.synthetic import RAW_FILES, parse_version
from nx.engine.errors import DataError
from nx.engine.paths import version_dir


def read_sql(name: str) -> str:
    """The text of ``sql/<name>``."""
    return resources.files("nx.sql").joinpath(name).read_text()


@dataclass
class FileInfo:
    """One file of a version folder; ``problem`` says why it could not be read."""

    name: str
    kind: str  # "raw", "built" or "other"
    size_bytes: int
    rows: int | None = None
    eras: int | None = None
    first_era: str | None = None
    last_era: str | None = None
    features: int | None = None
    targets: int | None = None
    columns: int | None = None
    problem: str | None = None


@dataclass
class DataInfo:
    version_dir: Path
    data_version: str
    files: list[FileInfo]
    feature_sets: dict[str, int] = field(default_factory=dict)
    missing_raw: list[str] = field(default_factory=list)
    missing_built: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        document = asdict(self)
        document["version_dir"] = str(self.version_dir)
        return document


def _parquet_info(connection, path: Path, info: FileInfo) -> None:
    try:
        metadata = pq.read_metadata(path)
    except Exception as error:  # any unreadable file is reported, not raised
        info.problem = f"not a readable parquet file ({type(error).__name__})"
        return
    names = metadata.schema.names
    info.rows = metadata.num_rows
    info.columns = len(names)
    info.features = sum(name.startswith("feature_") for name in names)
    info.targets = sum(name.startswith("target") for name in names)
    if "era" in names:
        query = read_sql("era_summary.sql")
        info.eras, info.first_era, info.last_era = connection.execute(
            query, {"path": str(path)}
        ).fetchone()


def data_info(data_dir: Path, data_version: str = "v5.2") -> DataInfo:
    """Summarise ``<data_dir>/<data_version>/``: files, rows, eras, features, sizes.

    Example::

        info = data_info(Path("data"))
        [(f.name, f.rows) for f in info.files]
    """
    import duckdb

    parse_version(data_version)
    vdir = version_dir(data_dir, data_version)
    if not vdir.is_dir():
        raise DataError(
            f"no {data_version} data in {vdir.parent} ({vdir} does not exist); run "
            f"`nx build-data --data-dir {vdir.parent}` (or add --synthetic)"
        )
    files = []
    feature_sets: dict[str, int] = {}
    connection = duckdb.connect()
    try:
        for path in sorted(p for p in vdir.iterdir() if p.is_file() and not p.name.startswith(".")):
            kind = (
                "raw"
                if path.name in RAW_FILES
                else "built"
                if path.name in BUILT_FILES
                else "other"
            )
            info = FileInfo(name=path.name, kind=kind, size_bytes=path.stat().st_size)
            if path.suffix == ".parquet":
                _parquet_info(connection, path, info)
            elif path.name == "features.json":
                try:
                    sets = json.loads(path.read_text())["feature_sets"]
                    feature_sets = {name: len(members) for name, members in sets.items()}
                    info.features = feature_sets.get("all")
                except (ValueError, KeyError, TypeError, AttributeError):
                    info.problem = "not a Numerai features.json (no feature_sets)"
            files.append(info)
    finally:
        connection.close()
    present = {f.name for f in files}
    return DataInfo(
        version_dir=vdir,
        data_version=data_version,
        files=files,
        feature_sets=feature_sets,
        missing_raw=[n for n in RAW_FILES if n not in present],
        missing_built=[n for n in BUILT_FILES if n not in present],
    )
