"""Runs inside a Numerai runtime venv (``python -I _runtime_worker.py COMMAND JOB``).

It imports only what Numerai's images carry (numpy, pandas, scipy, lightgbm,
cloudpickle), never nx, and works on Python 3.10 to 3.13 with each runtime's pins.
``JOB`` is a JSON file written by nx; the answer goes to ``job["result"]`` as JSON.

Commands:

- ``build``: load the saved models with the runtime's own packages, define a
  self-contained ``predict`` by ``exec`` (so cloudpickle stores it by value and the
  pickle imports nothing of nx) and cloudpickle it to ``job["output"]``.
- ``probe``: the load test of a fresh pickle: load it as Numerai does and run it on
  a few made-up rows with every rule of the harness.
- ``check``: Numerai's harness on ``live.parquet`` (+ benchmarks), with timings and
  peak memory, then the pickle era by era on ``job["eras"]`` (predictions to parquet).
- ``predict``: the pickle on one data file, predictions to CSV (``id,prediction``).
"""

from __future__ import annotations

import json
import platform
import resource
import sys
import time
import traceback
import zlib
from inspect import signature

# The served function and its helpers. Globals bound at build time: np, pd, rankdata,
# ndtri, MODELS, WEIGHTS, NEUTRALIZERS, PROPORTION, ERA_COL.
PREDICT_SOURCE = '''
def _era_groups(live_features, n):
    """Row positions of each era (one group when there is no era column)."""
    if ERA_COL not in live_features.columns:
        return [np.arange(n)]
    codes, _ = pd.factorize(live_features[ERA_COL], sort=False)
    order = np.argsort(codes, kind="stable")
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    return np.split(order, bounds)


def _columns(frame, names, what):
    positions = frame.columns.get_indexer(names)
    if (positions < 0).any():
        missing = [name for name, p in zip(names, positions) if p < 0]
        raise ValueError(
            f"{what} lacks {len(missing)} column(s) the model needs, e.g. {missing[:3]}"
        )
    block = frame.iloc[:, positions]
    matrix = np.empty(block.shape, dtype=np.float32)  # row-major: LightGBM reads rows
    try:
        matrix[...] = block.to_numpy()
    except (TypeError, ValueError):  # nullable or object columns
        matrix[...] = block.to_numpy(dtype=np.float32, na_value=np.nan)
    return matrix


def _inputs(spec, live_features, live_benchmark_models, groups):
    """The model matrix: columns in training order, as float32 (training's dtype)."""
    features = _columns(live_features, spec["features"], "live_features")
    if spec["nan_all_twos"] and features.shape[1]:
        for rows in groups:
            block = features[rows]
            twos = (block == spec["missing_value"]).all(axis=0)
            if twos.any():
                block[:, twos] = np.nan
                features[rows] = block
    if not spec["benchmarks"]:
        return features
    if live_benchmark_models is None:
        raise ValueError("this model needs live_benchmark_models (call predict with both frames)")
    bench = live_benchmark_models.reindex(live_features.index)
    bench = _columns(bench, spec["benchmarks"], "live_benchmark_models")
    matrix = np.empty((len(features), len(spec["slots"])), dtype=np.float32)
    matrix[:, spec["feature_slots"]] = features
    matrix[:, spec["benchmark_slots"]] = bench
    return matrix


def _raw_predictions(spec, matrix):
    model = spec["model"]
    if spec["kind"] == "ridge":
        x = matrix.astype(np.float64)
        missing = ~np.isfinite(x)
        if missing.any():
            x[missing] = np.broadcast_to(model["fill"], x.shape)[missing]
        return x @ model["coef"] + model["intercept"]
    return np.asarray(model.predict(matrix), dtype=np.float64).ravel()


def _rank_gauss(values, groups):
    """Per era: ndtri((average rank - 0.5) / n) over finite values, divided by its
    standard deviation (ddof 0); values that are not finite get 0 (the era's middle)."""
    out = np.zeros(len(values))
    for rows in groups:
        v = values[rows]
        finite = np.isfinite(v)
        n = int(finite.sum())
        if n < 2:
            continue
        g = ndtri((rankdata(v[finite]) - 0.5) / n)
        std = g.std()
        part = np.zeros(len(v))
        part[finite] = g / std if std > 0 else g
        out[rows] = part
    return out


def _neutralize(values, live_features, groups):
    """Per era: values - PROPORTION * [X, 1] beta, beta = lstsq([X, 1], values)."""
    x_all = _columns(live_features, NEUTRALIZERS, "live_features").astype(np.float64)
    out = values.copy()
    for rows in groups:
        x = x_all[rows]
        if np.isnan(x).any():
            x = np.where(np.isnan(x), np.nanmean(x, axis=0), x)
            x = np.nan_to_num(x)
        a = np.hstack([x, np.ones((len(rows), 1))])
        beta = np.linalg.lstsq(a, values[rows], rcond=1e-6)[0]
        out[rows] = values[rows] - PROPORTION * (a @ beta)
    return out


def predict(live_features, live_benchmark_models=None):
    """Numerai predict (made by nx export): one "prediction" column, the live ids as
    index, each era ranked into (0, 1]."""
    n = len(live_features)
    groups = _era_groups(live_features, n)
    blend = np.zeros(n)
    for spec, weight in zip(MODELS, WEIGHTS):
        matrix = _inputs(spec, live_features, live_benchmark_models, groups)
        blend += weight * _rank_gauss(_raw_predictions(spec, matrix), groups)
    if NEUTRALIZERS:
        blend = _neutralize(blend, live_features, groups)
    ranked = np.empty(n)
    for rows in groups:
        ranked[rows] = rankdata(blend[rows]) / len(rows)
    return pd.DataFrame({"prediction": ranked}, index=live_features.index)
'''

