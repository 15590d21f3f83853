"""Tool (function) definitions as each face accepts them, checked before any vendor sees them.

A tool a model may call is a name, a description and a JSON Schema of its
arguments. Each vendor spells it its own way (OpenAI ``tools[].function.parameters``,
Anthropic ``tools[].input_schema``, Gemini ``tools[].functionDeclarations[]``);
:mod:`gateway.providers.anthropic_format` and :mod:`gateway.providers.google_format`
translate between them. What is checked here holds for every face, so a student
gets the same :class:`~gateway.errors.InvalidToolSchema` (400, ``invalid_tool_schema``,
naming the tool and the field) whichever SDK sent the mistake, instead of a
vendor's error or a model that silently ignores the tool.
"""

from __future__ import annotations

import re
from typing import Any

from jsonschema import SchemaError
from jsonschema.validators import validator_for

from gateway.errors import InvalidToolSchema

NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # OpenAI's and Anthropic's rule
GEMINI_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$")
MAX_TOOLS = 128


def _name(name: Any, where: str, pattern: re.Pattern[str] = NAME) -> str:
    if not isinstance(name, str) or not pattern.match(name):
        raise InvalidToolSchema(
            f"The tool name {name!r} at '{where}' is not valid: use 1 to 64 letters, digits, "
            "underscores or dashes (no spaces).", param=where)
    return name


def check_schema(schema: Any, tool: str, where: str) -> None:
    """A tool's arguments schema: a JSON Schema whose top level is an object."""
    if not isinstance(schema, dict):
        raise InvalidToolSchema(
            f"The tool '{tool}' has arguments that are not a JSON Schema object at '{where}' "
            "(write {\"type\": \"object\", \"properties\": {...}}).", param=where)
    kind = schema.get("type")
    if str(kind).lower() != "object":
        raise InvalidToolSchema(
            f"The tool '{tool}' must take an object of named arguments: '{where}.type' is "
            f"{kind!r}, not \"object\".", param=f"{where}.type")
    try:
        validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        path = ".".join(str(p) for p in exc.path)
        raise InvalidToolSchema(
            f"The tool '{tool}' has an arguments schema that is not valid JSON Schema"
            f"{' at ' + repr(path) if path else ''}: {exc.message}.", param=where) from None
    except RecursionError:
        raise InvalidToolSchema(f"The tool '{tool}' has a schema nested too deeply.",
                                param=where) from None


def _listed(tools: Any, where: str) -> list[Any]:
    if not isinstance(tools, list):
        raise InvalidToolSchema(f"'{where}' must be a list of tools.", param=where)
    if len(tools) > MAX_TOOLS:
        raise InvalidToolSchema(f"At most {MAX_TOOLS} tools per request.", param=where)
    return tools


def check_openai(body: dict[str, Any]) -> list[str]:
    """``tools`` and ``tool_choice`` of an OpenAI chat body; the function names offered."""
    if body.get("tools") is None:
        if isinstance(body.get("tool_choice"), dict) or body.get("tool_choice") == "required":
            raise InvalidToolSchema("'tool_choice' asks for a tool, but 'tools' offers none.",
                                    param="tool_choice")
        return []
    names: list[str] = []
    for index, tool in enumerate(_listed(body["tools"], "tools")):
        where = f"tools[{index}]"
        if not isinstance(tool, dict) or tool.get("type") not in ("function", "custom"):
            raise InvalidToolSchema(
                f"'{where}' must be {{\"type\": \"function\", \"function\": {{\"name\": ..., "
                "\"parameters\": {...}}}.", param=f"{where}.type")
        if tool["type"] == "custom":  # OpenAI's free-text tools: passed to OpenAI as they are
            names.append(_name((tool.get("custom") or {}).get("name"), f"{where}.custom.name"))
            continue
        function = tool.get("function")
        if not isinstance(function, dict):
            raise InvalidToolSchema(f"'{where}.function' is required: an object with a 'name'.",
                                    param=f"{where}.function")
        name = _name(function.get("name"), f"{where}.function.name")
        if "description" in function and not isinstance(function["description"], str):
            raise InvalidToolSchema(f"The tool '{name}' has a description that is not text.",
                                    param=f"{where}.function.description")
        if "parameters" in function:
            check_schema(function["parameters"], name, f"{where}.function.parameters")
        if name in names:
            raise InvalidToolSchema(f"Two tools are named '{name}'; names must differ.",
                                    param=f"{where}.function.name")
        names.append(name)
    choice = body.get("tool_choice")
    if choice is not None and choice not in ("none", "auto", "required"):
        wanted = ((choice.get("function") or {}).get("name")
                  if isinstance(choice, dict) and choice.get("type") == "function" else None)
        if isinstance(choice, dict) and choice.get("type") == "allowed_tools":
            return names
        if wanted not in names:
            raise InvalidToolSchema(
                "'tool_choice' must be \"none\", \"auto\", \"required\" or {\"type\": "
                "\"function\", \"function\": {\"name\": <one of the tools>}}.",
                param="tool_choice")
    return names


