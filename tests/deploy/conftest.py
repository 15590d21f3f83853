"""Fixtures for the deployment tests (no cluster here: charts are rendered offline).

- ``render``: renders a chart folder with values through Helm's own Go SDK
  (``helm-python-sdk``, which bundles it) and returns every object it produced.
- ``validate``: checks objects against the Kubernetes API's OpenAPI schemas
  (``kubernetes-validate``, offline, strict: unknown fields are errors).
- ``z2jh_rendered``: the Zero to JupyterHub chart (a copy in ``z2jh_chart/``,
  BSD-3, from jupyterhub/zero-to-jupyterhub-k8s at 48ea50e3) rendered with
  ``deploy/z2jh/values.yaml`` and a school's secrets.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.procs import REPO

KUBE_VERSION = "1.32.0"  # the oldest Kubernetes z2jh 4.x supports
Z2JH_CHART = Path(__file__).parent / "z2jh_chart"
SCHOOL_SECRETS = {
    "hub": {"db": {"password": "pg-hub-password"},
            "services": {"gateway": {"apiToken": "a" * 64}}},
    "proxy": {"https": {"enabled": True, "hosts": ["classroom.school.example"],
                        "letsencrypt": {"contactEmail": "it@school.example"}}},
}


def objects_of(manifests: dict[str, str]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for name, text in sorted(manifests.items()):
        if not name.endswith((".yaml", ".yml")):
            continue
        found += [doc for doc in yaml.safe_load_all(text) if doc]
    return found


@pytest.fixture(scope="session")
def render() -> Callable[..., list[dict[str, Any]]]:
    import helm_python as helm

    def run(chart: Path, values: dict[str, Any] | None = None,
            name: str = "classroom") -> list[dict[str, Any]]:
        with helm.Chart.load(str(chart)) as loaded:
            return objects_of(loaded.render(values or {}, name=name, namespace="classroom",
                                            is_install=True))

    return run


@pytest.fixture(scope="session")
def validate() -> Callable[[list[dict[str, Any]]], list[str]]:
    import kubernetes_validate

    def check(objects: list[dict[str, Any]]) -> list[str]:
        kinds = []
        for obj in objects:
            try:
                kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)
            except kubernetes_validate.ValidationError as error:
                raise AssertionError(
                    f"{obj['kind']}/{obj['metadata'].get('name')}: {error.message} "
                    f"at {list(error.path)}") from None
            kinds.append(obj["kind"])
        return kinds

    return check


def merged(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(
            out.get(key), dict) else value
    return out


@pytest.fixture(scope="session")
def z2jh_values() -> dict[str, Any]:
    values = yaml.safe_load((REPO / "deploy" / "z2jh" / "values.yaml").read_text())
    return merged(values, SCHOOL_SECRETS)


@pytest.fixture(scope="session")
def z2jh_rendered(render: Callable[..., list[dict[str, Any]]],
                  z2jh_values: dict[str, Any]) -> list[dict[str, Any]]:
    return render(Z2JH_CHART, z2jh_values)
