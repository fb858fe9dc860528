"""Fixtures of the data tests: private copies of the shared tiny dataset."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nx.engine.data.synthetic import RAW_FILES, SYNTHETIC_KEY


@pytest.fixture
def raw_dir(tmp_path, tiny_data_dir) -> Path:
    """A fresh data dir holding only the tiny raw files (``<tmp>/data/v5.2/``)."""
    data_dir = tmp_path / "data"
    (data_dir / "v5.2").mkdir(parents=True)
    for name in RAW_FILES:
        shutil.copy2(tiny_data_dir / "v5.2" / name, data_dir / "v5.2" / name)
    return data_dir


def without_synthetic_marker(path: Path) -> bytes:
    """The bytes of a tiny raw file as Numerai serves it: no ``nx_synthetic`` marker."""
    if path.suffix == ".json":
        document = json.loads(path.read_text())
        document.pop(SYNTHETIC_KEY)
        return json.dumps(document).encode()
    table = pq.read_table(path)
    metadata = {k: v for k, v in table.schema.metadata.items() if k != SYNTHETIC_KEY.encode()}
    sink = pa.BufferOutputStream()
    pq.write_table(table.replace_schema_metadata(metadata), sink)
    return sink.getvalue().to_pybytes()


def listing(vdir: Path) -> set[str]:
    """Every entry of a version folder, hidden temporary files included (none if absent)."""
    return {p.name for p in vdir.iterdir()} if vdir.exists() else set()
