"""The HTTP side of Numerai's API: numerapi's GraphQL calls behind nx's own error handling.

numerapi builds the queries (its helpers and ``raw_query``), but its transport logs
and swallows HTTP errors (callers then see ``KeyError: 'data'``), has no timeout and
never checks a presigned PUT. :class:`NumeraiClient` keeps numerapi's helpers and
sends their requests itself: a timeout, bounded retries with backoff for queries on a
5xx or a dropped connection (mutations are sent once: a retried ``addModel`` could
create two models), 401/403 and GraphQL ``errors`` turned into one-line
:class:`~nx.engine.errors.AuthError` / :class:`~nx.engine.errors.ApiError`, and the
secret redacted from every message.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from nx.engine.errors import ApiError, AuthError, NetworkError
from nx.engine.numerai.credentials import MISSING_FIX, Credentials, redact
from nx.engine.progress import NO_PROGRESS, Progress

API_URL_ENV = "NUMERAI_API_URL"
TIMEOUT_S = 60.0
PUT_TIMEOUT_S = 600.0
RETRIES = 3  # attempts for a query; mutations get one
BACKOFF_S = 1.0  # waits 1 s, then 2 s between attempts
_AUTH_WORDS = re.compile(
    r"not authenticated|unauthenticated|authenticat|unauthori[sz]ed|invalid (api )?(token|key)|"
    r"log ?in required|must be logged in|bad token",
    re.IGNORECASE,
)
_SCOPE_WORDS = re.compile(
    r"scope|permission|not permitted|not allowed|forbidden|access denied", re.IGNORECASE
)
_FIELD = re.compile(r"\{\s*(\w+)")


def one_line(text: str, limit: int = 300) -> str:
    """``text`` redacted, on one line, at most ``limit`` characters."""
    text = " ".join(redact(str(text)).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def operation_name(query: str) -> str:
    """The first field a GraphQL document selects (``account``, ``addModel``...)."""
    match = _FIELD.search(query)
    return match.group(1) if match else "the query"


def default_api_url() -> str:
    from numerapi.base_api import API_TOURNAMENT_URL

    return os.environ.get(API_URL_ENV, "").strip() or API_TOURNAMENT_URL


def _numerapi_class():
    import numerapi

    class _NumerAPI(numerapi.NumerAPI):
        """numerapi's Classic API whose requests go through :class:`NumeraiClient`."""

        def __init__(self, client: NumeraiClient) -> None:
            self._nx_client = client
            creds = client.credentials
            super().__init__(
                creds.public_id if creds else None,
                creds.secret_key if creds else None,
                verbosity="WARNING",
                show_progress_bars=False,
            )

        def _login(self, public_id=None, secret_key=None) -> None:
            # no fallback to the environment or a .env file: nx resolved the credentials
            self.token = (public_id, secret_key) if public_id and secret_key else None

        def raw_query(self, query, variables=None, authorization=False, **_retry_options):
            return self._nx_client.post(query, variables, auth=authorization)

    return _NumerAPI


class _ProgressReader:
    """A file body for ``requests`` with a length (so it is sent with Content-Length, as
    presigned URLs require) that advances a progress bar as it is read."""

    def __init__(self, file, size: int, advance) -> None:
        self._file, self._size, self._advance = file, size, advance

    def __len__(self) -> int:
        return self._size

    def read(self, n: int = -1) -> bytes:
        chunk = self._file.read(n)
        if chunk:
            self._advance(len(chunk))
        return chunk

    def __iter__(self):
        while chunk := self.read(1 << 20):
            yield chunk


