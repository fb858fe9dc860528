"""``nx check-pickle``: Numerai's predict harness, run locally in the runtime venv.

The harness (``numerai-predict``'s ``predict.py``) loads the pickle with
``pandas.read_pickle``, counts ``predict``'s parameters (1 or 2), calls it on the
whole live frame (indexed by id; with ``live_benchmark_models`` when it takes two)
and rejects a result that is None or not a DataFrame, empty, has any NaN, or has a
first column outside [0, 1]. nx adds: one row per live id (the live index), the
pickle run era by era on the last validation eras, and those predictions against
nx's own in-process predictions of the same models (per-era rank correlation at
least :data:`MIN_RANK_CORR`), which catches column-order and dtype mistakes.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from nx.engine.errors import ExportError, NxError
from nx.engine.export.build import read_sidecar, sidecar_models
from nx.engine.export.bundle import nx_predictions, sha256_file
from nx.engine.export.runtimes import DEFAULT_RUNTIME, check_runtime_name
from nx.engine.export.worker import run_worker
from nx.engine.paths import DEFAULT_DATA_DIR, DEFAULT_DATA_VERSION, version_dir
from nx.engine.progress import NO_PROGRESS, Progress

MIN_RANK_CORR = 0.9999
DEFAULT_CHECK_ERAS = 2

_FIXES = {
    "loads": "build it with `nx export` in this runtime (same Python minor and packages)",
    "arguments": "predict must take (live_features) or (live_features, live_benchmark_models)",
    "runs": "predict raised an error on the live data",
    "dataframe": "predict must return a pandas DataFrame",
    "not_empty": "predict must return one row per live id",
    "one_row_per_id": "return the live ids as the index, once each",
    "no_nan": "fill or rank the predictions so that none is NaN",
    "in_range": "rank the predictions into [0, 1]",
    "runs_by_era": "predict raised an error on validation eras",
    "matches_nx": "the pickle reads other columns or dtypes than the model was trained on; "
    "re-export it with `nx export`",
}


@dataclass
class CheckReport:
    """What ``check_pickle`` found; ``passed`` is true when every rule passed."""

    pickle: str
    runtime: str
    passed: bool
    rules: list[dict[str, Any]] = field(default_factory=list)
    size_bytes: int = 0
    load_seconds: float | None = None
    predict_seconds: float | None = None
    peak_rss_bytes: int | None = None
    live_rows: int | None = None
    predict_arguments: int | None = None
    python: str | None = None
    packages: dict[str, str] | None = None
    eras_compared: list[str] = field(default_factory=list)
    min_rank_corr: float | None = None

    def failed_rule(self) -> dict[str, Any] | None:
        return next((r for r in self.rules if not r["passed"]), None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class PickleCheckError(ExportError):
    """A pickle broke a rule; ``report`` holds every result."""

    def __init__(self, message: str, report: CheckReport) -> None:
        super().__init__(message)
        self.report = report


def check_pickle(
    pickle_path: Path | str,
    *,
    runtime: str | None = None,
    data_dir: Path | str = DEFAULT_DATA_DIR,
    data_version: str | None = None,
    check_eras: int = DEFAULT_CHECK_ERAS,
    raise_on_failure: bool = True,
    progress: Progress = NO_PROGRESS,
) -> CheckReport:
    """Run ``pickle_path`` as Numerai's harness does, in ``runtime`` (default: the
    sidecar's, else 3.12), on ``<data_dir>/<version>/live.parquet``.

    Raises :class:`PickleCheckError` (an :class:`ExportError`, with ``.report``)
    naming the first rule that failed, unless ``raise_on_failure`` is false.
    """
    pickle_path = Path(pickle_path)
    if not pickle_path.is_file():
        raise ExportError(f"{pickle_path} not found; make one with `nx export MODEL_DIR -o FILE`")
    sidecar = read_sidecar(pickle_path)
    runtime = check_runtime_name(runtime or (sidecar or {}).get("runtime") or DEFAULT_RUNTIME)
    version = data_version or (sidecar or {}).get("data_version") or DEFAULT_DATA_VERSION
    vdir = version_dir(data_dir, version)
    live = vdir / "live.parquet"
    if not live.is_file():
        raise ExportError(
            f"{live} not found; build the data with `nx build-data` (or --synthetic) or pass "
            "--data-dir"
        )
    live_bench = vdir / "live_benchmark_models.parquet"
    report = CheckReport(str(pickle_path), runtime, False, size_bytes=pickle_path.stat().st_size)
    skip_reason = "no nx sidecar or validation data to compare with"
    if sidecar is not None and sidecar.get("sha256") != sha256_file(pickle_path):
        sidecar, skip_reason = None, "the sidecar's sha256 is not this pickle's (stale sidecar)"
    with (
        tempfile.TemporaryDirectory(prefix="nx-check-") as scratch,
        progress.task(f"Checking {pickle_path.name} in runtime {runtime}", total=2) as bar,
    ):
        scratch = Path(scratch)
        job: dict[str, Any] = {
            "pickle": str(pickle_path.resolve()),
            "live": str(live.resolve()),
            "live_benchmarks": str(live_bench.resolve()) if live_bench.is_file() else None,
        }
        subset = _validation_subset(sidecar, vdir, check_eras, scratch)
        if subset is not None:
            job.update(subset["job"])
        answer = run_worker("check", job, runtime)
        if not answer.get("ok"):
            raise ExportError(f"the runtime {runtime} check did not run: {answer.get('error')}")
        bar.advance()
        report.rules = list(answer["rules"])
        report.load_seconds = answer.get("load_seconds")
        report.predict_seconds = answer.get("predict_seconds")
        report.peak_rss_bytes = answer.get("peak_rss_bytes")
        report.live_rows = answer.get("rows")
        report.predict_arguments = answer.get("n_args")
        report.python = answer.get("python")
        report.packages = answer.get("packages")
        by_era_ran = any(r["rule"] == "runs_by_era" and r["passed"] for r in report.rules)
        if subset is None and all(r["passed"] for r in report.rules):
            report.rules.append(
                {
                    "rule": "matches_nx",
                    "passed": True,
                    "skipped": True,
                    "detail": f"skipped: {skip_reason}",
                }
            )
        elif by_era_ran:
            report.rules.append(_compare(report, subset, Path(job["eras_output"])))
        bar.advance()
    report.passed = all(r["passed"] for r in report.rules)
    failed = report.failed_rule()
    if failed is not None and raise_on_failure:
        fix = _FIXES.get(failed["rule"], "")
        raise PickleCheckError(
            f"{pickle_path}: rule {failed['rule']} failed in runtime {runtime} "
            f"({failed['detail']})" + (f"; {fix}" if fix else ""),
            report,
        )
    return report


def _validation_subset(
    sidecar: dict[str, Any] | None, vdir: Path, n_eras: int, scratch: Path
) -> dict[str, Any] | None:
    """The last ``n_eras`` validation eras as files for the worker, with nx's models."""
    if sidecar is None or n_eras <= 0:
        return None
    validation = vdir / "validation.parquet"
    if not validation.is_file():
        return None
    try:
        models = sidecar_models(sidecar)
    except NxError:
        return None  # the model folders moved: nothing to compare with
    era_col = str(sidecar.get("era_col", "era"))
    scan = pl.scan_parquet(validation)
    names = scan.collect_schema().names()
    if "data_type" in names:
        scan = scan.filter(pl.col("data_type") == "validation")
    eras = scan.select(pl.col(era_col).cast(pl.String).unique()).collect()[era_col].to_list()
    from nx.engine.eras import era_sort_key

    eras = sorted(eras, key=era_sort_key)[-n_eras:]
    if not eras:
        return None
    features = scan.filter(pl.col(era_col).cast(pl.String).is_in(eras)).collect()
    if "data_type" in features.columns:
        features = features.drop("data_type")
    features = features.with_columns(pl.col(era_col).cast(pl.String))
    features_path = scratch / "eras.parquet"
    features.write_parquet(features_path)
    bench = None
    job = {"eras": str(features_path), "eras_output": str(scratch / "eras_predictions.parquet")}
    bench_path = vdir / "validation_benchmark_models.parquet"
    if bench_path.is_file():
        ids = features.select(pl.col("id").cast(pl.String))
        bench = (
            pl.scan_parquet(bench_path)
            .with_columns(pl.col("id").cast(pl.String))
            .join(ids.lazy(), on="id", how="semi")
            .collect()
        )
        bench.write_parquet(scratch / "eras_benchmarks.parquet")
        job["eras_benchmarks"] = str(scratch / "eras_benchmarks.parquet")
    neutralize = sidecar.get("neutralize") or None
    neutralizers: list[str] = []
    if neutralize:
        from nx.engine.export.bundle import neutralizer_features

        neutralizers = neutralizer_features(vdir.parent, vdir.name, str(neutralize["feature_set"]))
    return {
        "job": job,
        "eras": eras,
        "features": features,
        "benchmarks": bench,
        "models": models,
        "weights": [float(w) for w in sidecar.get("weights", [])],
        "neutralizers": neutralizers,
        "proportion": float((neutralize or {}).get("proportion", 1.0)),
        "era_col": era_col,
    }


