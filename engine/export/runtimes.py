"""Numerai's pickle runtimes, rebuilt locally as virtual environments.

Numerai loads an uploaded pickle in a Docker image per Python version
(``numerai-predict``'s ``py3.X/requirements.txt``). A pickle made with other binary
versions may fail to load or segfault there, so nx builds each pickle *inside* a
venv holding the same interpreter minor version and the same pins of the packages
a pickle and the harness need. The images also carry torch, xgboost, catboost and
tensorflow; nx does not install those (nx exports LightGBM, ridge and scikit-learn
style models).

A runtime lives in ``<runtime dir>/py<version>/`` (``$NX_RUNTIME_DIR``, else
``$XDG_CACHE_HOME/nx/runtimes``, else ``~/.cache/nx/runtimes``). It is built in a
temporary folder and renamed when every pin is installed and verified, and its
``nx-runtime.json`` records what was installed; nx itself is never installed there.
"""

from __future__ import annotations

import glob
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from nx.engine.errors import RuntimeEnvError
from nx.engine.progress import NO_PROGRESS, Progress

DEFAULT_RUNTIME = "3.12"
RUNTIME_DIR_ENV = "NX_RUNTIME_DIR"
MARKER = "nx-runtime.json"

# numerai-predict's py3.X/requirements.txt, restricted to what a pickle and the
# harness need (with the pinned dependencies of those packages).
_PINS_3_11_3_12 = {
    "numpy": "2.1.3",
    "pandas": "2.3.1",
    "scipy": "1.16.0",
    "cloudpickle": "3.1.1",
    "scikit-learn": "1.6.1",
    "polars": "1.31.0",
    "joblib": "1.5.1",
    "threadpoolctl": "3.6.0",
    "python-dateutil": "2.9.0.post0",
    "pytz": "2025.2",
    "tzdata": "2025.2",
    "six": "1.17.0",
}
RUNTIMES: dict[str, dict[str, str]] = {
    "3.10": {
        "numpy": "1.26.4",
        "pandas": "2.2.1",
        "scipy": "1.11.4",
        "lightgbm": "4.0.0",
        "cloudpickle": "2.2.1",
        "scikit-learn": "1.6.1",
        "pyarrow": "14.0.1",
        "polars": "1.5.0",
        "joblib": "1.3.2",
        "threadpoolctl": "3.1.0",
        "python-dateutil": "2.8.2",
        "pytz": "2023.3",
        "tzdata": "2023.3",
        "six": "1.16.0",
    },
    "3.11": {**_PINS_3_11_3_12, "lightgbm": "4.6.0", "pyarrow": "21.0.0"},
    "3.12": {**_PINS_3_11_3_12, "lightgbm": "4.5.0", "pyarrow": "18.1.0"},
    "3.13": {
        "numpy": "2.2.6",
        "pandas": "2.3.3",
        "scipy": "1.17.1",
        "lightgbm": "4.5.0",
        "cloudpickle": "3.1.2",
        "scikit-learn": "1.6.1",
        "pyarrow": "18.1.0",
        "polars": "1.38.1",
        "polars-runtime-32": "1.38.1",
        "joblib": "1.5.3",
        "threadpoolctl": "3.6.0",
        "python-dateutil": "2.9.0.post0",
        "pytz": "2025.2",
        "tzdata": "2025.3",
        "six": "1.17.0",
    },
}
# The packages shown by ``nx runtime list`` and recorded in a pickle's sidecar.
KEY_PACKAGES = ("numpy", "pandas", "scipy", "lightgbm", "cloudpickle", "scikit-learn")


@dataclass(frozen=True)
class RuntimeInfo:
    """One runtime as found on disk."""

    version: str
    path: Path
    status: str  # "ready", "not installed", "stale" (pins changed), "broken"
    python: str | None = None  # full interpreter version, e.g. "3.12.1"
    installed: dict[str, str] | None = None

    @property
    def python_exe(self) -> Path:
        return self.path / "bin" / "python"


