"""Running a sweep: check every config, skip complete ones, run the rest, rank them.

Layout under the experiment dir (``out``)::

    configs/<name>.json        each generated config (what `nx train` reads)
    sweeps/<sweep>.json        the sweep's record: per config its hash, status, error
    results/, predictions/     written by each config's run, as `nx train` writes them

A config is complete when the record holds its current hash and its results (and,
with CV, its predictions) exist; a changed config (other hash) is run again, its
old outputs removed first. Outputs of the same name that this sweep did not make
are never overwritten: the sweep refuses to start.

Where configs run (``executor``):

- ``None``: here, one after another, through :func:`nx.engine.train.train_config`.
- a ``distributed.Client``: one task per config, each running ``train_config`` into a
  scratch folder on the worker; the files come back to this process, which writes
  them. A worker that dies mid-config is replaced and the scheduler retries its task.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nx.engine.errors import NxError, SweepError
from nx.engine.paths import atomic_output
from nx.engine.progress import Progress
from nx.engine.sweep.spec import Sweep, SweepConfig
from nx.engine.train.results import output_paths, write_json

POLL_SECONDS = 0.3


class SweepProgress:
    """What a sweep reports while it runs (the CLI draws it); the default shows nothing."""

    def start(self, total: int, skipped: int) -> None:
        pass

    def update(self, *, done: int, running: int, failed: int) -> None:
        pass

    def dashboard(self, link: str) -> None:
        pass

    def warn(self, message: str) -> None:
        pass


@dataclass
class Outcome:
    """One config's fate in this run."""

    name: str
    index: int
    status: str  # "done" (ran now), "skipped" (complete before), "failed"
    error: str | None = None
    seconds: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    results_path: Path | None = None


@dataclass
class SweepReport:
    sweep: Sweep
    output_dir: Path
    record_path: Path
    outcomes: list[Outcome]

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    def leaderboard(self) -> list[Outcome]:
        """Configs with results by BMC mean (highest first; no BMC last), then failures."""

        def key(outcome: Outcome):
            bmc = (outcome.metrics.get("bmc") or {}).get("mean")
            corr = (outcome.metrics.get("corr") or {}).get("mean")
            return (
                outcome.status == "failed",
                bmc is None,
                -(bmc or 0.0),
                -(corr or 0.0),
                outcome.index,
            )

        return sorted(self.outcomes, key=key)


def record_path(sweep: Sweep, out: Path) -> Path:
    return out / "sweeps" / f"{sweep.name}.json"


def _read_record(path: Path) -> dict[str, Any]:
    import json

    if not path.is_file():
        return {}
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        return dict(document.get("configs", {}))
    except (OSError, ValueError, AttributeError):
        raise SweepError(
            f"{path}: unreadable sweep record; delete it (and the outputs it names) or "
            "choose another --output-dir"
        ) from None


def _outputs(item: SweepConfig, out: Path) -> dict[str, Path]:
    return output_paths(item.config, out)


def _complete(item: SweepConfig, out: Path, entry: dict[str, Any] | None) -> bool:
    if not entry or entry.get("sha") != item.sha or entry.get("status") != "done":
        return False
    paths = _outputs(item, out)
    if not paths["results"].is_file():
        return False
    return not item.config.training.cv.enabled or paths["predictions"].is_file()


def _remove_outputs(item: SweepConfig, out: Path) -> None:
    paths = _outputs(item, out)
    paths["results"].unlink(missing_ok=True)
    paths["predictions"].unlink(missing_ok=True)


def check_sweep(sweep: Sweep, data_dir: Path | str) -> None:
    """Every check of every config that needs no training (as `nx train` runs them)."""
    from nx.engine.train import check_config, check_inputs

    for item in sweep.configs:
        try:
            check_config(item.config)
            check_inputs(item.config, data_dir)
        except NxError as error:
            shown = ", ".join(f"{k} = {v!r}" for k, v in item.overrides.items())
            raise SweepError(
                f"{sweep.source}: config {item.index} {item.name!r} ({shown}): {error}"
            ) from None


class _Record:
    """The sweep's record file, rewritten atomically after every change."""

    def __init__(self, sweep: Sweep, path: Path, entries: dict[str, Any]) -> None:
        self.sweep, self.path, self.entries = sweep, path, entries

    def set(self, item: SweepConfig, **values: Any) -> None:
        entry = self.entries.setdefault(item.name, {})
        entry.update(index=item.index, sha=item.sha, overrides=item.overrides, **values)
        self.save()

    def save(self) -> None:
        write_json(
            self.path,
            {
                "sweep": str(self.sweep.source),
                "round": self.sweep.round,
                "base": str(self.sweep.base),
                "configs": self.entries,
            },
        )


