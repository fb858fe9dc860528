"""Running :mod:`nx.engine.export._runtime_worker` inside a runtime venv."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from nx.engine.errors import ExportError, RuntimeEnvError
from nx.engine.export.runtimes import runtime_python

WORKER = Path(__file__).with_name("_runtime_worker.py")


def run_worker(command: str, job: dict[str, Any], runtime: str) -> dict[str, Any]:
    """Run ``command`` of the worker with ``job`` in ``runtime``; returns its answer.

    The worker runs isolated (``python -I``: no user site, no PYTHONPATH, no script
    folder on the path) in an empty working directory, so nothing of nx can leak in.
    """
    python = runtime_python(runtime)
    with tempfile.TemporaryDirectory(prefix="nx-runtime-") as scratch:
        job = {**job, "result": str(Path(scratch) / "result.json")}
        job_path = Path(scratch) / "job.json"
        job_path.write_text(json.dumps(job), encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        try:
            done = subprocess.run(
                [str(python), "-I", str(WORKER), command, str(job_path)],
                capture_output=True,
                text=True,
                cwd=scratch,
                env=env,
            )
        except OSError as error:
            raise RuntimeEnvError(
                f"runtime {runtime} does not start ({error}); reinstall it with "
                f"`nx runtime install --python {runtime} --force`"
            ) from None
        result_path = Path(job["result"])
        if not result_path.is_file():
            detail = " ".join((done.stderr or "").strip().splitlines()[-1:]) or "no output"
            raise ExportError(
                f"the runtime {runtime} worker crashed (exit {done.returncode}: {detail[:300]}); "
                "a model or package may not load in this runtime"
            )
        answer = json.loads(result_path.read_text(encoding="utf-8"))
    answer["stderr"] = done.stderr
    return answer
