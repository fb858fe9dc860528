"""The machine's limits: memory that is free, and native work that Ctrl-C must not break.

:func:`check_memory` refuses work that cannot fit before anything is allocated (the
alternative is a 30-50 GB allocation attempt that thrashes or dies with a traceback).
:func:`run_interruptibly` runs native code such as a Polars query on a worker thread:
the main thread stays in Python, so Ctrl-C or SIGTERM interrupts at once and
cleanly, where interrupting Polars' streaming parquet sink itself panics in Rust and
prints a backtrace. :func:`return_freed_memory` hands memory that native code freed
back to the system between large steps (one training fold and the next).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from typing import TypeVar

from nx.engine.errors import ConfigError, NxError

T = TypeVar("T")
GIB = 1024**3


def available_memory() -> int | None:
    """Bytes of memory available to new allocations (Linux ``MemAvailable``), or None."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def format_bytes(n_bytes: float) -> str:
    """``1536 * 1024**2`` -> ``"1.5 GB"``."""
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n_bytes < 1024 or unit == "PB":
            return f"{n_bytes:.0f} {unit}" if unit == "B" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1024
    return f"{n_bytes:.1f} PB"


def check_memory(needed: int, *, what: str, fix: str, error: type[NxError] = ConfigError) -> None:
    """Raise ``error`` when ``needed`` bytes exceed the memory available now.

    ``what`` names the work ("generating one era of 110 rows x 10,000,000 features"),
    ``fix`` what to change ("lower --features or --rows-per-era"). Nothing is
    raised where the available memory cannot be read.
    """
    available = available_memory()
    if available is not None and needed > available:
        raise error(
            f"{what} needs about {format_bytes(needed)} of memory, more than the "
            f"{format_bytes(available)} available on this machine; {fix}"
        )


def run_interruptibly(work: Callable[[], T]) -> T:
    """Run ``work()`` on a worker thread and return its result (or raise its error).

    The main thread waits in Python, so KeyboardInterrupt (or the CLI's SIGTERM
    exception) is raised there at once; the worker is a daemon thread and ends with
    the process. Python's own SIGINT handler is put back first: Polars installs a
    native one that aborts running queries with a Rust panic.
    """
    main = threading.current_thread() is threading.main_thread()
    if main and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["value"] = work()
        except BaseException as error:  # handed to the caller's thread
            outcome["error"] = error

    worker = threading.Thread(target=target, name="nx-native", daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(0.05)
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]


def return_freed_memory() -> None:
    """Give the free pages of the C heap back to the system (glibc ``malloc_trim``).

    glibc keeps memory that native code (LightGBM's binned datasets, its training
    buffers) freed in small and mid-sized blocks, so a process's resident memory stays
    at its largest step's size, and the next step's fresh mappings come on top of it.
    Called between such steps; a no-op where the C library has no ``malloc_trim``.
    """
    import ctypes

    try:  # the process's own C library: CDLL(None) is not available on Windows
        trim = getattr(ctypes.CDLL(None), "malloc_trim", None)  # glibc only (not macOS, musl)
    except (OSError, TypeError):
        return
    if trim is not None:
        trim(0)
