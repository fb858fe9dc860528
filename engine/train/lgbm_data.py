"""LightGBM datasets built from the stored (int8, possibly memory-mapped) feature matrix
in bounded memory, with the model LightGBM's defaults would train.

LightGBM builds a dataset in two steps: bin boundaries from a sample of rows
(``bin_construct_sample_cnt`` = 200,000 by default, handed over as one float64
array per column: about 4.4 GB at 2,748 features), then every row pushed and
binned. Here:

- **Rows** are pushed in float32 batches of about ``BATCH_BYTES`` from the stored
  matrix; a mapped matrix gives its pages back after each batch
  (:func:`~nx.engine.data.cache.release_pages`), so the fold never holds a float copy
  and never keeps the whole int8 matrix resident.
- **Bins** come from a small sample of LightGBM's own sample rows when that provably
  gives every column the same bin mapper as the full sample. For a column with a few
  integer values (Numerai's 0..4) LightGBM's mapper depends on the sample only through
  (a) the set of distinct values and whether NaN occurs, (b) whether each value's
  count reaches ``min_data_in_bin`` (a boundary is placed after a value once the count
  since the last boundary reaches it), (c) the pre-filter decision (can any split leave
  ``min_data_in_leaf * sample / rows`` on both sides), (d) the most frequent bin and
  the sparse-rate thresholds, and (e) feature bundling, which leaves every column alone
  when every pair that could share a bundle conflicts (both non-default) in more than
  ``sample / 10,000`` rows (see :func:`_no_bundles`). All of these are computed from
  value counts and conflict counts over both samples (the full sample is counted in row
  chunks, never materialised); the small sample is used only if every column agrees,
  else it doubles, and at the full size it is LightGBM's own sample. Float columns (extra
  inputs, float features) and parameters that change binning (categorical features,
  forced bins, ``zero_as_missing``, ``linear_tree``...) always take the full sample.
- **Column ranges.** LightGBM's 4-bit bins (columns with at most 16 bins) keep a push
  buffer as large as their data for the dataset's life (LightGBM 4.7, ``dense_bin.hpp``:
  ``buf_`` is only ``clear()``ed), so a dataset costs a byte per value; LightGBM's own
  copy of a column has no buffer. When the sample shows that LightGBM groups every
  column alone (except the sparse ones, kept in one range: :func:`column_ranges`), the
  dataset is built one column range at a time and each range joined to the first with
  ``Dataset.add_features_from`` (a copy), then freed: about 0.6 byte per value at the
  peak. Each range reads every row again (from the page cache, or the disk).

Training then builds histograms column-wise unless the parameters say otherwise
(:func:`histogram_params`), and the caller drops the booster's training state once
the trees are grown (:func:`trained_booster`).

``tests/sweep/test_bounded_lgbm.py`` checks the trees and predictions against
``lightgbm.train`` on a float matrix with LightGBM's defaults (and with each of its
two histogram layouts).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import numpy as np

from nx.engine.data.cache import release_pages
from nx.engine.resources import return_freed_memory

BATCH_BYTES = 32 * 2**20  # float32 rows pushed to LightGBM at a time
MIN_BATCH_ROWS = 1_024
SMALL_SAMPLE_ROWS = 4_096  # first try; doubles until every column agrees
# Rows read from the mapped matrix between page releases when the rows are spread out
# (a bin sample): each read row can map up to 64 KB of its neighbours (the kernel's
# fault-around), so 2,048 rows keep at most ~128 MB of the matrix resident.
COUNT_CHUNK_ROWS = 2_048
PROBE_ROWS = 8_192  # sample rows whose values are taken as the matrix's value set
COLUMN_PARTS = 8  # column ranges binned one after another (see lightgbm_dataset)
PARTS_MIN_VALUES = 2**26  # smaller datasets are built in one piece
SPARSE_THRESHOLDS = (0.7, 0.8)  # LightGBM's most-frequent-bin and sparse-bin cut-offs
SECOND_ROUND_RATE = 0.4  # LightGBM's dense_threshold: sparser columns are grouped together
# Parameters under which the small sample's equivalence is not established: full sample.
_BINNING_KEYS = (
    "categorical_feature",
    "categorical_column",
    "cat_feature",
    "categorical_features",
    "forcedbins_filename",
    "max_bin_by_feature",
    "linear_tree",
    "linear_trees",
)


# Parameters with one value per column: a dataset of a column range cannot take them.
_PER_FEATURE = (
    "monotone_constraints",
    "feature_contri",
    "forcedsplits_filename",
    "interaction_constraints",
    "cegb_penalty_feature_lazy",
    "cegb_penalty_feature_coupled",
)


def batch_rows(n_columns: int) -> int:
    return max(MIN_BATCH_ROWS, BATCH_BYTES // max(4 * n_columns, 1))


def _param(params: dict[str, Any], default: Any, *names: str) -> Any:
    for name in names:
        if name in params and params[name] is not None:
            return params[name]
    return default


def _small_sample_allowed(source, params: dict[str, Any]) -> bool:
    if source.extra is not None or source.features.dtype != np.int8:
        return False
    if any(params.get(key) not in (None, False, "", []) for key in _BINNING_KEYS):
        return False
    if _param(params, False, "zero_as_missing"):
        return False
    return bool(_param(params, True, "use_missing"))


def _value_counts(source, rows: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n_values x n_columns) counts of each int8 ``values`` over ``rows``, and NaN counts.

    NaN comes from the source's all-missing rule: such cells are counted as NaN, not as
    their stored value. Counted in row chunks: never more than a chunk in memory.
    """
    n_columns = source.features.shape[1]
    counts = np.zeros((len(values), n_columns), dtype=np.int64)
    nan = np.zeros(n_columns, dtype=np.int64)
    for start in range(0, len(rows), COUNT_CHUNK_ROWS):
        part = rows[start : start + COUNT_CHUNK_ROWS]
        block = source.features[part]
        missing = None
        if source.nan_mask is not None and source.era_codes is not None:
            missing = source.nan_mask[source.era_codes[part]]
            nan += missing.sum(axis=0)
        for i, value in enumerate(values):
            hit = block == value
            if missing is not None:
                hit &= ~missing
            counts[i] += hit.sum(axis=0)
        release_pages(source.features)  # the sample spans the matrix: keep no pages
    return counts, nan


