"""Training configs: load a TOML, Python (``CONFIG`` dict) or JSON file and validate it.

The keys and defaults are those of Numerai's reference research framework, so a
config written for it runs unchanged (only its data paths must point at files
that exist). TOML is the native format::

    [data]
    feature_set = "small"

    [model]
    type = "LGBMRegressor"
    [model.params]
    n_estimators = 200

Every problem is reported as one :class:`~nx.engine.errors.ConfigError` line that
names the file and the key (``model.params``) and says what to do; an unknown key
also names the closest known one.

Compatibility with the reference framework (numerai/example-scripts,
``agents/code/modeling``) is kept here, one rule per name:

- :data:`REFERENCE_KEYS` lists every key its pipeline reads; each is accepted with
  the meaning it has there (keys it only records, such as ``model.era_weighting``,
  are recorded in the results the same way).
- :func:`normalize_x_groups` is its ``normalize_x_groups``: ``x_groups`` (alias
  ``data_needed``) name the columns made *available* to target transforms and to
  custom models, and always include features, era and benchmark_models. Built-in
  models train on the feature set only (its ``LGBMRegressor`` wrapper filters X to
  the features); nx's own ``model.input_groups`` adds other columns as real inputs.
"""

from __future__ import annotations

import difflib
import json
import runpy
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from nx.engine.errors import ConfigError

CONFIG_SUFFIXES = (".toml", ".py", ".json")
X_GROUPS = ("features", "era", "benchmark_models", "baseline", "id")
# Always made available, in this order, after the groups a config lists (reference rule).
DEFAULT_X_GROUPS = ("features", "era", "benchmark_models")
X_GROUP_ALIASES = {"benchmark": "benchmark_models", "benchmarks": "benchmark_models"}
# The label is never a model input: the reference drops these names from x_groups.
LABEL_X_GROUPS = ("target", "y")
# Groups nx's built-in models (and custom models on the numpy path) can train on.
INPUT_GROUPS = ("features", "era", "benchmark_models", "baseline")
TRANSFORM_ALIASES = {
    "residualize_to_benchmark": "residual_to_benchmark",
    "subtract_benchmark_zscore": "subtract_benchmark",
}

# Every key the reference pipeline reads (modeling/utils/pipeline.py, model_data.py,
# numerai_cv.py, target_transforms.py at numerai/example-scripts 11209f0), by section.
REFERENCE_KEYS = {
    "data": (
        "data_version",
        "feature_set",
        "target_col",
        "era_col",
        "id_col",
        "full_data_path",
        "benchmark_data_path",
        "embargo_eras",
        "benchmark_model",
        "baselines_dir",
    ),
    "preprocessing": ("nan_missing_all_twos", "missing_value"),
    "training": ("max_train_samples", "sample_seed", "cv"),
    "training.cv": ("enabled", "n_splits", "embargo", "mode", "min_train_size"),
    "model": (
        "type",
        "params",
        "x_groups",
        "data_needed",
        "baseline",
        "target_transform",
        "prediction_transform",
        "era_weighting",
        "prediction_batch_size",
        "benchmark",
    ),
    "model.baseline": ("name", "predictions_path", "pred_col"),
    "model.target_transform": (
        "type",
        "benchmark_col",
        "era_col",
        "per_era",
        "fit_intercept",
        "proportion",
        "scale",
    ),
    "output": ("output_dir", "baselines_dir", "results_name", "predictions_name"),
}


def normalize_x_groups(groups: list[str] | None) -> list[str]:
    """The reference's ``normalize_x_groups``: the groups a config makes available.

    Empty or missing gives features, era, benchmark_models; ``target``/``y`` are
    dropped (the label is never an input); ``benchmark``/``benchmarks`` mean
    benchmark_models; duplicates are dropped; features, era and benchmark_models
    are appended when absent. Unknown names raise ``ValueError``.

    >>> normalize_x_groups(["baseline", "benchmarks", "y"])
    ['baseline', 'benchmark_models', 'features', 'era']
    """
    normalized: list[str] = []
    for group in groups or DEFAULT_X_GROUPS:
        if group in LABEL_X_GROUPS:
            continue
        group = X_GROUP_ALIASES.get(group, group)
        if group not in X_GROUPS:
            raise ValueError(
                f"unknown x_group {group!r}; use some of {', '.join(X_GROUPS)} "
                "(aliases: benchmark, benchmarks)"
            )
        if group not in normalized:
            normalized.append(group)
    return normalized + [g for g in DEFAULT_X_GROUPS if g not in normalized]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class DataSection(_Section):
    data_version: str = "v5.2"
    feature_set: str = "small"
    target_col: str = "target"
    era_col: str = "era"
    id_col: str = "id"
    full_data_path: str | None = None
    benchmark_data_path: str | None = None
    embargo_eras: int = Field(13, ge=0)
    benchmark_model: str = "v52_lgbm_ender20"
    # Read by the reference for its baseline predictions folder; nx records it only.
    baselines_dir: str | None = None