def _prepare(sweep: Sweep, out: Path, rerun: bool) -> tuple[_Record, list[SweepConfig], set[str]]:
    path = record_path(sweep, out)
    entries = _read_record(path)
    foreign = [
        item.name
        for item in sweep.configs
        if item.name not in entries and any(p.exists() for p in _outputs(item, out).values())
    ]
    if foreign:
        raise SweepError(
            f"{out}: outputs named {foreign[:3]} exist and were not made by this sweep "
            f"({path.name}); choose another --output-dir or naming rule (nothing was changed)"
        )
    record = _Record(sweep, path, entries)
    pending, skipped = [], set()
    for item in sweep.configs:
        entry = entries.get(item.name)
        if not rerun and _complete(item, out, entry):
            skipped.add(item.name)
            continue
        if entry is not None and entry.get("sha") != item.sha:
            _remove_outputs(item, out)  # made from another version of this config: stale
        entries[item.name] = {
            "index": item.index,
            "sha": item.sha,
            "overrides": item.overrides,
            "status": "pending",
            "error": None,
        }
        pending.append(item)
    record.save()  # before the configs: every file under out/ is then claimed by the record
    for item in pending:
        write_json(out / "configs" / f"{item.name}.json", item.raw)
    return record, pending, skipped


class _QuietTraining(Progress):
    """Training inside a sweep draws no bars of its own; warnings still reach the user."""

    def __init__(self, progress: SweepProgress) -> None:
        self._progress = progress

    def warn(self, message: str) -> None:
        self._progress.warn(message)


def run_sweep(
    sweep: Sweep,
    *,
    data_dir: Path | str,
    rerun: bool = False,
    final: bool = False,
    executor: Any = None,
    progress: SweepProgress | None = None,
) -> SweepReport:
    """Check every config, then run the incomplete ones (here or on a Dask client).

    A config that fails is recorded with its error and the sweep goes on; the report
    lists every config with its metrics (read from its results file) or its error.
    """
    progress = progress or SweepProgress()
    out = Path(sweep.output_dir or "experiments")
    check_sweep(sweep, data_dir)
    record, pending, skipped = _prepare(sweep, out, rerun)
    progress.start(len(sweep.configs), len(skipped))
    outcomes: dict[str, Outcome] = {}
    counts = {"done": len(skipped), "failed": 0}

    def finished(item: SweepConfig, error: str | None, seconds: float | None) -> None:
        if error is None:
            record.set(item, status="done", error=None, seconds=seconds)
            counts["done"] += 1
        else:
            record.set(item, status="failed", error=error, seconds=seconds)
            counts["failed"] += 1
        outcomes[item.name] = Outcome(
            item.name, item.index, "done" if error is None else "failed", error, seconds
        )

    if executor is None:
        _run_here(pending, out, data_dir, final, progress, counts, finished)
    else:
        _run_on_dask(executor, pending, out, data_dir, final, progress, counts, finished)

    report_outcomes = []
    for item in sweep.configs:
        outcome = outcomes.get(item.name) or Outcome(item.name, item.index, "skipped")
        if outcome.status != "failed":
            outcome.results_path = _outputs(item, out)["results"]
            outcome.metrics = _metrics(outcome.results_path)
        report_outcomes.append(outcome)
    return SweepReport(sweep, out, record.path, report_outcomes)


def _metrics(path: Path) -> dict[str, Any]:
    import json

    try:
        return dict(json.loads(path.read_text(encoding="utf-8")).get("metrics") or {})
    except (OSError, ValueError):
        return {}


def _error_text(error: BaseException) -> str:
    if isinstance(error, NxError):
        return " ".join(str(error).split())
    return f"{type(error).__name__}: {' '.join(str(error).split())}"


def _run_here(pending, out, data_dir, final, progress, counts, finished) -> None:
    from nx.engine.train import train_config

    training = _QuietTraining(progress)
    for item in pending:
        progress.update(done=counts["done"], running=1, failed=counts["failed"])
        started = time.perf_counter()
        try:
            train_config(  # the record claims these outputs: a rerun replaces them
                item.config,
                data_dir=data_dir,
                output_dir=out,
                final=final,
                overwrite=True,
                progress=training,
            )
        except Exception as error:  # recorded; the sweep goes on (Ctrl-C still stops it)
            finished(item, _error_text(error), round(time.perf_counter() - started, 3))
        else:
            finished(item, None, round(time.perf_counter() - started, 3))
        progress.update(done=counts["done"], running=0, failed=counts["failed"])


