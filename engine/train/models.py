"""The model registry: LightGBM (default), a ridge baseline, and any importable estimator.

Models are trained from a :class:`MatrixSource`, which keeps the features in their
stored dtype (int8 for Numerai features) and hands out float32 rows only in
batches, so a fold never copies the whole table:

- ``LGBMRegressor``: LightGBM streams the fold's rows batch by batch into its own
  binned dataset (``lightgbm.Sequence``); the parameters mean exactly what they
  mean for ``lightgbm.LGBMRegressor``. A GPU ``device_type`` that this LightGBM
  build cannot use falls back to CPU with a warning.
- ``Ridge`` (alias ``Linear``): least squares with an L2 penalty ``alpha`` on
  the float64 normal equations, accumulated batch by batch; NaN inputs take the
  training mean of their column.
- ``package.module:Class``: any estimator with ``fit(X, y)`` / ``predict(X)``,
  built with ``Class(**params)`` (plus ``feature_cols=<the feature set>`` when its
  constructor takes that argument, as the reference's wrappers do). By default it
  gets what the reference's model wrappers get: X a pandas DataFrame of the
  ``model.x_groups`` columns (features in their stored dtype, era, benchmark
  columns, ...) and y a pandas Series, for the fold's rows; ``predict`` gets the
  validation rows in one DataFrame (or ``model.prediction_batch_size`` rows at a
  time). With ``model.input_format = "numpy"`` it gets one float32 matrix of the
  ``model.input_groups`` columns instead (what built-in models train on; no DataFrame is built).

Built-in models (LightGBM, ridge) train on the ``model.input_groups`` columns, by
default the feature set alone, as the reference's ``LGBMRegressor`` wrapper does.

Each fitted model saves itself into a folder as a portable file (LightGBM text
model, ridge JSON, or a cloudpickle of the estimator) described by ``manifest.json``.
"""

from __future__ import annotations

import importlib
import inspect
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nx.engine.data.cache import release_pages
from nx.engine.errors import ConfigError, NxError
from nx.engine.progress import NO_PROGRESS, Progress
from nx.engine.resources import return_freed_memory

if TYPE_CHECKING:
    from nx.engine.train.inputs import TrainingData

BATCH_ROWS = 16_384
LIGHTGBM_TYPES = ("LGBMRegressor", "lightgbm.LGBMRegressor")
RIDGE_TYPES = ("Ridge", "ridge", "Linear", "linear", "LinearRegression")


def is_builtin(model_type: str) -> bool:
    """LightGBM and ridge: trained by nx itself on the ``model.input_groups`` matrix."""
    return model_type in LIGHTGBM_TYPES or model_type in RIDGE_TYPES


