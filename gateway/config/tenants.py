"""Schools (tenants): the schema of ``tenants/*.json`` and its loader.

Plain pydantic, no web framework: the hub validates the same files with this
module at start, so a bad file stops the hub with a message naming the file
and the field, and the gateway reads the allow-lists and quotas from it.
"""

from __future__ import annotations

import fnmatch
import json
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gateway.config.files import ConfigFileError, Problem, json_line
from gateway.contract import ROLES, TENANT_ID  # noqa: F401 - re-exported

Role = Literal["student", "teacher", "admin", "viewer"]
FEATURES = (
    "chat",
    "playground",
    "compare",
    "images",
    "speech",
    "video",
    "embeddings",
    "usage",
    "music",
)


class TenantFileError(ConfigFileError):
    """A tenant file that cannot be used; the message names the file, line and field."""


class Branding(BaseModel):
    model_config = ConfigDict(extra="forbid")

    page_title: str = Field(
        min_length=1,
        max_length=120,
        description="Heading shown on the login page, the hub home page and widget headers.",
    )
    browser_tab_title: str = Field(
        min_length=1,
        max_length=80,
        description="Text of the browser tab on hub pages.",
    )
    logo_path: str | None = Field(
        default=None,
        description="Logo image, relative to the tenants directory (e.g. logos/school_a.svg).",
    )
    accent_color: str = Field(
        default="#2f6fdf",
        pattern=r"^#[0-9a-fA-F]{6}$",
        description="Accent colour (#rrggbb) for the login page and widget headers.",
    )


class RoleQuota(BaseModel):
    model_config = ConfigDict(extra="forbid")

    requests_per_day: int | None = Field(
        default=None,
        ge=0,
        description="Provider calls per user per day (UTC); null = unlimited.",
    )
    tokens_per_day: int | None = Field(
        default=None,
        ge=0,
        description="Prompt + completion tokens per user per day; null = unlimited.",
    )
    usd_per_month: float | None = Field(
        default=None,
        ge=0,
        description="Spend per user per calendar month in US dollars; null = unlimited.",
    )
    concurrent_requests: int | None = Field(
        default=None,
        ge=1,
        description="Requests one user may have running at once; null = unlimited.",
    )


class Tenant(BaseModel):
    """One school."""

    model_config = ConfigDict(extra="forbid")

    tenant_id: str = Field(
        description="Stable id: lower-case letters, digits and _; the hub group is tenant-<id>."
    )
    display_name: str = Field(
        min_length=1, max_length=120, description="The school's name as people read it."
    )
    branding: Branding = Field(description="What users of this school see.")
    enabled_features: list[str] = Field(
        description="Widgets and capabilities offered to this school; any of "
        f"{', '.join(FEATURES)}.",
    )
    models: list[str] = Field(
        min_length=1,
        description="Allow-list of model names or shell-style patterns "
        "(mock/*, gpt-4.1*, claude-*).",
    )
    quotas: dict[Role, RoleQuota] = Field(
        default_factory=dict,
        description="Limits per role (student, teacher, admin, viewer).",
    )
    budget_usd_per_month: float | None = Field(
        default=None,
        ge=0,
        description="The school's own spend per calendar month in US dollars, across all its "
        "users (reserved against by every call, like the personal budgets); null = none.",
    )
    budget_alert_percent: float = Field(
        default=80,
        gt=0,
        le=100,
        description="At this share of budget_usd_per_month an audit entry (budget.alert) is "
        "written and the teachers' dashboards show a banner; at 100 % calls are refused.",
    )
    own_keys_for: list[Role] = Field(
        default=["teacher", "admin"],
        description="Roles that may register their own provider keys (used only for their "
        "own calls, never pooled); [] switches own keys off. Students are not in it unless "
        "added.",
    )
    model_budgets_usd_per_month: dict[str, float] = Field(
        default_factory=dict,
        description="Monthly spend caps of the school per model name or pattern "
        '(e.g. {"gpt-4.1*": 20}), enforced by the same reservations; a model matching '
        "several patterns is held to each.",
    )

    @field_validator("tenant_id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if not TENANT_ID.match(value):
            raise ValueError("must be lower-case letters, digits and _, starting with a letter")
        return value

    @field_validator("model_budgets_usd_per_month")
    @classmethod
    def _check_model_budgets(cls, value: dict[str, float]) -> dict[str, float]:
        negative = sorted(pattern for pattern, usd in value.items() if usd < 0)
        if negative:
            raise ValueError(f"a budget cannot be negative: {negative}")
        return value

    @field_validator("enabled_features")
    @classmethod
    def _check_features(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(FEATURES))
        if unknown:
            raise ValueError(f"unknown feature(s) {unknown}; known: {list(FEATURES)}")
        return value

    def allows_model(self, model: str) -> bool:
        return _allows(tuple(self.models), model)

    def model_budgets_for(self, model: str,
                          priced_as: str | None = None) -> list[tuple[str, int]]:
        """The per-model caps (pattern, micro-dollars) that hold ``model``: those matching
        its name, or the catalog model it is charged as (a dated snapshot's base)."""
        names = (model,) if priced_as is None else (model, priced_as)
        return [(pattern, round(usd * 1_000_000))
                for pattern, usd in self.model_budgets_usd_per_month.items()
                if any(_allows((pattern,), name) for name in names)]

    def quota_for(self, role: str) -> RoleQuota:
        return self.quotas.get(role, RoleQuota())  # type: ignore[call-overload]


@lru_cache(maxsize=4096)
def _allows(patterns: tuple[str, ...], model: str) -> bool:
    """Whether a model name matches one of a school's patterns (asked on every call)."""
    return any(fnmatch.fnmatchcase(model, pattern) for pattern in patterns)


def _problems(error: ValidationError, text: str) -> list[Problem]:
    return [Problem(str(item["msg"]).removeprefix("Value error, "), json_line(text, item["loc"]),
                    ".".join(str(p) for p in item["loc"]) or "(top level)")
            for item in error.errors()]


def load_tenant_file(path: Path) -> Tenant:
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TenantFileError(file, f"not valid JSON: {exc.msg}", line=exc.lineno) from exc
    except UnicodeDecodeError as exc:
        raise TenantFileError(file, "not UTF-8 text") from exc
    except OSError as exc:
        raise TenantFileError(file, f"cannot be read: {exc.strerror}") from exc
    try:
        tenant = Tenant.model_validate(raw)
    except ValidationError as exc:
        raise TenantFileError(file, _problems(exc, text)) from exc
    if tenant.tenant_id != path.stem:
        raise TenantFileError(
            file, f"is {tenant.tenant_id!r} but the file is named {path.stem!r}",
            line=json_line(text, ["tenant_id"]), field="tenant_id")
    if tenant.branding.logo_path and not (path.parent / tenant.branding.logo_path).is_file():
        raise TenantFileError(
            file, f"no file {tenant.branding.logo_path!r} in {path.parent}",
            line=json_line(text, ["branding", "logo_path"]), field="branding.logo_path")
    return tenant


def load_tenants(directory: Path) -> dict[str, Tenant]:
    """All ``*.json`` files of a directory, keyed by tenant id; any bad file raises."""
    if not directory.is_dir():
        raise TenantFileError(str(directory), "tenants directory does not exist")
    tenants = {}
    for path in sorted(directory.glob("*.json")):
        if path.name.endswith(".schema.json"):
            continue
        tenant = load_tenant_file(path)
        tenants[tenant.tenant_id] = tenant
    if not tenants:
        raise TenantFileError(str(directory), "no tenant files (*.json)")
    return tenants
