"""The results document (``results/<name>.json``) and the JSON writing it shares.

Sections: model, preprocessing, data, benchmark, output, metrics (corr, bmc,
bmc_last_200_eras from :func:`nx.engine.metrics.score`), cv, training.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from nx.engine import __version__
from nx.engine.paths import atomic_output
from nx.engine.train.config import TrainConfig
from nx.engine.train.cv import Fold
from nx.engine.train.models import ModelSpec

if TYPE_CHECKING:
    from nx.engine.train.inputs import TrainingData


def output_paths(config: TrainConfig, out: Path) -> dict[str, Path]:
    return {
        "predictions": out / "predictions" / f"{config.predictions_name}.parquet",
        "results": out / "results" / f"{config.name}.json",
        "config": out / "configs" / f"{config.name}.json",
    }


def write_json(path: Path, document: Any) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(json_ready(document), indent=2, sort_keys=True) + "\n")


def json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _relative(path: Path | None, base: Path) -> str | None:
    if path is None:
        return None
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)


# Keys of the model section the reference copies into its results as the config gave them.
RECORDED_MODEL_KEYS = (
    "x_groups",
    "data_needed",
    "target_transform",
    "prediction_transform",
    "era_weighting",
    "prediction_batch_size",
    "benchmark",
    "baseline",
)


def results_document(
    config: TrainConfig,
    data: TrainingData,
    spec: ModelSpec,
    predictions: pl.DataFrame,
    folds: list[Fold],
    fold_facts: list[dict[str, Any]],
    metrics: dict[str, Any],
    names: dict[str, Path],
    out: Path,
    model_dir: Path | None,
    skipped: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The results document: the reference's keys with its meanings, plus nx's own.

    Reference keys (``agents/code/modeling/utils/pipeline.py``): model {type, params
    as written, and the recorded keys as written}; preprocessing; data {data_version,
    feature_set, target, full_data_path as written (None when not given), full_rows,
    full_eras, oof_rows, oof_eras, embargo_eras}; benchmark {model, file as written
    (default ``<version>/full_benchmark_models.parquet``)}; output {output_dir,
    predictions_file relative to it}; metrics {corr, bmc, bmc_last_200_eras: mean,
    std, sharpe, max_drawdown, consistency (+ avg_corr_with_benchmark for BMC)}; cv
    {n_splits, embargo, mode, min_train_size, folds_used, folds [{fold, train_eras,
    val_eras, train_rows (after max_train_samples), val_rows}]}; training
    {data_sampling, cv}. nx's additions use names the reference does not.
    """
    cv = config.training.cv
    cv_settings = {**cv.model_dump(), "embargo": config.cv_embargo}
    transform = config.model.target_transform
    raw_model = config.raw.get("model", {}) if isinstance(config.raw, dict) else {}
    raw_data = config.raw.get("data", {}) if isinstance(config.raw, dict) else {}
    model_meta: dict[str, Any] = {
        "type": config.model.type,
        "params": dict(config.model.params),
    }
    model_meta.update({key: raw_model[key] for key in RECORDED_MODEL_KEYS if key in raw_model})
    model_meta["available_groups"] = config.model.available_groups
    model_meta["input_groups"] = config.model.input_groups
    model_meta["input_columns"] = data.source.columns
    model_meta["input_format"] = config.model.input_format
    if spec.params != config.model.params:
        model_meta["params_used"] = spec.params  # e.g. after a GPU -> CPU fallback
    data_version = config.data.data_version
    trained = {f["fold"] for f in fold_facts}
    blocks = {f.index for f in folds}  # folds with train eras; the others had none
    return {
        "model": model_meta,
        "preprocessing": config.preprocessing.model_dump(),
        "data": {
            "data_version": data_version,
            "feature_set": config.data.feature_set,
            "n_features": len(data.feature_names),
            "target": config.data.target_col,
            "full_data_path": raw_data.get("full_data_path"),
            "full_data_file": str(data.full_data_path),
            "full_rows": data.n_rows,
            "full_eras": len(data.eras),
            "oof_rows": predictions.height,
            "oof_eras": predictions[config.data.era_col].n_unique(),
            "embargo_eras": config.data.embargo_eras,
        },
        "benchmark": {
            "model": config.data.benchmark_model,
            "file": raw_data.get("benchmark_data_path")
            or f"{data_version}/full_benchmark_models.parquet",
            "column": data.benchmark_col,
            "path": str(data.benchmark_data_path) if data.benchmark_data_path else None,
        },
        "output": {
            "output_dir": str(out.resolve()),
            "predictions_file": _relative(names["predictions"], out)
            if config.training.cv.enabled
            else None,
            "results_file": _relative(names["results"], out),
            "config_file": _relative(names["config"], out),
            "model_dir": _relative(model_dir, out),
        },
        "metrics": metrics,
        "cv": {
            **cv_settings,
            "folds_used": len(fold_facts),
            "skipped_folds": sorted(set(range(cv.n_splits)) - trained) if cv.enabled else [],
            "skip_reasons": {
                **{str(i): "no train eras" for i in range(cv.n_splits) if i not in blocks},
                **{str(s["fold"]): s["reason"] for s in skipped or []},
            }
            if cv.enabled
            else {},
            "folds": fold_facts,
        },
        "training": {
            "target_transform": transform.model_dump() if transform else None,
            "data_sampling": {
                "max_train_samples": config.training.max_train_samples,
                "sample_seed": config.training.sample_seed
                if config.training.max_train_samples
                else None,
            },
            "cv": cv_settings,
            "final_fit": model_dir is not None,
            "nx_version": __version__,
        },
    }
