"""Tiny Numerai-shaped datasets for the training tests (schema of the built files)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

BENCHMARK = "v52_lgbm_ender20"


def write_dataset(
    root: Path,
    *,
    n_eras: int = 40,
    rows_per_era: int = 60,
    n_features: int = 12,
    seed: int = 0,
    all_twos: tuple[int, int] | None = None,
) -> Path:
    """``root/v5.2/{full,full_benchmark_models}.parquet`` + features.json; returns root.

    ``all_twos=(era_index, feature_index)`` makes that feature all 2 in that era.
    """
    rng = np.random.default_rng(seed)
    n = n_eras * rows_per_era
    eras = np.repeat([f"{e + 1:04d}" for e in range(n_eras)], rows_per_era)
    features = rng.integers(0, 5, size=(n, n_features), dtype=np.int8)
    if all_twos is not None:
        era, feat = all_twos
        features[era * rows_per_era : (era + 1) * rows_per_era, feat] = 2
    signal = (features[:, 0] - 2) * 0.3 + (features[:, 1] - 2) * 0.2 + rng.normal(size=n)
    target = np.clip(np.round(signal / 2 + 2), 0, 4) / 4
    names = [f"feature_{i:03d}" for i in range(n_features)]
    # rows stored out of era order (shuffled within the file) to exercise era selection
    order = rng.permutation(n)
    ids = np.array([f"n{i:015x}" for i in range(n)])
    frame = pl.DataFrame(
        {
            "id": ids[order],
            "era": eras[order],
            **{name: features[order, j] for j, name in enumerate(names)},
            "target": target[order],
            "target_aux_20": np.clip(target[order] + rng.normal(0, 0.1, n), 0, 1),
        }
    )
    vdir = root / "v5.2"
    vdir.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(vdir / "full.parquet")
    bench_noise = rng.normal(size=n)
    bench = pl.DataFrame(
        {
            "id": ids,
            "era": eras,
            BENCHMARK: (signal + bench_noise)[:],
            "v52_lgbm_teager2b20": rng.random(n),
        }
    ).with_columns(pl.col(BENCHMARK).rank() / n)
    bench.write_parquet(vdir / "full_benchmark_models.parquet")
    (vdir / "features.json").write_text(
        json.dumps(
            {
                "feature_sets": {"small": names[:6], "medium": names, "all": names},
                "targets": ["target", "target_aux_20"],
            }
        )
    )
    return root


@pytest.fixture(scope="session")
def small_data_dir(tmp_path_factory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("train_data"))


def write_config(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


FAST_LGBM = """
[model]
type = "LGBMRegressor"
[model.params]
n_estimators = 20
learning_rate = 0.1
num_leaves = 7
min_data_in_leaf = 20
deterministic = true
force_col_wise = true
n_jobs = 1
random_state = 7
verbose = -1
"""
