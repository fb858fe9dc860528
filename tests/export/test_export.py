"""``nx export``, ``nx check-pickle`` and ``nx predict`` through the real command, with the
pickle run in a real Python 3.12 runtime venv."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import cloudpickle
import numpy as np
import polars as pl
import pytest

from tests.conftest import nx_run
from tests.export.conftest import run_in_runtime
from tests.numerai.conftest import fake_env
from tests.numerai.fake_api import SECRET_KEY, FakeNumerai


def _export(env, data_dir, out: Path, *args) -> dict:
    done = nx_run("export", *args, "-o", out, "--data-dir", data_dir, "--json", env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


UPLOAD_ARGS = ("numerai", "upload", "--model", "nx_model", "--poll-interval", "0", "--json")


def _check(env, data_dir, pickle: Path, *args):
    return nx_run("check-pickle", pickle, "--data-dir", data_dir, "--json", *args, env=env)


@pytest.fixture(scope="module")
def single(runtime_env, models, tiny_data_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("single") / "model.pkl"
    _export(runtime_env, tiny_data_dir, out, models["lgbm"])
    return out


@pytest.fixture(scope="module")
def blend(runtime_env, models, tiny_data_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("blend") / "blend.pkl"
    _export(
        runtime_env,
        tiny_data_dir,
        out,
        models["lgbm"],
        models["bench"],
        models["ridge"],
        "--weights",
        "2,1,1",
        "--neutralize-features",
        "small",
        "--neutralize-proportion",
        "0.5",
    )
    return out


def test_sidecar_records_what_went_in(single, models, tiny_data_dir):
    sidecar = json.loads(Path(str(single) + ".json").read_text())
    manifest = json.loads((models["lgbm"] / "manifest.json").read_text())
    assert sidecar["sha256"] == hashlib.sha256(single.read_bytes()).hexdigest()
    assert sidecar["bytes"] == single.stat().st_size
    assert sidecar["runtime"] == "3.12" and sidecar["python"].startswith("3.12.")
    assert sidecar["packages"]["lightgbm"] == "4.5.0" == sidecar["pins"]["lightgbm"]
    assert sidecar["packages"]["cloudpickle"] == "3.1.1"
    assert sidecar["feature_count"] == len(manifest["features"])
    assert sidecar["weights"] == [1.0]
    assert sidecar["predict_arguments"] == 2
    (entry,) = sidecar["models"]
    assert entry["path"] == str(models["lgbm"].resolve())
    model_file = models["lgbm"] / manifest["model_file"]
    assert entry["model_file_sha256"] == hashlib.sha256(model_file.read_bytes()).hexdigest()
    assert sidecar["nx_version"] and sidecar["neutralize"] is None


def test_pickle_is_self_contained_and_serves_live_rows(single, models, runtime_env, tiny_data_dir):
    """Loaded where nx is absent, called with one argument, columns shuffled and extra
    columns added: same predictions; a missing feature is an error naming it."""
    code = """
import json, sys
import numpy as np, pandas as pd
model = pd.read_pickle(sys.argv[1])
assert not any(name == "nx" or name.startswith("nx.") for name in sys.modules)
live = pd.read_parquet(sys.argv[2])
one = model(live)
cols = list(live.columns)
rng = np.random.default_rng(0)
shuffled = live[[cols[i] for i in rng.permutation(len(cols))]].assign(extra_col=1.5)
two = model(shuffled, pd.read_parquet(sys.argv[3]))
feature = json.loads(sys.argv[4])
try:
    model(live.drop(columns=[feature]))
    error = ""
except Exception as exc:
    error = str(exc)
