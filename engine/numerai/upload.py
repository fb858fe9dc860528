"""Sending work to Numerai: model uploads (pickles), live submissions and diagnostics.

Each flow follows Numerai's sequence (reference §7): upload URL -> PUT of the bytes
(checked, unlike numerapi) -> register -> (pickles) poll ``computePickles`` until the
validation is final -> assign the pickle to the model slot. Inputs are checked first,
before anything is sent: a pickle by ``nx check-pickle`` for the runtime it will run
in, a predictions file for its columns, values and (Classic) live ids.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nx.engine.errors import ApiError, ConfigError
from nx.engine.numerai.client import NumeraiClient, one_line
from nx.engine.numerai.operations import (
    CLASSIC,
    UPLOAD_SCOPE,
    assign_pickle,
    data_version_id,
    docker_image_id,
    latest_trigger,
    model_id,
    pickle_uploads,
    plain,
    require,
    trigger_logs,
    validation_state,
)
from nx.engine.numerai.predictions import existing_file, validate_predictions
from nx.engine.paths import DEFAULT_DATA_DIR, DEFAULT_DATA_VERSION
from nx.engine.progress import NO_PROGRESS, Progress

DEFAULT_RUNTIME = "3.12"
VALIDATION_TIMEOUT_S = 900.0
DIAGNOSTICS_TIMEOUT_S = 900.0
POLL_S = 10.0
DIAGNOSTICS_SUMMARY = (
    "status",
    "message",
    "erasAcceptedCount",
    "validationCorrMean",
    "validationCorrSharpe",
    "validationCorrStd",
    "validationMaxDrawdown",
    "validationBmcMean",
    "validationMmcMean",
    "validationFeatureNeutralCorrMean",
    "validationFeatureCorrMax",
    "examplePredsCorrMean",
)


class ValidationFailedError(ApiError):
    """Numerai ran the uploaded pickle and its validation failed (``nx`` exits with 3)."""

    exit_code = 3

    def __init__(self, message: str, log_lines: list[str] | None = None) -> None:
        super().__init__(message)
        self.log_lines = list(log_lines or [])


PICKLE_UPLOAD_AUTH = """
query($filename: String!, $modelId: String) {
  computePickleUploadAuth(filename: $filename, modelId: $modelId) { filename url }
}
"""
CREATE_PICKLE_UPLOAD = """
mutation($filename: String!, $tournament: Int!, $modelId: String,
         $dataVersionId: String, $dockerImageId: String) {
  createComputePickleUpload(filename: $filename, tournament: $tournament, modelId: $modelId,
                            dataVersionId: $dataVersionId, dockerImageId: $dockerImageId) { id }
}
"""
SUBMISSION_UPLOAD_AUTH = """
query($filename: String!, $tournament: Int!, $modelId: String) {
  submissionUploadAuth(filename: $filename, tournament: $tournament, modelId: $modelId) {
    filename url
  }
}
"""
CREATE_SUBMISSION = """
mutation($filename: String!, $tournament: Int!, $modelId: String) {
  createSubmission(filename: $filename, tournament: $tournament, modelId: $modelId) { id }
}
"""
DIAGNOSTICS_UPLOAD_AUTH = """
query($filename: String!, $tournament: Int!, $modelId: String) {
  diagnosticsUploadAuth(filename: $filename, tournament: $tournament, modelId: $modelId) {
    filename url
  }
}
"""
CREATE_DIAGNOSTICS = """
mutation($filename: String!, $tournament: Int!, $modelId: String) {
  createDiagnostics(filename: $filename, tournament: $tournament, modelId: $modelId) { id }
}
"""


def run_pickle_check(path: Path, runtime: str, data_dir: Path) -> None:
    """``nx check-pickle`` for ``runtime``: raises ExportError when the pickle would fail."""
    from nx.engine.export import check_pickle

    check_pickle(path, runtime=runtime, data_dir=data_dir)


def poll(
    fetch: Callable[[], dict[str, Any]],
    state_of: Callable[[dict[str, Any]], str],
    *,
    label: str,
    timeout_s: float,
    poll_s: float,
    progress: Progress,
) -> dict[str, Any]:
    """Call ``fetch`` every ``poll_s`` until ``state_of`` its answer is not ``pending`` or
    ``timeout_s`` has passed; return the last answer."""
    start = time.monotonic()
    with progress.task(label, total=timeout_s) as bar:
        while True:
            last = fetch()
            elapsed = time.monotonic() - start
            bar.update(completed=min(elapsed, timeout_s))
            if state_of(last) != "pending" or elapsed >= timeout_s:
                return last
            time.sleep(max(0.0, min(poll_s, timeout_s - elapsed)))


def _failure_logs(client: NumeraiClient, upload: dict[str, Any]) -> list[str]:
    trigger = latest_trigger(upload)
    if not trigger or not trigger.get("id"):
        return []
    lines = []
    for status in trigger.get("statuses") or []:
        description = status.get("description") or ""
        lines.append(f"{status.get('insertedAt') or ''} {status.get('status')}: {description}")
    for log in trigger_logs(client, trigger["id"]):
        lines.append(f"{log.get('timestamp') or ''} {log.get('message') or ''}")
    return [" ".join(line.split()) for line in lines if line.strip()]


def pickle_upload_auth(client: NumeraiClient, filename: str, model_id: str) -> dict[str, str]:
    """Numerai's presigned URL for a pickle: ``{"filename", "url"}`` (PUT the bytes there)."""
    auth = client.query(
        PICKLE_UPLOAD_AUTH, {"filename": filename, "modelId": model_id}, scope=UPLOAD_SCOPE
    )["computePickleUploadAuth"]
    url = require((auth or {}).get("url"), "upload URL for the pickle")
    return {"filename": auth.get("filename") or filename, "url": url}


