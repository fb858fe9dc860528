"""The performance suite: run with ``pytest benchmarks/`` (not part of the test command)."""
