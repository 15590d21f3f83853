"""``docs/cli.md``, made from the ``classroom`` command's own argparse parsers.

Each subcommand's parser is the documentation: its help text is copied, command
by command, into one page. ``python -m hub.cli_docs`` rewrites the page; a test
fails when it is out of date (as :mod:`hub.tenant_docs` and
:mod:`hub.settings_docs` do for their tables).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "cli.md"
WIDTH = "100"  # argparse wraps help to $COLUMNS: fixed, so the page does not depend on a terminal

HEAD = """# The `classroom` command

One command for every part: `classroom run` and `classroom accounts` belong to the hub
side, `classroom gateway` to the gateway, `classroom publish` and `classroom loadtest`
talk to a running gateway over HTTP (they read `CLASSROOM_GATEWAY_URL` and
`CLASSROOM_API_TOKEN`, set in every lab). Each section below is the command's own
`--help`; this page is written by `python -m hub.cli_docs` and a test fails when it
differs from the parsers.

"""


def parsers() -> list[tuple[str, Callable[[], argparse.ArgumentParser]]]:
    """Each top-level subcommand and the function that builds its parser."""
    # ``classroom.publish`` is also the package's publish() function: import the module.
    publish = importlib.import_module("classroom.publish")
    loadtest = importlib.import_module("classroom.loadtest")
    from gateway import cli as gateway_cli
    from hub import cli as hub_cli

    return [
        ("classroom run", hub_cli._run_parser),
        ("classroom gateway", gateway_cli.parser),
        ("classroom accounts", hub_cli._accounts_parser),
        ("classroom publish", publish.parser),
        ("classroom loadtest", loadtest._parser),
    ]


def _walk(parser: argparse.ArgumentParser, depth: int
          ) -> Iterator[tuple[int, argparse.ArgumentParser]]:
    yield depth, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _walk(sub, depth + 1)


def render() -> str:
    from classroom.cli import USAGE

    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = WIDTH
    try:
        parts = [HEAD, "```text\n" + USAGE.strip("\n") + "\n```\n"]
        for _, build in parsers():
            for depth, parser in _walk(build(), 2):
                parts.append(f"\n{'#' * depth} `{parser.prog}`\n\n```text\n"
                             + parser.format_help().rstrip("\n") + "\n```\n")
    finally:
        if previous is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = previous
    return "".join(parts)


def main() -> int:  # pragma: no cover - maintenance command
    DOC.write_text(render(), encoding="utf-8")
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
