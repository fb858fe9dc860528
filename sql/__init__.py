"""DuckDB queries run by the nx data layer (read with importlib.resources)."""
