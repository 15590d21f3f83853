"""'Show code': the exact call a Playground run made, as Python, JavaScript and cURL.

Each snippet uses the provider's official SDK (``openai``, ``anthropic``,
``google-genai`` and their JavaScript twins) or its own REST format, and reads
the address and key from the environment variables the classroom sets in
every lab, so it runs as it is in a cell or a terminal, and no token is ever
written into a notebook.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ._catalog import provider_of

LANGUAGES = ("python", "javascript", "curl")
_GOOGLE_NAMES = {
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "max_tokens": "max_output_tokens",
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
}
_GOOGLE_REST = {
    "temperature": "temperature",
    "top_p": "topP",
    "top_k": "topK",
    "max_tokens": "maxOutputTokens",
    "presence_penalty": "presencePenalty",
    "frequency_penalty": "frequencyPenalty",
}


def code_for(
    language: str, model: str, system: str, prompt: str, params: Mapping[str, Any]
) -> str:
    """The call as ``language`` (python, javascript, curl) for ``model``'s provider."""
    provider = provider_of(model)
    family = provider if provider in ("anthropic", "google") else "openai"
    builder = _BUILDERS[(language, family)]
    return builder(model, system, prompt, {k: v for k, v in params.items() if v is not None})


def _messages(system: str, prompt: str) -> list[dict[str, str]]:
    out = [{"role": "system", "content": system}] if system.strip() else []
    return out + [{"role": "user", "content": prompt}]


def _py(value: Any) -> str:
    return repr(value)


def _js(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _shell_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


# -- OpenAI (and the practice models, which speak its format) ---------------------------

_OPENAI_NATIVE = {"temperature", "top_p", "max_tokens", "presence_penalty", "frequency_penalty"}


def _python_openai(model: str, system: str, prompt: str, params: dict[str, Any]) -> str:
    lines = [
        "from openai import OpenAI",
        "",
        "client = OpenAI()  # reads OPENAI_BASE_URL and OPENAI_API_KEY, set by the classroom",
        "",
        "response = client.chat.completions.create(",
        f"    model={_py(model)},",
        "    messages=[",
    ]
    lines += [f"        {_py(m)}," for m in _messages(system, prompt)]
    lines.append("    ],")
    extra = {k: v for k, v in params.items() if k not in _OPENAI_NATIVE}
    lines += [f"    {k}={_py(v)}," for k, v in params.items() if k in _OPENAI_NATIVE]
    if extra:
        lines.append(f"    extra_body={_py(extra)},  # not an OpenAI parameter: sent as is")
    lines += [")", "print(response.choices[0].message.content)", "print(response.usage)"]
    return "\n".join(lines)


def _javascript_openai(model: str, system: str, prompt: str, params: dict[str, Any]) -> str:
    body = {"model": model, "messages": _messages(system, prompt), **params}
    return "\n".join([
        'import OpenAI from "openai";',
        "",
        "// reads OPENAI_BASE_URL and OPENAI_API_KEY, set by the classroom",
        "const client = new OpenAI();",
        "",
        f"const response = await client.chat.completions.create({_indent_json(body)});",
        "console.log(response.choices[0].message.content);",
        "console.log(response.usage);",
    ])


def _curl_openai(model: str, system: str, prompt: str, params: dict[str, Any]) -> str:
    body = {"model": model, "messages": _messages(system, prompt), **params}
    return "\n".join([
        'curl "$OPENAI_BASE_URL/chat/completions" \\',
        '  -H "Authorization: Bearer $OPENAI_API_KEY" \\',
        '  -H "Content-Type: application/json" \\',
        f"  -d {_shell_quote(json.dumps(body, ensure_ascii=False, indent=2))}",
    ])


# -- Anthropic -----------------------------------------------------------------------------

def _anthropic_body(model: str, system: str, prompt: str, params: dict[str, Any]
                    ) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "max_tokens": params.get("max_tokens", 1024)}
    if system.strip():
        body["system"] = system
    body["messages"] = [{"role": "user", "content": prompt}]
    for name in ("temperature", "top_p", "top_k"):
        if name in params:
            body[name] = params[name]
    return body


def _python_anthropic(model: str, system: str, prompt: str, params: dict[str, Any]) -> str:
    body = _anthropic_body(model, system, prompt, params)
    # Recent versions of the anthropic library have no arguments for the sampling
    # parameters; the Messages API still takes them, so they go in extra_body.
    sampling = {k: body.pop(k) for k in ("temperature", "top_p", "top_k") if k in body}
    lines = [
        "import anthropic",
        "",
        "client = anthropic.Anthropic()  # reads ANTHROPIC_BASE_URL and ANTHROPIC_API_KEY",
        "",
        "message = client.messages.create(",
    ]
    lines += [f"    {k}={_py(v)}," for k, v in body.items()]
    if sampling:
        lines.append(f"    extra_body={_py(sampling)},  # sampling parameters, sent as they are")
    lines += [")", "print(message.content[0].text)", "print(message.usage)"]
    return "\n".join(lines)


