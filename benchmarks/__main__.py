"""``make bench``: every benchmark, printed as tables.

python -m benchmarks              # all
python -m benchmarks pool         # one
python -m benchmarks --quick      # shorter runs

Every benchmark also writes its tables into benchmarks/RESULTS.md, each in its own
section (replaced by the next run of that benchmark), headed by the machine (CPU,
cores, memory), the versions that matter (Python and the libraries on the path
measured) and the commit measured, so that anyone can check the README's claims
and compare a run of theirs with the same header.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import re
import subprocess
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from rich.console import Console
from rich.table import Table

console = Console(width=180)
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
NOISE = (
    "The machine's CPU is shared with other work (other test runs), so wall times are "
    "noisy: compare rows of one run, not runs of different days."
)


# The libraries on the measured paths (the gateway's edge and store, the hub's start).
VERSIONS = ("fastapi", "uvicorn", "httptools", "orjson", "sqlalchemy", "jupyterhub",
            "jupyter_server")


def machine() -> str:
    """CPU model, cores and memory of this machine, in one line."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        memory = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text()
                      .splitlines() if line.startswith("MemTotal:"))
        ram = f", {memory / 1024 / 1024:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        ram = ""
    return f"{model}, {os.cpu_count()} cores{ram}, {platform.system()} {platform.release()}"


def versions(extra: tuple[str, ...] = ()) -> str:
    found = [f"Python {platform.python_version()}"]
    for name in (*VERSIONS, *extra):
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            continue
    return ", ".join(found)


def commit() -> str:
    """The commit measured (``+ changes`` when the work tree differs from it)."""
    here = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "-C", str(here), "rev-parse", "--short=12", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain",
                                "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown commit"
    return f"commit {head}{' + changes' if dirty else ''}"


