"""A straightforward pandas implementation of Numerai's build semantics.

The oracle the tests compare nx's DuckDB build against, and the "alternative" the
build-data benchmark times: read whole files, concat, filter, write (like Numerai's
reference builder). Run as a script: ``python -m tests.data.pandas_reference DIR``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd


def build_full(vdir: Path) -> pd.DataFrame:
    train = pd.read_parquet(vdir / "train.parquet")
    validation = pd.read_parquet(vdir / "validation.parquet")
    validation = validation[validation["data_type"] == "validation"]
    full = pd.concat([train, validation]).drop(columns=["data_type"])
    return full.reset_index()


def build_full_benchmarks(vdir: Path) -> pd.DataFrame:
    train = pd.read_parquet(vdir / "train_benchmark_models.parquet")
    validation = pd.read_parquet(vdir / "validation_benchmark_models.parquet")
    data_type = pd.read_parquet(vdir / "validation.parquet", columns=["data_type"])["data_type"]
    keep = data_type.index[data_type == "validation"]
    validation = validation[validation.index.isin(keep)]
    return pd.concat([train, validation])  # id stays the index, as the reference writes it


def downsample(full: pd.DataFrame, step: int = 4, offset: int = 0) -> pd.DataFrame:
    eras = sorted(full["era"].unique(), key=int)
    kept = {era for position, era in enumerate(eras) if position % step == offset}
    return full[full["era"].isin(kept)]


def downsample_benchmarks(benchmarks: pd.DataFrame, downsampled: pd.DataFrame) -> pd.DataFrame:
    return benchmarks[benchmarks.index.isin(downsampled["id"])]


def build_all(vdir: Path, out_dir: Path, step: int = 4, offset: int = 0) -> None:
    """Write the four built files with pandas (the benchmark's alternative)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    full = build_full(vdir)
    full.to_parquet(out_dir / "full.parquet", index=False)
    benchmarks = build_full_benchmarks(vdir)
    benchmarks.to_parquet(out_dir / "full_benchmark_models.parquet")
    downsampled = downsample(full, step, offset)
    downsampled.to_parquet(out_dir / "downsampled_full.parquet", index=False)
    downsample_benchmarks(benchmarks, downsampled).to_parquet(
        out_dir / "downsampled_full_benchmark_models.parquet"
    )


if __name__ == "__main__":
    build_all(Path(sys.argv[1]), Path(sys.argv[2]))
