"""Tiny synthetic scoring data with the awkward cases numerai-tools must agree on."""

from __future__ import annotations

import numpy as np
import pandas as pd

TARGET_VALUES = np.array([0.0, 0.25, 0.5, 0.75, 1.0])


def scoring_frame(seed: int = 0, n_features: int = 6, n_preds: int = 3) -> pd.DataFrame:
    """Eras of mixed sizes (1, 2, 3 rows and ~40-300), predictions rounded to 2
    decimals (heavy ties), NaNs under the 20% limit, one constant-prediction era,
    one era with a constant ("all twos") feature, shuffled rows, ids as a column."""
    rng = np.random.default_rng(seed)
    sizes = [260, 1, 2, 3, 40, 180, 75, 300, 9, 120]
    rows = []
    for e, size in enumerate(sizes):
        era = f"{e + 1:04d}"
        x = rng.integers(0, 5, (size, n_features)).astype(np.int8)
        if e == 5:
            x[:, 0] = 2
        signal = x[:, 1] * 0.1 + rng.normal(0, 0.5, size)
        target = TARGET_VALUES[
            np.clip(np.round(signal + 2 + rng.normal(0, 1, size)), 0, 4).astype(int)
        ]
        frame = pd.DataFrame({"era": era, "target": target})
        for j in range(n_features):
            frame[f"feature_{j}"] = x[:, j]
        for c in range(n_preds):
            pred = np.round(rng.random(size) * 0.5 + 0.25 + 0.05 * signal * (c + 1), 2)
            if e == 6 and c == 0:
                pred[:] = 0.5  # constant prediction era
            frame[f"pred_{c}"] = pred
        frame["bench"] = np.round(rng.random(size) * 0.3 + 0.1 * signal, 3)
        frame["meta"] = rng.random(size) + 0.2 * signal
        if size >= 40:  # up to 15% of rows lose one of these values
            holes = rng.choice(size, int(0.15 * size), replace=False)
            cols = rng.choice(["pred_1", "target", "bench", "meta"], len(holes))
            for row, col in zip(holes, cols, strict=True):
                frame.loc[row, col] = np.nan
        rows.append(frame)
    df = pd.concat(rows, ignore_index=True)
    df.insert(0, "id", [f"n{i:07x}" for i in rng.permutation(len(df))])
    return df.sample(frac=1.0, random_state=seed).reset_index(drop=True)
