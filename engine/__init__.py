"""nx.engine: the library behind the ``nx`` command (data, metrics, modeling)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("nx")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"
