"""The ``Chat`` widget against the real gateway: the conversation, the cost line, the errors."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime

import httpx
import pytest
from classroom import Chat, GatewayClient, GatewayError

TOKEN_LINE = re.compile(
    r"mock/echo · \d+ prompt \+ \d+ completion = \d+ tokens · free · \d+\.\d\d s"
    r" \(first token after \d+\.\d\d s\)"
)


@pytest.fixture
def chat(gateway_server, clean_env) -> Chat:
    return Chat(client=GatewayClient(gateway_server.url, gateway_server.tokens["student_a"]))


def test_the_widget_shows_the_school_and_the_allowed_models(chat):
    assert "Hanbit High School" in chat.header.value
    assert "stu_a · student" in chat.header.value
    assert {"mock/echo", "mock/lorem"} <= set(chat.model_picker.options)
    assert chat.model == "mock/echo"
    assert chat.error_box.text == ""
    assert chat.error_box.layout.display == "none"


def test_send_shows_the_echo_and_the_token_line_and_is_recorded_as_widget(
    chat, history_ids, gateway_server
):
    token = gateway_server.tokens["student_a"]
    before = set(history_ids(token))
    chat.system = "You are a parrot."

    reply = chat.send("Polly wants a **cracker**")

    assert reply == "Polly wants a **cracker**"
    assert "<strong>cracker</strong>" in chat.transcript.value  # rendered as Markdown
    assert chat.transcript.value.count("Polly wants a") == 2  # the question and the echo
    assert TOKEN_LINE.search(chat.transcript.value), chat.transcript.value
    assert chat.messages == [
        {"role": "system", "content": "You are a parrot."},
        {"role": "user", "content": "Polly wants a **cracker**"},
        {"role": "assistant", "content": "Polly wants a **cracker**"},
    ]
    new = [run for rid, run in history_ids(token).items() if rid not in before]
    assert [(r["source"], r["model"], r["status"], r["stream"]) for r in new] == [
        ("widget", "mock/echo", "ok", True)
    ]


def test_a_second_message_carries_the_whole_conversation(chat):
    chat.model = "mock/lorem"
    first = chat.send("Tell me a story.")
    second = chat.send("Another one.")
    assert first and second and first != second  # lorem depends on the whole conversation
    assert [m["role"] for m in chat.messages] == ["user", "assistant", "user", "assistant"]
    assert chat.transcript.value.count("mock/lorem · ") == 2

    chat.clear()
    assert chat.messages == []
    assert "No messages yet" in chat.transcript.value


def test_model_output_is_shown_as_text_not_html(chat):
    chat.send("<img src=x onerror=alert(1)> hi")
    assert "<img" not in chat.transcript.value
    assert "&lt;img src=x onerror=alert(1)&gt;" in chat.transcript.value


class GatedTransport(httpx.BaseTransport):
    """Holds chat requests until the test releases them."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.entered = threading.Event()
        self.release = threading.Event()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith(("/chat/completions", "/send")):
            self.entered.set()
            assert self.release.wait(30), "the test never released the request"
        return self.inner.handle_request(request)


def test_the_send_button_streams_in_the_background_with_controls_disabled(
    gateway_server, clean_env
):
    gate = GatedTransport()
    chat = Chat(
        client=GatewayClient(gateway_server.url, gateway_server.tokens["student_a"], transport=gate)
    )
    chat.message_box.value = "pressed the button"

    chat.send_button.click()

    assert gate.entered.wait(30)
    assert chat.busy
    assert chat.send_button.disabled and chat.clear_button.disabled
    assert chat.model_picker.disabled
    assert chat.message_box.value == ""
    assert "pressed the button" in chat.transcript.value
    assert "Waiting for the reply" in chat.status.value

    gate.release.set()
    assert chat.wait(30)

    assert not chat.send_button.disabled and not chat.clear_button.disabled
    assert chat.messages[-1] == {"role": "assistant", "content": "pressed the button"}
    assert chat.status.value == "" and chat.live_reply.value == ""


def test_an_empty_message_is_not_sent(chat):
    chat.message_box.value = "   "
    chat.send_button.click()
    assert not chat.busy and chat.messages == []
    assert chat.error_box.text == "Type a message first, then press Send."


def test_a_bad_token_is_explained_in_words(gateway_server, clean_env):
    chat = Chat(client=GatewayClient(gateway_server.url, "tok-expired"))

    assert "Your session token was not accepted" in chat.error_box.text
    assert "restart your server from the hub" in chat.error_box.text
    assert chat.error_box.layout.display is None  # visible
    assert chat.model is None

    with pytest.raises(GatewayError) as caught:
        chat.send("hello?")
    assert caught.value.code == "invalid_token"


def test_an_unknown_model_is_explained_with_the_models_to_pick(chat):
    chat.model = "no-such-model"

    with pytest.raises(GatewayError) as caught:
        chat.send("hello?")

    assert caught.value.code == "model_not_found"
    text = chat.error_box.text
    assert "does not know a model called 'no-such-model'" in text
    assert "Models you can use: " in text and "mock/echo" in text
    # The failed message is taken back, ready to send again with another model.
    assert chat.messages == []
    assert chat.message_box.value == "hello?"
    assert not chat.send_button.disabled

    chat.model = "mock/echo"
    assert chat.send(chat.message_box.value) == "hello?"
    assert chat.error_box.text == ""


