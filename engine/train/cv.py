"""Era-wise cross-validation folds, as Numerai's reference framework defines them.

The unique eras are sorted numerically; with ``n`` eras and ``k`` splits the
fold size is ``n // k`` and the last fold also takes the remainder. Fold ``i``
validates on its block ``eras[start:end]``:

- ``expanding``: train on ``eras[:max(0, start - embargo)]``;
- ``blocked``: train on every era except ``eras[start - embargo : end + embargo]``.

The embargo counts positions in the unique-era list, not era numbers. A fold
whose train list is empty (fold 0 when expanding) is skipped; a non-empty train
list shorter than ``min_train_size`` eras is an error. Same eras in, same folds out.

Example::

    >>> [f.val_eras for f in era_folds(["0001", "0002", "0003", "0004"], n_splits=2, embargo=0)]
    [['0003', '0004']]
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from nx.engine.eras import era_sort_key
from nx.engine.errors import ConfigError

if TYPE_CHECKING:
    from nx.engine.train.config import TrainConfig


@dataclass(frozen=True)
class Fold:
    """One CV fold: ``index`` is its position among all ``n_splits`` blocks."""

    index: int
    train_eras: list[str]
    val_eras: list[str]


def sorted_unique_eras(eras: Iterable[object]) -> list[str]:
    return sorted({str(era) for era in eras}, key=era_sort_key)


def era_folds(
    eras: Iterable[object],
    n_splits: int = 5,
    embargo: int = 13,
    mode: Literal["expanding", "blocked"] = "expanding",
    min_train_size: int = 0,
) -> list[Fold]:
    """The folds to train, in order; folds with an empty train list are left out.

    Raises :class:`ConfigError` when ``n_splits`` exceeds the number of eras or a
    train list is shorter than ``min_train_size``.
    """
    unique = sorted_unique_eras(eras)
    if n_splits < 1:
        raise ConfigError(f"training.cv.n_splits: must be at least 1, got {n_splits}")
    if embargo < 0:
        raise ConfigError(f"training.cv.embargo: must be >= 0, got {embargo}")
    if mode not in ("expanding", "blocked"):
        raise ConfigError(f"training.cv.mode: must be 'expanding' or 'blocked', got {mode!r}")
    if n_splits > len(unique):
        raise ConfigError(
            f"training.cv.n_splits: {n_splits} is larger than the {len(unique)} eras in the "
            "data; lower n_splits"
        )
    size, remainder = divmod(len(unique), n_splits)
    folds: list[Fold] = []
    for index in range(n_splits):
        start = index * size
        end = start + size + (remainder if index == n_splits - 1 else 0)
        val = unique[start:end]
        if mode == "expanding":
            train = unique[: max(0, start - embargo)]
        else:
            train = unique[: max(0, start - embargo)] + unique[min(len(unique), end + embargo) :]
        if not train or not val:
            continue
        if len(train) < min_train_size:
            raise ConfigError(
                f"training.cv.min_train_size: fold {index} has only {len(train)} train eras "
                f"(< {min_train_size}); lower min_train_size, n_splits or the embargo"
            )
        folds.append(Fold(index=index, train_eras=train, val_eras=val))
    return folds


def folds_for(config: TrainConfig, eras: list[str]) -> list[Fold]:
    """The folds of ``config``'s CV settings over ``eras``; errors name the config file."""
    cv = config.training.cv
    try:
        return era_folds(eras, cv.n_splits, config.cv_embargo, cv.mode, cv.min_train_size)
    except ConfigError as error:
        raise ConfigError(f"{config.source}: {error}") from None
