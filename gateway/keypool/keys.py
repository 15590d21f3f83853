"""Provider keys as declared by a school: the keys file and its validation.

``CLASSROOM_KEYS_FILE`` is TOML, one array of tables per provider::

    [[openai]]
    name = "openai-main"
    api_key = "sk-..."
    concurrency_limit = 4      # calls at once on this key
    rpm_limit = 500            # requests per minute
    tpm_limit = 200000         # tokens per minute (optional)
    priority = 10              # higher is tried first
    tenant_scope = ["*"]       # or ["school_a"]
    base_url = "https://..."   # optional: Azure OpenAI, a compatible endpoint, a fake

    [[kling]]
    name = "kling-1"
    access_key = "..."
    secret_key = "..."

``CLASSROOM_KEY_POOL_JSON`` holds the same shape as JSON (the seed platform's
format). ``mock`` keys need no secret; they exist to put limits on the mock.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROVIDERS = ("openai", "anthropic", "google", "elevenlabs", "kling", "legnext", "mock")
PAIR_PROVIDERS = {"kling"}  # signed with access key + secret key
FIELDS = {
    "name",
    "api_key",
    "access_key",
    "secret_key",
    "concurrency_limit",
    "rpm_limit",
    "tpm_limit",
    "priority",
    "tenant_scope",
    "is_active",
    "base_url",
}


LIMIT_MAX = 1_000_000_000  # any limit or priority beyond this is a typing mistake


class KeysFileError(ValueError):
    """A keys file that cannot be used; the message names the file, entry and field."""


@dataclass(frozen=True)
class ProviderKey:
    provider: str
    name: str
    secret: str | None = field(default=None, repr=False)  # api_key, or Kling's access key
    secret2: str | None = field(default=None, repr=False)  # Kling's secret key
    base_url: str | None = None
    concurrency_limit: int | None = None
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    priority: int = 0
    tenant_scope: tuple[str, ...] = ("*",)
    is_active: bool = True

    @property
    def last4(self) -> str | None:
        return self.secret[-4:] if self.secret and len(self.secret) >= 8 else None

    @property
    def label(self) -> str:
        """How a key is shown anywhere: its name and at most its last four characters."""
        return f"{self.name} (…{self.last4})" if self.last4 else self.name

    def serves(self, tenant: str) -> bool:
        return "*" in self.tenant_scope or tenant in self.tenant_scope


def _positive(where: str, value: Any, name: str, *, allow_zero: bool = False) -> int | None:
    if value is None:
        return None
    low = 0 if allow_zero else 1
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= LIMIT_MAX:
        raise KeysFileError(
            f"{where}: field '{name}' must be a whole number from {low} to {LIMIT_MAX:,}"
        )
    return value


def parse_entry(where: str, provider: str, entry: Any) -> ProviderKey:
    if not isinstance(entry, dict):
        raise KeysFileError(f"{where}: each key must be a table/object")
    unknown = sorted(set(entry) - FIELDS)
    if unknown:
        raise KeysFileError(f"{where}: unknown field(s) {unknown}; known: {sorted(FIELDS)}")
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 120:
        raise KeysFileError(f"{where}: field 'name' is required (1-120 characters)")
    where = f"{where} ({name})"
    secret, secret2 = entry.get("api_key"), None
    if provider in PAIR_PROVIDERS:
        secret, secret2 = entry.get("access_key"), entry.get("secret_key")
        if not secret or not secret2:
            raise KeysFileError(f"{where}: {provider} keys need 'access_key' and 'secret_key'")
    elif provider != "mock" and not secret:
        raise KeysFileError(f"{where}: field 'api_key' is required for {provider}")
    for label, value in (("api_key/access_key", secret), ("secret_key", secret2)):
        if value is not None and not isinstance(value, str):
            raise KeysFileError(f"{where}: field '{label}' must be a string")
    scope = entry.get("tenant_scope", ["*"])
    if isinstance(scope, str):
        scope = [scope]
    if not isinstance(scope, list) or not scope or not all(isinstance(s, str) for s in scope):
        raise KeysFileError(
            f"{where}: field 'tenant_scope' must be a list of school ids or [\"*\"]"
        )
    base_url = entry.get("base_url")
    if base_url is not None and (
        not isinstance(base_url, str) or not base_url.startswith(("http://", "https://"))
    ):
        raise KeysFileError(f"{where}: field 'base_url' must be an http(s) URL")
    priority = entry.get("priority", 0)
    if isinstance(priority, bool) or not isinstance(priority, int) or abs(priority) > LIMIT_MAX:
        raise KeysFileError(
            f"{where}: field 'priority' must be a whole number from {-LIMIT_MAX:,} to {LIMIT_MAX:,}"
        )
    active = entry.get("is_active", True)
    if not isinstance(active, bool):
        raise KeysFileError(f"{where}: field 'is_active' must be true or false")
    return ProviderKey(
        provider=provider,
        name=name.strip(),
        secret=secret,
        secret2=secret2,
        base_url=base_url.rstrip("/") if base_url else None,
        concurrency_limit=_positive(where, entry.get("concurrency_limit"), "concurrency_limit"),
        rpm_limit=_positive(where, entry.get("rpm_limit"), "rpm_limit"),
        tpm_limit=_positive(where, entry.get("tpm_limit"), "tpm_limit"),
        priority=priority,
        tenant_scope=tuple(scope),
        is_active=active,
    )


def parse_keys(data: Any, source: str) -> list[ProviderKey]:
    if not isinstance(data, dict):
        raise KeysFileError(f"{source}: expected one list of keys per provider")
    keys: list[ProviderKey] = []
    seen: set[tuple[str, str]] = set()
    for provider, entries in data.items():
        if provider not in PROVIDERS:
            raise KeysFileError(
                f"{source}: unknown provider '{provider}'; known: {list(PROVIDERS)}"
            )
        if not isinstance(entries, list):
            raise KeysFileError(
                f"{source}: '{provider}' must be a list of keys ([[{provider}]] in TOML)"
            )
        for index, entry in enumerate(entries):
            key = parse_entry(f"{source}: {provider}[{index}]", provider, entry)
            if (provider, key.name) in seen:
                raise KeysFileError(
                    f"{source}: {provider}[{index}]: duplicate key name '{key.name}'"
                )
            seen.add((provider, key.name))
            keys.append(key)
    return keys


def load_keys_file(path: Path) -> list[ProviderKey]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise KeysFileError(f"{path}: cannot be read: {exc.strerror}") from exc
    try:
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise KeysFileError(f"{path}: not valid TOML: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise KeysFileError(f"{path}: not valid JSON at line {exc.lineno}: {exc.msg}") from exc
    return parse_keys(data, str(path))


def load_keys_json(text: str) -> list[ProviderKey]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise KeysFileError(
            f"CLASSROOM_KEY_POOL_JSON: not valid JSON at line {exc.lineno}: {exc.msg}"
        ) from exc
    return parse_keys(data, "CLASSROOM_KEY_POOL_JSON")
