"""Seeing the research: leaderboards, the standard plots, reports, blends, neutralization.

Modules: ``experiment`` (reading an experiment dir: results, predictions, configs,
nx's and the reference framework's), ``curves`` (per-era scores of the runs from their
predictions, with :mod:`nx.engine.metrics`), ``show`` (the leaderboard and the
standard three-panel plot), ``figures`` (matplotlib figures, light and dark),
``benchmarks`` (the benchmark-corrs figure), ``document`` (experiment.md and
report.html), ``blend`` (rank-gauss blends and neutralized predictions).
"""

from nx.engine._lazy import lazy_exports

_EXPORTS = {
    "load_experiment": "experiment",
    "show_experiment": "show",
    "plot_benchmark_corrs": "benchmarks",
    "write_report": "document",
    "rank_gauss": "blend",
    "blend_rank_gauss": "blend",
    "blend_predictions": "blend",
    "neutralize_predictions": "blend",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
