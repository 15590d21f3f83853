"""Configuration files with mistakes are refused with the file, line and field named, and the
running gateway keeps its last good configuration: ``POST /api/admin/reload`` and SIGHUP
re-read the tenant files and the keys file, apply them all or nothing, log and audit."""

from __future__ import annotations

import json
import os
import shutil
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from gateway.config.tenants import TenantFileError, load_tenants
from gateway.edge.app import create_asgi
from gateway.keypool.keys import KeysFileError, load_keys_file
from tests.support.procs import REPO, wait_until

SECRET = "sk-reload-test-secret-0000000000"
KEYS = f"""# the classroom's keys
[[openai]]
name = "openai-main"
api_key = "{SECRET}"
rpm_limit = 500

[[mock]]
name = "mock-a"
concurrency_limit = 50
"""


def auth(tokens: dict[str, str], who: str = "admin") -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens[who]}"}


@pytest.fixture
def tenants_dir(tmp_path: Path) -> Path:
    target = tmp_path / "tenants"
    shutil.copytree(REPO / "tenants", target)
    return target


@pytest.fixture
def keys_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys.toml"
    path.write_text(KEYS)
    return path


def edit_tenant(directory: Path, tenant: str, change: Callable[[dict[str, Any]], None]) -> Path:
    path = directory / f"{tenant}.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=2))
    return path


# -- the files on their own ------------------------------------------------------------------


def test_tenant_json_syntax_error_names_file_and_line(tenants_dir):
    path = tenants_dir / "school_b.json"
    lines = path.read_text().splitlines()
    lines[4] = lines[4] + " oops"
    path.write_text("\n".join(lines))
    with pytest.raises(TenantFileError) as caught:
        load_tenants(tenants_dir)
    assert str(caught.value).startswith(f"{path}:5: not valid JSON")
    assert caught.value.line == 5


@pytest.mark.parametrize("change,field,words", [
    (lambda t: t["branding"].update(accent_color="green"), "branding.accent_color", "pattern"),
    (lambda t: t["enabled_features"].append("teleport"), "enabled_features", "teleport"),
    (lambda t: t["quotas"]["student"].update(requests_per_day=-1), "quotas.student"
     ".requests_per_day", "greater than or equal to 0"),
    (lambda t: t.update(tenant_id="school_z"), "tenant_id", "file is named"),
    (lambda t: t["branding"].update(logo_path="logos/none.svg"), "branding.logo_path",
     "no file"),
    (lambda t: t.update(colour="red"), "colour", "Extra inputs"),
])
def test_tenant_field_mistakes_name_file_line_and_field(tenants_dir, change, field, words):
    path = edit_tenant(tenants_dir, "school_a", change)
    with pytest.raises(TenantFileError) as caught:
        load_tenants(tenants_dir)
    error = caught.value
    key = field.split(".")[-1]
    text = path.read_text().splitlines()
    assert error.field == field
    assert error.line is not None and f'"{key}"' in text[error.line - 1], (error, error.line)
    assert f"{path}:{error.line}: field '{field}'" in str(error)
    assert words in str(error)


@pytest.mark.parametrize("text,line,field,words", [
    (KEYS.replace("rpm_limit = 500", "rpm_limit = -5"), 5, "rpm_limit", "whole number"),
    (KEYS.replace("rpm_limit = 500", "rpm_limit = 10_000_000_000_000"), 5, "rpm_limit",
     "1,000,000,000"),
    (KEYS.replace("rpm_limit = 500", "rmp_limit = 500"), 5, "rmp_limit", "unknown field"),
    (KEYS.replace(f'api_key = "{SECRET}"\n', ""), 2, "api_key", "is required for openai"),
    (KEYS.replace(f'api_key = "{SECRET}"', "api_key = 12345"), 4, "api_key", "string"),
    (KEYS.replace('name = "mock-a"', 'name = "mock-a"\nis_active = "yes"'), 9, "is_active",
     "true or false"),
    (KEYS + '\n[[mock]]\nname = "mock-a"\n', 12, "name", "duplicate"),
    (KEYS.replace("[[mock]]", "[[mocks]]"), 7, None, "unknown provider 'mocks'"),
    (KEYS.replace(f'"{SECRET}"', f'"{SECRET}'), 4, None, "not valid TOML"),
])
def test_keys_file_mistakes_name_file_line_and_field(keys_file, text, line, field, words):
    keys_file.write_text(text)
    with pytest.raises(KeysFileError) as caught:
        load_keys_file(keys_file)
    error = caught.value
    assert (error.line, error.field) == (line, field), str(error)
    assert str(error).startswith(f"{keys_file}:{line}: ")
    assert words in str(error)
    assert SECRET not in str(error)  # a mistake is shown, never the key


def test_keys_json_file_mistake_names_line(tmp_path):
    path = tmp_path / "keys.json"
    path.write_text('{\n  "mock": [\n    {"name": "m", "rpm_limit": 0}\n  ]\n}\n')
    with pytest.raises(KeysFileError) as caught:
        load_keys_file(path)
    assert (caught.value.line, caught.value.field) == (3, "rpm_limit")


# -- reload through the API ----------------------------------------------------------------------


