"""Fixtures of the data tests: private copies of the shared tiny dataset."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from nx.engine.data.synthetic import RAW_FILES


@pytest.fixture
def raw_dir(tmp_path, tiny_data_dir) -> Path:
    """A fresh data dir holding only the tiny raw files (``<tmp>/data/v5.2/``)."""
    data_dir = tmp_path / "data"
    (data_dir / "v5.2").mkdir(parents=True)
    for name in RAW_FILES:
        shutil.copy2(tiny_data_dir / "v5.2" / name, data_dir / "v5.2" / name)
    return data_dir


def listing(vdir: Path) -> set[str]:
    """Every entry of a version folder, hidden temporary files included (none if absent)."""
    return {p.name for p in vdir.iterdir()} if vdir.exists() else set()