def run_config_task(raw: dict[str, Any], source: str, data_dir: str, final: bool) -> dict[str, Any]:
    """One config on a Dask worker: ``train_config`` into a scratch folder, files returned.

    Returns ``{"files": {relative path: bytes}, "error": None, "seconds": s}``, or the
    error as text (the config failed; the worker is fine).
    """
    from nx.engine.train import train_config
    from nx.engine.train.config import parse_config

    started = time.perf_counter()
    scratch = Path(tempfile.mkdtemp(prefix="nx-sweep-"))
    try:
        config = parse_config(raw, source)
        train_config(config, data_dir=data_dir, output_dir=scratch, final=final)
        files = {
            str(p.relative_to(scratch)): p.read_bytes()
            for p in sorted(scratch.rglob("*"))
            if p.is_file()
        }
        return {"files": files, "error": None, "seconds": time.perf_counter() - started}
    except Exception as error:
        return {"files": {}, "error": _error_text(error), "seconds": time.perf_counter() - started}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _write_returned(files: dict[str, bytes], out: Path, item: SweepConfig) -> None:
    """Write a worker's files under ``out``; results point at ``out``, not the scratch dir."""
    import json

    results_rel = str(_outputs(item, out)["results"].relative_to(out))
    # as nx train does (nx.engine.train.outputs): the earlier results file goes first, an
    # earlier model folder is replaced whole, and the new results file comes last (it
    # marks the config complete), so a reader never sees two runs' files as one set
    (out / results_rel).unlink(missing_ok=True)
    model_dir = out / "models" / item.config.name
    if any(rel.startswith(f"models/{item.config.name}/") for rel in files):
        shutil.rmtree(model_dir, ignore_errors=True)
    for rel in sorted(files, key=lambda r: r == results_rel):
        data = files[rel]
        if rel == results_rel:
            document = json.loads(data)
            if isinstance(document.get("output"), dict):
                document["output"]["output_dir"] = str(out)
            write_json(out / rel, document)
            continue
        with atomic_output(out / rel) as tmp:
            tmp.write_bytes(data)


def _run_on_dask(client, pending, out, data_dir, final, progress, counts, finished) -> None:
    from distributed import as_completed

    link = dashboard_link(client)
    if link:
        progress.dashboard(link)
    data_dir = str(Path(data_dir).resolve())
    futures = {}
    for item in pending:
        future = client.submit(
            run_config_task,
            item.raw,
            str(out / "configs" / f"{item.name}.json"),
            data_dir,
            final,
            key=f"nx-sweep-{item.name}-{item.sha}",
            pure=False,
        )
        futures[future] = item
    keys = {f.key for f in futures}

    def running() -> int:
        try:
            processing = client.processing()
        except Exception:  # the scheduler is busy or gone: the bar just waits
            return 0
        return sum(1 for tasks in processing.values() for k in tasks if k in keys)

    queue = as_completed(list(futures))
    progress.update(done=counts["done"], running=running(), failed=counts["failed"])
    while not queue.is_empty():
        batch = queue.next_batch(block=False)
        if not batch:
            time.sleep(POLL_SECONDS)
            progress.update(done=counts["done"], running=running(), failed=counts["failed"])
            continue
        for future in batch:
            item = futures[future]
            try:
                answer = future.result()
            except Exception as error:  # e.g. KilledWorker after repeated worker deaths
                finished(item, _error_text(error), None)
                continue
            finally:
                future.release()
            if answer["error"] is None:
                try:
                    _write_returned(answer["files"], out, item)
                except OSError as error:
                    raise SweepError(
                        f"{out}: cannot write {item.name}'s outputs ({error}); free space or "
                        "fix permissions, then run the sweep again (complete configs are kept)"
                    ) from None
            finished(item, answer["error"], round(answer["seconds"], 3))
        progress.update(done=counts["done"], running=running(), failed=counts["failed"])


def dashboard_link(client) -> str | None:
    """The scheduler's dashboard address, when it serves one."""
    try:
        info = client.scheduler_info()
        port = info.get("services", {}).get("dashboard")
        if not port:
            return None
        host = info["address"].split("://", 1)[-1].rsplit(":", 1)[0]
        return f"http://{host}:{port}/status"
    except Exception:
        return None


def check_workers_see(client, data_dir: Path | str, sweep: Sweep) -> None:
    """On a remote cluster every worker must see the same data files at the same path."""
    files = sorted({str(Path(p).resolve()) for p in _data_files(sweep, data_dir)})

    def facts(paths: list[str]) -> dict[str, Any]:
        import os

        found = {}
        for p in paths:
            try:
                stat = os.stat(p)
                found[p] = [stat.st_size, stat.st_mtime_ns]
            except OSError:
                found[p] = None
        return found

    import os

    here = {}
    for p in files:
        stat = os.stat(p)
        here[p] = [stat.st_size, stat.st_mtime_ns]
    try:
        seen = client.run(facts, files)
    except Exception as error:
        raise SweepError(f"cannot ask the Dask workers for their files ({error})") from None
    for worker, found in seen.items():
        for p in files:
            if found.get(p) is None:
                raise SweepError(
                    f"worker {worker} does not see {p}: the data dir must be the same path on "
                    "every worker (a shared filesystem); check on a worker with `nx data info "
                    f"--data-dir {Path(data_dir).resolve()}`"
                )
            if found[p][0] != here[p][0]:
                raise SweepError(
                    f"worker {worker} sees another {p} (size {found[p][0]:,} vs {here[p][0]:,}): "
                    "the data dir must be the same shared files on every worker"
                )


def _data_files(sweep: Sweep, data_dir: Path | str) -> list[Path]:
    from nx.engine.paths import version_dir
    from nx.engine.train.config import resolve_data_path

    found = []
    for item in sweep.configs:
        cfg = item.config.data
        vdir = version_dir(data_dir, cfg.data_version)
        found.append(resolve_data_path(Path(data_dir), cfg.full_data_path, vdir / "full.parquet"))
    return found