def write_results(section: str, title: str, tables: list[Table], notes: str,
                  extra_versions: tuple[str, ...] = ()) -> None:
    """Print ``tables`` and put them into RESULTS.md under ``title`` (replacing that section)."""
    recorder = Console(width=160, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    for table in tables:
        console.print(table)
        recorder.print(table)
    body = recorder.export_text()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    block = (
        f"<!-- bench:{section} -->\n## {title}\n\n"
        f"`python -m benchmarks {section}`, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{commit()}.\nMachine: {machine()}; load average {load} (1, 5, 15 min) when it "
        f"finished.\nVersions: {versions(extra_versions)}.\n\n"
        f"{notes} {NOISE}\n\n```\n{body.rstrip()}\n```\n<!-- /bench:{section} -->\n"
    )
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n\n"
    pattern = re.compile(rf"<!-- bench:{section} -->.*?<!-- /bench:{section} -->\n", re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text + "\n" + block
    RESULTS.write_text(text)


def fmt(value: object, digits: int = 1) -> str:
    if isinstance(value, float):
        return "—" if math.isnan(value) else f"{value:,.{digits}f}"
    return str(value)


def pool(quick: bool) -> None:
    from benchmarks import pool_bench

    table = Table(
        title="Pool efficiency and fairness (targets: efficiency ≥ 0.95, violations 0, fairness ≥ 0.95)"
    )
    for column in (
        "scenario",
        "setup",
        "calls",
        "throughput/s",
        "bound/s",
        "efficiency",
        "violations",
        "Jain fairness",
        "wait p50 s",
        "wait p99 s",
        "errors",
    ):
        table.add_column(column)
    for r in pool_bench.run(quick):
        table.add_row(
            r["scenario"],
            r["setup"],
            str(r["calls"]),
            fmt(r["throughput_rps"], 2),
            fmt(r["bound_rps"], 2),
            fmt(r["efficiency"], 3),
            str(r["violations"]),
            fmt(r["fairness"], 3),
            fmt(r["wait_p50_s"], 2),
            fmt(r["wait_p99_s"], 2),
            str(r["errors"]),
        )
    write_results(
        "pool", "Key pool: efficiency and fairness through the whole gateway", [table],
        "Limit violations are reconstructed from the history (a pooled run's started_at and "
        "finished_at are its lease's grant and release), never from the pool's own counters.",
    )


def overhead(quick: bool) -> None:
    from benchmarks import overhead as bench

    rows = bench.run(quick)
    table = Table(
        title=f"Gateway overhead vs LiteLLM {bench.litellm_version()} (same fake upstream, interleaved)"
    )
    for column in (
        "mode",
        "conc",
        "target",
        "req/s",
        "p50 ms",
        "p99 ms",
        "added p50 ms",
        "TTFT p50 ms",
        "errors",
        "RSS MiB (idle)",
        "Redis trips/call",
    ):
        table.add_column(column)
    direct = {(r["stream"], r["concurrency"]): r for r in rows if r["target"] == "direct"}
    for r in rows:
        base = direct[(r["stream"], r["concurrency"])]
        added = r["p50_ms"] - base["p50_ms"] if r["target"] != "direct" else float("nan")
        table.add_row(
            "stream" if r["stream"] else "plain",
            str(r["concurrency"]),
            r["target"],
            fmt(r["rps"]),
            fmt(r["p50_ms"], 2),
            fmt(r["p99_ms"], 2),
            fmt(added, 2),
            fmt(r["ttft_p50_ms"], 2),
            str(r["errors"]),
            f"{fmt(r['rss_mib'], 0)} ({fmt(r['idle_rss_mib'], 0)})",
            fmt(r.get("redis_per_call", float("nan")), 2),
        )
    ratios = Table(title="Targets (ours vs LiteLLM, same run)")
    for column in (
        "mode",
        "conc",
        "req/s ratio (≥ 10)",
        "added p50 ratio (≤ 0.1)",
        "ours added p50 ms",
        "RSS ratio (≤ 0.33)",
    ):
        ratios.add_column(column)
    by = {(r["target"], r["stream"], r["concurrency"]): r for r in rows}
    for (target, stream, conc), r in sorted(by.items(), key=lambda kv: (kv[0][1], kv[0][2])):
        if target != "gateway" or ("litellm", stream, conc) not in by:
            continue
        ll = by[("litellm", stream, conc)]
        base = direct[(stream, conc)]
        ours_added = r["p50_ms"] - base["p50_ms"]
        theirs_added = ll["p50_ms"] - base["p50_ms"]
        ratios.add_row(
            "stream" if stream else "plain",
            str(conc),
            fmt(r["rps"] / ll["rps"], 2),
            fmt(ours_added / theirs_added if theirs_added > 0 else float("nan"), 3),
            fmt(ours_added, 2),
            fmt(r["rss_mib"] / ll["rss_mib"], 2),
        )
    write_results(
        "overhead", "Gateway overhead over a fake OpenAI upstream, beside LiteLLM's proxy",
        [table, ratios],
        "The same fake upstream called directly, through the gateway and through LiteLLM's "
        f"proxy {bench.litellm_version()} (installed for the benchmark only, in `.bench/`), "
        "interleaved.",
    )


def jitter(quick: bool) -> None:
    from benchmarks import dispatch_jitter

    table = Table(title="Grant to vendor arrival (dispatch jitter; the pool's margin must "
                  "exceed the spread: CLASSROOM_RATE_LIMIT_MARGIN_MS)")
    for column in ("scenario", "calls", "missing", "p50 ms", "p99 ms", "max ms", "spread ms"):
        table.add_column(column)
    for r in dispatch_jitter.measure(1 if quick else 3):
        table.add_row(r["scenario"], str(r["calls"]), str(r["missing"]), fmt(r["p50_ms"], 2),
                      fmt(r["p99_ms"], 2), fmt(r["max_ms"], 2), fmt(r["spread_ms"], 2))
    write_results(
        "jitter", "Dispatch jitter: from a lease's grant to the vendor's receipt", [table],
        "Arrivals recorded by the tests' fake OpenAI server, idle, in bursts and under steady "
        "load; the pool's CLASSROOM_RATE_LIMIT_MARGIN_MS must exceed the spread.",
    )


def tokens(quick: bool) -> None:
    from benchmarks import tokens_bench

    rows, load = tokens_bench.run(quick)
    table = Table(title=f"Reservation token bounds per call (encodings loaded in "
                        f"{load['load_s']:.2f} s, +{load['rss_mib']:.0f} MiB)")
    for column in ("prompt", "model", "µs per call", "bound (tokens)"):
        table.add_column(column)
    for r in rows:
        table.add_row(r["prompt"], r["model"], fmt(r["us"]), str(r["tokens"]))
    write_results(
        "tokens", "What a reservation's token bound costs per call", [table],
        "A short prompt, a 20-message Korean conversation and an image, per vendor family "
        "(`benchmarks/tokens_bench.py`).", ("tiktoken",),
    )


def _shown(command: list[str]) -> str:
    return " ".join(Path(a).name if a.startswith("/") else a for a in command)


def labstart(quick: bool) -> None:
    from benchmarks import labstart as bench

    result = bench.run(quick)
    labs = Table(title="One lab's start, alone (median; CPU: the lab process's own, "
                       "at its first answer)")
    for column in ("variant", "start", "runs", "CPU s", "wall s", "RSS MiB at ready",
                   "RSS MiB idle"):
        labs.add_column(column)
    for r in result["labs"]:
        labs.add_row(r["variant"], r["start"], str(r["runs"]), fmt(r["cpu_s"], 2),
                     fmt(r["wall_s"], 2), fmt(r["rss_mib"], 0), fmt(r["idle_rss_mib"], 0))
    parts = Table(title="The parts of a start, each on its own (median)")
    for column in ("part", "CPU s", "wall s"):
        parts.add_column(column)
    for r in result["parts"]:
        parts.add_row(r["part"], fmt(r["cpu_s"], 3), fmt(r["wall_s"], 3))
    kernels = Table(title="A kernel, as a student's notebook starts it (median)")
    for column in ("kernel", "CPU s to ready", "wall s to ready", "RSS MiB idle"):
        kernels.add_column(column)
    for r in result["kernels"]:
        kernels.add_row(r["kernel"], fmt(r["cpu_s"], 2), fmt(r["wall_s"], 2),
                        fmt(r["idle_rss_mib"], 0))
    write_results(
        "labstart", "One lab's start: before and after, cold and warm, its parts",
        [labs, parts, kernels],
        "before: the spawner with the start-time cuts switched off "
        f"(`c.ClassroomSpawner.start_cuts = False`: `{_shown(result['before_command'])}`); "
        f"after: the spawner's command now (`{_shown(result['command'])}`). "
        "cold: a fresh home; warm: the same home again.",
    )


def classstart(quick: bool) -> None:
    from benchmarks import classstart as bench

    sizes = (10, 20) if quick else (10, 20, 40)
    rows = bench.run(sizes)
    table = Table(title="Class start: N students ask in the same second (targets: failures 0, "
                        "p95 ≤ 60 s at 40; started ahead, every lab ready on arrival)")
    for column in ("students", "started", "ready", "failed", "ready on arrival", "p50 s",
                   "p95 s", "max s", "class ready s", "lab CPU s", "hub CPU s/lab",
                   "idle lab MiB", "planner p95 s", "planner all s"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            str(r["students"]), "ahead by the teacher" if r["ahead"] else "at the bell",
            str(r["ready"]), str(r["failed"]),
            f"{r['ready_on_arrival']}/{r['students']}" if r["ahead"] else "—",
            fmt(r["p50_s"]), fmt(r["p95_s"]), fmt(r["max_s"]), fmt(r["class_ready_s"]),
            fmt(r["lab_cpu_s"], 2), fmt(r["hub_cpu_per_lab_s"], 2), fmt(r["idle_rss_mib"], 0),
            fmt(r["predicted_p95_s"]), fmt(r["predicted_all_s"]),
        )
    write_results(
        "classstart", "Class start: 10, 20 and 40 students at once", [table],
        "A fresh `classroom run` per row (labs as their own OS users, the default start queue: "
        "one start per core). Seconds are from a student's request to their lab ready; "
        "started ahead, from their arrival after the teacher's pre-start finished (the "
        "class ready column is the pre-start's own duration). The planner columns are "
        "`hub.capacity.predict_class_start` from that row's measured CPU per lab.",
    )


BENCHES = {"pool": pool, "jitter": jitter, "overhead": overhead, "tokens": tokens,
           "labstart": labstart, "classstart": classstart}


def main() -> None:
    parser = argparse.ArgumentParser(prog="make bench")
    parser.add_argument("which", nargs="*", default=list(BENCHES), help=f"any of {list(BENCHES)}")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    for name in args.which:
        BENCHES[name](args.quick)


if __name__ == "__main__":
    main()
