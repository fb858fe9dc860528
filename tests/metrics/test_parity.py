"""nx against numerai-tools 0.7.2, era by era: |diff| <= 1e-9 and NaN in the same eras."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
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
