"""``nx show``: the leaderboard of an experiment and the standard three-panel plot.

Leaderboard rows come from the results documents (as the reference's
``summarize_results`` and ``show_experiment`` tables), except where the numbers must
be computed: the ``benchmark`` base (the benchmark model scored as a run) and every
row when a start era is given (the runs' per-era scores from that era on). Sorting:
``bmc200`` = BMC mean over the last 200 eras, BMC mean where that is missing (the
reference's leaderboard rule); ``bmc`` = BMC mean; ``corr`` = corr mean; ``sharpe`` =
BMC sharpe. Runs without the sort value go last; the base is always first.

The plot (``plots/<base>_vs_<first>[_plus_N][_dark].png``, the reference's names):
cumulative per-era corr of base and runs over the eras all of them have, the runs'
cumulative corr minus the base's, and cumulative BMC over the eras where all have BMC.
"""

from __future__ import annotations

import math
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nx.engine.errors import ReportError
from nx.engine.paths import DEFAULT_DATA_DIR
from nx.engine.progress import NO_PROGRESS, Progress
from nx.engine.report.curves import (
    BENCHMARK_BASE,
    Benchmark,
    EraScores,
    after_start,
    era_number,
    per_era_scores,
    resolve_benchmark,
    summaries,
)
from nx.engine.report.experiment import SECTIONS, SUMMARY_KEYS, Run, find_run, load_experiment

SORTS = ("bmc200", "bmc", "corr", "sharpe")


@dataclass
class ShowResult:
    """What ``show_experiment`` found, computed and wrote."""

    experiment_dir: Path
    rows: list[dict[str, Any]]
    base: str | None
    sort: str
    start_era: int | None
    benchmark: Benchmark | None
    scores: dict[str, EraScores] = field(default_factory=dict)
    plot_path: Path | None = None
    figure: Any = None
    runs: list[Run] = field(default_factory=list)


def _import_matplotlib() -> None:
    import matplotlib.backends.backend_agg  # noqa: F401
    import matplotlib.figure  # noqa: F401


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text)


def sort_value(row: dict[str, Any], sort: str) -> float:
    if sort == "bmc200":
        value = row["bmc_last_200_eras"]["mean"]
        return value if math.isfinite(value) else row["bmc"]["mean"]
    if sort == "sharpe":
        return row["bmc"]["sharpe"]
    return row[sort]["mean"]


def _row(name: str, sections: dict[str, dict[str, float]], **facts: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"name": name, **facts}
    for section in SECTIONS:
        raw = sections.get(section, {})
        row[section] = {k: float(raw.get(k, math.nan)) for k in SUMMARY_KEYS}
    return row


def _overlap_error(start_era: int | None, scores: dict[str, EraScores], what: str) -> ReportError:
    numbers = [n for s in scores.values() for e in s.eras if (n := era_number(e)) is not None]
    last = f"; the data ends at era {max(numbers)}" if numbers else ""
    hint = "lower --start-era" if start_era is not None else "compare runs scored on the same eras"
    start = f" from era {start_era}" if start_era is not None else ""
    return ReportError(f"no overlapping eras{start} for {what}{last}; {hint}")


