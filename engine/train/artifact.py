"""The saved final model: ``models/<name>/`` with the model file and ``manifest.json``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from nx.engine import __version__
from nx.engine.train.config import TrainConfig
from nx.engine.train.models import ModelSpec
from nx.engine.train.results import json_ready

if TYPE_CHECKING:
    from nx.engine.train.inputs import TrainingData


def save_artifact(
    model, config: TrainConfig, data: TrainingData, folder: Path, spec: ModelSpec, run_id: str
) -> Path:
    """Write the model file and ``manifest.json`` into ``folder`` (created; a run's staging
    folder, moved into ``models/<name>/`` with the run's other outputs, see
    :mod:`nx.engine.train.outputs`)."""
    folder.mkdir(parents=True)
    model_file = model.save(folder)
    transform = config.model.target_transform
    manifest = {
        "format": "nx-model/1",
        "nx_version": __version__,
        "run_id": run_id,
        "name": config.name,
        "model_type": config.model.type,
        "model_kind": model.kind,
        "model_file": model_file,
        "params": spec.params,
        "features": data.source.feature_names,
        # what predict takes, in order: a float matrix of these columns, or (input_format
        # "pandas") a DataFrame of them
        "columns": data.x_columns if model.input_format == "pandas" else data.source.columns,
        "x_groups": config.model.available_groups,
        "input_groups": config.model.input_groups,
        "input_format": model.input_format,
        "feature_set_columns": data.feature_names,
        "target": config.data.target_col,
        "target_transform": transform.model_dump() if transform else None,
        "transform_benchmark_col": config.transform_benchmark_col,
        "preprocessing": config.preprocessing.model_dump(),
        "data_version": config.data.data_version,
        "feature_set": config.data.feature_set,
        "benchmark_model": config.data.benchmark_model,
        "baseline": config.model.baseline.model_dump() if config.model.baseline else None,
        "trained_rows": data.n_rows,
        "trained_eras": [data.eras[0], data.eras[-1]],
    }
    (folder / "manifest.json").write_text(
        json.dumps(json_ready(manifest), indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    return folder
