"""The contract the hub, the gateway and the kernel extension share (gateway/contract.py).

It must load in any of the three images without a server framework, and every part
must take its names from it rather than keep a copy.
"""

from __future__ import annotations

import json
import subprocess
import sys

from classroom import _config

import hub.homes
import hub.labhooks
import hub.roles
from gateway import contract, published
from gateway.auth import identity
from gateway.config import tenants

HEAVY = ("fastapi", "starlette", "jupyterhub", "tornado", "pydantic", "sqlalchemy", "httpx",
         "traitlets", "ipykernel", "uvicorn")


def test_the_contract_imports_only_the_standard_library():
    code = ("import json, sys; import gateway.contract; "
            "print(json.dumps(sorted(m.split('.')[0] for m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    loaded = set(json.loads(out))
    assert not loaded & set(HEAVY), f"gateway.contract pulls in {sorted(loaded & set(HEAVY))}"
    ours = {name for name in loaded if name in ("gateway", "hub", "classroom")}
    assert ours == {"gateway"}


def test_every_part_uses_the_contract_names_not_a_copy():
    assert hub.roles.SCOPE_USE is contract.SCOPE_USE
    assert hub.roles.SCOPE_TEACH is contract.SCOPE_TEACH
    assert hub.roles.SCOPE_ADMIN is contract.SCOPE_ADMIN
    assert hub.roles.CLASSROOM_GROUP_PREFIXES is contract.GROUP_PREFIXES
    assert hub.roles.groups_for is contract.groups_for
    assert identity.ROLE_SCOPES is contract.ROLE_SCOPES
    assert (identity.USE, identity.TEACH, identity.ADMIN) == (
        contract.SCOPE_USE, contract.SCOPE_TEACH, contract.SCOPE_ADMIN)
    assert tenants.ROLES is contract.ROLES and tenants.TENANT_ID is contract.TENANT_ID
    assert published.PUBLISHED_DIR is contract.PUBLISHED_DIR
    assert published.LESSONS_DIR is contract.LESSONS_DIR
    assert hub.homes.PUBLISHED is contract.PUBLISHED_DIR
    assert hub.homes.LESSONS is contract.LESSONS_DIR
    assert hub.labhooks.PUBLISHED is contract.PUBLISHED_DIR
    assert _config.GATEWAY_URL_VAR is contract.GATEWAY_URL_VAR
    assert _config.API_TOKEN_VAR is contract.API_TOKEN_VAR


def test_the_gateway_reads_back_the_groups_the_hub_gives():
    for tenant in ("s_a", "b2"):
        for role in contract.ROLES:
            who = identity.identity_from_groups("x", contract.groups_for(tenant, role), [])
            assert (who.tenant, who.role) == (tenant, role)
