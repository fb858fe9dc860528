"""``nx plot benchmarks``: how Numerai's benchmark models score against targets, per era.

From the data dir's built files (no download): the benchmark columns of
``full_benchmark_models.parquet`` joined by id to the targets of ``full.parquet``,
per-era numerai_corr of each model with each target (:func:`nx.engine.metrics.score`),
then one panel per target of the cumulative corr and one per target of the cumulative
difference from a reference model (the reference framework's four panels for two
targets).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from nx.engine.errors import NxError, ReportError
from nx.engine.metrics.io import default_benchmark_model
from nx.engine.paths import version_dir
from nx.engine.progress import NO_PROGRESS, Progress

DEFAULT_TARGETS = ("target_ender_20", "target_cyrusd_20")
_NOT_MODELS = {"id", "era", "data_type"}


def _squash(text: str) -> str:
    return text.replace("_", "").lower()


def _pick(name: str, columns: list[str], what: str, path: Path) -> str:
    """``name``, else the unique column ending in ``_name``, else the unique column that
    contains it (underscores ignored: ``ender20`` finds ``target_ender_20``)."""
    if name in columns:
        return name
    for rule in (lambda c: c.endswith(f"_{name}"), lambda c: _squash(name) in _squash(c)):
        matches = [c for c in columns if rule(c)]
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise ReportError(
                f"{what} '{name}' matches several columns of {path} ({', '.join(matches)}); "
                "give the full column name"
            )
    raise ReportError(f"{what} '{name}' not in {path}; columns there: {', '.join(columns)}")


def _schema(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ReportError(f"{path} not found; run `nx build-data` (with --data-dir) first")
    try:
        return dict(pl.read_parquet_schema(path))
    except Exception:  # polars raises several types for unreadable files
        raise ReportError(f"cannot read {path}; build it again with `nx build-data`") from None


def plot_benchmark_corrs(
    data_dir: Path,
    data_version: str = "v5.2",
    targets: list[str] | None = None,
    models: list[str] | None = None,
    reference: str | None = None,
    output: Path | None = None,
    dark: bool = False,
    progress: Progress = NO_PROGRESS,
) -> dict[str, Any]:
    """Write the benchmark-corrs figure; returns its path, panels, size, columns and eras."""
    from nx.engine import metrics
    from nx.engine.report.figures import Curve, cumulative_panels_figure, save_png
    from nx.engine.report.show import slug

    folder = version_dir(data_dir, data_version)
    bench_path, data_path = folder / "full_benchmark_models.parquet", folder / "full.parquet"
    bench_schema, data_schema = _schema(bench_path), _schema(data_path)
    model_columns = [c for c, d in bench_schema.items() if c not in _NOT_MODELS and d.is_numeric()]
    target_columns = [c for c in data_schema if c.startswith("target")]
    if models:
        chosen = [_pick(m, model_columns, "benchmark model", bench_path) for m in models]
    else:
        chosen = model_columns
    chosen = list(dict.fromkeys(chosen))
    if not chosen:
        raise ReportError(f"{bench_path} has no benchmark model columns")
    if targets:
        target_cols = [_pick(t, target_columns, "target", data_path) for t in targets]
    else:
        target_cols = [t for t in DEFAULT_TARGETS if t in target_columns] or target_columns[:1]
    target_cols = list(dict.fromkeys(target_cols))
    if not target_cols:
        raise ReportError(f"{data_path} has no target columns")
    if reference:
        ref = _pick(reference, chosen, "reference model", bench_path)
    else:
        default = default_benchmark_model(data_version)
        ref = default if default in chosen else chosen[0]

    with progress.task("Reading benchmark models and targets", total=None):
        bench = pl.read_parquet(bench_path, columns=["id", "era", *chosen])
        data = pl.read_parquet(data_path, columns=["id", *target_cols])
        frame = bench.join(data, on="id", how="inner").with_columns(pl.col("era").cast(pl.String))
    if frame.height == 0:
        raise ReportError(f"{bench_path} and {data_path} share no id; build them together")

    corr_panels, diff_panels = [], []
    per_target: dict[str, dict[str, float]] = {}
    with progress.task("Scoring per era", total=len(target_cols)) as task:
        for target in target_cols:
            try:
                per_era, summary = metrics.score(frame, chosen, target_col=target)
            except NxError as error:
                raise ReportError(f"scoring against {target}: {error}") from None
            eras = per_era.filter(pl.col("column") == chosen[0])["era"].cast(pl.String).to_numpy()
            values = {c: per_era.filter(pl.col("column") == c)["corr"].to_numpy() for c in chosen}
            corr_panels.append(
                (
                    f"Cumulative numerai_corr with {target}",
                    "cumulative numerai_corr",
                    [Curve(c, eras, values[c]) for c in chosen],
                )
            )
            diffs = [
                Curve(c, eras, np.nan_to_num(values[c]) - np.nan_to_num(values[ref]))
                for c in chosen
                if c != ref
            ]
            diff_panels.append(
                (f"Cumulative difference from {ref} ({target})", "Δ cumulative corr", diffs)
            )
            per_target[target] = {c: summary[c]["corr"]["mean"] for c in chosen}
            task.advance()
    fig = cumulative_panels_figure(corr_panels + diff_panels, dark, reference=ref)
    stem = "benchmark_corr_cumsum_with_diffs_" + "_vs_".join(target_cols)
    path = Path(output) if output else Path("plots") / f"{slug(stem)}{'_dark' if dark else ''}.png"
    save_png(fig, path)
    width, height = fig.get_size_inches() * fig.dpi
    return {
        "path": str(path),
        "panels": len(fig.axes),
        "width_px": round(width),
        "height_px": round(height),
        "models": chosen,
        "targets": target_cols,
        "reference": ref,
        "eras": int(frame["era"].n_unique()),
        "corr_mean": per_target,
    }
