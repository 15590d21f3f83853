"""Jupyter AI in every lab, on the classroom's gateway (copied to <prefix>/etc/jupyter).

Jupyter AI 3.x (``pip install 'jupyter-ai-classroom[jupyter-ai]'``, i.e.
``jupyter-ai[jupyternaut]``) chats through its Jupyternaut persona, which calls models
with LiteLLM. LiteLLM's ``openai/<model>`` provider speaks the OpenAI API to any base
URL, and the gateway is OpenAI-compatible for every model it serves (``claude-*`` and
``gemini-*`` are translated), so the whole panel goes through the gateway:

- the model is ``openai/<gateway model>``: ``openai/mock/echo`` unless the lab's
  ``CLASSROOM_AI_MODEL`` names another (``openai/gpt-4o-mini``, ``openai/claude-…``);
- the base URL and key are the lab's ``OPENAI_BASE_URL`` and ``OPENAI_API_KEY``, which
  the hub sets to the gateway and the user's own hub token (no provider key in the lab);
  the base URL is also given to the model explicitly (the token is not: Jupyternaut logs
  its model parameters, and LiteLLM reads ``OPENAI_API_KEY`` itself);
- only the ``openai`` provider (that is: the gateway) is allowed, so the panel does not
  send the hub token to Anthropic or Google directly; the school's allow-list, budgets,
  metering, the fair queue and the history are the gateway's, as for every other call.

Nothing here runs unless the lab has the gateway's variables; without Jupyter AI
installed the settings are unused.
"""

import os

c = get_config()  # type: ignore[name-defined]  # noqa: F821 - traitlets config file


def jupyter_ai_settings(environ: "os._Environ[str] | dict[str, str]") -> dict[str, object]:
    """The JupyternautExtension traits for a lab with this environment ({} without one)."""
    base = environ.get("OPENAI_BASE_URL") or (
        environ.get("CLASSROOM_GATEWAY_URL", "").rstrip("/") + "/v1"
        if environ.get("CLASSROOM_GATEWAY_URL") else "")
    token = environ.get("OPENAI_API_KEY") or environ.get("CLASSROOM_API_TOKEN", "")
    if not base or not token:
        return {}
    model = "openai/" + (environ.get("CLASSROOM_AI_MODEL") or "mock/echo").removeprefix(
        "openai/")
    params = {"api_base": base}
    return {
        "initial_language_model": model,
        "default_completions_model": model,
        "allowed_providers": ["openai"],
        "model_parameters": {model: params},
    }


for _name, _value in jupyter_ai_settings(os.environ).items():
    setattr(c.JupyternautExtension, _name, _value)