def test_an_unreachable_gateway_is_explained(clean_env):
    from tests.support.procs import free_port

    url = f"http://127.0.0.1:{free_port()}"
    chat = Chat(client=GatewayClient(url, "tok"))
    assert chat.error_box.text.startswith(f"The classroom gateway at {url} could not be reached")
    with pytest.raises(GatewayError) as caught:
        chat.send("anyone there?")
    assert caught.value.code == "gateway_unreachable"


def test_chat_uses_the_environment_by_default(gateway_server, clean_env, history_ids):
    clean_env.setenv("CLASSROOM_GATEWAY_URL", gateway_server.url)
    clean_env.setenv("CLASSROOM_API_TOKEN", gateway_server.tokens["student_b"])
    chat = Chat(model="mock/lorem", system="Be brief.")
    assert chat.model == "mock/lorem"
    assert "stu_b" in chat.header.value
    assert chat.send("hi")
    runs = history_ids(gateway_server.tokens["student_b"]).values()
    assert any(r["source"] == "widget" and r["model"] == "mock/lorem" for r in runs)


def test_a_reply_cut_short_says_so(gateway_server, clean_env):
    class LimitedClient(GatewayClient):
        def stream_session(self, *args, **kwargs):
            return super().stream_session(*args, params={"max_tokens": 2}, **kwargs)

    chat = Chat(client=LimitedClient(gateway_server.url, gateway_server.tokens["student_a"]))
    assert chat.send("one two three four five") == "one two"
    assert "cut short: the reply reached its length limit" in chat.transcript.value


# -- saved conversations, branching, cost ------------------------------------------------


def test_each_exchange_is_saved_and_can_be_reopened(make_client, recorder):
    chat = Chat(client=make_client(transport=recorder), system="Be brief.")
    chat.send("First question")
    chat.send("Second question")
    assert chat.conversation_id and chat.conversation_id.startswith("conv_")
    assert "This conversation: " in chat.counter.value and "free" in chat.counter.value
    # Each message is sent once, to the session: the gateway keeps the context.
    posted = recorder.bodies("/send")
    assert [(b["content"], b["stream"]) for b in posted] == [
        ("First question", True), ("Second question", True)]
    assert posted[0]["new_branch"] is True and "parent_message_id" not in posted[0]
    assert not recorder.bodies("/messages")
    assert recorder.bodies("/api/conversations")[0]["system_prompt"] == "Be brief."
    stored = chat.client.conversation(chat.conversation_id)["messages"]
    assert stored[1]["prompt_tokens"] > 0 and stored[1]["cost_usd"] == 0
    assert posted[1]["parent_message_id"] == stored[1]["id"]

    saved = [c for c in chat.conversations() if c["id"] == chat.conversation_id]
    assert saved and saved[0]["title"] == "First question" and saved[0]["message_count"] == 4

    again = Chat.open(chat.conversation_id, client=make_client())
    assert again.messages == chat.messages
    assert again.system == "Be brief."
    assert "Second question" in again.transcript.value
    assert again.send("Third") == "Third"
    assert len(again.client.conversation(chat.conversation_id)["messages"]) == 6


def test_the_open_button_reopens_the_selected_conversation(make_client):
    first = Chat(client=make_client())
    first.send("Remember this")
    chat = Chat(client=make_client())
    chat.refresh()
    assert first.conversation_id in [value for _, value in chat.conversation_picker.options]
    chat.conversation_picker.value = first.conversation_id
    chat.open_button.click()
    assert chat.messages[-1] == {"role": "assistant", "content": "Remember this"}


def test_editing_an_earlier_message_starts_a_branch_and_keeps_the_old_one(make_client):
    chat = Chat(client=make_client(), model="mock/echo")
    chat.send("one")
    chat.send("two")
    old_leaf = chat.branches()[0]

    assert chat.edit(0, "uno") == "uno"

    assert [m["content"] for m in chat.messages] == ["uno", "uno"]
    assert len(chat.branches()) == 2
    assert "version 2 of 2" in chat.transcript.value
    tree = chat.tree_text()
    assert "* You: uno" in tree and "  You: one" in tree and "You: two" in tree
    saved = chat.client.conversation(chat.conversation_id)
    firsts = [m for m in saved["messages"] if m["parent_message_id"] is None]
    assert sorted(m["content"] for m in firsts) == ["one", "uno"]

    chat.switch_branch(old_leaf)  # the old branch is still there, and can go on
    assert [m["content"] for m in chat.messages] == ["one", "one", "two", "two"]
    assert chat.send("three") == "three"
    assert len(chat.branches()) == 2