@dataclass
class MatrixSource:
    """Model inputs for every row of the data, handed out as float32 rows.

    ``features`` is the stored feature matrix (n_rows x n_features, int8 or float32),
    ``extra`` optional float32 columns appended after the features (benchmark,
    baseline, era), ``nan_mask`` an optional (n_eras x n_features) boolean table
    whose true cells become NaN for the rows of that era (``era_codes``).
    """

    features: np.ndarray
    feature_names: list[str]
    extra: np.ndarray | None = None
    extra_names: list[str] = field(default_factory=list)
    era_codes: np.ndarray | None = None
    nan_mask: np.ndarray | None = None

    @property
    def columns(self) -> list[str]:
        return [*self.feature_names, *self.extra_names]

    @property
    def n_columns(self) -> int:
        return len(self.feature_names) + len(self.extra_names)

    def take(self, rows: np.ndarray, dtype: type = np.float32) -> np.ndarray:
        """The model matrix of ``rows`` (in that order) as ``dtype``."""
        block = self.features[rows].astype(dtype)
        if self.nan_mask is not None and self.era_codes is not None:
            missing = self.nan_mask[self.era_codes[rows]]
            if missing.any():
                block[missing] = np.nan
        if self.extra is not None:
            block = np.hstack([block, self.extra[rows].astype(dtype)])
        return block

    def sample_columns(self, rows: np.ndarray):
        """Each model column over ``rows`` as float64 (NaN rules applied), one at a time."""
        from nx.engine.train.lgbm_data import COUNT_CHUNK_ROWS as step

        block = np.empty((len(rows), self.features.shape[1]), dtype=self.features.dtype)
        for start in range(0, len(rows), step):  # stored dtype: the only full-width copy
            block[start : start + step] = self.features[rows[start : start + step]]
            release_pages(self.features)  # sample rows span the matrix: keep no pages
        missing = None
        if self.nan_mask is not None and self.era_codes is not None:
            missing = self.nan_mask[self.era_codes[rows]]
        for j in range(block.shape[1]):
            column = block[:, j].astype(np.float64)
            if missing is not None:
                column[missing[:, j]] = np.nan
            yield column
        if self.extra is not None:
            for j in range(self.extra.shape[1]):
                yield self.extra[rows, j].astype(np.float64)

    def batches(self, rows: np.ndarray, batch_rows: int = BATCH_ROWS):
        for start in range(0, len(rows), batch_rows):
            block = self.take(rows[start : start + batch_rows])
            release_pages(self.features)  # a mapped matrix keeps no pages resident
            yield block


class FittedModel:
    """A trained model: predicts rows of a :class:`MatrixSource` and saves itself."""

    kind = "base"
    input_format = "numpy"

    def predict_rows(self, data: TrainingData, rows: np.ndarray) -> np.ndarray:
        return self.predict_source(data.source, rows)

    def predict_source(self, source: MatrixSource, rows: np.ndarray) -> np.ndarray:
        """Predictions of ``rows`` of a model matrix whose columns are the manifest's
        ``columns`` (what a saved model is served from), in float32 batches."""
        parts = [
            np.asarray(self.predict(self._input(block, source)), dtype=np.float64).ravel()
            for block in source.batches(rows, self.predict_batch_rows(source))
        ]
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.float64)

    def _input(self, block: np.ndarray, source: MatrixSource) -> Any:
        if self.input_format == "pandas":
            import pandas as pd

            return pd.DataFrame(block, columns=source.columns)
        return block

    def predict_batch_rows(self, source: MatrixSource) -> int:
        """Rows per prediction batch."""
        return BATCH_ROWS

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def save(self, folder: Path) -> str:
        """Write the model into ``folder``; returns the file name written."""
        raise NotImplementedError


@dataclass
class ModelSpec:
    """What to build: the config's ``model.type`` and ``model.params``."""

    type: str
    params: dict[str, Any]
    progress: Progress = NO_PROGRESS
    source: str = "config"  # the config file, for error messages
    input_format: str = "pandas"  # custom models: "pandas" (reference) or "numpy"
    prediction_batch_size: int | None = None  # custom pandas models: rows per predict

    def fit(
        self,
        data: TrainingData,
        rows: np.ndarray,
        target: np.ndarray,
        transformed: bool = False,
    ) -> FittedModel:
        """Train on ``rows`` of ``data`` against ``target`` (one value per row).

        ``transformed``: the target went through a target transform (custom models
        on the pandas path then get it as float64, else in its stored dtype).
        """
        if self.type in LIGHTGBM_TYPES:
            return _fit_lightgbm(self, data.source, rows, target)
        if self.type in RIDGE_TYPES:
            return _RidgeModel.fit(data.source, rows, target, **self.params)
        return _ImportedModel.fit(self, data, rows, target, transformed)


def check_model_type(model_type: str, params: dict[str, Any], source: Path | str) -> None:
    """Fail early (one line naming ``model.type``) when the type cannot be built."""
    if model_type in LIGHTGBM_TYPES:
        _probe_lightgbm(params, str(source))
        return
    if model_type in RIDGE_TYPES:
        unknown = set(params) - {"alpha", "fit_intercept"}
        if unknown:
            raise ConfigError(
                f"{source}: model.params: {sorted(unknown)} are not Ridge parameters; "
                "use alpha and fit_intercept"
            )
        return
    _import_estimator(model_type, source)


