"""Every ``nx numerai`` command against Numerai's API mocked with ``responses``: the happy
paths, and each failure as one line with exit code 2 (3 for a failed validation)."""

from __future__ import annotations

import json
import re

import cloudpickle
import pytest
import responses

from nx.engine.numerai import client as client_module

from ..conftest import assert_user_error
from .fake_api import MODEL_ID, PUBLIC_ID, SECRET_KEY, FakeNumerai

API = "https://numerai.test/graphql"
UPLOADS = "https://uploads.test"
_FIELD = re.compile(r"\{\s*(\w+)")


class MockedNumerai(FakeNumerai):
    """The fake API's answers served through ``responses``, with scripted failures:
    ``script[field]`` and ``put_script`` hold (status, body) answers sent first."""

    def __init__(self) -> None:
        super().__init__(base=UPLOADS)
        self.script: dict[str, list[tuple[int, str]]] = {}
        self.put_script: list[tuple[int, str]] = []

    def on_post(self, request):
        body = json.loads(request.body)
        field = _FIELD.search(body["query"]).group(1)
        if self.script.get(field):
            self.calls.append(field)
            status, text = self.script[field].pop(0)
            return status, {}, text
        status, answer = self.graphql(
            body["query"], body.get("variables") or {}, request.headers.get("Authorization")
        )
        return status, {}, json.dumps(answer)

    def on_put(self, request):
        name = request.url.rsplit("/", 1)[-1]
        self.calls.append(f"PUT {name}")
        assert "Authorization" not in request.headers  # presigned: no token sent there
        body = request.body.read() if hasattr(request.body, "read") else request.body
        if self.put_script:
            status, text = self.put_script.pop(0)
            return status, {}, text
        self.uploads[name] = bytes(body)
        return 200, {}, ""


@pytest.fixture
def api(monkeypatch):
    monkeypatch.setattr(client_module, "BACKOFF_S", 0.0)
    fake = MockedNumerai()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_callback(responses.POST, API, callback=fake.on_post)
        mock.add_callback(responses.PUT, re.compile(rf"{UPLOADS}/upload/.*"), callback=fake.on_put)
        yield fake


ENV = {
    "NUMERAI_API_URL": API,
    "NUMERAI_PUBLIC_ID": PUBLIC_ID,
    "NUMERAI_SECRET_KEY": SECRET_KEY,
    "NUMERAI_MCP_AUTH": "",
    "NX_DEBUG": "",
}
NO_CREDENTIALS = {**ENV, "NUMERAI_PUBLIC_ID": "", "NUMERAI_SECRET_KEY": ""}


@pytest.fixture
def numerai(nx):
    def invoke(*args, env=None):
        result = nx("numerai", *args, env={**ENV, **(env or {})})
        assert SECRET_KEY not in result.stdout + result.stderr
        return result

    return invoke


def _json(result) -> dict:
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def _predict(live_features):
    return live_features.iloc[:, :1].rank(pct=True)


@pytest.fixture
def pickle_file(tmp_path):
    path = tmp_path / "model.pkl"
    path.write_bytes(cloudpickle.dumps(_predict))
    return path


@pytest.fixture
def predictions(tmp_path):
    path = tmp_path / "preds.csv"
    path.write_text("id,prediction\nn1,0.1\nn2,0.5\nn3,0.9\n")
    return path


@pytest.fixture
def passing_check(monkeypatch):
    """``nx check-pickle`` as the export engine will offer it, recording its calls."""
    from nx.engine.numerai import upload

    calls = []
    monkeypatch.setattr(
        upload, "run_pickle_check", lambda path, runtime, data_dir: calls.append((path, runtime))
    )
    return calls


# --- happy paths ---------------------------------------------------------------------


def test_whoami(api, numerai):
    result = numerai("whoami")
    assert result.exit_code == 0 and result.stdout == ""
    assert "nx_user" in result.stderr and "upload_submission" in result.stderr
    document = _json(numerai("whoami", "--json"))
    assert document["account"] == "nx_user" and document["public_id"] == PUBLIC_ID
    assert document["missing_scopes"] == {} and document["credentials_source"] == "environment"


def test_whoami_names_a_missing_upload_scope(api, numerai, monkeypatch):
    monkeypatch.setattr(
        api, "op_apiTokenInfo", lambda: {"accountUsername": "u", "scopes": ["read_user_info"]}
    )
    result = numerai("whoami")
    assert result.exit_code == 0
    assert "`nx numerai upload` needs the `upload_submission` scope" in result.stderr


