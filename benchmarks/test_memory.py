"""Peak memory of full-width training: nx (int8 matrix, mapped cache, bounded LightGBM
datasets) against the reference-style pandas pipeline (float32 frame), same run.

Data: Numerai-shaped synthetic data with 2,748 int8 features, generated once into
``$NX_BENCH_DIR`` (default ``/tmp/nx_sweep_bench``; outside the repo, reused by later
runs): ``big`` = 604 eras x ~1,000 rows (1.6 GB as int8), and ``subset`` = its first
``SUBSET_ERAS`` eras, small enough that the pandas side (which needs the float32 frame,
its fold slices and LightGBM's float64 bin sample) fits this shared machine.

Sides, each in its own interpreter reporting its own peak RSS (``VmHWM``, see
``data_measure.own_peak_kib``):

- ``pandas``: ``tests.train.reference.pandas_oof`` (read the parquet into pandas,
  float32 features, slice each fold, ``LGBMRegressor.fit``), subset only;
- ``nx_cold``: ``train_config`` with an empty feature cache (parquet decoded into the
  mapped cache file, then training);
- ``nx_warm``: ``train_config`` with the cache written beforehand (by a child process)
  and mapped;
- ``nx_cv5``: ``nx_warm`` with nx's default CV, 5 splits (the largest fold is about
  5/6 of the rows), ``big`` only;
- ``nx_final``: ``nx_warm`` with CV off and a final fit on every row (what ``nx export
  --config`` trains, as the reference's ``export_pkl.py``), ``big`` only;
- ``nx_colwise`` (not in the default cases): ``nx_warm`` with ``force_col_wise = true``
  in the LightGBM parameters;
- ``nx_nocache`` (not in the default cases: add it to ``CASES``): ``NX_FEATURE_CACHE=off``
  (the int8 matrix in ordinary memory).

Same era CV (3 splits, expanding, embargo 4; but ``nx_cv5`` and ``nx_final``) and
LightGBM parameters everywhere.
Run: ``pytest benchmarks/test_memory.py -s`` (first run: ~15 min to generate the data).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

BENCH_DIR = Path(os.environ.get("NX_BENCH_DIR", "/tmp/nx_sweep_bench"))
N_ERAS, ROWS_PER_ERA, N_FEATURES = 604, 1_000, 2_748
SUBSET_ERAS = 100
N_SPLITS, EMBARGO = 3, 4
PARAMS = {
    "n_estimators": 20,
    "learning_rate": 0.05,
    "max_depth": 5,
    "num_leaves": 31,
    "colsample_bytree": 0.1,
    "n_jobs": 2,
    "random_state": 1337,
    "verbose": -1,
}
GB = 1e9
MEASURED: dict[str, dict[str, float]] = {}


def big_data() -> Path:
    data_dir = BENCH_DIR / "data"
    if not (data_dir / "v5.2" / "full.parquet").is_file():
        from nx.engine.data.build import build_data

        build_data(
            data_dir,
            synthetic=True,
            scale="full",
            eras=N_ERAS,
            rows_per_era=ROWS_PER_ERA,
            n_features=N_FEATURES,
            skip_downsample=True,
        )
    return data_dir


def subset_data(big: Path) -> Path:
    """The first SUBSET_ERAS eras of every built file, streamed (never all in memory)."""
    import polars as pl

    data_dir = BENCH_DIR / f"subset{SUBSET_ERAS}"
    vdir = data_dir / "v5.2"
    if (vdir / "full.parquet").is_file():
        return data_dir
    vdir.mkdir(parents=True, exist_ok=True)
    shutil.copy(big / "v5.2" / "features.json", vdir / "features.json")
    eras = (
        pl.scan_parquet(big / "v5.2" / "full.parquet").select(pl.col("era").unique()).collect()
    )["era"].to_list()
    keep = sorted(eras, key=int)[:SUBSET_ERAS]
    for name in ("full.parquet", "full_benchmark_models.parquet"):
        tmp = vdir / f".{name}.tmp"
        pl.scan_parquet(big / "v5.2" / name).filter(pl.col("era").is_in(keep)).sink_parquet(tmp)
        tmp.rename(vdir / name)
    return data_dir


def int8_bytes(data_dir: Path) -> int:
    import polars as pl

    rows = pl.scan_parquet(data_dir / "v5.2" / "full.parquet").select(pl.len()).collect().item()
    return rows * N_FEATURES


# The training section of the sides that do not run the default 3-split CV.
TRAINING = {
    "nx_cv5": {"cv": {"n_splits": 5}},
    "nx_final": {"cv": {"enabled": False}, "final_fit": True},
}


def _config(params: dict | None = None, training: dict | None = None):
    from nx.engine.train.config import parse_config

    return parse_config(
        {
            "data": {"feature_set": "all", "embargo_eras": EMBARGO},
            "training": training or {"cv": {"n_splits": N_SPLITS}},
            "model": {"type": "LGBMRegressor", "params": params or PARAMS},
        },
        "bench_memory.toml",
    )


def run_nx(
    data_dir: Path, out: Path, params: dict | None = None, training: dict | None = None
) -> None:
    from nx.engine.train import train_config

    train_config(_config(params, training), data_dir=data_dir, output_dir=out)


def prime_cache(data_dir: Path) -> None:
    """Write the feature cache (in a child process: its memory is not this side's)."""
    code = (
        "import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]);"
        "from test_memory import _config; from nx.engine.train import load_training_data;"
        "load_training_data(_config(), Path(sys.argv[2]))"
    )
    here = str(Path(__file__).resolve().parent)
    subprocess.run([sys.executable, "-c", code, here, str(data_dir)], check=True)


def run_pandas(data_dir: Path, out: Path) -> None:
    from tests.train.reference import pandas_oof

    features = json.loads((data_dir / "v5.2" / "features.json").read_text())["feature_sets"]["all"]
    oof = pandas_oof(data_dir, features, PARAMS, N_SPLITS, EMBARGO)
    out.mkdir(parents=True, exist_ok=True)
    oof.to_parquet(out / "oof.parquet")


def measure(side: str, data_dir: Path, out: Path) -> dict[str, float]:
    """Run one side in a fresh interpreter; its wall time and its own peak RSS (GB)."""
    env = dict(os.environ)
    if side == "nx_cold":
        from nx.engine.data.cache import clear_cache

        clear_cache(data_dir)
    if side == "nx_nocache":
        env["NX_FEATURE_CACHE"] = "off"
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, __file__, side, str(data_dir), str(out)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    wall = time.perf_counter() - started
    peak_kib = json.loads(done.stdout.strip().splitlines()[-1])["peak_kib"]
    return {"wall_s": wall, "peak_gb": peak_kib * 1024 / GB}


@pytest.fixture(scope="module")
def datasets() -> dict[str, Path]:
    big = big_data()
    return {"big": big, "subset": subset_data(big)}


CASES = [
    ("subset", "pandas"),
    ("subset", "nx_warm"),
    ("big", "nx_cold"),
    ("big", "nx_warm"),
    ("big", "nx_cv5"),
    ("big", "nx_final"),
]


@pytest.mark.parametrize(("dataset", "side"), CASES)
def test_peak_memory(benchmark, datasets, tmp_path, dataset, side):
    data_dir = datasets[dataset]
    result: dict[str, float] = {}

    def one_round() -> None:
        result.update(measure(side, data_dir, tmp_path / side))

    benchmark.pedantic(one_round, rounds=1, iterations=1)
    result["int8_gb"] = int8_bytes(data_dir) / GB
    benchmark.extra_info.update(result)
    MEASURED[f"{dataset}/{side}"] = result
    print(
        f"\n{dataset}/{side}: peak {result['peak_gb']:.2f} GB, wall {result['wall_s']:.0f} s "
        f"(int8 features {result['int8_gb']:.2f} GB)"
    )


def test_memory_ratios_and_goal():
    if len(MEASURED) != len(CASES):
        pytest.skip("run the whole file: the ratios need every side")
    pandas, nx = MEASURED["subset/pandas"], MEASURED["subset/nx_warm"]
    big = MEASURED["big/nx_warm"]
    slope = (big["peak_gb"] - nx["peak_gb"]) / (big["int8_gb"] - nx["int8_gb"])
    fixed = big["peak_gb"] - slope * big["int8_gb"]
    full_int8 = 6.0e6 * N_FEATURES / GB
    print(
        f"\nsubset ({nx['int8_gb']:.2f} GB int8): nx {nx['peak_gb']:.2f} GB vs pandas "
        f"{pandas['peak_gb']:.2f} GB -> {nx['peak_gb'] / pandas['peak_gb']:.2f}x\n"
        f"big ({big['int8_gb']:.2f} GB int8): nx warm {big['peak_gb']:.2f} GB, cold "
        f"{MEASURED['big/nx_cold']['peak_gb']:.2f} GB; goal "
        f"{0.75 * big['int8_gb'] + 1.5:.2f} GB\n"
        f"nx warm peak ~ {fixed:.2f} GB + {slope:.3f} x int8 bytes -> full size "
        f"({full_int8:.1f} GB int8): {fixed + slope * full_int8:.1f} GB"
    )
    for key in ("big/nx_cv5", "big/nx_final"):
        side = MEASURED[key]
        print(
            f"{key}: peak {side['peak_gb']:.2f} GB = "
            f"{side['peak_gb'] / side['int8_gb']:.2f} x int8 bytes (goal "
            f"{0.75 * side['int8_gb'] + 1.5:.2f} GB)"
        )
    for key in ("subset/nx_warm", "big/nx_warm", "big/nx_cv5", "big/nx_final"):
        assert MEASURED[key]["peak_gb"] <= 0.75 * MEASURED[key]["int8_gb"] + 1.5, key


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.train.reference
    side, data_dir, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    if side in ("nx_warm", "nx_colwise", *TRAINING):
        prime_cache(data_dir)  # a no-op read when the cache is already there
    if side == "pandas":
        run_pandas(data_dir, out)
    else:  # nx_colwise: LightGBM told to build histograms column-wise (no row-wise copy)
        params = {**PARAMS, "force_col_wise": True} if side == "nx_colwise" else None
        run_nx(data_dir, out, params, TRAINING.get(side))
    from data_measure import own_peak_kib  # (this file runs as a script: benchmarks/ on the path)

    print(json.dumps({"peak_kib": own_peak_kib()}))
