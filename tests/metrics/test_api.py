"""The public score() contract the rest of nx codes against."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from nx.engine import metrics
from nx.engine.errors import ScoringError
from tests.metrics.synth import scoring_frame

PREDS = ["pred_0", "pred_2"]
FEATURES = [f"feature_{j}" for j in range(6)]
SECTION_KEYS = {"mean", "std", "sharpe", "max_drawdown", "eras", "nan_eras"}


@pytest.fixture(scope="module")
def frame():
    return scoring_frame(seed=3)


def test_sections_appear_with_their_inputs(frame):
    per_era, summary = metrics.score(frame, PREDS)
    assert per_era.columns == ["era", "column", "corr"]
    assert set(summary) == set(PREDS) and set(summary["pred_0"]) == {"corr"}
    per_era, summary = metrics.score(
        frame, PREDS, benchmark_col="bench", meta_col="meta", feature_cols=FEATURES
    )
    assert per_era.columns == [
        "era",
        "column",
        "corr",
        "bmc",
        "corr_with_benchmark",
        "mmc",
        "fnc",
        "max_feature_exposure",
    ]
    columns = summary["pred_2"]
    assert set(columns) == {"corr", "bmc", "bmc_last_200_eras", "mmc", "fnc", "feature_exposure"}
    assert set(columns["corr"]) == SECTION_KEYS
    assert set(columns["bmc"]) == SECTION_KEYS | {"avg_corr_with_benchmark"}
    assert set(columns["bmc_last_200_eras"]) == set(columns["bmc"])
    assert set(columns["feature_exposure"]) == {"mean_max", "max_max", "eras", "nan_eras"}
    assert per_era.height == 10 * len(PREDS)
    assert per_era["era"].to_list()[:4] == ["0001", "0001", "0002", "0002"]


def test_pandas_and_polars_agree_and_row_order_does_not_matter(frame):
    a, sa = metrics.score(frame, PREDS, benchmark_col="bench")
    shuffled = pl.from_pandas(frame).sample(fraction=1.0, shuffle=True, seed=5)
    b, sb = metrics.score(shuffled, PREDS, benchmark_col="bench")
    assert _close(sa, sb)
    np.testing.assert_allclose(a["bmc"].to_numpy(), b["bmc"].to_numpy(), atol=1e-12)


def _close(x, y) -> bool:
    if isinstance(x, dict):
        return x.keys() == y.keys() and all(_close(x[k], y[k]) for k in x)
    return (np.isnan(x) and np.isnan(y)) or abs(x - y) < 1e-12


def test_summary_matches_per_era(frame):
    per_era, summary = metrics.score(frame, ["pred_2"], benchmark_col="bench")
    bmc = per_era["bmc"].to_numpy()
    ok = bmc[~np.isnan(bmc)]
    assert summary["pred_2"]["bmc"]["mean"] == pytest.approx(ok.mean())
    assert summary["pred_2"]["bmc"]["std"] == pytest.approx(ok.std())
    cwb = per_era["corr_with_benchmark"].to_numpy()
    assert summary["pred_2"]["bmc"]["avg_corr_with_benchmark"] == pytest.approx(np.nanmean(cwb))


def test_last_200_eras():
    rng = np.random.default_rng(0)
    n_eras, size = 230, 20
    df = pl.DataFrame(
        {
            "era": np.repeat([f"{e:04d}" for e in range(1, n_eras + 1)], size),
            "target": rng.choice([0.0, 0.25, 0.5, 0.75, 1.0], n_eras * size),
            "p": rng.random(n_eras * size),
            "b": rng.random(n_eras * size),
        }
    )
    per_era, summary = metrics.score(df, ["p"], benchmark_col="b")
    last = per_era["bmc"].to_numpy()[-200:]
    assert summary["p"]["bmc_last_200_eras"]["eras"] == 200
    assert summary["p"]["bmc_last_200_eras"]["mean"] == pytest.approx(last.mean())


def test_unresolved_eras_and_missing_benchmark_eras_are_left_out(frame):
    df = pl.from_pandas(frame).with_columns(
        pl.when(pl.col("era") == "0010").then(None).otherwise(pl.col("target")).alias("target"),
        pl.when(pl.col("era") == "0001").then(None).otherwise(pl.col("bench")).alias("bench"),
    )
    per_era, summary = metrics.score(df, ["pred_2"], benchmark_col="bench")
    assert "0010" not in per_era["era"].to_list()
    assert summary["pred_2"]["corr"]["eras"] == 9
    assert summary["pred_2"]["bmc"]["eras"] == 8


def test_nan_limit_names_the_era_and_can_be_relaxed(frame):
    df = pl.from_pandas(frame)
    in_era = (pl.col("era") == "0008") & (pl.int_range(pl.len()).over("era") < 90)
    df = df.with_columns(pl.when(in_era).then(None).otherwise(pl.col("pred_0")).alias("pred_0"))
    with pytest.raises(ScoringError, match="era 0008.*pred_0.*max-nan-fraction"):
        metrics.score(df, ["pred_0"])
    per_era, _ = metrics.score(df, ["pred_0"], max_nan_fraction=0.5)
    assert np.isfinite(per_era.filter(pl.col("era") == "0008")["corr"][0])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"pred_cols": ["nope"]}, "prediction column 'nope' not found"),
        ({"pred_cols": ["pred_0"], "target_col": "t"}, "target column 't' not found"),
        ({"pred_cols": ["pred_0"], "era_col": "date"}, "era column 'date' not found"),
        ({"pred_cols": ["id"]}, "not numeric"),
        ({"pred_cols": ["pred_0"], "feature_cols": ["feature_x"]}, "feature_x"),
        ({"pred_cols": []}, "no prediction column"),
    ],
)
def test_bad_input(frame, kwargs, message):
    with pytest.raises(ScoringError, match=message):
        metrics.score(frame, **kwargs)


def _era_of_row(frame, row: int) -> str:
    return frame["era"].iloc[row]


@pytest.mark.parametrize("column", ["target", "pred_0", "bench", "meta", "feature_2"])
def test_score_refuses_infinite_values_naming_count_and_first_era(frame, column):
    """Infinite = error (NaN = missing): the column, the count and the first era."""
    bad = frame.copy()
    bad[column] = bad[column].astype(np.float64)
    eras = sorted(bad["era"].unique(), key=int)
    rows = [bad.index[bad["era"] == eras[4]][0], bad.index[bad["era"] == eras[7]][1]]
    bad.loc[rows, column] = [np.inf, -np.inf]
    with pytest.raises(ScoringError, match=rf"'{column}' has 2 infinite values \(first in era "
                       rf"{eras[4]}\)"):  # fmt: skip
        metrics.score(bad, PREDS, benchmark_col="bench", meta_col="meta", feature_cols=FEATURES)


def test_public_functions_refuse_infinite_values(frame):
    eras = frame["era"].to_numpy()
    pred = frame["pred_0"].to_numpy().copy()
    target = frame["target"].to_numpy()
    bench = frame["bench"].to_numpy()
    features = frame[FEATURES].to_numpy().astype(np.float64)
    first_era = sorted(frame["era"].unique(), key=int)[0]
    row = int(np.flatnonzero(eras == first_era)[0])
    bad = pred.copy()
    bad[row] = np.inf
    calls = [
        lambda: metrics.numerai_corr(bad, target, eras, max_nan_fraction=0.5),
        lambda: metrics.numerai_corr(np.nan_to_num(pred, nan=0.5), np.where(pred > 0, np.inf, 0)),
        lambda: metrics.correlation_contribution(bad, bench, target, eras, max_nan_fraction=0.5),
        lambda: metrics.tie_kept_rank(bad, eras),
        lambda: metrics.gaussianize(bad, eras),
        lambda: metrics.feature_exposure(bad, features, eras),
        lambda: metrics.feature_neutral_corr(bad, features, target, eras, max_nan_fraction=0.5),
        lambda: metrics.neutralize(np.nan_to_num(bad, nan=0.5, posinf=np.inf), features, 1.0),
        lambda: metrics.summarize(np.array([0.1, np.inf, 0.2])),
    ]
    for call in calls:
        with pytest.raises(ScoringError, match="infinite value"):
            call()
    with pytest.raises(ScoringError, match=f"first in era {first_era}"):
        calls[0]()


def test_infinite_prediction_in_an_unresolved_era_is_an_error_too(frame):
    bad = frame.copy()
    last = sorted(bad["era"].unique(), key=int)[-1]
    bad.loc[bad["era"] == last, "target"] = np.nan  # not resolved yet: not scored
    bad.loc[bad.index[bad["era"] == last][0], "pred_0"] = np.inf
    with pytest.raises(ScoringError, match=rf"'pred_0' has 1 infinite value \(first in era {last}"):
        metrics.score(bad, PREDS)
