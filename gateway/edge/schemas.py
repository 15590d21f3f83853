"""Request bodies the gateway accepts, validated once at the edge.

Unknown fields are kept (``extra="allow"``) so that a provider's newer options
pass through to it, as an OpenAI-compatible proxy should.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal

import orjson
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from gateway.edge.images import check_base64_image, check_data_url, decode_base64
from gateway.errors import InvalidRequest

MAX_MESSAGES = 2_000


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = Field(default=None, max_length=64)

    @field_validator("content")
    @classmethod
    def _parts_have_type(cls, value: Any) -> Any:
        if isinstance(value, list):
            for index, part in enumerate(value):
                if not isinstance(part.get("type"), str):
                    raise ValueError(f"content part {index} needs a 'type' (text, image_url, ...)")
                if part["type"] == "image_url":
                    image = part.get("image_url")
                    url = image.get("url") if isinstance(image, dict) else image
                    if not isinstance(url, str) or not url:
                        raise ValueError(f"content part {index} needs image_url.url")
                    try:
                        check_data_url(url)
                    except ValueError as exc:
                        raise ValueError(f"content part {index}: {exc}") from None
        return value


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, max_length=200)
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    # Strict: the body goes to the provider as sent, and 512.0 is not a whole number to it.
    max_tokens: int | None = Field(default=None, ge=1, le=1_000_000, strict=True)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=1_000_000, strict=True)
    n: int | None = Field(default=None, ge=1, le=8, strict=True)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    seed: int | None = Field(default=None, strict=True)
    stop: str | list[str] | None = None
    user: str | None = Field(default=None, max_length=256)

    @property
    def output_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    @property
    def wants_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


def _is_branch(part: Any) -> bool:
    """A union member's tag in an error location (``str``, ``list[ChatMessage]``, ...),
    which names no field."""
    return isinstance(part, str) and (
        "[" in part or part in ("str", "int", "float", "bool", "list", "dict", "none")
        or part[:1].isupper())


def describe_errors(errors: Sequence[Any]) -> tuple[str, str | None]:
    """A sentence naming the most specific bad field (or query/path parameter) of a list of
    pydantic or FastAPI validation errors, and that field's dotted path."""
    if not errors:
        return "The request is not valid.", None
    first = max(errors, key=lambda e: len(e["loc"]))
    where = first["loc"][0] if first["loc"] else "body"
    kind = "parameter" if where in ("query", "path", "header") else "field"
    loc = [str(p) for p in first["loc"]
           if p not in ("body", "query", "path", "header") and not _is_branch(p)]
    field = ".".join(loc) or None
    message = str(first["msg"]).removeprefix("Value error, ")
    if first["type"] == "json_invalid":
        return "The request body is not valid JSON (or not UTF-8 text).", None
    if field is None and where == "body":
        if first["type"] == "missing":
            return "The request body is empty; send a JSON object.", None
        if first["type"] in ("model_attributes_type", "dict_type", "model_type"):
            return ("The request body must be a JSON object, sent with Content-Type: "
                    "application/json."), None
    if first["type"] == "missing":
        return f"The {kind} '{field}' is required.", field
    if first["type"] == "extra_forbidden":
        return f"The {kind} '{field}' is not one this request accepts (unknown field).", field
    if field:
        return f"The {kind} '{field}' is not valid: {message}.", field
    return f"The request body is not valid: {message}.", field


def describe_validation_error(error: ValidationError) -> tuple[str, str | None]:
    """:func:`describe_errors` of a pydantic :class:`ValidationError`."""
    return describe_errors(error.errors())


JSON_MEDIA_TYPE = re.compile(r"^application/([\w.-]+\+)?json$", re.IGNORECASE)


def check_json_content_type(content_type: str | None) -> None:
    """A body declared as something other than JSON is refused, not guessed at (no
    Content-Type at all is accepted: it is what a bare ``curl --data-binary`` sends)."""
    if content_type is None:
        return
    media_type = content_type.split(";", 1)[0].strip()
    if not JSON_MEDIA_TYPE.match(media_type):
        raise InvalidRequest(
            f"The request body was sent as {media_type or 'an empty Content-Type'!r}; send "
            "JSON with the header Content-Type: application/json.")


