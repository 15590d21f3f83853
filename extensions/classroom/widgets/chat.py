"""``Chat()``: talk to a model from a notebook, and see what each reply cost.

The reply is streamed from the gateway in a background thread, so the kernel
stays free and the text appears as it is generated. The same widget can be
driven from code, which is how the lessons and the tests use it::

    chat = Chat(model="mock/echo", system="You are a friendly tutor.")
    chat.send("Hello!")          # waits for the reply and returns its text
    chat.messages                # what the model will see next time
"""

from __future__ import annotations

import html
import threading
import time
from dataclasses import dataclass
from typing import Any

import ipywidgets as w

from .._chat import ChatResult
from .._client import DEFAULT_MODEL, GatewayClient
from .._exceptions import GatewayError
from ._common import ErrorBox, Header, accent_color, fetch_me, render_markdown

#: How often the streamed reply is redrawn: often enough to look live, rarely
#: enough that a fast model does not flood the browser with updates.
REDRAW_INTERVAL = 0.05
ROLE_LABELS = {"user": "You", "assistant": "Assistant", "system": "System"}


@dataclass
class _Turn:
    role: str
    content: str
    #: The tokens/latency line under a reply.
    meta: str = ""


@dataclass
class _Job:
    text: str
    done: threading.Event
    reply: str | None = None
    error: BaseException | None = None


