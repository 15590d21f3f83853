"""The hub's configuration exactly as Zero to JupyterHub builds it, without a cluster.

The z2jh chart (rendered with ``deploy/z2jh/values.yaml``) gives the hub pod a ConfigMap
(``jupyterhub_config.py``, ``z2jh.py`` and the names of its objects), a Secret (the
values, the tokens) and environment variables. Here those rendered objects are laid out
in a temporary folder as the pod would mount them, z2jh's own ``jupyterhub_config.py``
is executed with its mount point moved to that folder (and tornado's HTTP client left
as it is; nothing else is changed), and
the resulting configuration is loaded into a real ``JupyterHub`` application and a
real ``ClassroomKubeSpawner`` (KubeSpawner's ``_mock`` mode: no API server). What the
hub would run is then checked: the spawner class, the lab's environment (no provider
key anywhere), the lab pod's lessons hook and school folder, the services (the
gateway external, with its URL and token; the idle culler), roles and scopes.
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import sys
import types
from typing import Any

import pytest
import yaml
from traitlets.config import Config

from hub import roles
from tests.support.procs import REPO

MOUNT = "/usr/local/etc/jupyterhub/"
CURL = 'AsyncHTTPClient.configure("tornado.curl_httpclient.CurlAsyncHTTPClient")'


def rendered(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)


@pytest.fixture
def hub_config(z2jh_rendered, tmp_path, monkeypatch) -> tuple[Config, dict[str, str]]:
    etc = tmp_path / "etc-jupyterhub"
    config_map = rendered(z2jh_rendered, "ConfigMap", "hub")["data"]
    secret = {k: base64.b64decode(v).decode()
              for k, v in rendered(z2jh_rendered, "Secret", "hub")["data"].items()}
    for folder, files in (("config", config_map), ("secret", secret)):
        (etc / folder).mkdir(parents=True)
        for name, text in files.items():
            (etc / folder / name).write_text(text)
    # The pod's environment: the hub container's literal variables, the Services' ones.
    hub = rendered(z2jh_rendered, "Deployment", "hub")["spec"]["template"]["spec"]
    env = {e["name"]: e["value"] for e in hub["containers"][0]["env"] if "value" in e}
    env.update(HUB_SERVICE_HOST="10.0.0.10", HUB_SERVICE_PORT="8081",
               PROXY_API_SERVICE_HOST="10.0.0.11", PROXY_API_SERVICE_PORT="8001",
               PROXY_PUBLIC_SERVICE_HOST="10.0.0.12", PROXY_PUBLIC_SERVICE_PORT="80",
               POD_NAMESPACE="classroom")
    # The classroom's own mounts: the tenants ConfigMap and the hub's data volume.
    mounts = {m["mountPath"]: m["name"] for m in hub["containers"][0]["volumeMounts"]}
    assert mounts["/srv/classroom/tenants"] == "classroom-tenants"
    assert mounts["/srv/classroom/data"] == "classroom-hub-data"
    shutil.copytree(REPO / "tenants", tmp_path / "tenants")
    env.update(CLASSROOM_TENANTS_DIR=str(tmp_path / "tenants"),
               CLASSROOM_DATA_DIR=str(tmp_path / "data"))
    # KubeSpawner reads a kube config when it is made; this one names an API server that
    # is never contacted (the manifest is built, not sent).
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "none",
        "clusters": [{"name": "none", "cluster": {"server": "https://127.0.0.1:9"}}],
        "contexts": [{"name": "none", "context": {"cluster": "none", "user": "none"}}],
        "users": [{"name": "none", "user": {"token": "unused"}}]}))
    env["KUBECONFIG"] = str(kubeconfig)
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    z2jh = types.ModuleType("z2jh")
    source = config_map["z2jh.py"].replace(MOUNT, f"{etc}/")
    exec(compile(source, "z2jh.py", "exec"), z2jh.__dict__)
    monkeypatch.setitem(sys.modules, "z2jh", z2jh)
    c = Config()
    script = config_map["jupyterhub_config.py"].replace(MOUNT, f"{etc}/")
    # The one other change: z2jh picks pycurl (in its image) as tornado's HTTP client for
    # the whole process; this test process keeps tornado's own.
    assert CURL in script
    script = script.replace(CURL, "pass  # " + CURL)
    exec(compile(script, str(etc / "jupyterhub_config.py"), "exec"),
         {"get_config": lambda: c, "__file__": str(etc / "jupyterhub_config.py"),
          "__name__": "__config__"})
    return c, secret


def test_the_hub_runs_classroom_kube_labs_with_the_classroom_identity(hub_config):
    from jupyterhub.app import JupyterHub

    from hub.auth import ClassroomAuthenticator
    from hub.kube import ClassroomKubeSpawner

    c, secret = hub_config
    app = JupyterHub(config=c)
    assert app.spawner_class is ClassroomKubeSpawner
    assert app.authenticator_class is ClassroomAuthenticator
    assert app.db_url == "postgresql+psycopg://jupyterhub@postgres.classroom.svc:5432/jupyterhub"
    assert app.concurrent_spawn_limit == 100
    assert set(app.custom_scopes) == set(roles.custom_scopes())
    assert list(c.Spawner.server_token_scopes) == list(roles.SERVER_TOKEN_SCOPES)

    services = {s["name"]: s for s in app.services}
    gateway = services["gateway"]
    assert gateway["url"] == "http://classroom-gateway.classroom.svc:8000"
    assert "command" not in gateway  # external: its own Deployment, not the hub's child
    assert gateway["api_token"] == secret["hub.services.gateway.apiToken"]
    culler = services["jupyterhub-idle-culler"]
    assert "--timeout=3600" in culler["command"] and "--cull-every=300" in culler["command"]
    assert "classroom-admin" in services  # API-only, for `classroom accounts import`

    by_name = {r["name"]: r for r in app.load_roles}
    gateway_roles = [r for r in app.load_roles if "gateway" in r.get("services", [])]
    assert gateway_roles, "the gateway service has no role"
    tenants = {p.stem for p in (REPO / "tenants").glob("*.json")}
    for tenant in tenants:
        assert any(f"group=tenant-{tenant}" in json.dumps(r) for r in app.load_roles), tenant
    assert "jupyterhub-idle-culler" in by_name


def test_a_lab_pod_gets_the_gateway_and_never_a_provider_key(hub_config, validate):
    from hub.kube import ClassroomKubeSpawner

    c, _ = hub_config
    user = types.SimpleNamespace(name="stu1", id=7, url="/user/stu1/", escaped_name="stu1",
                                 groups=[types.SimpleNamespace(name="tenant-school_a")],
                                 server=None, spawners={}, settings={})

    async def spawn() -> tuple[dict[str, str], Any]:
        from kubernetes_asyncio.client import ApiClient

        spawner = ClassroomKubeSpawner(config=c, _mock=True, user=user)
        spawner.api_token = "hub-token-of-stu1"
        pod = await spawner.get_pod_manifest()
        async with ApiClient() as api:
            return spawner.get_env(), api.sanitize_for_serialization(pod)

    env, manifest = asyncio.run(spawn())
    url = "http://classroom-gateway.classroom.svc:8000/services/gateway"
    assert env["CLASSROOM_GATEWAY_URL"] == url
    assert env["OPENAI_BASE_URL"] == f"{url}/v1"
    assert env["ANTHROPIC_BASE_URL"] == f"{url}/anthropic"
    assert env["GOOGLE_GEMINI_BASE_URL"] == f"{url}/google"
    for name in ("CLASSROOM_API_TOKEN", "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY"):
        assert env[name] == "hub-token-of-stu1"  # the lab's own hub token, nothing else
    assert not any(v.startswith(("sk-", "AIza", "xi-")) for v in env.values() if v)

    validate([manifest])  # the pod KubeSpawner would create is valid Kubernetes
    container = manifest["spec"]["containers"][0]
    hook = container["lifecycle"]["postStart"]["exec"]["command"]
    assert hook[:2] == ["sh", "-c"]
    assert "-m hub.homes --home /home/jovyan --lessons /srv/classroom/notebooks/lessons" in hook[2]
    assert "--published /srv/classroom/published/school_a" in hook[2]
    mount = next(m for m in container["volumeMounts"] if m["name"] == "classroom-published")
    assert (mount["mountPath"], mount["subPath"], mount["readOnly"]) == (
        "/srv/classroom/published/school_a", "school_a", True)
    claim = next(v for v in manifest["spec"]["volumes"] if v["name"] == "classroom-published")
    assert claim["persistentVolumeClaim"]["claimName"] == "classroom-published"
    assert container["image"] == "registry.example.org/classroom/lab:0.1.0"
    pod_env = {e["name"]: e.get("value") for e in container["env"]}
    assert pod_env["CLASSROOM_GATEWAY_URL"] == url
    assert not [n for n in pod_env if n.endswith("_API_KEY") and pod_env[n] != env[n]]
