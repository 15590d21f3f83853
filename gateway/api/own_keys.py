"""A user's own provider keys: registered, listed by name and last four characters only,
described, deleted; every change audited. Sealed at rest with the same AES-GCM box as
the pooled keys (:class:`gateway.keypool.store.SecretBox`), in their own table, and never
part of the pool. A school lists the roles allowed in its tenant file (``own_keys_for``;
teachers and admins by default, never students unless the school adds them)."""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection

from gateway.api.conversations import Text
from gateway.api.deps import CurrentUser, Services, ServicesDep
from gateway.auth import Identity
from gateway.errors import Conflict, Forbidden, InvalidRequest, NotFound
from gateway.history.audit import record_audit
from gateway.history.models import own_keys
from gateway.keypool.store import SecretBox

router = APIRouter(prefix="/api/own-keys", tags=["Own keys"])

PROVIDERS = ("openai", "anthropic", "google", "elevenlabs", "kling", "midjourney")
Name = Annotated[Text, Field(min_length=1, max_length=120, pattern=r"^[\w .@:-]+$")]


class OwnKeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider: str = Field(max_length=32)
    name: Name
    secret: Text = Field(min_length=8, max_length=500, repr=False)
    description: Text | None = Field(default=None, max_length=500)


class OwnKeyPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: Text | None = Field(default=None, max_length=500)


def _public(row: Any) -> dict[str, Any]:
    return {k: row[k] for k in ("id", "provider", "name", "description", "last4",
                                "created_at", "updated_at")}


def _aad(row_id: str, user: str, tenant: str) -> str:
    # Bound to its owner: a sealed secret copied to another row does not open.
    return f"own:{tenant}:{user}:{row_id}"


def _box(services: Services) -> SecretBox:
    return services.keystore.box  # the gateway's one box for secrets at rest


def _allowed(identity: Identity, services: Services) -> None:
    tenant = services.tenants.get(identity.tenant)
    roles = tenant.own_keys_for if tenant is not None else []
    if identity.role not in roles and not identity.is_admin:
        raise Forbidden("Your school does not let your role use its own provider keys. Ask "
                        "your teacher; the school's models work without one.")


def _mine(identity: Identity) -> tuple[Any, ...]:
    return (own_keys.c.user == identity.name, own_keys.c.tenant == identity.tenant)


def _find(c: Connection, identity: Identity, key_id: str) -> dict[str, Any]:
    row = c.execute(select(own_keys).where(own_keys.c.id == key_id, *_mine(identity))
                    ).mappings().first()
    if row is None:
        raise NotFound(f"You have no own key with id {key_id!r}.")
    return dict(row)


def open_secret(box: SecretBox, row: dict[str, Any]) -> str:
    """The plain key of a row (for the call path only; never in a response or a log)."""
    return box.open(row["secret_enc"], _aad(row["id"], row["user"], row["tenant"]))


@router.get("", summary="Your own provider keys: name and last four characters only")
async def list_own_keys(identity: CurrentUser, services: ServicesDep) -> dict[str, Any]:
    rows = await services.history.read(lambda c: c.execute(
        select(own_keys).where(*_mine(identity)).order_by(own_keys.c.created_at)
    ).mappings().all())
    return {"items": [_public(r) for r in rows]}


@router.post("", status_code=201, summary="Register your own provider key")
async def create_own_key(body: OwnKeyIn, identity: CurrentUser, services: ServicesDep
                         ) -> dict[str, Any]:
    _allowed(identity, services)
    if body.provider not in PROVIDERS:
        raise InvalidRequest(f"provider must be one of {', '.join(PROVIDERS)}.",
                             param="provider")
    secret = body.secret.strip()
    if any(ch.isspace() for ch in secret) or len(secret) < 8:
        raise InvalidRequest("That does not look like a provider key (8 or more characters, "
                             "no spaces).", param="secret")
    box, now = _box(services), time.time()
    row_id = f"ownkey_{uuid.uuid4().hex[:20]}"
    row = {"id": row_id, "user": identity.name, "tenant": identity.tenant,
           "provider": body.provider, "name": body.name, "description": body.description,
           "secret_enc": box.seal(secret, _aad(row_id, identity.name, identity.tenant)),
           "last4": secret[-4:], "created_at": now, "updated_at": now}
    taken = await services.history.read(lambda c: c.execute(
        select(own_keys.c.id).where(*_mine(identity), own_keys.c.name == body.name)).first())
    if taken is not None:
        raise Conflict(f"You already have a key named {body.name!r}.", param="name")
    await services.history.write(lambda c: c.execute(insert(own_keys).values(**row)))
    await record_audit(services.history, identity, "own_key.create", target=body.name,
                       details={"provider": body.provider, "last4": row["last4"]})
    return _public(row)


@router.patch("/{key_id}", summary="Change the description of your own key")
async def update_own_key(key_id: str, body: OwnKeyPatch, identity: CurrentUser,
                         services: ServicesDep) -> dict[str, Any]:
    await services.history.read(lambda c: _find(c, identity, key_id))

    def write(c: Connection) -> dict[str, Any]:
        c.execute(update(own_keys).where(own_keys.c.id == key_id, *_mine(identity)).values(
            description=body.description, updated_at=time.time()))
        return _find(c, identity, key_id)

    row = await services.history.write(write)
    await record_audit(services.history, identity, "own_key.update", target=row["name"])
    return _public(row)


@router.delete("/{key_id}", status_code=204, summary="Delete your own key")
async def delete_own_key(key_id: str, identity: CurrentUser, services: ServicesDep
                         ) -> Response:
    row = await services.history.read(lambda c: _find(c, identity, key_id))
    await services.history.write(lambda c: c.execute(
        delete(own_keys).where(own_keys.c.id == key_id, *_mine(identity))))
    await record_audit(services.history, identity, "own_key.delete", target=row["name"],
                       details={"provider": row["provider"], "last4": row["last4"]})
    return Response(status_code=204)
