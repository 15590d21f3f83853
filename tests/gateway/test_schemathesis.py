"""schemathesis over the gateway's own OpenAPI document: every operation, as an admin, as a
student and with no token, with valid and invalid data. No answer may be a 5xx, and every
error must come in the shape its face documents (OpenAI's on ``/v1`` and ``/api``,
Anthropic's on ``/anthropic``, Google's on ``/google``).

Examples are bounded per operation (no shrinking, no example database) so the whole run
stays within a couple of minutes on two cores; a slow operation is bounded, never skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.python import asgi

from gateway.config.settings import Settings
from gateway.edge.app import create_app, create_asgi
from tests.gateway.providers.conftest import Fakes, keys_toml
from tests.gateway.providers.conftest import fake_vendors as fake_vendors  # the fixture
from tests.support.procs import REPO

ROLES = ("admin", "student_a", None)
EXAMPLES = {"admin": 15, "student_a": 15, None: 3}  # per generation mode
CHAT = ["mock/echo", "mock/lorem", "gpt-4o-mini", "claude-haiku-4-5", "gemini-2.5-flash"]
IMAGE = ["mock/image", "gpt-image-1", "dall-e-3", "gemini-2.5-flash-image"]
# Random model names only ever reach "no such model": half the examples name a real one, so
# that bodies go all the way to a provider (the fake vendors, or the mock).
MODELS = {
    "/v1/chat/completions": CHAT,
    "/anthropic/v1/messages": CHAT,
    "/v1/embeddings": ["mock/embed", "text-embedding-3-small", "gemini-embedding-001"],
    "/v1/images/generations": IMAGE,
    "/v1/images/edits": IMAGE,
    "/v1/audio/speech": ["mock/speech", "tts-1", "eleven_multilingual_v2"],
    "/api/jobs": ["mock/video", "mock/midjourney", "kling-v2-1", "midjourney"],
    "/google/{version}/models/{target}": [
        "gemini-2.5-flash:generateContent", "mock/echo:streamGenerateContent",
        "gemini-2.5-flash-image:generateContent", "mock/image:generateContent",
        "gemini-embedding-001:embedContent", "mock/embed:batchEmbedContents",
    ],
}
SLOW = {"POST /api/loadtests": 3, "POST /api/loadtests/replay": 3}


def _operations() -> list[str]:
    """Every operation of the document, read from the app without starting it."""
    doc = create_app(Settings(data_dir=Path("/nonexistent"), hub_api_url=None)).openapi()
    return [f"{method.upper()} {path}" for path, item in doc["paths"].items() for method in item]


OPERATIONS = _operations()


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, tokens_file: Path,
        fake_vendors: Fakes) -> Iterator[Any]:
    data = tmp_path_factory.mktemp("schemathesis")
    keys = data / "keys.toml"
    keys.write_text(keys_toml(fake_vendors))  # every provider has a key: no 503 for want of one
    app = create_asgi(Settings(
        data_dir=data / "data", auth_tokens_file=tokens_file, tenants_dir=REPO / "tenants",
        keys_file=keys, retry_base_seconds=0.01, chat_timeout_seconds=10,
        hub_api_url=None, mock_ttft_ms=0, mock_tokens_per_second=0, mock_media_ms=0,
        mock_job_seconds=0, job_poll_seconds=0.05, queue_max_wait_s=5,
    ))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    try:
        yield schema
    finally:
        asgi.shutdown_lifespans()  # the app's lifespan, started by schemathesis's client


def face(path: str) -> str:
    for name in ("anthropic", "google"):
        if path.startswith(f"/{name}/"):
            return name
    return "openai"


def shape_problem(path: str, status: int, body: Any) -> str | None:
    """What is wrong with an error body, or None when it has its face's documented shape."""
    if not isinstance(body, dict) or not isinstance(body.get("error"), dict):
        return "no 'error' object"
    error = body["error"]
    if face(path) == "anthropic":
        wanted = {"type": str, "message": str}
        if body.get("type") != "error":
            return "Anthropic errors have type 'error'"
    elif face(path) == "google":
        wanted = {"code": int, "message": str, "status": str}
        if error.get("code") != status:
            return f"google error code {error.get('code')} is not the HTTP status {status}"
    else:
        wanted = {"message": str, "type": str, "code": str}
    for name, kind in wanted.items():
        if not isinstance(error.get(name), kind) or error.get(name) == "":
            return f"error.{name} missing or not a {kind.__name__}"
    return None


def name_model(case: Any, model: str) -> None:
    if case.path.startswith("/google/"):
        case.path_parameters = {"version": "v1beta", "target": model}
    elif isinstance(case.body, dict):
        case.body["model"] = model


def check(case: Any, response: Any) -> None:
    request = f"{case.method} {response.request.url}"
    assert response.status_code < 500, (
        f"{request} answered {response.status_code}: {response.text[:500]}\n"
        f"{case.as_curl_command()}"
    )
    if response.status_code >= 400:
        try:
            body = response.json()
        except ValueError:
            body = None
        problem = shape_problem(case.path, response.status_code, body)
        assert problem is None, (
            f"{request} answered {response.status_code} with a badly shaped error "
            f"({problem}): {response.text[:500]}\n{case.as_curl_command()}"
        )


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r or "no-token")
@pytest.mark.parametrize("operation", OPERATIONS)
def test_operation(api: Any, operation: str, role: str | None, tokens: dict[str, str]) -> None:
    method, path = operation.split(" ", 1)
    op = api[path][method]
    headers = {"Authorization": f"Bearer {tokens[role]}"} if role else {}
    examples = SLOW.get(operation, EXAMPLES[role])

    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

        @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                  phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(case=op.as_strategy(generation_mode=mode),
               model=st.one_of(st.none(), st.sampled_from(MODELS.get(path, [None]))))
        def run(case: Any, model: str | None) -> None:
            if model is not None:
                name_model(case, model)
            check(case, case.call(headers=headers))

        try:
            run()
        except Unsatisfiable:
            # Nothing in this operation can be made invalid (no parameters, no body).
            assert mode is GenerationMode.NEGATIVE, f"{operation}: no valid request generated"


def test_error_shapes_are_checked() -> None:
    """The shape check itself can fail."""
    assert shape_problem("/v1/x", 400, {"detail": "x"}) is not None
    assert shape_problem("/v1/x", 400, {"error": {"message": "m", "type": "t"}}) is not None
    good = {"error": {"message": "m", "type": "t", "code": "c"}}
    assert shape_problem("/v1/x", 400, good) is None
    assert shape_problem("/anthropic/v1/messages", 400,
                         {"error": {"message": "m", "type": "t", "code": "c"}}) is not None
    assert shape_problem("/google/v1/models/x", 404,
                         {"error": {"code": 400, "message": "m", "status": "S"}}) is not None
    assert len(OPERATIONS) > 40  # the document lists the operations at all

