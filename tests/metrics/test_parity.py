"""nx against numerai-tools 0.7.2, era by era: |diff| <= 1e-9 and NaN in the same eras."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import polars as pl
import pytest
from numerai_tools import scoring as nt

from nx.engine import metrics
from tests.metrics.synth import scoring_frame

PREDS = ["pred_0", "pred_1", "pred_2"]
FEATURES = [f"feature_{j}" for j in range(6)]
TOL = 1e-9


def _nt_or_nan(fn, *args) -> float:
    """numerai-tools' value; NaN where it fails on a degenerate era (see below)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return float(fn(*args).iloc[0])
    except AssertionError:
        # FNC of a constant prediction or a one-row era: neutralize() turns it into
        # NaN and numerai_corr then asserts on the 100% NaN column; nx reports NaN.
        return float("nan")


def _exact_fit(features: np.ndarray) -> bool:
    """The features (with an intercept) fit any prediction exactly: numerai-tools then
    ranks pure rounding noise, and nx reports NaN instead."""
    design = np.hstack([features, np.ones((len(features), 1))])
    return np.linalg.matrix_rank(design) >= len(features)


def _reference(df: pd.DataFrame, col: str) -> pd.DataFrame:
    out = []
    for era, d in df.set_index("id").groupby("era"):
        d = d.sort_index()
        p = d[[col]]
        present = d[col].notna()
        out.append(
            {
                "era": era,
                "corr": _nt_or_nan(nt.numerai_corr, p, d["target"]),
                "bmc": _nt_or_nan(nt.correlation_contribution, p, d["bench"], d["target"]),
                "corr_with_benchmark": _nt_or_nan(nt.numerai_corr, p, d["bench"]),
                "mmc": _nt_or_nan(nt.correlation_contribution, p, d["meta"], d["target"]),
                "fnc": _nt_or_nan(
                    nt.feature_neutral_corr, p[present], d.loc[present, FEATURES], d["target"]
                )
                if not _exact_fit(d.loc[present, FEATURES].to_numpy())
                else float("nan"),
            }
        )
    return pd.DataFrame(out)


@pytest.fixture(scope="module", params=[0, 1, 2])
def scored(request):
    df = scoring_frame(seed=request.param)
    per_era, summary = metrics.score(
        df, PREDS, benchmark_col="bench", meta_col="meta", feature_cols=FEATURES
    )
    return df, per_era, summary


@pytest.mark.parametrize("col", PREDS)
@pytest.mark.parametrize("metric", ["corr", "bmc", "corr_with_benchmark", "mmc", "fnc"])
def test_per_era_matches_numerai_tools(scored, col, metric):
    df, per_era, _ = scored
    ours = per_era.filter(per_era["column"] == col).to_pandas().set_index("era")[metric]
    ref = _reference(df, col).set_index("era")[metric]
    assert list(ours.index) == list(ref.index)
    assert np.array_equal(np.isnan(ours.values), np.isnan(ref.values)), (ours, ref)
    finite = ~np.isnan(ref.values)
    assert finite.sum() >= 5
    assert np.abs(ours.values[finite] - ref.values[finite]).max() <= TOL


def test_degenerate_eras_are_nan(scored):
    _, per_era, summary = scored
    one_row = per_era.filter(per_era["era"] == "0002")
    assert one_row["corr"].is_nan().all()
    constant = per_era.filter((per_era["era"] == "0007") & (per_era["column"] == "pred_0"))
    assert np.isnan(constant["corr"][0]) and np.isnan(constant["fnc"][0])
    assert constant["bmc"][0] == 0.0  # numerai-tools: a constant p has no contribution
    nan_eras = per_era.filter(per_era["column"] == "pred_0")["corr"].is_nan().sum()
    assert summary["pred_0"]["corr"]["nan_eras"] == nan_eras >= 2


@pytest.fixture(scope="module")
def float32_frame() -> pl.DataFrame:
    """300 eras as Numerai ships them: float32 target (quarters, a few NaN) and
    float32 benchmark (continuous, a few NaN); float64 predictions, one with ties.
    Rows are in era order with increasing ids, so numerai-tools sees each era's rows
    in the order nx does (the float32 mean of a continuous column depends on it)."""
    rng = np.random.default_rng(11)
    n_eras, size = 300, 400
    n = n_eras * size
    signal = rng.normal(size=n)
    target = np.clip(np.round(2 + 0.3 * signal + rng.normal(size=n)), 0, 4) / 4
    target[rng.random(n) < 0.03] = np.nan
    bench = rng.random(n) + 0.2 * signal
    bench[rng.random(n) < 0.03] = np.nan
    return pl.DataFrame(
        {
            "id": [f"n{i:08d}" for i in range(n)],
            "era": np.repeat([f"{e + 1:04d}" for e in range(n_eras)], size),
            "target": pl.Series(target, nan_to_null=False).cast(pl.Float32),
            "bench": pl.Series(bench).cast(pl.Float32),
            "pred": rng.random(n) + 0.05 * signal,
            "tied": np.round(rng.random(n) + 0.05 * signal, 2),
        }
    )


def test_float32_columns_match_numerai_tools_per_era_and_in_sharpe(float32_frame):
    """numerai-tools centers and powers a float32 target (and the benchmark, as the
    target of corr with benchmark) in float32; nx once did it in float64 and its
    per-era corr differed by up to ~3e-9 (sharpe by ~3e-9). Now: 1e-12 per era."""
    cols = ["pred", "tied"]
    per_era, summary = metrics.score(float32_frame, cols, benchmark_col="bench")
    frame = float32_frame.to_pandas().set_index("id")
    assert frame["target"].dtype == np.float32 and frame["bench"].dtype == np.float32
    for col in cols:
        rows = []
        for _, d in frame.groupby("era", sort=True):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                rows.append(
                    (
                        nt.numerai_corr(d[[col]], d["target"]).iloc[0],
                        nt.numerai_corr(d[[col]], d["bench"]).iloc[0],
                        nt.correlation_contribution(d[[col]], d["bench"], d["target"]).iloc[0],
                    )
                )
        ref = np.array(rows)
        ours = per_era.filter(per_era["column"] == col).sort("era")
        for j, metric in enumerate(["corr", "corr_with_benchmark", "bmc"]):
            diff = np.abs(ours[metric].to_numpy() - ref[:, j])
            assert diff.max() <= 1e-12, (col, metric, diff.max())
        ref_corr = pd.Series(ref[:, 0])
        ref_sharpe = ref_corr.mean() / ref_corr.std(ddof=0)
        assert abs(summary[col]["corr"]["sharpe"] - ref_sharpe) <= 1e-10
        ref_bmc = pd.Series(ref[:, 2])
        assert abs(summary[col]["bmc"]["sharpe"] - ref_bmc.mean() / ref_bmc.std(ddof=0)) <= 1e-10


def test_float32_target_public_functions(float32_frame):
    """numerai_corr and feature_neutral_corr of the API see the float32 dtype too."""
    frame = float32_frame.head(4000)
    eras = frame["era"]
    ours = metrics.numerai_corr(frame["pred"], frame["target"], eras=eras)
    pdf = frame.to_pandas().set_index("id")
    ref = [nt.numerai_corr(d[["pred"]], d["target"]).iloc[0] for _, d in pdf.groupby("era")]
    assert np.abs(ours - np.array(ref)).max() <= 1e-12
