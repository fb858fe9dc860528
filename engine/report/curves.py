"""Per-era scores of an experiment's runs, computed from their predictions files with
:func:`nx.engine.metrics.score` (the numbers ``nx score`` prints for the same file).

Predictions files that hold the same ids in the same order (runs of one CV split)
are scored together: one benchmark join and one ``score`` call with a column per
run. The benchmark model itself can be scored as a run (the reference's
``benchmark`` base): its values on the rows of a template run that have one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from nx.engine.errors import NxError, ReportError
from nx.engine.metrics.io import as_scored, check_ids, default_benchmark_model, resolve_column
from nx.engine.paths import DEFAULT_DATA_DIR, DEFAULT_DATA_VERSION, version_dir
from nx.engine.progress import NO_PROGRESS, Progress
from nx.engine.report.experiment import Run

BENCHMARK_BASE = "benchmark"
LAST_ERAS = 200
_BENCH = "__nx_benchmark__"
PREDICTION_COLUMNS = ("id", "era", "target", "prediction")


@dataclass
class Benchmark:
    """The benchmark model's column in a benchmark file."""

    path: Path
    column: str


@dataclass
class EraScores:
    """Per-era scores of one series, eras in order (numerically when they are numbers)."""

    eras: np.ndarray  # era labels (str)
    corr: np.ndarray
    bmc: np.ndarray | None = None  # NaN where the era has no benchmark value
    corr_with_benchmark: np.ndarray | None = None

    def select(self, keep: np.ndarray) -> EraScores:
        pick = lambda a: None if a is None else a[keep]  # noqa: E731
        return EraScores(
            self.eras[keep], self.corr[keep], pick(self.bmc), pick(self.corr_with_benchmark)
        )


def era_number(era: str) -> int | None:
    """The era's number from its digits ("0575" -> 575; the reference's rule), or None."""
    digits = "".join(ch for ch in str(era) if ch.isdigit())
    return int(digits) if digits else None


def after_start(scores: EraScores, start_era: int | None) -> EraScores:
    """Eras numbered ``start_era`` or later (eras without digits are kept, as the reference)."""
    if start_era is None:
        return scores
    numbers = [era_number(e) for e in scores.eras]
    keep = np.array([n is None or n >= start_era for n in numbers], dtype=bool)
    return scores.select(keep)


def summaries(scores: EraScores) -> dict[str, dict[str, float]]:
    """corr, bmc and bmc_last_200_eras summaries of a per-era series (as ``nx score``)."""
    from nx.engine.metrics import summarize

    out: dict[str, dict[str, Any]] = {"corr": summarize(scores.corr)}
    if scores.bmc is not None:
        has = ~np.isnan(scores.bmc)
        bmc, cwb = scores.bmc[has], scores.corr_with_benchmark[has]
        out["bmc"] = {**summarize(bmc), "avg_corr_with_benchmark": _nanmean(cwb)}
        last = {
            **summarize(bmc[-LAST_ERAS:]),
            "avg_corr_with_benchmark": _nanmean(cwb[-LAST_ERAS:]),
        }
        out["bmc_last_200_eras"] = last
    return out


def _nanmean(values: np.ndarray) -> float:
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else float("nan")


def resolve_benchmark(
    runs: list[Run],
    benchmark_data: Path | None = None,
    benchmark_model: str | None = None,
    data_dir: Path = DEFAULT_DATA_DIR,
    data_version: str | None = None,
) -> Benchmark | None:
    """The benchmark to score BMC against: ``benchmark_data`` when given, else the
    file a run's results name (``benchmark.file``), else the data version's
    ``full_benchmark_models.parquet`` under ``data_dir``; None when there is none."""
    version = data_version or next(
        (str(v) for r in runs if (v := r.get("data", "data_version"))), DEFAULT_DATA_VERSION
    )
    if benchmark_data is not None:
        path = Path(benchmark_data)
        if not path.is_file():
            raise ReportError(f"benchmark file {path} not found; check --benchmark-data")
    else:
        named = [Path(f) for r in runs if isinstance(f := r.get("benchmark", "file"), str)]
        default = version_dir(data_dir, version) / "full_benchmark_models.parquet"
        path = next((p for p in [*named, default] if p.is_file()), None)
        if path is None:
            return None
    model = benchmark_model or next(
        (str(m) for r in runs if (m := r.get("benchmark", "model"))),
        default_benchmark_model(version),
    )
    try:
        columns = pl.read_parquet_schema(path)
    except Exception:  # polars raises several types for unreadable files
        raise ReportError(f"cannot read benchmark file {path}; is it parquet?") from None
    if "id" not in columns:
        raise ReportError(f"benchmark file {path} has no 'id' column; use a built benchmark file")
    try:
        column = resolve_column(list(columns), model, path, "benchmark model")
    except NxError as error:
        raise ReportError(str(error)) from None
    return Benchmark(path=path, column=column)


