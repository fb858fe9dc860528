"""The straightforward pandas pipeline that nx's training is checked (and benchmarked) against."""

from __future__ import annotations

from pathlib import Path

import lightgbm as lgb
import pandas as pd


def pandas_oof(
    data_dir: Path,
    features: list[str],
    params: dict,
    n_splits: int,
    embargo: int,
    max_train_samples: int | None = None,
    seed: int = 1337,
) -> pd.DataFrame:
    """Read full.parquet into pandas (float features), slice each expanding fold, fit LightGBM.

    Folds follow the reference rules written out directly; returns the OOF rows
    (id, era, target, prediction, cv_fold) in fold order.
    """
    full = pd.read_parquet(Path(data_dir) / "v5.2" / "full.parquet")
    full[features] = full[features].astype("float32")
    eras = sorted(full["era"].unique(), key=int)
    size = len(eras) // n_splits
    parts = []
    for i in range(n_splits):
        end = len(eras) if i == n_splits - 1 else (i + 1) * size
        val_eras, train_eras = eras[i * size : end], eras[: max(0, i * size - embargo)]
        if not train_eras:
            continue
        train = full[full["era"].isin(train_eras)]
        if max_train_samples and len(train) > max_train_samples:
            train = train.sample(n=max_train_samples, random_state=seed)
        model = lgb.LGBMRegressor(**params).fit(train[features], train["target"])
        del train
        val = full[full["era"].isin(val_eras)]
        fold = val[["id", "era", "target"]].copy()
        fold["prediction"] = model.predict(val[features])
        fold["cv_fold"] = i
        parts.append(fold)
    return pd.concat(parts)