# ---------------------------------------------------------------- LightGBM


def lightgbm_train_params(
    params: dict[str, Any], source: str = "config"
) -> tuple[dict[str, Any], int]:
    """``lightgbm.train`` parameters and rounds equivalent to ``LGBMRegressor(**params)``."""
    import lightgbm

    estimator = lightgbm.LGBMRegressor(**params)
    try:
        rounds = int(estimator.n_estimators)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{source}: model.params.n_estimators: must be an integer, got "
            f"{estimator.n_estimators!r}"
        ) from None
    if rounds < 1:
        raise ConfigError(
            f"{source}: model.params.n_estimators: must be at least 1, got {rounds}; "
            "set a positive number of trees"
        )
    try:
        train_params = estimator._process_params(stage="fit")
    except (AttributeError, TypeError):  # older LightGBM: same translation, done by hand
        train_params = {k: v for k, v in estimator.get_params().items() if v is not None}
        train_params.pop("n_estimators", None)
        train_params.pop("importance_type", None)
        train_params.setdefault("objective", "regression")
    metric = train_params.get("metric")
    metrics = [metric] if isinstance(metric, str | type(None)) else list(metric)
    train_params["metric"] = [m for m in metrics if m is not None]
    return train_params, rounds


def _probe_lightgbm(params: dict[str, Any], source: str) -> None:
    """Let LightGBM check the params on a few rows (one round, on CPU) before any data is read."""
    import lightgbm

    cpu_params = {k: v for k, v in params.items() if k not in _DEVICE_KEYS}
    train_params, _ = lightgbm_train_params(cpu_params, source)
    train_params.update(num_threads=1, verbose=-1)
    rows = np.arange(40, dtype=np.float64).reshape(20, 2) % 5
    lightgbm.register_logger(_StderrLogger())
    try:
        lightgbm.train(train_params, lightgbm.Dataset(rows, label=rows[:, 0]), num_boost_round=1)
    except lightgbm.basic.LightGBMError as error:
        first = str(error).splitlines()[0]
        raise ConfigError(
            f"{source}: model.params: LightGBM rejected them ({first}); fix model.params"
        ) from None


_GPU_DEVICES = {"gpu", "cuda"}
_DEVICE_KEYS = ("device_type", "device")


def _wants_gpu(params: dict[str, Any]) -> bool:
    return any(str(params.get(key, "")).lower() in _GPU_DEVICES for key in _DEVICE_KEYS)


class _StderrLogger:
    """LightGBM's messages go to stderr, never to stdout (kept for ``--json``)."""

    def info(self, message: str) -> None:
        if "[Fatal]" in message:  # raised as LightGBMError, which nx reports itself
            return
        sys.stderr.write(message if message.endswith("\n") else message + "\n")

    def warning(self, message: str) -> None:
        self.info(message)


def _fit_lightgbm(
    spec: ModelSpec, source: MatrixSource, rows: np.ndarray, target: np.ndarray
) -> _LightGBMModel:
    import lightgbm

    from nx.engine.train.lgbm_data import histogram_params, lightgbm_dataset, trained_booster

    lightgbm.register_logger(_StderrLogger())

    def train(params: dict[str, Any]) -> Any:
        train_params, rounds = lightgbm_train_params(params, spec.source)
        if not _wants_gpu(params):
            train_params = histogram_params(train_params)
        dataset = lightgbm_dataset(source, rows, target, train_params)
        return trained_booster(lightgbm.train(train_params, dataset, num_boost_round=rounds))

    try:
        booster = train(spec.params)
    except lightgbm.basic.LightGBMError as error:
        if not _wants_gpu(spec.params):
            first = str(error).splitlines()[0]
            raise ConfigError(
                f"{spec.source}: model.params: LightGBM rejected them ({first}); fix model.params"
            ) from None
        spec.progress.warn(
            f"LightGBM cannot use device {spec.params.get('device_type') or spec.params.get('device')!r}"
            f" here ({str(error).splitlines()[0]}); training on CPU instead"
        )
        spec.params = {k: v for k, v in spec.params.items() if k not in _DEVICE_KEYS}
        spec.params["device_type"] = "cpu"
        booster = train(spec.params)
    return_freed_memory()  # the binned dataset and training buffers are gone
    return _LightGBMModel(booster)


