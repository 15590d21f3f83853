"""Every error the gateway returns, in one tree, mapped once to HTTP.

    ClassroomError                      500 internal_error
    ├── InvalidRequest                  400 invalid_request       (names the field)
    │   ├── ContextLengthExceeded       400 context_length_exceeded
    │   └── InvalidToolSchema           400 invalid_tool_schema   (names the tool and field)
    ├── InvalidToken                    401 invalid_token
    ├── Forbidden                       403 forbidden
    │   ├── ModelNotAllowed             403 model_not_allowed
    │   ├── FeatureDisabled             403 feature_disabled
    │   ├── ModelUnpriced               403 model_unpriced        (a budget needs a price)
    │   ├── PausedByTeacher             403 paused_by_teacher
    │   └── ServerNotAllowed            403 mcp_server_not_allowed (allow-list, SSRF guard)
    ├── NotFound                        404 not_found
    │   └── ModelNotFound               404 model_not_found
    ├── Conflict                        409 conflict
    ├── ConfigInvalid                   422 config_invalid        (file, line, field)
    ├── ClientDisconnected              499 client_disconnected (recorded, never sent)
    ├── PayloadTooLarge                 413 payload_too_large
    ├── PoolUnavailable                 503 pool_unavailable      (the pool's Redis is down)
    ├── RateLimited                     429 rate_limited
    │   ├── QuotaExceeded               429 quota_exceeded
    │   ├── BudgetExceeded              429 budget_exceeded
    │   └── QueueTimeout                429 queue_timeout
    └── ProviderError                   502 provider_error
        ├── ProviderRateLimited         429 provider_rate_limited     (retried)
        ├── ProviderAuthFailed          502 provider_auth_failed      (next key tried)
        ├── ProviderUnavailable         503 provider_unavailable      (retried)
        │   └── NoKeyAvailable          503 no_key_available
        ├── ProviderTimeout             504 provider_timeout          (retried)
        ├── ContentBlocked              400 content_blocked           (reason in words)
        └── McpServerError              502 mcp_server_error          (an MCP server failed)
            └── McpTimeout              504 mcp_timeout

``code`` is stable: programs and the classroom's error explainer test it.
``message`` is written for a student. Neither ever contains a secret.

Each face renders the same error in its vendor's shape, so every official SDK
raises its own exception class: :meth:`ClassroomError.to_openai`,
:meth:`~ClassroomError.to_anthropic` and :meth:`~ClassroomError.to_google`.
Errors raised by a provider adapter carry ``upstream_status`` (the vendor's
HTTP status), which the retry loop reads.
"""

from __future__ import annotations

from typing import Any, ClassVar

ANTHROPIC_TYPES = {
    400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
    404: "not_found_error", 409: "invalid_request_error", 413: "request_too_large",
    429: "rate_limit_error", 503: "overloaded_error", 504: "timeout_error",
}
GOOGLE_STATUSES = {
    400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
    409: "ABORTED", 413: "INVALID_ARGUMENT", 422: "INVALID_ARGUMENT", 429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED",
}


class ClassroomError(Exception):
    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    type: ClassVar[str] = "server_error"
    retryable: ClassVar[bool] = False  # worth another attempt (maybe on another key)

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        retry_after: float | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.retry_after = retry_after
        self.details = details or {}
        self.upstream_status: int | None = None  # set by provider adapters

    def to_openai(self) -> dict[str, Any]:
        """OpenAI's error shape, which the ``openai`` SDK turns into its exceptions."""
        body: dict[str, Any] = {"message": self.message, "type": self.type, "code": self.code}
        body["param"] = self.param
        body.update(self.details)
        return {"error": body}

    def to_anthropic(self) -> dict[str, Any]:
        """Anthropic's error shape, which the ``anthropic`` SDK turns into its exceptions."""
        kind = ANTHROPIC_TYPES.get(self.status, "api_error")
        error = {"type": kind, "message": self.message, "code": self.code}
        return {"type": "error", "error": error}

    def to_google(self) -> dict[str, Any]:
        """Google's error shape (``google.rpc.Status``), which ``google-genai`` raises from."""
        details: list[dict[str, Any]] = [{
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": self.code.upper(), "domain": "classroom",
            "metadata": {"code": self.code, **({"param": self.param} if self.param else {})},
        }]
        if self.retry_after is not None:
            details.append({
                "@type": "type.googleapis.com/google.rpc.RetryInfo",
                "retryDelay": f"{max(1, round(self.retry_after))}s",
            })
        status = self.status if self.status < 600 else 500
        return {"error": {
            "code": status, "message": self.message,
            "status": GOOGLE_STATUSES.get(status, "INTERNAL"), "details": details,
        }}

    def headers(self) -> dict[str, str]:
        if self.retry_after is None:
            return {}
        return {"Retry-After": str(max(1, round(self.retry_after)))}


