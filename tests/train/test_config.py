"""Config loading: formats, reference defaults, and one-line errors naming key and file."""

from __future__ import annotations

import json

import pytest

from nx.engine.errors import ConfigError
from nx.engine.train.config import load_config, parse_config
from tests.train.conftest import FAST_LGBM, write_config

REFERENCE_PY = """
CONFIG = {'data': {'data_version': 'v5.2',
          'embargo_eras': 13,
          'era_col': 'era',
          'feature_set': 'medium',
          'target_col': 'target'},
 'model': {'params': {'colsample_bytree': 0.1,
                      'learning_rate': 0.01,
                      'max_depth': 5,
                      'n_estimators': 2000,
                      'num_leaves': 31,
                      'random_state': 1337},
           'type': 'LGBMRegressor'},
 'output': {'output_dir': 'agents/baselines',
            'results_name': 'small_lgbm_ender20_baseline'},
 'preprocessing': {'missing_value': 2.0, 'nan_missing_all_twos': False},
 'training': {'cv': {'embargo': 13,
                     'enabled': True,
                     'min_train_size': 0,
                     'mode': 'expanding',
                     'n_splits': 5}}}
"""


def test_reference_defaults():
    config = parse_config({"model": {"params": {}}}, "c.toml")
    assert config.data.model_dump() == {
        "data_version": "v5.2",
        "feature_set": "small",
        "target_col": "target",
        "era_col": "era",
        "id_col": "id",
        "full_data_path": None,
        "benchmark_data_path": None,
        "embargo_eras": 13,
        "benchmark_model": "v52_lgbm_ender20",
        "baselines_dir": None,
    }
    assert config.preprocessing.nan_missing_all_twos is False
    assert config.preprocessing.missing_value == 2.0
    assert config.training.max_train_samples is None and config.training.sample_seed == 1337
    cv = config.training.cv
    assert (cv.enabled, cv.n_splits, cv.mode, cv.min_train_size) == (True, 5, "expanding", 0)
    assert config.cv_embargo == 13  # taken from data.embargo_eras
    assert config.model.type == "LGBMRegressor" and config.model.x_groups is None
    # the reference always makes these available; built-in models train on features only
    assert config.model.available_groups == ["features", "era", "benchmark_models"]
    assert config.model.input_groups == ["features"]
    assert config.name == "c"


def test_python_json_and_toml_configs_agree(tmp_path):
    py = load_config(write_config(tmp_path / "ref.py", REFERENCE_PY))
    assert py.name == "small_lgbm_ender20_baseline"
    assert py.data.feature_set == "medium" and py.model.params["n_estimators"] == 2000
    raw = py.model_dump(mode="json")
    as_json = load_config(write_config(tmp_path / "ref.json", json.dumps(raw)))
    assert as_json.model_dump() == py.model_dump()
    toml = load_config(write_config(tmp_path / "fast.toml", FAST_LGBM))
    assert toml.model.params["n_estimators"] == 20 and toml.name == "fast"


def test_target_transform_by_name_and_defaults():
    config = parse_config(
        {"model": {"params": {}, "target_transform": "subtract_benchmark"}}, "c.toml"
    )
    transform = config.model.target_transform
    assert transform.type == "subtract_benchmark" and transform.scale == 0.07
    assert config.transform_benchmark_col == "v52_lgbm_ender20"


@pytest.mark.parametrize(
    ("raw", "fragments"),
    [
        (
            {"model": {"params": {}}, "data": {"feature_sett": "x"}},
            ["data.feature_sett", "unknown key"],
        ),
        ({"model": {"params": {}}, "colour": 1}, ["colour", "unknown key"]),
        ({"model": {"type": "LGBMRegressor"}}, ["model.params", "missing"]),
        ({"data": {}}, ["model", "missing"]),
        (
            {"model": {"params": {}}, "training": {"cv": {"n_splits": "five"}}},
            ["training.cv.n_splits"],
        ),
        ({"model": {"params": {}}, "training": {"cv": {"mode": "random"}}}, ["training.cv.mode"]),
        ({"model": {"params": []}}, ["model.params"]),
        ({"model": {"params": {}, "x_groups": ["features", "targets"]}}, ["model.x_groups"]),
        ({"model": {"params": {}, "x_groups": ["baseline"]}}, ["model.baseline", "missing"]),
        (
            {"model": {"params": {}, "target_transform": {"type": "boost"}}},
            ["model.target_transform"],
        ),
    ],
)
def test_invalid_configs_name_file_and_key(raw, fragments):
    with pytest.raises(ConfigError) as info:
        parse_config(raw, "exp/my.toml")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("exp/my.toml: ")
    for fragment in fragments:
        assert fragment in message


def test_file_level_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "absent.toml")
    with pytest.raises(ConfigError, match="unsupported config format"):
        load_config(write_config(tmp_path / "c.yaml", "a: 1"))
    with pytest.raises(ConfigError, match="no CONFIG"):
        load_config(write_config(tmp_path / "c.py", "X = 1"))
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write_config(tmp_path / "bad.toml", "[model\n"))
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config(write_config(tmp_path / "bad.json", "{"))


def test_readme_config_example_is_valid():
    """The documented TOML example (README, `nx train` section) parses with every key."""
    import tomllib
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("#### Config file (TOML)")[1]
    block = section.split("```toml\n")[1].split("```")[0]
    config = parse_config(tomllib.loads(block), "README.toml")
    assert config.name == "my_model"
    assert config.model.target_transform.type == "residual_to_benchmark"
    assert config.training.max_train_samples == 200000


def test_shipped_baseline_config_is_valid():
    import tomllib
    from importlib.resources import files

    text = (files("nx.engine.train") / "configs" / "baseline.toml").read_text()
    config = parse_config(tomllib.loads(text), "baseline.toml")
    assert config.model.type == "LGBMRegressor" and config.name == "baseline"


