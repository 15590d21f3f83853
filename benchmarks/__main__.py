"""``make bench``: every benchmark, printed as tables.

python -m benchmarks              # all
python -m benchmarks pool         # one
python -m benchmarks --quick      # shorter runs

The class-start benchmarks (``labstart``, ``classstart``) also write their
tables into benchmarks/RESULTS.md, each in its own section.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

console = Console(width=180)
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
NOISE = (
    "The machine's CPU is shared with other work (other test runs), so wall times are "
    "noisy: compare rows of one run, not runs of different days."
)


def write_results(section: str, title: str, tables: list[Table], notes: str) -> None:
    """Print ``tables`` and put them into RESULTS.md under ``title`` (replacing that section)."""
    recorder = Console(width=160, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    for table in tables:
        console.print(table)
        recorder.print(table)
    body = recorder.export_text()
    cores = os.cpu_count()
    block = (
        f"<!-- bench:{section} -->\n## {title}\n\n"
        f"`python -m benchmarks {section}`, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{cores} cores. {notes} {NOISE}\n\n```\n{body.rstrip()}\n```\n<!-- /bench:{section} -->\n"
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
    console.print(table)


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
    console.print(table)
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
    console.print(ratios)


def jitter(quick: bool) -> None:
    from benchmarks import dispatch_jitter

    table = Table(title="Grant to vendor arrival (dispatch jitter; the pool's margin must "
                  "exceed the spread: CLASSROOM_RATE_LIMIT_MARGIN_MS)")
    for column in ("scenario", "calls", "missing", "p50 ms", "p99 ms", "max ms", "spread ms"):
        table.add_column(column)
    for r in dispatch_jitter.measure(1 if quick else 3):
        table.add_row(r["scenario"], str(r["calls"]), str(r["missing"]), fmt(r["p50_ms"], 2),
                      fmt(r["p99_ms"], 2), fmt(r["max_ms"], 2), fmt(r["spread_ms"], 2))
    console.print(table)


def tokens(quick: bool) -> None:
    from benchmarks import tokens_bench

    rows, load = tokens_bench.run(quick)
    table = Table(title=f"Reservation token bounds per call (encodings loaded in "
                        f"{load['load_s']:.2f} s, +{load['rss_mib']:.0f} MiB)")
    for column in ("prompt", "model", "µs per call", "bound (tokens)"):
        table.add_column(column)
    for r in rows:
        table.add_row(r["prompt"], r["model"], fmt(r["us"]), str(r["tokens"]))
    console.print(table)


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
        "before: `jupyterhub-singleuser` as the spawner ran it; after: the spawner's command now "
        f"(`{' '.join(Path(a).name if a.startswith('/') else a for a in result['command'])}`). "
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
