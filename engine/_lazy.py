"""Lazy public names for the capability packages (PEP 562).

Importing ``nx.engine.metrics`` must not import numba, nor ``nx.engine.train``
LightGBM, until a name that needs them is used: the CLI starts in well under a
second and loads the heavy modules only for the command it runs.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any


def lazy_exports(package: str, exports: dict[str, str]):
    """A module ``__getattr__`` resolving ``name`` from the submodule ``exports[name]``."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(f"{package}.{module}"), name)

    return __getattr__
