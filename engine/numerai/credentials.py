"""Numerai API credentials: where they come from, and keeping the secret out of every output.

Sources, first match wins: ``--token-file`` (``PUBLIC_ID$SECRET_KEY`` on one line, or
the two parts on two lines; the file must be private, mode 600), ``NUMERAI_PUBLIC_ID`` +
``NUMERAI_SECRET_KEY``, ``NUMERAI_MCP_AUTH`` (``PUBLIC_ID$SECRET_KEY``, as Numerai's own
MCP server reads it).

Every secret loaded is registered for redaction: :func:`redact` replaces it in any
text, and a log-record factory installed on first load rewrites log messages, so the
secret never reaches a message, a log line or a ``--debug`` traceback printed by nx.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from nx.engine.errors import AuthError

PUBLIC_ID_ENV = "NUMERAI_PUBLIC_ID"
SECRET_KEY_ENV = "NUMERAI_SECRET_KEY"
MCP_AUTH_ENV = "NUMERAI_MCP_AUTH"
REDACTED = "[REDACTED]"
_MIN_SECRET_CHARS = 4  # never "redact" a one-letter secret out of every word

_secrets: set[str] = set()
_lock = threading.Lock()
_factory_installed = False

MISSING_FIX = (
    f"set {PUBLIC_ID_ENV} and {SECRET_KEY_ENV} (or {MCP_AUTH_ENV}=PUBLIC_ID$SECRET_KEY), "
    "or pass --token-file; create an API key at numer.ai/account"
)


@dataclass(frozen=True)
class Credentials:
    """A Numerai API key. ``repr`` never shows the secret."""

    public_id: str
    secret_key: str = field(repr=False)
    source: str = ""

    @property
    def header(self) -> str:
        """The ``Authorization`` header value Numerai expects."""
        return f"Token {self.public_id}${self.secret_key}"


def redact(text: str) -> str:
    """``text`` with every registered secret replaced by ``[REDACTED]``."""
    if not _secrets or not isinstance(text, str):
        return text
    for secret in sorted(_secrets, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def register_secret(secret: str) -> None:
    """Redact ``secret`` from every later message and log record."""
    if len(secret) < _MIN_SECRET_CHARS:
        return
    with _lock:
        _secrets.add(secret)
    _install_log_redaction()


def _install_log_redaction() -> None:
    """Rewrite every log record's message through :func:`redact` (all loggers: numerapi,
    urllib3, the MCP SDK, nx's own)."""
    global _factory_installed
    with _lock:
        if _factory_installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args, **kwargs) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            if _secrets:
                try:
                    message = record.getMessage()
                except Exception:  # a malformed record stays as logging made it
                    return record
                record.msg, record.args = redact(message), None
            return record

        logging.setLogRecordFactory(factory)
        _factory_installed = True


def _split_token(token: str, where: str) -> tuple[str, str]:
    public_id, sep, secret_key = token.strip().partition("$")
    if not sep or not public_id.strip() or not secret_key.strip():
        raise AuthError(
            f"{where} must hold PUBLIC_ID$SECRET_KEY (two parts joined by '$'); {MISSING_FIX}"
        )
    return public_id.strip(), secret_key.strip()


def read_token_file(path: Path | str) -> Credentials:
    """Credentials from a private file: ``PUBLIC_ID$SECRET_KEY``, or the two on two lines."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise AuthError(f"token file {path} does not exist; {MISSING_FIX}") from None
    except OSError as error:
        raise AuthError(
            f"cannot read token file {path} ({error.strerror}); check its permissions"
        ) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise AuthError(
            f"token file {path} can be read by other users (mode {stat.S_IMODE(mode):o}); "
            f"run `chmod 600 {path}`"
        )
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) == 1:
        public_id, secret_key = _split_token(lines[0], f"token file {path}")
    elif len(lines) == 2 and "$" not in lines[0]:
        public_id, secret_key = lines
    else:
        raise AuthError(
            f"token file {path} must hold PUBLIC_ID$SECRET_KEY on one line (or the public id "
            "and the secret key on two lines)"
        )
    register_secret(secret_key)
    return Credentials(public_id, secret_key, source=f"token file {path}")


def find_credentials(
    token_file: Path | str | None = None, env: Mapping[str, str] | None = None
) -> Credentials | None:
    """The credentials the sources give, or None when none is set."""
    env = os.environ if env is None else env
    if token_file is not None:
        return read_token_file(token_file)
    public_id, secret_key = env.get(PUBLIC_ID_ENV, ""), env.get(SECRET_KEY_ENV, "")
    if secret_key:
        register_secret(secret_key.strip())
    if public_id.strip() and secret_key.strip():
        return Credentials(public_id.strip(), secret_key.strip(), source="environment")
    if public_id.strip() or secret_key.strip():
        missing = SECRET_KEY_ENV if public_id.strip() else PUBLIC_ID_ENV
        raise AuthError(f"{missing} is not set while its partner is; set both, or neither")
    mcp_auth = env.get(MCP_AUTH_ENV, "")
    if mcp_auth.strip():
        if "$" in mcp_auth:
            register_secret(mcp_auth.partition("$")[2].strip())
        public_id, secret_key = _split_token(mcp_auth, MCP_AUTH_ENV)
        return Credentials(public_id, secret_key, source=MCP_AUTH_ENV)
    return None


def load_credentials(
    token_file: Path | str | None = None, env: Mapping[str, str] | None = None
) -> Credentials:
    """Like :func:`find_credentials`, but missing credentials are an :class:`AuthError`."""
    credentials = find_credentials(token_file, env)
    if credentials is None:
        raise AuthError(f"no Numerai credentials found; {MISSING_FIX}")
    return credentials
