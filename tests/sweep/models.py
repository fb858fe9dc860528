"""Estimators for the sweep tests (``model.type = "tests.sweep.models:Class"``).

Each takes and ignores the base config's LightGBM params (``**ignored``), so a sweep
can switch ``model.type`` with one override. ``marker`` is a file path: the
misbehaving models misbehave only while it does not exist (they create it first), so
a retried or resumed config then trains normally.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np


def _features(X) -> np.ndarray:
    """The feature columns as float64: custom models get the reference's DataFrame of
    every available column (features, era, benchmarks) unless input_format is numpy."""
    if hasattr(X, "columns"):
        X = X[[c for c in X.columns if str(c).startswith("feature_")]]
    return np.asarray(X, dtype=np.float64)


class LeastSquares:
    """Ordinary least squares with an intercept (deterministic)."""

    def __init__(self, **ignored) -> None:
        self.coef = None

    def fit(self, X, y):
        x = np.column_stack([_features(X), np.ones(len(y))])
        self.coef = np.linalg.lstsq(x, np.asarray(y, dtype=np.float64), rcond=None)[0]
        return self

    def predict(self, X):
        return _features(X) @ self.coef[:-1] + self.coef[-1]


class Failing(LeastSquares):
    def fit(self, X, y):
        raise RuntimeError("boom from the test model (see [model.params])")


class _Once(LeastSquares):
    sig = signal.SIGKILL

    def __init__(self, marker: str = "", **ignored) -> None:
        super().__init__()
        self.marker = marker

    def fit(self, X, y):
        if self.marker and not Path(self.marker).exists():
            Path(self.marker).write_text(str(os.getpid()))
            os.kill(os.getpid(), self.sig)
        return super().fit(X, y)


class DieOnce(_Once):
    """Kills its own process (SIGKILL) mid-fit the first time: a worker dying mid-config."""


class InterruptOnce(_Once):
    """Sends SIGINT to its own process mid-fit the first time: a Ctrl-C mid-sweep."""

    sig = signal.SIGINT