def _compare(report: CheckReport, subset: dict[str, Any], eras_output: Path) -> dict[str, Any]:
    """Per era, the rank correlation of the pickle's and nx's predictions."""
    from nx.engine.metrics import tie_kept_rank

    features: pl.DataFrame = subset["features"]
    era_col = subset["era_col"]
    ours = nx_predictions(
        subset["models"],
        subset["weights"],
        features,
        subset["benchmarks"],
        neutralizers=subset["neutralizers"],
        proportion=subset["proportion"],
        era_col=era_col,
    )
    theirs = (
        features.select(pl.col("id").cast(pl.String), pl.col(era_col))
        .join(
            pl.read_parquet(eras_output).select(pl.col("id").cast(pl.String), "prediction"),
            on="id",
            how="left",
            maintain_order="left",
        )["prediction"]
        .fill_null(np.nan)
        .to_numpy()
    )
    eras = features[era_col].to_numpy()
    corrs, compared = [], []
    for era in subset["eras"]:
        rows = eras == era
        if rows.sum() < 2:
            continue
        a, b = tie_kept_rank(ours[rows]), tie_kept_rank(theirs[rows])
        if np.isnan(b).any():
            corr = float("nan")
        else:
            corr = float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else 1.0
        corrs.append(corr)
        compared.append(era)
    worst = float("nan") if any(c != c for c in corrs) or not corrs else min(corrs)
    report.eras_compared = compared
    report.min_rank_corr = worst
    passed = worst == worst and worst >= MIN_RANK_CORR
    return {
        "rule": "matches_nx",
        "passed": bool(passed),
        "detail": f"lowest per-era rank correlation with nx {worst:.6f} over "
        f"{len(compared)} validation eras (needs >= {MIN_RANK_CORR})",
    }