def register_pickle(
    client: NumeraiClient, filename: str, model_id: str, image_id: str, version_id: str
) -> str:
    """Register a pickle PUT to its upload URL (``createComputePickleUpload``); its id."""
    created = client.query(
        CREATE_PICKLE_UPLOAD,
        {
            "filename": filename,
            "tournament": CLASSIC,
            "modelId": model_id,
            "dataVersionId": version_id,
            "dockerImageId": image_id,
        },
        scope=UPLOAD_SCOPE,
    )["createComputePickleUpload"]
    return require((created or {}).get("id"), "id for the registered pickle")


def upload_pickle(
    client: NumeraiClient,
    pickle_path: Path | str,
    model: str,
    *,
    runtime: str = DEFAULT_RUNTIME,
    data_version: str = DEFAULT_DATA_VERSION,
    wait: bool = True,
    assign: bool = True,
    check: bool = True,
    data_dir: Path | str = DEFAULT_DATA_DIR,
    timeout_s: float = VALIDATION_TIMEOUT_S,
    poll_s: float = POLL_S,
    progress: Progress = NO_PROGRESS,
) -> dict[str, Any]:
    """Upload a pickle for ``model`` (Classic) as Numerai's model upload does.

    ``check`` runs ``nx check-pickle`` for ``runtime`` first; ``wait`` polls the
    validation for up to ``timeout_s`` (a failure raises :class:`ValidationFailedError`
    with the trigger's log lines); ``assign`` then makes it the model's pickle.
    """
    path = existing_file(Path(pickle_path), "pickle", (".pkl",))
    if check:
        run_pickle_check(path, runtime, Path(data_dir))
    mid = model_id(client, model, CLASSIC)
    image_id = docker_image_id(client, runtime)
    version_id = data_version_id(client, data_version)
    auth = pickle_upload_auth(client, path.name, mid)
    filename = auth["filename"]
    client.put_file(auth["url"], path, label=path.name, progress=progress)
    pickle_id = register_pickle(client, filename, mid, image_id, version_id)
    result: dict[str, Any] = {
        "model": model,
        "model_id": mid,
        "pickle_id": pickle_id,
        "filename": filename,
        "bytes": path.stat().st_size,
        "runtime": runtime,
        "docker_image_id": image_id,
        "data_version": data_version,
        "data_version_id": version_id,
        "checked": check,
        "validation_status": None,
        "trigger_status": None,
        "assigned": False,
    }
    if wait:
        upload = poll(
            lambda: _one_pickle(client, pickle_id),
            lambda u: validation_state(u.get("validationStatus")),
            label=f"Numerai validating {path.name}",
            timeout_s=timeout_s,
            poll_s=poll_s,
            progress=progress,
        )
        result["validation_status"] = upload.get("validationStatus")
        result["trigger_status"] = upload.get("triggerStatus")
        state = validation_state(upload.get("validationStatus"))
        if state == "failed":
            logs = _failure_logs(client, upload)
            why = "the log above says why" if logs else "Numerai sent no log"
            raise ValidationFailedError(
                f"Numerai's validation of {path.name} failed "
                f"(status {upload.get('validationStatus')}); {why}: fix the pickle (check it "
                f"with `nx check-pickle {path} --runtime {runtime}`) and upload it again; it "
                "was not assigned",
                logs,
            )
        if state == "pending":
            raise ApiError(
                f"Numerai's validation of {path.name} (pickle {pickle_id}) has not finished "
                f"after {timeout_s:.0f} s (status {upload.get('validationStatus')}); it goes on "
                f"at Numerai: follow it with `nx numerai status {model}`, or upload again with "
                "a longer --timeout; it was not assigned"
            )
    if assign:
        assign_pickle(client, mid, pickle_id)
        result["assigned"] = True
    return result


def _one_pickle(client: NumeraiClient, pickle_id: str) -> dict[str, Any]:
    uploads = pickle_uploads(client, pickle_id=pickle_id)
    for upload in uploads:
        if upload.get("id") == pickle_id:
            return upload
    return require(uploads, f"pickle {pickle_id} in computePickles")[0]


