"""How the ``mock`` models call tools: a fixed rule, so tool lessons run offline and the
same prompt always gives the same calls.

When a request offers ``tools`` (and ``tool_choice`` is not ``"none"``):

1. A conversation that ends with tool results is answered from them:
   ``The tool <name> said: <result>`` for each result, in order (no new call).
2. Otherwise the mock calls every offered tool whose name appears in the last user
   message (case ignored; ``get_time`` also matches "get time"), in the order they
   appear, as parallel calls; only the first with ``parallel_tool_calls: false``.
   ``tool_choice`` naming a function calls that one; ``"required"`` with no name in
   the prompt calls the first tool. A prompt naming no tool gets the usual answer.
3. Arguments come from the prompt and the tool's schema, property by property:
   ``name=value`` or ``name: value`` in the prompt (a value in quotes may hold spaces);
   else an ``enum`` value the prompt mentions; else, for a number or integer, the next
   number in the prompt; else, for the first required string, the first text in quotes,
   or what follows the tool's name (after a colon, if one follows it) up to the name of
   another offered tool, without trailing punctuation or "then"/"and". A required
   property with nothing to go on gets the schema's default, or its enum's first value,
   or an empty value of its type. Nothing is invented beyond that.

Call ids are derived from the conversation, so they are deterministic too.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from gateway.edge.schemas import ChatCompletionRequest, content_text, last_user_text

NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.])")
QUOTED = re.compile(r"\"([^\"]*)\"|'([^']*)'|“([^”]*)”")
EMPTY: dict[str, Any] = {"string": "", "integer": 0, "number": 0, "boolean": False,
                         "array": [], "object": {}, "null": None}


@dataclass
class MockCall:
    id: str
    name: str
    arguments: str  # JSON text, as OpenAI sends it

    def as_openai(self) -> dict[str, Any]:
        return {"id": self.id, "type": "function",
                "function": {"name": self.name, "arguments": self.arguments}}


def _kind(spec: dict[str, Any]) -> str:
    kind = spec.get("type", "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    return str(kind).lower()


def _coerce(value: str, kind: str) -> Any:
    try:
        if kind == "integer":
            return int(float(value))
        if kind == "number":
            return float(value) if "." in value else int(value)
    except ValueError:
        return value
    if kind == "boolean":
        return value.lower() in ("true", "yes", "1", "on")
    if kind in ("array", "object"):
        try:
            return json.loads(value)
        except ValueError:
            return [value] if kind == "array" else {}
    return value


#: A name starts where no word character is just before it.
NOT_AFTER_WORD = r"(?<![\w])"


def _named_value(prompt: str, name: str) -> str | None:
    found = re.search(NOT_AFTER_WORD + re.escape(name) + r"\s*[=:]\s*(\"[^\"]*\"|'[^']*'|[^\s,;]+)",
                      prompt, re.IGNORECASE)
    if not found:
        return None
    return found.group(1).strip("\"'")


def _mentions(prompt: str, name: str) -> int | None:
    """Where the prompt names a tool (its position), or None."""
    for spelling in {name, name.replace("_", " "), name.replace("-", " ")}:
        found = re.search(NOT_AFTER_WORD + re.escape(spelling) + r"(?![\w])", prompt,
                          re.IGNORECASE)
        if found:
            return found.start()
    return None


TRAILING = re.compile(r"(?:[\s,;.?!]|\b(?:then|and|also)\b)+$", re.IGNORECASE)


def arguments_for(prompt: str, tool: str, schema: dict[str, Any] | None,
                  others: tuple[str, ...] = ()) -> dict[str, Any]:
    """The arguments the mock gives ``tool`` for this prompt (the rule in the docstring);
    ``others``: the other tools offered, whose names end this one's text."""
    schema = schema or {}
    properties: dict[str, Any] = schema.get("properties") or {}
    required = [r for r in schema.get("required") or [] if isinstance(r, str)]
    numbers = iter(NUMBER.findall(prompt))
    arguments: dict[str, Any] = {}
    text_given = False
    for name, spec in properties.items():
        spec = spec if isinstance(spec, dict) else {}
        kind = _kind(spec)
        given = _named_value(prompt, name)
        if given is not None:
            arguments[name] = _coerce(given, kind)
            continue
        enum = spec.get("enum")
        if isinstance(enum, list):
            mentioned = [v for v in enum if isinstance(v, str) and _mentions(prompt, v) is not None]
            if mentioned:
                arguments[name] = mentioned[0]
                continue
        if kind in ("number", "integer"):
            number = next(numbers, None)
            if number is not None:
                arguments[name] = _coerce(number, kind)
                continue
        if kind == "string" and name in required and not text_given:
            text_given = True
            quoted = QUOTED.search(prompt)
            if quoted:
                arguments[name] = next(g for g in quoted.groups() if g is not None)
                continue
            where = _mentions(prompt, tool)
            rest = prompt[where + len(tool):] if where is not None else prompt
            rest = rest.split(":", 1)[1] if rest.lstrip().startswith(":") else rest
            ends = [at for other in others if (at := _mentions(rest, other)) is not None]
            rest = rest[:min(ends)] if ends else rest
            arguments[name] = TRAILING.sub("", rest).strip()
            continue
        if name in required:
            if "default" in spec:
                arguments[name] = spec["default"]
            elif isinstance(enum, list) and enum:
                arguments[name] = enum[0]
            else:
                arguments[name] = EMPTY.get(kind, "")
    return arguments


