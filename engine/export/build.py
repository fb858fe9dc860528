"""``nx export``: saved models -> a Numerai pickle built inside a runtime venv + its sidecar.

The pickle is made by the runtime's own cloudpickle from the runtime's own packages
(see :mod:`nx.engine.export._runtime_worker`), written to a temporary file, loaded
and run on test rows by a fresh runtime process, and only then renamed into place
next to its JSON sidecar (``<pickle>.json``: models, weights, runtime, pins, nx
version, feature count, sha256).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nx.engine import __version__
from nx.engine.errors import ExportError
from nx.engine.export.bundle import (
    ExportModel,
    neutralizer_features,
    parse_weights,
    read_model_dir,
    sha256_file,
)
from nx.engine.export.runtimes import DEFAULT_RUNTIME, RUNTIMES, check_runtime_name, runtime_python
from nx.engine.export.worker import run_worker
from nx.engine.paths import DEFAULT_DATA_DIR, atomic_output
from nx.engine.progress import NO_PROGRESS, Progress

SIDECAR_FORMAT = "nx-pickle/1"


def sidecar_path(pickle_path: Path | str) -> Path:
    """``model.pkl`` -> ``model.pkl.json``."""
    pickle_path = Path(pickle_path)
    return pickle_path.with_name(pickle_path.name + ".json")


@dataclass
class ExportResult:
    pickle_path: Path
    sidecar_path: Path
    sidecar: dict[str, Any]
    seconds: float


def train_final(
    config_path: Path | str,
    *,
    data_dir: Path | str = DEFAULT_DATA_DIR,
    output_dir: Path | str | None = None,
    overwrite: bool = False,
    progress: Progress = NO_PROGRESS,
) -> Path:
    """Train ``config_path`` with its final fit (as the reference's export_pkl.py); the model dir.

    An earlier run of the same name is replaced only with ``overwrite``.
    """
    from nx.engine.train import load_config, train_configs

    [result] = train_configs(
        [load_config(config_path)],
        data_dir=data_dir,
        output_dir=output_dir,
        final=True,
        overwrite=overwrite,
        progress=progress,
    )
    assert result.model_dir is not None  # final=True always saves the model
    return result.model_dir


def export_models(
    model_dirs: list[Path | str],
    output: Path | str,
    *,
    runtime: str = DEFAULT_RUNTIME,
    weights: list[float] | str | None = None,
    neutralize_features: str | None = None,
    neutralize_proportion: float = 1.0,
    data_dir: Path | str = DEFAULT_DATA_DIR,
    progress: Progress = NO_PROGRESS,
) -> ExportResult:
    """Write a Numerai pickle of ``model_dirs`` (blended by ``weights``) to ``output``.

    Every input is checked before anything is built; on any failure nothing is left
    at ``output`` or its sidecar.
    """
    started = time.perf_counter()
    runtime = check_runtime_name(runtime)
    if not model_dirs:
        raise ExportError("no model given; pass MODEL_DIR ... or --config CONFIG")
    models = [read_model_dir(path) for path in model_dirs]
    blend = parse_weights(weights, len(models))
    if not 0.0 <= float(neutralize_proportion) <= 1.0:
        raise ExportError(f"--neutralize-proportion {neutralize_proportion}: must be within [0, 1]")
    neutralizers: list[str] = []
    if neutralize_features:
        version = str(models[0].manifest.get("data_version") or "v5.2")
        neutralizers = neutralizer_features(Path(data_dir), version, neutralize_features)
    runtime_python(runtime)  # the install command, before any work
    output = Path(output)
    if output.is_dir():
        raise ExportError(f"-o {output}: is a folder; give a file name like model.pkl")
    era_col = str(models[0].manifest.get("era_col", "era"))
    job = {
        "models": [m.worker_spec() for m in models],
        "weights": blend,
        "neutralizers": neutralizers,
        "proportion": float(neutralize_proportion),
        "era_col": era_col,
    }
    features = _union([*[c for m in models for c in m.features], *neutralizers])
    benchmarks = _union([c for m in models for c in m.benchmarks])
    with progress.task(f"Exporting {len(models)} model(s) in runtime {runtime}", total=2) as bar:
        with atomic_output(output) as tmp_pickle, atomic_output(sidecar_path(output)) as tmp_json:
            built = run_worker("build", {**job, "output": str(tmp_pickle)}, runtime)
            if not built.get("ok"):
                raise ExportError(
                    f"building the pickle in runtime {runtime} failed: {built.get('error')}"
                )
            bar.advance()
            probe = run_worker(
                "probe",
                {"pickle": str(tmp_pickle), "features": features, "benchmarks": benchmarks},
                runtime,
            )
            if not probe.get("ok"):
                raise ExportError(
                    f"the pickle failed its load test in runtime {runtime}: {probe.get('error')}"
                )
            sidecar = {
                "format": SIDECAR_FORMAT,
                "nx_version": __version__,
                "created": datetime.now(UTC).isoformat(timespec="seconds"),
                "pickle": output.name,
                "sha256": sha256_file(tmp_pickle),
                "bytes": tmp_pickle.stat().st_size,
                "runtime": runtime,
                "python": built.get("python"),
                "pins": RUNTIMES[runtime],
                "packages": built.get("packages"),
                "predict_arguments": probe.get("n_args"),
                "models": [m.facts() for m in models],
                "weights": blend,
                "neutralize": (
                    {
                        "feature_set": neutralize_features,
                        "features": len(neutralizers),
                        "proportion": float(neutralize_proportion),
                    }
                    if neutralizers
                    else None
                ),
                "feature_count": len(features),
                "benchmark_columns": benchmarks,
                "data_version": models[0].manifest.get("data_version"),
                "era_col": era_col,
            }
            tmp_json.write_text(json.dumps(sidecar, indent=2) + "\n", encoding="utf-8")
            bar.advance()
    return ExportResult(output, sidecar_path(output), sidecar, time.perf_counter() - started)


def _union(names: list[str]) -> list[str]:
    return list(dict.fromkeys(names))


def read_sidecar(pickle_path: Path | str) -> dict[str, Any] | None:
    """The sidecar of ``pickle_path``, or None when there is none (a foreign pickle)."""
    path = sidecar_path(pickle_path)
    if not path.is_file():
        return None
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ExportError(f"{path}: not readable JSON ({error}); re-export the pickle") from None
    return document if isinstance(document, dict) else None


def sidecar_models(sidecar: dict[str, Any]) -> list[ExportModel]:
    """The sidecar's models, read again from their folders."""
    return [read_model_dir(entry["path"]) for entry in sidecar.get("models", [])]
