"""Policy: may this caller use this model? Plain Python, no web framework."""

from __future__ import annotations

from gateway.auth import USE, Identity
from gateway.errors import Forbidden, ModelNotAllowed
from gateway.tenants import Tenant


def tenant_of(identity: Identity, tenants: dict[str, Tenant]) -> Tenant:
    tenant = tenants.get(identity.tenant)
    if tenant is None:
        raise Forbidden(
            f"Your account belongs to the school '{identity.tenant}', which this classroom does "
            "not know. Ask an administrator to check your account."
        )
    return tenant


def check_can_use(identity: Identity) -> None:
    if not identity.has_scope(USE):
        raise Forbidden(
            "Your account is not allowed to call AI models (it lacks the classroom's "
            "'custom:gateway:use' permission). Ask your teacher."
        )


def check_model(identity: Identity, tenant: Tenant, model: str) -> None:
    if not tenant.allows_model(model):
        raise ModelNotAllowed(
            f"Your school ({tenant.display_name}) does not allow the model '{model}'. "
            "GET /v1/models lists the ones you can use.",
            param="model",
        )