def test_models_and_create_model(api, numerai):
    assert _json(numerai("models", "--json"))["models"] == [
        {"id": MODEL_ID, "name": "nx_model", "tournament": 8}
    ]
    created = _json(numerai("create-model", "second_model", "--json"))
    assert created == {"id": "model-1", "name": "second_model", "tournament": 8}
    assert api.calls[-2:] == ["modelNameAvailable", "addModel"]
    table = numerai("models")
    assert "second_model" in table.stderr and "Classic" in table.stderr


def test_create_model_refuses_a_taken_or_bad_name(api, numerai):
    assert_user_error(numerai("create-model", "nx_model"), "taken", "choose another name")
    assert "addModel" not in api.calls
    assert_user_error(numerai("create-model", "has space"), "letters, digits or underscores")
    assert_user_error(numerai("create-model", "x", "--tournament", "9"), "unknown tournament 9")


def test_upload_checks_then_sends_registers_waits_and_assigns(
    api, numerai, pickle_file, passing_check
):
    document = _json(
        numerai("upload", pickle_file, "--model", "nx_model", "--poll-interval", "0", "--json")
    )
    assert passing_check == [(pickle_file, "3.12")]
    assert api.uploads["stored-model.pkl"] == pickle_file.read_bytes()
    assert api.calls[-4:] == [
        "createComputePickleUpload", "computePickles", "computePickles", "assignPickleToModel",
    ]  # fmt: skip
    assert document["validation_status"] == "succeeded" and document["assigned"] is True
    table = numerai("upload", pickle_file, "--model", "nx_model", "--no-wait", "--no-assign")
    assert table.exit_code == 0 and "not waited for" in table.stderr
    assert api.calls[-1] == "createComputePickleUpload"


def test_upload_refuses_a_pickle_that_fails_the_check(api, numerai, pickle_file, monkeypatch):
    from nx.engine.errors import ExportError
    from nx.engine.numerai import upload

    def failing(path, runtime, data_dir):
        raise ExportError(f"{path.name} loads with Python 3.11 only; re-export it for {runtime}")

    monkeypatch.setattr(upload, "run_pickle_check", failing)
    assert_user_error(
        numerai("upload", pickle_file, "--model", "nx_model"), "model.pkl loads with Python 3.11"
    )
    assert api.calls == []
    skipped = numerai("upload", pickle_file, "--model", "nx_model", "--skip-check", "--no-wait")
    assert skipped.exit_code == 0, skipped.stderr


def test_upload_input_errors(api, numerai, pickle_file, tmp_path, passing_check):
    assert_user_error(numerai("upload", tmp_path / "nope.pkl", "--model", "m"), "not found")
    other = tmp_path / "model.bin"
    other.write_bytes(b"x")
    assert_user_error(numerai("upload", other, "--model", "m"), "must end with .pkl")
    assert_user_error(
        numerai("upload", pickle_file, "--model", "ghost"),
        "no Classic model named 'ghost'",
        "nx numerai create-model ghost",
    )
    assert_user_error(
        numerai("upload", pickle_file, "--model", "nx_model", "--runtime", "3.9"),
        "no model runtime '3.9'",
        "Python 3.11, Python 3.12",
    )
    assert_user_error(
        numerai("upload", pickle_file, "--model", "nx_model", "--data-version", "v4.3"),
        "no data version 'v4.3'",
    )
    assert not any(c.startswith("PUT") for c in api.calls)


def test_status(api, numerai, pickle_file, passing_check):
    numerai("upload", pickle_file, "--model", "nx_model", "--poll-interval", "0")
    status = _json(numerai("status", "nx_model", "--json"))
    assert status["model_id"] == MODEL_ID
    assert [u["filename"] for u in status["uploads"]] == ["stored-model.pkl"]
    assert status["latest_log"][0]["message"].startswith("ModuleNotFoundError")
    table = numerai("status")
    assert "stored-model.pkl" in table.stderr and "Latest run's log" in table.stderr


