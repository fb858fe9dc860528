"""``nx show`` on a small trained experiment: the table's numbers against ``nx score``,
the standard plot (size, panels, lines), start eras and bad input."""

from __future__ import annotations

import math

import polars as pl
import pytest

from nx.engine.report.show import show_experiment
from tests.conftest import assert_user_error, nx_run
from tests.report.conftest import RUNS, png_size, run_json

SECTIONS = ("corr", "bmc", "bmc_last_200_eras")
KEYS = ("mean", "std", "sharpe", "max_drawdown")


def _close(a, b, tol=1e-12):
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=0, abs_tol=tol)


def _score(path, data_dir) -> dict:
    return run_json("score", path, "--data-dir", data_dir)["columns"]["prediction"]


def _assert_same_numbers(row: dict, scored: dict) -> None:
    for section in SECTIONS:
        for key in KEYS:
            assert _close(row[section][key], scored[section][key]), (row["name"], section, key)
    for section in ("bmc", "bmc_last_200_eras"):
        got, want = (
            row[section]["avg_corr_with_benchmark"],
            scored[section]["avg_corr_with_benchmark"],
        )
        assert _close(got, want), (row["name"], section)


def test_leaderboard_numbers_are_nx_score_numbers(experiment, tiny_data_dir):
    doc = run_json("show", experiment, "--data-dir", tiny_data_dir, subprocess=True)
    rows = doc["rows"]
    assert doc["base"] == "v52_lgbm_ender20" and rows[0]["base"] and rows[0]["name"] == doc["base"]
    assert sorted(r["name"] for r in rows[1:]) == sorted(RUNS)
    # sorted by BMC over the last 200 eras, best first
    means = [r["bmc_last_200_eras"]["mean"] for r in rows[1:]]
    assert means == sorted(means, reverse=True)
    for row in rows[1:]:
        _assert_same_numbers(row, _score(experiment / "predictions" / f"{row['name']}.parquet",
                                         tiny_data_dir))  # fmt: skip
        for key, section in (("bmc_mean", "bmc"), ("corr_mean", "corr")):
            assert _close(row["delta"][key], row[section]["mean"] - rows[0][section]["mean"])

    # the benchmark base: the benchmark column scored as predictions on the runs' rows
    bench = pl.read_parquet(tiny_data_dir / "v5.2" / "full_benchmark_models.parquet")
    preds = pl.read_parquet(experiment / "predictions" / f"{rows[1]['name']}.parquet")
    base_file = experiment.parent / "benchmark_as_predictions.parquet"
    preds.select("id").join(
        bench.select("id", pl.col("v52_lgbm_ender20").alias("prediction")), on="id"
    ).write_parquet(base_file)
    scored = _score(base_file, tiny_data_dir)
    for key in KEYS:
        assert _close(rows[0]["corr"][key], scored["corr"][key])
    assert abs(rows[0]["bmc"]["mean"]) < 1e-12  # BMC of the benchmark against itself
    assert rows[0]["bmc"]["avg_corr_with_benchmark"] > 0.9


def test_sort_and_named_runs(experiment, tiny_data_dir):
    doc = run_json(
        "show", experiment, "lgbm_5", "ridge", "--base", "lgbm_10", "--sort", "corr",
        "--data-dir", tiny_data_dir,
    )  # fmt: skip
    names = [r["name"] for r in doc["rows"]]
    assert names[0] == "lgbm_10" and sorted(names[1:]) == ["lgbm_5", "ridge"]
    corr = [r["corr"]["mean"] for r in doc["rows"][1:]]
    assert corr == sorted(corr, reverse=True)
    assert all(r["source"] == "results" for r in doc["rows"])


def test_start_era_table_is_nx_score_of_those_eras(experiment, tiny_data_dir, tmp_path):
    doc = run_json(
        "show", experiment, "--base", "ridge", "--start-era", "0040", "--data-dir", tiny_data_dir
    )
    assert doc["start_era"] == 40
    for row in doc["rows"]:
        assert row["source"] == "predictions"
        preds = pl.read_parquet(experiment / "predictions" / f"{row['name']}.parquet")
        part = tmp_path / f"{row['name']}.parquet"
        preds.filter(pl.col("era").cast(pl.Int64) >= 40).write_parquet(part)
        _assert_same_numbers(row, _score(part, tiny_data_dir))


