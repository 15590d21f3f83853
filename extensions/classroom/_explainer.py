"""The error explainer: what an error means and what to do next, for a student.

Every error a widget shows goes through :func:`explain`, which looks the
error's stable ``code`` up in a local table (no network needed: the
explanation must work exactly when things are broken). :func:`explain_more`
optionally asks a cheap model, through the gateway, to say more about it.

    >>> import classroom
    >>> classroom.explain("rate_limited").title
    'Too many requests (HTTP 429)'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.safehtml import html as safe_html

from ._exceptions import GatewayError

if TYPE_CHECKING:
    from ._client import GatewayClient

_BACKOFF = (
    "In code, retry with exponential backoff: wait 1 s, then 2 s, 4 s, 8 s… (plus a little "
    "random jitter), and give up after a few tries. If the error says how long to wait "
    "(Retry-After), wait at least that long."
)

#: code → (title, what it means, what to do)
KNOWN_ERRORS: dict[str, tuple[str, str, str]] = {
    "rate_limited": (
        "Too many requests (HTTP 429)",
        "A rate limit counts how many requests you may send per minute. You sent more than "
        "that, so the gateway asked you to slow down. Nothing is broken.",
        "Wait a little, then try again. " + _BACKOFF,
    ),
    "provider_rate_limited": (
        "The provider is rate limiting (HTTP 429)",
        "The AI company behind this model limits how many requests the classroom's key may "
        "send per minute, and that limit is reached right now (the whole class shares it).",
        "Wait a little, then try again, or use another model meanwhile. " + _BACKOFF,
    ),
    "queue_timeout": (
        "Waited too long in the queue (HTTP 429)",
        "The classroom queues requests when everyone calls at once, so that each student gets a "
        "fair turn, and your own calls beyond your limit at once wait for your earlier ones. "
        "Yours waited longer than the limit.",
        "Try again in a minute. " + _BACKOFF,
    ),
    "quota_exceeded": (
        "Your quota is used up (HTTP 429)",
        "Your school gives each student a number of requests and tokens per day. You have "
        "used today's share.",
        "Practise with the free mock/ models (classroom.use_mock(True)) until the quota "
        "resets, or ask your teacher for more. 'My usage' shows your numbers.",
    ),
    "budget_exceeded": (
        "The budget is spent (HTTP 429)",
        "Real models cost money for every token. The spending limit for this month (yours or "
        "your school's) is reached.",
        "Use the free mock/ models until the budget resets; your teacher can tell you when. "
        "Shorter prompts and smaller models spend less.",
    ),
    "content_blocked": (
        "Blocked by the provider's safety filter",
        "The AI provider checks requests and answers for harmful content, and it refused "
        "this one. Filters sometimes block harmless requests too.",
        "Rephrase the request. If you think it was harmless, show your teacher: they can "
        "see why it was blocked.",
    ),
    "invalid_request": (
        "A parameter is not valid (HTTP 400)",
        "The request was understood, but something in it is not allowed: a value out of "
        "range (temperature above 2, max_tokens below 1…), a wrong type, or a missing field. "
        "The message names the field.",
        "Check the named parameter against the allowed range, fix it, and send again.",
    ),
    "context_length_exceeded": (
        "Too long for the model (context length)",
        "A model can read only a fixed number of tokens at once (its context window), and "
        "that includes the whole conversation you send plus the reply it writes.",
        "Start a new conversation, shorten the messages or documents you send, lower "
        "max_tokens, or pick a model with a larger context window.",
    ),
    "invalid_token": (
        "Your classroom token was not accepted (HTTP 401)",
        "Every call carries your classroom token instead of a real API key. This one is "
        "missing, expired or wrong.",
        "Restart your server from the hub (File → Hub Control Panel → Stop My Server, then "
        "Start My Server). Never paste tokens or keys into a notebook you share.",
    ),
    "provider_auth_failed": (
        "The classroom's key was refused by the provider",
        "The gateway called the provider with one of the classroom's keys, and the provider "
        "did not accept it (revoked, expired or out of credit). It is not your fault.",
        "Tell your teacher; use a mock/ model or another provider in the meantime.",
    ),
    "no_key_available": (
        "No provider key is free",
        "The classroom holds the real API keys. For this model there is none right now: all "
        "are busy, or the classroom has none for this provider.",
        "Try again in a minute, choose another model, or practise with a mock/ model.",
    ),
    "model_not_allowed": (
        "Model not enabled for your school (HTTP 403)",
        "Your school decides which models students may use.",
        "Pick a model from the list the widget offers, or ask your teacher.",
    ),
    "model_not_found": (
        "Unknown model (HTTP 404)",
        "No model has this name in the classroom; it may be misspelled.",
        "Copy a name from classroom.client.models() or from a widget's model list.",
    ),
    "model_unpriced": (
        "Model without a price (HTTP 403)",
        "You have a spending budget, and this model has no price in the classroom, so what it "
        "costs could not be counted against your budget.",
        "Choose a model from the widget's list (they all have prices), or ask your teacher to "
        "have an administrator price this one.",
    ),
    "invalid_tool_schema": (
        "A tool definition is not valid (HTTP 400)",
        "A tool you offered the model (in tools=[...]) is not written the way the API "
        "expects: each tool needs a name and a JSON Schema describing its parameters.",
        "Read the error's message: it names the field. Compare your tool with the one in "
        "the tools lesson.",
    ),
    "mcp_server_not_allowed": (
        "MCP server not allowed (HTTP 403)",
        "The classroom connects only to MCP servers an administrator has allowed, so that "
        "nobody can make it reach into private networks.",
        "Use the classroom's own MCP server (the connection named classroom), or ask your "
        "teacher to have this server allowed.",
    ),
    "mcp_server_error": (
        "The MCP server failed (HTTP 502)",
        "The MCP server behind this connection answered with an error, or could not be "
        "reached.",
        "Check the connection's address, try again later, or use the classroom's own MCP "
        "server meanwhile.",
    ),
    "mcp_timeout": (
        "The MCP server did not answer in time (HTTP 504)",
        "A tool on the MCP server took longer than the classroom waits for it.",
        "Try again. If it keeps happening, the tool is too slow or its server is down.",
    ),
    "pool_unavailable": (
        "The classroom's key pool is unavailable (HTTP 503)",
        "The gateway keeps the limits of its keys in a shared store that cannot be reached "
        "right now, and it never sends a call whose limits it cannot count.",
        "Wait a minute and try again; it recovers by itself. Tell your teacher if it lasts.",
    ),
    "feature_disabled": (
        "Feature switched off (HTTP 403)",
        "Your school has not switched this feature on for your class.",
        "Ask your teacher if you need it.",
    ),
    "paused_by_teacher": (
        "Paused by your teacher (HTTP 403)",
        "Your teacher has paused AI calls, for example to talk to the class.",
        "Wait until your teacher resumes; then run the cell again.",
    ),
    "forbidden": (
        "Not allowed (HTTP 403)",
        "Your account may not do this.",
        "Ask your teacher if you think you should be able to.",
    ),
    "not_found": (
        "Not found (HTTP 404)",
        "The thing you asked for does not exist, or belongs to someone else.",
        "Check the id or the address.",
    ),
    "config_invalid": (
        "A configuration file has a mistake (HTTP 422)",
        "A reload found a mistake in a school's file or the keys file; the classroom keeps "
        "running with the configuration it had.",
        "Fix the file at the line and field the message names, then reload again.",
    ),
    "payload_too_large": (
        "Too large to send (HTTP 413)",
        "The request (usually an image or a long text) is bigger than the gateway accepts.",
        "Send a smaller image or a shorter text.",
    ),
    "provider_unavailable": (
        "Provider unavailable (HTTP 503)",
        "The AI company's service is down or overloaded.",
        "Try again in a few minutes, or use another provider.",
    ),
    "provider_timeout": (
        "The provider took too long (HTTP 504)",
        "The model did not answer within the time limit; long replies or busy services cause it.",
        "Try again, ask for a shorter answer (lower max_tokens), or use a faster model.",
    ),
    "provider_error": (
        "The provider failed",
        "Something went wrong on the AI company's side.",
        "Try again shortly, or use another model.",
    ),
    "gateway_unreachable": (
        "Cannot reach the classroom gateway",
        "Your notebook could not connect to the classroom's gateway, which every call goes "
        "through.",
        "Check your network; if it keeps happening, restart your server from the hub.",
    ),
    "gateway_timeout": (
        "The gateway did not answer in time",
        "The connection worked but no answer came back in time.",
        "Try again in a moment.",
    ),
    "gateway_unavailable": (
        "The gateway is unavailable",
        "The classroom's gateway (or the hub in front of it) is restarting or overloaded.",
        "Try again in a minute; tell your teacher if it lasts.",
    ),
    "invalid_input": (
        "Something is missing",
        "The widget needs more from you before it can call a model.",
        "Fill in what the message asks for, then press the button again.",
    ),
    "not_configured": (
        "Not connected to a classroom",
        "This kernel does not know the gateway's address or your token.",
        "Inside the classroom this is automatic; elsewhere call "
        "classroom.configure(url, token).",
    ),
}
_UNKNOWN = (
    "Something went wrong",
    "This error is not in the explainer's table.",
    "Read the message; try again; if it keeps happening, show it to your teacher.",
)


@dataclass(frozen=True)
class Explanation:
    code: str
    title: str
    message: str
    meaning: str
    todo: str

    def __str__(self) -> str:
        return (
            f"{self.title}\n{self.message}\n"
            f"What it means: {self.meaning}\nWhat to do: {self.todo}"
        )

    def html(self) -> str:
        return safe_html(
            "<b>{}</b> <code>{}</code><br>{}"
            '<div style="margin-top:4px"><b>What it means:</b> {}</div>'
            "<div><b>What to do:</b> {}</div>",
            self.title, self.code, self.message, self.meaning, self.todo,
        )


def explain(error: BaseException | str) -> Explanation:
    """What ``error`` (a :class:`GatewayError`, another exception, or a code) means."""
    if isinstance(error, GatewayError):
        code, message = error.code, error.explain()
    elif isinstance(error, str):
        code, message = error, ""
    elif isinstance(error, ValueError):
        code, message = "invalid_input", str(error)
    else:
        code = "widget_error"
        message = f"Something went wrong inside the widget ({type(error).__name__}: {error})."
    title, meaning, todo = KNOWN_ERRORS.get(code, _UNKNOWN)
    if not message and code in KNOWN_ERRORS:
        message = title + "."
    return Explanation(code, title, message, meaning, todo)


def explain_more(
    error: BaseException | str, client: GatewayClient, model: str | None = None
) -> str:
    """Ask a cheap model (through the gateway) to explain ``error`` in more depth."""
    from ._mock import mock_enabled

    if model is None:
        catalog = client.catalog()
        real = [m for m in catalog.ids("chat") if not m.startswith("mock/")]
        cheapest = catalog.cheapest("chat") if real else None
        model = "mock/lorem" if mock_enabled() or cheapest in (None, "mock/echo", "mock/lorem") \
            else cheapest
    known = explain(error)
    prompt = (
        "I am a student learning to use AI APIs from a Jupyter notebook. A call failed with "
        f"the error code '{known.code}' and this message: {known.message!r}. Explain in three "
        "short paragraphs what this error means, why it happens, and how a program should "
        "handle it (with a short Python example if it helps)."
    )
    reply = client.chat(
        [
            {"role": "system", "content": "You are a patient programming tutor."},
            {"role": "user", "content": prompt},
        ],
        model=model,
        max_tokens=400,
    )
    return reply.text
