"""Fixtures of the Numerai tests: a fake API on 127.0.0.1 and an environment pointing at it."""

from __future__ import annotations

import pytest

from .fake_api import PUBLIC_ID, SECRET_KEY, FakeNumerai


@pytest.fixture
def fake_numerai():
    with FakeNumerai() as fake:
        yield fake


def fake_env(fake: FakeNumerai, **extra: str) -> dict[str, str]:
    """Environment for an ``nx`` subprocess talking to ``fake`` (and nothing else)."""
    return {
        "NUMERAI_API_URL": fake.url,
        "NUMERAI_PUBLIC_ID": PUBLIC_ID,
        "NUMERAI_SECRET_KEY": SECRET_KEY,
        "NUMERAI_MCP_AUTH": "",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        "COLUMNS": "200",
        **extra,
    }


@pytest.fixture(autouse=True)
def no_default_data_dir(tmp_path, monkeypatch):
    """Commands that read the data dir by default (submit checks live ids) never see the
    checkout's own ``data/`` (README command 1 builds it there before the tests run)."""
    monkeypatch.setenv("NX_DATA_DIR", str(tmp_path / "no-data-dir"))
