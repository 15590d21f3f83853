"""The Tools widget against a real gateway and the classroom MCP server: connections and
tools listed, a turn asked from code with its calls shown, and every text a user or a
tool controls escaped where it becomes HTML."""

from __future__ import annotations

from classroom.widgets.tools import Tools, render_calls


def test_the_widget_lists_asks_and_shows_the_calls(student_client):
    widget = Tools(model="mock/echo", client=student_client)
    assert widget.wait(60) and widget.last_error is None
    assert widget.connection_id == 0
    names = {t["name"] for t in widget.tools}
    assert {"calculator", "convert_units", "encyclopedia_lookup"} <= names
    assert "calculator" in widget.tools_list.value
    turn = widget.ask("calculator: 6 * 7")
    call = turn["tool_calls"][0]
    assert (call["tool"], call["status"]) == ("calculator", "ok")
    assert '"value": 42' in turn["answer"]
    assert "calculator" in widget.calls_view.value and "ok" in widget.calls_view.value
    assert "42" in widget.answer_view.value


def test_text_from_the_prompt_and_the_tool_is_escaped(student_client):
    widget = Tools(model="mock/echo", client=student_client)
    widget.wait(60)
    turn = widget.ask('calculator: "<img src=x onerror=alert(1)>"')
    assert turn["tool_calls"][0]["status"] == "error"
    shown = widget.calls_view.value + widget.answer_view.value
    assert "<img" not in shown and "&lt;img src=x onerror=alert(1)&gt;" in shown


def test_render_calls_escapes_every_field():
    evil = "<script>alert(1)</script>"
    shown = str(render_calls([{"tool": evil, "arguments": evil, "status": "ok",
                               "duration_ms": 3, "result": evil, "error": None}]))
    assert "<script>" not in shown and shown.count("&lt;script&gt;") == 3
