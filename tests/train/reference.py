"""Plain pandas pipelines that nx's training is checked (and benchmarked) against.

``pandas_oof`` is the straightforward loop (features only). ``reference_oof`` follows
the rules of Numerai's reference framework (numerai/example-scripts,
``agents/code/modeling``) step by step from a raw config mapping, written here from
those rules: pandas reads, benchmark models joined on an ``id`` index, x_groups
normalized (features, era, benchmark_models always there), X of those columns, rows
sampled with ``default_rng(seed).choice``, the target transform computed from X,
and a LightGBM wrapper that trains on the feature columns of X only.
"""

from __future__ import annotations

import json
from pathlib import Path

import lightgbm as lgb
import numpy as np
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
            pick = np.random.default_rng(seed).choice(len(train), max_train_samples, replace=False)
            train = train.iloc[pick]
        model = lgb.LGBMRegressor(**params).fit(train[features], train["target"])
        del train
        val = full[full["era"].isin(val_eras)]
        fold = val[["id", "era", "target"]].copy()
        fold["prediction"] = model.predict(val[features])
        fold["cv_fold"] = i
        parts.append(fold)
    return pd.concat(parts)


REQUIRED_GROUPS = ("features", "era", "benchmark_models")


def _groups(raw: list[str] | None) -> list[str]:
    out: list[str] = []
    for group in raw or REQUIRED_GROUPS:
        if group in ("target", "y"):
            continue
        group = "benchmark_models" if group in ("benchmark", "benchmarks") else group
        if group not in out:
            out.append(group)
    return out + [g for g in REQUIRED_GROUPS if g not in out]


class FeatureOnlyLGBM:
    """The reference's LightGBM wrapper: X is filtered to the feature columns."""

    def __init__(self, feature_cols: list[str], **params):
        self.model = lgb.LGBMRegressor(**params)
        self.feature_cols = feature_cols

    def fit(self, X: pd.DataFrame, y: pd.Series):
        self.model.fit(X[self.feature_cols], y)
        return self

    def predict(self, X: pd.DataFrame):
        return self.model.predict(X[self.feature_cols])


def _residual(y: pd.Series, x: pd.Series, eras: pd.Series, fit_intercept: bool, p: float):
    out = pd.Series(np.nan, index=y.index)
    ok = y.notna() & x.notna() & np.isfinite(x)
    for _, idx in y[ok].groupby(eras[ok]).groups.items():
        yy, xx = y[idx].astype("float64"), x[idx].astype("float64")
        if fit_intercept:
            yy, xx = yy - yy.mean(), xx - xx.mean()
        denom = float((xx * xx).sum())
        alpha = float((xx * yy).sum()) / denom if denom != 0 else 0.0
        out[idx] = yy - alpha * xx
    return out if p == 1.0 else (1 - p) * y.astype("float64") + p * out


def reference_oof(data_dir: Path, config: dict) -> tuple[pd.DataFrame, dict]:
    """The reference pipeline's OOF predictions and fold facts for a raw ``config``.

    Data paths in the config are relative to ``data_dir``. Returns (predictions
    frame in the reference's column order and row order, cv facts). Only the
    expanding/blocked era CV, x_groups features/era/benchmark_models, sampling and
    the residual_to_benchmark transform are covered: what the tests use.
    """
    data, training, model = config.get("data", {}), config.get("training", {}), config["model"]
    version = data.get("data_version", "v5.2")
    era_col, target_col, id_col = (
        data.get("era_col", "era"),
        data.get("target_col", "target"),
        data.get("id_col", "id"),
    )
    root = Path(data_dir)
    features_json = json.loads((root / version / "features.json").read_text())
    features = features_json["feature_sets"][data.get("feature_set", "small")]
    full_path = root / (data.get("full_data_path") or f"{version}/full.parquet")
    full = pd.read_parquet(full_path, columns=[era_col, target_col, *features, id_col])
    bench_path = root / (
        data.get("benchmark_data_path") or f"{version}/full_benchmark_models.parquet"
    )
    groups = _groups(model.get("x_groups") or model.get("data_needed"))
    bench = pd.read_parquet(bench_path)
    if id_col in bench.columns:
        bench = bench.set_index(id_col)
    bench_cols = [c for c in bench.columns if c not in (era_col, id_col)]
    full = full.set_index(id_col).join(bench[bench_cols], how="left").reset_index()
    x_cols: list[str] = []
    for group in groups:
        x_cols += {"features": features, "era": [era_col], "benchmark_models": bench_cols}.get(
            group, []
        )
    x_cols = list(dict.fromkeys(x_cols))

    cv = dict(training.get("cv", {}))
    n_splits, mode = int(cv.get("n_splits", 5)), cv.get("mode", "expanding")
    embargo = int(cv.get("embargo", data.get("embargo_eras", 13)))
    limit, seed = training.get("max_train_samples"), int(training.get("sample_seed", 1337))
    transform = model.get("target_transform")

    eras = sorted(set(full[era_col]), key=int)
    size, remainder = divmod(len(eras), n_splits)
    parts, facts = [], []
    for fold in range(n_splits):
        start = fold * size
        end = start + size + (remainder if fold == n_splits - 1 else 0)
        left = max(0, start - embargo)
        train_eras = eras[:left] + (
            eras[min(len(eras), end + embargo) :] if mode == "blocked" else []
        )
        val_eras = eras[start:end]
        if not train_eras:
            continue
        train = full[full[era_col].isin(train_eras)]
        X, y = train[x_cols], train[target_col]
        if limit and len(X) > limit:
            pick = np.random.default_rng(seed).choice(len(X), size=limit, replace=False)
            X, y = X.iloc[pick], y.iloc[pick]
        if transform:
            spec = {"type": transform} if isinstance(transform, str) else transform
            y = _residual(
                y,
                X[spec["benchmark_col"]],
                X[era_col],
                spec.get("fit_intercept", True),
                float(spec.get("proportion", 1.0)),
            )
        wrapper = FeatureOnlyLGBM(features, **model["params"]).fit(X, y)
        val = full[full[era_col].isin(val_eras)]
        part = pd.DataFrame(
            {
                id_col: val[id_col].to_numpy(),
                era_col: val[era_col].to_numpy(),
                target_col: val[target_col].to_numpy(),
                "prediction": np.asarray(wrapper.predict(val[x_cols])).ravel(),
            }
        )
        part["cv_fold"] = fold
        parts.append(part)
        facts.append(
            {
                "fold": fold,
                "train_eras": len(train_eras),
                "val_eras": len(val_eras),
                "train_rows": len(X),
                "val_rows": len(val),
            }
        )
    oof = pd.concat(parts, ignore_index=True)
    return oof, {"folds_used": len(facts), "folds": facts}
