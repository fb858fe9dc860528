"""A small fake of Numerai's API served on 127.0.0.1, for end-to-end tests.

GraphQL subset (POST, answered by the first field the document selects) plus a
presigned-PUT endpoint that stores the bytes it receives. Every call is recorded in
order (``calls``: GraphQL field names, ``PUT <name>`` for uploads), every PUT body in
``uploads``. Authenticated fields require ``Authorization: Token PUBLIC$SECRET``.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PUBLIC_ID = "FAKEPUBLICID"
SECRET_KEY = "s3cr3t-FAKE-SECRET-KEY-0123456789"
TOKEN = f"Token {PUBLIC_ID}${SECRET_KEY}"
MODEL_ID = "11111111-2222-3333-4444-555555555555"
IMAGES = [
    {"id": "img-311", "name": "Python 3.11", "default": False},
    {"id": "img-312", "name": "Python 3.12", "default": True},
]
DATA_VERSIONS = [{"id": "dv-52", "name": "v5.2", "default": True}]
PUBLIC_FIELDS = {
    "rounds",
    "tournaments",
    "listDatasets",
    "v2Leaderboard",
    "v3UserProfile",
    "v2RoundModelPerformances",
}
_FIELD = re.compile(r"\{\s*(\w+)")


class FakeNumerai:
    """State of the fake API; ``url`` is its GraphQL endpoint once started."""

    def __init__(self, validation: list[str] | None = None, base: str | None = None) -> None:
        self._base = base  # where upload URLs point when there is no server (responses)
        self.calls: list[str] = []
        self.uploads: dict[str, bytes] = {}
        self.models = [{"id": MODEL_ID, "name": "nx_model", "tournament": 8}]
        self.validation = list(validation or ["pending", "succeeded"])
        self.pickles: dict[str, dict[str, Any]] = {}
        self.submissions: list[dict[str, Any]] = []
        self.assigned: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # --- server --------------------------------------------------------------------
    def __enter__(self) -> FakeNumerai:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def _send(self, status: int, body: bytes, kind: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request = json.loads(self.rfile.read(length) or b"{}")
                status, answer = fake.graphql(
                    request.get("query", ""),
                    request.get("variables") or {},
                    self.headers.get("Authorization"),
                )
                self._send(status, json.dumps(answer).encode())

            def do_PUT(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                name = self.path.rsplit("/", 1)[-1]
                with fake._lock:
                    fake.calls.append(f"PUT {name}")
                    fake.uploads[name] = body
                self._send(200, b"")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    @property
    def base(self) -> str:
        if self._base:
            return self._base
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def url(self) -> str:
        return f"{self.base}/graphql"

    # --- GraphQL -------------------------------------------------------------------
    def graphql(self, query: str, variables: dict, authorization: str | None):
        match = _FIELD.search(query)
        field = match.group(1) if match else ""
        with self._lock:
            self.calls.append(field)
        if field not in PUBLIC_FIELDS and authorization != TOKEN:
            # like a careless server, echo what it was sent: nx must redact it
            message = f"You must be authenticated (got {authorization})"
            return 200, {"data": None, "errors": [{"message": message}]}
        handler = getattr(self, f"op_{field}", None)
        if handler is None:
            return 200, {"data": None, "errors": [{"message": f"Unknown field {field}"}]}
        return 200, {"data": {field: handler(**variables)}}

    def op_apiTokenInfo(self):
        return {
            "accountUsername": "nx_user",
            "name": "nx-key",
            "publicId": PUBLIC_ID,
            "scopes": ["upload_submission", "read_user_info"],
        }

    def op_account(self):
        return {"username": "nx_user", "models": self.models}

    def op_modelNameAvailable(self, name, tournament):
        return all(m["name"] != name for m in self.models)

    def op_addModel(self, name, tournament):
        model = {"id": f"model-{len(self.models)}", "name": name, "tournament": tournament}
        self.models.append(model)
        return {"id": model["id"], "name": name}

    def op_rounds(self, tournament, **_):
        return [{"number": 1000, "openTime": "2026-11-28T13:00:00Z", "closeTime": None}]

    def op_tournaments(self):
        return [{"tournament": 8, "name": "classic", "active": True}]

    def op_listDatasets(self, **_):
        return ["v5.2/train.parquet", "v5.2/live.parquet"]

    def op_computePickleDockerImages(self, **_):
        return IMAGES

    def op_computePickleDataVersions(self, **_):
        return DATA_VERSIONS

    def op_computePickleUploadAuth(self, filename, modelId):
        return {"filename": f"stored-{filename}", "url": f"{self.base}/upload/stored-{filename}"}

    def op_createComputePickleUpload(self, filename, tournament, modelId, **ids):
        pickle_id = f"pickle-{len(self.pickles) + 1}"
        self.pickles[pickle_id] = {
            "id": pickle_id,
            "filename": filename,
            "modelId": modelId,
            "polls": 0,
            **ids,
        }
        return {"id": pickle_id}

    def op_computePickles(self, id=None, modelId=None, unassigned=None):
        rows = []
        for pickle in self.pickles.values():
            if id and pickle["id"] != id:
                continue
            step = min(pickle["polls"], len(self.validation) - 1)
            pickle["polls"] += 1
            status = self.validation[step]
            rows.append(
                {
                    "id": pickle["id"],
                    "filename": pickle["filename"],
                    "validationStatus": status,
                    "triggerStatus": None,
                    "insertedAt": "2026-11-28T13:00:00Z",
                    "triggers": [{"id": "trigger-1", "status": status, "statuses": []}],
                }
            )
        return rows

    def op_triggerLogs(self, triggerId):
        return [{"message": "ModuleNotFoundError: No module named 'mylib'", "timestamp": "t1"}]

    def op_assignPickleToModel(self, modelId, pickleId):
        self.assigned.append((modelId, pickleId))
        return "ok"

    def op_submissionUploadAuth(self, filename, tournament, modelId):
        return {"filename": f"sub-{filename}", "url": f"{self.base}/upload/sub-{filename}"}

    def op_createSubmission(self, filename, tournament, modelId):
        self.submissions.append({"filename": filename, "modelId": modelId})
        return {"id": f"submission-{len(self.submissions)}"}

    def op_diagnosticsUploadAuth(self, filename, tournament, modelId):
        return {"filename": f"diag-{filename}", "url": f"{self.base}/upload/diag-{filename}"}

    def op_createDiagnostics(self, filename, tournament, modelId):
        self.diagnostics_polls = 0
        return {"id": "diagnostics-1"}

    def op_diagnostics(self, modelId, id=None):
        self.diagnostics_polls = getattr(self, "diagnostics_polls", 0) + 1
        if self.diagnostics_polls < 2:
            return {"status": "pending", "message": None}
        return {
            "status": "done",
            "message": None,
            "erasAcceptedCount": 120,
            "validationCorrMean": 0.0213,
            "validationCorrSharpe": 1.05,
            "validationBmcMean": 0.0041,
            "perEraDiagnostics": [{"era": "0575", "validationCorr": 0.02}],
            "updatedAt": "2026-11-28T13:00:00Z",
        }

    def op_v2RoundModelPerformances(self, modelId, lastNRounds=None, tournament=None):
        rounds = [
            {
                "roundNumber": n,
                "roundOpenTime": "2026-11-01T13:00:00Z",
                "roundResolveTime": None,
                "roundResolved": n < 999,
                "submissionScores": [
                    {"displayName": "CORR20", "value": 0.01 * (n - 996), "percentile": 0.5},
                    {"displayName": "MMC", "value": 0.001, "percentile": 0.4},
                ],
            }
            for n in (997, 998, 999)
        ]
        return rounds[-lastNRounds:] if lastNRounds else rounds

    def op_v2Leaderboard(self, limit, offset):
        rows = [
            {"rank": i + 1, "username": f"m{i}", "corr20Rep": 0.05, "mmcRep": 0.01,
             "bmcRep": 0.02, "nmrStaked": "12.5"}
            for i in range(5)
        ]  # fmt: skip
        return rows[offset : offset + limit]

    def op_v3UserProfile(self, model_name, tournament):
        if model_name not in {m["name"] for m in self.models}:
            return None
        return {"id": MODEL_ID, "username": model_name, "startDate": "2025-01-02T00:00:00Z",
                "bio": None, "nmrStaked": "3.25"}  # fmt: skip
