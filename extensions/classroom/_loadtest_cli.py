"""The subcommands of ``classroom loadtest`` (parsing is in :mod:`classroom.loadtest`):
progress bars while a run goes, tables of its figures afterwards."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ._exceptions import GatewayError
from .loadtest import LoadTestAPI, read_plan


def _out() -> Console:
    """Tables go to stdout, wide enough to read when it is not a terminal."""
    return Console(width=None if sys.stdout.isatty() else 160)


def dispatch(args: argparse.Namespace, api: LoadTestAPI, console: Console) -> int:
    command = args.command
    if command == "run":
        return run(args, api, console)
    if command == "replay":
        return replay(args, api, console)
    if command == "lesson-save":
        row = api.save_lesson(name=args.name, user=args.user, since=_time(args.since),
                              until=_time(args.until), source=args.source, tenant=args.tenant,
                              note=args.note)
        console.print(f"Saved lesson {row['name']!r} of {row['tenant']}: {row['calls']} calls.")
        return 0
    if command == "lessons":
        table = Table("school", "name", "user", "source", "since", "until")
        for row in api.lessons():
            table.add_row(*(str(row.get(k) or "") for k in (
                "tenant", "name", "user", "source", "since", "until")))
        _out().print(table)
        return 0
    if command == "list":
        table = Table("id", "name", "mode", "status", "calls", "spent $", "by")
        for row in api.runs():
            table.add_row(str(row["id"]), row["name"], row["mode"], row["status"],
                          f"{row['requests_done']}/{row['requests_planned']}",
                          f"{row.get('spent_usd') or 0:.4f}", row["created_by"])
        _out().print(table)
        return 0
    if command == "status":
        status = api.status(args.id)
        print(json.dumps({k: v for k, v in status.items() if k != "plan"}, indent=2))
        return 0
    if command == "cancel":
        status = api.cancel(args.id)
        console.print(f"Load test {args.id}: {status['status']}; "
                      f"{status['requests_done']} calls kept.")
        return 0
    if command == "report":
        return write_report(api, args.id, args.report, args.json, console)
    raise AssertionError(command)


def _time(value: str | None) -> float | str | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return value


def run(args: argparse.Namespace, api: LoadTestAPI, console: Console) -> int:
    plan = read_plan(args.plan)
    mode = args.mode or plan.get("mode", "mock")
    if mode == "real" or args.dry_run:
        checked = api.start(plan, mode=args.mode, cost_cap_usd=args.cost_cap, dry_run=True)
        show_estimate(checked["estimate"], checked["plan"], console)
        if args.dry_run:
            return 0
        if not args.yes:
            if not sys.stdin.isatty():
                console.print("[red]Real mode spends money: confirm with --yes.[/red]")
                return 2
            if input("Start it? [y/N] ").strip().lower() not in ("y", "yes"):
                return 1
    started = api.start(plan, mode=args.mode, cost_cap_usd=args.cost_cap)
    run_id = int(started["id"])
    console.print(f"Load test {run_id} ({plan.get('name', 'load test')}) started: "
                  f"{started['requests_planned']} calls in "
                  f"{len(started['rounds'])} rounds.")
    status = follow(api, run_id, console, args.interval)
    console.print(f"Load test {run_id}: {status['status']}, {status['requests_done']} of "
                  f"{status['requests_planned']} calls, ${status.get('spent_usd') or 0:.4f}.")
    code = write_report(api, run_id, args.report, args.json, console)
    if status["status"] == "failed":
        return 1
    if status["status"] in ("cancelled", "interrupted"):
        return 130
    return code


def follow(api: LoadTestAPI, run_id: int, console: Console, interval: float) -> dict[str, Any]:
    """Progress bars per round until the run ends; Ctrl-C cancels it (what ran is kept)."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[figures]}"), TimeElapsedColumn())
    tasks: dict[int, Any] = {}
    previous = signal.getsignal(signal.SIGINT)
    cancelled = False

    def interrupt(*_: Any) -> None:
        nonlocal cancelled
        if not cancelled:
            cancelled = True
            console.print("Cancelling… (what ran is kept)")
            try:
                api.cancel(run_id)
            except GatewayError as error:
                console.print(f"[red]{error}[/red]")

    signal.signal(signal.SIGINT, interrupt)
    try:
        with Progress(*columns, console=console, transient=False) as progress:
            def update(status: dict[str, Any]) -> None:
                for r in status["rounds"]:
                    if r["idx"] not in tasks:
                        tasks[r["idx"]] = progress.add_task(
                            r["label"], total=r["requests_planned"], figures="")
                    f = r.get("figures") or {}
                    lat = (f.get("latency_ms") or {}).get("p95")
                    text = (f"ok {f.get('success_rate', 0):.0%}  p95 {lat:.0f} ms  "
                            f"{r['status']}" if f.get("requests") and lat is not None
                            else r["status"])
                    progress.update(tasks[r["idx"]], completed=r["requests_done"], figures=text)

            return api.wait(run_id, interval=interval, on_status=update)
    finally:
        signal.signal(signal.SIGINT, previous)


