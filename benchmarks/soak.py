"""``make soak``: the gateway under a class's load for a long time.

100 simulated students stream from the mock provider (a realistic time to first token
and speed) through ``classroom gateway serve`` (static tokens), each thinking a few
seconds between questions, for 10 minutes; teachers poll the dashboard endpoints
(``/api/activity``, ``/api/usage``, ``/api/runs``) every few seconds. Targets:

- zero errors (students and teachers);
- the gateway's RSS grows less than 10 % after warm-up;
- the p99 latency of the last minute is within 20 % of the first minute's (after warm-up);
- the history holds exactly one row per request sent.

Prints a table (PASS/FAIL per target) and writes the RSS curve as a plotly HTML file.
Exits non-zero when a target fails.

    python -m benchmarks.soak                  # 10 minutes
    python -m benchmarks.soak --minutes 2      # a shorter run
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from rich.console import Console
from rich.table import Table

from benchmarks._common import REPO, VENV_BIN, free_port, percentile, rss_mib, start, stop_process

TARGET_RSS_GROWTH = 0.10
TARGET_P99_DRIFT = 0.20
DASHBOARDS = ("/api/activity", "/api/usage", "/api/runs")


@dataclass
class Plan:
    minutes: float = 10.0
    students: int = 100
    teachers: int = 4
    ttft_ms: float = 400.0
    tokens_per_second: float = 40.0
    think_s: tuple[float, float] = (3.0, 8.0)
    poll_s: float = 5.0
    rss_every_s: float = 5.0
    seed: int = 7

    @property
    def duration_s(self) -> float:
        return self.minutes * 60

    @property
    def warmup_s(self) -> float:
        return min(60.0, self.duration_s / 4)

    @property
    def window_s(self) -> float:
        """The first and last windows compared (a minute, unless the run is short)."""
        return min(60.0, (self.duration_s - self.warmup_s) / 2)


@dataclass
class Sample:
    at: float  # seconds since the start
    latency_s: float
    ttft_s: float | None
    ok: bool
    problem: str | None = None


@dataclass
class Observed:
    samples: list[Sample] = field(default_factory=list)
    polls: int = 0
    poll_errors: list[str] = field(default_factory=list)
    rss: list[tuple[float, float]] = field(default_factory=list)  # (seconds, MiB)


def prepare(tmp: Path, plan: Plan) -> dict[str, str]:
    """Tokens, keys and schools for the run; the environment of the gateway."""
    tokens: dict[str, dict[str, str]] = {}
    for i in range(plan.students):
        school = "school_a" if i % 2 == 0 else "school_b"
        tokens[f"soak-student-{i:03d}"] = {"name": f"s{i:03d}", "tenant": school,
                                           "role": "student"}
    for i in range(plan.teachers):
        school = "school_a" if i % 2 == 0 else "school_b"
        tokens[f"soak-teacher-{i}"] = {"name": f"t{i}", "tenant": school, "role": "teacher"}
    tokens["soak-admin"] = {"name": "soak_admin", "tenant": "default", "role": "admin"}
    (tmp / "tokens.json").write_text(json.dumps({"tokens": tokens}))
    # Keys with room to spare: the soak measures the gateway, not a queue for a key.
    (tmp / "keys.toml").write_text("".join(
        f'[[mock]]\nname = "soak-{i}"\nconcurrency_limit = {plan.students}\n'
        f"rpm_limit = 100000\n\n" for i in range(2)))
    # The schools as shipped, without the students' daily caps (a long soak would reach them).
    tenants = tmp / "tenants"
    shutil.copytree(REPO / "tenants", tenants)
    for school in ("school_a", "school_b"):
        path = tenants / f"{school}.json"
        data = json.loads(path.read_text())
        data.setdefault("quotas", {})["student"] = {}
        path.write_text(json.dumps(data, indent=2))
    return {
        "CLASSROOM_DATA_DIR": str(tmp / "data"),
        "CLASSROOM_TENANTS_DIR": str(tenants),
        "CLASSROOM_KEYS_FILE": str(tmp / "keys.toml"),
        "CLASSROOM_AUTH_TOKENS_FILE": str(tmp / "tokens.json"),
        "CLASSROOM_MOCK_TTFT_MS": str(plan.ttft_ms),
        "CLASSROOM_MOCK_TOKENS_PER_SECOND": str(plan.tokens_per_second),
    }


async def student(session: aiohttp.ClientSession, url: str, i: int, plan: Plan,
                  began: float, stop_at: float, seen: Observed) -> None:
    rng = random.Random(plan.seed * 1000 + i)
    headers = {"Authorization": f"Bearer soak-student-{i:03d}",
               "Content-Type": "application/json"}
    await asyncio.sleep(rng.uniform(0, plan.think_s[1]))  # students do not all start at once
    asked = 0
    while time.monotonic() < stop_at:
        asked += 1
        body = json.dumps({
            "model": "mock/lorem", "stream": True,
            "messages": [{"role": "user", "content": f"Question {asked} of student {i}: "
                          f"explain idea {rng.randint(1, 10_000)}."}],
        })
        sent = time.monotonic()
        first: float | None = None
        ok, problem = False, None
        try:
            async with session.post(url, data=body, headers=headers) as response:
                if response.status != 200:
                    problem = f"HTTP {response.status}: {(await response.text())[:200]}"
                else:
                    tail = b""
                    async for chunk in response.content.iter_any():
                        if first is None and b'"content"' in chunk:
                            first = time.monotonic() - sent
                        tail = (tail + chunk)[-512:]
                        if b'"error"' in chunk:
                            problem = f"error in the stream: {chunk[:200]!r}"
                    ok = problem is None and b"data: [DONE]" in tail
                    if not ok and problem is None:
                        problem = "stream ended without [DONE]"
        except (TimeoutError, aiohttp.ClientError) as exc:
            problem = f"{type(exc).__name__}: {exc}"
        seen.samples.append(Sample(sent - began, time.monotonic() - sent, first, ok, problem))
        await asyncio.sleep(rng.uniform(*plan.think_s))


async def teacher(session: aiohttp.ClientSession, base: str, i: int, plan: Plan,
                  stop_at: float, seen: Observed) -> None:
    token = "soak-admin" if i == plan.teachers - 1 else f"soak-teacher-{i}"
    headers = {"Authorization": f"Bearer {token}"}
    await asyncio.sleep(i * plan.poll_s / max(plan.teachers, 1))
    while time.monotonic() < stop_at:
        for path in DASHBOARDS:
            try:
                async with session.get(base + path, headers=headers) as response:
                    await response.read()
                    if response.status != 200:
                        seen.poll_errors.append(f"{path}: HTTP {response.status}")
            except (TimeoutError, aiohttp.ClientError) as exc:
                seen.poll_errors.append(f"{path}: {type(exc).__name__}")
            seen.polls += 1
        await asyncio.sleep(plan.poll_s)


async def memory(pid: int, began: float, stop_at: float, plan: Plan, seen: Observed) -> None:
    while time.monotonic() < stop_at:
        seen.rss.append((time.monotonic() - began, rss_mib(pid)))
        await asyncio.sleep(plan.rss_every_s)
    seen.rss.append((time.monotonic() - began, rss_mib(pid)))


async def drive(base: str, pid: int, plan: Plan) -> Observed:
    seen = Observed()
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        began = time.monotonic()
        stop_at = began + plan.duration_s
        await asyncio.gather(
            memory(pid, began, stop_at, plan, seen),
            *(teacher(session, base, i, plan, stop_at, seen) for i in range(plan.teachers)),
            *(student(session, base + "/v1/chat/completions", i, plan, began, stop_at, seen)
              for i in range(plan.students)),
        )
    return seen


def history_counts(database: Path) -> dict[str, int]:
    with sqlite3.connect(database) as db:
        return dict(db.execute("select status, count(*) from runs group by status").fetchall())


@dataclass
class Verdict:
    name: str
    target: str
    measured: str
    passed: bool


def judge(plan: Plan, seen: Observed, rows: dict[str, int]) -> tuple[list[Verdict], dict]:
    sent = len(seen.samples)
    errors = [s for s in seen.samples if not s.ok]
    first_from, first_to = plan.warmup_s, plan.warmup_s + plan.window_s
    last_from = plan.duration_s - plan.window_s
    first = [s.latency_s for s in seen.samples if first_from <= s.at < first_to and s.ok]
    last = [s.latency_s for s in seen.samples if s.at >= last_from and s.ok]
    p99_first, p99_last = percentile(first, 0.99), percentile(last, 0.99)
    drift = p99_last / p99_first - 1
    after = [mib for at, mib in seen.rss if at >= plan.warmup_s]
    baseline = statistics.mean(after[:3]) if after else float("nan")
    final = statistics.mean(after[-3:]) if after else float("nan")
    growth = final / baseline - 1
    recorded = sum(rows.values())
    figures = {
        "requests": sent, "rps": sent / plan.duration_s,
        "p50_s": percentile([s.latency_s for s in seen.samples if s.ok], 0.5),
        "ttft_p50_s": percentile([s.ttft_s for s in seen.samples if s.ttft_s is not None], 0.5),
        "p99_first_s": p99_first, "p99_last_s": p99_last,
        "rss_baseline_mib": baseline, "rss_final_mib": final,
        "rss_max_mib": max((mib for _, mib in seen.rss), default=float("nan")),
        "polls": seen.polls, "rows": rows,
    }
    verdicts = [
        Verdict("errors", "0", f"{len(errors)} of {sent} requests, {len(seen.poll_errors)} of "
                f"{seen.polls} dashboard polls", not errors and not seen.poll_errors),
        Verdict("RSS growth after warm-up", f"< {TARGET_RSS_GROWTH:.0%}",
                f"{growth:+.1%} ({baseline:.0f} → {final:.0f} MiB)",
                growth < TARGET_RSS_GROWTH),
        Verdict("p99 latency, last vs first minute", f"within {TARGET_P99_DRIFT:.0%}",
                f"{drift:+.1%} ({p99_first:.2f} s → {p99_last:.2f} s)",
                abs(drift) <= TARGET_P99_DRIFT),
        Verdict("history rows = requests sent", f"{sent}",
                f"{recorded} ({', '.join(f'{k} {v}' for k, v in sorted(rows.items()))})",
                recorded == sent and rows.get("ok", 0) == sent - len(errors)),
    ]
    return verdicts, figures


def rss_chart(seen: Observed, plan: Plan, path: Path) -> Path:
    import plotly.graph_objects as go

    figure = go.Figure()
    figure.add_trace(go.Scatter(x=[at / 60 for at, _ in seen.rss], y=[m for _, m in seen.rss],
                                mode="lines+markers", name="gateway RSS (MiB)"))
    figure.add_vline(x=plan.warmup_s / 60, line_dash="dash", annotation_text="end of warm-up")
    figure.update_layout(title=f"Gateway memory during a {plan.minutes:g}-minute soak "
                               f"({plan.students} students)",
                         xaxis_title="minutes", yaxis_title="RSS (MiB)")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.write_html(path, include_plotlyjs=True)
    return path


def report(console: Console, plan: Plan, verdicts: list[Verdict], figures: dict,
           chart: Path) -> None:
    table = Table(title=f"Soak: {plan.students} students streaming from the mock "
                        f"(TTFT {plan.ttft_ms:.0f} ms, {plan.tokens_per_second:.0f} tokens/s), "
                        f"{plan.teachers} dashboards polling, {plan.minutes:g} min")
    for column in ("target", "wanted", "measured", "result"):
        table.add_column(column)
    for v in verdicts:
        table.add_row(v.name, v.target, v.measured,
                      "[green]PASS[/green]" if v.passed else "[red]FAIL[/red]")
    console.print(table)
    console.print(
        f"{figures['requests']} requests ({figures['rps']:.1f}/s), latency p50 "
        f"{figures['p50_s']:.2f} s, TTFT p50 {figures['ttft_p50_s']:.2f} s, RSS max "
        f"{figures['rss_max_mib']:.0f} MiB, {figures['polls']} dashboard polls")
    console.print(f"RSS curve: {chart}")


def run(plan: Plan, console: Console, out_dir: Path) -> bool:
    with tempfile.TemporaryDirectory(prefix="soak-") as tmpdir:
        tmp = Path(tmpdir)
        env = prepare(tmp, plan)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        console.print(f"soak: {plan.students} students for {plan.minutes:g} min on {base} …")
        proc = start([str(VENV_BIN / "classroom"), "gateway", "serve", "--port", str(port)],
                     env, tmp / "gateway.log", base + "/health")
        try:
            seen = asyncio.run(drive(base, proc.pid, plan))
        finally:
            stop_process(proc)
        rows = history_counts(tmp / "data" / "gateway.sqlite")
        log_tail = (tmp / "gateway.log").read_text(errors="replace")[-2000:]
    verdicts, figures = judge(plan, seen, rows)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    chart = rss_chart(seen, plan, out_dir / f"soak-rss-{stamp}.html")
    report(console, plan, verdicts, figures, chart)
    problems = [s.problem for s in seen.samples if s.problem] + seen.poll_errors
    for problem in problems[:10]:
        console.print(f"[red]error:[/red] {problem}")
    if problems:
        console.print(f"gateway log (tail):\n{log_tail}")
    return all(v.passed for v in verdicts)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--students", type=int, default=100)
    parser.add_argument("--teachers", type=int, default=4,
                        help="dashboards polling (the last one an admin's)")
    parser.add_argument("--out", type=Path, default=REPO / "test-artifacts" / "soak",
                        help="where the RSS curve (HTML) is written")
    args = parser.parse_args(argv)
    if args.minutes <= 0 or args.students <= 0 or args.teachers < 0:
        parser.error("--minutes and --students must be positive")
    plan = Plan(minutes=args.minutes, students=args.students, teachers=args.teachers)
    return 0 if run(plan, Console(width=160), args.out) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
