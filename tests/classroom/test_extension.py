"""The kernel extension: SDK variables filled from CLASSROOM_*, only when missing, silently."""

from __future__ import annotations

import os
import subprocess
import sys

import classroom
import pytest
from classroom._config import export_sdk_environment, sdk_environment

URL = "http://127.0.0.1:8000/services/gateway"
TOKEN = "tok-secret-0123456789"
EXPECTED = {
    "OPENAI_BASE_URL": f"{URL}/v1",
    "OPENAI_API_KEY": TOKEN,
    "ANTHROPIC_BASE_URL": f"{URL}/anthropic",
    "ANTHROPIC_API_KEY": TOKEN,
    "GOOGLE_GEMINI_BASE_URL": f"{URL}/google",
    "GEMINI_API_KEY": TOKEN,
}


def test_extension_fills_every_sdk_variable_silently(clean_env, capsys):
    clean_env.setenv("CLASSROOM_GATEWAY_URL", URL + "/")  # a trailing slash is tolerated
    clean_env.setenv("CLASSROOM_API_TOKEN", TOKEN)

    classroom.load_ipython_extension(None)

    assert {name: os.environ.get(name) for name in EXPECTED} == EXPECTED
    out, err = capsys.readouterr()
    assert out == "" and err == ""


def test_extension_never_overwrites_variables_already_set(clean_env):
    clean_env.setenv("CLASSROOM_GATEWAY_URL", URL)
    clean_env.setenv("CLASSROOM_API_TOKEN", TOKEN)
    clean_env.setenv("OPENAI_BASE_URL", f"{URL}/v1")  # as the hub sets it
    clean_env.setenv("OPENAI_API_KEY", "hub-set-token")
    clean_env.setenv("ANTHROPIC_API_KEY", "sk-ant-students-own")

    classroom.load_ipython_extension(None)

    assert os.environ["OPENAI_API_KEY"] == "hub-set-token"
    assert os.environ["OPENAI_BASE_URL"] == f"{URL}/v1"
    # The student's own Anthropic key must not be redirected to the gateway.
    assert os.environ["ANTHROPIC_API_KEY"] == "sk-ant-students-own"
    assert "ANTHROPIC_BASE_URL" not in os.environ
    assert os.environ["GEMINI_API_KEY"] == TOKEN


def test_token_never_goes_to_a_base_url_that_is_not_the_gateway(clean_env):
    clean_env.setenv("CLASSROOM_GATEWAY_URL", URL)
    clean_env.setenv("CLASSROOM_API_TOKEN", TOKEN)
    clean_env.setenv("OPENAI_BASE_URL", "http://localhost:11434/v1")  # a local model server
    clean_env.setenv("GOOGLE_API_KEY", "AIza-own-key")  # google-genai prefers this one

    changed = export_sdk_environment()

    assert "OPENAI_API_KEY" not in os.environ
    assert "GEMINI_API_KEY" not in os.environ and "GOOGLE_GEMINI_BASE_URL" not in os.environ
    assert sorted(changed) == ["ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"]


@pytest.mark.parametrize("present", ["CLASSROOM_GATEWAY_URL", "CLASSROOM_API_TOKEN", None])
def test_extension_is_a_no_op_without_both_gateway_variables(clean_env, present):
    if present:
        clean_env.setenv(present, URL if present.endswith("URL") else TOKEN)

    classroom.load_ipython_extension(None)

    assert not [name for name in EXPECTED if name in os.environ]


def test_configure_replaces_what_an_earlier_configuration_set_but_not_your_own(clean_env):
    classroom.configure("http://old.example/gw", "old-token")
    assert os.environ["OPENAI_BASE_URL"] == "http://old.example/gw/v1"
    clean_env.setenv("ANTHROPIC_API_KEY", "sk-ant-own")  # set by the user in between

    classroom.configure(URL, TOKEN)

    assert os.environ["CLASSROOM_GATEWAY_URL"] == URL
    assert os.environ["OPENAI_BASE_URL"] == f"{URL}/v1"
    assert os.environ["OPENAI_API_KEY"] == TOKEN
    assert os.environ["ANTHROPIC_API_KEY"] == "sk-ant-own"
    assert classroom.client.base_url == URL


def test_sdk_environment_maps_each_sdk_to_its_gateway_path():
    assert sdk_environment(URL + "/", TOKEN) == EXPECTED


def test_importing_the_package_has_no_side_effects_and_stays_light():
    """Every kernel imports ``classroom``: it must not touch the environment or pull
    in httpx/ipywidgets until they are used."""
    code = (
        "import os, sys; before = dict(os.environ); import classroom; "
        "assert dict(os.environ) == before; "
        "print(sorted(m for m in ('httpx', 'ipywidgets') if m in sys.modules)); "
        "print(type(classroom.client).__name__, 'httpx' in sys.modules)"
    )
    env = {**os.environ, "CLASSROOM_GATEWAY_URL": URL, "CLASSROOM_API_TOKEN": TOKEN}
    env = {k: v for k, v in env.items() if k not in EXPECTED}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.splitlines() == ["[]", "GatewayClient True"]


def test_public_surface():
    for name in (
        "client",
        "Chat",
        "configure",
        "load_ipython_extension",
        "GatewayError",
        "__version__",
        "GatewayClient",
    ):
        assert name in classroom.__all__
        assert getattr(classroom, name) is not None
    assert classroom.__version__ and classroom.__version__ != "0+unknown"
    from classroom import client

    assert client is classroom.client
    with pytest.raises(AttributeError):
        classroom.no_such_name  # noqa: B018


def test_token_is_not_in_the_clients_repr(clean_env):
    clean_env.setenv("CLASSROOM_GATEWAY_URL", URL)
    clean_env.setenv("CLASSROOM_API_TOKEN", TOKEN)
    text = repr(classroom.client) + repr(classroom.GatewayClient(URL, TOKEN))
    assert TOKEN not in text
    assert "token=set" in text
