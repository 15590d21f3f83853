"""Features the school switched off are not offered (and say why); the practice switch."""

from __future__ import annotations

import pytest
from classroom import (
    Chat,
    Compare,
    Embeddings,
    Images,
    MyUsage,
    Playground,
    Speech,
    Video,
    mock_enabled,
    mock_switch,
    use_mock,
    widgets,
)

ALL = [Chat, Playground, Compare, Images, Speech, Video, Embeddings, MyUsage]


def test_a_school_without_media_gets_an_explanation_instead_of_controls(make_client, recorder):
    client = make_client("admin", transport=recorder)  # the default school: chat, playground,
    for cls in (Images, Speech, Video, Embeddings):     # compare and usage only
        widget = cls(client=client)
        assert widget.disabled_reason is not None
        assert f"not available at {widget.me['tenant_display_name']}" in widget.disabled_reason
        assert "Widgets you can use: Chat, Playground, Compare, My usage." in \
            widget.disabled_reason
        notice = widget.widget.children[1].value
        assert "classroom-disabled" in notice and "Ask your teacher" in notice
        assert repr(widget) == f"<{cls.__name__} disabled>"
    assert not [r for r in recorder.seen if r.path.startswith(("/v1/images", "/v1/audio",
                                                              "/api/jobs", "/v1/embeddings"))]
    assert widgets.available(client) == ["Chat", "Playground", "Compare", "MyUsage", "Tools"]


def test_a_disabled_widget_refuses_its_actions_in_words(make_client):
    images = Images(client=make_client("admin"))
    with pytest.raises(RuntimeError, match="not available"):
        images.generate("a cat")
    assert "not available" in images.error_box.text


def test_every_widget_is_offered_to_a_school_that_enabled_everything(make_client):
    client = make_client()
    assert widgets.available(client) == list(widgets.WIDGETS)
    for cls in ALL:
        widget = cls(client=client, **({"load": False} if cls is MyUsage else {}))
        assert widget.disabled_reason is None, cls
        assert "Hanbit High School" in widget.header.value
        assert "#0f7b6c" in widget.header.value  # the school's colour


def test_the_menu_opens_only_enabled_widgets(make_client):
    menu = widgets.menu(make_client("admin"))
    names = [b.description for b in menu.children[0].children]
    assert names == ["Chat", "Playground", "Compare", "MyUsage", "Tools"]


def test_practice_mode_sends_every_widget_to_mock_models(make_client, recorder):
    client = make_client(transport=recorder)
    pg = Playground(client=client, model="gpt-4o-mini", prompt="hi")
    use_mock(True)
    assert mock_enabled()
    assert "practice mode" in pg.header.value  # told through the subscription
    assert all(m.startswith("mock/") for m in pg.model_picker.options)
    pg.model = "gpt-4o-mini"  # even when a real model is picked by name
    pg.run(iterations=1)
    assert recorder.bodies("/chat/completions")[-1]["model"] == "mock/echo"

    chat = Chat(client=client, model="gpt-4o-mini")
    assert "practice mode" in chat.header.value
    assert all(m.startswith("mock/") for m in chat.model_picker.options)
    use_mock(False)
    assert "practice mode" not in chat.header.value


def test_the_toggle_and_the_function_agree(make_client):
    toggle = mock_switch()
    chat = Chat(client=make_client())
    toggle.value = True
    assert mock_enabled() and "practice mode" in chat.header.value
    use_mock(False)
    assert toggle.value is False and "practice mode" not in chat.header.value


def test_practice_mode_can_start_from_the_environment(monkeypatch):
    from classroom._mock import MockSwitch

    monkeypatch.setenv("CLASSROOM_MOCK", "1")
    assert MockSwitch().enabled
    monkeypatch.setenv("CLASSROOM_MOCK", "0")
    assert not MockSwitch().enabled