def test_plot_has_three_panels_and_the_reference_name(experiment_copy, tiny_data_dir):
    doc = run_json("show", experiment_copy, "--plot", "--data-dir", tiny_data_dir, subprocess=True)
    plot = doc["plot"]
    first = doc["rows"][1]["name"]
    assert plot["path"].endswith(f"plots/v52_lgbm_ender20_vs_{first}_plus_2.png")
    assert png_size(plot["path"]) == (plot["width_px"], plot["height_px"]) == (1800, 1800)
    assert plot["panels"] == 3

    dark = run_json(
        "show", experiment_copy, "ridge", "--base", "lgbm_5", "--plot", "--dark",
        "--data-dir", tiny_data_dir,
    )  # fmt: skip
    assert dark["plot"]["path"].endswith("plots/lgbm_5_vs_ridge_dark.png")
    assert png_size(dark["plot"]["path"]) == (1800, 1800)


def test_plot_figure_objects(experiment_copy, tiny_data_dir):
    result = show_experiment(experiment_copy, plot=True, data_dir=tiny_data_dir, dark=True)
    axes = result.figure.axes
    assert len(axes) == 3
    titles = [ax.get_title(loc="left") for ax in axes]
    assert titles[0].startswith("Cumulative per-era correlation")
    assert titles[1].startswith("Cumulative corr minus base")
    assert titles[2].startswith("Cumulative per-era BMC")
    assert axes[-1].get_xlabel() == "era"
    for ax in axes:
        assert ax.get_ylabel()
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert len(labels) == (3 if ax is axes[1] else 4)
    # panel 1: the base's cumulative corr over the common eras equals its per-era sum
    base_line = axes[0].get_lines()[0]
    base = result.scores[result.base]
    assert math.isclose(base_line.get_ydata()[-1], float(base.corr.sum()), abs_tol=1e-12)
    # era numbers on the x axis
    assert base_line.get_xdata()[0] == int(base.eras[0])


def test_start_era_past_the_data_is_one_line(experiment, tiny_data_dir):
    done = nx_run("show", experiment, "--start-era", "999", "--plot", "--data-dir", tiny_data_dir)
    assert_user_error(done, "no overlapping eras from era 999", "lower --start-era")
    assert not (experiment / "plots").exists()


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (("lgbm_77",), ("no results for 'lgbm_77'", "available: lgbm_10, lgbm_5, ridge")),
        (("--sort", "speed"), ("unknown sort 'speed'",)),
        (("--base", "nope"), ("no results for 'nope'",)),
    ],
)
def test_bad_input(nx, experiment, tiny_data_dir, args, fragments):
    assert_user_error(nx("show", experiment, *args, "--data-dir", tiny_data_dir), *fragments)


def test_missing_dir_and_empty_dir(nx, tmp_path, tiny_data_dir):
    assert_user_error(nx("show", tmp_path / "nope"), "experiment dir", "not found")
    assert_user_error(nx("show", tmp_path), "no results/*.json", "nx train")


def test_benchmark_base_without_benchmark_file(nx, experiment, tmp_path):
    assert_user_error(
        nx("show", experiment, "--data-dir", tmp_path / "empty", "--benchmark-data",
           tmp_path / "missing.parquet"),
        "benchmark file", "not found",
    )  # fmt: skip


def test_reference_framework_results(experiment_copy, tiny_data_dir):
    """A results document in the reference's shape (consistency, small_bmc, no cv) reads."""
    import json

    doc = json.loads((experiment_copy / "results" / "ridge.json").read_text())
    reference = {
        "model": {"type": "LGBMRegressor", "params": {}},
        "data": {"feature_set": "small", "data_version": "v5.2"},
        "benchmark": {"model": "v52_lgbm_ender20"},
        "output": {"predictions_file": "predictions/ridge.parquet"},
        "metrics": {
            k: {**v, "consistency": 0.5}
            for k, v in doc["metrics"].items()
            if k in ("corr", "bmc", "bmc_last_200_eras")
        }
        | {"small_bmc": {"mean": 0.1}},
    }
    (experiment_copy / "results" / "ref_style.json").write_text(json.dumps(reference))
    out = run_json("show", experiment_copy, "--data-dir", tiny_data_dir, "--plot")
    row = next(r for r in out["rows"] if r["name"] == "ref_style")
    assert row["bmc"]["mean"] == doc["metrics"]["bmc"]["mean"]
    assert out["plot"]["panels"] == 3
