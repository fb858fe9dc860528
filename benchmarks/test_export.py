"""nx export vs a pickle built the reference's way: export time, size, load + predict.

One LightGBM with 2,000 trees (8 leaves, trained quickly on 2,000 synthetic rows x
2,748 int8 features) and a Numerai-sized live era (5,000 rows x 2,748 int8
features, synthetic, indexed by id, plus the benchmark file the harness passes):

- nx: ``nx train --final`` saves the model, ``nx.engine.export.export_models``
  builds the pickle inside the 3.12 runtime venv (two runtime processes: build, then
  the load test) and writes the sidecar;
- reference: the way Numerai's reference ``export_pkl.py`` does it, in the same
  runtime: fit ``lightgbm.LGBMRegressor`` with the same parameters on the same rows,
  ``exec`` a ``predict`` that reindexes the columns, predicts and ranks per era, and
  ``cloudpickle.dumps`` it (timed: the pickling and the write).

Load + predict: each round starts a fresh runtime process per pickle (as Numerai
does: pandas imported, live files read, then timed ``pandas.read_pickle`` and one
``predict(live_features, live_benchmark_models)`` call, and its peak RSS); the
sides alternate and the best round counts. Both pickles' predictions are checked to
rank the same way (the models are fitted by different LightGBM versions, so only
closely).

Run: ``pytest benchmarks/test_export.py -s`` (needs the 3.12 runtime: built into
``$NX_RUNTIME_DIR`` or the user cache when absent, about a minute).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

N_FEATURES, LIVE_ROWS, TRAIN_ERAS, ROWS_PER_ERA = 2_748, 5_000, 5, 100
PARAMS = {
    "n_estimators": 2_000,
    "learning_rate": 0.01,
    "num_leaves": 8,
    "colsample_bytree": 0.1,
    "min_child_samples": 20,
    "n_jobs": 1,  # training only; both pickles predict on all cores
    "random_state": 1,
    "verbose": -1,
}
ROUNDS = 3
MEASURED: dict[str, dict[str, float]] = {}

REFERENCE_BUILD = r"""
import json, os, sys, time
import cloudpickle, numpy as np, pandas as pd, lightgbm as lgb
full, features_json, params, out = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
features = json.load(open(features_json))["feature_sets"]["all"]
frame = pd.read_parquet(full)
model = lgb.LGBMRegressor(**params).fit(frame[features], frame["target"])
model.set_params(n_jobs=os.cpu_count())  # predict on all cores, as LightGBM does by default
namespace = {"np": np, "pd": pd, "lgb_model": model, "feature_order": list(features)}
exec('''
def predict(live_features, live_benchmark_models=None):
    X = live_features.reindex(columns=feature_order)
    scores = np.asarray(lgb_model.predict(X)).ravel()
    ranked = pd.Series(scores, index=live_features.index)
    if "era" in live_features.columns:
        ranked = ranked.groupby(live_features["era"], sort=False).rank(method="average", pct=True)
    else:
        ranked = ranked.rank(method="average", pct=True)
    return pd.DataFrame({"prediction": ranked}, index=live_features.index)
''', namespace)
started = time.perf_counter()
with open(out, "wb") as handle:
    handle.write(cloudpickle.dumps(namespace["predict"]))
print(json.dumps({"seconds": time.perf_counter() - started}))
"""

HARNESS = r"""
import json, resource, sys, time
import pandas as pd
pickle, live_path, bench_path, out = sys.argv[1:5]
live = pd.read_parquet(live_path)
bench = pd.read_parquet(bench_path)
started = time.perf_counter()
model = pd.read_pickle(pickle)
loaded = time.perf_counter()
predictions = model(live, bench)
predicted = time.perf_counter()
assert predictions["prediction"].between(0, 1).all() and len(predictions) == len(live)
predictions.to_parquet(out)


# VmHWM: a child's ru_maxrss counts its parent's RSS. (nx's peak_rss_bytes, in
# engine/export/_runtime_worker.py, is not importable in the runtime venv.)
def peak_kib():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