print(json.dumps({
    "columns": list(one.columns), "same_index": bool(one.index.equals(live.index)),
    "equal": bool(np.array_equal(one["prediction"].to_numpy(), two["prediction"].to_numpy())),
    "min": float(one["prediction"].min()), "max": float(one["prediction"].max()),
    "nan": int(one.isna().sum().sum()), "error": error,
}))
"""
    vdir = tiny_data_dir / "v5.2"
    manifest = json.loads((models["lgbm"] / "manifest.json").read_text())
    feature = manifest["features"][3]
    done = run_in_runtime(
        runtime_env,
        code,
        single,
        vdir / "live.parquet",
        vdir / "live_benchmark_models.parquet",
        json.dumps(feature),
        cwd=single.parent,
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["columns"] == ["prediction"] and found["same_index"] and found["equal"]
    assert 0 < found["min"] and found["max"] == 1.0 and found["nan"] == 0
    assert feature in found["error"] and "live_features lacks 1 column" in found["error"]


def test_check_pickle_passes_every_rule(single, runtime_env, tiny_data_dir):
    done = _check(runtime_env, tiny_data_dir, single)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    rules = {r["rule"]: r for r in report["rules"]}
    assert list(rules) == [
        "loads",
        "arguments",
        "runs",
        "dataframe",
        "not_empty",
        "one_row_per_id",
        "no_nan",
        "in_range",
        "runs_by_era",
        "matches_nx",
    ]
    assert all(r["passed"] and not r.get("skipped") for r in rules.values())
    live_rows = pl.read_parquet(tiny_data_dir / "v5.2" / "live.parquet").height
    assert report["passed"] and report["live_rows"] == live_rows
    assert report["min_rank_corr"] >= 0.9999 and len(report["eras_compared"]) == 2
    assert report["size_bytes"] == single.stat().st_size
    assert report["load_seconds"] > 0 and report["predict_seconds"] > 0
    assert report["peak_rss_bytes"] > 10 * 2**20
    assert report["python"].startswith("3.12.")


def test_blend_with_benchmarks_and_neutralization(blend, models, runtime_env, tiny_data_dir):
    sidecar = json.loads(Path(str(blend) + ".json").read_text())
    assert sidecar["weights"] == [0.5, 0.25, 0.25]
    assert sidecar["neutralize"] == {"feature_set": "small", "features": 10, "proportion": 0.5}
    assert sidecar["benchmark_columns"]  # the bench model reads them
    assert sidecar["feature_count"] == 20  # medium (ridge) includes small

    done = _check(runtime_env, tiny_data_dir, blend, "--eras", "3")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["passed"] and report["min_rank_corr"] >= 0.9999
    assert len(report["eras_compared"]) == 3

    # the benchmark model cannot run without live_benchmark_models: a clear error
    code = (
        "import sys, pandas as pd\n"
        "m = pd.read_pickle(sys.argv[1])\n"
        "try:\n    m(pd.read_parquet(sys.argv[2]))\nexcept ValueError as e:\n    print(e)\n"
    )
    live = tiny_data_dir / "v5.2" / "live.parquet"
    done = run_in_runtime(runtime_env, code, blend, live, cwd=blend.parent)
    assert "needs live_benchmark_models" in done.stdout, done.stderr


def test_predict_from_pickle_equals_predict_from_models(
    blend, models, runtime_env, tiny_data_dir, tmp_path
):
    from_pickle = tmp_path / "pickle.csv"
    from_models = tmp_path / "models.csv"
    done = nx_run(
        "predict", blend, "-o", from_pickle, "--data-dir", tiny_data_dir, "--json", env=runtime_env
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["source"] == "pickle"
    done = nx_run(
        "predict",
        models["lgbm"],
        models["bench"],
        models["ridge"],
        "--weights",
        "2,1,1",
        "--neutralize-features",
        "small",
        "--neutralize-proportion",
        "0.5",
        "-o",
        from_models,
        "--data-dir",
        tiny_data_dir,
    )
    assert done.returncode == 0, done.stderr
    a, b = pl.read_csv(from_pickle), pl.read_csv(from_models)
    assert a.columns == ["id", "prediction"] == b.columns
    live = pl.read_parquet(tiny_data_dir / "v5.2" / "live.parquet")
    assert a["id"].to_list() == live["id"].to_list()
    joined = a.join(b, on="id", suffix="_nx")
    assert joined.height == live.height
    np.testing.assert_allclose(joined["prediction"], joined["prediction_nx"], atol=1e-9)
    assert a["prediction"].min() > 0 and a["prediction"].max() == 1.0


def test_predict_validation_eras_from_models(models, tiny_data_dir, tmp_path):
    out = tmp_path / "val.csv"
    data = tiny_data_dir / "v5.2" / "validation.parquet"
    done = nx_run(
        "predict", models["lgbm"], "--data", data, "-o", out, "--data-dir", tiny_data_dir, "--json"
    )
    assert done.returncode == 0, done.stderr
    facts = json.loads(done.stdout)
    frame = pl.read_parquet(data)
    assert facts["rows"] == frame.height and facts["eras"] == frame["era"].n_unique()
    predictions = pl.read_csv(out).join(frame.select("id", "era"), on="id")
    # ranked within each era: value * n is an average rank, so they sum to n (n + 1) / 2
    per_era = predictions.group_by("era").agg(
        (pl.col("prediction") * pl.len()).sum().alias("rank_sum"), pl.len().alias("n")
    )
    expected = per_era["n"] * (per_era["n"] + 1) / 2
    np.testing.assert_allclose(per_era["rank_sum"], expected, rtol=1e-12)


def test_export_config_trains_then_exports(runtime_env, tiny_data_dir, tmp_path):
    from tests.export.conftest import CONFIGS

    config = tmp_path / "fresh.toml"
    config.write_text(CONFIGS["lgbm"])
    out = tmp_path / "fresh.pkl"
    document = _export(
        runtime_env, tiny_data_dir, out, "--config", config, "--output-dir", tmp_path / "exp"
    )
    assert (tmp_path / "exp" / "models" / "fresh" / "manifest.json").is_file()
    assert document["models"][0]["name"] == "fresh"
    assert out.is_file() and Path(str(out) + ".json").is_file()


def test_a_stale_sidecar_is_not_trusted(single, runtime_env, tiny_data_dir, tmp_path):
    pickle = tmp_path / "copy.pkl"
    pickle.write_bytes(single.read_bytes())
    sidecar = json.loads(Path(str(single) + ".json").read_text())
    sidecar["sha256"] = "0" * 64
    Path(str(pickle) + ".json").write_text(json.dumps(sidecar))
    done = _check(runtime_env, tiny_data_dir, pickle)
    assert done.returncode == 0, done.stderr
    rules = {r["rule"]: r for r in json.loads(done.stdout)["rules"]}
    assert rules["matches_nx"]["skipped"] and "stale sidecar" in rules["matches_nx"]["detail"]


# ---- nx numerai upload runs the real check first (no --skip-check)


def test_exported_pickle_passes_the_check_and_uploads(single, runtime_env, tiny_data_dir):
    with FakeNumerai() as fake:
        result = nx_run(
            *UPLOAD_ARGS, single, "--data-dir", tiny_data_dir,
            env={**runtime_env, **fake_env(fake)},
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert fake.uploads["stored-model.pkl"] == single.read_bytes()
        assert fake.calls[-1] == "assignPickleToModel"
    assert SECRET_KEY not in result.stdout + result.stderr


def _rank_first_column(live_features):
    return live_features.iloc[:, :1].rank(pct=True)


def test_pickle_from_another_python_is_refused_before_any_request(
    runtime_env, tiny_data_dir, tmp_path
):
    """Numerai's most reported failure: a pickle made by another Python minor version (the
    dev venv's, not the runtime's 3.12) does not load there; the upload stops before any
    request."""
    bad = tmp_path / "other_python.pkl"
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the runtime has no tests/
    bad.write_bytes(cloudpickle.dumps(_rank_first_column))
    with FakeNumerai() as fake:
        result = nx_run(
            *UPLOAD_ARGS, bad, "--data-dir", tiny_data_dir, env={**runtime_env, **fake_env(fake)}
        )
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.returncode == 2, result.stderr
        assert len(lines) == 1, result.stderr
        assert "runtime 3.12" in result.stderr
        assert fake.calls == []
    assert "Traceback" not in result.stderr


def test_runtime_peak_memory_is_the_workers_own():
    """The peak memory `nx export` reports is the runtime worker's, not that of the nx
    process that started it (Linux's ru_maxrss of a child counts its parent's RSS)."""
    import subprocess
    import sys

    parent = bytearray(800 * 2**20)  # this process (nx, after training) holds 800 MB
    parent[::4096] = b"x" * len(parent[::4096])  # touched: resident
    code = "from nx.engine.export._runtime_worker import peak_rss_bytes; print(peak_rss_bytes())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert 10 * 2**20 < int(done.stdout) < 400 * 2**20
    del parent
