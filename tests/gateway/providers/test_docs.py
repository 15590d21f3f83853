"""docs/providers.md is checked against the code: every provider setting and error code
is documented, and every model of the catalog's providers appears in the table."""

from __future__ import annotations

from gateway.config.settings import Settings
from gateway.errors import all_error_classes
from gateway.providers import PROVIDER_IDS
from tests.support.procs import REPO

DOC = (REPO / "docs" / "providers.md").read_text()
PROVIDER_SETTINGS = (
    "chat_timeout_seconds", "image_timeout_seconds", "speech_timeout_seconds",
    "video_timeout_seconds", "job_poll_seconds", "retry_attempts", "retry_base_seconds",
    "retry_max_seconds", "mock_media_ms", "mock_job_seconds", "rate_limit_margin_ms",
    "upstream_connections", "upstream_slot_wait_seconds", "upstream_connect_timeout_seconds",
    "download_deadline_seconds", "upstream_max_answer_bytes",
)


def test_every_provider_setting_is_documented_with_its_default():
    for name in PROVIDER_SETTINGS:
        default = Settings.model_fields[name].default
        row = next((line for line in DOC.splitlines()
                    if line.startswith(f"| `CLASSROOM_{name.upper()}`")), None)
        assert row is not None, f"CLASSROOM_{name.upper()} is not documented"
        shown = f"{default:g}" if isinstance(default, float) else str(default)
        assert f"| {shown} |" in row, f"{name}: documented default differs from {default}"


def test_every_provider_error_code_is_documented():
    codes = {cls.code for cls in all_error_classes() if cls.code.startswith("provider_")}
    codes |= {"content_blocked", "context_length_exceeded", "no_key_available"}
    for code in codes:
        assert f"| `{code}` |" in DOC, code


def test_every_provider_has_a_row():
    for provider in PROVIDER_IDS:
        assert f"| `{provider}` |" in DOC, provider
