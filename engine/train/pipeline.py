"""The fold loop: era CV -> one model per fold -> out-of-fold predictions -> scores -> outputs.

One config (see :mod:`nx.engine.train.config`) produces, under its output dir:

- ``predictions/<name>.parquet``: id, era, target, prediction, cv_fold (OOF rows);
- ``results/<name>.json``: see :mod:`nx.engine.train.results`;
- ``configs/<name>.json``: the resolved config (every default filled in);
- with ``final_fit``: ``models/<name>/`` (see :mod:`nx.engine.train.artifact`).

Each fold hands its rows to the model in float32 batches, so no fold copies the table.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from nx.engine.errors import DataError
from nx.engine.paths import atomic_output
from nx.engine.progress import NO_PROGRESS, Progress
from nx.engine.train.artifact import save_artifact
from nx.engine.train.config import TrainConfig
from nx.engine.train.cv import Fold, folds_for
from nx.engine.train.inputs import TrainingData, load_training_data
from nx.engine.train.models import ModelSpec, check_model_type
from nx.engine.train.results import output_paths, results_document, write_json
from nx.engine.train.transforms import transformed_target


@dataclass
class TrainResult:
    """What one config produced: output paths, metrics and fold facts."""

    name: str
    output_dir: Path
    predictions_path: Path | None  # None when CV is off (final fit only)
    results_path: Path
    config_path: Path
    model_dir: Path | None
    metrics: dict[str, Any]
    results: dict[str, Any]


def _rows_of(data: TrainingData, eras: list[str]) -> np.ndarray:
    wanted = np.zeros(len(data.eras), dtype=bool)
    index = {era: i for i, era in enumerate(data.eras)}
    wanted[[index[e] for e in eras]] = True
    return np.flatnonzero(wanted[data.era_codes])


def _sampled(config: TrainConfig, rows: np.ndarray) -> np.ndarray:
    """Per-fold row subsample as pandas ``sample(n, random_state=seed)`` draws it."""
    limit = config.training.max_train_samples
    if limit is None or len(rows) <= limit:
        return rows
    pick = np.random.RandomState(config.training.sample_seed).choice(
        len(rows), size=limit, replace=False
    )
    return rows[pick]


def _fit(spec: ModelSpec, config: TrainConfig, data: TrainingData, rows: np.ndarray):
    rows = _sampled(config, rows)
    y = transformed_target(config, data, rows)
    finite = np.isfinite(y)
    if not finite.all():  # e.g. eras without benchmark under a target transform
        rows, y = rows[finite], y[finite]
    if len(rows) == 0:
        raise DataError(
            f"{config.source}: no training rows with a finite target (target transform "
            "needs benchmark values); check data.benchmark_data_path"
        )
    return spec.fit(data.source, rows, y), len(rows)


def check_config(config: TrainConfig) -> None:
    """Checks that need no data (model type importable, ridge params)."""
    check_model_type(config.model.type, config.model.params, config.source)


def oof_predictions(
    config: TrainConfig,
    data: TrainingData,
    folds: list[Fold],
    spec: ModelSpec,
    on_fold=lambda: None,
) -> tuple[pl.DataFrame, np.ndarray, list[dict[str, Any]]]:
    """Train one model per fold and predict its validation eras.

    Returns the OOF frame (id, era, target, prediction, cv_fold; data order), the
    data rows it covers, and per-fold facts (era and row counts).
    """
    prediction = np.full(data.n_rows, np.nan)
    cv_fold = np.full(data.n_rows, -1, dtype=np.int32)
    facts = []
    for fold in folds:
        train_rows = _rows_of(data, fold.train_eras)
        val_rows = _rows_of(data, fold.val_eras)
        model, used = _fit(spec, config, data, train_rows)
        if (cv_fold[val_rows] >= 0).any():  # cannot happen with disjoint blocks
            raise DataError(f"{config.source}: fold {fold.index} predicts rows twice")
        prediction[val_rows] = model.predict_rows(data.source, val_rows)
        cv_fold[val_rows] = fold.index
        facts.append(
            {
                "fold": fold.index,
                "train_eras": len(fold.train_eras),
                "val_eras": len(fold.val_eras),
                "train_rows": int(len(train_rows)),
                "train_rows_used": int(used),
                "val_rows": int(len(val_rows)),
                "train_era_range": [fold.train_eras[0], fold.train_eras[-1]],
                "val_era_range": [fold.val_eras[0], fold.val_eras[-1]],
            }
        )
        del model
        on_fold()
    oof = np.flatnonzero(cv_fold >= 0)
    cfg = config.data
    frame = pl.DataFrame(
        {
            cfg.id_col: data.ids.gather(oof),
            cfg.era_col: pl.Series([data.eras[c] for c in data.era_codes[oof]], dtype=pl.String),
            cfg.target_col: data.target[oof],
            "prediction": prediction[oof],
            "cv_fold": cv_fold[oof],
        }
    )
    return frame, oof, facts


def train_config(
    config: TrainConfig,
    *,
    data_dir: Path | str,
    output_dir: Path | str | None = None,
    final: bool = False,
    progress: Progress = NO_PROGRESS,
) -> TrainResult:
    """Run one config end to end and write its outputs; returns where they are."""
    check_config(config)
    started = time.perf_counter()
    out = Path(output_dir or config.output.output_dir or "experiments")
    data = load_training_data(config, data_dir, progress)
    final = final or config.training.final_fit
    cv_on = config.training.cv.enabled
    folds = folds_for(config, data.eras) if cv_on else []
    if cv_on and not folds:
        raise config.error(
            "training.cv", "every fold has an empty train set; lower the embargo or n_splits"
        )

    spec = ModelSpec(config.model.type, dict(config.model.params), progress, str(config.source))
    with progress.task(f"Training {config.name}", total=len(folds) + int(final)) as bar:
        predictions, oof, fold_facts = oof_predictions(config, data, folds, spec, bar.advance)
        model_dir = None
        if final:
            model, _ = _fit(spec, config, data, np.arange(data.n_rows))
            model_dir = save_artifact(model, config, data, out, spec)
            bar.advance()

    names = output_paths(config, out)
    metrics: dict[str, Any] = {}
    if cv_on:
        from nx.engine.metrics import score

        bench = data.benchmark[oof] if data.benchmark is not None else None
        metrics = oof_metrics(predictions, config, bench, score)
        with atomic_output(names["predictions"]) as tmp:
            predictions.write_parquet(tmp)

    results = results_document(
        config, data, spec, predictions, folds, fold_facts, metrics, names, out, model_dir
    )
    results["training"]["seconds"] = round(time.perf_counter() - started, 3)
    write_json(names["config"], config.resolved())
    write_json(names["results"], results)
    return TrainResult(
        name=config.name,
        output_dir=out,
        predictions_path=names["predictions"] if cv_on else None,
        results_path=names["results"],
        config_path=names["config"],
        model_dir=model_dir,
        metrics=metrics,
        results=results,
    )


def oof_metrics(
    predictions: pl.DataFrame, config: TrainConfig, benchmark: np.ndarray | None, score
) -> dict[str, Any]:
    """corr over every OOF era; bmc and bmc_last_200_eras over rows that have the benchmark."""
    cfg = config.data
    frame = predictions.select(cfg.era_col, cfg.target_col, "prediction")
    _, summary = score(frame, ["prediction"], target_col=cfg.target_col, era_col=cfg.era_col)
    metrics = {"corr": summary["prediction"]["corr"]}
    if benchmark is not None:
        with_bench = frame.with_columns(pl.Series(cfg.benchmark_model, benchmark)).filter(
            pl.col(cfg.benchmark_model).is_not_nan()
        )
        if with_bench.height:
            _, summary = score(
                with_bench,
                ["prediction"],
                target_col=cfg.target_col,
                era_col=cfg.era_col,
                benchmark_col=cfg.benchmark_model,
            )
            for key in ("bmc", "bmc_last_200_eras"):
                if key in summary["prediction"]:
                    metrics[key] = summary["prediction"][key]
    return metrics
