"""``make bench``: every benchmark, printed as tables.

python -m benchmarks              # all
python -m benchmarks pool         # one
python -m benchmarks --quick      # shorter runs
"""

from __future__ import annotations

import argparse
import math

from rich.console import Console
from rich.table import Table

console = Console(width=180)


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


BENCHES = {"pool": pool, "jitter": jitter, "overhead": overhead, "tokens": tokens}


def main() -> None:
    parser = argparse.ArgumentParser(prog="make bench")
    parser.add_argument("which", nargs="*", default=list(BENCHES), help=f"any of {list(BENCHES)}")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    for name in args.which:
        BENCHES[name](args.quick)


if __name__ == "__main__":
    main()