def show_experiment(
    experiment_dir: Path,
    names: list[str] | None = None,
    base: str | None = BENCHMARK_BASE,
    sort: str = "bmc200",
    start_era: int | None = None,
    plot: bool = False,
    dark: bool = False,
    data_dir: Path = DEFAULT_DATA_DIR,
    benchmark_data: Path | None = None,
    benchmark_model: str | None = None,
    baselines_dir: Path | None = None,
    progress: Progress = NO_PROGRESS,
) -> ShowResult:
    """Leaderboard (and with ``plot`` the standard PNG) of an experiment dir."""
    if sort not in SORTS:
        raise ReportError(f"unknown sort '{sort}'; use one of {', '.join(SORTS)}")
    experiment_dir = Path(experiment_dir)
    runs = load_experiment(experiment_dir, names, baselines_dir)
    if plot:  # matplotlib imports while polars reads the predictions (it releases the GIL)
        threading.Thread(target=_import_matplotlib, daemon=True).start()
    base_run: Run | None = None
    if base is not None and base != BENCHMARK_BASE:
        base_run = next((r for r in runs if r.name == base), None)
        if base_run is None:
            base_run = find_run(experiment_dir, base, baselines_dir)
            runs = [base_run, *runs]
    others = [r for r in runs if r is not base_run]
    if not others:
        raise ReportError("nothing to compare with the base; name at least one other run")

    json_rows = {
        r.name: _row(
            r.name,
            {s: r.summary(s) for s in SECTIONS},
            model_type=r.model_type,
            feature_set=r.feature_set,
            source="results",
        )
        for r in runs
    }
    by_results = sorted(others, key=lambda r: _descending(sort_value(json_rows[r.name], sort)))

    benchmark = resolve_benchmark(runs, benchmark_data, benchmark_model, data_dir)
    scores: dict[str, EraScores] = {}
    template = next((r for r in by_results if r.predictions_path is not None), None)
    if base == BENCHMARK_BASE:
        if benchmark is None:
            raise ReportError(
                "base 'benchmark' needs the benchmark models file (full_benchmark_models"
                ".parquet under --data-dir); pass --data-dir, --benchmark-data or --base NAME"
            )
        if template is None:
            raise ReportError("base 'benchmark' needs a run with a predictions file")
    need_all = plot or start_era is not None
    if need_all or base == BENCHMARK_BASE:
        scored = runs if need_all else [template]
        all_eras = per_era_scores(
            scored, benchmark, template if base == BENCHMARK_BASE else None, progress
        )
        scores = {name: after_start(s, start_era) for name, s in all_eras.items()}
        empty = [name for name, s in scores.items() if len(s.eras) == 0]
        if empty:
            raise _overlap_error(start_era, all_eras, f"'{empty[0]}'")

    rows = []
    for r in runs:
        row = json_rows[r.name]
        if start_era is not None:
            row = _row(
                r.name, summaries(scores[r.name]), model_type=r.model_type,
                feature_set=r.feature_set, source="predictions",
            )  # fmt: skip
        rows.append(row)
    base_label = None
    if base == BENCHMARK_BASE:
        base_label = benchmark.column
        rows.append(
            _row(
                base_label,
                summaries(scores[base_label]),
                model_type="benchmark model",
                feature_set=None,
                source="predictions",
            )  # fmt: skip
        )
    elif base_run is not None:
        base_label = base_run.name
    base_row = next((row for row in rows if row["name"] == base_label), None)
    others_rows = sorted(
        (row for row in rows if row is not base_row),
        key=lambda row: _descending(sort_value(row, sort)),
    )
    ordered = ([base_row] if base_row is not None else []) + others_rows
    for row in ordered:
        row["base"] = row is base_row
        row["delta"] = _delta(row, base_row)

    result = ShowResult(
        experiment_dir=experiment_dir,
        rows=ordered,
        base=base_label,
        sort=sort,
        start_era=start_era,
        benchmark=benchmark,
        scores=scores,
        runs=runs,
    )
    if plot:
        if base_label is None:
            raise ReportError("the plot compares runs with a base; pass --base NAME|benchmark")
        models = [row["name"] for row in others_rows]
        result.figure = standard_figure(base_label, models, scores, dark, start_era)
        result.plot_path = plot_path(experiment_dir, base_label, models, dark)
        from nx.engine.report.figures import save_png

        save_png(result.figure, result.plot_path)
    return result


def _descending(value: float) -> tuple[int, float]:
    return (0, -value) if math.isfinite(value) else (1, 0.0)


def _delta(row: dict[str, Any], base_row: dict[str, Any] | None) -> dict[str, float]:
    if base_row is None:
        return {}
    return {
        "bmc_mean": row["bmc"]["mean"] - base_row["bmc"]["mean"],
        "bmc_last_200_eras_mean": row["bmc_last_200_eras"]["mean"]
        - base_row["bmc_last_200_eras"]["mean"],
        "corr_mean": row["corr"]["mean"] - base_row["corr"]["mean"],
    }


def plot_path(experiment_dir: Path, base: str, models: list[str], dark: bool) -> Path:
    stem = slug(f"{base}_vs_{models[0]}")
    if len(models) > 1:
        stem += f"_plus_{len(models) - 1}"
    if dark:
        stem += "_dark"
    return Path(experiment_dir) / "plots" / f"{stem}.png"


def _common(series: list[EraScores], finite_bmc: bool) -> list[str]:
    common = set(series[0].eras)
    for s in series[1:]:
        common &= set(s.eras)
    if finite_bmc:
        for s in series:
            common &= set(s.eras[np.isfinite(s.bmc)])
    return [e for e in series[0].eras if e in common]  # in era order


def _on(scores: EraScores, eras: list[str], what: str) -> np.ndarray:
    position = {e: i for i, e in enumerate(scores.eras)}
    values = scores.corr if what == "corr" else scores.bmc
    return values[[position[e] for e in eras]]


def standard_figure(
    base: str, models: list[str], scores: dict[str, EraScores], dark: bool, start_era=None
):
    """The three-panel figure of ``base`` against ``models`` (per-era scores given)."""
    from nx.engine.report.figures import Curve, experiment_figure

    series = [scores[base], *(scores[m] for m in models)]
    eras = _common(series, finite_bmc=False)
    if not eras:
        raise _overlap_error(start_era, {n: scores[n] for n in [base, *models]}, "the plot")
    era_array = np.array(eras)
    base_curve = Curve(base, era_array, _on(scores[base], eras, "corr"))
    curves = [Curve(m, era_array, _on(scores[m], eras, "corr")) for m in models]
    base_bmc, bmc_curves = None, []
    if all(s.bmc is not None for s in series):
        bmc_eras = _common(series, finite_bmc=True)
        if not bmc_eras:
            raise _overlap_error(start_era, {n: scores[n] for n in [base, *models]}, "BMC")
        bmc_array = np.array(bmc_eras)
        base_bmc = Curve(base, bmc_array, _on(scores[base], bmc_eras, "bmc"))
        bmc_curves = [Curve(m, bmc_array, _on(scores[m], bmc_eras, "bmc")) for m in models]
    return experiment_figure(base_curve, curves, base_bmc, bmc_curves, dark)
