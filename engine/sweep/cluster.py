"""Dask clients for a sweep: a local cluster of worker processes on loopback, or an
existing scheduler (``tcp://HOST:PORT``)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from nx.engine.errors import SweepError

LOOPBACK = "127.0.0.1"


@contextmanager
def dask_client(workers: int | None = None, scheduler: str | None = None) -> Iterator:
    """A ``distributed.Client``: ``workers`` local processes (one thread each), or the
    cluster behind ``scheduler``. Closed (local workers stopped) on exit."""
    from distributed import Client, LocalCluster

    if scheduler is not None:
        if not scheduler.startswith(("tcp://", "tls://")):
            raise SweepError(
                f"--scheduler {scheduler!r}: give the scheduler's address as tcp://HOST:PORT"
            )
        try:
            client = Client(scheduler, timeout="10s")
        except (OSError, TimeoutError) as error:
            raise SweepError(
                f"cannot reach the Dask scheduler at {scheduler} ({error}); start it with "
                "`dask scheduler` and check the address"
            ) from None
        try:
            if not client.scheduler_info().get("workers"):
                client.wait_for_workers(1, timeout=30)
            yield client
        except TimeoutError:
            raise SweepError(
                f"the Dask scheduler at {scheduler} has no workers; start some with "
                f"`dask worker {scheduler}`"
            ) from None
        finally:
            client.close()
        return
    if workers is None or workers < 1:
        raise SweepError(f"--workers {workers}: give at least 1 worker process")
    dashboard = f"{LOOPBACK}:0"  # loopback only; without bokeh it serves a hint page
    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host=LOOPBACK,
            dashboard_address=dashboard,
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client
