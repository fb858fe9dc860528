"""The numerapi download path, with Numerai's GraphQL API and file host mocked by responses."""

from __future__ import annotations

import json

import pytest
import requests
import responses
from numerapi.base_api import API_TOURNAMENT_URL

from nx.engine.data.synthetic import RAW_FILES
from tests.conftest import assert_user_error

from .conftest import listing, without_synthetic_marker

FILE_HOST = "https://numerai-datasets.test/files"


@pytest.fixture
def served(tiny_data_dir):
    """The tiny raw files as Numerai would serve them: {"v5.2/<file>": bytes}."""
    return {f"v5.2/{n}": without_synthetic_marker(tiny_data_dir / "v5.2" / n) for n in RAW_FILES}


def _mock_numerai(mock, served, *, missing=()):
    """GraphQL ``dataset`` query -> file URL; file URL -> the file's bytes."""
    asked = []

    def dataset(request):
        variables = json.loads(request.body)["variables"]
        asked.append(variables["filename"])
        url = None if variables["filename"] in missing else f"{FILE_HOST}/{variables['filename']}"
        return 200, {}, json.dumps({"data": {"dataset": url}})

    mock.add_callback(responses.POST, API_TOURNAMENT_URL, callback=dataset)
    for name, body in served.items():
        mock.add(responses.GET, f"{FILE_HOST}/{name}", body=body)
    return asked


def test_downloads_every_raw_file_then_builds(nx, tmp_path, served):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        asked = _mock_numerai(mock, served)
        result = nx("build-data", "--data-dir", tmp_path, "--json")
    assert result.exit_code == 0, result.stderr
    assert sorted(asked) == sorted(served)
    for name, body in served.items():
        assert (tmp_path / name).read_bytes() == body
    document = json.loads(result.stdout)
    assert document["raw_source"] == "downloaded"
    assert {v["status"] for v in document["outputs"].values()} == {"built"}


def test_complete_files_are_skipped(nx, tmp_path, served):
    vdir = tmp_path / "v5.2"
    vdir.mkdir()
    for name in ("train.parquet", "validation.parquet", "features.json"):
        (vdir / name).write_bytes(served[f"v5.2/{name}"])
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        asked = _mock_numerai(mock, served)
        assert nx("build-data", "--data-dir", tmp_path, "--quiet").exit_code == 0
    assert sorted(asked) == sorted(
        f"v5.2/{n}"
        for n in RAW_FILES
        if n not in ("train.parquet", "validation.parquet", "features.json")
    )
    # everything present: no request at all
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        asked = _mock_numerai(mock, served)
        assert nx("build-data", "--data-dir", tmp_path, "--quiet").exit_code == 0
        assert asked == [] and len(mock.calls) == 0


def test_rebuild_downloads_again(nx, tmp_path, served):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        _mock_numerai(mock, served)
        assert nx("build-data", "--data-dir", tmp_path, "--quiet").exit_code == 0
        asked_again = _mock_numerai(mock, served)
        assert nx("build-data", "--data-dir", tmp_path, "--quiet", "--rebuild").exit_code == 0
    assert len(asked_again) == len(RAW_FILES)


def test_unreachable_api_suggests_synthetic(nx, tmp_path):
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, API_TOURNAMENT_URL, body=requests.ConnectionError("no route"))
        result = nx("build-data", "--data-dir", tmp_path, "--quiet")
    assert_user_error(result, "could not reach Numerai's API", "--synthetic")
    assert listing(tmp_path / "v5.2") == set()


def test_unreachable_file_host_leaves_no_partial_file(nx, tmp_path, served):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        _mock_numerai(mock, {})
        mock.add(
            responses.GET, f"{FILE_HOST}/v5.2/features.json", body=served["v5.2/features.json"]
        )
        mock.add(responses.GET, f"{FILE_HOST}/v5.2/train.parquet", body=requests.ConnectionError())
        result = nx("build-data", "--data-dir", tmp_path, "--quiet")
    assert_user_error(
        result, "downloading v5.2/train.parquet failed (ConnectionError)", "--synthetic"
    )
    assert listing(tmp_path / "v5.2") == {"features.json"}


def test_http_error_from_file_host(nx, tmp_path):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        _mock_numerai(mock, {})
        mock.add(responses.GET, f"{FILE_HOST}/v5.2/features.json", status=403)
        result = nx("build-data", "--data-dir", tmp_path, "--quiet")
    assert_user_error(result, "downloading v5.2/features.json failed (HTTP 403)")
    assert listing(tmp_path / "v5.2") == set()


def test_truncated_download_is_not_kept(nx, tmp_path, served):
    body = served["v5.2/features.json"]
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        _mock_numerai(mock, {})
        mock.add(
            responses.GET,
            f"{FILE_HOST}/v5.2/features.json",
            body=body[:100],
            headers={"Content-Length": str(len(body))},
            auto_calculate_content_length=False,
        )
        result = nx("build-data", "--data-dir", tmp_path, "--quiet")
    assert_user_error(result, "v5.2/features.json")
    assert listing(tmp_path / "v5.2") == set()


def test_graphql_error_is_reported(nx, tmp_path):
    with responses.RequestsMock() as mock:
        mock.add(
            responses.POST,
            API_TOURNAMENT_URL,
            json={"errors": [{"message": "dataset not found"}]},
        )
        result = nx("build-data", "--data-dir", tmp_path, "--quiet")
    assert_user_error(result, "Numerai's API refused v5.2/features.json", "dataset not found")


def test_unknown_file_is_a_data_error(nx, tmp_path, served):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        _mock_numerai(mock, served, missing=("v5.2/features.json",))
        result = nx("build-data", "--data-dir", tmp_path, "--quiet")
    assert_user_error(result, "Numerai offers no file v5.2/features.json", "--data-version")


def test_api_server_error_suggests_synthetic(nx, tmp_path):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.POST, API_TOURNAMENT_URL, status=503)
        result = nx("build-data", "--data-dir", tmp_path, "--quiet")
        assert len(mock.calls) == 2  # numerapi retried the 5xx once
    assert_user_error(result, "could not reach Numerai's API", "--synthetic")
    assert listing(tmp_path / "v5.2") == set()


def test_query_names_the_file_and_the_classic_tournament(tmp_path):
    from nx.engine.data.download import dataset_url

    with responses.RequestsMock() as mock:
        mock.add(responses.POST, API_TOURNAMENT_URL, json={"data": {"dataset": "https://x.test/f"}})
        assert dataset_url("v5.2/train.parquet") == "https://x.test/f"
        sent = json.loads(mock.calls[0].request.body)
    assert sent["variables"] == {"filename": "v5.2/train.parquet", "round": None, "tournament": 8}
    assert "dataset(filename: $filename" in sent["query"]