def _mapper_facts(
    counts: np.ndarray, nan: np.ndarray, values: np.ndarray, params: dict[str, Any], n_rows: int
) -> tuple[np.ndarray, ...]:
    """Per column, what LightGBM's bin mapper depends on (see the module docstring)."""
    total = counts.sum(axis=0) + nan
    sample = int(total[0]) if len(total) else 0
    min_data_in_bin = int(_param(params, 3, "min_data_in_bin"))
    min_data_in_leaf = int(
        _param(params, 20, "min_data_in_leaf", "min_child_samples", "min_data_per_leaf")
    )
    pre_filter = bool(_param(params, True, "feature_pre_filter"))
    present = counts > 0
    enough = (counts >= min_data_in_bin) | ~present
    # bins in value order (0 has a bin of its own), NaN last
    bins = np.vstack([counts, nan[None, :]])
    if pre_filter:
        filter_cnt = int(min_data_in_leaf * sample / max(n_rows, 1))
        left = np.cumsum(bins, axis=0)[:-1]
        splittable = ((left >= filter_cnt) & (total - left >= filter_cnt)).any(axis=0)
    else:
        splittable = np.ones(bins.shape[1], dtype=bool)
    zero = np.flatnonzero(values == 0)
    most = np.argmax(bins, axis=0)
    rate = bins.max(axis=0) / np.maximum(total, 1)
    if len(zero):
        default = zero[0]
        most = np.where((most != default) & (rate < SPARSE_THRESHOLDS[0]), default, most)
        rate = bins[most, np.arange(bins.shape[1])] / np.maximum(total, 1)
    above = np.stack([rate >= t for t in SPARSE_THRESHOLDS])
    second_round = (1.0 - rate) < SECOND_ROUND_RATE
    return present, nan > 0, enough, splittable, most, above, second_round


