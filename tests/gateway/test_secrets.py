"""Secrets never reach a log, a response or an error message.

- the logging filter masks known secrets and key-like strings in messages, arguments,
  tracebacks and stacks, on the one handler every logger of the gateway process
  (uvicorn's included) writes through;
- responses and error messages carry a key's name and last four characters at most;
- the session's own check (``tests/conftest.py``, ``tests/support/secrets.py``) finds a
  planted secret, and fails the session naming the file.
"""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
import uvicorn
from fastapi.testclient import TestClient

from gateway.logmask import MaskSecrets, configure_logging, mask_secrets
from tests.support import secrets
from tests.support.procs import REPO

SECRET_A = "sk-proj-secret-test-aaaaaaaaaaaaaaaa"
SECRET_B = "xi-plain-looking-key-bbbbbbbb"  # no known pattern: masked because it is known
KEYS = f"""[[openai]]
name = "openai-main"
api_key = "{SECRET_A}"

[[elevenlabs]]
name = "eleven-main"
api_key = "{SECRET_B}"
"""


def auth(tokens: dict[str, str], who: str = "admin") -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens[who]}"}


# -- the logging filter -------------------------------------------------------------------


def test_filter_masks_known_secrets_and_key_shapes_everywhere_in_a_record():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.addFilter(MaskSecrets([SECRET_B]))
    logger = logging.getLogger("test.secrets.filter")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("key %s and header Bearer %s", SECRET_B, "abcdefghijklmnopqrstuvwxyz")
        logger.warning("pattern %s", SECRET_A)
        try:
            raise RuntimeError(f"upstream refused {SECRET_B}")
        except RuntimeError:
            logger.exception("call failed")
        logger.warning("where", stack_info=True, extra={})
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert SECRET_A not in text and SECRET_B not in text
    assert "abcdefghijklmnopqrstuvwxyz" not in text
    assert "upstream refused [masked]" in text and "Traceback" in text


@pytest.fixture
def root_logging() -> Iterator[None]:
    """configure_logging() replaces the root handlers; pytest's are put back afterwards."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    names = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")
    saved_uvicorn = {n: (logging.getLogger(n).handlers[:], logging.getLogger(n).propagate,
                         logging.getLogger(n).level) for n in names}
    try:
        yield
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        for name, (handlers, propagate, level) in saved_uvicorn.items():
            logger = logging.getLogger(name)
            logger.handlers[:], logger.propagate = handlers, propagate
            logger.setLevel(level)


def test_every_logger_of_the_served_gateway_goes_through_the_mask(root_logging, capsys):
    configure_logging("info")
    # What `classroom gateway serve` hands uvicorn: it must not install its own handlers.
    uvicorn.Config(app=lambda *a: None, log_config=None, log_level="info",
                   access_log=False).configure_logging()
    mask_secrets(SECRET_B)
    handlers = logging.getLogger().handlers
    assert len(handlers) == 1
    assert any(isinstance(f, MaskSecrets) for f in handlers[0].filters)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.asgi", "gateway", "gateway.services.calls",
                 "httpx", "sqlalchemy"):
        logger = logging.getLogger(name)
        assert not logger.handlers, f"{name} has its own handler, which does not mask"
    for name in ("uvicorn.error", "gateway.services.calls"):
        logging.getLogger(name).error("leaking %s", SECRET_B)
    try:
        raise ValueError(SECRET_A)
    except ValueError:
        logging.getLogger("uvicorn.error").exception("Exception in ASGI application")
    err = capsys.readouterr().err
    assert "leaking [masked]" in err and "Exception in ASGI application" in err
    assert SECRET_A not in err and SECRET_B not in err


def test_cli_serves_without_uvicorns_logging_config():
    source = (REPO / "gateway" / "cli.py").read_text()
    assert "log_config=None" in source and "configure_logging(" in source


# -- responses and errors -----------------------------------------------------------------------


@pytest.fixture
def client(gateway_with_keys) -> TestClient:
    return gateway_with_keys(KEYS)


def test_no_response_carries_a_key(client, tokens):
    added = client.post("/api/keys", headers=auth(tokens), json={
        "provider": "openai", "name": "openai-extra", "api_key": SECRET_A + "-extra"})
    assert added.status_code == 201 and added.json()["last4"] == "xtra"
    bad = client.post("/api/keys", headers=auth(tokens), json={
        "provider": "openai", "name": "openai-bad", "api_key": SECRET_A, "rpm_limit": 0})
    assert bad.status_code == 422
    texts = [added.text, bad.text]
    for path in ("/api/keys", "/api/pool", "/api/audit", "/api/me", "/health", "/metrics",
                 "/openapi.json", "/v1/models", "/api/admin/tables", "/api/usage"):
        response = client.get(path, headers=auth(tokens))
        assert response.status_code == 200, (path, response.text)
        texts.append(response.text)
    for text in texts:
        assert SECRET_A not in text and SECRET_B not in text  # SECRET_A prefixes the third


def test_provider_errors_do_not_repeat_the_key(client, tokens):
    # No ElevenLabs server answers on the key's default address in a test; whatever the
    # error, it must not quote the key.
    response = client.post("/v1/audio/speech", headers=auth(tokens, "student_a"), json={
        "model": "eleven_multilingual_v2", "input": "hello", "voice": "Rachel"})
    assert response.status_code >= 400
    assert SECRET_B not in response.text
    rows = client.get("/api/history", headers=auth(tokens, "student_a")).json()["items"]
    assert all(SECRET_B not in (row["error_message"] or "") for row in rows)


# -- the session's check ---------------------------------------------------------------------


def test_scanner_finds_a_planted_secret(tmp_path):
    log = tmp_path / "gateway.log"
    log.write_text("[I 2026] starting\n[E 2026] refused key sk-planted-0123456789abcd\n")
    clean = tmp_path / "clean.log"
    clean.write_text("[I 2026] nothing to see\n")
    found = secrets.scan_files([log, clean], ["sk-planted-0123456789abcd", "unused-secret-1"])
    assert [(f.where, f.secret) for f in found] == [(str(log), "sk-planted-0123456789abcd")]
    assert "sk-planted-0123456789abcd" not in str(found[0])  # the report hides it too
    assert secrets.scan_text("captured", "x sk-planted-0123456789abcd x",
                             ["sk-planted-0123456789abcd"])


def test_the_suite_has_secrets_and_logs_to_check(start_gateway):
    """The check is not vacuous: this session remembers secrets and watches logs."""
    server = start_gateway()
    assert server.log_path in secrets.REGISTRY.files
    assert any(len(s) >= 40 for s in secrets.REGISTRY.secrets)  # at least a master key


@pytest.mark.parametrize("planted,fails", [("yes", True), ("missing", True), ("no", False)])
def test_a_planted_secret_fails_the_session_naming_the_file(planted, fails, tmp_path):
    env = {**os.environ, "CLASSROOM_PLANT_SECRET": planted}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/support/plant_secret.py", "-q",
         "-p", "no:cacheprovider", f"--basetemp={tmp_path / 'inner'}"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    out = result.stdout + result.stderr
    assert "1 passed" in out, out
    if planted == "yes":
        assert result.returncode != 0, out
        assert "FOUND" in out and "planted.log" in out and "contains the secret" in out
        assert "planted-secret-7f3c9a1e5b" not in out
    elif fails:
        assert result.returncode != 0, out
        assert "MISSING log file" in out and "planted.log" in out
    else:
        assert result.returncode == 0, out
        assert "secrets: none of" in out