def _function_tools(request: ChatCompletionRequest) -> list[dict[str, Any]]:
    extra = request.model_extra or {}
    return [t["function"] for t in extra.get("tools") or []
            if isinstance(t, dict) and t.get("type") == "function"
            and isinstance(t.get("function"), dict)]


def tool_results_answer(request: ChatCompletionRequest) -> str | None:
    """The mock's answer to a conversation that ends with tool results (rule 1)."""
    names: dict[str, str] = {}
    for message in request.messages:
        for call in (message.model_extra or {}).get("tool_calls") or []:
            names[str(call.get("id"))] = (call.get("function") or {}).get("name", "tool")
    trailing: list[Any] = []
    for message in reversed(request.messages):
        if message.role not in ("tool", "function"):
            break
        trailing.insert(0, message)
    if not trailing:
        return None
    said = []
    for message in trailing:
        call_id = str((message.model_extra or {}).get("tool_call_id"))
        name = names.get(call_id, message.name or "tool")
        said.append(f"The tool {name} said: {content_text(message.content)}")
    return " ".join(said)


def planned_calls(request: ChatCompletionRequest) -> list[MockCall]:
    """The calls the mock makes for this request (rules 2 and 3); empty for none."""
    extra = request.model_extra or {}
    tools = _function_tools(request)
    choice = extra.get("tool_choice")
    if not tools or choice == "none" or tool_results_answer(request) is not None:
        return []
    prompt = last_user_text(request.messages)
    if isinstance(choice, dict) and choice.get("function"):
        wanted = choice["function"].get("name")
        chosen = [t for t in tools if t.get("name") == wanted]
    else:
        named = [(at, t) for t in tools
                 if (at := _mentions(prompt, str(t.get("name")))) is not None]
        chosen = [t for _, t in sorted(named, key=lambda pair: pair[0])]
        if not chosen and choice == "required":
            chosen = tools[:1]
    if extra.get("parallel_tool_calls") is False:
        chosen = chosen[:1]
    seed = hashlib.sha256("\n".join(
        f"{m.role}:{content_text(m.content)}" for m in request.messages).encode()).hexdigest()
    calls = []
    for index, tool in enumerate(chosen):
        name = str(tool.get("name"))
        others = tuple(str(t.get("name")) for t in tools if t is not tool)
        arguments = arguments_for(prompt, name, tool.get("parameters"), others)
        calls.append(MockCall(f"call_mock{index}{seed[:18]}", name,
                              json.dumps(arguments, ensure_ascii=False)))
    return calls