PACKED_SOURCE = '''
class PackedBooster:
    """A LightGBM model stored as compressed text; unpickles as a lightgbm.Booster."""

    def __init__(self, blob):
        self.blob = blob

    def __reduce__(self):
        return (_unpack_booster, (self.blob,))


def _unpack_booster(blob):
    import zlib

    import lightgbm

    return lightgbm.Booster(model_str=zlib.decompress(blob).decode("utf-8"))
'''


class JobError(Exception):
    """A problem to report to nx as one line."""


def _load_model(spec: dict, packed_booster) -> object:
    kind = spec["kind"]
    path = spec["model_file"]
    if kind == "lightgbm":
        import lightgbm

        try:
            booster = lightgbm.Booster(model_file=path)
        except Exception as error:  # LightGBMError
            raise JobError(f"{path}: LightGBM of this runtime cannot read it ({error})") from None
        if booster.num_feature() != len(spec["columns"]):
            raise JobError(
                f"{path}: the model has {booster.num_feature()} inputs but its manifest lists "
                f"{len(spec['columns'])} columns; retrain it"
            )
        text = booster.model_to_string()
        return packed_booster(zlib.compress(text.encode("utf-8"), 9))
    if kind == "ridge":
        import numpy as np

        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
        return {
            "coef": np.asarray(document["coef"], dtype=np.float64),
            "intercept": float(document["intercept"]),
            "fill": np.asarray(document["fill"], dtype=np.float64),
        }
    import cloudpickle

    try:
        with open(path, "rb") as handle:
            return cloudpickle.load(handle)
    except Exception as error:
        raise JobError(
            f"{path}: the estimator cannot be loaded in this runtime "
            f"({type(error).__name__}: {error}); use a model type the runtime has"
        ) from None


def build(job: dict) -> dict:
    import cloudpickle
    import numpy as np
    import pandas as pd
    from scipy.special import ndtri
    from scipy.stats import rankdata

    packed: dict = {}
    exec(PACKED_SOURCE, packed)
    models = []
    for spec in job["models"]:
        columns = spec["columns"]
        features, benchmarks = spec["features"], spec["benchmarks"]
        slot = {name: i for i, name in enumerate(columns)}
        models.append(
            {
                "kind": spec["kind"],
                "model": _load_model(spec, packed["PackedBooster"]),
                "features": list(features),
                "benchmarks": list(benchmarks),
                "slots": list(columns),
                "feature_slots": np.asarray([slot[c] for c in features], dtype=np.intp),
                "benchmark_slots": np.asarray([slot[c] for c in benchmarks], dtype=np.intp),
                "nan_all_twos": bool(spec["nan_all_twos"]),
                "missing_value": float(spec["missing_value"]),
            }
        )
    weights = np.asarray(job["weights"], dtype=np.float64)
    namespace = {
        "np": np,
        "pd": pd,
        "rankdata": rankdata,
        "ndtri": ndtri,
        "MODELS": models,
        "WEIGHTS": [float(w) for w in weights / weights.sum()],
        "NEUTRALIZERS": list(job.get("neutralizers") or []),
        "PROPORTION": float(job.get("proportion", 1.0)),
        "ERA_COL": job.get("era_col", "era"),
    }
    exec(PREDICT_SOURCE, namespace)
    with open(job["output"], "wb") as handle:
        cloudpickle.dump(namespace["predict"], handle)
    return {"python": platform.python_version(), "packages": _packages()}