class NumeraiClient:
    """One connection to Numerai's API.

    ``credentials`` may be None for public queries (leaderboard, rounds, datasets); a
    query that needs them then fails with an :class:`AuthError` naming the fix.
    ``api_url`` defaults to ``$NUMERAI_API_URL``, else numerapi's endpoint.
    """

    def __init__(
        self,
        credentials: Credentials | None = None,
        *,
        api_url: str | None = None,
        timeout_s: float | None = None,
        retries: int | None = None,
        backoff_s: float | None = None,
    ) -> None:
        import requests

        self.credentials = credentials
        self.api_url = api_url or default_api_url()
        self.timeout_s = TIMEOUT_S if timeout_s is None else timeout_s
        self.retries = max(1, RETRIES if retries is None else retries)
        self.backoff_s = BACKOFF_S if backoff_s is None else backoff_s
        self._session = requests.Session()
        self._api = None

    @property
    def api(self):
        """numerapi's ``NumerAPI`` (Classic), sending through this client."""
        if self._api is None:
            self._api = _numerapi_class()(self)
        return self._api

    @property
    def host(self) -> str:
        return urlsplit(self.api_url).netloc or self.api_url

    def query(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        auth: bool = True,
        scope: str | None = None,
    ) -> dict[str, Any]:
        """Send a GraphQL document; return its ``data``. ``scope`` names the API-key scope
        the operation needs, for the message when the key lacks it."""
        return self.post(query, variables, auth=auth, scope=scope)["data"]

    def post(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        auth: bool = False,
        scope: str | None = None,
    ) -> dict[str, Any]:
        """Send a GraphQL document; return the whole answer (``{"data": ...}``), checked."""
        import requests

        name = operation_name(query)
        headers = {"Content-type": "application/json", "Accept": "application/json"}
        if auth:
            if self.credentials is None:
                raise AuthError(f"{name} needs Numerai credentials; {MISSING_FIX}")
            headers["Authorization"] = self.credentials.header
        body = {"query": query, "variables": variables or {}}
        attempts = 1 if query.lstrip().startswith("mutation") else self.retries
        failure: Exception | None = None
        for attempt in range(attempts):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                response = self._session.post(
                    self.api_url, json=body, headers=headers, timeout=self.timeout_s
                )
            except requests.Timeout:
                failure = NetworkError(
                    f"Numerai's API ({self.host}) did not answer {name} within "
                    f"{self.timeout_s:.0f} s; check your network connection and try again"
                )
                continue
            except requests.RequestException as error:
                failure = NetworkError(
                    f"cannot reach Numerai's API ({self.host}) for {name} "
                    f"({type(error).__name__}); check your network connection"
                    + (f" and {API_URL_ENV}" if os.environ.get(API_URL_ENV) else "")
                )
                continue
            if response.status_code >= 500:
                tries = f"{attempts} times" if attempts > 1 else "once (not retried: a mutation)"
                failure = ApiError(
                    f"Numerai's API answered HTTP {response.status_code} to {name} ({tries}); "
                    "Numerai is having trouble: try again in a few minutes"
                )
                continue
            return self._checked(response, name, scope)
        assert failure is not None
        raise failure

    def _checked(self, response, name: str, scope: str | None) -> dict[str, Any]:
        status = response.status_code
        try:
            answer = response.json()
        except ValueError:
            answer = None
        errors = answer.get("errors") if isinstance(answer, dict) else None
        rejected = AuthError(
            f"Numerai rejected the API key for {name} (HTTP {status}); check "
            f"{self._source()} or create a new key at numer.ai/account"
        )
        if errors:
            error = self._graphql_error(errors, name, scope)
            raise rejected if status in (401, 403) and type(error) is ApiError else error
        if status in (401, 403):
            raise rejected
        if status >= 400:
            raise ApiError(
                f"Numerai's API answered HTTP {status} to {name}; check the arguments "
                "(and your numerapi version)"
            )
        if not isinstance(answer, dict) or answer.get("data") is None:
            raise ApiError(
                f"Numerai's API ({self.host}) answered {name} with no data (HTTP {status}); "
                f"check {API_URL_ENV} if you set it, else try again later"
            )
        return answer

    def _source(self) -> str:
        if self.credentials is None or not self.credentials.source:
            return "your credentials"
        return f"the credentials from {self.credentials.source}"

    def _graphql_error(self, errors, name: str, scope: str | None) -> ApiError:
        if isinstance(errors, dict):
            errors = [errors]
        messages = [
            str(e.get("message") or e.get("detail") or e) if isinstance(e, dict) else str(e)
            for e in errors
        ]
        text = one_line("; ".join(messages))
        if _SCOPE_WORDS.search(text):
            need = f"the `{scope}` scope" if scope else "the scope this operation needs"
            return AuthError(
                f"the API key may not do {name} ({text}); create a key with {need} "
                "at numer.ai/account"
            )
        if _AUTH_WORDS.search(text):
            return AuthError(
                f"Numerai rejected the API key for {name} ({text}); check {self._source()} "
                "or create a new key at numer.ai/account"
            )
        return ApiError(f"Numerai's API refused {name}: {text}")

    def put_file(
        self, url: str, path: Path, *, label: str, progress: Progress = NO_PROGRESS
    ) -> None:
        """PUT the bytes of ``path`` to a presigned ``url`` and check the answer.

        No Authorization header and no content type: the URL carries its own signature.
        """
        import requests

        path = Path(path)
        size = path.stat().st_size
        target = urlsplit(url).netloc or "the upload URL"
        try:
            with path.open("rb") as file, progress.task(f"Uploading {label}", total=size) as bar:
                response = self._session.put(
                    url,
                    data=_ProgressReader(file, size, bar.advance),
                    timeout=(self.timeout_s, PUT_TIMEOUT_S),
                )
        except requests.RequestException as error:
            raise NetworkError(
                f"uploading {label} to {target} failed ({type(error).__name__}); check your "
                "network connection and run the command again"
            ) from None
        if response.status_code in (200, 201, 204):
            return
        detail = one_line(response.text, 160)
        if response.status_code in (400, 403) and re.search(r"expired", response.text, re.I):
            raise ApiError(
                f"the upload URL for {label} expired before the file was sent "
                f"(HTTP {response.status_code}); run the command again for a fresh URL"
            )
        raise ApiError(
            f"uploading {label} to {target} failed (HTTP {response.status_code}"
            + (f": {detail}" if detail else "")
            + "); run the command again"
        )
