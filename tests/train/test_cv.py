"""Era CV folds re-derived from the reference rules, written out independently."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nx.engine.errors import ConfigError
from nx.engine.train.cv import era_folds, sorted_unique_eras


def reference_folds(n_eras, n_splits, embargo, mode):
    """The reference rules, position by position: {fold index: (train positions, val positions)}."""
    size = n_eras // n_splits
    out = {}
    for i in range(n_splits):
        val = list(range(i * size, n_eras if i == n_splits - 1 else (i + 1) * size))
        if mode == "expanding":
            train = [p for p in range(n_eras) if p < i * size - embargo]
        else:
            lo, hi = i * size - embargo, val[-1] + 1 + embargo
            train = [p for p in range(n_eras) if p < lo or p >= hi]
        if train:
            out[i] = (train, val)
    return out


@settings(max_examples=50, deadline=None)
@given(
    n_eras=st.integers(1, 120),
    n_splits=st.integers(1, 12),
    embargo=st.integers(0, 20),
    mode=st.sampled_from(["expanding", "blocked"]),
)
def test_folds_match_reference_rules(n_eras, n_splits, embargo, mode):
    eras = [f"{e:04d}" for e in range(3, 3 + n_eras)]
    if n_splits > n_eras:
        with pytest.raises(ConfigError, match="n_splits"):
            era_folds(eras, n_splits, embargo, mode)
        return
    expected = reference_folds(n_eras, n_splits, embargo, mode)
    folds = era_folds(list(reversed(eras)) * 2, n_splits, embargo, mode)
    assert [f.index for f in folds] == sorted(expected)
    for fold in folds:
        train, val = expected[fold.index]
        assert fold.train_eras == [eras[p] for p in train]
        assert fold.val_eras == [eras[p] for p in val]
        assert not set(fold.train_eras) & set(fold.val_eras)


def test_expanding_example_with_embargo():
    eras = [f"{e:04d}" for e in range(1, 24)]  # 23 eras, 4 splits -> size 5, last fold 8
    folds = era_folds(eras, n_splits=4, embargo=2, mode="expanding")
    assert [f.index for f in folds] == [1, 2, 3]  # fold 0 has no train eras: skipped
    assert folds[0].train_eras == eras[:3] and folds[0].val_eras == eras[5:10]
    assert folds[-1].val_eras == eras[15:]  # the last fold takes the remainder
    assert folds[-1].train_eras == eras[:13]


def test_blocked_trains_on_both_sides():
    eras = [str(e) for e in range(1, 21)]
    folds = era_folds(eras, n_splits=4, embargo=1, mode="blocked")
    assert [f.index for f in folds] == [0, 1, 2, 3]
    assert folds[1].val_eras == eras[5:10]
    assert folds[1].train_eras == eras[:4] + eras[11:]


def test_eras_sort_numerically_not_as_text():
    assert sorted_unique_eras(["10", "9", "100", "9"]) == ["9", "10", "100"]
    folds = era_folds(["10", "2", "1", "20"], n_splits=2, embargo=0)
    assert folds[0].train_eras == ["1", "2"] and folds[0].val_eras == ["10", "20"]


def test_same_eras_same_folds():
    eras = [f"{e:04d}" for e in range(1, 50)]
    assert era_folds(eras, 5, 3) == era_folds(list(reversed(eras)), 5, 3)


def test_min_train_size_is_enforced():
    eras = [f"{e:04d}" for e in range(1, 21)]
    with pytest.raises(ConfigError, match="min_train_size"):
        era_folds(eras, n_splits=4, embargo=0, min_train_size=6)
    assert len(era_folds(eras, n_splits=4, embargo=0, min_train_size=5)) == 3
