"""Numerai's API operations nx uses, one function each (reference §7).

Each takes a :class:`~nx.engine.numerai.client.NumeraiClient` and returns plain,
JSON-ready values (numbers, strings, lists, dicts). Where numerapi has the query
(models, datasets, leaderboard, profiles, runtime images, data versions, diagnostics)
its helper is called; the operations numerapi lacks (who am I, create a model, pickle
uploads and their assignment, trigger logs) are sent through the same client.
"""

from __future__ import annotations

import datetime
import decimal
import re
from typing import Any

from nx.engine.errors import ApiError, ConfigError
from nx.engine.numerai.client import NumeraiClient

CLASSIC, SIGNALS, CRYPTO = 8, 11, 12
TOURNAMENTS = {CLASSIC: "Classic", SIGNALS: "Signals", CRYPTO: "Crypto"}
UPLOAD_SCOPE = "upload_submission"  # uploads, submissions, diagnostics
READ_SCOPE = "read_user_info"  # models, pickle status
SCOPES_NEEDED = {
    "upload": UPLOAD_SCOPE,
    "submit": UPLOAD_SCOPE,
    "diagnostics": UPLOAD_SCOPE,
    "create-model": UPLOAD_SCOPE,
    "models": READ_SCOPE,
    "status": READ_SCOPE,
}
VALIDATION_PASSED = frozenset(
    {"succeeded", "success", "successful", "passed", "valid", "validated", "complete", "completed"}
)
VALIDATION_FAILED = frozenset(
    {"failed", "failure", "error", "errored", "invalid", "timeout", "timed_out", "cancelled"}
)
_MODEL_NAME = re.compile(r"^[A-Za-z0-9_]{1,50}$")


def plain(value: Any) -> Any:
    """numerapi's Decimals and datetimes as JSON values (float, ISO 8601 string)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    return value


def check_tournament(tournament: int) -> int:
    if tournament not in TOURNAMENTS:
        known = ", ".join(f"{k} ({v})" for k, v in TOURNAMENTS.items())
        raise ConfigError(f"unknown tournament {tournament}; use one of {known}")
    return tournament


def validation_state(status: str | None) -> str:
    """``passed``, ``failed`` or ``pending`` for a pickle's ``validationStatus``."""
    value = (status or "").strip().lower()
    if value in VALIDATION_PASSED:
        return "passed"
    if value in VALIDATION_FAILED:
        return "failed"
    return "pending"


# --- account ------------------------------------------------------------------------

TOKEN_INFO = "query { apiTokenInfo { accountUsername name publicId scopes } }"


def whoami(client: NumeraiClient) -> dict[str, Any]:
    """The account and API key behind the credentials, with the scopes each nx command needs."""
    info = client.query(TOKEN_INFO)["apiTokenInfo"] or {}
    scopes = sorted(info.get("scopes") or [])
    missing = {cmd: scope for cmd, scope in SCOPES_NEEDED.items() if scope not in scopes}
    return {
        "account": info.get("accountUsername"),
        "token_name": info.get("name"),
        "public_id": info.get("publicId"),
        "scopes": scopes,
        "credentials_source": client.credentials.source if client.credentials else None,
        "missing_scopes": missing,
    }


MODELS = "query { account { username models { id name tournament } } }"


def list_models(client: NumeraiClient, tournament: int | None = None) -> list[dict[str, Any]]:
    """The account's models (``id``, ``name``, ``tournament``), by tournament then name."""
    account = client.query(MODELS, scope=READ_SCOPE)["account"] or {}
    models = [
        {"id": m["id"], "name": m["name"], "tournament": m.get("tournament")}
        for m in account.get("models") or []
        if tournament is None or m.get("tournament") == tournament
    ]
    return sorted(models, key=lambda m: (m["tournament"] or 0, m["name"]))


def model_id(client: NumeraiClient, name: str, tournament: int = CLASSIC) -> str:
    """The id of the account's model ``name`` in ``tournament``."""
    models = list_models(client)
    for model in models:
        if model["name"] == name and model["tournament"] == tournament:
            return model["id"]
    others = [m["name"] for m in models if m["tournament"] == tournament]
    elsewhere = [m for m in models if m["name"] == name]
    if elsewhere:
        where = TOURNAMENTS.get(elsewhere[0]["tournament"], elsewhere[0]["tournament"])
        raise ConfigError(
            f"model {name!r} is a {where} model, not a {TOURNAMENTS[tournament]} one; "
            "pass the matching --tournament"
        )
    listed = ", ".join(others[:20]) if others else "none"
    raise ConfigError(
        f"your account has no {TOURNAMENTS.get(tournament, tournament)} model named {name!r} "
        f"(yours: {listed}); create it with `nx numerai create-model {name}`"
    )