class _LightGBMModel(FittedModel):
    kind = "lightgbm"

    def __init__(self, booster: Any) -> None:
        self.booster = booster

    def predict_batch_rows(self, source: MatrixSource) -> int:
        from nx.engine.train.lgbm_data import batch_rows

        return batch_rows(source.n_columns)  # LightGBM predicts each row on its own

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        return self.booster.predict(matrix)

    def save(self, folder: Path) -> str:
        self.booster.save_model(str(folder / "model.txt"))
        return "model.txt"


# ---------------------------------------------------------------- Ridge


class _RidgeModel(FittedModel):
    kind = "ridge"

    def __init__(self, coef: np.ndarray, intercept: float, fill: np.ndarray) -> None:
        self.coef, self.intercept, self.fill = coef, intercept, fill

    @classmethod
    def fit(
        cls,
        source: MatrixSource,
        rows: np.ndarray,
        target: np.ndarray,
        alpha: float = 1.0,
        fit_intercept: bool = True,
    ) -> _RidgeModel:
        """Solve ``(Xc'Xc + alpha I) b = Xc'yc`` with X, y centred when fit_intercept."""
        k = source.n_columns
        total, count = np.zeros(k), np.zeros(k)
        for block in source.batches(rows):
            finite = np.isfinite(block)
            total += np.where(finite, block, 0).sum(axis=0, dtype=np.float64)
            count += finite.sum(axis=0)
        fill = np.divide(total, count, out=np.zeros(k), where=count > 0)
        xtx, xty, xsum = np.zeros((k, k)), np.zeros(k), np.zeros(k)
        y = np.asarray(target, dtype=np.float64)
        start = 0
        for block in source.batches(rows):
            x = _filled(block, fill)
            part = y[start : start + len(x)]
            start += len(x)
            xtx += x.T @ x
            xty += x.T @ part
            xsum += x.sum(axis=0)
        n = max(len(rows), 1)
        y_mean = float(y.mean()) if fit_intercept and len(y) else 0.0
        x_mean = xsum / n if fit_intercept else np.zeros(k)
        if fit_intercept:
            xtx -= n * np.outer(x_mean, x_mean)
            xty -= n * x_mean * y_mean
        coef = np.linalg.solve(xtx + float(alpha) * np.eye(k), xty)
        return cls(coef, y_mean - float(x_mean @ coef), fill)

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        return _filled(matrix, self.fill) @ self.coef + self.intercept

    def save(self, folder: Path) -> str:
        document = {
            "coef": self.coef.tolist(),
            "intercept": self.intercept,
            "fill": self.fill.tolist(),
        }
        (folder / "model.json").write_text(json.dumps(document), encoding="utf-8")
        return "model.json"


def _filled(block: np.ndarray, fill: np.ndarray) -> np.ndarray:
    x = block.astype(np.float64)
    missing = ~np.isfinite(x)
    if missing.any():
        x[missing] = np.broadcast_to(fill, x.shape)[missing]
    return x


# ---------------------------------------------------------------- package.module:Class


