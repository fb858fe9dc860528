"""Custom models for the tests, importable as ``tests.train.custom_models:Class``.

``RecordingModel`` is written the way the reference framework's model wrappers are
(``feature_cols`` in the constructor, pandas X filtered to them) and writes what it
was given to ``record_path`` (one JSON line per fit), so a test run through the real
``nx train`` can check it.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd


def _describe(X, y) -> dict:
    if isinstance(X, pd.DataFrame):
        return {
            "kind": "DataFrame",
            "columns": list(X.columns),
            "dtypes": {c: str(t) for c, t in X.dtypes.items()},
            "index": [int(i) for i in X.index[:5]],
            "rows": len(X),
            "y_kind": type(y).__name__,
            "y_name": getattr(y, "name", None),
            "y_dtype": str(y.dtype),
            "y_index_matches": bool((y.index == X.index).all()),
        }
    return {"kind": type(X).__name__, "dtype": str(X.dtype), "shape": list(X.shape)}


class RecordingModel:
    """Predicts ``mean(y) + slope * first feature``; records what fit received."""

    def __init__(self, feature_cols=None, record_path=None, slope=0.01):
        self.feature_cols = feature_cols
        self.record_path = record_path
        self.slope = slope

    def fit(self, X, y):
        if self.record_path:
            record = {**_describe(X, y), "feature_cols": self.feature_cols}
            with open(self.record_path, "a", encoding="utf-8") as out:
                out.write(json.dumps(record) + "\n")
        self.mean_ = float(np.mean(np.asarray(y, dtype=np.float64)))
        return self

    def _first_feature(self, X) -> np.ndarray:
        if isinstance(X, pd.DataFrame):
            return X[self.feature_cols[0]].to_numpy(dtype=np.float64)
        return np.asarray(X, dtype=np.float64)[:, 0]

    def predict(self, X):
        return self.mean_ + self.slope * self._first_feature(X)


class HangingModel(RecordingModel):
    """A RecordingModel whose fit number ``hang_at`` (counted in ``record_path``) writes
    ``marker`` and then sleeps, so a test can kill ``nx train`` in the middle of a run."""

    def __init__(self, feature_cols=None, record_path=None, slope=0.01, hang_at=0, marker=None):
        super().__init__(feature_cols, record_path, slope)
        self.hang_at = hang_at
        self.marker = marker

    def fit(self, X, y):
        super().fit(X, y)
        with open(self.record_path, encoding="utf-8") as records:
            fits = sum(1 for _ in records)
        if fits >= self.hang_at:
            with open(self.marker, "w", encoding="utf-8") as marker:
                marker.write(str(fits))
            import time

            time.sleep(600)
        return self
