"""Training from reference-format configs: era CV, out-of-fold predictions, results, models.

Modules: ``config`` (loading and validating configs), ``cv`` (era folds),
``inputs`` (reading the data a config needs), ``transforms`` (target transforms),
``models`` (the model registry), ``pipeline`` (the fold loop and ``train_config``),
``results`` (the results document), ``artifact`` (the saved final model).
"""

from nx.engine._lazy import lazy_exports

_EXPORTS = {
    "TrainConfig": "config",
    "load_config": "config",
    "parse_config": "config",
    "era_folds": "cv",
    "folds_for": "cv",
    "TrainingData": "inputs",
    "check_inputs": "inputs",
    "load_training_data": "inputs",
    "residual_to_benchmark": "transforms",
    "subtract_benchmark": "transforms",
    "load_artifact": "models",
    "TrainResult": "pipeline",
    "check_config": "pipeline",
    "oof_predictions": "pipeline",
    "train_config": "pipeline",
    "train_configs": "pipeline",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
