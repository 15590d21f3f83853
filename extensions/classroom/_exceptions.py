"""The one exception the ``classroom`` package raises, and how it explains itself.

    GatewayError            .status (HTTP status, or None), .code, .message, .explain()

``code`` is the gateway's stable error code (``invalid_token``,
``model_not_found``, ``quota_exceeded``, ``provider_timeout``, ...; see
``gateway/errors.py``) or one of the codes this package adds for failures that
never reach the gateway:

    not_configured          the kernel has no CLASSROOM_GATEWAY_URL / CLASSROOM_API_TOKEN
    gateway_unreachable     the connection failed (no server, wrong address, network down)
    gateway_timeout         the gateway accepted the connection but did not answer in time
    gateway_unavailable     an HTTP 5xx without the gateway's error body (e.g. from the proxy)
    http_error              any other response without the gateway's error body

``message`` is the gateway's own text. ``explain()`` is a sentence or two for a
student: what went wrong and what to do about it. ``str(error)`` is the
explanation too, so a traceback ends with words a student can act on.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

#: The hub's way back to a fresh token; said once so every message agrees.
RESTART_HINT = (
    "restart your server from the hub (File → Hub Control Panel → Stop My Server, "
    "then Start My Server)"
)
PICK_MODEL_HINT = (
    "Pick one from the model list of the Chat widget, or print the names you can use "
    "with `classroom.client.models()`."
)

_EXPLANATIONS: dict[str, str] = {
    "not_configured": (
        "This kernel does not know where the classroom gateway is. Inside the classroom "
        "this is set up for you; elsewhere set CLASSROOM_GATEWAY_URL and "
        "CLASSROOM_API_TOKEN, or call classroom.configure(url, token)."
    ),
    "gateway_unreachable": (
        "The classroom gateway{at_url} could not be reached. Check your network "
        "connection; if it keeps happening, {restart}."
    ),
    "gateway_timeout": (
        "The classroom gateway{at_url} took too long to answer. Try again in a moment."
    ),
    "gateway_unavailable": (
        "The classroom gateway is not available right now (HTTP {status}). Try again in a "
        "minute; if it keeps happening, tell your teacher."
    ),
    "invalid_token": "Your session token was not accepted — {restart}.",
    "forbidden": "You are not allowed to do this: {message}",
    "model_not_found": "The classroom does not know a model called {model}. {pick}",
    "model_not_allowed": (
        "Your school has not enabled the model {model}. {pick} Ask your teacher if you need it."
    ),
    "feature_disabled": "This feature is switched off for your school: {message}",
    "model_unpriced": (
        "The model {model} has no price in the classroom, and you have a spending budget. "
        "{pick} Ask your teacher if you need this one."
    ),
    "paused_by_teacher": "Your teacher has paused AI calls for the class. Wait until they resume.",
    "not_found": "The gateway has nothing at this address: {message}",
    "invalid_request": "The request was not accepted: {message}",
    "context_length_exceeded": (
        "The conversation is too long for this model. Start a new one (the Clear button), "
        "or send shorter messages."
    ),
    "payload_too_large": "The request is too large to send: {message}",
    "rate_limited": "Too many requests at once. Wait a moment, then try again.",
    "quota_exceeded": (
        "You have used up your quota for now: {message} Ask your teacher if you need more."
    ),
    "budget_exceeded": (
        "The spending budget is used up: {message} Your teacher can tell you when it resets."
    ),
    "queue_timeout": (
        "The classroom is very busy and your request waited too long in the queue. "
        "Try again in a minute."
    ),
    "provider_rate_limited": (
        "The AI provider behind {model} is limiting requests right now. Wait a moment, "
        "then try again."
    ),
    "content_blocked": "The AI provider refused this content: {message}",
    "no_key_available": (
        "No API key for {model} is free right now. Try again in a minute, or use a "
        "`mock/` model in the meantime."
    ),
}
_PROVIDER_FALLBACK = (
    "The AI provider behind {model} could not answer: {message} Try again shortly, or use "
    "a `mock/` model in the meantime."
)
_GENERIC = "The classroom gateway refused the request: {message}"


class GatewayError(Exception):
    """A call to the classroom gateway failed; ``explain()`` says why, in words."""

    def __init__(
        self,
        message: str,
        *,
        code: str,
        status: int | None = None,
        model: str | None = None,
        url: str | None = None,
        retry_after: float | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.model = model
        self.url = url
        self.retry_after = retry_after
        self.details = details or {}

    def explain(self, available_models: Iterable[str] | None = None) -> str:
        """What went wrong and what to do, for a student.

        With ``available_models`` the explanation of an unknown or refused model
        lists the models that can be used instead.
        """
        template = _EXPLANATIONS.get(self.code)
        if template is None:
            template = _PROVIDER_FALLBACK if self.code.startswith("provider_") else _GENERIC
        text = template.format(
            message=_sentence(self.message),
            model=f"'{self.model}'" if self.model else "this model",
            status=self.status if self.status is not None else "?",
            at_url=f" at {self.url}" if self.url else "",
            restart=RESTART_HINT,
            pick=PICK_MODEL_HINT,
        )
        if available_models is not None and self.code in {
                "model_not_found", "model_not_allowed", "model_unpriced"}:
            names = ", ".join(available_models)
            text += f" Models you can use: {names}." if names else ""
        return text

    def __str__(self) -> str:
        return self.explain()

    def __repr__(self) -> str:
        return f"GatewayError(code={self.code!r}, status={self.status!r}, message={self.message!r})"

    def _render_traceback_(self) -> list[str]:
        # IPython shows this instead of a long traceback: a student needs the words,
        # not the frames inside httpx.
        return [f"GatewayError [{self.code}]: {self.explain()}"]


def _sentence(text: str) -> str:
    text = text.strip()
    if text and text[-1] not in ".!?":
        text += "."
    return text