class PreprocessingSection(_Section):
    nan_missing_all_twos: bool = False
    missing_value: float = 2.0


class CVSection(_Section):
    enabled: bool = True
    n_splits: int = Field(5, ge=1)
    # None: take data.embargo_eras, as the reference framework does.
    embargo: int | None = Field(None, ge=0)
    mode: Literal["expanding", "blocked"] = "expanding"
    min_train_size: int = Field(0, ge=0)


class TrainingSection(_Section):
    max_train_samples: int | None = Field(None, ge=1)
    sample_seed: int = 1337
    cv: CVSection = CVSection()
    final_fit: bool = False


class BaselineSection(_Section):
    name: str = "baseline"
    predictions_path: str
    pred_col: str = "prediction"


class TargetTransform(_Section):
    type: Literal["residual_to_benchmark", "subtract_benchmark"]
    # None: data.benchmark_model.
    benchmark_col: str | None = None
    era_col: str | None = None
    per_era: bool = True
    fit_intercept: bool = True
    proportion: float = Field(1.0, ge=0.0, le=1.0)
    scale: float = 0.07

    @field_validator("type", mode="before")
    @classmethod
    def _alias(cls, value: Any) -> Any:
        return TRANSFORM_ALIASES.get(value, value) if isinstance(value, str) else value


class ModelSection(_Section):
    type: str = "LGBMRegressor"
    params: dict[str, Any]
    # Reference keys: the columns made available (see normalize_x_groups); data_needed
    # is read when x_groups is empty or absent.
    x_groups: list[str] | None = None
    data_needed: list[str] | None = None
    baseline: BaselineSection | None = None
    target_transform: TargetTransform | None = None
    # Reference keys it records in the results without acting on them; nx does the same.
    prediction_transform: Any = None
    era_weighting: Any = None
    prediction_batch_size: int | None = Field(None, ge=1)
    benchmark: Any = None
    # nx keys: what built-in models train on, and how custom models get their rows.
    input_groups: list[str] = ["features"]
    input_format: Literal["pandas", "numpy"] = "pandas"

    @field_validator("target_transform", mode="before")
    @classmethod
    def _transform_by_name(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"type": value}
        if value == {}:
            return None
        return value

    @property
    def available_groups(self) -> list[str]:
        """The normalized x_groups: every column group loaded for this model."""
        return normalize_x_groups(self.x_groups or self.data_needed)


class OutputSection(_Section):
    output_dir: str | None = None
    baselines_dir: str | None = None  # reference key, recorded only
    results_name: str | None = None
    predictions_name: str | None = None


class TrainConfig(_Section):
    """A validated training config; ``source`` is the file it came from."""

    data: DataSection = DataSection()
    preprocessing: PreprocessingSection = PreprocessingSection()
    training: TrainingSection = TrainingSection()
    model: ModelSection
    output: OutputSection = OutputSection()
    source: Path = Field(Path("<config>"), exclude=True)
    # The mapping as written (the results record reference keys as the config gave them).
    raw: dict[str, Any] = Field(default_factory=dict, exclude=True)

    @property
    def name(self) -> str:
        """Results name: ``output.results_name`` or the config file stem."""
        return self.output.results_name or self.source.stem

    @property
    def predictions_name(self) -> str:
        return self.output.predictions_name or self.name

    @property
    def cv_embargo(self) -> int:
        embargo = self.training.cv.embargo
        return self.data.embargo_eras if embargo is None else embargo

    @property
    def transform_benchmark_col(self) -> str | None:
        transform = self.model.target_transform
        if transform is None:
            return None
        return transform.benchmark_col or self.data.benchmark_model

    def error(self, key: str, problem: str) -> ConfigError:
        """A ConfigError naming this config's file and ``key``."""
        return ConfigError(f"{self.source}: {key}: {problem}")

    def resolved(self) -> dict[str, Any]:
        """The config with every default filled in (what was actually run)."""
        return self.model_dump(mode="json")


