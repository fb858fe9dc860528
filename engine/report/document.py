"""``nx report``: ``experiment.md`` (the reference's report checklist) and ``report.html``.

experiment.md holds two kinds of sections. Those that come from data (a header with
the date, Method, Experiments run, Results, Standard plot, Repro commands) sit
between ``<!-- nx:begin NAME -->`` and ``<!-- nx:end NAME -->`` and are rewritten on
every run. Those that need a researcher (Abstract, Hypothesis / Motivation, Decisions
made, Stopping rationale, Findings, Next experiments) get a heading and a prompt
once; nx never touches their text again, nor anything else outside the markers. A
generated block whose markers were deleted is appended again at the end.

report.html is one file that opens offline: inline CSS, figures as ``data:`` PNGs,
no scripts, fonts or links to anything outside it.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import math
import re
import shlex
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from nx.engine.errors import ReportError
from nx.engine.paths import DEFAULT_DATA_DIR, atomic_output
from nx.engine.progress import NO_PROGRESS, Progress
from nx.engine.report.curves import BENCHMARK_BASE, read_predictions, resolve_benchmark
from nx.engine.report.experiment import (
    Run,
    check_experiment_dir,
    configs_without_results,
    load_experiment,
)

MARKDOWN = "experiment.md"
HTML = "report.html"
PLOT_MAX_RUNS = 10

# (heading, generated block name or None, prompt for a researcher section)
SECTIONS: tuple[tuple[str, str | None, str], ...] = (
    ("Abstract", None, "What was tested and the headline result."),
    ("Hypothesis / Motivation", None, "Why this should help BMC."),
    ("Method", "method", ""),
    ("Experiments run", "experiments", ""),
    ("Results", "results", ""),
    ("Standard plot", "plot", ""),
    ("Decisions made", None, "What you chose and why (per-era vs global, feature set, sweep)."),
    ("Stopping rationale", None, "Why you stopped iterating (plateau, scale step, returns)."),
    ("Findings", None, "What worked, what did not; read the plot."),
    ("Next experiments", None, "Two to five concrete follow-ups."),
    ("Repro commands", "repro", ""),
)
_BLOCK = re.compile(r"<!-- nx:begin (\w+) -->\n.*?<!-- nx:end \1 -->", re.DOTALL)


def _fmt(value: float, digits: int = 4) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _block(name: str, body: str) -> str:
    return f"<!-- nx:begin {name} -->\n{body.rstrip()}\n<!-- nx:end {name} -->"


def _quote(path: Path | str) -> str:
    return shlex.quote(str(path))


# ----------------------------------------------------------------------- sections


def _method(runs: list[Run]) -> str:
    def common(*keys: str) -> str:
        values = sorted({str(v) for r in runs if (v := r.get(*keys)) is not None})
        return ", ".join(values) if values else "-"

    lines = [
        f"- Data: version {common('data', 'data_version')}, file(s) "
        f"{common('data', 'full_data_path')}, target {common('data', 'target')}",
        f"- Benchmark for BMC: {common('benchmark', 'model')}",
        "- Scores: out-of-fold per-era numerai_corr, BMC and BMC over the last 200 eras "
        "(numerai-tools definitions, computed by nx)",
        "",
        "| run | model | feature set | CV | target transform | params |",
        "|---|---|---|---|---|---|",
    ]
    for r in runs:
        cv = r.get("cv") or {}
        cv_text = "-"
        if isinstance(cv, dict) and cv.get("n_splits") is not None:
            cv_text = (
                f"{cv.get('mode', '?')}, {cv.get('n_splits')} folds, embargo {cv.get('embargo')}"
            )
            if cv.get("enabled") is False:
                cv_text = "off"
        transform = r.get("training", "target_transform")
        transform = transform.get("type") if isinstance(transform, dict) else transform
        params = r.get("model", "params")
        params_text = (
            ", ".join(f"{k}={v}" for k, v in sorted(params.items()) if not isinstance(v, list))
            if isinstance(params, dict)
            else "-"
        )
        lines.append(
            f"| {r.name} | {r.model_type or '-'} | {r.feature_set or '-'} | {cv_text} | "
            f"{transform or '-'} | {params_text or '-'} |"
        )
    return "\n".join(lines)


def _relative(path: Path | None, base: Path) -> str:
    if path is None:
        return "-"
    try:
        return str(Path(path).resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)


def _experiments(experiment_dir: Path, runs: list[Run]) -> str:
    lines = []
    for r in runs:
        lines += [
            f"### {r.name}",
            "",
            f"- model: {r.model_type or '-'}, feature set: {r.feature_set or '-'}, "
            f"OOF rows: {r.get('data', 'oof_rows') or '-'}, OOF eras: "
            f"{r.get('data', 'oof_eras') or '-'}",
            f"- config: {_relative(r.config_path, experiment_dir)}",
            f"- results: {_relative(r.results_path, experiment_dir)}",
            f"- predictions: {_relative(r.predictions_path, experiment_dir)}",
            "",
        ]
    planned = configs_without_results(experiment_dir, runs)
    if planned:
        lines.append("Configured but not run (no results): " + ", ".join(p.name for p in planned))
    return "\n".join(lines)


def _results(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| run | corr_mean | bmc_mean | bmc_last_200_eras mean | avg_corr_with_benchmark |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        name = f"{row['name']} (base)" if row.get("base") else row["name"]
        lines.append(
            f"| {name} | {_fmt(row['corr']['mean'])} | {_fmt(row['bmc']['mean'])} | "
            f"{_fmt(row['bmc_last_200_eras']['mean'])} | "
            f"{_fmt(row['bmc']['avg_corr_with_benchmark'], 3)} |"
        )
    ranked = [row for row in rows if not row.get("base")]
    if ranked:
        best = ranked[0]
        lines += [
            "",
            f"Best run by BMC (last 200 eras, else all): **{best['name']}** "
            f"(bmc_last_200_eras mean {_fmt(best['bmc_last_200_eras']['mean'])}, "
            f"bmc_mean {_fmt(best['bmc']['mean'])}, corr_mean {_fmt(best['corr']['mean'])}).",
        ]
    return "\n".join(lines)


def _plot_section(plot: Path | None, command: str | None, base: str | None) -> str:
    if plot is None:
        return "No plot: no run has a predictions file to plot."
    return f"![{base} vs runs](plots/{plot.name})\n\nMade by:\n\n```bash\n{command}\n```"


def _repro(experiment_dir: Path, runs: list[Run], data_dir: Path, show_command: str | None) -> str:
    trained = [r for r in runs if r.config_path is not None and r.model_type not in _DERIVED]
    lines = []
    if trained:
        configs = " ".join(_quote(r.config_path) for r in trained)
        lines.append(
            f"nx train {configs} --output-dir {_quote(experiment_dir)} "
            f"--data-dir {_quote(data_dir)}"
        )
    for r in runs:
        params = r.get("model", "params") or {}
        if r.model_type == "RankGaussBlend":
            sources = " ".join(_quote(s) for s in params.get("sources", []))
            weights = ",".join(str(w) for w in params.get("weights", []))
            lines.append(
                f"nx blend {sources} --weights {weights} --output-dir {_quote(experiment_dir)} "
                f"--name {_quote(r.name)} --data-dir {_quote(data_dir)}"
            )
        elif r.model_type == "Neutralized":
            lines.append(
                f"nx neutralize {_quote(params.get('source', '?'))} --features "
                f"{params.get('feature_set', '?')} --proportion {params.get('proportion', 1.0)} "
                f"--output-dir {_quote(experiment_dir)} --name {_quote(r.name)} "
                f"--data-dir {_quote(data_dir)}"
            )
    if show_command:
        lines.append(show_command)
    lines.append(f"nx report {_quote(experiment_dir)} --data-dir {_quote(data_dir)}")
    return "```bash\n" + "\n".join(lines) + "\n```"


_DERIVED = ("RankGaussBlend", "Neutralized")


# ----------------------------------------------------------------------- markdown


def _template(title: str, blocks: dict[str, str]) -> str:
    parts = [f"# {title}", "", _block("header", blocks["header"]), ""]
    for heading, name, prompt in SECTIONS:
        parts.append(f"## {heading}")
        parts.append("")
        if name is None:
            parts.append(f"<!-- nx: your text; `nx report` keeps it. {prompt} -->")
            parts.append(f"_To fill: {prompt}_")
        else:
            parts.append(_block(name, blocks[name]))
        parts.append("")
    return "\n".join(parts)


def merge_markdown(existing: str, title: str, blocks: dict[str, str]) -> str:
    """``existing`` with every generated block replaced; blocks it lacks are appended."""
    seen: set[str] = set()

    def replace(match: re.Match) -> str:
        name = match.group(1)
        if name not in blocks:
            return match.group(0)
        seen.add(name)
        return _block(name, blocks[name])

    text = _BLOCK.sub(replace, existing)
    missing = [name for name in blocks if name not in seen]
    if missing:
        headings = {name: heading for heading, name, _ in SECTIONS if name}
        headings["header"] = "Summary"
        extra = [f"## {headings[name]}\n\n{_block(name, blocks[name])}\n" for name in missing]
        text = text.rstrip("\n") + "\n\n" + "\n".join(extra)
    return text if text.endswith("\n") else text + "\n"


def render_markdown(path: Path, title: str, blocks: dict[str, str]) -> str:
    if path.is_file():
        return merge_markdown(path.read_text(encoding="utf-8"), title, blocks)
    return _template(title, blocks)


# --------------------------------------------------------------------------- html

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;
max-width:1200px;padding:0 1rem;color:#1b1f24;background:#fff;line-height:1.45}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #d8dde3}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
th,td{padding:.25rem .6rem;border-bottom:1px solid #e5e8ec;text-align:right}
th{background:#f3f5f7}td:first-child,th:first-child{text-align:left}
img{max-width:100%;height:auto;border:1px solid #e5e8ec}
pre{background:#f6f8fa;padding:.8rem;overflow-x:auto;font-size:.8rem;white-space:pre-wrap}
.muted{color:#6a737d;font-size:.85rem}
"""
_DARK_CSS = """
body{color:#e6edf3;background:#0d1117}th{background:#161b22}
th,td,h2,img{border-color:#30363d}pre{background:#161b22}.muted{color:#8b949e}
"""


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _leaderboard_html(rows: list[dict[str, Any]]) -> str:
    headers = [
        "run", "model", "corr mean", "corr sharpe", "bmc mean", "bmc sharpe", "bmc max dd",
        "corr w/ bench", "bmc200 mean", "bmc200 sharpe", "Δ bmc200 vs base",
    ]  # fmt: skip
    out = []
    for row in rows:
        delta = row.get("delta", {}).get("bmc_last_200_eras_mean", math.nan)
        out.append(
            [
                row["name"] + (" (base)" if row.get("base") else ""),
                row.get("model_type") or "-",
                _fmt(row["corr"]["mean"]),
                _fmt(row["corr"]["sharpe"], 3),
                _fmt(row["bmc"]["mean"]),
                _fmt(row["bmc"]["sharpe"], 3),
                _fmt(row["bmc"]["max_drawdown"]),
                _fmt(row["bmc"]["avg_corr_with_benchmark"], 3),
                _fmt(row["bmc_last_200_eras"]["mean"]),
                _fmt(row["bmc_last_200_eras"]["sharpe"], 3),
                "" if row.get("base") else _fmt(delta),
            ]
        )
    return _table(headers, out)


