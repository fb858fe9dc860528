"""``nx report`` (experiment.md keeps hand-written text, report.html is self-contained)
and ``nx plot benchmarks``."""

from __future__ import annotations

import json
import re

import polars as pl
import pytest

from nx.engine import metrics
from nx.engine.report.document import SECTIONS
from tests.conftest import assert_user_error, nx_run
from tests.report.conftest import RUNS, png_size, run_json


def _fmt(value: float) -> str:
    return f"{value:.4f}"


def test_report_writes_every_section_and_keeps_written_text(experiment_copy, tiny_data_dir):
    doc = run_json("report", experiment_copy, "--data-dir", tiny_data_dir, subprocess=True)
    md_path = experiment_copy / "experiment.md"
    text = md_path.read_text()
    headings = re.findall(r"^## (.+)$", text, re.MULTILINE)
    assert headings == [heading for heading, _, _ in SECTIONS]
    assert text.startswith("# Experiment: exp\n") and "Date: " in text

    # results table: one row per run with the results' numbers, plus the benchmark base
    for name in RUNS:
        results = json.loads((experiment_copy / "results" / f"{name}.json").read_text())
        m = results["metrics"]
        row = (
            f"| {name} | {_fmt(m['corr']['mean'])} | {_fmt(m['bmc']['mean'])} | "
            f"{_fmt(m['bmc_last_200_eras']['mean'])} | "
            f"{m['bmc']['avg_corr_with_benchmark']:.3f} |"
        )
        assert row in text
        assert f"### {name}" in text  # experiments run
    assert "| v52_lgbm_ender20 (base) |" in text

    # the plot is embedded with a relative link that resolves, and its command is given
    link = re.search(r"!\[[^\]]*\]\((plots/[^)]+\.png)\)", text).group(1)
    assert (experiment_copy / link).is_file() and link == "plots/" + doc["plot"].split("/")[-1]
    assert png_size(experiment_copy / link) == (1800, 1800)
    assert f"nx show {experiment_copy}" in text and "--base benchmark --plot" in text
    assert f"nx train {experiment_copy}/configs/" in text  # repro commands

    # researcher text, inside and outside sections, survives a re-run
    written = text.replace(
        "_To fill: What was tested and the headline result._", "Ridge beats LightGBM here."
    ).replace("<!-- nx:end results -->", "<!-- nx:end results -->\n\nMy note on the table.")
    written = written.replace("| ridge |", "| edited by hand |", 1)  # inside a generated block
    md_path.write_text(written)
    run_json("report", experiment_copy, "--data-dir", tiny_data_dir)
    again = md_path.read_text()
    assert "Ridge beats LightGBM here." in again and "My note on the table." in again
    assert "| edited by hand |" not in again  # generated blocks are regenerated
    assert re.findall(r"^## (.+)$", again, re.MULTILINE) == headings

    # a generated block whose markers were deleted comes back at the end
    cut = re.sub(r"<!-- nx:begin repro -->.*?<!-- nx:end repro -->", "", again, flags=re.DOTALL)
    md_path.write_text(cut)
    run_json("report", experiment_copy, "--data-dir", tiny_data_dir)
    assert again.count("<!-- nx:begin repro -->") == 1
    assert md_path.read_text().count("<!-- nx:begin repro -->") == 1


def test_report_html_is_one_self_contained_file(experiment_copy, tiny_data_dir):
    run_json("report", experiment_copy, "--data-dir", tiny_data_dir, "--dark")
    page = (experiment_copy / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>")
    # nothing outside the file: no scripts, stylesheets, fonts or links to fetch
    for pattern in (r"<script", r"<link", r"@import", r"url\(", r"https?://", r"<iframe"):
        assert not re.search(pattern, page, re.IGNORECASE), pattern
    refs = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert refs and all(ref.startswith("data:image/png;base64,") for ref in refs)
    assert len(refs) == 3  # standard plot, per-era distributions, correlation matrix
    for name in RUNS:
        assert name in page
    assert "Per-era score distributions" in page and "Correlation of the runs" in page
    # the correlation table: 1 on the diagonal
    assert page.count("<td>1.000</td>") >= len(RUNS)


def test_report_errors(nx, tmp_path):
    assert_user_error(nx("report", tmp_path / "missing"), "not found")
    assert_user_error(nx("report", tmp_path), "no results/*.json")
    assert not (tmp_path / "experiment.md").exists()


def test_plot_benchmarks_four_panels_and_numbers(tiny_data_dir, tmp_path):
    out = tmp_path / "bench.png"
    doc = run_json(
        "plot", "benchmarks", "--data-dir", tiny_data_dir, "--output", out,
        "--targets", "ender_20", "--targets", "target_cyrusd_20",
        "--models", "ender20", "--models", "teager2b20", "--models", "v52_lgbm_cyrusd20",
    )  # fmt: skip
    assert doc["panels"] == 4 and png_size(out) == (doc["width_px"], doc["height_px"])
    assert (doc["width_px"], doc["height_px"]) == (1800, 2400)
    assert doc["targets"] == ["target_ender_20", "target_cyrusd_20"]
    assert doc["reference"] == "v52_lgbm_ender20"

    bench = pl.read_parquet(tiny_data_dir / "v5.2" / "full_benchmark_models.parquet")
    data = pl.read_parquet(tiny_data_dir / "v5.2" / "full.parquet")
    joined = bench.join(data.select("id", "target_ender_20", "target_cyrusd_20"), on="id")
    for target in doc["targets"]:
        _, summary = metrics.score(joined, doc["models"], target_col=target)
        for model in doc["models"]:
            assert doc["corr_mean"][target][model] == pytest.approx(
                summary[model]["corr"]["mean"], abs=1e-12
            )


def test_plot_benchmarks_defaults_dark(tiny_data_dir, tmp_path):
    from nx.engine.report.benchmarks import plot_benchmark_corrs

    doc = plot_benchmark_corrs(tiny_data_dir, output=tmp_path / "b.png", dark=True)
    assert doc["panels"] == 4 and len(doc["models"]) == 8
    assert doc["path"] == str(tmp_path / "b.png")


def test_plot_benchmarks_bad_input(nx, tiny_data_dir, tmp_path):
    assert_user_error(
        nx("plot", "benchmarks", "--data-dir", tiny_data_dir, "--targets", "cyrusd"),
        "matches several columns",
    )
    assert_user_error(
        nx("plot", "benchmarks", "--data-dir", tiny_data_dir, "--models", "nope"), "not in"
    )
    done = nx_run("plot", "benchmarks", "--data-dir", tmp_path)
    assert_user_error(done, "not found", "nx build-data")
