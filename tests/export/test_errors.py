"""Bad input to ``nx export``, ``nx check-pickle`` and ``nx predict``: one line, exit 2,
nothing left behind."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import assert_user_error, nx_run
from tests.export.conftest import run_in_runtime


def _only(folder: Path, *names: str) -> None:
    """``folder`` holds exactly ``names`` (no pickle, sidecar or temporary file left)."""
    assert sorted(p.name for p in folder.iterdir()) == sorted(names)


def _edited_model(models, tmp_path: Path, edit) -> Path:
    folder = tmp_path / "edited"
    shutil.copytree(models["lgbm"], folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    edit(manifest, folder)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def _add_column(name: str, group: str, baseline: bool = False):
    def edit(manifest, folder):
        manifest["columns"].append(name)
        manifest["x_groups"].append(group)
        if baseline:
            manifest["baseline"] = {"name": name, "predictions_path": "p.parquet"}

    return edit


def _newer(manifest, folder):
    manifest["format"] = "nx-model/2"
    manifest["nx_version"] = "9.0.0"


@pytest.mark.parametrize(
    ("edit", "fragments"),
    [
        (_newer, ["newer nx (9.0.0, format nx-model/2)", "upgrade nx"]),
        (_add_column("era", "era"), ["reads the era number", "'era'", "model.x_groups"]),
        (
            _add_column("small_baseline", "baseline", baseline=True),
            ["baseline predictions 'small_baseline'", "model.x_groups"],
        ),
    ],
)
def test_export_refuses_what_cannot_be_served(
    models, runtime_env, tiny_data_dir, tmp_path, edit, fragments
):
    folder = _edited_model(models, tmp_path, edit)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    done = nx_run(
        "export", folder, "-o", out_dir / "m.pkl", "--data-dir", tiny_data_dir, env=runtime_env
    )
    assert_user_error(done, str(folder), *fragments)
    _only(out_dir)


def test_export_input_errors(models, runtime_env, tiny_data_dir, tmp_path):
    out = tmp_path / "m.pkl"
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [
        ([empty], ["no manifest.json", "nx train CONFIG --final"]),
        ([tmp_path / "absent"], ["not a model folder"]),
        ([models["lgbm"], "--weights", "1,2"], ["2 weight(s) for 1 model(s)"]),
        ([models["lgbm"], models["ridge"], "--weights", "1,x"], ["not numbers"]),
        ([models["lgbm"], models["ridge"], "--weights", "1,-1"], ["non-zero"]),
        ([models["lgbm"], "--neutralize-features", "huge"], ["unknown feature set 'huge'"]),
        ([models["lgbm"], "--neutralize-proportion", "2"], ["within [0, 1]"]),
        ([models["lgbm"], "--runtime", "3.9"], ["unknown runtime '3.9'"]),
        ([], ["no model given"]),
    ]
    for args, fragments in cases:
        done = nx_run("export", *args, "-o", out, "--data-dir", tiny_data_dir, env=runtime_env)
        assert_user_error(done, *fragments)
    _only(tmp_path, "empty")


def test_runtime_not_installed_names_the_install_command(models, tiny_data_dir, tmp_path):
    env = {"NX_RUNTIME_DIR": str(tmp_path / "none")}
    out = tmp_path / "m.pkl"
    done = nx_run("export", models["lgbm"], "-o", out, "--data-dir", tiny_data_dir, env=env)
    assert_user_error(done, "runtime 3.12 is not installed", "nx runtime install --python 3.12")
    assert not out.exists()
    done = nx_run("export", models["lgbm"], "-o", out, "--runtime", "3.13", env=env)
    assert_user_error(done, "nx runtime install --python 3.13")


def test_a_model_the_runtime_cannot_read_leaves_no_pickle(
    models, runtime_env, tiny_data_dir, tmp_path
):
    folder = _edited_model(
        models, tmp_path, lambda m, f: (f / m["model_file"]).write_text("not a model\n")
    )
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    done = nx_run(
        "export",
        folder,
        "-o",
        out_dir / "m.pkl",
        "--data-dir",
        tiny_data_dir,
        "--json",
        env=runtime_env,
    )
    assert done.stdout == ""
    assert_user_error(done, "building the pickle in runtime 3.12 failed", "cannot read it")
    _only(out_dir)


def test_live_data_without_a_feature(models, runtime_env, tiny_data_dir, tmp_path):
    manifest = json.loads((models["lgbm"] / "manifest.json").read_text())
    feature = manifest["features"][0]
    live = pl.read_parquet(tiny_data_dir / "v5.2" / "live.parquet").drop(feature)
    data = tmp_path / "live.parquet"
    live.write_parquet(data)
    pickle = tmp_path / "m.pkl"
    done = nx_run(
        "export", models["lgbm"], "-o", pickle, "--data-dir", tiny_data_dir, env=runtime_env
    )
    assert done.returncode == 0, done.stderr
    for source in (pickle, models["lgbm"]):
        done = nx_run("predict", source, "--data", data, "-o", tmp_path / "p.csv", env=runtime_env)
        assert_user_error(done, feature)
    _only(tmp_path, "live.parquet", "m.pkl", "m.pkl.json")


def _foreign_pickle(runtime_env, folder: Path, body: str, module: bool = False) -> Path:
    """A pickle made by hand in the runtime (as a user would), not by nx export."""
    path = folder / "user.pkl"
    source = textwrap.dedent(body)
    if module:  # predict defined in the user's own module: pickled by reference
        (folder / "user_code.py").write_text("import pandas as pd\n" + source)
        code = (
            "import sys, cloudpickle\nsys.path.insert(0, sys.argv[2])\nimport user_code\n"
            "open(sys.argv[1], 'wb').write(cloudpickle.dumps(user_code.predict))\n"
        )
    else:
        code = (
            "import sys, cloudpickle, pandas as pd\nns = {'pd': pd}\n"
            f"exec({source!r}, ns)\n"
            "open(sys.argv[1], 'wb').write(cloudpickle.dumps(ns['predict']))\n"
        )
    done = run_in_runtime(runtime_env, code, path, folder, cwd=folder)
    assert done.returncode == 0, done.stderr
    if module:
        (folder / "user_code.py").unlink()
    return path


@pytest.mark.parametrize(
    ("body", "module", "rule", "detail"),
    [
        (
            """
            def predict(live_features):
                out = pd.DataFrame({"prediction": 0.5}, index=live_features.index)
                out.iloc[0, 0] = float("nan")
                return out
            """,
            False,
            "no_nan",
            "1 NaN values",
        ),
        (
            """
            def predict(live_features):
                return pd.DataFrame({"prediction": 2.0}, index=live_features.index)
            """,
            False,
            "in_range",
            "[2, 2]",
        ),
        (
            """
            def predict(live_features):
                return live_features.index.to_series()
            """,
            False,
            "dataframe",
            "returned Series",
        ),
        (
            """
            def predict(live_features, live_benchmark_models, extra):
                return None
            """,
            False,
            "arguments",
            "3 argument(s)",
        ),
        (
            """
            def predict(live_features):
                return pd.DataFrame({"prediction": 0.5}, index=live_features.index)
            """,
            True,
            "loads",
            "ModuleNotFoundError",
        ),
    ],
)
def test_check_pickle_names_the_broken_rule(
    runtime_env, tiny_data_dir, tmp_path, body, module, rule, detail
):
    pickle = _foreign_pickle(runtime_env, tmp_path, body, module)
    as_json = rule == "no_nan"  # one case with --json: the report on stdout, still exit 2
    args = ["--json"] if as_json else []
    done = nx_run("check-pickle", pickle, "--data-dir", tiny_data_dir, *args, env=runtime_env)
    assert done.returncode == 2, done.stderr
    last = [line for line in done.stderr.splitlines() if line.strip()][-1]
    assert f"rule {rule} failed" in last and detail in last, done.stderr
    assert "Traceback" not in done.stderr
    if as_json:
        report = json.loads(done.stdout)
        assert not report["passed"]
        assert [r["rule"] for r in report["rules"] if not r["passed"]][0] == rule
    else:
        assert f"│ {rule}" in done.stderr and "FAIL" in done.stderr  # the rule table


def test_check_pickle_without_sidecar_skips_the_nx_comparison(runtime_env, tiny_data_dir, tmp_path):
    body = """
    def predict(live_features):
        return pd.DataFrame({"prediction": live_features.iloc[:, 2].rank(pct=True)})
    """
    pickle = _foreign_pickle(runtime_env, tmp_path, body)
    done = nx_run("check-pickle", pickle, "--data-dir", tiny_data_dir, "--json", env=runtime_env)
    assert done.returncode == 0, done.stderr
    rules = {r["rule"]: r for r in json.loads(done.stdout)["rules"]}
    assert rules["matches_nx"].get("skipped") and "runs_by_era" not in rules


def test_check_pickle_missing_inputs(runtime_env, tmp_path):
    assert_user_error(
        nx_run("check-pickle", tmp_path / "absent.pkl", env=runtime_env), "absent.pkl not found"
    )
    pickle = tmp_path / "x.pkl"
    pickle.write_bytes(b"not a pickle")
    done = nx_run("check-pickle", pickle, "--data-dir", tmp_path / "nodata", env=runtime_env)
    assert_user_error(done, "live.parquet not found", "nx build-data")
