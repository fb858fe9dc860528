"""nx train vs a straightforward pandas pipeline: peak memory and wall time.

Both sides run the same era CV (5 splits, expanding, embargo 4) with the same
LightGBM parameters on the same synthetic data built by ``nx build-data
--synthetic`` (300 eras x ~2,000 rows x 500 int8 features, ``full.parquet``). The pandas side is what a user would write: read the parquet
into pandas with float features, slice the rows of each fold, fit LightGBM,
predict the validation eras, write the OOF predictions. The nx side runs
``nx.engine.train.train_config`` (which also scores the predictions and writes
results). Each side runs in its own subprocess that reports its own peak RSS
(``VmHWM``: ``data_measure.own_peak_kib``), so neither measurement sees the other. Each side
runs twice and the faster round counts (the machine is shared and noisy); the
data lives in a private temporary folder that concurrent pytest sessions cannot
clean up mid-run.

Run: ``pytest benchmarks/test_train.py`` (a few minutes on 2 cores).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

# The generator leaves the last few (live-like) eras out of full.parquet: ask for a few more.
N_ERAS, ROWS_PER_ERA, N_FEATURES = 304, 2_000, 500
N_SPLITS, EMBARGO = 5, 4
PARAMS = {
    "n_estimators": 50,
    "learning_rate": 0.05,
    "max_depth": 5,
    "num_leaves": 31,
    "colsample_bytree": 0.1,
    "n_jobs": 2,
    "random_state": 1337,
    "verbose": -1,
}
MEASURED: dict[str, dict[str, float]] = {}


def run_nx(data_dir: Path, out: Path) -> None:
    from nx.engine.train import train_config
    from nx.engine.train.config import parse_config

    config = parse_config(
        {
            "data": {"feature_set": "all", "embargo_eras": EMBARGO},
            "training": {"cv": {"n_splits": N_SPLITS}},
            "model": {"type": "LGBMRegressor", "params": PARAMS},
        },
        "bench_nx.toml",
    )
    train_config(config, data_dir=data_dir, output_dir=out, overwrite=True)


def run_pandas(data_dir: Path, out: Path) -> None:
    from tests.train.reference import pandas_oof

    features = json.loads((data_dir / "v5.2" / "features.json").read_text())["feature_sets"]["all"]
    oof = pandas_oof(data_dir, features, PARAMS, N_SPLITS, EMBARGO)
    out.mkdir(parents=True, exist_ok=True)
    oof.to_parquet(out / "oof.parquet")


def measure(side: str, data_dir: Path, out: Path) -> dict[str, float]:
    """Run one side in a fresh interpreter; its wall time and its own peak RSS (MiB)."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, __file__, side, str(data_dir), str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.perf_counter() - started
    peak_kib = json.loads(done.stdout.strip().splitlines()[-1])["peak_kib"]
    return {"wall_s": wall, "peak_mib": peak_kib / 1024}


@pytest.fixture(scope="module")
def bench_root():
    root = Path(tempfile.mkdtemp(prefix="nx_train_bench_"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def bench_data(bench_root) -> Path:
    from nx.engine.data.build import build_data

    data_dir = bench_root / "data"
    build_data(
        data_dir,
        synthetic=True,
        scale="small",
        eras=N_ERAS,
        rows_per_era=ROWS_PER_ERA,
        n_features=N_FEATURES,
        seed=5,
        skip_downsample=True,
    )
    import polars as pl

    shape = (
        pl.scan_parquet(data_dir / "v5.2" / "full.parquet")
        .select(pl.len(), pl.col("era").n_unique())
        .collect()
        .row(0)
    )
    assert shape[1] >= 300 and shape[0] >= 300 * 1_900, shape
    return data_dir


ROUNDS = 2


@pytest.mark.parametrize("side", ["pandas", "nx"])
def test_train_side(benchmark, bench_data, bench_root, side):
    rounds: list[dict[str, float]] = []

    def one_round() -> None:
        rounds.append(measure(side, bench_data, bench_root / f"{side}_{len(rounds)}"))

    benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1)
    result = {
        "wall_s": min(r["wall_s"] for r in rounds),
        "peak_mib": max(r["peak_mib"] for r in rounds),
    }
    benchmark.extra_info.update(result)
    MEASURED[side] = result


def test_train_ratios():
    if set(MEASURED) != {"nx", "pandas"}:
        pytest.skip("run the whole file: the ratios need both sides")
    memory = MEASURED["nx"]["peak_mib"] / MEASURED["pandas"]["peak_mib"]
    wall = MEASURED["nx"]["wall_s"] / MEASURED["pandas"]["wall_s"]
    print(
        f"\npeak memory: nx {MEASURED['nx']['peak_mib']:.0f} MiB vs pandas "
        f"{MEASURED['pandas']['peak_mib']:.0f} MiB -> {memory:.2f}x\n"
        f"wall time:   nx {MEASURED['nx']['wall_s']:.1f} s vs pandas "
        f"{MEASURED['pandas']['wall_s']:.1f} s -> {wall:.2f}x"
    )
    assert memory <= 0.5
    assert wall <= 1.0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.train.reference
    side, data_dir, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    (run_nx if side == "nx" else run_pandas)(data_dir, out)
    from data_measure import own_peak_kib  # (this file runs as a script: benchmarks/ on the path)

    print(json.dumps({"peak_kib": own_peak_kib()}))
