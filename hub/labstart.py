"""What a lab runs: ``jupyterhub-singleuser``, without what a classroom lab does not need at start.

``python -m hub.labstart [jupyterhub-singleuser's arguments]`` is the
spawner's command. Plain Python, no JupyterHub import before the lab's own.

Measured (benchmarks/RESULTS.md, "One lab's start"), a lab spent about one
CPU second of its two importing ``rfc3987_syntax``, which compiles a Lark
grammar at import: jupyter_server's event logger (jupyter_events) validates
its events with jsonschema's format checker, and jsonschema loads that module,
when it is installed, only to check the ``iri`` and ``iri-reference`` formats,
which no event schema of a lab uses. Marked missing here, jsonschema checks
every other format as before (``uri`` with rfc3986-validator).
"""

from __future__ import annotations

import sys

# Modules a lab never needs whose import costs a noticeable part of its start.
NOT_NEEDED = ("rfc3987_syntax",)


def main() -> int:
    for name in NOT_NEEDED:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]  # import raises ImportError
    sys.argv[0] = "jupyterhub-singleuser"
    from jupyterhub.singleuser import main as singleuser

    return int(singleuser() or 0)


if __name__ == "__main__":
    sys.exit(main())
