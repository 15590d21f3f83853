"""Nothing a student can save or share carries their token: the state every widget keeps
in a notebook, the Playground's "show code" in every language and for every provider, and
its exports. (The code reads the address and token from the lab's environment.)"""

from __future__ import annotations

import json

import ipywidgets
import pytest
from classroom import Chat, Compare, Images, MyUsage, Playground

MODELS = ("mock/lorem", "gpt-4o-mini", "claude-haiku-4-5", "gemini-2.5-flash")


@pytest.fixture
def token(gateway_server) -> str:
    return gateway_server.tokens["student_a"]


def widget_states() -> str:
    """What a notebook saves for its widgets (``application/vnd.jupyter.widget-state``)."""
    states = {}
    for model_id, widget in list(ipywidgets.Widget.widgets.items()):
        try:
            states[model_id] = widget.get_state()
        except Exception:  # a closed widget  # noqa: BLE001
            continue
    return json.dumps(states, default=repr)


def test_playground_code_exports_and_widget_state_hold_no_token(make_client, token,
                                                                monkeypatch):
    monkeypatch.setenv("CLASSROOM_API_TOKEN", token)  # as in a lab: the code must not copy it
    client = make_client()
    playground = Playground(client=client, model="mock/lorem", prompt="Hello there",
                            system="Be brief.")
    playground.run(iterations=2)
    texts = [playground.export(fmt) for fmt in ("json", "markdown", "csv")]
    for model in MODELS:
        playground.model = model
        texts += [playground.code(language) for language in ("python", "javascript", "curl")]
    widgets = [Chat(client=client), Compare(client=client), Images(client=client),
               MyUsage(client=client), playground]
    texts.append(widget_states())
    texts += [json.dumps(w._repr_mimebundle_(), default=repr) for w in widgets]
    assert any("OPENAI_API_KEY" in t or "CLASSROOM_API_TOKEN" in t for t in texts)
    for text in texts:
        assert token not in text
