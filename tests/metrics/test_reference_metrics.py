"""``nx train``'s metrics against the reference framework's scoring of the same
predictions file (numerai/example-scripts ``agents/code/metrics/numerai_metrics.py``:
per era numerai-tools on the file as pandas reads it, float32 target and benchmark
included), to 1e-12.

numerai-tools centers and powers a float32 target in float32; nx once did it in
float64, and the corr sharpe differed from the reference's by 1.5e-9 on this data.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from numerai_tools.scoring import correlation_contribution, numerai_corr

from tests.train.test_reference_parity import reference_config, run_nx

BENCH = "v52_lgbm_ender20"
PARAMS = {"n_estimators": 10, "num_leaves": 7, "n_jobs": 1, "verbose": -1}


def _summary(scores: pd.Series) -> tuple[float, float, float]:
    scores = scores.dropna()
    return scores.mean(), scores.std(ddof=0), scores.mean() / scores.std(ddof=0)


def _per_era(frame: pd.DataFrame, columns: list[str], score) -> pd.Series:
    """The reference's per_era_*: drop rows missing any input, numerai-tools per era."""
    frame = frame.dropna(subset=columns)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return frame.groupby("era").apply(score)["prediction"]


def test_train_metrics_match_the_reference_scoring(nx, tiny_data_dir, tmp_path):
    config = reference_config(model={"params": PARAMS}, output={"results_name": "ref"})
    predictions, results, _ = run_nx(nx, config, tiny_data_dir, tmp_path)
    metrics = results["metrics"]

    assert predictions["target"].dtype == np.float32
    bench = pd.read_parquet(tiny_data_dir / "v5.2" / "full_benchmark_models.parquet")
    bench = bench.set_index("id") if "id" in bench.columns else bench
    assert bench[BENCH].dtype == np.float32
    joined = predictions.set_index("id")
    joined[BENCH] = bench[BENCH].reindex(joined.index).to_numpy()

    corr = _per_era(
        predictions,
        ["prediction", "target"],
        lambda g: numerai_corr(g[["prediction"]], g["target"]),
    )
    bmc = _per_era(
        joined,
        ["prediction", BENCH, "target"],
        lambda g: correlation_contribution(g[["prediction"]], g[BENCH], g["target"]),
    )
    with_bench = _per_era(
        joined, ["prediction", BENCH], lambda g: numerai_corr(g[["prediction"]], g[BENCH])
    )
    assert len(corr) >= 40 and len(bmc) >= 40
    for section, reference in (("corr", corr), ("bmc", bmc)):
        mean, std, sharpe = _summary(reference)
        assert abs(metrics[section]["mean"] - mean) <= 1e-12
        assert abs(metrics[section]["std"] - std) <= 1e-12
        assert abs(metrics[section]["sharpe"] - sharpe) <= 1e-10
    assert abs(metrics["bmc"]["avg_corr_with_benchmark"] - with_bench.mean()) <= 1e-12
