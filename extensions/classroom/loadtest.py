"""``classroom loadtest``: plan, run and replay load tests against a gateway (admins).

Everything goes through the gateway's ``/api/loadtests`` (``--gateway URL``,
default ``CLASSROOM_GATEWAY_URL``; ``--token``, default ``CLASSROOM_API_TOKEN``)::

    classroom loadtest example > plan.yaml          # a commented example plan
    classroom loadtest run plan.yaml --mode mock --report out.html --json out.json
    classroom loadtest run plan.yaml --mode real --cost-cap 2.50   # shows the cost first
    classroom loadtest lesson-save 03 --user teach_a --since 2026-11-21T09:00 --until ...
    classroom loadtest replay --lesson 03 --students 40 --window 60s --target 5s
    classroom loadtest class-start --students 40 [--window 0s] [--cores 2]   # labs, no gateway
    classroom loadtest list | status ID | cancel ID | report ID --report out.html

:class:`LoadTestAPI` is the same API from Python (the admin widget uses it).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ._exceptions import GatewayError

BASE = "/api/loadtests"
ENDED = ("done", "cancelled", "stopped_at_cap", "failed", "interrupted")

EXAMPLE_PLAN = """\
# A load-test plan for `classroom loadtest run plan.yaml` (YAML; JSON works too).
# Each round names a model and one or more numbers of concurrent users; it runs
# once per number of users. Simulated users are students of your school in the
# lowest priority tier: a load test never delays a real student.
name: before lesson 3

# mock: the free mock provider (TTFT and tokens/s from the gateway's
#       CLASSROOM_MOCK_TTFT_MS and CLASSROOM_MOCK_TOKENS_PER_SECOND).
# real: real providers, admins only; needs cost_cap_usd and max_tokens,
#       shows the worst-case cost before it starts and stops at the cap.
mode: mock
# cost_cap_usd: 2.50

defaults:                      # for every round that does not say otherwise
  requests_per_user: 3         # calls each user makes, one after the other
  think_time_s: [0.5, 2.0]     # pause between a user's calls: seconds, or [min, max]
  stream: true                 # streamed answers (time to first token is measured)
  max_tokens: 64
  prompt: Explain in three sentences what a large language model is.

rounds:
  - model: mock/lorem
    users: [1, 5, 10, 20, 40]  # one round per number of users
  - model: mock/echo
    users: 20
    stream: false
    ramp_up_s: 10              # users arrive evenly over 10 s instead of all at once
  # A lesson: every user makes these calls in order (gap_s: pause before a call).
  # `lesson: "03"` replays a saved lesson recording instead (see lesson-save).
  - steps:
      - {model: mock/echo, prompt: "Hello!", gap_s: 0}
      - {model: mock/lorem, prompt: "What is a token?", gap_s: 5, max_tokens: 120}
    users: 10
    ramp_up_s: 20
"""


def parse_duration(text: str) -> float:
    """Seconds from ``90``, ``90s``, ``1.5m``, ``2h``."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h)?\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 60s, 2m)")
    unit = match.group(2) or "s"
    scale = {"ms": 0.001, "s": 1, "m": 60, "min": 60, "h": 3600}[unit]
    return float(match.group(1)) * scale


def read_plan(path: str | Path) -> dict[str, Any]:
    """A plan file (YAML or JSON) as a mapping; the gateway checks its fields."""
    import yaml

    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise GatewayError(f"Cannot read the plan {str(path)!r}: {exc.strerror}.",
                           code="invalid_request") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise GatewayError(f"The plan {str(path)!r} is not valid YAML or JSON: {exc}",
                           code="invalid_request") from None
    if not isinstance(data, dict):
        raise GatewayError(f"The plan {str(path)!r} must be a mapping with 'rounds'.",
                           code="invalid_request")
    return data


