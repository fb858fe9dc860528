"""What goes into a pickle: saved model folders, blend weights and neutralization,
checked against what live data can serve, and nx's own in-process predictions of it.

A model folder is what ``nx train --final`` writes (``models/<name>/``):
``manifest.json`` names the model file and its input ``columns`` in training order;
``features`` are the columns taken from ``live_features``. Any other column must be a
benchmark column (taken from ``live_benchmark_models`` by id): a model that reads the
era number or a baseline's predictions cannot be served live and is refused.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from nx.engine import __version__
from nx.engine.errors import ExportError

MANIFEST_FORMAT = "nx-model/1"
MODEL_KINDS = ("lightgbm", "ridge", "estimator")


@dataclass(frozen=True)
class ExportModel:
    """One saved model, checked for serving."""

    path: Path
    manifest: dict[str, Any]
    model_file: Path
    columns: list[str]  # model inputs in training order
    features: list[str]  # the columns read from live_features (training order)
    benchmarks: list[str]  # the columns read from live_benchmark_models

    @property
    def name(self) -> str:
        return str(self.manifest.get("name") or self.path.name)

    @property
    def kind(self) -> str:
        return str(self.manifest["model_kind"])

    def worker_spec(self) -> dict[str, Any]:
        """What the runtime worker needs to rebuild this model in the pickle."""
        pre = self.manifest.get("preprocessing") or {}
        return {
            "name": self.name,
            "kind": self.kind,
            "model_file": str(self.model_file.resolve()),
            "columns": self.columns,
            "features": self.features,
            "benchmarks": self.benchmarks,
            "nan_all_twos": bool(pre.get("nan_missing_all_twos", False)),
            "missing_value": float(pre.get("missing_value", 2.0)),
        }

    def facts(self) -> dict[str, Any]:
        """The sidecar entry: where the model came from and what it reads."""
        manifest_path = self.path / "manifest.json"
        return {
            "name": self.name,
            "path": str(self.path.resolve()),
            "model_type": self.manifest.get("model_type"),
            "model_kind": self.kind,
            "model_file_sha256": sha256_file(self.model_file),
            "manifest_sha256": sha256_file(manifest_path),
            "features": len(self.features),
            "benchmark_columns": self.benchmarks,
            "target": self.manifest.get("target"),
            "data_version": self.manifest.get("data_version"),
            "nx_version": self.manifest.get("nx_version"),
        }


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for piece in str(text).split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def read_model_dir(path: Path | str) -> ExportModel:
    """A model folder checked for serving; one-line :class:`ExportError` otherwise."""
    path = Path(path)
    manifest_path = path / "manifest.json"
    if not path.is_dir():
        raise ExportError(
            f"{path}: not a model folder; pass models/<name>/ from `nx train --final`"
        )
    if not manifest_path.is_file():
        raise ExportError(
            f"{path}: no manifest.json; pass a folder written by `nx train CONFIG --final` "
            "(models/<name>/)"
        )
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ExportError(
            f"{manifest_path}: not readable JSON ({error}); retrain the model"
        ) from None
    if not isinstance(manifest, dict):
        raise ExportError(f"{manifest_path}: not an nx manifest; retrain the model")
    fmt = str(manifest.get("format", ""))
    written_by = str(manifest.get("nx_version", "?"))
    if fmt != MANIFEST_FORMAT or _version_tuple(written_by) > _version_tuple(__version__):
        if fmt.startswith("nx-model/") or _version_tuple(written_by) > _version_tuple(__version__):
            raise ExportError(
                f"{manifest_path}: written by a newer nx ({written_by}, format {fmt or '?'}); "
                f"this is nx {__version__}: upgrade nx to export it"
            )
        raise ExportError(f"{manifest_path}: not an nx model manifest (format {fmt!r}); retrain it")
    missing = [k for k in ("model_kind", "model_file", "columns", "features") if k not in manifest]
    if missing:
        raise ExportError(
            f"{manifest_path}: lacks {missing}; retrain the model with nx train --final"
        )
    if manifest["model_kind"] not in MODEL_KINDS:
        raise ExportError(
            f"{manifest_path}: unknown model_kind {manifest['model_kind']!r}; nx exports "
            + ", ".join(MODEL_KINDS)
        )
    model_file = path / str(manifest["model_file"])
    if not model_file.is_file():
        raise ExportError(f"{model_file} not found (named by {manifest_path}); retrain the model")
    columns = [str(c) for c in manifest["columns"]]
    feature_set = {str(c) for c in manifest["features"]}
    features = [c for c in columns if c in feature_set]
    others = [c for c in columns if c not in feature_set]
    baseline = (manifest.get("baseline") or {}).get("name")
    era_col = str(manifest.get("era_col", "era"))
    for column in others:
        if column == era_col:
            raise ExportError(
                f"{path}: the model reads the era number ({column!r}), which live data does "
                "not carry as a number; retrain without 'era' in model.x_groups"
            )
        if baseline is not None and column == baseline:
            raise ExportError(
                f"{path}: the model reads the baseline predictions {column!r}, which live "
                "data does not have; retrain without 'baseline' in model.x_groups"
            )
    if not columns:
        raise ExportError(f"{manifest_path}: the model has no input columns; retrain it")
    return ExportModel(path, manifest, model_file, columns, features, others)


def parse_weights(weights: list[float] | str | None, n_models: int) -> list[float]:
    """One finite weight per model (default equal weights), summing to a non-zero value."""
    if weights is None or weights == "":
        return [1.0 / n_models] * n_models
    if isinstance(weights, str):
        try:
            values = [float(w) for w in weights.replace(" ", "").split(",") if w != ""]
        except ValueError:
            raise ExportError(
                f"--weights {weights!r}: not numbers; give one number per model, e.g. 0.6,0.4"
            ) from None
    else:
        values = [float(w) for w in weights]
    if len(values) != n_models:
        raise ExportError(
            f"--weights: {len(values)} weight(s) for {n_models} model(s); give one per model"
        )
    if not all(math.isfinite(w) for w in values) or math.isclose(sum(values), 0.0):
        raise ExportError(f"--weights {values}: must be finite and sum to a non-zero value")
    total = sum(values)
    return [w / total for w in values]


def neutralizer_features(data_dir: Path, data_version: str, feature_set: str) -> list[str]:
    """The features of ``feature_set`` in ``<data_dir>/<version>/features.json``."""
    from nx.engine.paths import version_dir

    path = version_dir(data_dir, data_version) / "features.json"
    if not path.is_file():
        raise ExportError(
            f"{path} not found (needed by --neutralize-features); build the data with "
            "`nx build-data` or pass --data-dir"
        )
    try:
        sets = json.loads(path.read_text(encoding="utf-8"))["feature_sets"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError):
        raise ExportError(f"{path}: not a Numerai features.json; rebuild it") from None
    if feature_set not in sets:
        raise ExportError(
            f"--neutralize-features: unknown feature set {feature_set!r}; available: "
            + ", ".join(sorted(sets))
        )
    return [str(f) for f in sets[feature_set]]


# ---------------------------------------------------------------- nx's own predictions


def nx_predictions(
    models: list[ExportModel],
    weights: list[float],
    features: pl.DataFrame,
    benchmarks: pl.DataFrame | None,
    *,
    neutralizers: list[str] | None = None,
    proportion: float = 1.0,
    era_col: str = "era",
    id_col: str = "id",
) -> np.ndarray:
    """What the exported pickle should return, computed in-process by nx's own code.

    Each model predicts through the training path (:class:`MatrixSource` and the saved
    model), its output is rank-gaussianized per era (``ndtri((rank - 0.5) / n)``
    divided by its std, ddof 0), the weighted sum is optionally neutralized per era,
    and the result is ranked per era into (0, 1] (average rank / n).
    """
    from nx.engine.metrics import gaussianize, neutralize, tie_kept_rank
    from nx.engine.metrics.scores import EraLayout

    n = features.height
    eras = features[era_col].cast(pl.String)
    layout = EraLayout(eras)
    codes = pl.Series(eras).cast(pl.Enum(layout.eras.to_list())).to_physical().to_numpy()
    sizes = np.diff(layout.offsets)
    blend = np.zeros(n)
    for model, weight in zip(models, weights, strict=True):
        raw = _predict_model(model, features, benchmarks, codes, len(layout.eras), id_col)
        gauss = gaussianize(raw, layout)
        finite = np.isfinite(gauss)
        gauss = np.where(finite, gauss, 0.0)
        count = np.bincount(codes, finite, len(sizes))
        mean = np.bincount(codes, gauss, len(sizes)) / np.maximum(count, 1)
        centred = np.where(finite, gauss - mean[codes], 0.0)
        std = np.sqrt(np.bincount(codes, centred * centred, len(sizes)) / np.maximum(count, 1))
        std = np.where(count > 1, std, 0.0)
        gauss = gauss / np.where(std[codes] > 0, std[codes], 1.0)
        blend += weight * gauss
    if neutralizers:
        missing = [c for c in neutralizers if c not in features.columns]
        if missing:
            raise ExportError(f"the data lacks neutralization features, e.g. {missing[:3]}")
        x = features.select(neutralizers).to_numpy().astype(np.float64)
        blend = neutralize(blend, x, proportion, layout)
    n_era = sizes[codes]
    average_rank = np.round((tie_kept_rank(blend, layout) * n_era + 0.5) * 2) / 2
    return average_rank / n_era


def _predict_model(
    model: ExportModel,
    features: pl.DataFrame,
    benchmarks: pl.DataFrame | None,
    codes: np.ndarray,
    n_eras: int,
    id_col: str,
) -> np.ndarray:
    from nx.engine.train.inputs import all_missing_mask
    from nx.engine.train.models import MatrixSource, load_artifact

    missing = [c for c in model.features if c not in features.columns]
    if missing:
        raise ExportError(
            f"the data lacks {len(missing)} feature(s) of model {model.name}, e.g. {missing[:3]}; "
            "use data of the model's data version"
        )
    matrix = np.empty((features.height, len(model.columns)), dtype=np.float32)
    slot = {c: i for i, c in enumerate(model.columns)}
    for start in range(0, len(model.features), 256):
        names = model.features[start : start + 256]
        block = features.select(names).to_numpy().astype(np.float32)
        matrix[:, [slot[c] for c in names]] = block
    if model.benchmarks:
        if benchmarks is None:
            raise ExportError(f"model {model.name} reads benchmark columns; no benchmark file")
        lacking = [c for c in model.benchmarks if c not in benchmarks.columns]
        if lacking:
            raise ExportError(f"the benchmark file lacks {lacking[:3]} (model {model.name})")
        joined = features.select(pl.col(id_col).cast(pl.String)).join(
            benchmarks.select(pl.col(id_col).cast(pl.String), *model.benchmarks),
            on=id_col,
            how="left",
            maintain_order="left",
        )
        for c in model.benchmarks:
            matrix[:, slot[c]] = joined[c].cast(pl.Float32).fill_null(np.nan).to_numpy()
    spec = model.worker_spec()
    nan_mask = None
    if spec["nan_all_twos"] and model.features:
        feature_slots = np.asarray([slot[c] for c in model.features])
        nan_mask = np.zeros((n_eras, len(model.columns)), dtype=bool)
        nan_mask[:, feature_slots] = all_missing_mask(
            matrix[:, feature_slots], codes, n_eras, spec["missing_value"]
        )
    source = MatrixSource(
        features=matrix,
        feature_names=model.columns,
        era_codes=codes,
        nan_mask=nan_mask,
    )
    _, fitted = load_artifact(model.path)
    return fitted.predict_source(source, np.arange(features.height))
