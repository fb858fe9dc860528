"""``nx show --plot`` against the reference framework's ``show_experiment``, as its users
run it, on one experiment of 20 configs x 600 eras.

The experiment: 20 OOF predictions files (id, era, target, prediction, cv_fold) of the
same 600 eras x ROWS_PER_ERA ids, their results JSON, and a benchmark models file
(``full_benchmark_models.parquet``) under a data dir. Both sides draw the standard
plot with the benchmark as base (the report skill's standard plot) for all 20 runs
and print the table.

- nx: ``nx show EXP --plot --data-dir DATA --json`` (a subprocess: start-up included).
- reference: a faithful pandas script of what ``show_experiment`` does (written here,
  not copied): the table from the results files; each predictions file read with
  pandas, per-era numerai_corr and BMC through ``groupby(era).apply`` of numerai-tools,
  the benchmark attached by id, the benchmark base scored the same way, cumulative
  sums over the common eras, three pyplot panels saved at 150 dpi. Run as
  ``python script.py benchmark m1 ... m20 --base-benchmark-model ...``.

Both print the benchmark base's corr mean; they must agree to 1e-9. Bar from the
issue: nx under 5 s. Run: ``pytest benchmarks/test_report.py -s``.
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest

N_CONFIGS, N_ERAS, ROWS_PER_ERA = 20, 600, 1_000
BENCHMARK = "v52_lgbm_ender20"
NX_EXE = shutil.which("nx", path=str(Path(sys.executable).parent)) or "nx"
TARGETS = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
MEASURED: dict[str, float] = {}

REFERENCE_SCRIPT = textwrap.dedent(
    """
    import argparse, json, sys
    from pathlib import Path
    import numpy as np
    import pandas as pd
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from numerai_tools.scoring import correlation_contribution, numerai_corr

    p = argparse.ArgumentParser()
    p.add_argument("base_model")
    p.add_argument("models", nargs="+")
    p.add_argument("--output-dir", type=Path, required=True)
    p.add_argument("--base-benchmark-model", default=None)
    p.add_argument("--benchmark-data-path", type=Path, required=True)
    p.add_argument("--start-era", type=int, default=0)
    args = p.parse_args()

    def sort_eras(s):
        return s.loc[sorted(s.index, key=int)]

    def per_era_corr(df, col, target):
        df = df.dropna(subset=[col, target])
        out = df.groupby("era").apply(lambda g: numerai_corr(g[[col]], g[target]))
        return sort_eras(out[col])

    def per_era_bmc(df, col, bench, target):
        df = df.dropna(subset=[col, bench, target])
        out = df.groupby("era").apply(
            lambda g: correlation_contribution(g[[col]], g[bench], g[target]))
        return sort_eras(out[col])

    def summary(s):
        s = s.dropna()
        cum = s.cumsum()
        std = s.std(ddof=0)
        return {"mean": s.mean(), "std": std, "sharpe": s.mean() / std,
                "max_drawdown": (cum.expanding(min_periods=1).max() - cum).max()}

    def attach(preds, bench, col):
        preds = preds.set_index("id")
        common = preds.index.intersection(bench.index)
        preds = preds.loc[common]
        b = bench.loc[common]
        assert np.array_equal(b["era"].astype(str).to_numpy(), preds["era"].astype(str).to_numpy())
        preds[col] = b[col].to_numpy()
        return preds.reset_index()

    def load(name):
        return pd.read_parquet(args.output_dir / "predictions" / f"{name}.parquet",
                               columns=["prediction", "target", "era", "id"])

    rows = []
    for name in args.models:
        r = json.loads((args.output_dir / "results" / f"{name}.json").read_text())
        m = r["metrics"]
        rows.append({"model": name, "bmc_mean": m["bmc"]["mean"],
                     "bmc_sharpe": m["bmc"]["sharpe"],
                     "bmc_last200_mean": m["bmc_last_200_eras"]["mean"],
                     "corr_mean": m["corr"]["mean"], "corr_sharpe": m["corr"]["sharpe"]})
    col = args.base_benchmark_model
    bench = pd.read_parquet(args.benchmark_data_path, columns=[col, "id", "era"]).set_index("id")
    base = attach(load(args.models[0]), bench, col)
    base["prediction"] = base[col].to_numpy()
    base_corr = per_era_corr(base, "prediction", "target")
    base_bmc = per_era_bmc(base, "prediction", col, "target")
    rows.insert(0, {"model": col, **{f"corr_{k}": v for k, v in summary(base_corr).items()},
                    **{f"bmc_{k}": v for k, v in summary(base_bmc).items()}})
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda x: f"{x:.6f}"))

    def keep(s):
        return s[[int(e) >= args.start_era for e in s.index]]

    base_corr = keep(base_corr)
    corrs = {n: keep(per_era_corr(load(n), "prediction", "target")) for n in args.models}
    common = base_corr.index
    for s in corrs.values():
        common = common.intersection(s.index)
    base_cum = base_corr.loc[common].cumsum()
    cums = {n: s.loc[common].cumsum() for n, s in corrs.items()}
    bmcs = {n: keep(per_era_bmc(attach(load(n), bench, col), "prediction", col, "target"))
            for n in args.models}
    base_bmc = keep(base_bmc)
    common_b = base_bmc.index
    for s in bmcs.values():
        common_b = common_b.intersection(s.index)
    fig, axes = plt.subplots(3, 1, figsize=(12, 12), sharex=True)
    axes[0].plot(base_cum.index, base_cum.values, label=col, linewidth=2)
    for n, s in cums.items():
        axes[0].plot(s.index, s.values, label=n)
        axes[1].plot(s.index, s.values - base_cum.values, label=f"{n} - {col}")
    axes[1].axhline(0, color="black")
    axes[2].plot(common_b, base_bmc.loc[common_b].cumsum().values, label=col, linewidth=2)
    for n, s in bmcs.items():
        axes[2].plot(common_b, s.loc[common_b].cumsum().values, label=n)
    for ax in axes:
        ax.legend()
        ax.grid(True, alpha=0.3)
    plt.tight_layout()
    (args.output_dir / "plots").mkdir(exist_ok=True)
    fig.savefig(args.output_dir / "plots" / "reference.png", dpi=150)
    print(json.dumps({"base_corr_mean": float(summary(base_corr)["mean"])}))
    """
)


def _write_experiment(root: Path) -> tuple[Path, Path]:
    """20 runs' predictions and results on the same ids, and the benchmark file."""
    from nx.engine import metrics

    rng = np.random.default_rng(0)
    n = N_ERAS * ROWS_PER_ERA
    eras = np.repeat([f"{e:04d}" for e in range(1, N_ERAS + 1)], ROWS_PER_ERA)
    ids = np.array([f"n{i:015x}" for i in range(n)])
    signal = rng.normal(size=n)
    target = TARGETS[np.clip(np.round(signal * 0.5 + 2 + rng.normal(size=n)), 0, 4).astype(int)]
    bench_values = signal + rng.normal(size=n) * 2
    data_dir, exp = root / "data", root / "exp"
    (data_dir / "v5.2").mkdir(parents=True)
    pl.DataFrame({"id": ids, "era": eras, BENCHMARK: bench_values}).with_columns(
        pl.col(BENCHMARK).rank() / n
    ).write_parquet(data_dir / "v5.2" / "full_benchmark_models.parquet")
    bench_ranked = pl.read_parquet(data_dir / "v5.2" / "full_benchmark_models.parquet")[BENCHMARK]
    for sub in ("predictions", "results"):
        (exp / sub).mkdir(parents=True)
    for c in range(N_CONFIGS):
        prediction = signal * rng.uniform(0.05, 0.3) + rng.normal(size=n)
        frame = pl.DataFrame(
            {"id": ids, "era": eras, "target": target, "prediction": prediction,
             "cv_fold": np.repeat(np.arange(N_ERAS) // 120, ROWS_PER_ERA)}
        )  # fmt: skip
        frame.write_parquet(exp / "predictions" / f"run_{c:02d}.parquet")
        _, summary = metrics.score(
            frame.with_columns(pl.Series("bench", bench_ranked.to_numpy())),
            ["prediction"],
            benchmark_col="bench",
        )
        document = {
            "model": {"type": "LGBMRegressor"},
            "data": {"data_version": "v5.2", "feature_set": "small"},
            "benchmark": {"model": BENCHMARK},
            "output": {"predictions_file": f"predictions/run_{c:02d}.parquet"},
            "metrics": summary["prediction"],
        }
        (exp / "results" / f"run_{c:02d}.json").write_text(json.dumps(document))
    return data_dir, exp


@pytest.fixture(scope="module")
def experiment():
    root = Path(tempfile.mkdtemp(prefix="nx_bench_report_"))
    try:
        yield _write_experiment(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _timed(cmd: list[str]) -> tuple[float, float, str]:
    """Wall time, CPU time (user + system of the child, all its threads) and stdout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert done.returncode == 0, done.stderr[-3000:]
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu, done.stdout


def test_show_plot_nx(benchmark, experiment):
    data_dir, exp = experiment
    cmd = [NX_EXE, "show", str(exp), "--plot", "--data-dir", str(data_dir), "--json"]
    _timed(cmd)  # warm-up: numba cache and font cache are a first run's costs
    times, cpus, outputs = [], [], []

    def one_round():
        elapsed, cpu, out = _timed(cmd)
        times.append(elapsed)
        cpus.append(cpu)
        outputs.append(out)

    benchmark.pedantic(one_round, rounds=3, iterations=1)
    doc = json.loads(outputs[-1])
    assert doc["plot"]["panels"] == 3 and len(doc["rows"]) == N_CONFIGS + 1
    MEASURED["nx_s"] = min(times)
    MEASURED["nx_cpu_s"] = min(cpus)
    MEASURED["nx_base_corr_mean"] = doc["rows"][0]["corr"]["mean"]
    benchmark.extra_info.update({"nx_best_s": min(times), "bar_s": 5.0})


def test_show_plot_reference(benchmark, experiment, tmp_path):
    data_dir, exp = experiment
    script = tmp_path / "show_experiment_reference.py"
    script.write_text(REFERENCE_SCRIPT)
    names = [f"run_{c:02d}" for c in range(N_CONFIGS)]
    cmd = [
        sys.executable, str(script), "benchmark", *names, "--output-dir", str(exp),
        "--base-benchmark-model", BENCHMARK,
        "--benchmark-data-path", str(data_dir / "v5.2" / "full_benchmark_models.parquet"),
    ]  # fmt: skip
    outputs = []

    def one_round():
        elapsed, cpu, out = _timed(cmd)
        MEASURED["reference_s"] = elapsed
        MEASURED["reference_cpu_s"] = cpu
        outputs.append(out)

    benchmark.pedantic(one_round, rounds=1, iterations=1)
    MEASURED["reference_base_corr_mean"] = json.loads(outputs[-1].splitlines()[-1])[
        "base_corr_mean"
    ]
    benchmark.extra_info.update({"reference_s": MEASURED["reference_s"]})


def test_show_plot_ratio(capsys):
    if not {"nx_s", "reference_s"} <= set(MEASURED):
        pytest.skip("run the two timed sides first (pytest benchmarks/test_report.py)")
    assert abs(MEASURED["nx_base_corr_mean"] - MEASURED["reference_base_corr_mean"]) < 1e-9
    ratio = MEASURED["reference_s"] / MEASURED["nx_s"]
    with capsys.disabled():
        print(
            f"\n[report bench] nx show --plot, {N_CONFIGS} configs x {N_ERAS} eras x "
            f"{ROWS_PER_ERA} rows: nx {MEASURED['nx_s']:.2f} s (bar < 5 s: "
            f"{'OK' if MEASURED['nx_s'] < 5 else 'OVER'}), reference-style pandas + "
            f"numerai-tools {MEASURED['reference_s']:.1f} s, ratio {ratio:.1f}x; CPU time "
            f"nx {MEASURED['nx_cpu_s']:.2f} s, reference {MEASURED['reference_cpu_s']:.1f} s, "
            f"ratio {MEASURED['reference_cpu_s'] / MEASURED['nx_cpu_s']:.1f}x"
        )
