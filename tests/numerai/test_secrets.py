"""The API secret never appears in anything nx writes: stdout, stderr, ``--debug``
tracebacks, log records, JSON, MCP tool errors."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from nx.engine.numerai.credentials import Credentials, find_credentials, redact

from ..conftest import nx_run
from .conftest import fake_env
from .fake_api import PUBLIC_ID, SECRET_KEY

WRONG_SECRET = "wrong-SECRET-that-must-not-leak-42"

# Runs nx's main with every logger at DEBUG on stderr, then logs the secret on purpose:
# the record factory installed when the credentials were read must redact it.
_WITH_LOGS = """
import logging, os, sys
logging.basicConfig(level=logging.DEBUG, stream=sys.stderr, force=True)
from nx.cli.app import main
sys.argv = ["nx", *sys.argv[1:]]
try:
    main()
except SystemExit as done:
    code = done.code
logging.getLogger("numerapi").error("token %s", os.environ["NUMERAI_SECRET_KEY"])
logging.getLogger("urllib3").debug(f"header Token x${os.environ['NUMERAI_SECRET_KEY']}")
sys.exit(code)
"""


@pytest.mark.parametrize(
    ("secret", "args"),
    [
        (SECRET_KEY, ["numerai", "whoami", "--json"]),
        (WRONG_SECRET, ["numerai", "models"]),  # rejected; the server echoes the token
        (SECRET_KEY, ["numerai", "create-model", "nx_model"]),  # name taken
        (SECRET_KEY, ["numerai", "graphql", "query { nosuchfield }"]),
    ],
)
def test_no_output_holds_the_secret(fake_numerai, secret, args):
    env = fake_env(fake_numerai, NUMERAI_SECRET_KEY=secret, NX_DEBUG="1")
    for command in (
        lambda: nx_run("--debug", *args, env=env),
        lambda: subprocess.run(
            [sys.executable, "-c", _WITH_LOGS, "--debug", *args],
            capture_output=True,
            text=True,
            env={**os.environ, **env},
        ),
    ):
        result = command()
        output = result.stdout + result.stderr
        assert secret not in output, output
        assert PUBLIC_ID + "$" + secret not in output
    assert "token [REDACTED]" in result.stderr  # the log record was rewritten
    if secret == WRONG_SECRET:
        assert result.returncode == 2
        assert "Traceback" in result.stderr  # --debug shows it, redacted
        assert "[REDACTED]" in result.stderr


def test_rejected_token_message_is_redacted(fake_numerai):
    result = nx_run(
        "numerai", "models", env=fake_env(fake_numerai, NUMERAI_SECRET_KEY=WRONG_SECRET)
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "rejected the API key" in lines[0]
    assert "[REDACTED]" in lines[0] and WRONG_SECRET not in lines[0]


def test_credentials_never_show_the_secret(tmp_path):
    credentials = find_credentials(env={"NUMERAI_MCP_AUTH": f"{PUBLIC_ID}${SECRET_KEY}"})
    assert credentials == Credentials(PUBLIC_ID, SECRET_KEY, source="NUMERAI_MCP_AUTH")
    assert SECRET_KEY not in repr(credentials) and SECRET_KEY not in str(credentials)
    assert (
        redact(f"header Token {PUBLIC_ID}${SECRET_KEY}.") == f"header Token {PUBLIC_ID}$[REDACTED]."
    )
    two_lines = tmp_path / "token"
    two_lines.write_text(f"{PUBLIC_ID}\n{SECRET_KEY}\n")
    two_lines.chmod(0o600)
    assert find_credentials(two_lines).secret_key == SECRET_KEY
    assert find_credentials(env={}) is None
