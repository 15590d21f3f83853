"""The ``classroom`` command: one entry point, subcommands owned by each package.

``classroom gateway ...`` is the gateway's own CLI, ``classroom accounts ...``
and ``classroom run`` belong to the hub side; everything else talks to a
running gateway over HTTP. Subcommands are imported lazily so that a student's
``classroom`` call does not import the server packages.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

USAGE = """usage: classroom <command> [options]

commands:
  run                     start the whole classroom (hub, proxy, gateway)
  gateway serve           run the gateway alone (--host, --port)
  accounts ...            add, list, disable and reset local accounts (import a roster)
  publish NOTEBOOK        publish a dashboard to your school (teachers)
  loadtest ...            plan, run and replay load tests against a gateway (admins)
"""


def _gateway(argv: Sequence[str]) -> int:
    from gateway.cli import main

    return main(list(argv))


def _accounts(argv: Sequence[str]) -> int:
    from hub.cli import accounts_main

    return accounts_main(list(argv))


def _run(argv: Sequence[str]) -> int:
    from hub.cli import run_main

    return run_main(list(argv))


def _publish(argv: Sequence[str]) -> int:
    from classroom.publish import main

    return main(list(argv))


def _loadtest(argv: Sequence[str]) -> int:
    from classroom.loadtest import main

    return main(list(argv))


COMMANDS: dict[str, Callable[[Sequence[str]], int]] = {
    "gateway": _gateway,
    "accounts": _accounts,
    "run": _run,
    "publish": _publish,
    "loadtest": _loadtest,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help", "help"}:
        print(USAGE)
        return 0
    command = COMMANDS.get(args[0])
    if command is None:
        print(f"classroom: unknown command {args[0]!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    return command(args[1:])


if __name__ == "__main__":
    sys.exit(main())