class LoadTestAPI:
    """The gateway's ``/api/loadtests``, from Python."""

    def __init__(self, client: Any = None, *, base_url: str | None = None,
                 token: str | None = None) -> None:
        if client is None:
            from ._client import GatewayClient

            client = GatewayClient(base_url, token, source="cli")
        self.client = client

    def start(self, plan: dict[str, Any] | str, *, mode: str | None = None,
              cost_cap_usd: float | None = None, dry_run: bool = False) -> dict[str, Any]:
        """Start a plan (a mapping, or YAML/JSON text); ``dry_run`` only estimates it."""
        body: dict[str, Any] = {"dry_run": dry_run}
        body["plan_text" if isinstance(plan, str) else "plan"] = plan
        if mode is not None:
            body["mode"] = mode
        if cost_cap_usd is not None:
            body["cost_cap_usd"] = cost_cap_usd
        result: dict[str, Any] = self.client.post(BASE, json=body)
        return result

    def status(self, run_id: int) -> dict[str, Any]:
        result: dict[str, Any] = self.client.get(f"{BASE}/{run_id}")
        return result

    def runs(self, limit: int = 50) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.client.get(BASE, params={"limit": limit})["items"]
        return items

    def cancel(self, run_id: int) -> dict[str, Any]:
        result: dict[str, Any] = self.client.post(f"{BASE}/{run_id}/cancel")
        return result

    def report(self, run_id: int) -> dict[str, Any]:
        result: dict[str, Any] = self.client.get(f"{BASE}/{run_id}/report")
        return result

    def report_html(self, run_id: int) -> str:
        response = self.client.request("GET", f"{BASE}/{run_id}/report",
                                       params={"format": "html"})
        return str(response.text)

    def samples(self, run_id: int) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.client.get(f"{BASE}/{run_id}/samples")["items"]
        return items

    def replay(self, **body: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.client.post(f"{BASE}/replay",
                                                  json={k: v for k, v in body.items()
                                                        if v is not None})
        return result

    def lessons(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.client.get(f"{BASE}/lessons")["lessons"]
        return items

    def save_lesson(self, **body: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.client.post(f"{BASE}/lessons",
                                                  json={k: v for k, v in body.items()
                                                        if v is not None})
        return result

    def wait(self, run_id: int, *, timeout: float | None = None, interval: float = 0.5,
             on_status: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Poll until the run has ended (or ``timeout``); returns its last status."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            status = self.status(run_id)
            if on_status is not None:
                on_status(status)
            if status["status"] in ENDED:
                return status
            if deadline is not None and time.monotonic() > deadline:
                return status
            time.sleep(interval)  # polling interval; the status decides


# -- the command ------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="classroom loadtest",
                                     description="Load tests and capacity planning (admins).")
    parser.add_argument("--gateway", help="the gateway's URL (default: CLASSROOM_GATEWAY_URL)")
    parser.add_argument("--token", help="an admin's token (default: CLASSROOM_API_TOKEN)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("example", help="print a commented example plan")

    run = sub.add_parser("run", help="run a plan and write its report")
    run.add_argument("plan", help="the plan file (YAML or JSON)")
    run.add_argument("--mode", choices=("mock", "real"), help="overrides the plan's mode")
    run.add_argument("--cost-cap", type=float, metavar="USD",
                     help="real mode: stop before spending more than this")
    run.add_argument("--yes", action="store_true", help="real mode: do not ask before starting")
    run.add_argument("--dry-run", action="store_true", help="check and estimate only")
    run.add_argument("--report", metavar="HTML", help="write the HTML report here")
    run.add_argument("--json", metavar="JSON", help="write the report's figures here")
    run.add_argument("--interval", type=float, default=0.5, help=argparse.SUPPRESS)

    replay = sub.add_parser("replay", help="predict a lesson for N students, and the keys needed")
    replay.add_argument("--lesson", help="a saved lesson recording (e.g. 03)")
    replay.add_argument("--user", help="or: the user whose recorded calls make the lesson")
    replay.add_argument("--since", help="with --user: from this time (ISO 8601 or UNIX)")
    replay.add_argument("--until", help="with --user: until this time")
    replay.add_argument("--source", help="only calls from this source (widget, sdk, ...)")
    replay.add_argument("--tenant", help="the school (admins; default: yours)")
    replay.add_argument("--students", type=int, required=True)
    replay.add_argument("--window", type=parse_duration, default=60.0,
                        help="students arrive evenly within it (default 60s)")
    replay.add_argument("--target", type=parse_duration, default=5.0,
                        help="p95 queue wait to keep under (default 5s)")
    replay.add_argument("--run", action="store_true",
                        help="also run the replay live (mock) and print its report")
    replay.add_argument("--json", metavar="JSON", help="write the prediction here")

    start = sub.add_parser("class-start",
                           help="predict how long N students wait for their labs (no gateway)")
    start.add_argument("--students", type=int, required=True)
    start.add_argument("--window", type=parse_duration, default=0.0,
                       help="students ask evenly within it (default 0s: all at the bell)")
    start.add_argument("--cores", type=int,
                       help="CPU cores of the hub's machine (default: this one's)")
    start.add_argument("--parallel", type=int,
                       help="labs starting at once (CLASSROOM_PARALLEL_STARTS; default: cores)")
    start.add_argument("--cpu-per-lab", type=float,
                       help="CPU seconds per lab start (default: measured, benchmarks/RESULTS.md)")
    start.add_argument("--cpu-share", type=float, default=1.0,
                       help="part of the cores free for the classroom "
                            "(default 1: nothing else runs)")
    start.add_argument("--memory-gib", type=float,
                       help="the machine's memory, to say how many labs it holds")
    start.add_argument("--json", metavar="JSON", help="write the prediction here")

    save = sub.add_parser("lesson-save", help="save a lesson recording under a name")
    save.add_argument("name")
    save.add_argument("--user")
    save.add_argument("--since")
    save.add_argument("--until")
    save.add_argument("--source")
    save.add_argument("--tenant")
    save.add_argument("--note")

    sub.add_parser("lessons", help="list saved lesson recordings")
    sub.add_parser("list", help="list load tests")
    for name, text in (("status", "show a load test"), ("cancel", "cancel a running load test")):
        one = sub.add_parser(name, help=text)
        one.add_argument("id", type=int)
    rep = sub.add_parser("report", help="fetch a load test's report")
    rep.add_argument("id", type=int)
    rep.add_argument("--report", metavar="HTML")
    rep.add_argument("--json", metavar="JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.command == "example":
        print(EXAMPLE_PLAN, end="")
        return 0
    from rich.console import Console

    from . import _loadtest_cli as cli

    if args.command == "class-start":
        return cli.class_start(args)

    console = Console(stderr=True)
    api = LoadTestAPI(base_url=args.gateway, token=args.token)
    try:
        return cli.dispatch(args, api, console)
    except GatewayError as error:
        console.print(f"[red]error:[/red] {error}")
        return 2