def _read_raw(path: Path) -> dict[str, Any]:
    suffix = path.suffix.lower()
    if suffix not in CONFIG_SUFFIXES:
        raise ConfigError(
            f"{path}: unsupported config format {suffix or '(none)'}; "
            "use a .toml file (or .py defining CONFIG, or .json)"
        )
    try:
        if suffix == ".toml":
            return tomllib.loads(path.read_text(encoding="utf-8"))
        if suffix == ".json":
            raw = json.loads(path.read_text(encoding="utf-8"))
        else:
            namespace = runpy.run_path(str(path))
            name = next((n for n in ("CONFIG", "config") if n in namespace), None)
            if name is None:
                raise ConfigError(f"{path}: defines no CONFIG dict; add CONFIG = {{...}}")
            raw = namespace[name]
    except ConfigError:
        raise
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found; check the path") from None
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as error:
        raise ConfigError(f"{path}: not valid {suffix[1:].upper()}: {error}") from None
    except Exception as error:  # a Python config may raise anything while running
        raise ConfigError(f"{path}: running the config failed: {error!r}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the config must be a mapping of sections, got {type(raw)}")
    return raw


def _known_keys(loc: tuple) -> list[str]:
    """The keys of the section that holds ``loc``'s last part (for spelling hints)."""
    section: Any = TrainConfig
    for part in loc[:-1]:
        field = getattr(section, "model_fields", {}).get(part)
        if field is None:
            return []
        annotation = field.annotation
        options = [annotation, *getattr(annotation, "__args__", ())]
        section = next(
            (o for o in options if isinstance(o, type) and issubclass(o, _Section)), None
        )
        if section is None:
            return []
    return [name for name in section.model_fields if name not in ("source", "raw")]


def _describe(error: dict[str, Any]) -> tuple[str, str]:
    key = ".".join(str(part) for part in error["loc"])
    kind = error["type"]
    if kind == "missing":
        if key == "model.params":
            return key, "missing; add a [model.params] table (no defaults are added)"
        if key == "model":
            return key, "missing; add a [model] section with type and [model.params]"
        return key, "missing; add it"
    if kind == "extra_forbidden":
        close = difflib.get_close_matches(str(error["loc"][-1]), _known_keys(error["loc"]), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return key, f"unknown key; {hint}fix its spelling or remove it (see the README config keys)"
    return key, f"{error['msg']} (got {error.get('input')!r})"


def parse_config(raw: dict[str, Any], source: Path | str = "<config>") -> TrainConfig:
    """Validate a raw config mapping (as read from a file) into a :class:`TrainConfig`."""
    source = Path(source)
    for reserved in ("source", "raw"):
        if reserved in raw:
            raise ConfigError(f"{source}: {reserved}: unknown key; remove it")
    try:
        config = TrainConfig.model_validate({**raw, "source": source, "raw": raw})
    except ValidationError as error:
        key, problem = _describe(error.errors()[0])
        raise ConfigError(f"{source}: {key}: {problem}") from None
    _check_consistency(config)
    return config


def _check_consistency(config: TrainConfig) -> None:
    model = config.model
    key = "model.x_groups" if model.x_groups or not model.data_needed else "model.data_needed"
    try:
        groups = model.available_groups
    except ValueError as error:
        raise config.error(key, str(error)) from None
    for group in model.input_groups:
        if group not in INPUT_GROUPS:
            raise config.error(
                "model.input_groups",
                f"unknown group {group!r}; use some of {', '.join(INPUT_GROUPS)}",
            )
        if group not in groups:
            raise config.error(
                "model.input_groups", f"{group!r} is not in model.x_groups; add it there too"
            )
    if not model.input_groups:
        raise config.error(
            "model.input_groups", "empty; list at least one of " + ", ".join(INPUT_GROUPS)
        )
    if "baseline" in groups and config.model.baseline is None:
        raise config.error(
            "model.baseline", "missing but x_groups has 'baseline'; add [model.baseline]"
        )
    transform = config.model.target_transform
    if transform is not None and transform.era_col not in (None, config.data.era_col):
        raise config.error(
            "model.target_transform.era_col",
            f"{transform.era_col!r} differs from data.era_col {config.data.era_col!r}; "
            "remove it (transforms group by data.era_col)",
        )
    if not config.training.cv.enabled and not config.training.final_fit:
        raise config.error(
            "training.cv.enabled",
            "false leaves nothing to do; set it to true (or set training.final_fit = true)",
        )


def load_config(path: Path | str) -> TrainConfig:
    """Read and validate one config file (``.toml``, ``.py`` with ``CONFIG``, or ``.json``)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found; check the path")
    return parse_config(_read_raw(path), path)


def resolve_data_path(data_dir: Path, value: str | None, default: Path) -> Path:
    """A config data path: absolute as given, relative to the data dir, or ``default``."""
    if value is None:
        return default
    path = Path(value).expanduser()
    return path if path.is_absolute() else Path(data_dir) / path
