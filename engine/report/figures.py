"""nx's figures (matplotlib, Agg): one style, light or dark, eras on the x axis.

Figures are built as :class:`matplotlib.figure.Figure` objects (no pyplot state),
so they can be inspected (panels, lines, labels) and are written atomically as PNG.
Numbered eras ("0575") are plotted at their number, so panels over different era
sets share one axis; other labels (dates) at their position in the sorted union.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nx.engine.paths import atomic_output

DPI = 150
PANEL_HEIGHT_IN = 4.0
WIDTH_IN = 12.0
LEGEND_INSIDE_MAX = 8


@dataclass(frozen=True)
class Theme:
    face: str
    text: str
    grid: str
    base: str
    zero: str
    palette: tuple[str, ...]


# Okabe-Ito (colour-blind safe) first, then tab20 for experiments with many runs
_OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442")
_TAB20 = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
    "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5",
)  # fmt: skip
LIGHT = Theme("#ffffff", "#1b1f24", "#d8dde3", "#1b1f24", "#6a737d", _OKABE_ITO + _TAB20)
DARK = Theme("#0d1117", "#e6edf3", "#30363d", "#f0f6fc", "#8b949e", _OKABE_ITO + _TAB20)


def theme(dark: bool) -> Theme:
    return DARK if dark else LIGHT


def new_figure(rows: int, dark: bool, height: float = PANEL_HEIGHT_IN, cols: int = 1):
    """A figure of ``rows`` x ``cols`` panels in the theme; returns (figure, axes list)."""
    from matplotlib.figure import Figure

    t = theme(dark)
    fig = Figure(figsize=(WIDTH_IN, height * rows), dpi=DPI, facecolor=t.face)
    axes = fig.subplots(rows, cols, squeeze=False).ravel().tolist()
    for ax in axes:
        ax.set_facecolor(t.face)
        ax.tick_params(colors=t.text, labelsize=9)
        for spine in ax.spines.values():
            spine.set_color(t.grid)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        ax.grid(True, color=t.grid, linewidth=0.6, alpha=0.8)
        ax.set_axisbelow(True)
    return fig, axes


def style_text(ax, dark: bool, title: str, ylabel: str, xlabel: str | None = None) -> None:
    t = theme(dark)
    ax.set_title(title, color=t.text, fontsize=12, loc="left", fontweight="bold")
    ax.set_ylabel(ylabel, color=t.text, fontsize=10)
    if xlabel:
        ax.set_xlabel(xlabel, color=t.text, fontsize=10)


def legend(ax, dark: bool, outside: bool = False) -> None:
    t = theme(dark)
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return
    if outside:
        leg = ax.legend(
            loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False, borderaxespad=0
        )
    else:
        leg = ax.legend(loc="best", fontsize=8, frameon=True, framealpha=0.85)
        leg.get_frame().set_facecolor(t.face)
        leg.get_frame().set_edgecolor(t.grid)
    for text in leg.get_texts():
        text.set_color(t.text)


class EraAxis:
    """x positions of era labels: the era number when every label has digits only."""

    def __init__(self, eras: Sequence[str]) -> None:
        labels = sorted(set(map(str, eras)))
        self.numeric = all(label.isdigit() for label in labels)
        if self.numeric:
            labels.sort(key=int)
            self.width = max(len(label) for label in labels) if labels else 4
            self._x = {label: float(int(label)) for label in labels}
        else:
            self._x = {label: float(i) for i, label in enumerate(labels)}
        self.labels = labels

    def x(self, eras: Sequence[str]) -> np.ndarray:
        return np.array([self._x[str(e)] for e in eras], dtype=float)

    def format(self, ax, max_ticks: int = 12) -> None:
        from matplotlib.ticker import FuncFormatter, MaxNLocator

        if self.numeric:
            ax.xaxis.set_major_locator(MaxNLocator(nbins=max_ticks, integer=True))
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{int(v):0{self.width}d}"))
        else:
            n = len(self.labels)
            step = max(1, n // max_ticks)
            ticks = list(range(0, n, step))
            ax.set_xticks(ticks, [self.labels[i] for i in ticks], rotation=30, ha="right")


def save_png(fig, path: Path) -> Path:
    """Write ``fig`` as PNG atomically (temporary file, then rename)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    path = Path(path)
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, facecolor=fig.get_facecolor())
    return path


