"""What each built dataset was built from, so that a stale one is never reused.

``<version dir>/.nx-build.json`` records, for every output ``nx build-data`` wrote:
the size and modification time (ns) of the output itself and of every input it was
read from (raw files, or ``full*.parquet`` for the downsampled ones), the options
that shaped it (downsample step and offset) and the nx version. An output is reused
only when all of these still match; anything else (an input regenerated or
downloaded again, other options, another nx version, an output replaced or touched
by hand, a run killed between writing an input and rebuilding its outputs) makes it
stale, and the next build rebuilds it.

Sizes and mtimes, not hashes: hashing Numerai's 12 GB of raw files on every run
would take minutes, and every way nx or a download rewrites a file changes its
mtime (copies that keep mtimes, e.g. ``cp -p``, keep the record valid).
"""

from __future__ import annotations

import json
from pathlib import Path

from nx.engine import __version__
from nx.engine.paths import atomic_output

MANIFEST = ".nx-build.json"
FORMAT = 1


def file_stamp(path: Path) -> dict | None:
    """Size and mtime (ns) of ``path``; None when it does not exist."""
    try:
        stat = Path(path).stat()
    except OSError:
        return None
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def read_manifest(vdir: Path) -> dict[str, dict]:
    """Build records by output name ({} when there is no readable manifest)."""
    try:
        document = json.loads((Path(vdir) / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        return {}
    outputs = document.get("outputs")
    return outputs if isinstance(outputs, dict) else {}


def record_output(vdir: Path, name: str, inputs: list[str], options: dict) -> None:
    """Record that ``vdir/name`` was just built from ``inputs`` (names in ``vdir``)."""
    vdir = Path(vdir)
    outputs = read_manifest(vdir)
    outputs[name] = {
        "output": file_stamp(vdir / name),
        "inputs": {input_name: file_stamp(vdir / input_name) for input_name in inputs},
        "options": options,
        "nx_version": __version__,
    }
    with atomic_output(vdir / MANIFEST) as tmp:
        tmp.write_text(json.dumps({"format": FORMAT, "outputs": outputs}, indent=2) + "\n")


def forget_output(vdir: Path, name: str) -> None:
    """Drop the record of an output that was removed."""
    outputs = read_manifest(vdir)
    if outputs.pop(name, None) is not None:
        with atomic_output(Path(vdir) / MANIFEST) as tmp:
            tmp.write_text(json.dumps({"format": FORMAT, "outputs": outputs}, indent=2) + "\n")


def stale_reason(
    vdir: Path, name: str, inputs: list[str], options: dict | None = None
) -> str | None:
    """None when ``vdir/name`` is up to date with its record; else why it is not.

    ``options`` None skips comparing the options (``nx data info`` does not know
    which were asked for).
    """
    vdir = Path(vdir)
    stamp = file_stamp(vdir / name)
    if stamp is None:
        return "new"
    record = read_manifest(vdir).get(name)
    if not isinstance(record, dict):
        return "no build record (built by another tool, or an nx run that was interrupted)"
    if record.get("output") != stamp:
        return "changed since nx built it"
    recorded_inputs = record.get("inputs") or {}
    for input_name in inputs:
        if input_name not in recorded_inputs:
            return f"no record of {input_name} as an input"
        if recorded_inputs[input_name] != file_stamp(vdir / input_name):
            return f"{input_name} changed since it was built"
    if options is not None and record.get("options") != options:
        recorded = record.get("options") or {}
        changes = ", ".join(
            f"{key} {recorded.get(key)} -> {value}"
            for key, value in options.items()
            if recorded.get(key) != value
        )
        return f"built with other options ({changes})"
    if record.get("nx_version") != __version__:
        return f"built by nx {record.get('nx_version')}, this is nx {__version__}"
    return None
