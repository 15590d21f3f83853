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
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NoReturn

from gateway.config.files import ConfigFileError, json_line, toml_table_line

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


class KeysFileError(ConfigFileError):
    """A keys file that cannot be used; the message names the file, line, entry and field.
    ``table`` is the ``(provider, index)`` of the entry at fault, to find its line."""

    table: tuple[str, int] | None = None


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


def _positive(fail: Any, value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= LIMIT_MAX:
        fail(f"must be a whole number from 1 to {LIMIT_MAX:,}", name)
    return int(value)


def parse_entry(where: str, provider: str, entry: Any, *, file: str | None = None) -> ProviderKey:
    """One declared key; :class:`KeysFileError` naming ``where`` it is and the field."""
    label = where

    def fail(text: str, name: str | None = None) -> NoReturn:
        if file is None:
            raise KeysFileError(label, text, field=name)
        raise KeysFileError(file, text, field=name, where=label)

    if not isinstance(entry, dict):
        fail("each key must be a table/object")
    unknown = sorted(set(entry) - FIELDS)
    if unknown:
        fail(f"unknown field(s) {unknown}; known: {sorted(FIELDS)}", unknown[0])
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 120:
        fail("is required (1-120 characters)", "name")
    label = f"{where} ({name})"
    secret, secret2 = entry.get("api_key"), None
    if provider in PAIR_PROVIDERS:
        secret, secret2 = entry.get("access_key"), entry.get("secret_key")
        if not secret or not secret2:
            fail(f"{provider} keys need 'access_key' and 'secret_key'",
                 "secret_key" if secret else "access_key")
    elif provider != "mock" and not secret:
        fail(f"is required for {provider}", "api_key")
    for field_name, value in (("api_key" if provider not in PAIR_PROVIDERS else "access_key",
                               secret), ("secret_key", secret2)):
        if value is not None and not isinstance(value, str):
            fail("must be a string", field_name)
    scope = entry.get("tenant_scope", ["*"])
    if isinstance(scope, str):
        scope = [scope]
    if not isinstance(scope, list) or not scope or not all(isinstance(s, str) for s in scope):
        fail('must be a list of school ids or ["*"]', "tenant_scope")
    base_url = entry.get("base_url")
    if base_url is not None and (
        not isinstance(base_url, str) or not base_url.startswith(("http://", "https://"))
    ):
        fail("must be an http(s) URL", "base_url")
    priority = entry.get("priority", 0)
    if isinstance(priority, bool) or not isinstance(priority, int) or abs(priority) > LIMIT_MAX:
        fail(f"must be a whole number from {-LIMIT_MAX:,} to {LIMIT_MAX:,}", "priority")
    active = entry.get("is_active", True)
    if not isinstance(active, bool):
        fail("must be true or false", "is_active")
    return ProviderKey(
        provider=provider,
        name=name.strip(),
        secret=secret,
        secret2=secret2,
        base_url=base_url.rstrip("/") if base_url else None,
        concurrency_limit=_positive(fail, entry.get("concurrency_limit"), "concurrency_limit"),
        rpm_limit=_positive(fail, entry.get("rpm_limit"), "rpm_limit"),
        tpm_limit=_positive(fail, entry.get("tpm_limit"), "tpm_limit"),
        priority=priority,
        tenant_scope=tuple(scope),
        is_active=active,
    )


def parse_keys(data: Any, source: str) -> list[ProviderKey]:
    if not isinstance(data, dict):
        raise KeysFileError(source, "expected one list of keys per provider")
    keys: list[ProviderKey] = []
    seen: set[tuple[str, str]] = set()
    for provider, entries in data.items():
        if provider not in PROVIDERS:
            raise KeysFileError(source, f"unknown provider '{provider}'; known: {list(PROVIDERS)}")
        if not isinstance(entries, list):
            raise KeysFileError(source, f"'{provider}' must be a list of keys ([[{provider}]] "
                                "in TOML)")
        for index, entry in enumerate(entries):
            try:
                key = parse_entry(f"{provider}[{index}]", provider, entry, file=source)
                if (provider, key.name) in seen:
                    raise KeysFileError(source, f"duplicate key name '{key.name}'",
                                        field="name", where=f"{provider}[{index}]")
            except KeysFileError as error:
                error.table = (provider, index)
                raise
            seen.add((provider, key.name))
            keys.append(key)
    return keys


def _with_line(error: KeysFileError, text: str, toml: bool) -> KeysFileError:
    """The same mistake, with the line of the entry (and field) at fault."""
    problems = []
    for problem in error.problems:
        line = problem.line
        if line is None and error.table is not None:
            provider, index = error.table
            line = (toml_table_line(text, provider, index, problem.field) if toml
                    else json_line(text, [provider, problem.field]))
        elif line is None and problem.text.startswith("unknown provider"):
            provider = problem.text.split("'")[1]
            line = (toml_table_line(text, provider, 0) if toml else json_line(text, [provider]))
        problems.append(replace(problem, line=line))
    located = KeysFileError(error.file, problems)
    located.table = error.table
    return located


def load_keys_file(path: Path) -> list[ProviderKey]:
    file, toml = str(path), path.suffix != ".json"
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise KeysFileError(file, "not UTF-8 text") from exc
    except OSError as exc:
        raise KeysFileError(file, f"cannot be read: {exc.strerror}") from exc
    try:
        data = tomllib.loads(text) if toml else json.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"\(at line (\d+), column \d+\)", str(exc))
        raise KeysFileError(file, f"not valid TOML: {exc}",
                            line=int(found.group(1)) if found else None) from exc
    except json.JSONDecodeError as exc:
        raise KeysFileError(file, f"not valid JSON: {exc.msg}", line=exc.lineno) from exc
    try:
        return parse_keys(data, file)
    except KeysFileError as error:
        raise _with_line(error, text, toml) from None


def load_keys_json(text: str) -> list[ProviderKey]:
    source = "CLASSROOM_KEY_POOL_JSON"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise KeysFileError(source, f"not valid JSON: {exc.msg}", line=exc.lineno) from exc
    try:
        return parse_keys(data, source)
    except KeysFileError as error:
        raise _with_line(error, text, toml=False) from None
