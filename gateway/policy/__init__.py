"""Policy: may this caller use this model, for this feature? Plain Python, no web framework.

Every door of the gateway (``/v1/*``, the Anthropic and Google faces, media, jobs,
load tests, and so the widgets) resolves its model through
:meth:`gateway.services.calls.Calls.resolve`, which calls these checks; none is repeated in
a router.

What each school's ``enabled_features`` switch on, by the kind of model a call uses
(the kind is the catalog's, so it holds whatever the endpoint or face):

    chat         chat, playground or compare (any one of them)
    embedding    embeddings
    image        images  (also Gemini image models called through generateContent)
    midjourney   images
    speech       speech
    video        video

``chat``, ``playground`` and ``compare`` are three widgets over the same chat
completions: a school with any one of them has chat completions on every face; a
school with none of the three has none. ``usage`` is the MyUsage widget; ``/api/me``
and ``/api/usage/me`` always answer, since everyone may see their own limits.
"""

from __future__ import annotations

from gateway.auth import USE, Identity
from gateway.config.tenants import Tenant
from gateway.errors import FeatureDisabled, Forbidden, ModelNotAllowed

FEATURES_OF_KIND: dict[str, tuple[str, ...]] = {
    "chat": ("chat", "playground", "compare"),
    "embedding": ("embeddings",),
    "image": ("images",),
    "midjourney": ("images",),
    "speech": ("speech",),
    "video": ("video",),
}
KIND_NAMES = {
    "chat": "chat completions", "embedding": "embeddings", "image": "image generation",
    "midjourney": "Midjourney-style images", "speech": "text to speech", "video": "video",
}


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


def check_feature(tenant: Tenant, kind: str) -> None:
    """A call of a model of ``kind`` needs one of its features switched on for the school."""
    needed = FEATURES_OF_KIND.get(kind, (kind,))
    if not any(feature in tenant.enabled_features for feature in needed):
        names = " or ".join(f"'{feature}'" for feature in needed)
        raise FeatureDisabled(
            f"Your school ({tenant.display_name}) has not switched on "
            f"{KIND_NAMES.get(kind, kind)} (the {names} feature). "
            "Ask your teacher if your class needs it.",
            param="model",
        )
