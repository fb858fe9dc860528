"""Compiling the kernels of ``nx score`` before they are needed, and on two cores
when numba's cache is cold.

A warm cache loads every kernel in well under a second, on a thread that overlaps
reading the files (:func:`nx.engine.metrics.io.warm_kernels_in_background`). A cold
cache (a fresh install, an emptied cache) compiles about 10 s of CPU, and numba
compiles under one lock per process, so this process alone would take all of it
in series. Instead a child process (:class:`nx.engine._numba.ChildCompile`)
compiles the scorer's rank and walk kernels and then the id join, while this
process compiles the sort and the BMC target; this process then compiles the scorer itself, which
finds its callees in the cache. Both write the same cache (atomically), the
compiled code is the same as from one process, and with a warm cache no child is
started.
"""

from __future__ import annotations

import numpy as np

from nx.engine._numba import ChildCompile, cache_is_cold

_RANKS = "nx.engine.metrics.kernels:compile_rank_kernels"
_JOIN = "nx.engine.metrics.join:compile_kernels"
_child: ChildCompile | None = None


def warm_score_kernels() -> None:
    """Compile or load every kernel ``nx score`` calls (the id join and the scorer,
    with the argument types it gives them); returns when all are ready."""
    global _child
    from nx.engine.metrics import join, kernels

    cold = cache_is_cold(kernels._score_eras) and cache_is_cold(join._index_keys)
    if _child is None and cold and kernels._workers() > 1:
        _child = _start_child()
    if _child is None:
        join.compile_kernels()
    else:
        kernels.compile_sort_kernels()  # while the child compiles the rank kernels
        if not _child.wait_for(_RANKS) and _child.interrupted():
            return  # Ctrl-C: the command is ending, compile nothing more
        # (a child that failed otherwise: the scorer compiles its kernels here)
    values = np.zeros((1, 2))
    offsets = np.array([0, 2], dtype=np.int64)
    kernels.score_eras(values, values[0], values, offsets, np.zeros(1, dtype=np.bool_))
    # (not counting_order: a cold cache would compile it for files already in era order)
    wait_for_child()
    join.compile_kernels()  # loaded from the cache the child wrote


def _start_child() -> ChildCompile | None:
    try:
        return ChildCompile([_RANKS, _JOIN])
    except OSError:  # no interpreter to start (an embedded Python): all in this one
        return None


def wait_for_child() -> None:
    """Until the child compiling kernels (if any) has exited."""
    if _child is not None:
        _child.wait()
