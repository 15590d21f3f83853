"""The history on PostgreSQL as on SQLite: migrations, and three gateways starting at once.

The query suites (usage, dashboards, conversations, admin and retention) run on both
databases through the ``both_databases`` fixture in their own modules; this module
checks what is particular to having more than one process on one database.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, inspect, text

from gateway.history.store import HistoryStore
from tests.conftest import both_databases  # noqa: F401  (every test on SQLite and PostgreSQL)
from tests.support.procs import REPO

MIGRATE = """
import sys
from gateway.history.store import HistoryStore
store = HistoryStore.open(sys.argv[1])  # migrates to head, as a gateway does at start
store.close()
"""


def url_of(database: str, database_url: str | None, tmp_path: Path) -> str:
    return database_url or f"sqlite:///{tmp_path / 'shared.sqlite'}"


def test_the_history_is_where_the_settings_say(gateway_client: TestClient, database: str,
                                                 tokens: dict[str, str]) -> None:
    services: Any = gateway_client.app.app.state.services  # type: ignore[attr-defined]
    assert services.history.engine.dialect.name == database
    response = gateway_client.post(
        "/v1/chat/completions", headers={"Authorization": f"Bearer {tokens['student_a']}"},
        json={"model": "mock/echo", "messages": [{"role": "user", "content": "안녕 <b>hi</b>"}]})
    assert response.status_code == 200, response.text
    with services.history.engine.connect() as connection:
        row = connection.execute(text(
            "SELECT request_text, status, cost_status FROM runs ORDER BY id DESC LIMIT 1")).one()
    assert tuple(row) == ("안녕 <b>hi</b>", "ok", "priced")


def test_three_gateways_starting_at_the_same_moment_migrate_once(
        database: str, database_url: str | None, tmp_path: Path) -> None:
    url = url_of(database, database_url, tmp_path)
    procs = [subprocess.Popen([sys.executable, "-c", MIGRATE, url], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(3)]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err.decode()[-2000:] for _, err in results]
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            versions = connection.execute(text("SELECT version_num FROM alembic_version")).all()
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(REPO / "gateway/history/migrations"))
    assert [v[0] for v in versions] == [ScriptDirectory.from_config(config).get_current_head()]
    assert {"runs", "audit_log", "provider_keys", "conversations"} <= tables
    store = HistoryStore.open(url)  # and a fourth, later, finds nothing to do
    store.close()


def test_the_migrations_build_the_schema_the_code_declares(database: str,
                                                           database_url: str | None,
                                                           tmp_path: Path) -> None:
    """``models.py`` (what the queries are written against) and the migrations (what
    makes the tables) describe the same schema: columns, types, nullability, indexes and
    unique constraints, on both databases."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from gateway.history.models import metadata
    from gateway.history.store import upgrade

    engine = create_engine(url_of(database, database_url, tmp_path))
    try:
        upgrade(engine)
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, metadata)
    finally:
        engine.dispose()
    ignored = {"alembic_version"}
    real = [d for d in differences
            if not (d[0] == "remove_table" and d[1].name in ignored)]
    assert real == [], "\n".join(map(str, real))
