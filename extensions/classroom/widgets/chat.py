"""``Chat()``: talk to a model, see what each reply cost, keep and branch conversations.

The reply is streamed from the gateway in a background thread, so the kernel
stays free and the text appears as it is generated. Every exchange is saved
in the gateway (``/api/conversations``) as a tree: editing an earlier message
starts a new branch from there, and the old branch stays in the tree, one
click away. The same widget can be driven from code::

    chat = Chat(model="mock/echo", system="You are a friendly tutor.")
    chat.send("Hello!")              # waits for the reply and returns its text
    chat.edit(0, "Hi there!")        # change your first message: a new branch
    chat.branches()                  # the leaves of the tree, one per branch
    Chat.open(chat.conversation_id)  # reopen it later, in another notebook

A saved chat is a *session* in the gateway: the gateway builds what the model is
sent (system prompt, memory, the branch, trimmed to fit) and the **Memory** panel
shows the memory mode, the entries in use (edit or delete them there) and exactly
what was injected into the last reply::

    chat.memory_mode = "auto"        # auto, explicit or disabled
    chat.add_memory("I am learning Python.", type="fact")
    chat.last_context["memory_text"] # what the last reply was given
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import ipywidgets as w

from gateway.safehtml import Safe, html, join

from .._catalog import format_cost
from .._chat import ChatResult
from .._client import DEFAULT_MODEL, GatewayClient
from .._exceptions import GatewayError
from .._mock import mock_enabled, substitute
from ._base import ClassroomWidget, muted
from ._common import accent_color, render_markdown
from ._tree import ROLE_LABELS, ConversationTree, Node, short

#: How often the streamed reply is redrawn: often enough to look live, rarely
#: enough that a fast model does not flood the browser with updates.
REDRAW_INTERVAL = 0.05


class Chat(ClassroomWidget):
    """A chat with a model through the classroom gateway.

    Pick a model, optionally give the assistant instructions (the system
    prompt), type a message and press Send. Each reply shows its tokens, cost
    and time. **Edit** an earlier message to try it differently: the old
    branch is kept and can be reopened from **Branches**. **New** starts a new
    conversation; **Open** reopens a saved one.
    """

    title = "Chat"
    feature = "chat"

    def __init__(
        self,
        model: str | None = None,
        system: str = "",
        *,
        client: GatewayClient | None = None,
        save: bool = True,
    ) -> None:
        self._initial = (model, system)
        self.save = save
        self.conversation_id: str | None = None
        self.tree = ConversationTree()
        self._edit_target: str | None = None
        self._available: list[str] = []
        self._pending_text = ""
        self.reply: str | None = None
        self.last_context: dict[str, Any] | None = None
        self._entries: list[dict[str, Any]] = []
        self._saved_system = ""  # the session's system prompt as the gateway has it
        super().__init__(client=client)
        if self.disabled_reason is None:
            self.refresh(prefer=model)

    # -- building ----------------------------------------------------------------------

    def _build(self) -> list[w.Widget]:
        model, system = self._initial
        self.model_picker = w.Dropdown(
            description="Model", options=[], layout=w.Layout(width="auto", min_width="320px")
        )
        self.reload_button = w.Button(
            icon="refresh", tooltip="Reload the list of models", layout=w.Layout(width="36px")
        )
        self.system_prompt = w.Textarea(
            value=system, description="System", rows=2, layout=w.Layout(width="100%"),
            placeholder="Optional: instructions for the assistant, "
            "e.g. “Answer in one short sentence.”",
        )
        self.conversation_picker = w.Dropdown(
            description="Saved", options=[], layout=w.Layout(width="auto", min_width="320px")
        )
        self.open_button = w.Button(description="Open", icon="folder-open",
                                    tooltip="Reopen the selected conversation")
        self.new_button = w.Button(description="New", icon="plus",
                                   tooltip="Start a new conversation")
        self.transcript = w.HTML(layout=w.Layout(width="100%"))
        self.live_reply = w.HTML(layout=w.Layout(width="100%"))
        self.counter = w.HTML()
        self.message_box = w.Textarea(
            placeholder="Type your message, then press Send", rows=3,
            layout=w.Layout(width="100%"),
        )
        self.send_button = w.Button(description="Send", button_style="primary",
                                    icon="paper-plane")
        self.attach_button = w.FileUpload(
            description="Attach", accept="image/*,.txt,.md,.csv,.json,.pdf", multiple=True,
            tooltip="Attach images, text or PDF files to your next message (saved chats)")
        self._attached: list[dict[str, Any]] = []
        self.clear_button = w.Button(description="Clear", icon="eraser",
                                     tooltip="Start a new conversation")
        self.edit_picker = w.Dropdown(description="Edit", options=[],
                                      layout=w.Layout(width="auto", min_width="280px"))
        self.edit_button = w.Button(description="Edit", icon="pencil",
                                    tooltip="Put this message in the box; Send starts a new "
                                    "branch from it")
        self.cancel_edit_button = w.Button(description="Cancel edit", icon="times")
        self.branch_picker = w.Dropdown(description="Branch", options=[],
                                        layout=w.Layout(width="auto", min_width="280px"))
        self.tree_view = w.HTML()
        self.tree_box = w.Accordion(children=[w.VBox([self.branch_picker, self.tree_view])])
        self.tree_box.set_title(0, "Branches (the conversation tree)")
        self.tree_box.selected_index = None
        self._build_memory()

        self.send_button.on_click(lambda _: self._send_from_button())
        self.clear_button.on_click(lambda _: self.clear())
        self.new_button.on_click(lambda _: self.clear())
        self.reload_button.on_click(lambda _: self.refresh())
        self.open_button.on_click(lambda _: self._open_from_picker())
        self.edit_button.on_click(lambda _: self._edit_from_picker())
        self.cancel_edit_button.on_click(lambda _: self._cancel_edit())
        self.branch_picker.observe(self._branch_picked, names="value")
        self._render()
        return [
            w.HBox([self.model_picker, self.reload_button]),
            self.system_prompt,
            w.HBox([self.conversation_picker, self.open_button, self.new_button]),
            self.transcript,
            self.live_reply,
            self.counter,
            self.message_box,
            w.HBox([self.send_button, self.attach_button, self.clear_button]),
            w.HBox([self.edit_picker, self.edit_button, self.cancel_edit_button]),
            self.tree_box,
            self.memory_box,
        ]

    def _build_memory(self) -> None:
        self.mode_picker = w.Dropdown(
            description="Memory", options=[
                ("explicit: only entries you add", "explicit"),
                ("auto: the gateway also proposes entries", "auto"),
                ("disabled: nothing is injected", "disabled")],
            value="explicit", layout=w.Layout(width="auto", min_width="360px"))
        self.entries_view = w.HTML()
        self.entry_picker = w.Dropdown(description="Entry", options=[],
                                       layout=w.Layout(width="auto", min_width="280px"))
        self.entry_text = w.Textarea(rows=2, layout=w.Layout(width="100%"),
                                     placeholder="Something the model should remember")
        self.entry_type = w.Dropdown(options=["fact", "preference", "instruction", "summary"],
                                     value="fact", layout=w.Layout(width="140px"))
        self.entry_scope = w.Dropdown(options=[("this session", "session"),
                                               ("all my sessions", "shared")],
                                      value="session", layout=w.Layout(width="160px"))
        self.add_entry_button = w.Button(description="Add", icon="plus")
        self.save_entry_button = w.Button(description="Save edit", icon="save")
        self.delete_entry_button = w.Button(description="Delete", icon="trash")
        self.injected_view = w.HTML()
        self.mode_picker.observe(self._mode_picked, names="value")
        self.entry_picker.observe(self._entry_picked, names="value")
        self.add_entry_button.on_click(lambda _: self._memory_action(
            lambda: self.add_memory(str(self.entry_text.value), type=str(self.entry_type.value),
                                    scope=str(self.entry_scope.value))))
        self.save_entry_button.on_click(lambda _: self._memory_action(
            lambda: self.edit_memory(str(self.entry_picker.value),
                                     str(self.entry_text.value))))
        self.delete_entry_button.on_click(lambda _: self._memory_action(
            lambda: self.delete_memory(str(self.entry_picker.value))))
        self.memory_box = w.Accordion(children=[w.VBox([
            self.mode_picker, self.entries_view,
            w.HBox([self.entry_picker, self.entry_type, self.entry_scope]),
            self.entry_text,
            w.HBox([self.add_entry_button, self.save_entry_button, self.delete_entry_button]),
            self.injected_view,
        ])])
        self.memory_box.set_title(0, "Memory (what the model is reminded of)")
        self.memory_box.selected_index = None
        self._render_memory()

    def _controls(self) -> list[w.Widget]:
        return [self.send_button, self.clear_button, self.model_picker, self.reload_button,
                self.open_button, self.new_button, self.edit_button, self.branch_picker]

    def __repr__(self) -> str:
        return f"<Chat model={self.model!r} messages={len(self.tree.path())}>"

    # -- the public API ------------------------------------------------------------------

    @property
    def model(self) -> str | None:
        """The model replies come from. Any name can be set; the gateway checks it."""
        value = self.model_picker.value if self.disabled_reason is None else None
        return str(value) if value else None

    @model.setter
    def model(self, name: str) -> None:
        if name not in self.model_picker.options:
            self.model_picker.options = (*self.model_picker.options, name)
        self.model_picker.value = name

    @property
    def system(self) -> str:
        """The system prompt: instructions the model reads before the conversation."""
        return str(self.system_prompt.value)

    @system.setter
    def system(self, text: str) -> None:
        self.system_prompt.value = text

    @property
    def messages(self) -> list[dict[str, str]]:
        """The conversation (current branch) as the model receives it, system prompt first."""
        messages = [{"role": "system", "content": self.system}] if self.system.strip() else []
        return messages + [{"role": n.role, "content": n.content} for n in self.tree.path()]

    @property
    def available_models(self) -> list[str]:
        """The chat models offered when the list was last loaded."""
        return list(self._available)

    def send(self, text: str, timeout: float | None = None) -> str:
        """Send ``text`` as your next message, wait for the reply and return it.

        The widget shows the exchange as if you had typed it. Raises
        :class:`~classroom.GatewayError` (after showing it) if the call fails.
        """
        if not text.strip():
            raise ValueError("the message is empty")
        if self.disabled_reason is not None:
            raise RuntimeError(self.disabled_reason)
        self.wait(timeout)
        if not self.model:
            error = self.load_error or ValueError("No model is selected: pick one from the list.")
            self.error_box.show(error)
            raise error
        self._run_and_wait(self._exchange_work(text), "Waiting for the reply…", timeout)
        return self.reply or ""

    def attach(self, path: str, data: bytes | None = None, mime: str | None = None) -> None:
        """Attach a file (an image, a text or a PDF file) to your next message."""
        from .._resources import file_attachment

        self._attached.append(file_attachment(path, data, mime))

    def edit(self, index: int, text: str, timeout: float | None = None) -> str:
        """Replace your ``index``-th message (0 = first) with ``text`` and continue from there.

        The old version stays in the tree as another branch.
        """
        users = [n for n in self.tree.path() if n.role == "user"]
        self._edit_target = users[index].id
        try:
            return self.send(text, timeout)
        finally:
            self._edit_target = None

    def branches(self) -> list[str]:
        """The ids of the last message of every branch (the leaves of the tree)."""
        return self.tree.leaves()

    def switch_branch(self, leaf_id: str) -> None:
        """Show (and continue) the branch that ends with message ``leaf_id``."""
        if leaf_id not in self.tree:
            raise KeyError(leaf_id)
        self.tree.leaf = leaf_id
        self._render()

    def clear(self) -> None:
        """Start a new conversation (the system prompt and model stay)."""
        if self.busy:
            return
        self.conversation_id = None
        self.tree.clear()
        self.last_context = None
        self._entries = []
        self._render_memory()
        self._edit_target = None
        self.status.value = ""
        self.error_box.clear()
        self._render()

    def refresh(self, prefer: str | None = None) -> None:
        """Reload the header, the list of models and the saved conversations."""
        from ._common import fetch_me

        me, error = fetch_me(self.client)
        if me is not None:
            self.me = me
        self.header.update(me, practice=mock_enabled())
        self.send_button.style.button_color = accent_color(me)
        self._catalog = None
        self._available = []
        if error is None:
            try:
                self._catalog = self.client.catalog(refresh=True)
                self._available = self.model_options("chat")
            except GatewayError as exc:
                error = exc
        self.load_error = error
        if error is None:
            self.error_box.clear()
            self._load_conversation_list()
        else:
            self.error_box.show(error)
        self._set_models(self._available, prefer)

    def conversations(self) -> list[dict[str, Any]]:
        """Your saved conversations, most recent first."""
        return self.client.conversations()

    @classmethod
    def open(cls, conversation_id: str, *, client: GatewayClient | None = None) -> Chat:
        """A Chat showing a saved conversation, ready to continue."""
        chat = cls(client=client)
        chat.load(conversation_id)
        return chat

    def load(self, conversation_id: str) -> None:
        """Show the saved conversation ``conversation_id`` in this widget."""
        saved = self.client.conversation(conversation_id)
        self.conversation_id = saved["id"]
        self.tree = ConversationTree.from_messages(saved["messages"])
        rows = {m["id"]: m for m in saved["messages"]}
        for node in self.tree.nodes.values():
            if node.role == "assistant":
                node.meta = _meta(node, None)
            elif node.id in rows:
                node.meta = _attached_line(rows[node.id])
        self.tree.leaf = saved.get("current_leaf_id")
        if saved.get("system_prompt") is not None:
            self.system = saved["system_prompt"]
        self._saved_system = saved.get("system_prompt") or ""
        if saved.get("model"):
            self.model = saved["model"]
        self.mode_picker.unobserve(self._mode_picked, names="value")
        self.mode_picker.value = saved.get("memory_mode") or "explicit"
        self.mode_picker.observe(self._mode_picked, names="value")
        replies = [m for m in saved["messages"] if m.get("context")]
        self.last_context = replies[-1]["context"] if replies else None
        self.error_box.clear()
        self._reload_memory()
        self._render()

    # -- memory ----------------------------------------------------------------------------

    @property
    def memory_mode(self) -> str:
        """``auto``, ``explicit`` or ``disabled``: what the gateway injects (docs/sessions.md)."""
        return str(self.mode_picker.value)

    @memory_mode.setter
    def memory_mode(self, mode: str) -> None:
        self.mode_picker.value = mode  # the observer saves it in the session

    def memory_entries(self) -> list[dict[str, Any]]:
        """The entries this session uses: its own and your shared ones (from the gateway)."""
        if self.conversation_id is None:
            return [e for e in self.client.memory(scope="shared")]
        own = self.client.memory(session=self.conversation_id)
        shared = [e for e in self.client.memory(scope="shared") if e["id"] not in
                  {o["id"] for o in own}]
        return own + shared

    def add_memory(self, text: str, *, type: str = "fact", scope: str = "session",
                   importance: int = 3) -> dict[str, Any]:
        """Add an entry (a session entry starts the session if there is none yet)."""
        session = self._ensure_session() if scope == "session" else self.conversation_id
        entry = self.client.add_memory(text, session=session, scope=scope, type=type,
                                       importance=importance)
        self._reload_memory()
        return entry

    def edit_memory(self, entry_id: str, text: str) -> dict[str, Any]:
        entry = self.client.update_memory(entry_id, content=text)
        self._reload_memory()
        return entry

    def delete_memory(self, entry_id: str) -> None:
        self.client.delete_memory(entry_id)
        self._reload_memory()

    def _ensure_session(self) -> str:
        if self.conversation_id is None:
            created = self.client.create_conversation(
                model=self.model, system_prompt=self.system or None,
                memory_mode=self.memory_mode)
            self.conversation_id = created["id"]
            self._saved_system = self.system
        return self.conversation_id

    def _memory_action(self, action: Any) -> None:
        try:
            action()
            self.error_box.clear()
        except (GatewayError, ValueError) as error:
            self.error_box.show(error)

    def _mode_picked(self, change: dict[str, Any]) -> None:
        if self.conversation_id is not None and self.save:
            self._memory_action(lambda: self.client.update_conversation(
                self.conversation_id, memory_mode=change["new"]))

    def _entry_picked(self, change: dict[str, Any]) -> None:
        chosen = [e for e in self._entries if e["id"] == change["new"]]
        if chosen:
            self.entry_text.value = chosen[0]["content"]

    def _reload_memory(self) -> None:
        try:
            self._entries = self.memory_entries() if self.save else []
        except GatewayError:
            self._entries = []
        self._render_memory()

    def _render_memory(self) -> None:
        rows = [html("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", e["type"],
                     "shared" if e["scope"] == "shared" else "session", e["origin"],
                     e["content"]) for e in self._entries]
        self.entries_view.value = html(
            "<table class='classroom-memory'><tr><th>type</th><th>scope</th><th>from</th>"
            "<th>content</th></tr>{}</table>", join(rows)) if rows else muted(
            "No memory entries yet.")
        self.entry_picker.options = [(short(e["content"], 40), e["id"]) for e in self._entries]
        context = self.last_context
        if context is None:
            self.injected_view.value = muted("Send a message to see what the model is sent.")
            return
        injected = context.get("memory_text")
        dropped = len(context.get("dropped_message_ids") or [])
        self.injected_view.value = join([
            html("<div><b>Injected into the last reply</b> ({} entries):</div>",
                 len(context.get("memory") or [])),
            html("<pre class='classroom-injected' style='white-space:pre-wrap'>{}</pre>",
                 injected) if injected else muted("Nothing was injected."),
            html("<div>{} of the conversation's earlier messages were sent, {} left out to "
                 "fit (about {} of {} tokens).</div>",
                 len(context.get("included_message_ids") or []), dropped,
                 context.get("prompt_tokens_estimate"), context.get("budget_tokens")),
        ])

    def tree_text(self) -> str:
        """The conversation tree as indented text (``*`` marks the branch shown)."""
        return self.tree.text()

    # -- the exchange ------------------------------------------------------------------

    def _exchange_work(self, text: str) -> Any:
        parent = self.tree.leaf
        if self._edit_target is not None:
            parent = self.tree[self._edit_target].parent
        model = substitute(str(self.model), "chat")
        history = [{"role": n.role, "content": n.content} for n in self.tree.path_to(parent)]
        system = self.system
        messages = ([{"role": "system", "content": system}] if system.strip() else []) + history
        messages.append({"role": "user", "content": text})
        self._pending_text = text
        self._render(pending=text, parent=parent)

        def work() -> None:
            if self.save:
                self._session_exchange(text, parent, model, system)
                return
            with self._answering(text):
                result = self._stream(messages, model)
            self._record(text, parent, result, system)
            self.reply = result.text

        return work

    @contextmanager
    def _answering(self, text: str) -> Iterator[None]:
        """While a reply streams: if it fails, the message goes back into the box, so Send
        retries it; the live reply is cleared either way."""
        try:
            yield
        except Exception:
            if not self.message_box.value:
                self.message_box.value = text
            self._render()
            raise
        finally:
            self.live_reply.value = ""

    def _session_exchange(self, text: str, parent: str | None, model: str, system: str) -> None:
        """Send through the session: the gateway builds the context and stores both."""
        with self._answering(text):
            session = self._ensure_session()
            if self._saved_system != system:
                self.client.update_conversation(session, system_prompt=system or None)
                self._saved_system = system
            stream = self.client.stream_session(
                session, text, parent_message_id=parent, new_branch=parent is None,
                model=model, attachments=self._take_attachments())
            self._show_stream(stream)
        assert stream.result is not None
        stored = stream.session_reply or {}
        user_row, reply_row = stored.get("user_message"), stored.get("assistant_message")
        if user_row is None or reply_row is None:
            return
        user = Node(user_row["id"], user_row["parent_message_id"], "user", text)
        user.meta = _attached_line(user_row)
        reply = Node(reply_row["id"], user.id, "assistant", reply_row["content"],
                     reply_row["model"], reply_row["prompt_tokens"],
                     reply_row["completion_tokens"], reply_row["cost_usd"])
        reply.meta = _meta(reply, stream.result)
        self.tree.add(user)
        self.tree.add(reply)
        self.tree.leaf = reply.id
        self._edit_target = None
        self.last_context = reply_row.get("context")
        self.reply = reply.content
        self._reload_memory()
        self._render()

    def _take_attachments(self) -> list[dict[str, Any]]:
        """What is attached to this message: files given to :meth:`attach` and uploaded
        with the Attach button; the next message starts with none."""
        from .._resources import file_attachment

        files = list(self._attached)
        for item in self.attach_button.value or ():
            files.append(file_attachment(item["name"], bytes(item["content"]),
                                         item.get("type") or None))
        self._attached = []
        self.attach_button.value = ()
        return files

    def _show_stream(self, stream: Any) -> None:
        last_redraw = 0.0
        for _ in stream:
            now = time.perf_counter()
            if now - last_redraw >= REDRAW_INTERVAL:
                self.live_reply.value = _turn_html(Node("", None, "assistant", stream.text + " ▍"))
                last_redraw = now

    def _stream(self, messages: list[dict[str, str]], model: str) -> ChatResult:
        stream = self.client.stream_chat(messages, model)
        self._show_stream(stream)
        assert stream.result is not None
        return stream.result

    def _record(self, text: str, parent: str | None, result: ChatResult, system: str) -> None:
        usage = result.usage
        cost = self.catalog.cost(result.model, usage.prompt_tokens, usage.completion_tokens) \
            if usage else None
        user = Node(_local_id(), parent, "user", text)
        reply = Node(
            _local_id(), user.id, "assistant", result.text, result.model,
            usage.prompt_tokens if usage else None, usage.completion_tokens if usage else None,
            cost,
        )
        reply.meta = _meta(reply, result)
        if self.save:
            self._save(user, reply, system)
        self.tree.add(user)
        self.tree.add(reply)
        self.tree.leaf = reply.id
        self._edit_target = None
        self._render()

    def _save(self, user: Node, reply: Node, system: str) -> None:
        """Save the exchange in the gateway; a failure is said, and the chat goes on."""
        try:
            if self.conversation_id is None:
                created = self.client.create_conversation(
                    model=reply.model, system_prompt=system or None
                )
                self.conversation_id = created["id"]
            saved_user = self.client.add_message(
                self.conversation_id, "user", user.content, user.parent
            )
            user.id = saved_user["id"]
            reply.parent = user.id
            cost = None if reply.cost_usd is None else round(reply.cost_usd * 1_000_000)
            saved_reply = self.client.add_message(
                self.conversation_id, "assistant", reply.content, user.id, model=reply.model,
                prompt_tokens=reply.prompt_tokens, completion_tokens=reply.completion_tokens,
                cost_micro_usd=cost,
            )
            reply.id = saved_reply["id"]
        except GatewayError as error:
            self.save = False
            self.status.value = muted(f"This conversation is not being saved: {error.explain()}")

    # -- button handlers -------------------------------------------------------------

    def _send_from_button(self) -> None:
        text = str(self.message_box.value)
        if not text.strip():
            self.error_box.show("Type a message first, then press Send.")
            return
        if not self.model:
            self.error_box.show(self.load_error or "No model is selected: pick one from the list.")
            return
        # Emptied first: a call that fails at once gives the text back into the box.
        self.message_box.value = ""
        if not self._start(self._exchange_work(text), "Waiting for the reply…"):
            self.message_box.value = text

    def _edit_from_picker(self) -> None:
        target = self.edit_picker.value
        if target in self.tree:
            self._edit_target = target
            self.message_box.value = self.tree[target].content
            self._render()

    def _cancel_edit(self) -> None:
        self._edit_target = None
        self.message_box.value = ""
        self._render()

    def _branch_picked(self, change: dict[str, Any]) -> None:
        if change["new"] in self.tree and change["new"] != self.tree.leaf and not self.busy:
            self.switch_branch(change["new"])

    def _open_from_picker(self) -> None:
        if self.conversation_picker.value:
            try:
                self.load(str(self.conversation_picker.value))
            except GatewayError as error:
                self.error_box.show(error)

    def _load_conversation_list(self) -> None:
        if not self.save:
            return
        try:
            items = self.client.conversations(limit=50)
        except GatewayError:
            return  # a gateway without saved conversations: the chat still works
        self.conversation_picker.options = [
            (f"{c.get('title') or 'Untitled'} ({c.get('message_count', 0)})", c["id"])
            for c in items
        ]

    def _set_models(self, names: list[str], prefer: str | None) -> None:
        current = prefer or self.model
        options = list(names)
        if current and current not in options and not mock_enabled():
            options.append(current)
        self.model_picker.options = options
        if current and current in options:
            self.model_picker.value = current
        elif options:
            self.model_picker.value = DEFAULT_MODEL if DEFAULT_MODEL in options else options[0]

    def _refresh_models(self) -> None:
        self._available = self.model_options("chat")
        self._set_models(self._available, None)

    # -- drawing -------------------------------------------------------------------------

    def _render(self, pending: str | None = None, parent: str | None = None) -> None:
        if self.disabled_reason is not None:
            return
        path = self.tree.path_to(parent) if pending is not None else self.tree.path()
        if self._edit_target is not None and pending is None:
            path = self.tree.path_to(self.tree[self._edit_target].parent)
        turns = [_turn_html(n, self.tree.version(n)) for n in path]
        if pending is not None:
            turns.append(_turn_html(Node("", parent, "user", pending)))
        if self._edit_target is not None and pending is None:
            turns.append(muted("Editing your message: change it below and press Send. "
                               "The old version stays in Branches."))
        self.transcript.value = join(turns) or muted(
            "No messages yet. Type one below and press Send."
        )
        users = [n for n in self.tree.path() if n.role == "user"]
        self.edit_picker.options = [(f"#{i + 1}: {short(n.content, 40)}", n.id)
                                    for i, n in enumerate(users)]
        leaves = self.branches()
        self.branch_picker.unobserve(self._branch_picked, names="value")
        self.branch_picker.options = [(f"{i + 1}: {short(self.tree[leaf].content, 40)}", leaf)
                                      for i, leaf in enumerate(leaves)]
        self.branch_picker.value = self.tree.leaf if self.tree.leaf in leaves else None
        self.branch_picker.observe(self._branch_picked, names="value")
        self.tree_view.value = html("<pre style='font-size:85%'>{}</pre>", self.tree_text())
        tokens = sum((n.prompt_tokens or 0) + (n.completion_tokens or 0) for n in self.tree.path())
        costs = [n.cost_usd for n in self.tree.path() if n.role == "assistant"]
        total = None if any(c is None for c in costs) else sum(c or 0.0 for c in costs)
        self.counter.value = muted(
            f"This conversation: {tokens} tokens, {format_cost(total)}"
            + (f" · {len(leaves)} branches" if len(leaves) > 1 else "")
        ) if costs else ""


def _attached_line(message: dict[str, Any]) -> str:
    names = [a["filename"] for a in message.get("attachments") or []]
    return ("Attached: " + ", ".join(names)) if names else ""


def _local_id() -> str:
    return f"local_{uuid.uuid4().hex[:12]}"


def _meta(node: Node, result: ChatResult | None) -> str:
    parts = [node.model or ""]
    if node.prompt_tokens is not None and node.completion_tokens is not None:
        total = node.prompt_tokens + node.completion_tokens
        parts.append(f"{node.prompt_tokens} prompt + {node.completion_tokens} completion "
                     f"= {total} tokens")
    parts.append(format_cost(node.cost_usd))
    if result is not None:
        timing = f"{result.latency:.2f} s"
        if result.first_token_latency is not None:
            timing += f" (first token after {result.first_token_latency:.2f} s)"
        parts.append(timing)
        if result.finish_reason == "length":
            parts.append("cut short: the reply reached its length limit")
    return " · ".join(p for p in parts if p)


def _turn_html(node: Node, siblings: tuple[int, int] = (1, 1)) -> Safe:
    label = ROLE_LABELS.get(node.role, node.role)
    if siblings[1] > 1:
        label += f" (version {siblings[0]} of {siblings[1]})"
    background = "var(--jp-layout-color2, #f3f3f3)" if node.role == "user" else "transparent"
    meta = html(
        '<div class="classroom-meta" style="font-size:85%;opacity:.6">{}</div>', node.meta
    ) if node.meta else ""
    return html(
        '<div class="classroom-turn classroom-{role}" style="margin:6px 0;padding:4px 10px;'
        'border-radius:4px;background:{background}">'
        '<div style="font-weight:600;font-size:90%;opacity:.75">{label}</div>'
        '<div class="jp-RenderedHTMLCommon" style="padding:0">{body}</div>'
        "{meta}</div>",
        role=node.role, background=background, label=label,
        body=render_markdown(node.content), meta=meta,
    )
