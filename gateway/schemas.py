"""Request bodies the gateway accepts, validated once at the edge.

Unknown fields are kept (``extra="allow"``) so that a provider's newer options
pass through to it, as an OpenAI-compatible proxy should.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

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
    max_tokens: int | None = Field(default=None, ge=1, le=1_000_000)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=1_000_000)
    n: int | None = Field(default=None, ge=1, le=8)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    seed: int | None = None
    stop: str | list[str] | None = None
    user: str | None = Field(default=None, max_length=256)

    @property
    def output_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    @property
    def wants_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


def describe_validation_error(error: ValidationError) -> tuple[str, str | None]:
    """A sentence naming the first bad field, and that field's dotted path."""
    first = error.errors()[0]
    loc = [str(p) for p in first["loc"] if p not in ("body",)]
    field = ".".join(loc) or None
    message = first["msg"]
    if first["type"] == "missing":
        return f"The field '{field}' is required.", field
    if field:
        return f"The field '{field}' is not valid: {message}.", field
    return f"The request body is not valid: {message}.", field


def load_object(raw: bytes) -> dict[str, Any]:
    """A JSON object from a request body, or :class:`InvalidRequest` in words."""
    if not raw.strip():
        raise InvalidRequest("The request body is empty; send a JSON object.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequest("The request body is not valid UTF-8 text.") from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc}.") from exc
    except RecursionError as exc:
        raise InvalidRequest("The request body is nested too deeply.") from exc
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


def parse_body(raw: bytes, model: type[BaseModel]) -> Any:
    """Parse and validate a JSON body, raising :class:`InvalidRequest` in words."""
    return validate(load_object(raw), model)


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

    kind: Literal["video", "midjourney"]
    model: str = Field(min_length=1, max_length=200)
    prompt: str = Field(min_length=1, max_length=4000)
    params: dict[str, Any] = Field(default_factory=dict)