def runtime_root() -> Path:
    """Where runtimes live: ``$NX_RUNTIME_DIR``, else the user's cache dir."""
    given = os.environ.get(RUNTIME_DIR_ENV)
    if given:
        return Path(given).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "nx" / "runtimes"


def check_runtime_name(runtime: str) -> str:
    """``runtime`` if nx knows it, else one line listing the known ones."""
    runtime = str(runtime).removeprefix("py").removeprefix("python")
    if runtime not in RUNTIMES:
        raise RuntimeEnvError(
            f"unknown runtime {runtime!r}; Numerai's runtimes are "
            + ", ".join(RUNTIMES)
            + f" (default {DEFAULT_RUNTIME})"
        )
    return runtime


def runtime_info(runtime: str) -> RuntimeInfo:
    """What is installed for ``runtime`` (never raises for a missing one)."""
    runtime = check_runtime_name(runtime)
    path = runtime_root() / f"py{runtime}"
    marker = path / MARKER
    if not marker.is_file():
        return RuntimeInfo(runtime, path, "not installed")
    try:
        facts = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return RuntimeInfo(runtime, path, "broken")
    python_exe = path / "bin" / "python"
    if not python_exe.exists():
        return RuntimeInfo(runtime, path, "broken", facts.get("python"))
    status = "ready" if facts.get("pins") == RUNTIMES[runtime] else "stale"
    return RuntimeInfo(runtime, path, status, facts.get("python"), facts.get("installed"))


def list_runtimes() -> list[RuntimeInfo]:
    """Every runtime nx knows, installed or not."""
    return [runtime_info(version) for version in RUNTIMES]


def runtime_python(runtime: str = DEFAULT_RUNTIME) -> Path:
    """The interpreter of an installed, up-to-date runtime; one-line error otherwise."""
    info = runtime_info(runtime)
    fix = f"run `nx runtime install --python {info.version}`"
    if info.status == "not installed":
        raise RuntimeEnvError(f"runtime {info.version} is not installed; {fix}")
    if info.status == "stale":
        raise RuntimeEnvError(
            f"runtime {info.version} at {info.path} has other pins than this nx expects; "
            f"{fix} --force"
        )
    if info.status != "ready":
        raise RuntimeEnvError(f"runtime {info.version} at {info.path} is broken; {fix} --force")
    return info.python_exe


def find_interpreter(runtime: str, python_exe: Path | str | None = None) -> Path:
    """A Python ``runtime`` interpreter: ``python_exe``, else pyenv's versions, else PATH."""
    runtime = check_runtime_name(runtime)
    if python_exe is not None:
        candidates = [Path(python_exe).expanduser()]
    else:
        root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
        found = glob.glob(str(root / "versions" / f"{runtime}.*" / "bin" / f"python{runtime}"))
        patch = re.compile(rf"{re.escape(runtime)}\.(\d+)")

        def patch_of(path: str) -> int:
            match = patch.search(path)
            return int(match.group(1)) if match else -1

        candidates = [Path(p) for p in sorted(found, key=patch_of, reverse=True)]
        on_path = shutil.which(f"python{runtime}")
        if on_path:
            candidates.append(Path(on_path))
    for candidate in candidates:
        version = _interpreter_version(candidate)
        if version is not None and version.rsplit(".", 1)[0] == runtime:
            return candidate
    if python_exe is not None:
        raise RuntimeEnvError(
            f"{python_exe} is not a Python {runtime} interpreter; pass the path of python{runtime}"
        )
    raise RuntimeEnvError(
        f"no Python {runtime} interpreter found (looked in pyenv's versions and PATH); install "
        f"one (e.g. `pyenv install {runtime}`) or pass --python-exe PATH"
    )


