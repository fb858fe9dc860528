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
names the file and the key (``model.params``) and says what to do.
"""

from __future__ import annotations

import json
import runpy
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from nx.engine.errors import ConfigError

CONFIG_SUFFIXES = (".toml", ".py", ".json")
X_GROUPS = ("features", "era", "benchmark_models", "baseline")


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


class ModelSection(_Section):
    type: str = "LGBMRegressor"
    params: dict[str, Any]
    x_groups: list[Literal["features", "era", "benchmark_models", "baseline"]] = ["features"]
    baseline: BaselineSection | None = None
    target_transform: TargetTransform | None = None

    @field_validator("target_transform", mode="before")
    @classmethod
    def _transform_by_name(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"type": value}
        if value == {}:
            return None
        return value


class OutputSection(_Section):
    output_dir: str | None = None
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
            if "CONFIG" not in namespace:
                raise ConfigError(f"{path}: defines no CONFIG dict; add CONFIG = {{...}}")
            raw = namespace["CONFIG"]
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
        return key, "unknown key; remove it or fix its spelling (see the README config example)"
    return key, f"{error['msg']} (got {error.get('input')!r})"


def parse_config(raw: dict[str, Any], source: Path | str = "<config>") -> TrainConfig:
    """Validate a raw config mapping (as read from a file) into a :class:`TrainConfig`."""
    source = Path(source)
    if "source" in raw:
        raise ConfigError(f"{source}: source: unknown key; remove it")
    try:
        config = TrainConfig.model_validate({**raw, "source": source})
    except ValidationError as error:
        key, problem = _describe(error.errors()[0])
        raise ConfigError(f"{source}: {key}: {problem}") from None
    _check_consistency(config)
    return config


def _check_consistency(config: TrainConfig) -> None:
    groups = config.model.x_groups
    if not groups:
        raise config.error("model.x_groups", "empty; list at least one of " + ", ".join(X_GROUPS))
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