def model_status(client: NumeraiClient, model: str | None = None) -> dict[str, Any]:
    """The pickles uploaded (for ``model``, else for the account), newest first, with the
    log of the latest one's latest run."""
    mid = model_id(client, model, CLASSIC) if model else None
    uploads = pickle_uploads(client, model_id=mid)
    rows = [
        {
            "id": u.get("id"),
            "filename": u.get("filename"),
            "validation_status": u.get("validationStatus"),
            "trigger_status": u.get("triggerStatus"),
            "inserted_at": u.get("insertedAt"),
            "latest_trigger": latest_trigger(u),
        }
        for u in uploads
    ]
    logs: list[dict[str, Any]] = []
    if uploads and (trigger := latest_trigger(uploads[0])) and trigger.get("id"):
        logs = trigger_logs(client, trigger["id"])
    return {"model": model, "model_id": mid, "uploads": rows, "latest_log": plain(logs)}


_SEND = {  # kind -> (upload URL query, its field, register mutation, its field)
    "submission": (
        SUBMISSION_UPLOAD_AUTH,
        "submissionUploadAuth",
        CREATE_SUBMISSION,
        "createSubmission",
    ),
    "diagnostics": (
        DIAGNOSTICS_UPLOAD_AUTH,
        "diagnosticsUploadAuth",
        CREATE_DIAGNOSTICS,
        "createDiagnostics",
    ),
}


def _send_file(
    client: NumeraiClient,
    path: Path,
    model: str,
    tournament: int,
    kind: str,
    progress: Progress,
) -> dict[str, Any]:
    """Upload URL -> PUT -> register, for a predictions file (``kind`` submission or
    diagnostics)."""
    auth_query, auth_field, create_query, create_field = _SEND[kind]
    mid = model_id(client, model, tournament)
    variables = {"filename": path.name, "tournament": tournament, "modelId": mid}
    auth = client.query(auth_query, variables, scope=UPLOAD_SCOPE)[auth_field]
    url = require((auth or {}).get("url"), f"upload URL for {path.name}")
    filename = auth.get("filename") or path.name
    client.put_file(url, path, label=path.name, progress=progress)
    created = client.query(create_query, {**variables, "filename": filename}, scope=UPLOAD_SCOPE)[
        create_field
    ]
    return {
        "model": model,
        "model_id": mid,
        "tournament": tournament,
        "filename": filename,
        "id": require((created or {}).get("id"), f"id for {path.name}"),
    }


def submit_predictions(
    client: NumeraiClient,
    predictions_path: Path | str,
    model: str,
    *,
    tournament: int = CLASSIC,
    data_dir: Path | str | None = DEFAULT_DATA_DIR,
    data_version: str = DEFAULT_DATA_VERSION,
    progress: Progress = NO_PROGRESS,
) -> dict[str, Any]:
    """Validate a live predictions file, then upload URL -> PUT -> ``createSubmission``."""
    check = validate_predictions(
        predictions_path, tournament=tournament, data_dir=data_dir, data_version=data_version
    )
    path = Path(predictions_path)
    sent = _send_file(client, path, model, tournament, "submission", progress)
    return {**sent, "submission_id": sent.pop("id"), "validation": check}


def _diagnostics_state(result: dict[str, Any]) -> str:
    status = str(result.get("status") or "").lower()
    if status in ("done", "completed", "complete", "succeeded", "success"):
        return "passed"
    if status in ("failed", "error", "errored"):
        return "failed"
    return "pending"


def run_diagnostics(
    client: NumeraiClient,
    predictions_path: Path | str,
    model: str,
    *,
    tournament: int = CLASSIC,
    wait: bool = True,
    timeout_s: float = DIAGNOSTICS_TIMEOUT_S,
    poll_s: float = POLL_S,
    progress: Progress = NO_PROGRESS,
) -> dict[str, Any]:
    """Upload validation predictions to Numerai's diagnostics and (``wait``) poll the result."""
    if tournament != CLASSIC:
        raise ConfigError("Numerai runs diagnostics for Classic (tournament 8) only")
    check = validate_predictions(predictions_path, tournament=tournament, data_dir=None)
    path = Path(predictions_path)
    sent = _send_file(client, path, model, tournament, "diagnostics", progress)
    diagnostics_id = sent.pop("id")
    result = {**sent, "diagnostics_id": diagnostics_id, "validation": check, "summary": None}
    if not wait:
        return result
    answer = poll(
        lambda: plain(client.api.diagnostics(sent["model_id"], diagnostics_id) or {}),
        _diagnostics_state,
        label=f"Numerai diagnostics of {path.name}",
        timeout_s=timeout_s,
        poll_s=poll_s,
        progress=progress,
    )
    state = _diagnostics_state(answer)
    if state == "failed":
        raise ApiError(
            f"Numerai's diagnostics of {path.name} failed: "
            f"{one_line(answer.get('message') or answer.get('status'))}; "
            "check that the file holds validation predictions"
        )
    if state == "pending":
        raise ApiError(
            f"Numerai's diagnostics {diagnostics_id} have not finished after {timeout_s:.0f} s; "
            "run `nx numerai diagnostics` again later, or with a longer --timeout"
        )
    result["summary"] = {key: answer.get(key) for key in DIAGNOSTICS_SUMMARY if key in answer}
    result["per_era"] = answer.get("perEraDiagnostics") or []
    return result
