"""What a lab runs: ``jupyterhub-singleuser``, without what a classroom lab does not need at start.

``python -m hub.labstart [jupyterhub-singleuser's arguments]`` is the
spawner's command (``c.ClassroomSpawner.start_cuts``, on by default). Plain
Python, no JupyterHub import before the lab's own.

Measured (benchmarks/RESULTS.md, "One lab's start"):

- a lab spent about one CPU second of its two importing ``rfc3987_syntax``,
  which compiles a Lark grammar at import: jupyter_server's event logger
  (jupyter_events) validates its events with jsonschema's format checker, and
  jsonschema loads that module, when it is installed, only to check the
  ``iri`` and ``iri-reference`` formats, which no event schema of a lab uses.
  Marked missing here, jsonschema checks every other format as before
  (``uri`` with rfc3986-validator).
- ``jupyterhub.singleuser`` imports two modules of the hub itself for names
  a lab never uses: ``jupyterhub.log`` imports ``jupyterhub.handlers.pages``
  (the hub's whole handler stack) for one ``isinstance`` check against the
  hub's health-check handler, which never runs in a lab, and
  ``jupyterhub.metrics`` imports ``jupyterhub.orm`` (the hub's database
  models, with Alembic) for a collector only the hub runs. Stand-ins
  (:data:`HUB_ONLY`) take their place; using anything else from them raises
  at once, naming this module, so a JupyterHub that starts needing them in
  the lab fails loudly at the lab's start rather than quietly.
"""

from __future__ import annotations

import sys
import types

# Modules a lab never needs whose import costs a noticeable part of its start.
NOT_NEEDED = ("rfc3987_syntax",)


class _HubHealthCheck:
    """Stands in for the hub's HealthCheckHandler: no lab request is one."""


# Hub modules imported by jupyterhub.singleuser for names a lab never uses: name -> names kept.
HUB_ONLY: dict[str, dict[str, object]] = {
    "jupyterhub.handlers.pages": {"HealthCheckHandler": _HubHealthCheck},
    "jupyterhub.orm": {},
}


class _StandIn(types.ModuleType):
    def __getattr__(self, name: str) -> object:
        if name.startswith("__"):
            raise AttributeError(name)
        raise AttributeError(
            f"{self.__name__}.{name} is not loaded in a lab (hub.labstart stands in for "
            f"{self.__name__}); start labs with c.ClassroomSpawner.start_cuts = False")


def stand_in(name: str, names: dict[str, object]) -> types.ModuleType:
    module = _StandIn(name, f"Stand-in for the hub-only {name} (hub.labstart).")
    for key, value in names.items():
        setattr(module, key, value)
    return module


def prepare(*, stand_ins: bool = True) -> None:
    """Mark what a lab does not need, before anything imports it."""
    for name in NOT_NEEDED:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]  # import raises ImportError
    if stand_ins:
        for name, names in HUB_ONLY.items():
            sys.modules.setdefault(name, stand_in(name, names))


def main(*, stand_ins: bool = True) -> int:
    prepare(stand_ins=stand_ins)
    sys.argv[0] = "jupyterhub-singleuser"
    from jupyterhub.singleuser import main as singleuser

    return int(singleuser() or 0)


if __name__ == "__main__":
    sys.exit(main())
