"""Where the gateway is, and how the official SDKs are pointed at it.

Two environment variables are the whole configuration: ``CLASSROOM_GATEWAY_URL``
and ``CLASSROOM_API_TOKEN``. The hub sets them in every lab; anywhere else,
setting them (or calling :func:`configure`) is all it takes. From them the
kernel extension derives the variables each official SDK reads, so that
``OpenAI()``, ``Anthropic()`` and ``genai.Client()`` work with no arguments.

The token is the user's own hub token. It must only ever be sent to the
gateway, so an SDK is pointed at the gateway only when that cannot redirect a
key the user set themselves, and the token is never given to an SDK whose base
URL points somewhere else.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass

from gateway.contract import API_TOKEN_VAR, GATEWAY_URL_VAR  # noqa: F401 - re-exported


@dataclass(frozen=True)
class _Sdk:
    base_url_var: str
    key_var: str
    path: str
    #: Other variables the SDK reads a key from, before or instead of ``key_var``.
    other_key_vars: tuple[str, ...] = ()


SDKS = (
    _Sdk("OPENAI_BASE_URL", "OPENAI_API_KEY", "/v1"),
    _Sdk("ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY", "/anthropic"),
    # google-genai prefers GOOGLE_API_KEY over GEMINI_API_KEY when both are set.
    _Sdk("GOOGLE_GEMINI_BASE_URL", "GEMINI_API_KEY", "/google", ("GOOGLE_API_KEY",)),
)


def gateway_settings(environ: Mapping[str, str] | None = None) -> tuple[str | None, str | None]:
    """``(base_url, token)`` from the environment; either is None when unset or empty."""
    env = os.environ if environ is None else environ
    url = env.get(GATEWAY_URL_VAR, "").strip().rstrip("/") or None
    token = env.get(API_TOKEN_VAR, "").strip() or None
    return url, token


def sdk_environment(gateway_url: str, token: str) -> dict[str, str]:
    """The SDK variables that point every official SDK at ``gateway_url`` with ``token``."""
    base = gateway_url.rstrip("/")
    env: dict[str, str] = {}
    for sdk in SDKS:
        env[sdk.base_url_var] = base + sdk.path
        env[sdk.key_var] = token
    return env


def export_sdk_environment(
    environ: MutableMapping[str, str] | None = None,
    *,
    replace: Mapping[str, str] | None = None,
) -> list[str]:
    """Fill in the SDK variables from the CLASSROOM_* ones; return the names set.

    Nothing happens unless both CLASSROOM_* variables are set. A variable that
    is already set is left alone, unless its value is the one in ``replace``
    (what an earlier classroom configuration put there). Per SDK, the base URL
    and key are filled together: a key of the user's own is never redirected to
    the gateway, and the token never goes to a base URL that is not the gateway.
    """
    env = os.environ if environ is None else environ
    url, token = gateway_settings(env)
    if url is None or token is None:
        return []
    wanted = sdk_environment(url, token)
    old = replace or {}

    def current(name: str) -> str | None:
        value = env.get(name, "")
        if not value or value == old.get(name):
            return None
        return value

    changed: list[str] = []
    for sdk in SDKS:
        base, key = current(sdk.base_url_var), current(sdk.key_var)
        other_key = any(env.get(name) for name in sdk.other_key_vars)
        base_is_gateway = base is not None and base.rstrip("/") == wanted[sdk.base_url_var]
        updates: list[str] = []
        if base is None and key in (None, token) and not other_key:
            updates.append(sdk.base_url_var)
            base_is_gateway = True
        if key is None and base_is_gateway:
            updates.append(sdk.key_var)
        for name in updates:
            if env.get(name) != wanted[name]:
                env[name] = wanted[name]
                changed.append(name)
    return changed


def configure(gateway_url: str | None = None, api_token: str | None = None) -> None:
    """Point this kernel at a classroom gateway; for use outside the hub.

    Sets ``CLASSROOM_GATEWAY_URL`` / ``CLASSROOM_API_TOKEN`` (each only when
    given) and points the official SDKs at the gateway, replacing SDK settings
    that came from an earlier classroom configuration but never ones you set
    yourself. Every classroom client and widget reads the new values at once.
    Call it with no arguments to just fill in the SDK variables.
    """
    previous_url, previous_token = gateway_settings()
    previous = (
        sdk_environment(previous_url, previous_token)
        if previous_url is not None and previous_token is not None
        else {}
    )
    if gateway_url is not None:
        os.environ[GATEWAY_URL_VAR] = gateway_url.strip().rstrip("/")
    if api_token is not None:
        os.environ[API_TOKEN_VAR] = api_token.strip()
    export_sdk_environment(os.environ, replace=previous)