print(json.dumps({
    "load": loaded - started,
    "predict": predicted - loaded,
    "peak_mib": peak_kib() / 1024,
}))
"""


@pytest.fixture(scope="module")
def setup():
    from nx.engine.export import install_runtime
    from nx.engine.export.runtimes import runtime_python
    from nx.engine.train import train_config
    from nx.engine.train.config import parse_config

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.train.conftest
    from tests.train.conftest import write_dataset

    python = runtime_python(install_runtime("3.12").version)
    with tempfile.TemporaryDirectory(prefix="nx-bench-export-") as scratch:
        root = Path(scratch)
        data_dir = write_dataset(
            root / "data", n_eras=TRAIN_ERAS, rows_per_era=ROWS_PER_ERA, n_features=N_FEATURES
        )
        vdir = data_dir / "v5.2"
        config = parse_config(
            {
                "data": {"feature_set": "all"},
                "training": {"final_fit": True, "cv": {"enabled": False}},
                "model": {"type": "LGBMRegressor", "params": PARAMS},
            },
            "bench_export.toml",
        )
        started = time.perf_counter()
        model_dir = train_config(config, data_dir=data_dir, output_dir=root / "exp").model_dir
        train_seconds = time.perf_counter() - started

        features = json.loads((vdir / "features.json").read_text())["feature_sets"]["all"]
        rng = np.random.default_rng(7)
        ids = pd.Index([f"n{i:015x}" for i in range(LIVE_ROWS)], name="id")
        values = rng.integers(0, 5, size=(LIVE_ROWS, len(features)), dtype=np.int8)
        live = pd.concat(
            [
                pd.DataFrame({"era": "1200", "data_type": "live"}, index=ids),
                pd.DataFrame(values, index=ids, columns=features),
            ],
            axis=1,
        )
        live.to_parquet(root / "live.parquet")
        bench = pd.DataFrame(
            {"era": "1200", "v52_lgbm_ender20": rng.random(LIVE_ROWS).astype(np.float32)},
            index=ids,
        )
        bench.to_parquet(root / "live_benchmark_models.parquet")

        reference = root / "reference.pkl"
        done = subprocess.run(
            [
                str(python),
                "-I",
                "-c",
                REFERENCE_BUILD,
                str(vdir / "full.parquet"),
                str(vdir / "features.json"),
                json.dumps(PARAMS),
                str(reference),
            ],
            capture_output=True,
            text=True,
            check=True,
            cwd=root,
        )
        MEASURED["reference_export"] = json.loads(done.stdout.strip().splitlines()[-1])
        yield {
            "root": root,
            "python": python,
            "model_dir": model_dir,
            "data_dir": data_dir,
            "reference": reference,
            "train_seconds": train_seconds,
        }


def _harness(setup, pickle: Path, tag: str) -> dict[str, float]:
    out = setup["root"] / f"{tag}_predictions.parquet"
    done = subprocess.run(
        [
            str(setup["python"]),
            "-I",
            "-c",
            HARNESS,
            str(pickle),
            str(setup["root"] / "live.parquet"),
            str(setup["root"] / "live_benchmark_models.parquet"),
            str(out),
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=setup["root"],
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_export_time_and_size(benchmark, setup):
    from nx.engine.export import export_models

    out = setup["root"] / "nx.pkl"
    result = benchmark.pedantic(
        export_models,
        args=([setup["model_dir"]], out),
        kwargs={"data_dir": setup["data_dir"]},
        rounds=1,
        iterations=1,
    )
    MEASURED["nx_export"] = {"seconds": result.seconds}
    MEASURED["size"] = {
        "nx": out.stat().st_size,
        "reference": setup["reference"].stat().st_size,
    }


def test_load_and_predict(benchmark, setup):
    """Alternating fresh-process rounds; the nx side is what pytest-benchmark times."""
    nx_pickle = setup["root"] / "nx.pkl"
    assert nx_pickle.is_file(), "run test_export_time_and_size first (same module)"
    rounds: dict[str, list[dict[str, float]]] = {"nx": [], "reference": []}

    def one_round():
        rounds["reference"].append(_harness(setup, setup["reference"], "reference"))
        rounds["nx"].append(_harness(setup, nx_pickle, "nx"))

    benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1)
    for side, runs in rounds.items():
        MEASURED[side] = {
            "load": min(r["load"] for r in runs),
            "predict": min(r["predict"] for r in runs),
            "total": min(r["load"] + r["predict"] for r in runs),
            "peak_mib": max(r["peak_mib"] for r in runs),
        }
    a = pd.read_parquet(setup["root"] / "nx_predictions.parquet")["prediction"]
    b = pd.read_parquet(setup["root"] / "reference_predictions.parquet")["prediction"]
    MEASURED["agreement"] = {"rank_corr": float(np.corrcoef(a.rank(), b.rank())[0, 1])}


def test_export_ratios(setup):
    if "nx" not in MEASURED or "size" not in MEASURED:
        pytest.skip("needs the two measurements above in the same run")
    nx, ref, size = MEASURED["nx"], MEASURED["reference"], MEASURED["size"]
    print(
        f"\n[export bench] 2,000 trees, live {LIVE_ROWS:,} x {N_FEATURES:,} int8 | "
        f"train {setup['train_seconds']:.1f} s | "
        f"export nx {MEASURED['nx_export']['seconds']:.2f} s (build + load test in the runtime) "
        f"vs reference pickling {MEASURED['reference_export']['seconds']:.2f} s | "
        f"size nx {size['nx'] / 2**20:.2f} MiB vs reference {size['reference'] / 2**20:.2f} MiB "
        f"({size['nx'] / size['reference']:.2f}x) | "
        f"load nx {nx['load']:.3f} s vs {ref['load']:.3f} s | "
        f"predict nx {nx['predict']:.3f} s vs {ref['predict']:.3f} s | "
        f"load+predict nx {nx['total']:.3f} s vs {ref['total']:.3f} s "
        f"({nx['total'] / ref['total']:.2f}x) | "
        f"peak nx {nx['peak_mib']:.0f} MiB vs {ref['peak_mib']:.0f} MiB | "
        f"rank corr of the two pickles' predictions {MEASURED['agreement']['rank_corr']:.4f}"
    )