# Every key the reference pipeline reads, by section (numerai/example-scripts,
# agents/code/modeling at 11209f0): pipeline.py, model_data.py, numerai_cv.py,
# target_transforms.py. nx must accept each with its meaning.
EVERY_REFERENCE_KEY = {
    "data": [
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
    ],
    "preprocessing": ["nan_missing_all_twos", "missing_value"],
    "training": ["max_train_samples", "sample_seed", "cv"],
    "training.cv": ["enabled", "n_splits", "embargo", "mode", "min_train_size"],
    "model": [
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
    ],
    "model.baseline": ["name", "predictions_path", "pred_col"],
    "model.target_transform": [
        "type",
        "benchmark_col",
        "era_col",
        "per_era",
        "fit_intercept",
        "proportion",
        "scale",
    ],
    "output": ["output_dir", "baselines_dir", "results_name", "predictions_name"],
}

EVERY_KEY_CONFIG = {
    "data": {
        "data_version": "v5.2",
        "feature_set": "medium",
        "target_col": "target",
        "era_col": "era",
        "id_col": "id",
        "full_data_path": "v5.2/downsampled_full.parquet",
        "benchmark_data_path": "v5.2/downsampled_full_benchmark_models.parquet",
        "embargo_eras": 4,
        "benchmark_model": "ender20",
        "baselines_dir": "baselines",
    },
    "preprocessing": {"nan_missing_all_twos": True, "missing_value": 2.0},
    "training": {
        "max_train_samples": 5000,
        "sample_seed": 7,
        "cv": {
            "enabled": True,
            "n_splits": 4,
            "embargo": 3,
            "mode": "blocked",
            "min_train_size": 2,
        },
    },
    "model": {
        "type": "LGBMRegressor",
        "params": {"n_estimators": 10},
        "x_groups": [],
        "data_needed": ["baseline", "benchmark", "target", "id"],
        "baseline": {"name": "small", "predictions_path": "p.parquet", "pred_col": "prediction"},
        "target_transform": {
            "type": "residualize_to_benchmark",
            "benchmark_col": "v52_lgbm_ender20",
            "era_col": "era",
            "per_era": True,
            "fit_intercept": False,
            "proportion": 0.5,
            "scale": 0.07,
        },
        "prediction_transform": "rank",
        "era_weighting": {"type": "none"},
        "prediction_batch_size": 4096,
        "benchmark": "v52_lgbm_ender20",
    },
    "output": {
        "output_dir": "baselines",
        "baselines_dir": "baselines",
        "results_name": "every_key",
        "predictions_name": "every_key_predictions",
    },
}


def _keys(mapping: dict, prefix: str = "") -> dict[str, list[str]]:
    out: dict[str, list[str]] = {prefix: list(mapping)} if prefix else {}
    for key, value in mapping.items():
        if isinstance(value, dict) and key in ("cv", "baseline", "target_transform"):
            out.update(_keys(value, f"{prefix}.{key}" if prefix else key))
    return out


def test_every_reference_key_is_accepted_with_its_meaning(tmp_path):
    from nx.engine.train.config import REFERENCE_KEYS

    assert {k: list(v) for k, v in REFERENCE_KEYS.items()} == EVERY_REFERENCE_KEY
    listed = {
        s: keys for section, v in EVERY_KEY_CONFIG.items() for s, keys in _keys(v, section).items()
    }
    assert listed == EVERY_REFERENCE_KEY  # the config below uses every one of them
    path = write_config(tmp_path / "every_key.py", f"CONFIG = {EVERY_KEY_CONFIG!r}\n")
    config = load_config(path)
    # data_needed stands in for an empty x_groups; aliases and the label are normalized
    assert config.model.available_groups == [
        "baseline",
        "benchmark_models",
        "id",
        "features",
        "era",
    ]
    assert config.model.input_groups == ["features"]  # built-in models: features only
    transform = config.model.target_transform
    assert transform.type == "residual_to_benchmark" and transform.proportion == 0.5
    assert config.data.baselines_dir == config.output.baselines_dir == "baselines"
    assert config.model.prediction_batch_size == 4096
    assert config.cv_embargo == 3 and config.training.cv.mode == "blocked"
    assert config.name == "every_key" and config.predictions_name == "every_key_predictions"
    # keys the reference only records are kept for the results, as written
    assert config.raw["model"]["era_weighting"] == {"type": "none"}


def test_reference_config_variable_may_be_lowercase(tmp_path):
    path = write_config(tmp_path / "lower.py", "config = {'model': {'params': {}}}\n")
    assert load_config(path).name == "lower"


@pytest.mark.parametrize(
    ("raw", "fragments"),
    [
        ({"model": {"params": {}, "x_grups": ["features"]}}, ["model.x_grups", "'x_groups'"]),
        (
            {"model": {"params": {}}, "data": {"embargo_era": 4}},
            ["data.embargo_era", "'embargo_eras'"],
        ),
        ({"model": {"params": {}}, "trainig": {}}, ["trainig", "'training'"]),
        (
            {"model": {"params": {}}, "training": {"cv": {"n_split": 3}}},
            ["training.cv.n_split", "'n_splits'"],
        ),
        ({"model": {"params": {}, "x_groups": ["feature"]}}, ["model.x_groups", "'feature'"]),
        ({"model": {"params": {}, "data_needed": ["nope"]}}, ["model.data_needed", "'nope'"]),
    ],
)
def test_unknown_keys_name_the_closest_known_one(raw, fragments):
    with pytest.raises(ConfigError) as info:
        parse_config(raw, "exp/my.py")
    for fragment in fragments:
        assert fragment in str(info.value)
