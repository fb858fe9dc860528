"""Progress reporting without printing.

The engine never prints: long-running functions take a ``progress`` argument
implementing :class:`Progress` and report through it. The default does nothing;
the CLI passes a rich-backed implementation that draws bars on stderr.

Example::

    with progress.task("Writing full.parquet", total=n_eras) as task:
        for era in eras:
            ...
            task.advance()
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class ProgressTask:
    """A handle on one bar: ``advance`` moves it, ``update`` resets totals."""

    def advance(self, amount: float = 1) -> None:
        pass

    def update(self, *, total: float | None = None, completed: float | None = None) -> None:
        pass


class Progress:
    """No-op progress reporter; subclass it to display something."""

    @contextmanager
    def task(self, description: str, total: float | None = None) -> Iterator[ProgressTask]:
        yield ProgressTask()

    def warn(self, message: str) -> None:
        """A non-fatal warning for the user (e.g. a fallback that was taken)."""


NO_PROGRESS = Progress()