NAME_AVAILABLE = """
query($name: String!, $tournament: Int!) { modelNameAvailable(name: $name, tournament: $tournament) }
"""
ADD_MODEL = """
mutation($name: String!, $tournament: Int!) {
  addModel(name: $name, tournament: $tournament) { id name }
}
"""


def create_model(client: NumeraiClient, name: str, tournament: int = CLASSIC) -> dict[str, Any]:
    """Create the model slot ``name`` after checking the name is free."""
    check_tournament(tournament)
    if not _MODEL_NAME.match(name):
        raise ConfigError(
            f"model name {name!r} must be 1-50 letters, digits or underscores; choose another"
        )
    variables = {"name": name, "tournament": tournament}
    available = client.query(NAME_AVAILABLE, variables, scope=UPLOAD_SCOPE)["modelNameAvailable"]
    if not available:
        raise ConfigError(f"the model name {name!r} is taken on Numerai; choose another name")
    model = client.query(ADD_MODEL, variables, scope=UPLOAD_SCOPE)["addModel"] or {}
    return {"id": model.get("id"), "name": model.get("name", name), "tournament": tournament}


# --- rounds, tournaments, datasets, leaderboard, profiles ------------------------------

CURRENT_ROUND = """
query($tournament: Int!) {
  rounds(tournament: $tournament, number: 0) {
    number openTime closeTime closeStakingTime resolveTime
  }
}
"""


def current_round(client: NumeraiClient, tournament: int = CLASSIC) -> dict[str, Any] | None:
    """The open round (``number``, ``openTime``, ``closeTime``...), None between rounds."""
    check_tournament(tournament)
    rounds = client.query(CURRENT_ROUND, {"tournament": tournament}, auth=False)["rounds"]
    return rounds[0] if rounds else None


TOURNAMENTS_QUERY = "query { tournaments { tournament name active } }"


def tournaments(client: NumeraiClient) -> list[dict[str, Any]]:
    return list(client.query(TOURNAMENTS_QUERY, auth=False)["tournaments"] or [])


def datasets(client: NumeraiClient, round_number: int | None = None) -> list[str]:
    """The dataset files Numerai offers (Classic), for the current round or ``round_number``."""
    return list(client.api.list_datasets(round_number) or [])


