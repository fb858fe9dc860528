"""The hash join behind ``nx score``'s id alignment: against a plain dict (hypothesis),
and end to end against a polars join."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nx.engine import metrics
from nx.engine.metrics.join import EMPTY, index_keys, lookup
from tests.conftest import nx_run

# few distinct values so that repeats, misses and equal first hashes all occur
small_keys = st.lists(st.integers(0, 40), max_size=300)


def _pairs(values: list[int], collide: bool) -> tuple[np.ndarray, np.ndarray]:
    """Hash pairs of ``values``; ``collide`` gives every value the same first hash
    (only the second tells them apart), and spreads them over groups otherwise."""
    values = np.array(values, dtype=np.uint64)
    first = np.zeros_like(values) if collide else values * np.uint64(0x9E3779B97F4A7C15)
    first.flags.writeable = False  # as polars hands them over
    return first, values + np.uint64(1)


@settings(max_examples=80, deadline=None)
@given(left=small_keys, right=small_keys, collide=st.booleans())
def test_lookup_matches_a_dict(left, right, collide):
    index = index_keys(*_pairs(left, collide))
    assert index[-1] == (len(set(left)) < len(left))
    if index[-1]:
        return
    rows, repeated = lookup(*index[:-1], *_pairs(right, collide))
    assert repeated == any(right.count(v) > 1 for v in set(left))
    if not repeated:
        where = {v: j for j, v in enumerate(right)}
        assert rows.tolist() == [where.get(v, EMPTY) for v in left]


def test_millions_of_shuffled_ids():
    rng = np.random.default_rng(0)
    n = 1_200_000
    first = rng.integers(0, 2**63, n, dtype=np.uint64) * np.uint64(2)
    second = rng.integers(0, 2**63, n, dtype=np.uint64)
    order = rng.permutation(n)[: n // 2]
    rows, repeated = lookup(*index_keys(first[order], second[order])[:-1], first, second)
    assert not repeated and np.array_equal(rows, order)


def test_nx_score_aligns_shuffled_subsets_like_a_join(tiny_data_dir, tmp_path):
    """Predictions for a shuffled subset of the data, a benchmark file in another order
    missing some ids: ``nx score`` gives the numbers of a plain polars join."""
    version = tiny_data_dir / "v5.2"
    full = pl.read_parquet(version / "full.parquet", columns=["id", "era", "target"])
    bench = pl.read_parquet(version / "full_benchmark_models.parquet")
    rng = np.random.default_rng(5)
    keep = rng.permutation(full.height)[: full.height * 3 // 4]
    preds = full[keep].select("id", prediction=pl.Series(rng.random(len(keep))))
    preds_path, bench_path = tmp_path / "preds.parquet", tmp_path / "bench.parquet"
    preds.write_parquet(preds_path)
    bench = bench[rng.permutation(bench.height)[: bench.height * 9 // 10]]
    bench.write_parquet(bench_path)
    args = ["score", preds_path, "--data-dir", tiny_data_dir, "--benchmark-data", bench_path]
    result = nx_run(*args, "--max-nan-fraction", "0.5", "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)

    joined = preds.join(full, on="id").join(
        bench.select("id", "v52_lgbm_ender20"), on="id", how="left"
    )
    _, summary = metrics.score(
        joined, ["prediction"], benchmark_col="v52_lgbm_ender20", max_nan_fraction=0.5
    )
    assert doc["rows"] == len(keep)
    for section in ("corr", "bmc", "bmc_last_200_eras"):
        for key, value in summary["prediction"][section].items():
            assert doc["columns"]["prediction"][section][key] == pytest.approx(value, abs=1e-12)
