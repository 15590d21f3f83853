"""Audit log, housekeeping (retention, table sizes, purges) and published dashboards.

- ``GET /api/audit``: who did what; admins see all, teachers their school,
  everyone else their own actions.
- ``/api/admin/*``: admins only. Every change is itself audited.
- ``/api/dashboards/published`` and ``/api/lessons/published``: the school's
  published dashboards and lessons; teachers (of that school) and admins publish
  and withdraw them.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from gateway.api.deps import CurrentUser, HousekeepingAdmin, Offset, ServicesDep
from gateway.auth import Identity
from gateway.errors import Forbidden, InvalidRequest, NotFound
from gateway.history.audit import record_audit
from gateway.history.retention import (
    DAY,
    PURGEABLE,
    RetentionSettings,
    apply_retention,
    purge_table,
    purge_text,
    table_counts,
    text_counts,
)
from gateway.history.review import audit_entries
from gateway.history.usage import parse_time
from gateway.published import (
    LESSONS_DIR,
    PublishError,
    classes_of,
    list_classes,
    list_dashboards,
    publish,
    read_published,
    unpublish,
)

router = APIRouter(prefix="/api", tags=["Audit, housekeeping and dashboards"])



# -- audit ------------------------------------------------------------------------------


@router.get("/audit", summary="The audit log: who did what, when (scoped)")
async def audit(
    identity: CurrentUser,
    services: ServicesDep,
    tenant: Annotated[str | None, Query(max_length=64)] = None,
    actor: Annotated[str | None, Query(max_length=128)] = None,
    action: Annotated[str | None, Query(max_length=64, description="Prefix, e.g. key.")] = None,
    since: Annotated[str | None, Query(description="Date or ISO date-time (UTC).")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    tenants: set[str] | None
    if identity.is_admin:
        tenants = {tenant} if tenant else None
    elif identity.can_teach(tenant or identity.tenant):
        tenants = {tenant or identity.tenant}
    else:
        if tenant not in (None, identity.tenant) or actor not in (None, identity.name):
            raise Forbidden("You can only see your own actions in the audit log.")
        tenants, actor = None, identity.name
    try:
        after = parse_time(since)
    except ValueError:
        raise InvalidRequest("since must be a date or an ISO date-time.", param="since") from None
    items, total = await services.history.read(
        lambda c: audit_entries(c, tenants=tenants, actor=actor, action=action, since=after,
                                limit=limit, offset=offset)
    )
    return {"items": items, "total": total, "limit": limit, "offset": offset}


# -- configuration ----------------------------------------------------------------------------


@router.post("/admin/reload", summary="Read the tenant files and the keys file again (admins); "
             "a mistake in any keeps the running configuration and is answered as "
             "config_invalid naming the file, line and field")
async def reload_config(identity: HousekeepingAdmin, services: ServicesDep) -> dict[str, Any]:
    result = await services.config.reload(identity)
    return result.public()


# -- retention ------------------------------------------------------------------------------


class RetentionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text_days: int | None = Field(
        ge=1, le=3650,
        description="Keep prompt and response text this many days; null keeps it forever.",
    )


class PurgeTextIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    older_than_days: int | None = Field(
        default=None, ge=0, le=3650,
        description="Remove text older than this many days; default: the retention setting.",
    )


@router.get("/admin/retention", summary="Retention setting and what it would remove (admins)")
async def retention(identity: HousekeepingAdmin, services: ServicesDep) -> dict[str, Any]:
    settings = RetentionSettings.load(services.settings.data_dir)
    result: dict[str, Any] = settings.public()
    if settings.text_days is not None:
        cutoff = time.time() - settings.text_days * DAY
        result["pending"] = await services.history.read(lambda c: text_counts(c, cutoff))
    return result


@router.put("/admin/retention", summary="Set how long prompt and response text is kept (admins)")
async def set_retention(
    body: RetentionIn, identity: HousekeepingAdmin, services: ServicesDep
) -> dict[str, Any]:
    data_dir = services.settings.data_dir
    settings = RetentionSettings.load(data_dir)
    before = settings.text_days
    settings.text_days, settings.updated_by, settings.updated_at = (
        body.text_days, identity.name, time.time()
    )
    await asyncio.to_thread(settings.save, data_dir)
    await record_audit(services.history, identity, "retention.set", target="text_days",
                       details={"from": before, "to": body.text_days})
    return settings.public()


@router.post("/admin/retention/purge", summary="Remove old prompt and response text now (admins)")
async def purge_text_now(
    body: PurgeTextIn, identity: HousekeepingAdmin, services: ServicesDep
) -> dict[str, Any]:
    data_dir = services.settings.data_dir
    days = body.older_than_days
    if days is None:
        days = RetentionSettings.load(data_dir).text_days
        if days is None:
            raise InvalidRequest(
                "No retention is set: give older_than_days or set one first.",
                param="older_than_days",
            )
        done = await apply_retention(services.history, data_dir) or {}
    else:
        cutoff = time.time() - days * DAY
        done = await services.history.write(lambda c: purge_text(c, cutoff))
    await record_audit(services.history, identity, "retention.purge_text",
                       details={"older_than_days": days, "cleared": done})
    return {"older_than_days": days, "cleared": done}


# -- tables ---------------------------------------------------------------------------------


class PurgeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    older_than_days: int = Field(ge=0, le=3650, description="Delete rows older than this.")
    confirm: str = Field(max_length=64, description="The table's name again, to confirm.")


@router.get("/admin/tables", summary="Row counts of every history table (admins)")
async def tables(identity: HousekeepingAdmin, services: ServicesDep) -> dict[str, Any]:
    counts = await services.history.read(table_counts)
    return {
        "tables": [
            {"name": name, "rows": rows, "purgeable": name in PURGEABLE}
            for name, rows in counts.items()
        ]
    }


@router.post("/admin/purge/{table}", summary="Delete old rows of one table (admins)")
async def purge(
    table: str, body: PurgeIn, identity: HousekeepingAdmin, services: ServicesDep
) -> dict[str, Any]:
    if table not in PURGEABLE:
        raise InvalidRequest(
            f"{table!r} cannot be purged; one of: {', '.join(sorted(PURGEABLE))}.", param="table"
        )
    if body.confirm != table:
        raise InvalidRequest("confirm must repeat the table's name.", param="confirm")
    cutoff = time.time() - body.older_than_days * DAY
    deleted = await services.history.write(lambda c: purge_table(c, table, cutoff))
    await record_audit(services.history, identity, "table.purge", target=table,
                       details={"older_than_days": body.older_than_days, "deleted": deleted})
    return {"table": table, "older_than_days": body.older_than_days, "deleted": deleted}


# -- published dashboards and lessons ----------------------------------------------------


class PublishIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=120, description="File name, e.g. class_activity.ipynb.")
    notebook: dict[str, Any] = Field(description="The notebook (nbformat 4 JSON).")
    tenant: str | None = Field(default=None, max_length=64,
                               description="The school; default: your own.")
    group: str | None = Field(default=None, max_length=120, description=(
        "Lessons only: one class of the school (its hub group class-<school>-<label>, or the "
        "label) instead of the whole school."))


def _publishing_tenant(identity: Identity, tenant: str | None) -> str:
    target = tenant or identity.tenant
    if not identity.can_teach(target):
        raise Forbidden("Only teachers (for their own school) and administrators can publish.")
    return target


def _visible_tenant(identity: Identity, tenant: str | None) -> str:
    target = tenant or identity.tenant
    if target != identity.tenant and not identity.can_teach(target):
        raise Forbidden("You can only see the dashboards of your own school.")
    return target


def _class(tenant: str, group: str | None) -> str | None:
    """The class label a request names (None: the whole school)."""
    if not group:
        return None
    from gateway.published import clean_class

    try:
        return clean_class(tenant, group)
    except PublishError as exc:
        raise InvalidRequest(str(exc), param="group") from None


def _classes_seen(identity: Identity, tenant: str, labels: list[str]) -> list[str]:
    """Of ``labels``, the classes whose lessons ``identity`` sees: all of them for the
    school's teachers and admins, else the caller's own classes (hub groups)."""
    if identity.can_teach(tenant):
        return list(labels)
    mine = set(classes_of(identity.groups, tenant)) if tenant == identity.tenant else set()
    return [label for label in labels if label in mine]


@dataclass(frozen=True)
class _Kind:
    """Dashboards (Voila, ``~/published``) or lessons (copied into ``~/lessons``)."""

    path: str  # /api/<path>/published
    folder: str | None  # inside the school's published folder
    noun: str
    audit: str
    url: str  # where a viewer opens it


KINDS = (
    _Kind("dashboards", None, "dashboard", "dashboard",
          "/hub/user-redirect/voila/render/published/{name}"),
    _Kind("lessons", LESSONS_DIR, "lesson", "lesson", "/hub/user-redirect/lab/tree/lessons/{name}"),
)


def _routes(kind: _Kind) -> None:
    """GET, POST and DELETE ``/api/<kind>/published`` (one implementation for both kinds)."""

    @router.get(f"/{kind.path}/published", summary=f"The {kind.noun}s published to your school")
    async def published(
        identity: CurrentUser,
        services: ServicesDep,
        tenant: Annotated[str | None, Query(max_length=64)] = None,
    ) -> dict[str, Any]:
        target = _visible_tenant(identity, tenant)
        data_dir = services.settings.data_dir

        def read() -> list[tuple[str | None, Any]]:
            found: list[tuple[str | None, Any]] = [
                (None, d) for d in list_dashboards(data_dir, target, kind.folder)]
            if kind.folder == LESSONS_DIR:  # and those of the classes the caller may see
                for label in _classes_seen(identity, target, list_classes(data_dir, target)):
                    found += [(label, d) for d in list_dashboards(data_dir, target, kind.folder,
                                                                  label)]
            return found

        try:
            found = await asyncio.to_thread(read)
        except PublishError as exc:
            raise InvalidRequest(str(exc), param="tenant") from None
        return {
            "tenant": target,
            "items": [
                {"name": d.name, "title": d.title, "size": d.size, "modified": d.modified,
                 "url": kind.url.format(name=d.name), "class": label}
                for label, d in found
            ],
        }

    @router.post(f"/{kind.path}/published", status_code=201,
                 summary=f"Publish a {kind.noun} to a school (teachers)")
    async def publish_one(
        body: PublishIn, identity: CurrentUser, services: ServicesDep
    ) -> dict[str, Any]:
        target = _publishing_tenant(identity, body.tenant)
        raw = json.dumps(body.notebook, ensure_ascii=False, indent=1)
        label = _class(target, body.group)
        try:
            written = await asyncio.to_thread(
                publish, services.settings.data_dir, target, body.name, raw, kind.folder, label
            )
        except PublishError as exc:
            raise InvalidRequest(str(exc), param="group" if body.group else "notebook") from None
        details: dict[str, Any] = {"title": written.title, "size": written.size}
        if label:
            details["class"] = label
        await record_audit(services.history, identity, f"{kind.audit}.publish",
                           target=written.name, tenant=target, details=details)
        return {"tenant": target, "name": written.name, "title": written.title,
                "url": kind.url.format(name=written.name), "class": label}

    @router.delete(f"/{kind.path}/published/{{name}}", status_code=204,
                   summary=f"Withdraw a published {kind.noun}")
    async def withdraw(
        name: str,
        identity: CurrentUser,
        services: ServicesDep,
        tenant: Annotated[str | None, Query(max_length=64)] = None,
        group: Annotated[str | None, Query(max_length=120)] = None,
    ) -> Response:
        target = _publishing_tenant(identity, tenant)
        label = _class(target, group)
        try:
            removed = await asyncio.to_thread(unpublish, services.settings.data_dir, target,
                                              name, kind.folder, label)
        except PublishError as exc:
            raise InvalidRequest(str(exc), param="group" if group else "name") from None
        where = f"class {label} of {target}" if label else target
        if not removed:
            raise NotFound(f"No {kind.noun} {name!r} is published to {where}.")
        await record_audit(services.history, identity, f"{kind.audit}.withdraw", target=name,
                           tenant=target, details={"class": label} if label else None)
        return Response(status_code=204)

    if kind.folder != LESSONS_DIR:
        return

    @router.get(f"/{kind.path}/published/{{name}}/notebook",
                summary="A published lesson's notebook (its school; a class's: its members)")
    async def lesson_notebook(
        name: str,
        identity: CurrentUser,
        services: ServicesDep,
        tenant: Annotated[str | None, Query(max_length=64)] = None,
        group: Annotated[str | None, Query(max_length=120)] = None,
    ) -> dict[str, Any]:
        target = _visible_tenant(identity, tenant)
        label = _class(target, group)
        missing = NotFound(f"No lesson {name!r} is published to you.")
        if label is not None and label not in _classes_seen(identity, target, [label]):
            raise missing  # another class's lesson looks exactly like none
        try:
            raw = await asyncio.to_thread(read_published, services.settings.data_dir, target,
                                          name, label)
        except PublishError as exc:
            raise InvalidRequest(str(exc), param="name") from None
        except FileNotFoundError:
            raise missing from None
        return {"tenant": target, "name": name, "class": label, "notebook": json.loads(raw)}


for _kind in KINDS:
    _routes(_kind)
