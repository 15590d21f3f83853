"""``GET /health?ready=true``, the Kubernetes readiness probe of the gateway chart: ready
while the history database answers, 503 while it does not, ready again after."""

from __future__ import annotations

from sqlalchemy import create_engine


def test_readiness_follows_the_database(gateway_client, tmp_path):
    assert gateway_client.get("/health").json()["status"] == "ok"
    ready = gateway_client.get("/health", params={"ready": "true"})
    assert ready.status_code == 200 and ready.json()["status"] == "ok"

    history = gateway_client.app.app.state.services.history  # under the edge's fast path
    working = history.engine
    # A database that cannot be opened: its folder does not exist.
    history.engine = create_engine(f"sqlite:///{tmp_path / 'gone' / 'gateway.sqlite'}")
    try:
        down = gateway_client.get("/health", params={"ready": "true"})
        assert down.status_code == 503
        assert down.json() == {"status": "unavailable", "database": "OperationalError"}
        assert gateway_client.get("/health").status_code == 200  # alive, not ready
    finally:
        history.engine.dispose()
        history.engine = working
    assert gateway_client.get("/health", params={"ready": "true"}).status_code == 200
