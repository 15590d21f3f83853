"""The admin's ``LoadTestWidget`` against a real gateway: per-round bars, report charts,
cancel, and refusals shown in place."""

from __future__ import annotations

from typing import Any

import pytest
from classroom import GatewayClient, GatewayError
from classroom.widgets.loadtest import LoadTestWidget

from tests.support.procs import wait_until

PLAN = """\
name: widget check
rounds:
  - model: mock/echo
    users: [1, 3]
    requests_per_user: 2
"""
LONG = """\
name: widget long
rounds:
  - model: mock/echo
    users: 3
    requests_per_user: 100
  - model: mock/lorem
    users: 2
"""


@pytest.fixture(scope="module")
def server(start_gateway: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    keys = tmp_path_factory.mktemp("widget-keys") / "keys.toml"
    keys.write_text('[[mock]]\nname = "w"\nconcurrency_limit = 2\n')
    return start_gateway(CLASSROOM_KEYS_FILE=str(keys), CLASSROOM_MOCK_TTFT_MS="30")


def widget(server: Any, who: str = "admin") -> LoadTestWidget:
    return LoadTestWidget(client=GatewayClient(server.url, server.tokens[who]), poll_interval=0.1)


def test_a_plan_runs_with_a_bar_per_round_and_the_report_charts(server: Any) -> None:
    w = widget(server)
    w.plan.value = PLAN
    checked = w.estimate()
    assert checked["estimate"]["requests"] == 8 and "worst case $0.0000" in w.message.value
    run_id = w.start()
    status = w.wait(30)
    assert status is not None and status["status"] == "done" and status["id"] == run_id
    bars = [row.children for row in w.rounds.children]
    assert [label.value for label, _, _ in bars] == ["mock/echo × 1 users", "mock/echo × 3 users"]
    assert [(bar.value, bar.max) for _, bar, _ in bars] == [(2, 2), (6, 6)]
    assert all("ok 100%" in text.value and "grade" in text.value for _, _, text in bars)
    assert w.report is not None and w.report["run"]["id"] == run_id
    names = {trace.name for trace in w.latency_chart.figure.data}
    assert names == {"mock/echo p50", "mock/echo p95"}
    assert {t.name for t in w.success_chart.figure.data} == {"mock/echo"}
    assert run_id in [r["id"] for r in w.refresh_runs()]
    assert w.start_button.disabled is False and w.cancel_button.disabled is True


def test_cancel_stops_the_run_and_still_shows_what_ran(server: Any) -> None:
    w = widget(server)
    w.start(LONG)
    wait_until(lambda: bool(w.status and w.status["requests_done"] >= 3), 30, "first calls")
    w.cancel()
    status = w.wait(30)
    assert status is not None and status["status"] == "cancelled"
    assert [r["status"] for r in status["rounds"]] == ["cancelled", "skipped"]
    assert 3 <= status["requests_done"] < 300
    assert w.report is not None and w.report["overall"]["requests"] == status["requests_done"]


def test_refusals_are_shown_in_the_widget(server: Any) -> None:
    w = widget(server, "teacher_a")
    assert w.last_error is not None and "administrators" in w.error.value
    with pytest.raises(GatewayError):
        w.start(PLAN)
    admin = widget(server)
    admin.plan.value = "rounds:\n  - model: mock/echo\n"
    admin.estimate_button.click()
    assert "rounds[0].users" in admin.error.value
