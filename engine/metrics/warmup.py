"""Compiling the kernels of ``nx score`` before they are needed, and on two cores
when numba's cache is cold.

A warm cache loads every kernel in well under a second, on a thread that overlaps
reading the files (:func:`nx.engine.metrics.io.warm_kernels_in_background`). A cold
cache (a fresh install, an emptied cache) compiles about 10 s of CPU, and numba
compiles under one lock per process, so this process alone would take all of it
in series. Instead a child process (:class:`nx.engine._numba.ChildCompile`)
compiles the scorer's rank and walk kernels and then the id join, while this
process compiles the sort and the BMC target; this process then compiles the
scorer itself, which finds its callees in the cache. Both write the same cache
(atomically), the compiled code is the same as from one process, and with a warm
cache no child is started. The id join (:mod:`nx.engine.metrics.join`) waits for
the child, and for the warm-up to decide whether there is one (:func:`begin`), so
that this process does not compile the join's kernels a second time.

(numba is imported by the warm-up thread, not on import of this module.)
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from nx.engine._numba import ChildCompile

_RANKS = "nx.engine.metrics.kernels:compile_rank_kernels"
_JOIN = "nx.engine.metrics.join:compile_kernels"
_child: ChildCompile | None = None
_decided = threading.Event()  # clear while a warm-up has not decided on a child yet
_decided.set()


def begin() -> None:
    """Called before starting :func:`warm_score_kernels` on a thread: until it has
    decided whether a child compiles, :func:`wait_for_child` waits."""
    _decided.clear()


def warm_score_kernels() -> None:
    """Compile or load every kernel ``nx score`` calls (the id join and the scorer,
    with the argument types it gives them); returns when all are ready."""
    global _child
    try:
        from nx.engine._numba import cache_is_cold
        from nx.engine.metrics import join, kernels

        cold = cache_is_cold(kernels._score_eras) and cache_is_cold(join._index_keys)
        if _child is None and cold and kernels._workers() > 1:
            _child = _start_child()
    finally:
        _decided.set()
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
    from nx.engine._numba import ChildCompile

    try:
        return ChildCompile([_RANKS, _JOIN])
    except OSError:  # no interpreter to start (an embedded Python): all in this one
        return None


def wait_for_child() -> None:
    """Until the warm-up has decided on a child (see :func:`begin`) and the child
    compiling kernels (if any) has exited."""
    _decided.wait(timeout=120)  # (a bound, should the warm-up thread never have run)
    if _child is not None:
        _child.wait()
