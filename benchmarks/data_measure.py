"""Peak memory of benchmark processes.

``python benchmarks/data_measure.py CMD ...`` runs one command in a child process and
prints its wall time and peak RSS as JSON: the wrapper is a fresh process, so
``RUSAGE_CHILDREN.ru_maxrss`` is the peak resident memory of CMD alone.
:func:`own_peak_kib` is the peak of the calling process itself (a benchmark side).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time


def own_peak_kib() -> int:
    """This process's peak RSS in KiB: ``VmHWM`` (Linux), else ``ru_maxrss``, read as
    ``nx export``'s runtime check reads it.

    Not ``ru_maxrss`` where ``/proc`` has the answer: a process started by
    ``subprocess`` (vfork, then exec) inherits its parent's high-water mark in
    ``ru_maxrss``, so the side would report pytest's own peak whenever that is larger.
    """
    from nx.engine.export._runtime_worker import peak_rss_bytes

    return peak_rss_bytes() // 1024


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