def _no_bundles(
    source, sample_rows: np.ndarray, values: np.ndarray, facts: tuple[np.ndarray, ...]
) -> bool:
    """True when LightGBM's feature bundling (EFB) leaves every column of this sample alone.

    Two columns can share a bundle only if their non-default rates sum to at most
    ~1 and they are both non-default in at most ``sample / 10,000`` sampled rows; the
    columns sparser than ``SECOND_ROUND_RATE`` are grouped together, as one multi-value
    group when their first two conflict beyond that. So: every such pair must
    conflict more (counted here over the sample, in row chunks), and so must the first
    two sparse columns when there are several.
    """
    _, _, _, splittable, most, _, second_round = facts
    n_sample = len(sample_rows)
    max_conflict = n_sample // 10_000
    counts, nan = _value_counts(source, sample_rows, values)
    bins = np.vstack([counts, nan[None, :]])
    nondefault = 1.0 - bins[most, np.arange(bins.shape[1])] / max(n_sample, 1)
    used = np.flatnonzero(splittable)
    sparse = used[nondefault[used] <= 0.5 + 1e-3]
    if len(sparse) == 0:
        return True
    partners = used[nondefault[used] <= 1.0 + 1e-3 - nondefault[sparse].min()]
    most_is_nan = most == len(values)
    most_value = values[np.minimum(most, len(values) - 1)]
    conflicts = np.zeros((len(sparse), len(partners)), dtype=np.float64)
    for start in range(0, n_sample, COUNT_CHUNK_ROWS):
        part = sample_rows[start : start + COUNT_CHUNK_ROWS]
        block = source.features[part]
        off = (block != most_value) | most_is_nan  # non-default: not in the most frequent bin
        if source.nan_mask is not None and source.era_codes is not None:
            missing = source.nan_mask[source.era_codes[part]]
            off = np.where(missing, ~most_is_nan, off)
        conflicts += off[:, sparse].T.astype(np.float32) @ off[:, partners].astype(np.float32)
        release_pages(source.features)
    candidate = nondefault[sparse][:, None] + nondefault[partners][None, :] <= 1.0 + 1e-3
    candidate &= sparse[:, None] != partners[None, :]
    if (conflicts[candidate] <= max_conflict).any():
        return False
    grouped = used[second_round[used]]
    if len(grouped) >= 2:
        i = int(np.flatnonzero(sparse == grouped[0])[0])
        j = int(np.flatnonzero(partners == grouped[1])[0])
        return bool(conflicts[i, j] > max_conflict)
    return True


def _bundle_free_facts(
    source, rows: np.ndarray, sample_positions: np.ndarray, params: dict[str, Any]
) -> tuple[np.ndarray, tuple[np.ndarray, ...]] | None:
    """(values, mapper facts) of LightGBM's own bin sample when its bundling provably
    leaves every column alone (:func:`_no_bundles`); None when that is not established."""
    if not _small_sample_allowed(source, params):
        return None
    full_rows = rows[sample_positions]
    probe = full_rows[:PROBE_ROWS]
    values = np.unique(
        np.concatenate(
            [
                np.unique(source.features[probe[start : start + COUNT_CHUNK_ROWS]])
                for start in range(0, len(probe), COUNT_CHUNK_ROWS)
            ]
        )
    )
    release_pages(source.features)
    if len(values) > 16:  # not a few-valued matrix: equivalence not worth establishing
        return None
    full_counts, full_nan = _value_counts(source, full_rows, values)
    if (full_counts.sum(axis=0) + full_nan != len(full_rows)).any():
        return None  # a value outside the probe's set: let LightGBM sample as usual
    reference = _mapper_facts(full_counts, full_nan, values, params, len(rows))
    if not _no_bundles(source, full_rows, values, reference):
        return None  # bundling could depend on the sample
    return values, reference


def small_bin_sample(
    source,
    rows: np.ndarray,
    sample_positions: np.ndarray,
    params: dict[str, Any],
    proven: tuple[np.ndarray, tuple[np.ndarray, ...]] | None = None,
) -> np.ndarray | None:
    """Positions (into ``rows``) of a small bin sample equivalent to ``sample_positions``
    (LightGBM's own), or None when no smaller sample is provably equivalent.
    ``proven``: :func:`_bundle_free_facts` of the same arguments, when already known."""
    if len(sample_positions) <= SMALL_SAMPLE_ROWS:
        return None
    proven = proven or _bundle_free_facts(source, rows, sample_positions, params)
    if proven is None:
        return None
    values, reference = proven
    size = SMALL_SAMPLE_ROWS
    while size < len(sample_positions):
        pick = np.linspace(0, len(sample_positions) - 1, size).round().astype(np.int64)
        small_rows = rows[sample_positions[pick]]
        counts, nan = _value_counts(source, small_rows, values)
        facts = _mapper_facts(counts, nan, values, params, len(rows))
        same = all(np.array_equal(a, b) for a, b in zip(facts, reference, strict=True))
        if same and _no_bundles(source, small_rows, values, facts):
            return sample_positions[pick]
        size *= 2
    return None