def show_estimate(estimate: dict[str, Any], plan: dict[str, Any], console: Console) -> None:
    table = Table("model", "provider", "calls", "worst case $", title="Before it starts")
    for row in estimate["per_model"]:
        table.add_row(row["model"], row["provider"], str(row["calls"]),
                      f"{row['worst_case_usd']:.4f}" if row["priced"] else "unpriced")
    console.print(table)
    cap = plan.get("cost_cap_usd")
    console.print(f"{estimate['requests']} calls in {estimate['rounds']} rounds; worst case "
                  f"${estimate['worst_case_usd']:.4f}"
                  + (f", cost cap ${cap:.2f} (the run stops before passing it)." if cap else ".")
                  + f"\n{estimate['note']}")


def figures_table(report: dict[str, Any]) -> Table:
    table = Table("model", "users", "calls", "success", "grade", "p50 ms", "p95 ms", "p99 ms",
                  "TTFT p95", "wait p95", "calls/s", title=f"Load test {report['run']['id']}")
    for g in report["groups"]:
        def ms(part: str, q: str, g: dict[str, Any] = g) -> str:
            value = g[part][q]
            return "—" if value is None else f"{value:.0f}"

        table.add_row(str(g["model"]), str(g["users"]), str(g["requests"]),
                      f"{g['success_rate']:.1%}", str(g["grade"] or "—"),
                      ms("latency_ms", "p50"), ms("latency_ms", "p95"), ms("latency_ms", "p99"),
                      ms("ttft_ms", "p95"), ms("queue_wait_ms", "p95"),
                      "—" if g["throughput_rps"] is None else f"{g['throughput_rps']:.1f}")
    return table


def write_json(path: str, data: object) -> None:
    """``-`` is standard output, as for every command-line tool."""
    text = json.dumps(data, indent=2)
    if path == "-":
        sys.stdout.write(text + "\n")
    else:
        Path(path).write_text(text, encoding="utf-8")


def write_report(api: LoadTestAPI, run_id: int, html_path: str | None, json_path: str | None,
                 console: Console) -> int:
    report = api.report(run_id)
    _out().print(figures_table(report))
    if json_path:
        write_json(json_path, report)
        if json_path != "-":
            console.print(f"Figures written to {json_path}")
    if html_path:
        Path(html_path).write_text(api.report_html(run_id), encoding="utf-8")
        console.print(f"Report written to {html_path}")
    return 0