def check_anthropic(body: dict[str, Any]) -> list[str]:
    """``tools`` and ``tool_choice`` of an Anthropic Messages body (server tools, with a
    dated ``type``, are Anthropic's own and pass as they are)."""
    names: list[str] = []
    for index, tool in enumerate(_listed(body.get("tools") or [], "tools")):
        where = f"tools[{index}]"
        if not isinstance(tool, dict):
            raise InvalidToolSchema(f"'{where}' must be an object with 'name' and "
                                    "'input_schema'.", param=where)
        name = _name(tool.get("name"), f"{where}.name")
        if tool.get("type") in (None, "custom"):
            if "input_schema" not in tool:
                raise InvalidToolSchema(f"The tool '{name}' needs an 'input_schema'.",
                                        param=f"{where}.input_schema")
            check_schema(tool["input_schema"], name, f"{where}.input_schema")
        names.append(name)
    choice = body.get("tool_choice")
    if choice is not None:
        kind = choice.get("type") if isinstance(choice, dict) else None
        if kind not in ("auto", "any", "tool", "none") or (
                kind == "tool" and choice.get("name") not in names):
            raise InvalidToolSchema(
                "'tool_choice' must be {\"type\": \"auto\"}, {\"type\": \"any\"}, {\"type\": "
                "\"none\"} or {\"type\": \"tool\", \"name\": <one of the tools>}.",
                param="tool_choice")
    return names


def openapi_to_json_schema(schema: Any) -> Any:
    """Gemini's ``parameters`` (an OpenAPI 3 subset, types often upper case: ``OBJECT``)
    as JSON Schema; ``nullable`` becomes a ``null`` type."""
    if isinstance(schema, list):
        return [openapi_to_json_schema(v) for v in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "type" and isinstance(value, str):
            out[key] = value.lower()
        elif key in ("properties", "$defs", "definitions") and isinstance(value, dict):
            out[key] = {k: openapi_to_json_schema(v) for k, v in value.items()}
        elif key in ("items", "anyOf", "oneOf", "allOf", "not"):
            out[key] = openapi_to_json_schema(value)
        elif key in ("nullable", "propertyOrdering"):
            continue
        else:
            out[key] = value
    if schema.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


def declarations(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Every ``functionDeclarations`` entry of a Gemini body's ``tools``."""
    found: list[dict[str, Any]] = []
    for tool in body.get("tools") or []:
        if isinstance(tool, dict):
            found.extend(tool.get("functionDeclarations") or tool.get("function_declarations")
                         or [])
    return found


def check_gemini(body: dict[str, Any]) -> list[str]:
    """``tools[].functionDeclarations`` and ``toolConfig`` of a Gemini body."""
    names: list[str] = []
    for index, tool in enumerate(_listed(body.get("tools") or [], "tools")):
        if not isinstance(tool, dict):
            raise InvalidToolSchema(f"'tools[{index}]' must be an object.", param=f"tools[{index}]")
        key = "functionDeclarations" if "functionDeclarations" in tool else \
            "function_declarations"
        for number, declaration in enumerate(_listed(tool.get(key) or [],
                                                     f"tools[{index}].{key}")):
            where = f"tools[{index}].{key}[{number}]"
            if not isinstance(declaration, dict):
                raise InvalidToolSchema(f"'{where}' must be an object with a 'name'.",
                                        param=where)
            name = _name(declaration.get("name"), f"{where}.name", GEMINI_NAME)
            for field in ("parametersJsonSchema", "parameters_json_schema", "parameters"):
                if field in declaration:
                    schema = declaration[field]
                    check_schema(openapi_to_json_schema(schema) if field == "parameters"
                                 else schema, name, f"{where}.{field}")
            names.append(name)
    config = body.get("toolConfig") or body.get("tool_config") or {}
    calling = (config.get("functionCallingConfig") or config.get("function_calling_config")
               or {}) if isinstance(config, dict) else None
    if not isinstance(calling, dict) or calling.get("mode", "AUTO") not in (
            "AUTO", "ANY", "NONE", "VALIDATED", "MODE_UNSPECIFIED"):
        raise InvalidToolSchema("'toolConfig.functionCallingConfig.mode' must be AUTO, ANY or "
                                "NONE.", param="toolConfig")
    for name in calling.get("allowedFunctionNames") or calling.get("allowed_function_names") \
            or []:
        if name not in names:
            raise InvalidToolSchema(f"'allowedFunctionNames' names '{name}', which no "
                                    "functionDeclarations entry declares.", param="toolConfig")
    return names
