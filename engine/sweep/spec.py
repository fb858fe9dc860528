"""Sweep files: a base config, the variations, a naming rule -> one training config each.

A sweep file (TOML)::

    base = "base.toml"                 # any config `nx train` reads; relative to this file
    name = "lr{model.params.learning_rate}-{data.target_col}"   # optional naming rule
    round = "r2"                       # optional round label
    output_dir = "experiments/lr"      # optional; --output-dir overrides it

    [grid]                             # every combination (dotted keys)
    model.params.learning_rate = [0.005, 0.01, 0.02]
    data.target_col = ["target", "target_aux_20"]

    [[list]]                           # and/or: one config per entry
    model.params.learning_rate = 0.05
    model.params.n_estimators = 500

The configs are the grid's combinations (in the order written, last key varying
fastest) followed by the list's entries. The naming rule fills ``{dotted.key}``
with the generated config's value (format specs allowed: ``{model.params.learning_rate:.3f}``),
``{round}``, ``{sweep}`` (the file's stem) and ``{index}`` (1-based position); without
a rule a config is named by its overrides (``learning_rate=0.01-target_col=target``),
after the round label. Each generated config writes its outputs under that name.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nx.engine.errors import NxError, SweepError
from nx.engine.train.config import TrainConfig, load_config, parse_config

SWEEP_KEYS = {"base", "name", "round", "output_dir", "grid", "list"}
_PLACEHOLDER = re.compile(r"\{([A-Za-z0-9_.]+)(?::([^{}]*))?\}")
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9._=+-]+")


@dataclass(frozen=True)
class SweepConfig:
    """One generated config: its name, its overrides, the validated config, its hash."""

    index: int  # 1-based
    name: str
    overrides: dict[str, Any]
    raw: dict[str, Any]  # the full config document (every default filled in)
    config: TrainConfig
    sha: str  # of ``raw``: a changed config never reuses old results


@dataclass(frozen=True)
class Sweep:
    """A parsed sweep file and its configs (validated, not yet checked against data)."""

    source: Path
    name: str
    round: str | None
    base: Path
    output_dir: Path | None
    configs: list[SweepConfig]


def _flatten(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in table.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, dotted + "."))
        else:
            flat[dotted] = value
    return flat


def _set_dotted(document: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = document
    for part in parents:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[leaf] = copy.deepcopy(value)


def _get_dotted(document: dict[str, Any], dotted: str) -> Any:
    node: Any = document
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(dotted)
        node = node[part]
    return node


def _text(value: Any, spec: str = "") -> str:
    if isinstance(value, list | tuple):
        return "+".join(_text(v, spec) for v in value)
    if spec:
        return format(value, spec)
    return str(value)


def _read_sweep(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise SweepError(f"{path}: sweep file not found; check the path")
    if path.suffix.lower() != ".toml":
        raise SweepError(f"{path}: a sweep file is TOML; name it SWEEP.toml")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise SweepError(f"{path}: not valid TOML: {error}") from None
    unknown = set(raw) - SWEEP_KEYS
    if unknown:
        raise SweepError(
            f"{path}: unknown keys {sorted(unknown)}; a sweep file has "
            + ", ".join(sorted(SWEEP_KEYS))
            + " (put config keys under [grid] or [[list]])"
        )
    if "base" not in raw or not isinstance(raw["base"], str):
        raise SweepError(f'{path}: base: missing; add base = "config.toml" (the config to vary)')
    for key in ("name", "round", "output_dir"):
        if key in raw and not isinstance(raw[key], str):
            raise SweepError(f"{path}: {key}: must be a string, got {raw[key]!r}")
    return raw


def _variations(path: Path, raw: dict[str, Any]) -> list[dict[str, Any]]:
    grid = raw.get("grid", {})
    entries = raw.get("list", [])
    if not isinstance(grid, dict):
        raise SweepError(f"{path}: grid: must be a table of dotted keys -> lists of values")
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise SweepError(f"{path}: list: must be an array of tables ([[list]] sections)")
    axes = _flatten(grid)
    for key, values in axes.items():
        if not isinstance(values, list) or not values:
            raise SweepError(
                f"{path}: grid.{key}: must be a non-empty list of values, got {values!r}"
            )
    found = []
    if axes:
        keys = list(axes)
        for combo in itertools.product(*(axes[k] for k in keys)):
            found.append(dict(zip(keys, combo, strict=True)))
    for position, entry in enumerate(entries, start=1):
        flat = _flatten(entry)
        if not flat:
            raise SweepError(f"{path}: list entry {position} is empty; give it dotted keys")
        found.append(flat)
    if not found:
        raise SweepError(f"{path}: no variations; add a [grid] table and/or [[list]] entries")
    return found


def _name(path: Path, rule: str | None, round_label: str | None, index: int, overrides, raw) -> str:
    if rule is None:
        parts = [f"{key.rsplit('.', 1)[-1]}={_text(value)}" for key, value in overrides.items()]
        name = "-".join(([round_label] if round_label else []) + parts)
    else:
        fixed = {"round": round_label or "", "sweep": path.stem, "index": index}

        def fill(match: re.Match) -> str:
            key, spec = match.group(1), match.group(2) or ""
            try:
                value = fixed[key] if key in fixed else _get_dotted(raw, key)
                return _text(value, spec)
            except KeyError:
                raise SweepError(
                    f"{path}: name: {{{key}}} is not a config key (nor round, sweep, index); "
                    "fix the naming rule"
                ) from None
            except (ValueError, TypeError) as error:
                raise SweepError(f"{path}: name: {{{match.group(0)}}}: {error}") from None

        name = _PLACEHOLDER.sub(fill, rule)
    name = _NAME_UNSAFE.sub("_", name).strip("._")
    if not name:
        raise SweepError(f"{path}: name: config {index} gets an empty name; fix the naming rule")
    return name


def config_sha(raw: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(raw, sort_keys=True).encode()).hexdigest()[:16]


def load_sweep(path: Path | str, output_dir: Path | str | None = None) -> Sweep:
    """Read a sweep file and generate its configs, each validated like ``nx train`` does.

    ``output_dir`` (the CLI's --output-dir) overrides the file's ``output_dir``; without
    either, the base config's ``output.output_dir``, else ``experiments``. Every problem
    is a :class:`SweepError` naming the sweep file, the config and the key.
    """
    path = Path(path)
    raw = _read_sweep(path)
    base_path = Path(raw["base"]).expanduser()
    if not base_path.is_absolute():
        base_path = path.parent / base_path
    try:
        base = load_config(base_path)
    except NxError as error:
        raise SweepError(f"{path}: base: {error}") from None
    variations = _variations(path, raw)
    given = output_dir or raw.get("output_dir")
    out = Path(given or base.output.output_dir or "experiments")
    round_label = raw.get("round")

    configs: list[SweepConfig] = []
    for index, overrides in enumerate(variations, start=1):
        document = base.resolved()
        for key, value in overrides.items():
            _set_dotted(document, key, value)
        name = _name(path, raw.get("name"), round_label, index, overrides, document)
        document["output"] = {
            **document.get("output", {}),
            "output_dir": str(out),
            "results_name": name,
            "predictions_name": name,
        }
        where = out / "configs" / f"{name}.json"
        try:
            config = parse_config(document, where)
        except NxError as error:
            shown = ", ".join(f"{k} = {v!r}" for k, v in overrides.items())
            raise SweepError(f"{path}: config {index} ({shown}): {error}") from None
        raw_config = config.resolved()
        configs.append(
            SweepConfig(index, name, overrides, raw_config, config, config_sha(raw_config))
        )

    seen: dict[str, int] = {}
    for item in configs:
        if item.name in seen:
            raise SweepError(
                f"{path}: name: configs {seen[item.name]} and {item.index} are both named "
                f"{item.name!r}; put the varied keys in the naming rule (e.g. "
                "{model.params.learning_rate}) or use {index}"
            )
        seen[item.name] = item.index
    return Sweep(path, path.stem, round_label, base_path, out, configs)