def replay(args: argparse.Namespace, api: LoadTestAPI, console: Console) -> int:
    if not args.lesson and not args.user and not args.source:
        console.print("[red]Name a saved lesson (--lesson 03), or whose calls make it "
                      "(--user, with --since/--until).[/red]")
        return 2
    out = api.replay(lesson=args.lesson, user=args.user, since=_time(args.since),
                     until=_time(args.until), source=args.source, tenant=args.tenant,
                     students=args.students, window_s=args.window,
                     target_p95_wait_s=args.target, run=args.run or None)
    summary = out["predicted"]["summary"]
    table = Table("step", "model", "provider", "service s", "pause s", "wait p50 s",
                  "wait p95 s", "done p95 s",
                  title=f"{args.students} students arriving within {args.window:g} s")
    for step in out["predicted"]["steps"]:
        table.add_row(str(step["step"]), step["model"], step["provider"],
                      f"{step['service_s']:.2f}", f"{step['gap_s']:.1f}",
                      f"{step['p50_wait_s']:.2f}", f"{step['p95_wait_s']:.2f}",
                      f"{step['p95_done_s']:.1f}")
    _out().print(table)
    plan = out["key_plan"]
    keys_now = ", ".join(f"{p}: {n}" for p, n in out["keys_now"].items()) or "none"
    needed = ", ".join(f"{p}: {n}" for p, n in plan["keys_needed"].items()) or "none (unlimited)"
    print(f"Predicted p95 wait {summary['p95_wait_s']:.2f} s with today's keys ({keys_now}); "
          f"95 % of students done after {summary['p95_lesson_s']:.1f} s.")
    print(f"Keys needed for p95 wait ≤ {plan['target_p95_wait_s']:g} s: {needed}"
          + ("" if plan["met"] else " (target not met even then)")
          + f"; predicted p95 wait {plan['predicted']['p95_wait_s']:.2f} s.")
    print(lab_start_line(args.students, args.window))
    if args.json:
        write_json(args.json, out)
    if "loadtest" in out:
        run_id = int(out["loadtest"]["id"])
        follow(api, run_id, console, 0.5)
        write_report(api, run_id, None, None, console)
    return 0


# -- labs at the bell (no gateway: the hub's start queue, from measured costs) -----------------


def predict_labs(students: int, window_s: float, cores: int | None = None,
                 parallel: int | None = None, cpu_per_lab: float | None = None,
                 cpu_share: float = 1.0) -> Any:
    import os

    from hub.capacity import MEASURED_CPU_PER_LAB, predict_class_start

    return predict_class_start(
        students, cores=cores or os.cpu_count() or 1, parallel=parallel,
        cpu_per_lab=cpu_per_lab or MEASURED_CPU_PER_LAB, window_s=window_s,
        cpu_share=cpu_share,
    )


def lab_start_line(students: int, window_s: float) -> str:
    p = predict_labs(students, window_s)
    return (f"Labs: {students} students asking within {window_s:g} s get their labs in "
            f"{p.quantile(0.5):.0f} s (p50), {p.quantile(0.95):.0f} s (p95), all after "
            f"{p.all_ready_s:.0f} s, on {p.cores} cores starting {p.parallel} at once "
            f"({p.cpu_per_lab:g} CPU s per lab; `classroom loadtest class-start` for more).")


def class_start(args: argparse.Namespace) -> int:
    from hub.capacity import labs_in_memory

    if args.students < 1 or not 0 < args.cpu_share <= 1:
        print("error: --students must be at least 1 and --cpu-share in (0, 1]", file=sys.stderr)
        return 2
    p = predict_labs(args.students, args.window, args.cores, args.parallel, args.cpu_per_lab,
                     args.cpu_share)
    table = Table("students", "cores", "at once", "CPU s/lab", "p50 s", "p95 s", "all ready s",
                  title=f"Class start: {args.students} students asking within {args.window:g} s")
    table.add_row(str(args.students), str(p.cores), str(p.parallel), f"{p.cpu_per_lab:g}",
                  f"{p.quantile(0.5):.1f}", f"{p.quantile(0.95):.1f}", f"{p.all_ready_s:.1f}")
    _out().print(table)
    out: dict[str, Any] = {
        "students": args.students, "window_s": args.window, "cores": p.cores,
        "parallel": p.parallel, "cpu_per_lab_s": p.cpu_per_lab,
        "p50_s": p.quantile(0.5), "p95_s": p.quantile(0.95), "all_ready_s": p.all_ready_s,
        "ready_s": list(p.ready_s),
    }
    print("Started ahead by the teacher (/hub/classroom/class) it is ready when they arrive, "
          f"if started {p.all_ready_s:.0f} s or more before the bell.")
    if args.memory_gib:
        fits = labs_in_memory(args.memory_gib)
        out["labs_in_memory"] = fits
        print(f"{args.memory_gib:g} GiB hold about {fits} labs with a kernel each "
              "(2 GiB kept for the hub, the gateway and the system).")
    if args.json:
        write_json(args.json, out)
    return 0
