"""Sweep wall time (``--workers 2`` vs one config after another) and the feature-matrix
cache (mapped ``.npy`` vs decoding parquet), each pair measured in the same run.

- Sweep: 8 configs (4 learning rates x 2 leaf counts, LightGBM 50 trees, 5-fold era CV)
  on ``nx build-data --synthetic --scale small`` data (400 eras x ~500 rows x 120
  features), each side a fresh ``nx sweep ... --rerun`` process: in-process with
  ``n_jobs = 1`` and ``n_jobs = 2`` per config, and ``--workers 2`` with ``n_jobs = 1``.
  The feature cache is warm for every side.
- Cache: the 2,748 ``all`` features of the memory benchmark's subset file (100 eras x
  ~1,000 rows, Numerai-shaped): ``_read_feature_matrix`` (polars, column chunks) vs
  mapping the cached ``.npy`` and touching every page; the parquet and the ``.npy`` are
  both in the page cache (each read once before timing).

Run: ``pytest benchmarks/test_sweep.py -s`` (a few minutes on 2 cores).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from test_memory import BENCH_DIR, big_data, subset_data

SIDES = {"sequential_1": (None, 1), "workers_2": (2, 1), "sequential_2": (None, 2)}
MEASURED: dict[str, float] = {}
NX = str(Path(sys.executable).parent / "nx")


@pytest.fixture(scope="module")
def small_data() -> Path:
    from nx.engine.data.build import build_data

    data_dir = BENCH_DIR / "small"
    build_data(data_dir, synthetic=True, scale="small", seed=3)
    # warm the feature cache and numba's on-disk cache so every side starts alike
    base = _sweep_file(BENCH_DIR / "small_warm", 1).parent / "base.toml"
    base.write_text(base.read_text().replace("n_estimators = 50", "n_estimators = 1"))
    warm = [NX, "train", str(base), "--data-dir", str(data_dir), "--json"]
    subprocess.run(
        [*warm, "--output-dir", str(BENCH_DIR / "small_warm" / "exp")],
        check=True,
        capture_output=True,
    )
    return data_dir


def _sweep_file(folder: Path, n_jobs: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "base.toml").write_text(
        '[data]\nfeature_set = "all"\nembargo_eras = 4\n'
        '[model]\ntype = "LGBMRegressor"\n[model.params]\n'
        f"n_estimators = 50\nmax_depth = 5\ncolsample_bytree = 0.5\nn_jobs = {n_jobs}\n"
        "random_state = 1\nverbose = -1\n"
    )
    path = folder / "sweep.toml"
    path.write_text(
        'base = "base.toml"\nname = "lr{model.params.learning_rate}-l{model.params.num_leaves}"\n'
        "[grid]\nmodel.params.learning_rate = [0.005, 0.01, 0.02, 0.05]\n"
        "model.params.num_leaves = [15, 31]\n"
    )
    return path


@pytest.mark.parametrize("side", list(SIDES))
def test_sweep_wall(benchmark, small_data, tmp_path, side):
    workers, n_jobs = SIDES[side]
    path = _sweep_file(tmp_path / side, n_jobs)
    args = [NX, "sweep", str(path), "--data-dir", str(small_data), "--rerun", "--json"]
    args += ["--output-dir", str(tmp_path / side / "exp")]
    if workers:
        args += ["--workers", str(workers)]
    walls: list[float] = []

    def one_round() -> None:
        started = time.perf_counter()
        done = subprocess.run(args, capture_output=True, text=True)
        walls.append(time.perf_counter() - started)
        assert done.returncode == 0, done.stderr[-2000:]
        assert len(json.loads(done.stdout)["configs"]) == 8

    benchmark.pedantic(one_round, rounds=1, iterations=1)
    MEASURED[side] = min(walls)
    print(f"\n{side}: {min(walls):.1f} s for 8 configs (load {os.getloadavg()[0]:.1f})")


def test_sweep_ratios():
    if set(MEASURED) != set(SIDES):
        pytest.skip("run the whole file: the ratios need every side")
    for side in ("sequential_1", "sequential_2"):
        print(f"\nworkers_2 / {side}: {MEASURED['workers_2'] / MEASURED[side]:.2f}x")


def test_cached_vs_parquet_read(benchmark):
    from nx.engine.data.cache import cached_feature_matrix
    from nx.engine.train.inputs import _read_feature_matrix

    data_dir = subset_data(big_data())
    path = data_dir / "v5.2" / "full.parquet"
    features = json.loads((data_dir / "v5.2" / "features.json").read_text())["feature_sets"]["all"]
    import polars as pl

    n_rows = pl.scan_parquet(path).select(pl.len()).collect().item()

    def parquet() -> np.ndarray:
        return _read_feature_matrix(path, features, n_rows)

    def mapped() -> np.ndarray:
        matrix = cached_feature_matrix(data_dir, path, features, "all", lambda a: parquet())
        flat = matrix.reshape(-1)
        int(flat[::4096].sum())  # touch every page: the mapping alone reads nothing
        return matrix

    reference = parquet()
    assert np.array_equal(np.asarray(mapped()), reference)  # builds the cache; both warm
    del reference
    timings = {}
    for name, read in (("parquet", parquet), ("cache", mapped)):
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            read()
            best = min(best, time.perf_counter() - started)
        timings[name] = best
    benchmark.pedantic(mapped, rounds=1, iterations=1)
    benchmark.extra_info.update(timings)
    print(
        f"\nfeature read ({n_rows:,} rows x {len(features):,}): parquet {timings['parquet']:.2f} s,"
        f" cache {timings['cache']:.3f} s -> {timings['parquet'] / timings['cache']:.0f}x faster"
        f" (load {os.getloadavg()[0]:.1f})"
    )


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-s"]))