class InvalidRequest(ClassroomError):
    status, code, type = 400, "invalid_request", "invalid_request_error"


class ContextLengthExceeded(InvalidRequest):
    code = "context_length_exceeded"


class InvalidToolSchema(InvalidRequest):
    code = "invalid_tool_schema"


class InvalidToken(ClassroomError):
    status, code, type = 401, "invalid_token", "authentication_error"


class Forbidden(ClassroomError):
    status, code, type = 403, "forbidden", "permission_error"


class ServerNotAllowed(Forbidden):
    code = "mcp_server_not_allowed"


class ModelNotAllowed(Forbidden):
    code = "model_not_allowed"


class FeatureDisabled(Forbidden):
    code = "feature_disabled"


class ModelUnpriced(Forbidden):
    code = "model_unpriced"


class PausedByTeacher(Forbidden):
    code = "paused_by_teacher"


class NotFound(ClassroomError):
    status, code, type = 404, "not_found", "not_found_error"


class ModelNotFound(NotFound):
    code = "model_not_found"


class Conflict(ClassroomError):
    status, code, type = 409, "conflict", "invalid_request_error"


class ConfigInvalid(ClassroomError):
    """A configuration file with a mistake; the running configuration was kept."""

    status, code, type = 422, "config_invalid", "invalid_request_error"


class ClientDisconnected(ClassroomError):
    status, code, type = 499, "client_disconnected", "invalid_request_error"


class PayloadTooLarge(ClassroomError):
    status, code, type = 413, "payload_too_large", "invalid_request_error"


class PoolUnavailable(ClassroomError):
    """The key pool's shared state (Redis) cannot be reached: no call is scheduled, since
    its limits could not be kept."""

    status, code, type = 503, "pool_unavailable", "api_error"


class RateLimited(ClassroomError):
    status, code, type = 429, "rate_limited", "rate_limit_error"


class QuotaExceeded(RateLimited):
    code = "quota_exceeded"


class BudgetExceeded(RateLimited):
    code = "budget_exceeded"


class QueueTimeout(RateLimited):
    code = "queue_timeout"


class ProviderError(ClassroomError):
    status, code, type = 502, "provider_error", "api_error"


class ProviderRateLimited(ProviderError):
    status, code, type = 429, "provider_rate_limited", "rate_limit_error"
    retryable = True


class ProviderAuthFailed(ProviderError):
    code = "provider_auth_failed"


class ProviderUnavailable(ProviderError):
    status, code = 503, "provider_unavailable"
    retryable = True


class NoKeyAvailable(ProviderUnavailable):
    code = "no_key_available"
    retryable = False


class ProviderTimeout(ProviderError):
    status, code = 504, "provider_timeout"
    retryable = True


class ContentBlocked(ProviderError):
    status, code, type = 400, "content_blocked", "invalid_request_error"


def all_error_classes() -> list[type[ClassroomError]]:
    """Every error class, for documentation and tests."""
    seen: list[type[ClassroomError]] = []
    stack: list[type[ClassroomError]] = [ClassroomError]
    while stack:
        cls = stack.pop(0)
        seen.append(cls)
        stack.extend(cls.__subclasses__())
    return seen


class McpServerError(ProviderError):
    code = "mcp_server_error"


class McpTimeout(McpServerError):
    status, code = 504, "mcp_timeout"