def read_predictions(run: Run, columns: tuple[str, ...] = PREDICTION_COLUMNS) -> pl.DataFrame:
    """``columns`` of ``id, era, target, prediction`` of a run's predictions file (era as
    text, target and prediction as floats)."""
    path = run.predictions_path
    if path is None:
        raise ReportError(
            f"run '{run.name}' has no predictions file (predictions/{run.name}.parquet); "
            "train it with CV enabled or leave it out"
        )
    try:
        schema = pl.read_parquet_schema(path)
    except Exception:  # polars raises several types for unreadable files
        raise ReportError(f"cannot read predictions file {path}; is it parquet?") from None
    missing = [c for c in PREDICTION_COLUMNS if c not in schema]
    if missing:
        raise ReportError(
            f"predictions file {path} lacks {', '.join(missing)}; it needs columns "
            f"{', '.join(PREDICTION_COLUMNS)}"
        )
    read = {
        "era": pl.col("era").cast(pl.String),
        "target": as_scored("target", schema["target"]),
        "prediction": pl.col("prediction").cast(pl.Float64),
    }
    return pl.scan_parquet(path).select(read.get(c, pl.col(c)) for c in columns).collect()


def _benchmark_values(benchmark: Benchmark, ids: pl.Series) -> np.ndarray:
    bench = pl.read_parquet(benchmark.path, columns=["id", benchmark.column])
    joined = ids.to_frame("id").join(
        bench.select(
            "id", as_scored(benchmark.column, bench.schema[benchmark.column]).alias(_BENCH)
        ),
        on="id",
        how="left",
        maintain_order="left",
    )
    if joined.height != len(ids):
        raise ReportError(f"benchmark file {benchmark.path} has duplicate ids; keep one per id")
    return joined[_BENCH].to_numpy()


def _split(per_era: pl.DataFrame, column: str, with_bmc: bool) -> EraScores:
    rows = per_era.filter(pl.col("column") == column)
    return EraScores(
        eras=rows["era"].cast(pl.String).to_numpy(),
        corr=rows["corr"].to_numpy(),
        bmc=rows["bmc"].to_numpy() if with_bmc else None,
        corr_with_benchmark=rows["corr_with_benchmark"].to_numpy() if with_bmc else None,
    )


def per_era_scores(
    runs: list[Run],
    benchmark: Benchmark | None,
    benchmark_base: Run | None = None,
    progress: Progress = NO_PROGRESS,
) -> dict[str, EraScores]:
    """Per-era corr (and BMC, corr with benchmark when ``benchmark``) of every run;
    with ``benchmark_base`` also of the benchmark model itself on that run's rows,
    keyed by the benchmark column's name."""
    from nx.engine import metrics
    from nx.engine.metrics.io import warm_kernels_in_background

    warming = warm_kernels_in_background()  # numba starts while the files are read
    try:
        groups = _read_groups(runs, progress)
    finally:
        warming.join()
    return _score_groups(metrics, groups, benchmark, benchmark_base, progress)


def _read_groups(runs: list[Run], progress: Progress) -> list:
    """The runs' predictions grouped by identical id columns: (id/era/target, members)."""
    groups: list[tuple[pl.DataFrame, list[tuple[str, np.ndarray]]]] = []
    with progress.task("Reading predictions", total=len(runs)) as task:
        for run in runs:
            # era and target are read only for a run whose ids differ from earlier runs'
            frame = read_predictions(run, ("id", "prediction"))
            values = frame["prediction"].to_numpy()
            for rep, members in groups:
                if rep.height == frame.height and rep["id"].equals(frame["id"]):
                    members.append((run.name, values))
                    break
            else:  # ids not seen yet: checked once per group
                try:
                    check_ids(frame["id"], run.predictions_path)
                except NxError as error:
                    raise ReportError(str(error)) from None
                frame = frame.hstack(read_predictions(run, ("era", "target")))
                groups.append((frame.drop("prediction"), [(run.name, values)]))
            task.advance()
    return groups


def _score_groups(metrics, groups, benchmark, benchmark_base, progress) -> dict[str, EraScores]:
    out: dict[str, EraScores] = {}
    with progress.task("Scoring per era", total=len(groups)) as task:
        for rep, members in groups:
            columns = {f"p{i}": values for i, (_, values) in enumerate(members)}
            frame = rep.with_columns(pl.Series(k, v) for k, v in columns.items())
            bench_col = None
            if benchmark is not None:
                frame = frame.with_columns(
                    pl.Series(_BENCH, _benchmark_values(benchmark, rep["id"]))
                )
                bench_col = _BENCH
            per_era = _score(metrics, frame, list(columns), bench_col, members)
            for i, (name, _) in enumerate(members):
                out[name] = _split(per_era, f"p{i}", bench_col is not None)
            if benchmark_base is not None and benchmark_base.name in {n for n, _ in members}:
                if bench_col is None:
                    raise ReportError(
                        "base 'benchmark' needs benchmark predictions; pass --benchmark-data "
                        "or --base NAME"
                    )
                rows = frame.filter(pl.col(_BENCH).is_not_nan()).with_columns(
                    pl.col(_BENCH).alias("base")
                )
                if rows.height == 0:
                    raise ReportError(
                        f"no row of {benchmark_base.predictions_path} has a value in "
                        f"{benchmark.path}; use the benchmark file of the same data"
                    )
                base = _score(metrics, rows, ["base"], _BENCH, [(benchmark.column, None)])
                out[benchmark.column] = _split(base, "base", True)
            task.advance()
    return out


def _score(metrics, frame: pl.DataFrame, columns: list[str], bench_col, members) -> pl.DataFrame:
    try:
        per_era, _ = metrics.score(frame, columns, benchmark_col=bench_col)
    except NxError as error:
        names = ", ".join(name for name, _ in members)
        raise ReportError(f"scoring {names}: {error}") from None
    return per_era
