"""Reading an experiment dir: ``results/<name>.json``, ``predictions/<name>.parquet``,
``configs/<name>.*``, as ``nx train`` and ``nx blend`` write them and as Numerai's
reference framework writes them.

Results documents are read by key, defensively: a missing section or value is
``None``/NaN, never an error, so documents with more keys (``cv.folds_used``, the
reference's ``consistency`` or ``small_bmc``) or fewer (a blend has no ``cv``) read
the same way. Where the predictions file is: ``output.predictions_file`` relative
to the experiment dir when that file exists (the reference's rule), else
``predictions/<name>.parquet``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nx.engine.errors import ReportError

SECTIONS = ("corr", "bmc", "bmc_last_200_eras")
SUMMARY_KEYS = ("mean", "std", "sharpe", "max_drawdown", "avg_corr_with_benchmark", "eras")
CONFIG_SUFFIXES = (".json", ".toml", ".py")


@dataclass
class Run:
    """One results document of an experiment and the files that belong to it."""

    name: str
    results_path: Path
    results: dict[str, Any]
    predictions_path: Path | None
    config_path: Path | None

    def get(self, *keys: str) -> Any:
        """``results[k0][k1]...`` or None when any level is missing."""
        node: Any = self.results
        for key in keys:
            if not isinstance(node, dict) or key not in node:
                return None
            node = node[key]
        return node

    def summary(self, section: str) -> dict[str, float]:
        """A metrics section as floats (NaN where missing)."""
        raw = self.get("metrics", section)
        raw = raw if isinstance(raw, dict) else {}
        return {key: number(raw.get(key)) for key in SUMMARY_KEYS}

    @property
    def model_type(self) -> str | None:
        value = self.get("model", "type")
        return None if value is None else str(value)

    @property
    def feature_set(self) -> str | None:
        value = self.get("data", "feature_set")
        return None if value is None else str(value)


def number(value: Any) -> float:
    """A float from a JSON value; NaN for null, text and anything else."""
    if isinstance(value, bool) or value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def read_json(path: Path, what: str = "results") -> dict[str, Any]:
    try:
        document = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ReportError(f"cannot read {what} file {path} ({first}); write it again") from None
    if not isinstance(document, dict):
        raise ReportError(f"{what} file {path} is not a JSON object; write it again")
    return document


def _predictions_path(base_dir: Path, name: str, results: dict[str, Any]) -> Path | None:
    output = results.get("output")
    relative = output.get("predictions_file") if isinstance(output, dict) else None
    if isinstance(relative, str) and relative:
        candidate = Path(relative) if Path(relative).is_absolute() else base_dir / relative
        if candidate.is_file():
            return candidate
    default = base_dir / "predictions" / f"{name}.parquet"
    return default if default.is_file() else None


def _config_path(base_dir: Path, name: str) -> Path | None:
    for suffix in CONFIG_SUFFIXES:
        path = base_dir / "configs" / f"{name}{suffix}"
        if path.is_file():
            return path
    return None


def _run(base_dir: Path, results_path: Path) -> Run:
    name = results_path.stem
    results = read_json(results_path)
    return Run(
        name=name,
        results_path=results_path,
        results=results,
        predictions_path=_predictions_path(base_dir, name, results),
        config_path=_config_path(base_dir, name),
    )


def check_experiment_dir(experiment_dir: Path) -> Path:
    experiment_dir = Path(experiment_dir)
    if not experiment_dir.is_dir():
        raise ReportError(
            f"experiment dir {experiment_dir} not found; pass the --output-dir of `nx train`"
        )
    return experiment_dir


def load_experiment(
    experiment_dir: Path, names: list[str] | None = None, baselines_dir: Path | None = None
) -> list[Run]:
    """The runs of ``experiment_dir`` (every ``results/*.json`` sorted by name, or the
    ``names`` given, looked up in ``baselines_dir`` too)."""
    experiment_dir = check_experiment_dir(experiment_dir)
    results_dir = experiment_dir / "results"
    if not names:
        paths = sorted(results_dir.glob("*.json")) if results_dir.is_dir() else []
        if not paths:
            raise ReportError(
                f"no results/*.json in {experiment_dir}; run `nx train CONFIG "
                f"--output-dir {experiment_dir}` first"
            )
        return [_run(experiment_dir, path) for path in paths]
    runs = []
    for name in dict.fromkeys(names):
        runs.append(find_run(experiment_dir, name, baselines_dir))
    return runs


def find_run(experiment_dir: Path, name: str, baselines_dir: Path | None = None) -> Run:
    for base_dir in (experiment_dir, baselines_dir):
        if base_dir is None:
            continue
        path = Path(base_dir) / "results" / f"{name}.json"
        if path.is_file():
            return _run(Path(base_dir), path)
    available = sorted(p.stem for p in (experiment_dir / "results").glob("*.json"))
    where = f"{experiment_dir}/results" + (f" or {baselines_dir}/results" if baselines_dir else "")
    raise ReportError(
        f"no results for '{name}' in {where}; available: {', '.join(available) or 'none'}"
    )


def configs_without_results(experiment_dir: Path, runs: list[Run]) -> list[Path]:
    """Config files of the experiment that have no results (configured, not run)."""
    ran = {run.name for run in runs}
    folder = Path(experiment_dir) / "configs"
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in CONFIG_SUFFIXES and p.stem not in ran)
