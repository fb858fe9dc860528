"""Download Numerai's raw files for a data version through numerapi.

numerapi resolves each file to a (presigned) URL with its GraphQL ``dataset`` query;
the file itself is streamed here rather than by ``NumerAPI.download_dataset``,
because that one draws its own tqdm bar, judges a finished download by its size
alone and, like every numerapi call, logs and swallows HTTP errors. Each file is
written under a temporary name and renamed once complete, so a file that exists
is complete and is skipped (unless ``overwrite``).
"""

from __future__ import annotations

import logging
from pathlib import Path

from nx.engine.errors import DataError, NetworkError
from nx.engine.paths import atomic_output
from nx.engine.progress import NO_PROGRESS, Progress
from nx.engine.synthetic import RAW_FILES

DATASET_QUERY = """
query ($filename: String! $round: Int $tournament: Int) {
    dataset(filename: $filename round: $round tournament: $tournament)
}
"""
CHUNK_BYTES = 1 << 20
TIMEOUT_S = 60
_UNREACHABLE = "check your network connection, or run `nx build-data --synthetic` to build a synthetic dataset instead"


def _api():
    import numerapi

    # numerapi logs failures at ERROR on the root handler; nx reports them itself.
    logging.getLogger("numerapi").setLevel(logging.CRITICAL + 1)
    return numerapi.NumerAPI(verbosity="ERROR", show_progress_bars=False)


def dataset_url(api, filename: str, *, retries: int = 2) -> str:
    """The download URL Numerai's API gives for ``<version>/<file>``."""
    variables = {"filename": filename, "round": None, "tournament": api.tournament_id}
    try:
        answer = api.raw_query(DATASET_QUERY, variables, retries=retries, delay=1)
    except ValueError as error:  # numerapi raises ValueError for GraphQL errors
        raise NetworkError(
            f"Numerai's API refused {filename}: {' '.join(str(error).split())}; "
            "check --data-version, or run `nx build-data --synthetic`"
        ) from None
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
    api=None,
) -> list[Path]:
    """Download the raw files of ``data_version`` that ``vdir`` lacks; return those fetched."""
    todo = [name for name in files if overwrite or not (vdir / name).is_file()]
    if not todo:
        return []
    api = api or _api()
    fetched = []
    for name in todo:
        remote = f"{data_version}/{name}"
        url = dataset_url(api, remote)
        download_file(url, vdir / name, label=remote, progress=progress)
        fetched.append(vdir / name)
    return fetched
