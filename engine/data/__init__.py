"""Numerai's datasets: synthetic raw files, downloads, the built datasets and their summary.

Modules: ``synthetic`` (raw files with Numerai's schema), ``download`` (numerapi),
``build`` (the four built datasets, as the reference builder makes them), ``info``
(``nx data info``), ``cache``
(the memory-mappable feature-matrix cache).
"""

from nx.engine._lazy import lazy_exports

_EXPORTS = {
    "BUILT_FILES": "build",
    "build_data": "build",
    "downsampled_eras": "build",
    "RAW_FILES": "synthetic",
    "generate_raw": "synthetic",
    "download_raw": "download",
    "data_info": "info",
    "list_cache": "cache",
    "clear_cache": "cache",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
