"""Run one command in a child process; print its wall time and peak RSS as JSON.

``python benchmarks/data_measure.py CMD ...``: the wrapper is a fresh process, so
``RUSAGE_CHILDREN.ru_maxrss`` is the peak resident memory of CMD alone.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time


def main(command: list[str]) -> None:
    start = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True)
    wall_s = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    if completed.returncode != 0:
        sys.stderr.write(completed.stderr)
        sys.exit(completed.returncode)
    print(json.dumps({"wall_s": wall_s, "peak_rss_mb": peak_kb / 1024}))


if __name__ == "__main__":
    main(sys.argv[1:])
