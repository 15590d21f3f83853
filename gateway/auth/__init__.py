"""Identity: turning a caller's token into who they are."""

from gateway.auth.identity import (
    ADMIN,
    TEACH,
    USE,
    HubTokens,
    Identity,
    StaticTokens,
    TokenResolver,
    identify,
    identity_from_groups,
    token_from_headers,
)

__all__ = [
    "ADMIN", "TEACH", "USE", "HubTokens", "Identity", "StaticTokens", "TokenResolver",
    "identify", "identity_from_groups", "token_from_headers",
]