def test_submit(api, numerai, predictions, tmp_path):
    document = _json(
        numerai("submit", predictions, "--model", "nx_model", "--data-dir", tmp_path, "--json")
    )
    assert document["submission_id"] == "submission-1"
    assert document["validation"]["live_ids_checked_against"] is None  # no live.parquet there
    assert api.uploads["sub-preds.csv"] == predictions.read_bytes()
    assert api.calls == ["account", "submissionUploadAuth", "PUT sub-preds.csv", "createSubmission"]


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("id,prediction\nn1,0.1\nn2,\n", "1 of 2 predictions"),
        ("id,prediction\nn1,0.1\nn2,1.5\n", "outside [0, 1]"),
        ("id,a,b\nn1,0.1,0.2\n", "exactly one prediction column"),
        ("ticker,prediction\nn1,0.1\n", "no 'id' column"),
        ("id,prediction\nn1,0.1\nn1,0.2\n", "repeats 1 ids"),
        ("id,prediction\nn1,high\n", "not numbers"),
    ],
)
def test_submit_validates_the_file_first(api, numerai, tmp_path, content, fragment):
    path = tmp_path / "preds.csv"
    path.write_text(content)
    assert_user_error(numerai("submit", path, "--model", "nx_model"), fragment)
    assert api.calls == []


def test_diagnostics(api, numerai, predictions):
    document = _json(
        numerai("diagnostics", predictions, "--model", "nx_model", "--poll-interval", "0", "--json")
    )
    assert document["diagnostics_id"] == "diagnostics-1"
    assert document["summary"]["validationCorrMean"] == pytest.approx(0.0213)
    assert api.uploads["diag-preds.csv"] == predictions.read_bytes()
    assert api.calls.count("diagnostics") == 2  # pending, then done


def test_performance_profile_leaderboard_round_tournaments_datasets(api, numerai):
    perf = _json(numerai("performance", "nx_model", "--last", "2", "--json"))
    assert [r["round"] for r in perf["rounds"]] == [999, 998]
    assert perf["rounds"][0]["scores"]["CORR20"] == pytest.approx(0.03)
    assert "CORR20" in numerai("performance", "nx_model").stderr
    profile = _json(numerai("profile", "nx_model", "--json"))
    assert profile["nmrStaked"] == 3.25 and profile["startDate"].startswith("2025-01-02")
    assert_user_error(numerai("profile", "ghost"), "no model named 'ghost'")
    board = _json(numerai("leaderboard", "--limit", "3", "--json"))["leaderboard"]
    assert [row["rank"] for row in board] == [1, 2, 3] and board[0]["nmrStaked"] == 12.5
    assert _json(numerai("round", "--json"))["round"]["number"] == 1000
    assert "1000" in numerai("round").stderr
    assert _json(numerai("tournaments", "--json"))["tournaments"][0]["tournament"] == 8
    assert _json(numerai("datasets", "--json"))["datasets"] == [
        "v5.2/train.parquet",
        "v5.2/live.parquet",
    ]


def test_public_commands_need_no_credentials(api, numerai):
    assert numerai("round", env=NO_CREDENTIALS).exit_code == 0
    assert numerai("leaderboard", env=NO_CREDENTIALS).exit_code == 0
    perf = numerai("performance", "nx_model", "--json", env=NO_CREDENTIALS)
    assert _json(perf)["model_id"] == MODEL_ID  # found through the public profile


def test_graphql(api, numerai, tmp_path):
    data = _json(
        numerai(
            "graphql",
            "query($tournament: Int!) { rounds(tournament: $tournament) { number } }",
            "--var",
            "tournament=8",
        )
    )
    assert data["rounds"][0]["number"] == 1000
    query_file = tmp_path / "q.graphql"
    query_file.write_text("query { account { username } }")
    assert _json(numerai("graphql", query_file))["account"]["username"] == "nx_user"
    assert_user_error(numerai("graphql", "query { rounds }", "--var", "novalue"), "KEY=VALUE")
    assert_user_error(numerai("graphql", "missing.graphql"), "neither a GraphQL document")


# --- failures: one line, exit 2, the fix named ------------------------------------------


def test_missing_credentials(api, numerai):
    assert_user_error(
        numerai("models", env=NO_CREDENTIALS), "no Numerai credentials", "NUMERAI_SECRET_KEY"
    )
    half = {**NO_CREDENTIALS, "NUMERAI_PUBLIC_ID": PUBLIC_ID}
    assert_user_error(numerai("models", env=half), "NUMERAI_SECRET_KEY is not set")
    bad = {**NO_CREDENTIALS, "NUMERAI_MCP_AUTH": "no-dollar-sign"}
    assert_user_error(numerai("models", env=bad), "NUMERAI_MCP_AUTH must hold PUBLIC_ID$SECRET_KEY")
    assert api.calls == []