@pytest.fixture
def client(gateway_settings, tenants_dir, keys_file) -> Iterator[TestClient]:
    settings = gateway_settings.model_copy(update={"tenants_dir": tenants_dir,
                                                   "keys_file": keys_file})
    with TestClient(create_asgi(settings)) as client:
        yield client


def pool_keys(client: TestClient, tokens: dict[str, str]) -> set[str]:
    snapshot = client.get("/api/pool", headers=auth(tokens)).json()
    return {f"{k['provider']}/{k['name']}" for k in snapshot["keys"]}


def echo(client: TestClient, tokens: dict[str, str]) -> httpx.Response:
    return client.post("/v1/chat/completions", headers=auth(tokens, "student_a"), json={
        "model": "mock/echo", "messages": [{"role": "user", "content": "hi"}]})


def test_only_admins_reload(client, tokens):
    for who in ("student_a", "teacher_a"):
        response = client.post("/api/admin/reload", headers=auth(tokens, who))
        assert response.status_code == 403


def test_reload_applies_tenants_and_keys_everywhere(client, tokens, tenants_dir, keys_file):
    assert echo(client, tokens).status_code == 200
    edit_tenant(tenants_dir, "school_a", lambda t: (
        t.update(display_name="Hanbit High (renamed)"),
        t.update(models=[m for m in t["models"] if m != "mock/*"] + ["mock/lorem"])))
    keys_file.write_text(KEYS.replace('name = "mock-a"', 'name = "mock-b"'))

    response = client.post("/api/admin/reload", headers=auth(tokens))

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["added"], body["deactivated"]) == (["mock/mock-b"], ["mock/mock-a"])
    assert "school_a" in body["tenants"]
    assert pool_keys(client, tokens) == {"openai/openai-main", "mock/mock-b"}
    me = client.get("/api/me", headers=auth(tokens, "student_a")).json()
    assert me["tenant_display_name"] == "Hanbit High (renamed)"
    refused = echo(client, tokens)  # the allow-list the calls check is the new one
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "model_not_allowed"
    audit = client.get("/api/audit", headers=auth(tokens), params={"action": "config."}).json()
    assert [e["action"] for e in audit["items"]] == ["config.reload"]


@pytest.mark.parametrize("breakage", ["tenant", "keys"])
def test_a_mistake_keeps_the_running_configuration(client, tokens, tenants_dir, keys_file,
                                                   breakage, caplog):
    edit_tenant(tenants_dir, "school_a", lambda t: t.update(display_name="Should not show"))
    if breakage == "tenant":
        bad = edit_tenant(tenants_dir, "school_b",
                          lambda t: t["branding"].update(accent_color="blue"))
        field = "branding.accent_color"
    else:
        bad = keys_file
        keys_file.write_text(KEYS.replace('name = "mock-a"', 'name = "mock-b"')
                             .replace("rpm_limit = 500", "rpm_limit = 0"))
        field = "rpm_limit"
    before = pool_keys(client, tokens)

    response = client.post("/api/admin/reload", headers=auth(tokens))

    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "config_invalid"
    assert error["file"] == str(bad) and error["problems"][0]["field"] == field
    line = error["problems"][0]["line"]
    assert isinstance(line, int) and f"{bad}:{line}:" in error["message"]
    assert "running one is kept" in error["message"]
    assert SECRET not in response.text
    assert pool_keys(client, tokens) == before
    me = client.get("/api/me", headers=auth(tokens, "student_a")).json()
    assert me["tenant_display_name"] == "Hanbit High School"
    assert echo(client, tokens).status_code == 200
    assert any("not reloaded" in r.getMessage() and str(bad) in r.getMessage()
               for r in caplog.records if r.levelname == "ERROR")
    audit = client.get("/api/audit", headers=auth(tokens), params={"action": "config."}).json()
    entry = audit["items"][0]
    assert entry["action"] == "config.reload_refused" and entry["target"] == str(bad)


# -- reload by signal, in a real gateway process --------------------------------------------------


def test_sighup_reloads_and_keeps_the_last_good_configuration(start_gateway, tokens,
                                                              tenants_dir, keys_file):
    server = start_gateway(CLASSROOM_TENANTS_DIR=str(tenants_dir),
                           CLASSROOM_KEYS_FILE=str(keys_file))
    headers = auth(tokens)

    def keys() -> set[str]:
        snapshot = httpx.get(server.url + "/api/pool", headers=headers, timeout=10).json()
        return {f"{k['provider']}/{k['name']}" for k in snapshot["keys"]}

    assert keys() == {"openai/openai-main", "mock/mock-a"}
    keys_file.write_text(KEYS.replace('name = "mock-a"', 'name = "mock-b"'))
    os.kill(server.process.pid, signal.SIGHUP)
    wait_until(lambda: keys() == {"openai/openai-main", "mock/mock-b"}, 30, "reload on SIGHUP",
               server.process)

    keys_file.write_text(KEYS.replace("[[mock]]", "[[mock]]\nrpm_limit = -1"))
    os.kill(server.process.pid, signal.SIGHUP)
    wait_until(lambda: "not reloaded" in server.log(), 30, "refused reload logged",
               server.process)
    assert f"{keys_file}:8: mock[0] (mock-a): field 'rpm_limit'" in server.log()
    assert keys() == {"openai/openai-main", "mock/mock-b"}
    assert server.process.poll() is None  # still serving
    assert SECRET not in server.log()