def column_ranges(n_columns: int, facts: tuple[np.ndarray, ...]) -> list[tuple[int, int]]:
    """Contiguous column ranges, about ``COLUMN_PARTS`` of them, to bin one at a time.

    LightGBM (given a sample in which no two columns can share a bundle) puts every
    column in a group of its own, except the columns sparser than
    ``SECOND_ROUND_RATE``, which it groups together in column order: no range cuts
    through the span of those, so each range is grouped as in one dataset.
    """
    _, _, _, splittable, _, _, second_round = facts
    sparse = np.flatnonzero(second_round & splittable)
    step = max(1, -(-n_columns // COLUMN_PARTS))
    cuts = set(range(step, n_columns, step))
    if len(sparse) >= 2:
        cuts = {c for c in cuts if not sparse[0] < c <= sparse[-1]}
    bounds = [0, *sorted(cuts), n_columns]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


@contextmanager
def _quiet(*fragments: str):
    """Drop LightGBM's messages containing any of ``fragments``; others pass.

    Used for two warnings that would mislead here: any bin sample under 20% of the
    rows (this one is proven equivalent to LightGBM's own), and ``add_features_from``
    saying it cannot join raw data (nx keeps none: the rows come from the matrix).
    """
    import lightgbm.basic as basic

    logger = getattr(basic, "_LOGGER", None)
    info = getattr(basic, "_INFO_METHOD_NAME", "info")
    warning = getattr(basic, "_WARNING_METHOD_NAME", "warning")
    if logger is None:
        yield
        return

    class Filtered:
        def info(self, message: str) -> None:
            if not any(fragment in message for fragment in fragments):
                getattr(logger, info)(message)

        def warning(self, message: str) -> None:
            if not any(fragment in message for fragment in fragments):
                getattr(logger, warning)(message)

    basic.register_logger(Filtered())
    try:
        yield
    finally:
        basic.register_logger(logger, info_method_name=info, warning_method_name=warning)


def _part(source, first: int, last: int):
    """Columns ``first:last`` of a feature-only ``source`` (a view: nothing copied)."""
    return replace(
        source,
        features=source.features[:, first:last],
        feature_names=source.feature_names[first:last],
        nan_mask=None if source.nan_mask is None else source.nan_mask[:, first:last],
    )


def lightgbm_dataset(source, rows: np.ndarray, target: np.ndarray, train_params: dict[str, Any]):
    """A constructed ``lightgbm.Dataset`` of ``rows`` of ``source`` (see the module
    docstring): built in column ranges (:func:`column_ranges`) when LightGBM's grouping
    of the columns is proven to be the same, else in one piece."""
    import lightgbm

    positions = lightgbm.Dataset(np.empty((0, 1)), params=train_params)._create_sample_indices(
        total_nrow=len(rows)
    )
    proven = _bundle_free_facts(source, rows, positions, train_params)
    small = small_bin_sample(source, rows, positions, train_params, proven) if proven else None
    ranges = [(0, source.n_columns)]
    if (
        proven is not None
        and len(rows) * source.n_columns >= PARTS_MIN_VALUES
        and not any(train_params.get(key) for key in _per_feature_keys())
    ):
        ranges = column_ranges(source.n_columns, proven[1])
    if len(ranges) == 1:
        return _dataset(source, rows, target, train_params, small).construct()
    first, last = ranges[0]
    dataset = _dataset(_part(source, first, last), rows, target, train_params, small).construct()
    for first, last in ranges[1:]:
        part = _dataset(_part(source, first, last), rows, None, train_params, small).construct()
        with _quiet("raw data", "categorical features"):  # nx keeps no raw data
            dataset.add_features_from(part)
        del part
        return_freed_memory()
    return dataset


def _per_feature_keys() -> set[str]:
    """Parameters that list one value per column (and their aliases)."""
    from lightgbm.basic import _ConfigAliases

    return _ConfigAliases.get(*_PER_FEATURE)


def _dataset(source, rows: np.ndarray, target, train_params: dict[str, Any], small):
    """One ``lightgbm.Dataset`` (not yet constructed) of ``rows`` of ``source``, binned
    from the sample positions ``small`` (None: LightGBM's own sample)."""
    import lightgbm

    # a column range's rows still span the whole stored row: size batches by that
    stored = source.features.strides[0] // max(source.features.itemsize, 1)
    step = batch_rows(max(source.n_columns, stored))

    class RowSequence(lightgbm.Sequence):
        """The fold's rows, handed to LightGBM in float32 batches."""

        batch_size = step

        def __len__(self) -> int:
            return len(rows)

        def __getitem__(self, index):
            if isinstance(index, slice):
                block = source.take(rows[index])
                release_pages(source.features)
                return block
            return source.take(rows[[index]], np.float64)[0]

    class BoundedDataset(lightgbm.Dataset):
        """LightGBM's Sequence path with a lean (and, when equivalent, small) bin sample."""

        def _Dataset__sample(self, *, seqs, total_nrow):
            positions = self._create_sample_indices(total_nrow=total_nrow)
            if small is not None:
                positions = small
            index = np.arange(len(positions), dtype=np.int32)
            values, kept = [], []
            for column in source.sample_columns(rows[positions]):
                keep = (np.abs(column) > lightgbm.basic.ZERO_THRESHOLD) | np.isnan(column)
                values.append(column[keep])
                kept.append(index[keep])
            release_pages(source.features)
            return values, kept

        def _init_from_sample(self, sample_data, sample_indices, sample_cnt, total_nrow):
            # LightGBM's matrix path builds the bins with every parameter; its Sequence
            # path passes only get_params()'s dataset keys, so min_data_in_leaf falls
            # back to 20 there and feature_pre_filter keeps features the matrix path
            # drops (another model whenever min_data_in_leaf is set). Build as the
            # matrix path does, so nx trains the model LGBMRegressor.fit trains.
            self.get_params = lambda: dict(self.params or {})
            try:
                if small is None:
                    return super()._init_from_sample(
                        sample_data, sample_indices, sample_cnt, total_nrow
                    )
                with _quiet("bin_construct_sample_cnt"):
                    return super()._init_from_sample(
                        sample_data, sample_indices, len(small), total_nrow
                    )
            finally:
                del self.get_params
                # LightGBM has its bins; the caller keeps these lists alive while every
                # row is pushed (about 12 bytes a sampled non-zero value: 1 GB for
                # 32,768 rows of 2,748 columns): free them now.
                sample_data.clear()
                sample_indices.clear()
                return_freed_memory()

    return BoundedDataset(
        RowSequence(),
        label=target,
        feature_name=source.columns,
        params=train_params,
        free_raw_data=True,
    )


def histogram_params(train_params: dict[str, Any]) -> dict[str, Any]:
    """``train_params`` with ``force_col_wise`` when neither histogram layout is named.

    Left alone, LightGBM picks row-wise or column-wise histograms by timing both on
    the dataset, and to time the row-wise one it first builds a row-wise copy of every
    binned value (one byte each: as large as the binned dataset itself, for as long as
    it keeps that layout). Column-wise needs no copy. Either layout is LightGBM's
    default model: each bin's gradient sums are added in the same row order, so with
    one thread the trees are identical (``tests/sweep/test_bounded_lgbm.py``). With
    several threads the row-wise layout sums blocks of rows per thread and then adds
    the blocks, so its sums can round differently: the same difference LightGBM's own
    timing-based choice makes between runs and machines.
    An explicit ``force_row_wise`` or ``force_col_wise`` (true or false) is kept.
    For CPU training only (a GPU device builds histograms of its own).
    """
    if any(key in train_params for key in ("force_col_wise", "force_row_wise")):
        return train_params
    return {**train_params, "force_col_wise": True}


def trained_booster(booster):
    """A booster of the same trees without the training state of ``booster``.

    After training, a ``lightgbm.Booster`` still holds per-row training buffers
    (gradients, scores, row partitions, and with row-wise histograms a row-wise copy
    of the binned data) until it is freed, i.e. while the fold predicts and, for the
    final model, until it is saved. The copy is read back from LightGBM's model text,
    which writes every threshold and leaf value exactly (17 significant digits): the
    trees and predictions are the same, and the same as a saved model's.
    """
    import lightgbm

    text = booster.model_to_string()
    booster.free_dataset()
    del booster
    return lightgbm.Booster(model_str=text)
