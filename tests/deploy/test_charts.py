"""The gateway's Helm chart and the z2jh values, rendered offline by Helm's own SDK and
validated against the Kubernetes API schemas (strict), for the defaults and for a
production-like values file; and the chart's refusals."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import yaml

from tests.support.procs import REPO

GATEWAY_CHART = REPO / "deploy" / "helm" / "classroom-gateway"
PRODUCTION = yaml.safe_load((GATEWAY_CHART / "values-production.yaml").read_text())
PROVIDER_KEY_NAMES = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY",
                      "GOOGLE_API_KEY", "ELEVENLABS_API_KEY")


def by_kind(objects: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    kinds: dict[str, list[dict[str, Any]]] = {}
    for obj in objects:
        kinds.setdefault(obj["kind"], []).append(obj)
    return kinds


def container_env(deployment: dict[str, Any]) -> dict[str, Any]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_the_gateway_chart_with_default_values_is_valid_kubernetes(render, validate):
    objects = render(GATEWAY_CHART, name="classroom-gateway")
    kinds = by_kind(objects)
    assert sorted(validate(objects)) == ["Deployment", "NetworkPolicy", "Service"]
    deployment = kinds["Deployment"][0]
    spec = deployment["spec"]["template"]["spec"]
    container = spec["containers"][0]
    assert deployment["spec"]["replicas"] == 1
    assert container["readinessProbe"]["httpGet"]["path"] == "/health?ready=true"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    env = container_env(deployment)
    assert env["JUPYTERHUB_API_TOKEN"] == {"secretKeyRef": {
        "name": "hub", "key": "hub.services.gateway.apiToken"}}  # z2jh's hub Secret
    assert env["CLASSROOM_MASTER_KEY"]["secretKeyRef"]["key"] == "master-key"
    assert "CLASSROOM_REDIS_URL" not in env and "CLASSROOM_DB_URL" not in env
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert kinds["Service"][0]["spec"]["ports"][0]["port"] == 8000
    allowed = kinds["NetworkPolicy"][0]["spec"]["ingress"][0]["from"]
    assert {"component": "singleuser-server"} in [p["podSelector"]["matchLabels"]
                                                  for p in allowed]


def test_the_gateway_chart_with_production_values_is_valid_kubernetes(render, validate):
    objects = render(GATEWAY_CHART, PRODUCTION, name="classroom-gateway")
    kinds = by_kind(objects)
    assert sorted(validate(objects)) == ["ConfigMap", "Deployment",
                                         "HorizontalPodAutoscaler", "NetworkPolicy",
                                         "PodDisruptionBudget", "Service"]
    deployment = kinds["Deployment"][0]
    assert "replicas" not in deployment["spec"]  # the autoscaler owns the count
    env = container_env(deployment)
    assert env["CLASSROOM_REDIS_URL"] == {"secretKeyRef": {
        "name": "classroom-gateway-secrets", "key": "redis-url"}}
    assert env["CLASSROOM_DB_URL"] == {"secretKeyRef": {
        "name": "classroom-gateway-secrets", "key": "db-url"}}
    assert env["SSL_CERT_FILE"] == "/etc/classroom/ca/ca-bundle.crt"
    assert env["HTTPS_PROXY"] == "http://proxy.school.example:3128"
    assert env["NO_PROXY"] == ".svc,.cluster.local,10.0.0.0/8"
    spec = deployment["spec"]["template"]["spec"]
    mounts = {m["mountPath"]: m["name"] for m in spec["containers"][0]["volumeMounts"]}
    assert mounts["/var/lib/classroom/published"] == "published"
    assert mounts["/etc/classroom/ca"] == "ca"
    hpa = kinds["HorizontalPodAutoscaler"][0]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (3, 8)
    assert kinds["PodDisruptionBudget"][0]["spec"]["minAvailable"] == 1
    tenants = kinds["ConfigMap"][0]["data"]
    assert json.loads(tenants["school_a.json"])["id"] == "school_a"
    assert spec["volumes"][2]["configMap"]["name"] == kinds["ConfigMap"][0]["metadata"]["name"]


@pytest.mark.parametrize("values, words", [
    ({"replicaCount": 2}, "needs redis"),
    ({"autoscaling": {"enabled": True}}, "needs redis"),
    ({"replicaCount": 3, "redis": {"url": "redis://redis:6379/0"}}, "needs database"),
])
def test_the_gateway_chart_refuses_replicas_that_would_not_share_one_pool(
        render, values, words):
    import helm_python as helm

    with pytest.raises(helm.HelmError, match=words):
        render(GATEWAY_CHART, values, name="classroom-gateway")


def test_helm_lint_finds_nothing_in_the_gateway_chart():
    import helm_python as helm

    report = helm.lint(str(GATEWAY_CHART), strict=True, kube_version="1.32.0")
    assert report["total_charts_linted"] == 1 and report["errors"] == []
    # Helm's severities: 1 information, 2 warning, 4 error; only "icon is recommended" is left.
    assert [m["error"] for m in report["messages"] if m["severity"] >= 1] == [
        "icon is recommended"]


def test_z2jh_with_our_values_is_valid_kubernetes(z2jh_rendered, validate):
    kinds = by_kind(z2jh_rendered)
    validate(z2jh_rendered)
    hub = next(d for d in kinds["Deployment"] if d["metadata"]["name"] == "hub")
    env = container_env(hub)
    assert env["CLASSROOM_GATEWAY_URL"] == (
        "http://classroom-gateway.classroom.svc:8000/services/gateway")
    lab_policy = next(p for p in kinds["NetworkPolicy"] if p["metadata"]["name"] == "singleuser")
    egress = lab_policy["spec"]["egress"]
    to_gateway = [rule for rule in egress if any(
        peer.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name")
        == "classroom-gateway" for peer in rule.get("to", []))]
    assert to_gateway and to_gateway[0]["ports"] == [{"port": 8000, "protocol": "TCP"}]
    secret = next(s for s in kinds["Secret"] if s["metadata"]["name"] == "hub")
    token = base64.b64decode(secret["data"]["hub.services.gateway.apiToken"]).decode()
    assert token == "a" * 64  # what the gateway chart reads from this Secret
    # The hub's PostgreSQL password: z2jh's config hands it to the hub as PGPASSWORD.
    assert base64.b64decode(secret["data"]["hub.db.password"]) == b"pg-hub-password"
    rendered = json.dumps(z2jh_rendered)
    for name in PROVIDER_KEY_NAMES:
        assert name not in rendered, f"{name} appears in the z2jh manifests"


@pytest.mark.parametrize("values, words", [
    ({"replicas": 3}, "replicas"),  # a typo of replicaCount
    ({"service": {"port": 70000}}, "port"),
    ({"redis": {"uri": "redis://r"}}, "uri"),
])
def test_the_gateway_chart_refuses_values_it_does_not_know(render, values, words):
    import helm_python as helm

    with pytest.raises(helm.HelmError, match=words):
        render(GATEWAY_CHART, values, name="classroom-gateway")
