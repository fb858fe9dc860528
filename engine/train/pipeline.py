"""The fold loop: era CV -> one model per fold -> out-of-fold predictions -> scores -> outputs.

One config (see :mod:`nx.engine.train.config`) produces, under its output dir:

- ``predictions/<name>.parquet``: id, era, target, prediction, cv_fold (OOF rows);
- ``results/<name>.json``: see :mod:`nx.engine.train.results`;
- ``configs/<name>.json``: the resolved config (every default filled in);
- with ``final_fit``: ``models/<name>/`` (see :mod:`nx.engine.train.artifact`).

Each fold hands its rows to the model in float32 batches, so no fold copies the table.

Where the reference framework's rules apply (row sampling, fold numbering, the
predictions file's columns, dtypes and row order) they are followed exactly; a fold
whose training rows have no benchmark value under a target transform is skipped
with a warning instead of training on undefined labels (see :func:`oof_predictions`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from nx.engine.errors import ConfigError, DataError
from nx.engine.progress import NO_PROGRESS, Progress
from nx.engine.train.artifact import save_artifact
from nx.engine.train.config import TrainConfig
from nx.engine.train.cv import Fold, folds_for
from nx.engine.train.inputs import TrainingData, check_inputs, load_training_data
from nx.engine.train.models import ModelSpec, check_model_type
from nx.engine.train.outputs import RunOutputs, check_outputs, expected_rows
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


def sampled_rows(config: TrainConfig, rows: np.ndarray) -> np.ndarray:
    """Per-fold row subsample, the reference's rule: ``max_train_samples`` positions
    drawn by ``numpy.random.default_rng(sample_seed).choice(n, size, replace=False)``
    from the fold's rows in data order, kept in the order drawn."""
    limit = config.training.max_train_samples
    if not limit or len(rows) <= limit:
        return rows
    pick = np.random.default_rng(config.training.sample_seed).choice(
        len(rows), size=limit, replace=False
    )
    return rows[pick]


class _NoLabels(Exception):
    """No training row has a finite label (e.g. no benchmark value under a transform)."""


def _fit(spec: ModelSpec, config: TrainConfig, data: TrainingData, rows: np.ndarray):
    """Sample, transform the target, leave out rows without a finite label, fit.

    Returns the model, the row count after sampling and the count fitted on.
    """
    rows = sampled_rows(config, rows)
    sampled = len(rows)
    y = transformed_target(config, data, rows)
    finite = np.isfinite(y)
    if not finite.all():  # e.g. eras without benchmark under a target transform
        rows, y = rows[finite], y[finite]
    if len(rows) == 0:
        raise _NoLabels
    transformed = config.model.target_transform is not None
    return spec.fit(data, rows, y, transformed), sampled, len(rows)


def model_spec(config: TrainConfig, progress: Progress = NO_PROGRESS) -> ModelSpec:
    """What to build for ``config``: model type, params and how custom models get rows."""
    model = config.model
    return ModelSpec(
        model.type,
        dict(model.params),
        progress,
        str(config.source),
        input_format=model.input_format,
        prediction_batch_size=model.prediction_batch_size,
    )


def check_config(config: TrainConfig) -> None:
    """Checks that need no data (model type importable, ridge params)."""
    check_model_type(config.model.type, config.model.params, config.source)