def png_bytes(fig) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, facecolor=fig.get_facecolor())
    return buffer.getvalue()


@dataclass
class Curve:
    """One line: a label, its eras and its values."""

    label: str
    eras: np.ndarray
    values: np.ndarray


def experiment_figure(
    base: Curve,
    models: list[Curve],
    base_bmc: Curve | None,
    model_bmcs: list[Curve],
    dark: bool = False,
):
    """The standard plot: cumulative OOF corr of base and models, the models' cumulative
    corr minus the base's, and (with BMC) cumulative BMC. Curves hold per-era scores
    over the common eras; the cumulative sums are taken here (NaN eras add 0)."""
    t = theme(dark)
    rows = 3 if base_bmc is not None else 2
    fig, axes = new_figure(rows, dark)
    eras = list(base.eras) + (list(base_bmc.eras) if base_bmc is not None else [])
    axis = EraAxis(eras)
    outside = len(models) + 1 > LEGEND_INSIDE_MAX
    colors = {c.label: t.palette[i % len(t.palette)] for i, c in enumerate(models)}

    def cum(values: np.ndarray) -> np.ndarray:
        return np.cumsum(np.nan_to_num(values, nan=0.0))

    ax = axes[0]
    ax.plot(axis.x(base.eras), cum(base.values), color=t.base, lw=2.2, label=f"{base.label} (base)")
    for c in models:
        ax.plot(axis.x(c.eras), cum(c.values), color=colors[c.label], lw=1.4, label=c.label)
    style_text(ax, dark, "Cumulative per-era correlation (OOF)", "cumulative numerai_corr")

    ax = axes[1]
    ax.axhline(0, color=t.zero, lw=1, alpha=0.8)
    base_cum = cum(base.values)
    for c in models:
        ax.plot(
            axis.x(c.eras), cum(c.values) - base_cum, color=colors[c.label], lw=1.4,
            label=f"{c.label} - {base.label}",
        )  # fmt: skip
    style_text(ax, dark, f"Cumulative corr minus base ({base.label})", "Δ cumulative corr")

    if base_bmc is not None:
        ax = axes[2]
        ax.axhline(0, color=t.zero, lw=1, alpha=0.8)
        x = axis.x(base_bmc.eras)
        ax.plot(x, cum(base_bmc.values), color=t.base, lw=2.2, label=f"{base_bmc.label} (base)")
        for c in model_bmcs:
            ax.plot(axis.x(c.eras), cum(c.values), color=colors[c.label], lw=1.4, label=c.label)
        style_text(ax, dark, "Cumulative per-era BMC (OOF)", "cumulative BMC")

    # many runs: one legend beside the top panel (the colours are the same below)
    return _finish(fig, axes, axis, dark, outside, legends=axes[:1] if outside else axes)


def _finish(fig, axes, axis: EraAxis, dark: bool, outside: bool, legends):
    """Legends on ``legends``, era ticks on every panel sharing the top one's x axis,
    the x label under the last, and the margins (wider on the right for an outside
    legend)."""
    for ax in axes:
        if any(ax is shown for shown in legends):
            legend(ax, dark, outside)
        axis.format(ax)
        if ax is not axes[0]:
            ax.sharex(axes[0])
    axes[-1].set_xlabel("era", color=theme(dark).text, fontsize=10)
    fig.subplots_adjust(
        left=0.07, right=0.80 if outside else 0.98, top=0.96, bottom=0.06, hspace=0.32
    )
    return fig