def _javascript_anthropic(model: str, system: str, prompt: str, params: dict[str, Any]) -> str:
    body = _anthropic_body(model, system, prompt, params)
    return "\n".join([
        'import Anthropic from "@anthropic-ai/sdk";',
        "",
        "// reads ANTHROPIC_BASE_URL and ANTHROPIC_API_KEY, set by the classroom",
        "const client = new Anthropic();",
        "",
        f"const message = await client.messages.create({_indent_json(body)});",
        "console.log(message.content[0].text);",
        "console.log(message.usage);",
    ])


def _curl_anthropic(model: str, system: str, prompt: str, params: dict[str, Any]) -> str:
    body = _anthropic_body(model, system, prompt, params)
    return "\n".join([
        'curl "$ANTHROPIC_BASE_URL/v1/messages" \\',
        '  -H "x-api-key: $ANTHROPIC_API_KEY" \\',
        '  -H "anthropic-version: 2023-06-01" \\',
        '  -H "content-type: application/json" \\',
        f"  -d {_shell_quote(json.dumps(body, ensure_ascii=False, indent=2))}",
    ])


# -- Google Gemini -------------------------------------------------------------------------

def _python_google(model: str, system: str, prompt: str, params: dict[str, Any]) -> str:
    config = {_GOOGLE_NAMES[k]: v for k, v in params.items() if k in _GOOGLE_NAMES}
    lines = [
        "from google import genai",
        "from google.genai import types",
        "",
        "client = genai.Client()  # reads GOOGLE_GEMINI_BASE_URL and GEMINI_API_KEY",
        "",
        "response = client.models.generate_content(",
        f"    model={_py(model)},",
        f"    contents={_py(prompt)},",
        "    config=types.GenerateContentConfig(",
    ]
    if system.strip():
        lines.append(f"        system_instruction={_py(system)},")
    lines += [f"        {k}={_py(v)}," for k, v in config.items()]
    lines += ["    ),", ")", "print(response.text)", "print(response.usage_metadata)"]
    return "\n".join(lines)


def _google_rest_body(system: str, prompt: str, params: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if system.strip():
        body["systemInstruction"] = {"parts": [{"text": system}]}
    body["contents"] = [{"role": "user", "parts": [{"text": prompt}]}]
    config = {_GOOGLE_REST[k]: v for k, v in params.items() if k in _GOOGLE_REST}
    if config:
        body["generationConfig"] = config
    return body


def _javascript_google(model: str, system: str, prompt: str, params: dict[str, Any]) -> str:
    config: dict[str, Any] = {}
    if system.strip():
        config["systemInstruction"] = system
    config.update({_GOOGLE_REST[k]: v for k, v in params.items() if k in _GOOGLE_REST})
    request = {"model": model, "contents": prompt, "config": config}
    return "\n".join([
        'import { GoogleGenAI } from "@google/genai";',
        "",
        "const ai = new GoogleGenAI({",
        "  apiKey: process.env.GEMINI_API_KEY,",
        "  httpOptions: { baseUrl: process.env.GOOGLE_GEMINI_BASE_URL },",
        "});",
        "",
        f"const response = await ai.models.generateContent({_indent_json(request)});",
        "console.log(response.text);",
        "console.log(response.usageMetadata);",
    ])


def _curl_google(model: str, system: str, prompt: str, params: dict[str, Any]) -> str:
    body = _google_rest_body(system, prompt, params)
    return "\n".join([
        f'curl "$GOOGLE_GEMINI_BASE_URL/v1beta/models/{model}:generateContent" \\',
        '  -H "x-goog-api-key: $GEMINI_API_KEY" \\',
        '  -H "Content-Type: application/json" \\',
        f"  -d {_shell_quote(json.dumps(body, ensure_ascii=False, indent=2))}",
    ])


def _indent_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2)


_BUILDERS = {
    ("python", "openai"): _python_openai,
    ("javascript", "openai"): _javascript_openai,
    ("curl", "openai"): _curl_openai,
    ("python", "anthropic"): _python_anthropic,
    ("javascript", "anthropic"): _javascript_anthropic,
    ("curl", "anthropic"): _curl_anthropic,
    ("python", "google"): _python_google,
    ("javascript", "google"): _javascript_google,
    ("curl", "google"): _curl_google,
}