def oof_predictions(
    config: TrainConfig,
    data: TrainingData,
    folds: list[Fold],
    spec: ModelSpec,
    on_fold=lambda: None,
    skipped: list[dict[str, Any]] | None = None,
) -> tuple[pl.DataFrame, np.ndarray, list[dict[str, Any]]]:
    """Train one model per fold and predict its validation eras.

    Returns the OOF frame (id, era, target in its stored dtype, prediction float64,
    cv_fold int64; fold by fold, each in data order, as the reference writes it),
    the data rows it covers, and per-fold facts (era and row counts). Under a target
    transform, a fold none of whose training rows has a benchmark value (early eras
    of Numerai's data have none) is skipped with a warning and listed in
    ``skipped`` (when given), so the other folds still count; the reference would
    fit such a fold on labels that are all NaN.
    """
    skipped = skipped if skipped is not None else []
    prediction = np.full(data.n_rows, np.nan)
    cv_fold = np.full(data.n_rows, -1, dtype=np.int64)
    facts = []
    for fold in folds:
        train_rows = _rows_of(data, fold.train_eras)
        val_rows = _rows_of(data, fold.val_eras)
        try:
            model, sampled, fitted = _fit(spec, config, data, train_rows)
        except _NoLabels:
            if config.model.target_transform is not None:
                what = f"{config.transform_benchmark_col} value for the target transform"
                reason = "no benchmark values in train eras"
            else:
                what = f"{config.data.target_col} value"
                reason = "no target values in train eras"
            spec.progress.warn(
                f"{config.name}: fold {fold.index} skipped: its {len(fold.train_eras)} train "
                f"eras ({fold.train_eras[0]}-{fold.train_eras[-1]}) have no {what}; its "
                "validation eras get no OOF predictions"
            )
            skipped.append({"fold": fold.index, "reason": reason})
            on_fold()
            continue
        if (cv_fold[val_rows] >= 0).any():  # cannot happen with disjoint blocks
            raise DataError(f"{config.source}: fold {fold.index} predicts rows twice")
        prediction[val_rows] = model.predict_rows(data, val_rows)
        cv_fold[val_rows] = fold.index
        facts.append(
            {
                "fold": fold.index,
                "train_eras": len(fold.train_eras),
                "val_eras": len(fold.val_eras),
                "train_rows": int(sampled),  # after max_train_samples, as the reference
                "train_rows_available": int(len(train_rows)),
                "train_rows_fitted": int(fitted),  # rows with a finite label
                "val_rows": int(len(val_rows)),
                "train_era_range": [fold.train_eras[0], fold.train_eras[-1]],
                "val_era_range": [fold.val_eras[0], fold.val_eras[-1]],
            }
        )
        del model
        on_fold()
    # fold by fold, each in data order: the reference's concatenation order
    oof = np.flatnonzero(cv_fold >= 0)
    oof = oof[np.argsort(cv_fold[oof], kind="stable")]
    cfg = config.data
    frame = pl.DataFrame(
        {
            cfg.id_col: data.ids.gather(oof),
            cfg.era_col: pl.Series([data.eras[c] for c in data.era_codes[oof]], dtype=pl.String),
            cfg.target_col: data.stored_target.gather(oof),
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
    overwrite: bool = False,
    progress: Progress = NO_PROGRESS,
) -> TrainResult:
    """Run one config end to end and write its outputs as one set; returns where they are.

    An earlier result of the same name is replaced only with ``overwrite`` (else
    ConfigError before any work); see :mod:`nx.engine.train.outputs`.
    """
    check_config(config)
    started = time.perf_counter()
    final = final or config.training.final_fit
    out = check_outputs(config, output_dir, final=final, overwrite=overwrite)
    data = load_training_data(config, data_dir, progress)
    cv_on = config.training.cv.enabled
    folds = folds_for(config, data.eras) if cv_on else []
    if cv_on and not folds:
        raise config.error(
            "training.cv", "every fold has an empty train set; lower the embargo or n_splits"
        )

    spec = model_spec(config, progress)
    run = RunOutputs(config, out)
    try:
        return _train_and_write(config, data, folds, spec, run, final, started, progress)
    finally:
        run.discard()


def train_configs(
    configs: list[TrainConfig],
    *,
    data_dir: Path | str,
    output_dir: Path | str | None = None,
    final: bool = False,
    overwrite: bool = False,
    progress: Progress = NO_PROGRESS,
) -> list[TrainResult]:
    """Check every config (model, data, outputs, unique names) before training the first,
    then train each; warns through ``progress`` for each earlier result it replaced."""
    names: dict[str, Path | str] = {}
    replaced: list[Path] = []
    for config in configs:
        check_config(config)
        full_path = check_inputs(config, data_dir)
        if config.name in names:
            raise ConfigError(
                f"{config.source}: output.results_name: {config.name!r} is also the name of "
                f"{names[config.name]}; give each config its own results_name"
            )
        names[config.name] = config.source
        out = check_outputs(
            config,
            output_dir,
            final=final,
            overwrite=overwrite,
            expected_rows=expected_rows(full_path),
        )
        if output_paths(config, out)["results"].exists():
            replaced.append(output_paths(config, out)["results"])
    results = [
        train_config(
            config,
            data_dir=data_dir,
            output_dir=output_dir,
            final=final,
            overwrite=overwrite,
            progress=progress,
        )
        for config in configs
    ]
    for path in replaced:
        progress.warn(f"replaced the earlier run's outputs ({path})")
    return results


def _train_and_write(
    config: TrainConfig,
    data: TrainingData,
    folds: list[Fold],
    spec: ModelSpec,
    run: RunOutputs,
    final: bool,
    started: float,
    progress: Progress,
) -> TrainResult:
    cv_on = config.training.cv.enabled
    skipped: list[dict[str, Any]] = []
    with progress.task(f"Training {config.name}", total=len(folds) + int(final)) as bar:
        predictions, oof, fold_facts = oof_predictions(
            config, data, folds, spec, bar.advance, skipped
        )
        if cv_on and not fold_facts:
            raise DataError(
                f"{config.source}: every fold was skipped (no finite label in their train "
                "eras: no benchmark values for the target transform, or no target values); "
                "check data.benchmark_data_path and data.target_col"
            )
        model_dir = None
        if final:
            try:
                model, _, _ = _fit(spec, config, data, np.arange(data.n_rows))
            except _NoLabels:
                raise DataError(
                    f"{config.source}: no training rows with a finite target (the target "
                    "transform needs benchmark values); check data.benchmark_data_path"
                ) from None
            with run.writing():
                save_artifact(model, config, data, run.staged("model"), spec, run.run_id)
            model_dir = run.model_path
            bar.advance()

    names, out = run.paths, run.out
    metrics: dict[str, Any] = {}
    if cv_on:
        from nx.engine.metrics import score

        bench = data.benchmark[oof] if data.benchmark is not None else None
        metrics = oof_metrics(predictions, config, bench, score, data.benchmark_col)
        with run.writing():
            predictions.write_parquet(run.staged("predictions"), metadata={"nx_run_id": run.run_id})

    results = results_document(
        config, data, spec, predictions, folds, fold_facts, metrics, names, out, model_dir, skipped
    )
    results["training"]["seconds"] = round(time.perf_counter() - started, 3)
    with run.writing():
        write_json(run.staged("config"), config.resolved())
        write_json(run.staged("results"), run.record(results))
    run.commit()
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


LAST_ERAS = 200


def _consistency(values: np.ndarray) -> float:
    """Share of eras with a positive score among those with a score (reference key)."""
    values = values[np.isfinite(values)]
    return float((values > 0).mean()) if len(values) else float("nan")


def oof_metrics(
    predictions: pl.DataFrame,
    config: TrainConfig,
    benchmark: np.ndarray | None,
    score,
    benchmark_col: str | None = None,
) -> dict[str, Any]:
    """corr over every OOF era; bmc and bmc_last_200_eras over rows that have the benchmark.

    Each section also has the reference's ``consistency`` (share of scored eras > 0).
    """
    cfg = config.data
    # the target in its stored dtype: numerai-tools does a float32 target's arithmetic
    # in float32, and metrics.score follows it
    frame = predictions.select(cfg.era_col, cfg.target_col, "prediction")
    per_era, summary = score(frame, ["prediction"], target_col=cfg.target_col, era_col=cfg.era_col)
    metrics = {"corr": {**summary["prediction"]["corr"]}}
    metrics["corr"]["consistency"] = _consistency(_per_era_values(per_era, "corr"))
    if benchmark is not None:
        column = benchmark_col or cfg.benchmark_model
        with_bench = frame.with_columns(pl.Series(column, benchmark)).filter(
            pl.col(column).is_not_nan()
        )
        if with_bench.height:
            per_era, summary = score(
                with_bench,
                ["prediction"],
                target_col=cfg.target_col,
                era_col=cfg.era_col,
                benchmark_col=column,
            )
            bmc = _per_era_values(per_era, "bmc")
            for key, values in (("bmc", bmc), ("bmc_last_200_eras", bmc[-LAST_ERAS:])):
                if key in summary["prediction"]:
                    metrics[key] = {**summary["prediction"][key]}
                    metrics[key]["consistency"] = _consistency(values)
    return metrics


def _per_era_values(per_era: Any, column: str) -> np.ndarray:
    """One score's per-era values in era order, from :func:`nx.engine.metrics.score`."""
    frame = pl.from_pandas(per_era) if not isinstance(per_era, pl.DataFrame) else per_era
    if "column" in frame.columns:
        frame = frame.filter(pl.col("column") == "prediction")
    return frame[column].cast(pl.Float64).fill_null(np.nan).to_numpy()