def cumulative_panels_figure(
    panels: list[tuple[str, str, list[Curve]]], dark: bool = False, reference: str | None = None
):
    """One panel per (title, y label, curves): each curve's cumulative sum by era."""
    t = theme(dark)
    fig, axes = new_figure(len(panels), dark)
    axis = EraAxis([e for _, _, curves in panels for c in curves for e in c.eras])
    labels = list(dict.fromkeys(c.label for _, _, curves in panels for c in curves))
    colors = {label: t.palette[i % len(t.palette)] for i, label in enumerate(labels)}
    outside = len(labels) > LEGEND_INSIDE_MAX
    for ax, (title, ylabel, curves) in zip(axes, panels, strict=True):
        ax.axhline(0, color=t.zero, lw=1, alpha=0.8)
        for c in curves:
            is_ref = c.label == reference
            ax.plot(
                axis.x(c.eras), np.cumsum(np.nan_to_num(c.values, nan=0.0)),
                color=t.base if is_ref else colors[c.label], lw=2.2 if is_ref else 1.4,
                label=c.label + (" (reference)" if is_ref else ""),
            )  # fmt: skip
        style_text(ax, dark, title, ylabel)
    return _finish(fig, axes, axis, dark, outside, legends=axes)


def distribution_figure(series: dict[str, dict[str, np.ndarray]], dark: bool = False):
    """Box plots of per-era scores: one panel per metric (corr, bmc), one box per run."""
    t = theme(dark)
    metrics = [m for m in ("corr", "bmc") if any(m in s for s in series.values())]
    names = list(series)
    height = max(3.0, 0.32 * len(names) + 1.4)
    fig, axes = new_figure(1, dark, height=height, cols=len(metrics))
    fig.set_size_inches(WIDTH_IN, height)
    for ax, metric in zip(axes, metrics, strict=True):
        data = [_finite(series[n].get(metric, np.array([]))) for n in names]
        box = ax.boxplot(
            data, orientation="horizontal", tick_labels=names, patch_artist=True, widths=0.6,
            medianprops={"color": t.text}, whiskerprops={"color": t.zero},
            capprops={"color": t.zero}, flierprops={"markeredgecolor": t.zero, "markersize": 3},
        )  # fmt: skip
        for i, patch in enumerate(box["boxes"]):
            patch.set_facecolor(t.palette[i % len(t.palette)])
            patch.set_alpha(0.75)
            patch.set_edgecolor(t.zero)
        ax.axvline(0, color=t.zero, lw=1)
        ax.invert_yaxis()
        if ax is not axes[0]:
            ax.tick_params(labelleft=False)
        label = {"corr": "numerai_corr", "bmc": "BMC"}[metric]
        style_text(ax, dark, f"Per-era {label} (OOF)", "", f"{label} per era")
    fig.subplots_adjust(left=0.2, right=0.98, top=0.9, bottom=0.14, wspace=0.08)
    return fig


def _finite(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    return values[np.isfinite(values)]


def correlation_figure(names: list[str], matrix: np.ndarray, dark: bool = False):
    """Heat map of the correlation matrix of the runs' predictions."""
    t = theme(dark)
    size = max(4.0, 0.45 * len(names) + 2.5)
    fig, axes = new_figure(1, dark, height=size)
    fig.set_size_inches(min(WIDTH_IN, size * 1.4 + 1.0), size)
    ax = axes[0]
    ax.grid(False)
    image = ax.imshow(matrix, cmap="viridis", vmin=min(0.0, np.nanmin(matrix)), vmax=1.0)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    if len(names) <= 12:
        for i in range(len(names)):
            for j in range(len(names)):
                value = matrix[i, j]
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7,
                        color="black" if value > 0.6 else "white")  # fmt: skip
    bar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    bar.ax.tick_params(colors=t.text, labelsize=8)
    style_text(ax, dark, "Correlation of OOF predictions", "")
    fig.tight_layout()
    return fig