class Chat:
    """A chat with a model through the classroom gateway.

    Pick a model, optionally give the assistant instructions (the system
    prompt), type a message and press Send. Each reply shows how many tokens it
    used and how long it took. Clear starts a new conversation.

    From code: :meth:`send` sends a message and returns the reply,
    :attr:`messages` is the conversation, :attr:`model` the model.
    """

    def __init__(
        self,
        model: str | None = None,
        system: str = "",
        *,
        client: GatewayClient | None = None,
    ) -> None:
        if client is None:
            from .. import client as default_client

            client = default_client
        self.client = client.with_source("widget")
        self._turns: list[_Turn] = []
        self._job: _Job | None = None
        self._lock = threading.Lock()
        self._available: list[str] = []
        self._load_error: GatewayError | None = None

        self.header = Header("Chat")
        self.model_picker = w.Dropdown(
            description="Model", options=[], layout=w.Layout(width="auto", min_width="320px")
        )
        self.reload_button = w.Button(
            icon="refresh", tooltip="Reload the list of models", layout=w.Layout(width="36px")
        )
        self.system_prompt = w.Textarea(
            value=system,
            description="System",
            placeholder="Optional: instructions for the assistant, "
            "e.g. “Answer in one short sentence.”",
            rows=2,
            layout=w.Layout(width="100%"),
        )
        self.transcript = w.HTML(layout=w.Layout(width="100%"))
        self.live_reply = w.HTML(layout=w.Layout(width="100%"))
        self.status = w.HTML()
        self.error_box = ErrorBox(layout=w.Layout(width="100%"))
        self.message_box = w.Textarea(
            placeholder="Type your message, then press Send",
            rows=3,
            layout=w.Layout(width="100%"),
        )
        self.send_button = w.Button(description="Send", button_style="primary", icon="paper-plane")
        self.clear_button = w.Button(
            description="Clear", icon="eraser", tooltip="Start a new conversation"
        )
        self.send_button.on_click(lambda _: self._send_from_button())
        self.clear_button.on_click(lambda _: self.clear())
        self.reload_button.on_click(lambda _: self.refresh())
        self.widget = w.VBox(
            [
                self.header,
                w.HBox([self.model_picker, self.reload_button]),
                self.system_prompt,
                self.transcript,
                self.live_reply,
                self.status,
                self.error_box,
                self.message_box,
                w.HBox([self.send_button, self.clear_button]),
            ],
            layout=w.Layout(width="100%", max_width="900px"),
        )
        self._render_transcript()
        self.refresh(prefer=model)

    # -- display -------------------------------------------------------------------

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = self.widget._repr_mimebundle_(**kwargs)
        # What a frontend without widgets (or a saved notebook) shows instead.
        bundle["text/plain"] = repr(self)
        return bundle

    def __repr__(self) -> str:
        return f"<Chat model={self.model!r} messages={len(self._turns)}>"

    # -- the public API ------------------------------------------------------------

    @property
    def model(self) -> str | None:
        """The model replies come from. Any name can be set; the gateway checks it."""
        value = self.model_picker.value
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
        """The conversation as the model receives it: system prompt first, if any."""
        messages = [{"role": "system", "content": self.system}] if self.system.strip() else []
        return messages + [{"role": t.role, "content": t.content} for t in self._turns]

    @property
    def available_models(self) -> list[str]:
        """The models the gateway offered when the list was last loaded."""
        return list(self._available)

    @property
    def busy(self) -> bool:
        """Whether a reply is being received."""
        job = self._job
        return job is not None and not job.done.is_set()

    def send(self, text: str, timeout: float | None = None) -> str:
        """Send ``text`` as your next message, wait for the reply and return it.

        The widget shows the exchange as if you had typed it. Raises
        :class:`~classroom.GatewayError` (after showing it) if the call fails.
        """
        if not text.strip():
            raise ValueError("the message is empty")
        self.wait(timeout)
        job = self._start(text)
        if job is None:  # pragma: no cover - another thread started one in between
            raise RuntimeError("the chat is busy with another message")
        if not job.done.wait(timeout):
            raise TimeoutError(f"no reply within {timeout} seconds")
        if job.error is not None:
            raise job.error
        return job.reply or ""

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the reply being received (if any) is complete; False on timeout."""
        job = self._job
        return job is None or job.done.wait(timeout)

    def clear(self) -> None:
        """Forget the conversation (the system prompt and model stay)."""
        if self.busy:
            return
        self._turns.clear()
        self.status.value = ""
        self.error_box.clear()
        self._render_transcript()

    def refresh(self, prefer: str | None = None) -> None:
        """Reload the school header and the list of models from the gateway."""
        me, error = fetch_me(self.client)
        self.header.update(me)
        self.send_button.style.button_color = accent_color(me)
        self._available = []
        if error is None:
            try:
                self._available = self.client.models()
            except GatewayError as exc:
                error = exc
        self._load_error = error
        if error is None:
            self.error_box.clear()
        else:
            self.error_box.show(error)
        self._set_models(self._available, prefer)

    # -- sending -------------------------------------------------------------------

    def _set_models(self, names: list[str], prefer: str | None) -> None:
        current = prefer or self.model
        options = list(names)
        if current and current not in options:
            options.append(current)
        self.model_picker.options = options
        if current:
            self.model_picker.value = current
        elif options:
            self.model_picker.value = DEFAULT_MODEL if DEFAULT_MODEL in options else options[0]

    def _send_from_button(self) -> None:
        text = str(self.message_box.value)
        if not text.strip():
            self.error_box.show("Type a message first, then press Send.")
            return
        job = self._start(text)
        if job is not None and job.error is None:
            self.message_box.value = ""

    def _start(self, text: str) -> _Job | None:
        """Show ``text`` as sent and start receiving the reply; None if already busy."""
        with self._lock:
            if self.busy:
                return None
            if not self.model:
                # Usually the list could not be loaded: that error is the real reason.
                error = self._load_error or ValueError(
                    "No model is selected: pick one from the Model list."
                )
                self.error_box.show(error)
                job = _Job(text, threading.Event(), error=error)
                job.done.set()
                self._job = job
                return job
            job = _Job(text, threading.Event())
            self._job = job
        self._set_busy(True)
        self.error_box.clear()
        self._turns.append(_Turn("user", text))
        self._render_transcript()
        self.status.value = _muted("Waiting for the reply…")
        model, messages = str(self.model), self.messages
        thread = threading.Thread(
            target=self._receive, args=(job, model, messages), name="classroom-chat", daemon=True
        )
        thread.start()
        return job

    def _receive(self, job: _Job, model: str, messages: list[dict[str, str]]) -> None:
        try:
            stream = self.client.stream_chat(messages, model)
            last_redraw = 0.0
            for _ in stream:
                now = time.perf_counter()
                if now - last_redraw >= REDRAW_INTERVAL:
                    self._render_live(stream.text)
                    last_redraw = now
            assert stream.result is not None
            result = stream.result
            self._turns.append(_Turn("assistant", result.text, _meta_line(result)))
            job.reply = result.text
            self.status.value = ""
        except Exception as exc:
            job.error = exc
            # The message did not get an answer: take it back, so Send retries it.
            if self._turns and self._turns[-1].role == "user":
                self._turns.pop()
            if not self.message_box.value:
                self.message_box.value = job.text
            self.status.value = ""
            self.error_box.show(exc, self._available or None)
        finally:
            self._render_transcript()
            self.live_reply.value = ""
            self._set_busy(False)
            job.done.set()

    def _set_busy(self, busy: bool) -> None:
        for control in (self.send_button, self.clear_button, self.model_picker, self.reload_button):
            control.disabled = busy

    # -- drawing -------------------------------------------------------------------

    def _render_transcript(self) -> None:
        if not self._turns:
            self.transcript.value = _muted("No messages yet. Type one below and press Send.")
            return
        self.transcript.value = "".join(_turn_html(turn) for turn in self._turns)

    def _render_live(self, text: str) -> None:
        self.live_reply.value = _turn_html(_Turn("assistant", text + " ▍"))


def _meta_line(result: ChatResult) -> str:
    parts = [result.model]
    if result.usage is not None:
        parts.append(str(result.usage))
    timing = f"{result.latency:.2f} s"
    if result.first_token_latency is not None:
        timing += f" (first token after {result.first_token_latency:.2f} s)"
    parts.append(timing)
    if result.finish_reason == "length":
        parts.append("cut short: the reply reached its length limit")
    return " · ".join(parts)


def _turn_html(turn: _Turn) -> str:
    label = ROLE_LABELS.get(turn.role, turn.role)
    body = render_markdown(turn.content)
    background = "var(--jp-layout-color2, #f3f3f3)" if turn.role == "user" else "transparent"
    meta = (
        f'<div style="font-size:85%;opacity:.6">{html.escape(turn.meta)}</div>' if turn.meta else ""
    )
    return (
        f'<div style="margin:6px 0;padding:4px 10px;border-radius:4px;background:{background}">'
        f'<div style="font-weight:600;font-size:90%;opacity:.75">{label}</div>'
        f'<div class="jp-RenderedHTMLCommon" style="padding:0">{body}</div>'
        f"{meta}</div>"
    )


def _muted(text: str) -> str:
    return f'<div style="opacity:.6;font-style:italic">{html.escape(text)}</div>'