def _import_estimator(model_type: str, source: Path | str) -> type:
    module_name, _, class_name = model_type.partition(":")
    if not class_name:
        raise ConfigError(
            f"{source}: model.type: unknown model {model_type!r}; use LGBMRegressor, Ridge, "
            "or an import path like package.module:Class"
        )
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as error:
        raise ConfigError(
            f"{source}: model.type: cannot import {model_type!r} ({error}); install the "
            "package or fix the path"
        ) from None
    if not (hasattr(cls, "fit") and hasattr(cls, "predict")):
        raise ConfigError(f"{source}: model.type: {model_type!r} has no fit/predict methods")
    return cls


def _build_estimator(cls: type, params: dict[str, Any], feature_cols: list[str]) -> Any:
    """``cls(**params)``, plus ``feature_cols`` when the constructor names that argument."""
    try:
        accepted = inspect.signature(cls).parameters
    except (TypeError, ValueError):  # builtins and C extensions may have no signature
        accepted = {}
    if "feature_cols" in accepted and "feature_cols" not in params:
        return cls(feature_cols=list(feature_cols), **params)
    return cls(**params)


class _ImportedModel(FittedModel):
    kind = "estimator"

    def __init__(
        self, estimator: Any, input_format: str = "numpy", batch_rows: int | None = None
    ) -> None:
        self.estimator = estimator
        self.input_format = input_format
        self.batch_rows = batch_rows

    @classmethod
    def fit(
        cls,
        spec: ModelSpec,
        data: TrainingData,
        rows: np.ndarray,
        target: np.ndarray,
        transformed: bool,
    ) -> _ImportedModel:
        estimator_cls = _import_estimator(spec.type, "model.type")
        estimator = _build_estimator(estimator_cls, spec.params, data.feature_names)
        if spec.input_format == "numpy":
            estimator.fit(data.source.take(rows), np.asarray(target, dtype=np.float64))
        else:
            y = data.y_series(rows, np.asarray(target, np.float64) if transformed else None)
            estimator.fit(data.x_frame(rows), y)
        return cls(estimator, spec.input_format, spec.prediction_batch_size)

    def predict_rows(self, data: TrainingData, rows: np.ndarray) -> np.ndarray:
        if self.input_format == "numpy":
            return super().predict_rows(data, rows)
        step = self.batch_rows or max(len(rows), 1)
        parts = [
            np.asarray(self.predict(data.x_frame(rows[start : start + step])), np.float64).ravel()
            for start in range(0, len(rows), step)
        ]
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.float64)

    def predict(self, matrix: Any) -> np.ndarray:
        return self.estimator.predict(matrix)

    def save(self, folder: Path) -> str:
        import cloudpickle

        (folder / "model.pkl").write_bytes(cloudpickle.dumps(self.estimator))
        return "model.pkl"


# ---------------------------------------------------------------- artifacts


def load_artifact(folder: Path | str) -> tuple[dict[str, Any], FittedModel]:
    """Read a saved model folder: its manifest and a model whose ``predict`` takes a matrix.

    The matrix columns are ``manifest["columns"]`` in order (features first), as float;
    for a custom model saved with ``manifest["input_format"] == "pandas"``, ``predict``
    takes a pandas DataFrame of those columns instead (manifests without the key are
    all matrix models).
    """
    folder = Path(folder)
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        raise NxError(f"{folder}: no manifest.json; train with `nx train --final` first")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    model_file = folder / manifest["model_file"]
    kind = manifest["model_kind"]
    if kind == "lightgbm":
        import lightgbm

        return manifest, _LightGBMModel(lightgbm.Booster(model_file=str(model_file)))
    if kind == "ridge":
        document = json.loads(model_file.read_text(encoding="utf-8"))
        return manifest, _RidgeModel(
            np.asarray(document["coef"]), document["intercept"], np.asarray(document["fill"])
        )
    import cloudpickle

    estimator = cloudpickle.loads(model_file.read_bytes())
    # manifests before "input_format" was recorded were all numpy-path estimators
    return manifest, _ImportedModel(estimator, manifest.get("input_format", "numpy"))
