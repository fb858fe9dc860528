"""From saved models to a pickle that runs in Numerai's hosted runtime.

Modules: ``runtimes`` (Numerai's runtime images as local venvs: pins, install,
lookup), ``bundle`` (model folders, weights, serving rules, nx's in-process
predictions), ``build`` (``export_models``: the pickle built inside a runtime, and its
sidecar), ``check`` (``check_pickle``: Numerai's harness rules, run in the runtime),
``predict`` (submission files), ``worker`` and ``_runtime_worker`` (the code that runs
inside a runtime venv, importing nothing of nx).
"""

from nx.engine._lazy import lazy_exports

_EXPORTS = {
    "DEFAULT_RUNTIME": "runtimes",
    "RUNTIMES": "runtimes",
    "install_runtime": "runtimes",
    "list_runtimes": "runtimes",
    "runtime_info": "runtimes",
    "runtime_python": "runtimes",
    "ExportResult": "build",
    "export_models": "build",
    "read_sidecar": "build",
    "sidecar_path": "build",
    "train_final": "build",
    "CheckReport": "check",
    "PickleCheckError": "check",
    "check_pickle": "check",
    "predict_models": "predict",
    "predict_pickle": "predict",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
