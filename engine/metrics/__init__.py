"""Numerai's metrics, per era, exactly as numerai-tools 0.7.2 computes them (numba kernels).

Modules: ``scores`` (the public functions below, with their maths), ``kernels``
(the jitted per-era loops), ``ndtri`` (inverse normal CDF), ``neutralization`` (the
least-squares neutralization), ``io`` (reading and aligning the files ``nx score``
scores).
"""

from nx.engine._lazy import lazy_exports

_EXPORTS = {
    name: "scores"
    for name in (
        "DEFAULT_MAX_NAN_FRACTION",
        "EraLayout",
        "correlation_contribution",
        "feature_exposure",
        "feature_neutral_corr",
        "gaussianize",
        "neutralize",
        "numerai_corr",
        "score",
        "summarize",
        "tie_kept_rank",
    )
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
