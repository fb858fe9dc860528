"""Download Numerai's raw files for a data version through numerapi.

Each file is resolved to a (presigned) URL with numerapi's GraphQL ``dataset`` query;
the file itself is streamed here rather than by ``NumerAPI.download_dataset``,
because that one draws its own tqdm bar, judges a finished download by its size
alone and, like every numerapi call, logs and swallows HTTP errors. Each file is
written under a temporary name and renamed once complete, so a file that exists
is complete and is skipped (unless ``overwrite``).
"""

from __future__ import annotations

import logging
from pathlib import Path

from nx.engine.data.synthetic import RAW_FILES
from nx.engine.errors import DataError, NetworkError
from nx.engine.paths import atomic_output
from nx.engine.progress import NO_PROGRESS, Progress

DATASET_QUERY = """
query ($filename: String! $round: Int $tournament: Int) {
    dataset(filename: $filename round: $round tournament: $tournament)
}
"""
CLASSIC_TOURNAMENT = 8  # NumerAPI().tournament_id
CHUNK_BYTES = 1 << 20
TIMEOUT_S = 60
_UNREACHABLE = "check your network connection, or run `nx build-data --synthetic` to build a synthetic dataset instead"


def dataset_url(filename: str, *, retries: int = 2) -> str:
    """The download URL Numerai's API gives for ``<version>/<file>``.

    Sent with numerapi's own request helper to ``numerapi.base_api.API_TOURNAMENT_URL``
    (the query ``NumerAPI.download_dataset`` sends), but with a timeout: numerapi's
    ``raw_query`` has none and waits forever where a firewall drops packets.
    """
    from numerapi import utils
    from numerapi.base_api import API_TOURNAMENT_URL

    # numerapi logs failures at ERROR level; nx reports them itself, in one line.
    logging.getLogger("numerapi").setLevel(logging.CRITICAL + 1)
    body = {
        "query": DATASET_QUERY,
        "variables": {"filename": filename, "round": None, "tournament": CLASSIC_TOURNAMENT},
    }
    headers = {"Content-type": "application/json", "Accept": "application/json"}
    answer = utils.post_with_err_handling(
        API_TOURNAMENT_URL, body, headers, timeout=TIMEOUT_S, retries=retries, delay=1
    )
    if answer and answer.get("errors"):
        messages = "; ".join(str(e.get("message", e)) for e in answer["errors"])
        raise NetworkError(
            f"Numerai's API refused {filename}: {' '.join(messages.split())}; "
            "check --data-version, or run `nx build-data --synthetic`"
        )
    if not answer or "data" not in answer:
        raise NetworkError(f"could not reach Numerai's API to download {filename}; {_UNREACHABLE}")
    url = (answer.get("data") or {}).get("dataset")
    if not url:
        raise DataError(
            f"Numerai offers no file {filename}; check --data-version (e.g. v5.2) "
            "or use `nx build-data --synthetic`"
        )
    return url


def download_file(url: str, dest: Path, *, label: str, progress: Progress = NO_PROGRESS) -> None:
    """Stream ``url`` to ``dest`` through a temporary file, with a progress bar."""
    import requests

    try:
        with requests.get(url, stream=True, timeout=TIMEOUT_S) as response:
            response.raise_for_status()
            expected = int(response.headers.get("content-length") or 0) or None
            written = 0
            with atomic_output(dest) as tmp, tmp.open("wb") as sink:
                with progress.task(f"Downloading {label}", total=expected) as task:
                    for chunk in response.iter_content(CHUNK_BYTES):
                        sink.write(chunk)
                        written += len(chunk)
                        task.advance(len(chunk))
                if expected is not None and written != expected:
                    raise NetworkError(
                        f"download of {label} stopped after {written} of {expected} bytes; "
                        "run the command again to retry"
                    )
    except requests.RequestException as error:
        reason = type(error).__name__
        status = getattr(getattr(error, "response", None), "status_code", None)
        if status is not None:
            reason = f"HTTP {status}"
        raise NetworkError(f"downloading {label} failed ({reason}); {_UNREACHABLE}") from None


def download_raw(
    vdir: Path,
    data_version: str,
    *,
    files: tuple[str, ...] = RAW_FILES,
    overwrite: bool = False,
    progress: Progress = NO_PROGRESS,
) -> list[Path]:
    """Download the raw files of ``data_version`` that ``vdir`` lacks; return those fetched."""
    todo = [name for name in files if overwrite or not (vdir / name).is_file()]
    if not todo:
        return []
    fetched = []
    for name in todo:
        remote = f"{data_version}/{name}"
        url = dataset_url(remote)
        download_file(url, vdir / name, label=remote, progress=progress)
        fetched.append(vdir / name)
    return fetched
