"""A realistic synthetic Numerai dataset, written era by era straight to parquet.

:func:`generate_raw` writes the raw files Numerai serves for a data version
(``features.json``, ``train.parquet``, ``validation.parquet``, ``live.parquet``, the
three ``*_benchmark_models.parquet`` files and ``meta_model.parquet``) with the same
schema, so the build runs the same steps as for downloaded data.

How the data is made (one draw of the "world" from the seed, then one era at a time):

- Each row has ``N_FACTORS`` latent factors ``z ~ N(0, 1)``. Feature ``j`` is a noisy
  view of one factor, ``a_j * z_f(j) + sqrt(1 - a_j^2) * e``, cut per era into five
  equal-frequency bins 0..4 (int8). Some features are missing (all 2s) in some eras.
- Every target is ``z . beta_t(era) + (a fixed non-linear term) + noise``, binned per era
  into 0, .25, .5, .75, 1 with shares 5/20/50/20/5 % (some auxiliary targets in 7 bins).
  ``beta_t(era)`` = a persistent mean plus an AR(1) drift, so exposures change from
  era to era: a tree model on the features reaches a per-era correlation of about
  0.02 out of sample and overfits in sample. ``target`` is ``target_ender_20``.
- Benchmark models (``v52_lgbm_<target><horizon>``) are linear models of the binned
  features along each target's mean exposure, ranked per era into (0, 1]. They start
  at the same relative era as Numerai's (0158 of ~1200). ``numerai_meta_model`` is a
  noisy blend of them.

Same seed and sizes -> byte-identical files (with the same nx version).

Every file is marked as synthetic: the parquet files carry the key ``nx_synthetic``
in their schema metadata and ``features.json`` a top-level ``nx_synthetic`` entry,
both holding the generator's settings (:func:`synthetic_marker` reads them back), so
nx, ``nx data info`` and anyone reading the files can tell them from Numerai's.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from nx.engine import __version__
from nx.engine.errors import ConfigError
from nx.engine.paths import atomic_output
from nx.engine.progress import NO_PROGRESS, Progress
from nx.engine.resources import check_memory


@dataclass(frozen=True)
class Scale:
    """Size of a synthetic dataset: eras, mean rows per era, number of features."""

    eras: int
    rows_per_era: int
    n_features: int


SCALES: dict[str, Scale] = {
    # tests: seconds; 60 eras leave room for 5-fold era CV with an embargo
    "tiny": Scale(eras=60, rows_per_era=100, n_features=40),
    # the default demo: generate + build in a few seconds, LightGBM CV in ~a minute
    "small": Scale(eras=400, rows_per_era=500, n_features=120),
    # Numerai-sized (v5.2): ~6M rows, 2,748 features; written era by era
    "full": Scale(eras=1200, rows_per_era=5000, n_features=2748),
}

TARGET_NAMES = (
    "agnes alpha bravo caroline charlie claudia cyrusd delta echo ender jasper jeremy "
    "ralph rowan sam teager2b tyler victor waldo xerxes"
).split()
HORIZONS = (20, 60)
MAIN_TARGET = "target_ender_20"
SEVEN_BIN_NAMES = ("alpha", "bravo", "charlie")
LATE_NAMES = ("agnes", "claudia", "rowan")  # auxiliary targets that start later (NaN before)
BENCHMARK_TARGETS = ("cyrusd", "teager2b", "ender", "jasper")
FEATURE_GROUPS = (
    "intelligence wisdom charisma dexterity strength constitution agility serenity".split()
)
RAW_FILES = (
    "features.json",
    "train.parquet",
    "validation.parquet",
    "live.parquet",
    "train_benchmark_models.parquet",
    "validation_benchmark_models.parquet",
    "live_benchmark_models.parquet",
    "meta_model.parquet",
)
META_MODEL_COL = "numerai_meta_model"
SYNTHETIC_KEY = "nx_synthetic"  # parquet schema metadata key / features.json entry

# Where the eras of Numerai's v5.2 files fall, as fractions of ~1,198 eras.
_TRAIN_SHARE = 574 / 1198
_BENCHMARK_START_SHARE = 157 / 1198
_TEST_ERA_SHARE = 0.01  # last validation eras: data_type "test", no targets yet

N_FACTORS = 12
# Signal: persistent exposure of the main target to each factor, drift around it.
_SIGNAL_FACTORS = 6
_MEAN_EXPOSURE = 0.014
_DRIFT_SD = 0.02
_DRIFT_PHI = 0.9
_NONLINEAR = 0.012
_BENCHMARK_NOISE = 0.6
_ROW_GROUP_ROWS = 10_000  # readers hold a few row groups in flight: keep them small

_FIVE_BIN_SHARES = np.array([0.05, 0.20, 0.50, 0.20, 0.05])
_FIVE_BIN_VALUES = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
_SEVEN_BIN_SHARES = np.array([0.05, 0.10, 0.20, 0.30, 0.20, 0.10, 0.05])
_SEVEN_BIN_VALUES = np.arange(7) / 6

_WORDS_A = (
    "abating ablest acerb adrift aerial agile airy amber ample arid ashen astral azure "
    "balmy bitter bleak blithe bold brisk broad calm candid chalky civic clammy coarse "
    "coy crisp dapper deft dense dire dour dusky eager eerie elfin ebon fabled feral "
    "fickle fiery florid frail frank gaudy giddy glum grave hardy hazy hoary humid"
).split()
_WORDS_B = (
    "unadaptable observational untrained canonical rhythmic jovian lunar doric nomadic "
    "ochre pastoral runic sylvan tidal umbral vocal woven zonal boreal coastal feudal "
    "gothic hybrid ionic kinetic lyric modal nodal optic plural quartic radial sonic"
).split()
_WORDS_C = (
    "balaamite floatation cairn dervish ember fjord gable heron isthmus jetty kestrel "
    "lagoon marten nebula osprey parapet quarry rampart sextant thicket upland vesper "
    "wharf yarrow zephyr bastion cobble dingle estuary fennel"
).split()


MAX_FEATURES = len(_WORDS_A) * len(_WORDS_B) * len(_WORDS_C)  # distinct feature names


def target_columns() -> list[str]:
    """``target`` then ``target_<name>_<horizon>`` for every name and horizon."""
    return ["target"] + [f"target_{name}_{h}" for name in TARGET_NAMES for h in HORIZONS]


def parse_version(data_version: str) -> tuple[int, int]:
    """``"v5.2"`` -> ``(5, 2)``; a ConfigError for anything else."""
    match = re.fullmatch(r"v(\d+)\.(\d+)", data_version)
    if match is None:
        raise ConfigError(
            f"--data-version {data_version!r} is not a Numerai data version; use e.g. v5.2 or v5.3"
        )
    return int(match[1]), int(match[2])


def benchmark_prefix(data_version: str) -> str:
    """``v52_`` for v5.2, ``v53_`` for v5.3."""
    major, minor = parse_version(data_version)
    return f"v{major}{minor}_"


def benchmark_columns(data_version: str) -> list[str]:
    prefix = benchmark_prefix(data_version)
    return [f"{prefix}lgbm_{name}{h}" for name in BENCHMARK_TARGETS for h in HORIZONS]


def feature_names(n_features: int) -> list[str]:
    """Numerai-like names (``feature_<word>_<word>_<word>``), stable for a given count."""
    combos = len(_WORDS_A) * len(_WORDS_B) * len(_WORDS_C)
    picks = np.random.default_rng(20240101).permutation(combos)[:n_features]
    names = []
    for p in picks.tolist():
        a, rest = divmod(p, len(_WORDS_B) * len(_WORDS_C))
        b, c = divmod(rest, len(_WORDS_C))
        names.append(f"feature_{_WORDS_A[a]}_{_WORDS_B[b]}_{_WORDS_C[c]}")
    return names


def resolve_scale(
    scale: str, eras: int | None, rows_per_era: int | None, n_features: int | None
) -> Scale:
    """The named scale with explicit overrides applied; validated."""
    if scale not in SCALES:
        raise ConfigError(
            f"unknown --scale {scale!r}; use one of {', '.join(SCALES)} "
            "(or override sizes with --eras/--rows-per-era/--features)"
        )
    base = SCALES[scale]
    resolved = Scale(
        eras=base.eras if eras is None else eras,
        rows_per_era=base.rows_per_era if rows_per_era is None else rows_per_era,
        n_features=base.n_features if n_features is None else n_features,
    )
    for option, value, minimum in (
        ("--eras", resolved.eras, 8),
        ("--rows-per-era", resolved.rows_per_era, 20),
        ("--features", resolved.n_features, 10),
    ):
        if value < minimum:
            raise ConfigError(f"{option} must be at least {minimum} (got {value}); raise it")
    if resolved.eras > 9998:
        raise ConfigError(f"--eras must be at most 9998 (got {resolved.eras}): eras are 4 digits")
    if resolved.n_features > MAX_FEATURES:
        raise ConfigError(
            f"--features must be at most {MAX_FEATURES:,} (got {resolved.n_features:,}): "
            "there are no more distinct feature names; lower it"
        )
    return resolved


def check_seed(seed: int) -> None:
    """Seeds are non-negative integers below 2**63."""
    if not 0 <= seed < 2**63:
        raise ConfigError(f"--seed must be in [0, 2**63) (got {seed}); pick another seed")


def generation_memory(size: Scale) -> int:
    """Peak bytes :func:`generate_raw` needs for ``size``, over the ~0.25 GB of imports.

    Per era (the largest one: mean rows + 10%), each feature holds float32 noise, the
    float32 view of its factor and a temporary, int64 sort order for the binning and
    the int8 bins: about 21 bytes a value, plus ~2 KB a row of targets and benchmarks;
    and the "world": one byte per era and feature. Measured peak RSS: 1.25 GB for 8
    eras of ~5,000 rows x 10,000 features (estimate 1.44 GB), 0.37 GB for 2,000
    features (estimate 0.51 GB).
    """
    rows = math.ceil(size.rows_per_era * 1.1) + 1
    per_era = rows * (size.n_features * 21 + 2048)
    world = (size.eras + 1) * (size.n_features + 41 * N_FACTORS * 8)
    return per_era + world + 256 * 1024**2


def check_generation_fits(size: Scale) -> None:
    """Refuse sizes whose generation cannot fit in the memory available now."""
    check_memory(
        generation_memory(size),
        what=f"generating synthetic eras of up to {math.ceil(size.rows_per_era * 1.1):,} rows "
        f"x {size.n_features:,} features",
        fix="lower --rows-per-era or --features",
    )


def synthetic_spec(size: Scale, seed: int, data_version: str) -> dict:
    """What :func:`generate_raw` records in every file it writes."""
    return {
        "generator": "nx build-data --synthetic",
        "nx_version": __version__,
        "data_version": data_version,
        "seed": seed,
        "eras": size.eras,
        "rows_per_era": size.rows_per_era,
        "n_features": size.n_features,
    }


def synthetic_marker(path: Path) -> dict | None:
    """The generator settings recorded in a raw file nx generated; None for any other
    file (Numerai's, one made by hand, or one that cannot be read)."""
    path = Path(path)
    try:
        if path.suffix == ".json":
            marker = json.loads(path.read_text()).get(SYNTHETIC_KEY)
        else:
            metadata = pq.read_schema(path).metadata or {}
            raw = metadata.get(SYNTHETIC_KEY.encode())
            marker = json.loads(raw) if raw is not None else None
    except (OSError, ValueError, AttributeError, pa.ArrowException):
        return None
    return marker if isinstance(marker, dict) else None


@dataclass(frozen=True)
class _EraLayout:
    n_eras: int
    n_train: int
    n_test: int
    benchmark_start: int  # first era index (0-based) with benchmark predictions

    @classmethod
    def of(cls, n_eras: int) -> _EraLayout:
        n_test = max(1, round(n_eras * _TEST_ERA_SHARE))
        n_train = max(2, round(n_eras * _TRAIN_SHARE))
        n_train = min(n_train, n_eras - n_test - 2)
        return cls(n_eras, n_train, n_test, round(n_eras * _BENCHMARK_START_SHARE))

    def data_type(self, era_index: int) -> str:
        if era_index < self.n_train:
            return "train"
        if era_index >= self.n_eras - self.n_test:
            return "test"
        return "validation"


class _World:
    """Everything drawn once from the seed: loadings, exposures, drift, feature sets."""

    def __init__(self, scale: Scale, seed: int, data_version: str) -> None:
        rng = np.random.default_rng([seed, 0])
        n_feat, n_eras = scale.n_features, scale.eras
        self.layout = _EraLayout.of(n_eras)
        self.seed = seed
        self.features = feature_names(n_feat)
        self.targets = target_columns()
        self.benchmarks = benchmark_columns(data_version)
        self.rows = np.maximum(
            20, np.round(scale.rows_per_era * rng.uniform(0.9, 1.1, n_eras + 1))
        ).astype(int)

        self.factor_of = rng.integers(0, N_FACTORS, n_feat)
        self.factor_of[:N_FACTORS] = np.arange(min(N_FACTORS, n_feat))
        self.loading = rng.uniform(0.25, 0.75, n_feat).astype(np.float32)

        # Mean exposures: the first _SIGNAL_FACTORS factors carry persistent signal.
        mean = np.zeros(N_FACTORS)
        signs = rng.choice([-1.0, 1.0], _SIGNAL_FACTORS)
        mean[:_SIGNAL_FACTORS] = signs * _MEAN_EXPOSURE * rng.uniform(0.6, 1.4, _SIGNAL_FACTORS)
        main = mean[None, :] + self._drift(rng, n_eras + 1)

        # Auxiliary targets share part of the main target's exposures.
        n_targets = len(self.targets)
        self.exposure = np.empty((n_targets, n_eras + 1, N_FACTORS))
        self.mean_exposure = np.empty((n_targets, N_FACTORS))
        for t, name in enumerate(self.targets):
            if name in ("target", MAIN_TARGET):
                self.exposure[t], self.mean_exposure[t] = main, mean
                continue
            rho = rng.uniform(0.35, 0.9)
            own_mean = rng.normal(0, _MEAN_EXPOSURE, N_FACTORS)
            own = own_mean[None, :] + self._drift(rng, n_eras + 1)
            self.exposure[t] = rho * main + math.sqrt(1 - rho**2) * own
            self.mean_exposure[t] = rho * mean + math.sqrt(1 - rho**2) * own_mean
        self.nonlinear_sign = rng.choice([-1.0, 1.0], n_targets)
        self.nonlinear_sign[self.targets.index(MAIN_TARGET)] = self.nonlinear_sign[0]

        # Which targets are 7-bin, start late, or resolve late (60-day horizon).
        self.seven_bin = np.array([_target_name(c) in SEVEN_BIN_NAMES for c in self.targets])
        self.late_start = np.array([_target_name(c) in LATE_NAMES for c in self.targets])
        self.horizon60 = np.array([c.endswith("_60") for c in self.targets])

        # Benchmarks: linear in the binned features along a target's mean exposure.
        self.benchmark_weights = np.empty((len(self.benchmarks), n_feat), dtype=np.float32)
        for b, col in enumerate(self.benchmarks):
            name, horizon = col.split("_lgbm_")[1][:-2], int(col[-2:])
            t = self.targets.index(f"target_{name}_{horizon}")
            w = self.mean_exposure[t][self.factor_of] * self.loading
            self.benchmark_weights[b] = w * rng.uniform(0.5, 1.5, n_feat)

        # Missing features (all 2s): "new" features absent from early eras, plus rare gaps.
        late = rng.random(n_feat) < 0.06
        first_era = np.where(late, rng.integers(0, max(1, n_eras // 3), n_feat), 0)
        self.missing = np.arange(n_eras + 1)[:, None] < first_era[None, :]
        self.missing |= rng.random((n_eras + 1, n_feat)) < 0.002
        self.missing[n_eras] = False  # live era is complete

        self.feature_sets = self._feature_sets(rng, data_version)

    @staticmethod
    def _drift(rng: np.random.Generator, n: int) -> np.ndarray:
        shocks = rng.normal(0, _DRIFT_SD * math.sqrt(1 - _DRIFT_PHI**2), (n, N_FACTORS))
        path = np.empty_like(shocks)
        path[0] = rng.normal(0, _DRIFT_SD, N_FACTORS)
        for i in range(1, n):
            path[i] = _DRIFT_PHI * path[i - 1] + shocks[i]
        return path

    def _feature_sets(self, rng: np.random.Generator, data_version: str) -> dict[str, list[str]]:
        n_feat = len(self.features)
        n_small = min(42, max(8, n_feat // 4))
        n_medium = min(n_feat, max(2 * n_small, round(n_feat * 780 / 2748)))
        # small: the strongest views of the signal factors, then the rest by loading
        signal = self.factor_of < _SIGNAL_FACTORS
        order = np.lexsort((-self.loading, ~signal))
        small_idx = np.sort(order[:n_small])
        rest = np.setdiff1d(np.arange(n_feat), small_idx)
        medium_idx = np.sort(
            np.concatenate([small_idx, rng.choice(rest, n_medium - n_small, replace=False)])
        )
        sets = {
            "small": [self.features[i] for i in small_idx],
            "medium": [self.features[i] for i in medium_idx],
            "all": list(self.features),
        }
        groups = np.array_split(np.arange(n_feat), len(FEATURE_GROUPS))
        for name, idx in zip(FEATURE_GROUPS, groups, strict=True):
            sets[name] = [self.features[i] for i in idx]
        if parse_version(data_version) >= (5, 3):
            n_quantum = max(1, round(n_feat * 807 / 2748))
            quantum = np.sort(rng.choice(n_feat, n_quantum, replace=False))
            sets["quantum"] = [self.features[i] for i in quantum]
        return sets

    def era(self, index: int) -> str:
        return f"{index + 1:04d}"

    def draw_era(self, index: int) -> _EraData:
        """Rows of one era (index ``n_eras`` is the live era)."""
        rng = np.random.default_rng([self.seed, 1, index])
        n = int(self.rows[index])
        latent = rng.standard_normal((N_FACTORS, n), dtype=np.float32)
        noise = rng.standard_normal((len(self.features), n), dtype=np.float32)
        raw = self.loading[:, None] * latent[self.factor_of]
        raw += np.sqrt(1 - self.loading**2)[:, None] * noise
        features = _equal_frequency_bins(raw)
        features[self.missing[index]] = 2

        is_live = index == self.layout.n_eras
        data_type = "live" if is_live else self.layout.data_type(index)
        targets = None
        if data_type in ("train", "validation"):
            targets = self._targets(rng, index, latent)

        bench = None
        if index >= self.layout.benchmark_start:
            centered = features.astype(np.float32) - 2
            linear = self.benchmark_weights @ centered
            scale = linear.std(axis=1, keepdims=True) + 1e-9
            linear += _BENCHMARK_NOISE * scale * rng.standard_normal(linear.shape)
            bench = _rank_pct(linear)
        meta = None
        if bench is not None and data_type in ("validation", "test", "live"):
            blend = bench.mean(axis=0) + 0.15 * rng.standard_normal(n)
            meta = _rank_pct(blend[None, :])[0]
        return _EraData(
            ids=_random_ids(rng, n),
            era=self.era(index),
            data_type=data_type,
            features=features,
            targets=targets,
            benchmarks=bench,
            meta=meta,
        )

    def _targets(self, rng: np.random.Generator, index: int, latent: np.ndarray) -> np.ndarray:
        n = latent.shape[1]
        z = latent.astype(np.float64)
        nonlinear = _NONLINEAR * (z[0] * z[1] + np.abs(z[2]) - math.sqrt(2 / math.pi))
        signal = self.exposure[:, index, :] @ z + self.nonlinear_sign[:, None] * nonlinear
        common = rng.standard_normal(n)
        own = rng.standard_normal((len(self.targets), n))
        continuous = signal + 0.6 * common + 0.8 * own
        continuous[0] = continuous[self.targets.index(MAIN_TARGET)]
        out = np.empty((len(self.targets), n), dtype=np.float32)
        for t in range(len(self.targets)):
            if self.seven_bin[t]:
                out[t] = _quantile_bins(continuous[t], _SEVEN_BIN_SHARES, _SEVEN_BIN_VALUES)
            else:
                out[t] = _quantile_bins(continuous[t], _FIVE_BIN_SHARES, _FIVE_BIN_VALUES)
        out[0] = out[self.targets.index(MAIN_TARGET)]
        layout = self.layout
        if index < layout.n_eras // 5:
            out[self.late_start] = np.nan
        last_with_targets = layout.n_eras - layout.n_test - 1
        if index > last_with_targets - 3:  # 60-day targets resolve a few eras later
            out[self.horizon60] = np.nan
        # sparse gaps in a couple of auxiliary targets
        gaps = rng.random(n) < 0.01
        out[self.targets.index("target_sam_20"), gaps] = np.nan
        return out


@dataclass
class _EraData:
    ids: np.ndarray
    era: str
    data_type: str
    features: np.ndarray  # (n_features, n) int8
    targets: np.ndarray | None  # (n_targets, n) float32, None = all NaN
    benchmarks: np.ndarray | None  # (n_benchmarks, n) float32, None = no rows
    meta: np.ndarray | None


def _target_name(column: str) -> str:
    parts = column.split("_")
    return parts[1] if len(parts) == 3 else ""


def _equal_frequency_bins(values: np.ndarray) -> np.ndarray:
    """Per row of ``values`` (one feature), bins 0..4 of equal frequency by rank."""
    n = values.shape[1]
    order = np.argsort(values, axis=1, kind="stable")
    bin_of_rank = ((np.arange(n) * 5) // n).astype(np.int8)
    out = np.empty(values.shape, dtype=np.int8)
    np.put_along_axis(out, order, np.broadcast_to(bin_of_rank, values.shape), axis=1)
    return out


def _quantile_bins(values: np.ndarray, shares: np.ndarray, levels: np.ndarray) -> np.ndarray:
    n = values.size
    edges = np.round(np.cumsum(shares) * n).astype(int)
    bin_of_rank = np.searchsorted(edges, np.arange(n), side="right")
    out = np.empty(n, dtype=np.float32)
    out[np.argsort(values, kind="stable")] = levels[bin_of_rank]
    return out


def _rank_pct(values: np.ndarray) -> np.ndarray:
    """Per row: ordinal rank / n, in (0, 1] (float32)."""
    n = values.shape[1]
    out = np.empty(values.shape, dtype=np.float32)
    ranks = (np.arange(1, n + 1) / n).astype(np.float32)
    np.put_along_axis(
        out, np.argsort(values, axis=1, kind="stable"), np.broadcast_to(ranks, out.shape), axis=1
    )
    return out


def _random_ids(rng: np.random.Generator, n: int) -> pa.Array:
    """Numerai-like ids: ``n`` + 15 lowercase hex digits."""
    raw = rng.integers(0, 2**60, n, dtype=np.uint64).astype(">u8")
    chars = np.frombuffer(raw.tobytes().hex().encode(), dtype="S1").reshape(n, 16).copy()
    chars[:, 0] = b"n"
    return pa.array(chars.view("S16").ravel().astype(str))


def _pandas_metadata(schema: pa.Schema) -> bytes:
    """The ``pandas`` schema metadata that makes ``pd.read_parquet`` index by ``id``."""
    kinds = {pa.int8(): "int8", pa.float32(): "float32", pa.string(): "object"}
    columns = [
        {
            "name": field.name,
            "field_name": field.name,
            "pandas_type": "unicode" if field.type == pa.string() else kinds[field.type],
            "numpy_type": kinds[field.type],
            "metadata": None,
        }
        for field in schema
    ]
    document = {
        "index_columns": ["id"],
        "column_indexes": [],
        "columns": columns,
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": "2.2.0",
    }
    return json.dumps(document).encode()


class _BufferedWriter:
    """Parquet writer that groups small per-era tables into larger row groups."""

    def __init__(self, path: Path, fields: Iterable[pa.Field], marker: dict) -> None:
        schema = pa.schema(list(fields))
        self.schema = schema.with_metadata(
            {b"pandas": _pandas_metadata(schema), SYNTHETIC_KEY.encode(): json.dumps(marker)}
        )
        self._writer = pq.ParquetWriter(path, self.schema, compression="snappy")
        self._pending: list[pa.Table] = []
        self._rows = 0

    def write(self, columns: list[pa.Array]) -> None:
        table = pa.Table.from_arrays(columns, schema=self.schema)
        self._pending.append(table)
        self._rows += table.num_rows
        if self._rows >= _ROW_GROUP_ROWS:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            table = pa.concat_tables(self._pending)
            self._writer.write_table(table, row_group_size=max(table.num_rows, 1))
            self._pending, self._rows = [], 0

    def close(self) -> None:
        self.flush()
        self._writer.close()


def generate_raw(
    out_dir: Path,
    *,
    scale: str = "small",
    eras: int | None = None,
    rows_per_era: int | None = None,
    n_features: int | None = None,
    seed: int = 42,
    data_version: str = "v5.2",
    progress: Progress = NO_PROGRESS,
) -> list[Path]:
    """Write Numerai's raw files for one data version into ``out_dir``.

    ``out_dir`` is ``<data_dir>/<data_version>/``. Eras are generated one at a time
    and appended to the parquet files, so memory stays bounded at any scale; sizes
    whose eras cannot fit in the memory available are refused first. Every file is
    written under a temporary name and renamed at the end, and carries the
    :func:`synthetic_spec` marker.

    Example::

        generate_raw(Path("data/v5.2"), scale="tiny", seed=1)
    """
    size = resolve_scale(scale, eras, rows_per_era, n_features)
    check_seed(seed)
    check_generation_fits(size)
    marker = synthetic_spec(size, seed, data_version)
    world = _World(size, seed, data_version)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    id_field = pa.field("id", pa.string())
    era_field = pa.field("era", pa.string())
    main_fields = [
        id_field,
        era_field,
        pa.field("data_type", pa.string()),
        *(pa.field(f, pa.int8()) for f in world.features),
        *(pa.field(t, pa.float32()) for t in world.targets),
    ]
    bench_fields = [id_field, era_field, *(pa.field(b, pa.float32()) for b in world.benchmarks)]
    meta_fields = [id_field, era_field, pa.field(META_MODEL_COL, pa.float32())]
    layouts = {
        "train.parquet": main_fields,
        "validation.parquet": main_fields,
        "live.parquet": main_fields,
        "train_benchmark_models.parquet": bench_fields,
        "validation_benchmark_models.parquet": bench_fields,
        "live_benchmark_models.parquet": bench_fields,
        "meta_model.parquet": meta_fields,
    }
    n_targets = len(world.targets)
    with ExitStack() as stack:
        temps = {name: stack.enter_context(atomic_output(out_dir / name)) for name in RAW_FILES}
        writers: dict[str, _BufferedWriter] = {}
        try:
            for name, fields in layouts.items():
                writers[name] = _BufferedWriter(temps[name], fields, marker)
            total = world.layout.n_eras + 1
            with progress.task("Generating synthetic eras", total=total) as task:
                for index in range(total):
                    era = world.draw_era(index)
                    part = {"train": "train", "live": "live"}.get(era.data_type, "validation")
                    n = len(era.ids)
                    era_col = pa.array([era.era] * n, pa.string())
                    targets = era.targets
                    if targets is None:
                        targets = np.full((n_targets, n), np.nan, dtype=np.float32)
                    writers[f"{part}.parquet"].write(
                        [
                            era.ids,
                            era_col,
                            pa.array([era.data_type] * n, pa.string()),
                            *(pa.array(col) for col in era.features),
                            *(pa.array(col) for col in targets),
                        ]
                    )
                    if era.benchmarks is not None:
                        writers[f"{part}_benchmark_models.parquet"].write(
                            [era.ids, era_col, *(pa.array(col) for col in era.benchmarks)]
                        )
                    if era.meta is not None and part == "validation":
                        writers["meta_model.parquet"].write([era.ids, era_col, pa.array(era.meta)])
                    task.advance()
        finally:
            for writer in writers.values():
                writer.close()
        document = {
            "feature_sets": world.feature_sets,
            "targets": world.targets,
            SYNTHETIC_KEY: marker,
        }
        temps["features.json"].write_text(json.dumps(document, indent=2) + "\n")
    return [out_dir / name for name in RAW_FILES]
