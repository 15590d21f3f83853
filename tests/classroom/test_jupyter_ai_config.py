"""Jupyter AI's server configuration (extensions/classroom/jupyter_server_config.py): in a
lab with the hub's variables, Jupyternaut's model is ``openai/<gateway model>`` on the
gateway's OpenAI-compatible face, only that provider is allowed, and the user's token is
nowhere in the traits (Jupyternaut logs its model parameters); LiteLLM reads it from
``OPENAI_API_KEY``, which the hub sets to that token."""

from __future__ import annotations

import runpy

from traitlets.config import Config

from hub.labs import ClassroomLab
from tests.support.procs import REPO

CONFIG = REPO / "extensions" / "classroom" / "jupyter_server_config.py"


def load(environ: dict[str, str], monkeypatch) -> Config:
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "CLASSROOM_GATEWAY_URL",
                 "CLASSROOM_API_TOKEN", "CLASSROOM_AI_MODEL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    config = Config()
    runpy.run_path(str(CONFIG), init_globals={"get_config": lambda: config})
    return config


def lab_environment(token: str) -> dict[str, str]:
    """What the hub puts in a lab's environment (hub/labs.py), for this token."""
    lab = ClassroomLab(gateway_url="http://127.0.0.1:8000/services/gateway")
    lab.api_token = token
    return lab.gateway_env()


def test_the_panel_goes_to_the_gateway_with_the_users_token(monkeypatch) -> None:
    environ = lab_environment("hub-token-of-stu1")
    config = load(environ, monkeypatch)
    traits = config.JupyternautExtension
    assert traits.initial_language_model == "openai/mock/echo"
    assert traits.default_completions_model == "openai/mock/echo"
    assert traits.allowed_providers == ["openai"]
    assert traits.model_parameters == {
        "openai/mock/echo": {"api_base": "http://127.0.0.1:8000/services/gateway/v1"}}
    assert "hub-token-of-stu1" not in repr(dict(traits))
    # the key LiteLLM's openai provider reads is the user's hub token, not a provider key
    assert environ["OPENAI_API_KEY"] == "hub-token-of-stu1"


def test_a_school_can_name_the_panels_model(monkeypatch) -> None:
    config = load({**lab_environment("t"), "CLASSROOM_AI_MODEL": "claude-3-5-haiku-latest"},
                  monkeypatch)
    assert config.JupyternautExtension.initial_language_model == (
        "openai/claude-3-5-haiku-latest")


def test_outside_a_lab_nothing_is_set(monkeypatch) -> None:
    assert "JupyternautExtension" not in load({}, monkeypatch)
