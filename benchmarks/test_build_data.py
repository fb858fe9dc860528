"""build-data: nx (DuckDB, streaming) against a straightforward pandas build.

Both sides build the four Numerai datasets from the same synthetic raw files
(~1.05M train+validation rows x 500 int8 features + 41 targets), each in its own
process, measured in the same run: wall time and peak resident memory.

Each side runs ``ROUNDS`` times and its fastest round counts (the test machine is
shared, so single runs are noisy); peak memory is the largest of the rounds. The raw files are generated once into
``.benchmarks/build_data_raw/`` (git-ignored) and reused by later runs.

Run: ``pytest benchmarks/test_build_data.py --benchmark-only -s``
(``NX_BENCH_ERAS`` / ``NX_BENCH_ROWS`` / ``NX_BENCH_FEATURES`` change the size).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from nx.engine.data.build import BUILT_FILES
from nx.engine.data.synthetic import generate_raw

REPO = Path(__file__).resolve().parents[1]
NX_EXE = shutil.which("nx", path=str(Path(sys.executable).parent)) or "nx"
ERAS = int(os.environ.get("NX_BENCH_ERAS", 210))
ROWS_PER_ERA = int(os.environ.get("NX_BENCH_ROWS", 5000))
N_FEATURES = int(os.environ.get("NX_BENCH_FEATURES", 500))
ROUNDS = int(os.environ.get("NX_BENCH_ROUNDS", 3))


@pytest.fixture(scope="module")
def raw_data_dir() -> Path:
    data_dir = REPO / ".benchmarks" / "build_data_raw" / f"{ERAS}x{ROWS_PER_ERA}x{N_FEATURES}"
    if not (data_dir / "v5.2" / "meta_model.parquet").is_file():
        generate_raw(
            data_dir / "v5.2", eras=ERAS, rows_per_era=ROWS_PER_ERA, n_features=N_FEATURES, seed=7
        )
    return data_dir


def _measure(command: list[str]) -> dict:
    out = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "data_measure.py"), *command],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    )
    return json.loads(out.stdout)


def _best(runs: list[dict]) -> dict:
    """Fastest round's wall time; the largest peak memory seen in any round."""
    return {
        "wall_s": min(r["wall_s"] for r in runs),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "all_wall_s": [round(r["wall_s"], 2) for r in runs],
    }


def _rows(path: Path) -> int:
    return pq.read_metadata(path).num_rows


def test_build_data_vs_pandas(benchmark, raw_data_dir, tmp_path):
    vdir = raw_data_dir / "v5.2"
    n_rows = _rows(vdir / "train.parquet") + _rows(vdir / "validation.parquet")
    assert n_rows >= 1_000_000

    pandas_out = tmp_path / "pandas"
    pandas_command = [
        sys.executable,
        "-m",
        "tests.data.pandas_reference",
        str(vdir),
        str(pandas_out),
    ]
    nx_command = [NX_EXE, "build-data", "--offline", "--rebuild", "--quiet"]
    nx_command += ["--data-dir", str(raw_data_dir)]
    pandas_runs = [_measure(pandas_command) for _ in range(ROUNDS)]
    nx_runs = []
    # pytest-benchmark times the nx side (the wrapper adds a few ms of process start)
    benchmark.pedantic(lambda: nx_runs.append(_measure(nx_command)), rounds=ROUNDS, iterations=1)
    pandas = _best(pandas_runs)
    nx = _best(nx_runs)

    for name in BUILT_FILES:  # both sides built the same row sets
        assert _rows(vdir / name) == _rows(pandas_out / name), name

    speedup = pandas["wall_s"] / nx["wall_s"]
    memory_ratio = nx["peak_rss_mb"] / pandas["peak_rss_mb"]
    benchmark.extra_info.update(
        rows=n_rows,
        features=N_FEATURES,
        nx_wall_s=round(nx["wall_s"], 2),
        nx_peak_rss_mb=round(nx["peak_rss_mb"]),
        pandas_wall_s=round(pandas["wall_s"], 2),
        pandas_peak_rss_mb=round(pandas["peak_rss_mb"]),
        nx_rounds_s=nx["all_wall_s"],
        pandas_rounds_s=pandas["all_wall_s"],
        speedup=round(speedup, 2),
        memory_ratio=round(memory_ratio, 3),
    )
    print(
        f"\nbuild-data on {n_rows:,} rows x {N_FEATURES} features: "
        f"nx {nx['wall_s']:.1f} s / {nx['peak_rss_mb']:.0f} MB peak, "
        f"pandas {pandas['wall_s']:.1f} s / {pandas['peak_rss_mb']:.0f} MB peak -> "
        f"{speedup:.1f}x faster, {memory_ratio:.2f} of the memory "
        f"(rounds: nx {nx['all_wall_s']} s, pandas {pandas['all_wall_s']} s)"
    )