def prediction_correlations(runs: list[Run]) -> tuple[list[str], np.ndarray]:
    """Pearson correlation of the runs' per-era gaussianized ranks over the ids they
    share (runs without a predictions file are left out)."""
    from nx.engine.metrics import gaussianize

    with_preds = [r for r in runs if r.predictions_path is not None]
    if not with_preds:
        return [], np.zeros((0, 0))
    merged: pl.DataFrame | None = None
    for i, r in enumerate(with_preds):
        frame = read_predictions(r).select("id", "era", pl.col("prediction").alias(f"p{i}"))
        merged = (
            frame
            if merged is None
            else merged.join(frame.drop("era"), on="id", how="inner", maintain_order="left")
        )
    names = [r.name for r in with_preds]
    if merged.height < 2:
        return names, np.full((len(names), len(names)), np.nan)
    values = merged.select(f"p{i}" for i in range(len(with_preds))).to_numpy()
    gauss = gaussianize(values, merged["era"])
    finite = np.isfinite(gauss).all(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        matrix = np.atleast_2d(np.corrcoef(gauss[finite].T))
    return names, matrix


def _html(
    title: str,
    generated: str,
    show: Any,
    plot_png: bytes | None,
    plot_command: str | None,
    dist_png: bytes | None,
    corr_names: list[str],
    corr_matrix: np.ndarray,
    corr_png: bytes | None,
    method_md: str,
    markdown: str,
    dark: bool = False,
) -> str:
    css = _CSS + (_DARK_CSS if dark else "")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{css}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="muted">{html.escape(generated)}</p>',
        "<h2>Leaderboard</h2>",
        _leaderboard_html(show.rows),
        "<h2>Standard plot</h2>",
    ]
    if plot_png is not None:
        parts += [_img(plot_png, "standard plot"), f"<pre>{html.escape(plot_command or '')}</pre>"]
    else:
        parts.append("<p>No run has a predictions file to plot.</p>")
    parts.append("<h2>Per-era score distributions</h2>")
    if dist_png is not None:
        parts.append(_img(dist_png, "per-era score distributions"))
    parts.append("<h2>Correlation of the runs' OOF predictions</h2>")
    if corr_names:
        parts.append(
            '<p class="muted">Pearson correlation of per-era gaussianized ranks over the ids '
            "all runs share.</p>"
        )
        if corr_png is not None:
            parts.append(_img(corr_png, "correlation matrix"))
        rows = [[n, *(_fmt(v, 3) for v in corr_matrix[i])] for i, n in enumerate(corr_names)]
        parts.append(_table(["run", *corr_names], rows))
    parts += [
        "<h2>Method</h2>",
        f"<pre>{html.escape(method_md)}</pre>",
        "<h2>experiment.md</h2>",
        f"<pre>{html.escape(markdown)}</pre>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


# --------------------------------------------------------------------------- main


def _plot_base(runs: list[Run], has_benchmark: bool) -> str | None:
    if has_benchmark:
        return BENCHMARK_BASE
    named = [r.name for r in runs if "baseline" in r.name.lower()]
    return named[0] if named else runs[0].name


def write_report(
    experiment_dir: Path,
    data_dir: Path = DEFAULT_DATA_DIR,
    benchmark_data: Path | None = None,
    benchmark_model: str | None = None,
    dark: bool = False,
    progress: Progress = NO_PROGRESS,
    today: dt.date | None = None,
) -> dict[str, Any]:
    """Write ``experiment.md`` and ``report.html`` into ``experiment_dir`` (and the
    standard plot under ``plots/``); returns their paths and what they cover."""
    from nx.engine.report.figures import correlation_figure, distribution_figure, png_bytes
    from nx.engine.report.show import show_experiment

    experiment_dir = check_experiment_dir(experiment_dir)
    runs = load_experiment(experiment_dir)
    benchmark = resolve_benchmark(runs, benchmark_data, benchmark_model, data_dir)
    plotted = [r for r in runs if r.predictions_path is not None]
    base = _plot_base(plotted or runs, benchmark is not None)
    names = [r.name for r in runs]
    show = show_experiment(
        experiment_dir, names, base=base if plotted else None, data_dir=data_dir,
        benchmark_data=benchmark_data, benchmark_model=benchmark_model, progress=progress,
    )  # fmt: skip
    plot_path = plot_command = plot_show = None
    if plotted and len(plotted) > (0 if base == BENCHMARK_BASE else 1):
        ranked = [row["name"] for row in show.rows if not row["base"]]
        chosen = [n for n in ranked if n in {r.name for r in plotted}][:PLOT_MAX_RUNS]
        plot_show = show_experiment(
            experiment_dir, chosen, base=base, plot=True, dark=dark, data_dir=data_dir,
            benchmark_data=benchmark_data, benchmark_model=benchmark_model, progress=progress,
        )  # fmt: skip
        plot_path = plot_show.plot_path
        options = [f"--base {base}", "--plot", f"--data-dir {_quote(data_dir)}"]
        if dark:
            options.append("--dark")
        if benchmark_data is not None:
            options.append(f"--benchmark-data {_quote(benchmark_data)}")
        if benchmark_model is not None:
            options.append(f"--benchmark-model {benchmark_model}")
        plot_command = (
            f"nx show {_quote(experiment_dir)} {' '.join(_quote(n) for n in chosen)} "
            + " ".join(options)
        )

    today = today or dt.date.today()
    best = next((row["name"] for row in show.rows if not row["base"]), "-")
    method_md = _method(runs)
    blocks = {
        "header": f"Date: {today.isoformat()} · {len(runs)} runs · best by BMC: {best} · "
        "sections between nx markers are regenerated by `nx report`; write in the others.",
        "method": method_md,
        "experiments": _experiments(experiment_dir, runs),
        "results": _results(show.rows),
        "plot": _plot_section(plot_path, plot_command, show.base),
        "repro": _repro(experiment_dir, runs, data_dir, plot_command),
    }
    md_path = experiment_dir / MARKDOWN
    title = f"Experiment: {experiment_dir.resolve().name}"
    markdown = render_markdown(md_path, title, blocks)

    with progress.task("Figures for report.html", total=None):
        plot_png = plot_path.read_bytes() if plot_path is not None else None
        dist_png = None
        if plot_show is not None:
            series = {
                name: {"corr": s.corr, **({"bmc": s.bmc} if s.bmc is not None else {})}
                for name, s in plot_show.scores.items()
            }
            dist_png = png_bytes(distribution_figure(series, dark))
        corr_names, corr_matrix = prediction_correlations(runs)
        corr_png = (
            png_bytes(correlation_figure(corr_names, corr_matrix, dark)) if corr_names else None
        )
    document = _html(
        title, f"Generated by nx report on {today.isoformat()} from {experiment_dir}", show,
        plot_png, plot_command, dist_png, corr_names, corr_matrix, corr_png, method_md, markdown,
        dark,
    )  # fmt: skip
    html_path = experiment_dir / HTML
    try:
        with atomic_output(md_path) as tmp:
            tmp.write_text(markdown, encoding="utf-8")
        with atomic_output(html_path) as tmp:
            tmp.write_text(document, encoding="utf-8")
    except OSError as error:
        raise ReportError(f"cannot write the report in {experiment_dir}: {error}") from None
    return {
        "markdown": str(md_path),
        "html": str(html_path),
        "plot": str(plot_path) if plot_path else None,
        "plot_command": plot_command,
        "runs": names,
        "base": show.base,
        "sections": [heading for heading, _, _ in SECTIONS],
    }