def _interpreter_version(exe: Path) -> str | None:
    try:
        done = subprocess.run(
            [str(exe), "-c", "import platform; print(platform.python_version())"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def install_runtime(
    runtime: str = DEFAULT_RUNTIME,
    *,
    python_exe: Path | str | None = None,
    force: bool = False,
    progress: Progress = NO_PROGRESS,
) -> RuntimeInfo:
    """Create the venv of ``runtime`` and install exactly its pins from the package index.

    An up-to-date runtime is kept unless ``force``. The venv is built next to its final
    place and renamed only when every pin is installed and verified, so an
    interrupted install never leaves a runtime that looks usable.
    """
    runtime = check_runtime_name(runtime)
    current = runtime_info(runtime)
    if current.status == "ready" and not force:
        return current
    interpreter = find_interpreter(runtime, python_exe)
    root = runtime_root()
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".py{runtime}.", dir=root))
    pins = RUNTIMES[runtime]
    try:
        with progress.task(
            f"Runtime {runtime}: install {len(pins)} pinned packages", total=3
        ) as bar:
            # pip is taken from nx's own environment when it has one (`pip --python`),
            # which saves bootstrapping pip into every runtime.
            own_pip = importlib.util.find_spec("pip") is not None
            venv_cmd = [str(interpreter), "-m", "venv", str(staging)]
            _run(venv_cmd + (["--without-pip"] if own_pip else []), "create the venv")
            bar.advance()
            venv_python = staging / "bin" / "python"
            pip = (
                [sys.executable, "-m", "pip", "--python", str(venv_python)]
                if own_pip
                else [str(venv_python), "-m", "pip"]
            )
            requirements = [f"{name}=={version}" for name, version in pins.items()]
            _run(
                [
                    *pip,
                    "install",
                    "--no-input",
                    "--disable-pip-version-check",
                    "--only-binary",
                    ":all:",
                    *requirements,
                ],
                f"install the Python {runtime} pins",
                runtime=runtime,
            )
            bar.advance()
            installed = _installed_versions(venv_python, list(pins))
            wrong = {n: installed.get(n) for n, v in pins.items() if installed.get(n) != v}
            if wrong:
                raise RuntimeEnvError(
                    f"runtime {runtime}: installed {wrong} instead of the pins; "
                    f"run `nx runtime install --python {runtime} --force` again"
                )
            python_version = _interpreter_version(venv_python) or runtime
            facts = {
                "runtime": runtime,
                "python": python_version,
                "interpreter": str(interpreter),
                "pins": pins,
                "installed": installed,
            }
            (staging / MARKER).write_text(json.dumps(facts, indent=2) + "\n", encoding="utf-8")
            target = root / f"py{runtime}"
            if target.exists():
                old = Path(tempfile.mkdtemp(prefix=f".py{runtime}.old.", dir=root))
                os.replace(target, old / "runtime")
                shutil.rmtree(old, ignore_errors=True)
            os.replace(staging, target)
            bar.advance()
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return runtime_info(runtime)


def _run(command: list[str], what: str, runtime: str | None = None) -> None:
    try:
        done = subprocess.run(command, capture_output=True, text=True)
    except OSError as error:
        raise RuntimeEnvError(f"could not {what} ({error})") from None
    if done.returncode == 0:
        return
    lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR")] or lines or ["no output"]
    message = errors[0]
    if runtime is not None:
        raise RuntimeEnvError(
            f"could not {what} ({message}); check that the package index is reachable "
            f"(network, PIP_INDEX_URL) and run `nx runtime install --python {runtime}` again"
        )
    raise RuntimeEnvError(f"could not {what} ({message})")


def _installed_versions(python: Path, names: list[str]) -> dict[str, str]:
    script = (
        "import json, sys\n"
        "from importlib.metadata import version, PackageNotFoundError\n"
        "out = {}\n"
        "for name in sys.argv[1:]:\n"
        "    try:\n"
        "        out[name] = version(name)\n"
        "    except PackageNotFoundError:\n"
        "        pass\n"
        "print(json.dumps(out))\n"
    )
    done = subprocess.run([str(python), "-I", "-c", script, *names], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeEnvError(f"{python} does not run ({done.stderr.strip()[-200:]})")
    return json.loads(done.stdout)