def _packages() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("numpy", "pandas", "scipy", "lightgbm", "cloudpickle", "scikit-learn"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


# ---------------------------------------------------------------- the harness rules


def _load_pickle(path: str):
    import pandas as pd

    return pd.read_pickle(path)


def _harness_rules(predictions, live) -> list[dict]:
    """Numerai's checks on a result, in the harness's order, plus one row per live id."""
    import pandas as pd

    rules = []

    def rule(name: str, passed: bool, detail: str = "") -> bool:
        rules.append({"rule": name, "passed": bool(passed), "detail": detail})
        return passed

    if not rule("dataframe", type(predictions) is pd.DataFrame, _type_detail(predictions)):
        return rules
    if not rule("not_empty", len(predictions) > 0, f"{len(predictions)} rows"):
        return rules
    same = (
        len(predictions) == len(live)
        and predictions.index.is_unique
        and predictions.index.sort_values().equals(live.index.sort_values())
    )
    rule(
        "one_row_per_id",
        same,
        f"{len(predictions)} rows for {len(live)} live ids"
        + ("" if same else "; the index must be the live ids, once each"),
    )
    nan = int(predictions.isna().sum().sum())
    rule("no_nan", nan == 0, f"{nan} NaN values")
    first = predictions.iloc[:, 0]
    inside = bool(first.between(0, 1).all())
    detail = f"first column in [{first.min():.6g}, {first.max():.6g}]" if len(first) else ""
    rule("in_range", inside, detail)
    return rules


def _type_detail(value) -> str:
    return "returned None" if value is None else f"returned {type(value).__name__}"


def _call(model, n_args: int, features, benchmarks):
    if n_args == 1:
        return model(features)
    return model(features, benchmarks)


def _read(path: str):
    import pandas as pd

    frame = pd.read_parquet(path)
    if "id" in frame.columns:
        frame = frame.set_index("id")
    return frame


def peak_rss_bytes() -> int:
    """This process's own peak RSS: ``VmHWM`` where Linux has it. Not ``ru_maxrss``
    there: Linux counts in it the parent's RSS at the fork that started this worker
    (nx itself, maybe after training a model), which is not the pickle's."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def _error_line(error: BaseException) -> str:
    return f"{type(error).__name__}: {' '.join(str(error).split())}"[:500]


def check(job: dict) -> dict:
    rules: list[dict] = []
    report = {"rules": rules, "python": platform.python_version(), "packages": _packages()}

    def rule(name: str, passed: bool, detail: str = "") -> bool:
        rules.append({"rule": name, "passed": bool(passed), "detail": detail})
        return passed

    import pandas  # noqa: F401  (imported before the timer, as the harness does)

    started = time.perf_counter()
    try:
        model = _load_pickle(job["pickle"])
    except Exception as error:
        rule("loads", False, _error_line(error))
        return report
    report["load_seconds"] = time.perf_counter() - started
    rule("loads", True, f"pandas.read_pickle in {report['load_seconds']:.3f} s")
    try:
        n_args = len(signature(model).parameters)
    except (TypeError, ValueError) as error:
        rule("arguments", False, _error_line(error))
        return report
    report["n_args"] = n_args
    if not rule("arguments", n_args in (1, 2), f"predict takes {n_args} argument(s)"):
        return report
    live = _read(job["live"])
    benchmarks = None
    if n_args == 2:
        if not job.get("live_benchmarks"):
            rule("runs", False, "predict takes 2 arguments but there is no live benchmark file")
            return report
        benchmarks = _read(job["live_benchmarks"])
    report["rows"] = len(live)
    started = time.perf_counter()
    try:
        predictions = _call(model, n_args, live, benchmarks)
    except Exception as error:
        rule("runs", False, _error_line(error))
        return report
    report["predict_seconds"] = time.perf_counter() - started
    rule("runs", True, f"{len(live)} live rows in {report['predict_seconds']:.3f} s")
    rules.extend(_harness_rules(predictions, live))
    report["peak_rss_bytes"] = peak_rss_bytes()
    if job.get("eras") and all(r["passed"] for r in rules):
        _run_by_era(model, n_args, job, rule)
    return report


def _run_by_era(model, n_args: int, job: dict, rule) -> None:
    """The pickle once per era (as the harness used to call it); predictions to parquet."""
    import pandas as pd

    frame = _read(job["eras"])
    benchmarks = _read(job["eras_benchmarks"]) if job.get("eras_benchmarks") else None
    if n_args == 2 and benchmarks is None:
        rule("runs_by_era", False, "no benchmark rows for the validation eras")
        return
    parts = []
    for era, rows in frame.groupby("era", sort=False):
        try:
            bench = benchmarks.reindex(rows.index) if benchmarks is not None else None
            out = _call(model, n_args, rows, bench)
            part = pd.DataFrame(
                {"id": rows.index.astype(str), "era": era, "prediction": out.iloc[:, 0].to_numpy()}
            )
        except Exception as error:
            rule("runs_by_era", False, f"era {era}: {_error_line(error)}")
            return
        parts.append(part)
    pd.concat(parts, ignore_index=True).to_parquet(job["eras_output"], index=False)
    rule("runs_by_era", True, f"{len(parts)} eras, {len(frame)} rows")


def probe(job: dict) -> dict:
    """Load a fresh pickle and run it on made-up rows with the needed columns."""
    import numpy as np
    import pandas as pd

    report = check_loaded(job)
    if not report["ok"]:
        return report
    rng = np.random.default_rng(0)
    n = 40
    ids = [f"n{i:015x}" for i in range(n)]
    features = {name: rng.integers(0, 5, n).astype(np.int8) for name in job["features"]}
    live = pd.DataFrame({"era": ["0001"] * n, **features}, index=pd.Index(ids, name="id"))
    bench = pd.DataFrame(
        {name: rng.random(n).astype(np.float32) for name in job["benchmarks"]},
        index=pd.Index(ids, name="id"),
    )
    bench.insert(0, "era", "0001")
    try:
        predictions = _call(report.pop("model"), report["n_args"], live, bench)
    except Exception as error:
        return {"ok": False, "error": f"predict failed on test rows ({_error_line(error)})"}
    failed = [r for r in _harness_rules(predictions, live) if not r["passed"]]
    if failed:
        return {"ok": False, "error": f"rule {failed[0]['rule']} failed ({failed[0]['detail']})"}
    return {"ok": True, "n_args": report["n_args"]}


def check_loaded(job: dict) -> dict:
    try:
        model = _load_pickle(job["pickle"])
    except Exception as error:
        return {"ok": False, "error": f"the pickle does not load ({_error_line(error)})"}
    n_args = len(signature(model).parameters)
    if n_args not in (1, 2):
        return {"ok": False, "error": f"predict takes {n_args} arguments, not 1 or 2"}
    return {"ok": True, "model": model, "n_args": n_args}


def predict(job: dict) -> dict:
    """The pickle on one file: era by era when it has several eras; CSV id,prediction."""
    import pandas as pd

    loaded = check_loaded(job)
    if not loaded["ok"]:
        raise JobError(loaded["error"])
    model, n_args = loaded["model"], loaded["n_args"]
    frame = _read(job["data"])
    benchmarks = _read(job["benchmarks"]) if job.get("benchmarks") else None
    if n_args == 2 and benchmarks is None:
        second = list(signature(model).parameters.values())[1]
        if second.default is second.empty:
            raise JobError("the pickle takes live_benchmark_models; pass --benchmark-data")
        n_args = 1  # predict(live_features, live_benchmark_models=None)
    groups = frame.groupby("era", sort=False) if "era" in frame.columns else [(None, frame)]
    parts = []
    for era, rows in groups:
        bench = benchmarks.reindex(rows.index) if benchmarks is not None else None
        try:
            out = _call(model, n_args, rows, bench)
        except Exception as error:
            where = f"era {era}: " if era is not None else ""
            raise JobError(f"predict failed ({where}{_error_line(error)})") from None
        failed = [r for r in _harness_rules(out, rows) if not r["passed"]]
        if failed:
            raise JobError(f"rule {failed[0]['rule']} failed ({failed[0]['detail']})")
        parts.append(out.iloc[:, [0]].set_axis(["prediction"], axis=1))
    result = pd.concat(parts).reindex(frame.index)
    result.index.name = "id"
    result.to_csv(job["output"])
    return {"rows": len(result), "eras": len(parts)}


COMMANDS = {"build": build, "probe": probe, "check": check, "predict": predict}


def main() -> int:
    command, job_path = sys.argv[1], sys.argv[2]
    with open(job_path, encoding="utf-8") as handle:
        job = json.load(handle)
    try:
        answer = COMMANDS[command](job)
        answer.setdefault("ok", True)
    except JobError as error:
        answer = {"ok": False, "error": str(error)}
    except Exception as error:
        answer = {
            "ok": False,
            "error": _error_line(error),
            "traceback": traceback.format_exc(),
        }
    with open(job["result"], "w", encoding="utf-8") as handle:
        json.dump(answer, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
