"""Sweeps: many configs generated from one base config, run here or on a Dask cluster.

Modules: ``spec`` (the sweep file: grid / list overrides by dotted key, naming rule,
round label -> validated configs), ``runner`` (resume, local or Dask execution, the
sweep record and the leaderboard), ``cluster`` (a local loopback cluster or a
connection to an existing scheduler).
"""

from nx.engine._lazy import lazy_exports

_EXPORTS = {
    "Sweep": "spec",
    "SweepConfig": "spec",
    "load_sweep": "spec",
    "SweepProgress": "runner",
    "SweepReport": "runner",
    "check_sweep": "runner",
    "run_sweep": "runner",
    "dask_client": "cluster",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