def test_token_file(api, numerai, tmp_path):
    token = tmp_path / "numerai.token"
    token.write_text(f"{PUBLIC_ID}${SECRET_KEY}\n")
    token.chmod(0o644)
    result = numerai("models", "--token-file", token, env=NO_CREDENTIALS)
    assert_user_error(result, "can be read by other users", f"chmod 600 {token}")
    token.chmod(0o600)
    document = _json(numerai("whoami", "--json", "--token-file", token, env=NO_CREDENTIALS))
    assert document["credentials_source"] == f"token file {token}"
    assert_user_error(numerai("whoami", "--token-file", tmp_path / "none"), "does not exist")


def test_rejected_token(api, numerai):
    api.script["account"] = [(401, '{"detail": "Invalid token"}')]
    assert_user_error(numerai("models"), "rejected the API key for account (HTTP 401)")
    api.script["account"] = [
        (200, '{"data": null, "errors": [{"message": "You must be authenticated"}]}')
    ]
    assert_user_error(numerai("models"), "rejected the API key", "numer.ai/account")
    wrong = {"NUMERAI_SECRET_KEY": "wrong-secret-key"}
    assert_user_error(numerai("models", env=wrong), "rejected the API key")


def test_missing_scope(api, numerai, predictions):
    api.script["submissionUploadAuth"] = [
        (200, '{"data": null, "errors": [{"message": "Insufficient permission: scope"}]}')
    ]
    assert_user_error(
        numerai("submit", predictions, "--model", "nx_model"), "`upload_submission` scope"
    )


def test_unreachable_api(api, numerai):
    result = numerai("models", env={"NUMERAI_API_URL": "https://down.test/graphql"})
    assert_user_error(result, "cannot reach Numerai's API (down.test)", "network connection")


def test_server_errors_are_retried_with_a_bound(api, numerai):
    api.script["account"] = [(502, "bad gateway")]
    assert _json(numerai("models", "--json"))["models"][0]["name"] == "nx_model"
    assert api.calls == ["account", "account"]
    api.calls.clear()
    api.script["account"] = [(503, "down")] * 3
    assert_user_error(numerai("models"), "HTTP 503 to account (3 times)", "try again")
    assert api.calls == ["account"] * 3
    api.calls.clear()
    api.script["addModel"] = [(500, "oops")]
    assert_user_error(numerai("create-model", "fresh"), "HTTP 500 to addModel (once")
    assert api.calls == ["modelNameAvailable", "addModel"]  # a mutation is sent once


def test_graphql_errors_and_empty_answers(api, numerai):
    api.script["addModel"] = [
        (200, '{"data": null, "errors": [{"message": "Model limit reached", "path": ["x"]}]}')
    ]
    assert_user_error(numerai("create-model", "fresh"), "refused addModel: Model limit reached")
    api.script["account"] = [(200, "<html>not json</html>")]
    assert_user_error(numerai("models"), "answered account with no data")
    api.script["account"] = [(400, '{"message": "bad"}')]
    assert_user_error(numerai("models"), "HTTP 400 to account")


def test_failed_presigned_put(api, numerai, pickle_file, predictions, passing_check):
    expired = "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"
    api.put_script = [(403, expired)]
    assert_user_error(
        numerai("submit", predictions, "--model", "nx_model"), "expired", "run the command again"
    )
    assert "createSubmission" not in api.calls
    api.put_script = [(500, "internal")]
    assert_user_error(
        numerai("upload", pickle_file, "--model", "nx_model"), "failed (HTTP 500: internal)"
    )
    assert "createComputePickleUpload" not in api.calls


def test_validation_fails_with_exit_3_and_the_log(api, numerai, pickle_file, passing_check):
    api.validation = ["pending", "failed"]
    result = numerai("upload", pickle_file, "--model", "nx_model", "--poll-interval", "0")
    assert result.exit_code == 3
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "ModuleNotFoundError: No module named 'mylib'" in lines[0]
    assert lines[-1].startswith("Error: Numerai's validation of model.pkl failed")
    assert "Traceback" not in result.stderr
    assert "assignPickleToModel" not in api.calls


def test_validation_timeout(api, numerai, pickle_file, passing_check):
    api.validation = ["pending"]
    result = numerai(
        "upload", pickle_file, "--model", "nx_model", "--timeout", "1", "--poll-interval", "0.2"
    )
    assert_user_error(result, "has not finished after 1 s", "nx numerai status nx_model")
    assert "assignPickleToModel" not in api.calls