def test_edit_through_the_buttons(make_client):
    chat = Chat(client=make_client())
    chat.send("hello")
    chat.edit_picker.value = chat.edit_picker.options[0][1]
    chat.edit_button.click()
    assert chat.message_box.value == "hello"
    assert "Editing your message" in chat.transcript.value
    chat.message_box.value = "hello again"
    chat.send_button.click()
    assert chat.wait(30)
    assert [m["content"] for m in chat.messages] == ["hello again", "hello again"]
    assert len(chat.branch_picker.options) == 2
    chat.branch_picker.value = [v for _, v in chat.branch_picker.options if v != chat.tree.leaf][0]
    assert [m["content"] for m in chat.messages] == ["hello", "hello"]


def test_a_chat_without_saving_sends_nothing_to_conversations(make_client, recorder):
    chat = Chat(client=make_client(transport=recorder), save=False)
    chat.send("private")
    assert chat.conversation_id is None
    assert not [r for r in recorder.seen if "/api/conversations" in r.path]


def test_the_model_picker_offers_only_chat_models(make_client):
    chat = Chat(client=make_client())
    kinds = {chat.catalog.get(m).kind for m in chat.model_picker.options}
    assert kinds == {"chat"}


def test_header_shows_the_schools_logo_inside_a_lab(monkeypatch):
    from classroom.widgets._common import logo_img

    me = {"tenant": "school_a", "branding": {"page_title": "Hanbit"}}
    monkeypatch.delenv("JUPYTERHUB_BASE_URL", raising=False)
    assert logo_img(me) == ""  # outside the hub there is no logo to load
    monkeypatch.setenv("JUPYTERHUB_BASE_URL", "/")
    assert 'src="/hub/classroom/logo/school_a"' in logo_img(me)
    assert logo_img({"tenant": '"><script>'}) == ""


# -- sessions: memory mode, entries, what was injected ------------------------------------------


def test_the_memory_panel_shows_mode_entries_and_what_was_injected(make_client):
    chat = Chat(client=make_client(), system="Be brief.")
    entry = chat.add_memory("<b>Ada</b> likes chemistry", type="fact")
    assert chat.conversation_id  # adding a session entry started the session
    # Text the user controls is escaped where it becomes HTML.
    assert "&lt;b&gt;Ada&lt;/b&gt; likes chemistry" in chat.entries_view.value
    assert "<b>Ada</b>" not in chat.entries_view.value
    chat.send("hello")
    assert chat.last_context is not None
    assert [e["id"] for e in chat.last_context["memory"]] == [entry["id"]]
    assert "Injected into the last reply" in chat.injected_view.value
    assert "- [fact] &lt;b&gt;Ada&lt;/b&gt; likes chemistry" in chat.injected_view.value

    # Edit and delete from the panel's controls.
    chat.entry_picker.value = entry["id"]
    assert chat.entry_text.value == "<b>Ada</b> likes chemistry"
    chat.entry_text.value = "Ada likes physics"
    chat.save_entry_button.click()
    assert [e["content"] for e in chat.memory_entries()] == ["Ada likes physics"]
    chat.send("again")
    assert "Ada likes physics" in chat.last_context["memory_text"]
    chat.entry_picker.value = entry["id"]
    chat.delete_entry_button.click()
    assert chat.memory_entries() == [] and "No memory entries yet" in chat.entries_view.value

    # The mode is the session's: auto proposes entries, disabled injects none.
    chat.memory_mode = "auto"
    assert chat.client.conversation(chat.conversation_id)["memory_mode"] == "auto"
    chat.send("My name is Grace.")
    assert [e["content"] for e in chat.memory_entries()] == ["The user's name is Grace."]
    chat.memory_mode = "disabled"
    chat.send("Who am I?")
    assert chat.last_context["memory"] == [] and "Nothing was injected" in chat.injected_view.value

    again = Chat.open(chat.conversation_id, client=make_client())
    assert again.memory_mode == "disabled"
    assert [e["content"] for e in again.memory_entries()] == ["The user's name is Grace."]
    assert again.last_context == chat.last_context


def test_files_attached_in_the_widget_go_with_the_next_message(make_client):
    chat = Chat(client=make_client())
    chat.attach("notes.txt", b"<i>Atoms</i> are small.")
    # As the Attach button holds an upload (ipywidgets 8's value).
    chat.attach_button.value = ({"name": "plan.md", "type": "text/markdown", "size": 5,
                                 "content": memoryview(b"# Plan"),
                                 "last_modified": datetime.now(UTC)},)
    chat.send("Read these")
    sent = chat.last_context["messages"][-1]["content"]
    assert [p["text"] for p in sent[1:]] == ["Attached file notes.txt:\n<i>Atoms</i> are small.",
                                             "Attached file plan.md:\n# Plan"]
    assert "Attached: notes.txt, plan.md" in chat.transcript.value
    assert chat.attach_button.value == () and chat._attached == []
    chat.send("no files now")
    assert isinstance(chat.last_context["messages"][-1]["content"], str)
    saved = chat.client.conversation(chat.conversation_id)["messages"]
    assert [a["filename"] for a in saved[0]["attachments"]] == ["notes.txt", "plan.md"]