def load_object(raw: bytes, content_type: str | None = None) -> dict[str, Any]:
    """A JSON object from a request body, or :class:`InvalidRequest` in words."""
    check_json_content_type(content_type)
    if not raw.strip():
        raise InvalidRequest("The request body is empty; send a JSON object.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequest("The request body is not valid UTF-8 text.") from exc
    try:
        data = orjson.loads(text)  # a few times faster than json; the same objects
    except ValueError as exc:
        if "depth limit" in str(exc):
            raise InvalidRequest("The request body is nested too deeply.") from exc
        raise InvalidRequest(f"The request body is not valid JSON: {exc}.") from exc
    if not isinstance(data, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    return data


def validate(data: dict[str, Any], model: type[BaseModel]) -> Any:
    """Validate a parsed body, raising :class:`InvalidRequest` naming the first bad field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        message, field = describe_validation_error(exc)
        raise InvalidRequest(message, param=field) from exc
    except RecursionError as exc:
        raise InvalidRequest("The request body is nested too deeply.") from exc


def openapi_body(model: type[BaseModel] | dict[str, Any],
                 media_type: str = "application/json") -> dict[str, Any]:
    """``openapi_extra`` describing the body of an operation that reads its body itself (so
    that a bad one is refused in words, with a history row). Pydantic's ``$defs`` are
    inlined: the OpenAPI document has no ``#/$defs`` for them to point at."""
    schema = model if isinstance(model, dict) else model.model_json_schema()
    defs = schema.get("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return inline(defs[ref.removeprefix("#/$defs/")])
            return {k: inline(v) for k, v in node.items() if k != "$defs"}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    return {"requestBody": {"required": True,
                            "content": {media_type: {"schema": inline(schema)}}}}


def parse_body(raw: bytes, model: type[BaseModel], content_type: str | None = None) -> Any:
    """Parse and validate a JSON body, raising :class:`InvalidRequest` in words."""
    return validate(load_object(raw, content_type), model)


def last_user_text(messages: list[ChatMessage]) -> str:
    for message in reversed(messages):
        if message.role == "user":
            return content_text(message.content)
    return ""


def content_text(content: str | list[dict[str, Any]] | None) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    pieces = []
    for part in content:
        if part.get("type") == "text":
            pieces.append(str(part.get("text", "")))
        elif part.get("type") in ("image_url", "input_image", "image"):
            pieces.append("[image]")
    return " ".join(pieces)


# -- media ------------------------------------------------------------------------------------


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, max_length=200)
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: int | None = Field(default=None, ge=1, le=4096)
    user: str | None = Field(default=None, max_length=256)

    @field_validator("input")
    @classmethod
    def _not_empty(cls, value: Any) -> Any:
        if value == "" or value == []:
            raise ValueError("input must not be empty")
        if isinstance(value, list) and len(value) > 2048:
            raise ValueError("at most 2048 inputs per request")
        return value

    def texts(self) -> list[str]:
        if isinstance(self.input, str):
            return [self.input]
        if self.input and isinstance(self.input[0], int):
            return [" ".join(str(t) for t in self.input)]
        return [t if isinstance(t, str) else " ".join(str(i) for i in t)  # type: ignore[union-attr]
                for t in self.input]


class ImageRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = Field(default="mock/image", min_length=1, max_length=200)
    prompt: str = Field(min_length=1, max_length=32_000)
    n: int = Field(default=1, ge=1, le=10)
    size: str | None = Field(default=None, max_length=20)
    quality: str | None = Field(default=None, max_length=20)
    response_format: Literal["url", "b64_json"] | None = None
    style: str | None = Field(default=None, max_length=40)
    session_id: str | None = Field(default=None, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")
    user: str | None = Field(default=None, max_length=256)


class SpeechRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, max_length=200)
    input: str = Field(min_length=1, max_length=10_000)
    voice: str | None = Field(default=None, max_length=100)
    response_format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] = "mp3"
    speed: float | None = Field(default=None, ge=0.25, le=4.0)
    instructions: str | None = Field(default=None, max_length=4000)
    voice_settings: dict[str, Any] | None = None


class JobRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["video", "midjourney", "music"]
    model: str = Field(min_length=1, max_length=200)
    prompt: str = Field(min_length=1, max_length=4000)
    params: dict[str, Any] = Field(default_factory=dict)


# -- the vendor-native faces ------------------------------------------------------------------
# The shapes the faces rely on (to translate a body, count its tokens, check its images);
# every other field passes through to the vendor untouched.

OUTPUT_LIMIT = 1_000_000


class AnthropicSource(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str = Field(description="base64, url, file, ...")
    media_type: str | None = None
    data: str | None = None
    url: str | None = None

    @model_validator(mode="after")
    def _base64_image(self) -> AnthropicSource:
        if self.type == "base64":
            if not isinstance(self.data, str):
                raise ValueError("a base64 source needs 'data'")
            if (self.media_type or "image/").startswith("image/"):
                check_base64_image(self.data)
        return self


class AnthropicPart(BaseModel):
    """A block inside a tool result, or a system block."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(min_length=1, max_length=64)
    text: str | None = None
    source: AnthropicSource | None = None

    @model_validator(mode="after")
    def _needs(self) -> AnthropicPart:
        if self.type == "text" and not isinstance(self.text, str):
            raise ValueError("a text block needs 'text'")
        if self.type == "image" and self.source is None:
            raise ValueError("an image block needs a 'source'")
        return self


class AnthropicBlock(AnthropicPart):
    content: str | list[AnthropicPart] | None = None  # tool_result
    input: dict[str, Any] | None = None  # tool_use


class AnthropicMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["user", "assistant"]
    content: str | list[AnthropicBlock]


class AnthropicMessagesRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, max_length=200)
    messages: list[AnthropicMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    max_tokens: int = Field(ge=1, le=OUTPUT_LIMIT, strict=True)
    system: str | list[AnthropicPart] | None = None
    stream: bool = Field(default=False, strict=True)
    temperature: float | None = Field(default=None, ge=0, le=1)
    top_p: float | None = Field(default=None, ge=0, le=1)
    stop_sequences: list[str] | None = None
    tools: list[dict[str, Any]] | None = None


class GeminiBlob(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    mime_type: str = Field(validation_alias=AliasChoices("mimeType", "mime_type"),
                           serialization_alias="mimeType")
    data: str = Field(description="Base64 bytes.")

    @model_validator(mode="after")
    def _image(self) -> GeminiBlob:
        if self.mime_type.startswith("image/"):
            check_base64_image(self.data)
        else:
            decode_base64(self.data)
        return self


class GeminiPart(BaseModel):
    model_config = ConfigDict(extra="allow")

    text: str | None = None
    inline_data: GeminiBlob | None = Field(
        default=None, validation_alias=AliasChoices("inlineData", "inline_data"),
        serialization_alias="inlineData")


class GeminiContent(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str | None = Field(default="user", max_length=20, description="user or model")
    parts: list[GeminiPart] = Field(min_length=1)


class GeminiConfig(BaseModel):
    model_config = ConfigDict(extra="allow")

    max_output_tokens: int | None = Field(
        default=None, ge=1, le=OUTPUT_LIMIT, strict=True,
        validation_alias=AliasChoices("maxOutputTokens", "max_output_tokens"),
        serialization_alias="maxOutputTokens")
    temperature: float | None = Field(default=None, ge=0, le=2)


class GeminiRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    contents: str | list[GeminiContent] = Field(min_length=1)
    system_instruction: str | GeminiContent | None = Field(
        default=None, validation_alias=AliasChoices("systemInstruction", "system_instruction"),
        serialization_alias="systemInstruction")
    generation_config: GeminiConfig | None = Field(
        default=None, validation_alias=AliasChoices("generationConfig", "generation_config"),
        serialization_alias="generationConfig")


IMAGE_EDIT_FORM: dict[str, Any] = {
    "type": "object",
    "required": ["image", "prompt"],
    "properties": {
        "image": {"type": "string", "format": "binary", "description": "A PNG, JPEG or WebP."},
        "prompt": {"type": "string", "minLength": 1, "maxLength": 32_000},
        "model": {"type": "string", "maxLength": 200},
        "mask": {"type": "string", "format": "binary"},
        "n": {"type": "integer", "minimum": 1, "maximum": 10},
        "size": {"type": "string", "maxLength": 20},
        "session_id": {"type": "string", "maxLength": 64},
    },
}