def leaderboard(client: NumeraiClient, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
    if limit < 1:
        raise ConfigError(f"--limit must be at least 1, not {limit}")
    return plain(client.api.get_leaderboard(limit=limit, offset=offset))


def profile(client: NumeraiClient, model: str) -> dict[str, Any]:
    """A model's public profile (id, start date, stake) in the Classic tournament."""
    data = client.api.public_user_profile(model)
    if not data:
        raise ConfigError(f"Numerai has no model named {model!r}; check the name")
    return plain(data)


PERFORMANCE = """
query($modelId: String!, $lastNRounds: Int, $tournament: Int) {
  v2RoundModelPerformances(modelId: $modelId, lastNRounds: $lastNRounds, tournament: $tournament) {
    roundNumber roundOpenTime roundResolveTime roundResolved
    submissionScores { displayName value percentile date day }
  }
}
"""


def performance(
    client: NumeraiClient, model: str, last: int | None = None, tournament: int = CLASSIC
) -> dict[str, Any]:
    """Per-round scores of ``model`` (the account's own, else a public one), newest first."""
    check_tournament(tournament)
    if last is not None and last < 1:
        raise ConfigError(f"--last must be at least 1, not {last}")
    if client.credentials is not None:
        mid = model_id(client, model, tournament)
    else:
        mid = profile(client, model)["id"]
    variables = {"modelId": mid, "lastNRounds": last, "tournament": tournament}
    rounds = client.query(PERFORMANCE, variables, auth=client.credentials is not None)
    rows = []
    for entry in rounds["v2RoundModelPerformances"] or []:
        scores = {s["displayName"]: s.get("value") for s in entry.get("submissionScores") or []}
        rows.append(
            {
                "round": entry.get("roundNumber"),
                "open_time": entry.get("roundOpenTime"),
                "resolved": entry.get("roundResolved"),
                "scores": scores,
            }
        )
    rows.sort(key=lambda r: r["round"] or 0, reverse=True)
    return {"model": model, "model_id": mid, "rounds": rows[:last] if last else rows}


# --- model uploads (pickles) -----------------------------------------------------------

PICKLES = """
query($id: String, $modelId: String, $unassigned: Boolean) {
  computePickles(id: $id, modelId: $modelId, unassigned: $unassigned) {
    id filename validationStatus triggerStatus insertedAt
    triggers { id status statuses { status description insertedAt } }
  }
}
"""
TRIGGER_LOGS = """
query($triggerId: String!) { triggerLogs(triggerId: $triggerId) { message timestamp } }
"""
ASSIGN = """
mutation($modelId: String!, $pickleId: String!) {
  assignPickleToModel(modelId: $modelId, pickleId: $pickleId)
}
"""


def pickle_uploads(
    client: NumeraiClient, *, pickle_id: str | None = None, model_id: str | None = None
) -> list[dict[str, Any]]:
    """Uploaded pickles with their validation and trigger status, newest first."""
    variables = {"id": pickle_id, "modelId": model_id, "unassigned": None}
    uploads = client.query(PICKLES, variables, scope=READ_SCOPE)["computePickles"] or []
    return sorted(uploads, key=lambda u: u.get("insertedAt") or "", reverse=True)


def latest_trigger(upload: dict[str, Any]) -> dict[str, Any] | None:
    triggers = upload.get("triggers") or []
    return triggers[-1] if triggers else None


def trigger_logs(client: NumeraiClient, trigger_id: str) -> list[dict[str, Any]]:
    """Log lines (``message``, ``timestamp``) of one run of an uploaded pickle."""
    logs = client.query(TRIGGER_LOGS, {"triggerId": trigger_id}, scope=READ_SCOPE)
    return list(logs["triggerLogs"] or [])


def assign_pickle(client: NumeraiClient, model_id: str, pickle_id: str) -> Any:
    variables = {"modelId": model_id, "pickleId": pickle_id}
    return client.query(ASSIGN, variables, scope=UPLOAD_SCOPE)["assignPickleToModel"]


def _pick(options: dict[str, str], wanted: str, what: str, flag: str) -> str:
    """The id of ``wanted`` among ``options`` (name -> id): an exact name, else the
    one name that contains it as a whole version (``3.12`` matches ``Python 3.12``)."""
    if wanted in options:
        return options[wanted]
    core = wanted.strip().lower().removeprefix("python").strip().removeprefix("v")
    pattern = re.compile(rf"(?<![\d.]){re.escape(core)}(?![\d.])")
    hits = [name for name in options if core and pattern.search(name.lower())]
    if len(hits) == 1:
        return options[hits[0]]
    offered = ", ".join(sorted(options)) or "none"
    raise ConfigError(f"Numerai has no {what} {wanted!r} (it offers: {offered}); change {flag}")


def docker_image_id(client: NumeraiClient, runtime: str) -> str:
    """Numerai's runtime image id for a Python version such as ``3.12``."""
    images = client.api.model_upload_docker_images() or {}
    return _pick(images, runtime, "model runtime", "--runtime")


def data_version_id(client: NumeraiClient, data_version: str) -> str:
    """Numerai's id of a pickle data version such as ``v5.2``."""
    versions = client.api.model_upload_data_versions() or {}
    return _pick(versions, data_version, "data version", "--data-version")


# --- anything else ---------------------------------------------------------------------


def graphql(
    client: NumeraiClient, query: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Any GraphQL document; sent with the credentials when there are some."""
    if not query.strip():
        raise ConfigError("the GraphQL query is empty; pass a query or a file holding one")
    return client.query(query, variables, auth=client.credentials is not None)


def require(value: Any, what: str) -> Any:
    """``value``, or an :class:`ApiError` saying Numerai's answer lacked ``what``."""
    if value in (None, "", [], {}):
        raise ApiError(f"Numerai's answer has no {what}; try again, or report it to Numerai")
    return value
