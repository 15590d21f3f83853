"""One part of the classroom per systemd unit: ``python -m hub.units proxy|gateway|hub``.

For a school that stays on one server and wants its parts under systemd rather than
``classroom run``'s supervisor (``deploy/systemd/``, docs/single-server.md). Each unit
execs its part with exactly the command and environment ``classroom run`` gives it
(:func:`hub.supervisor.define_parts`): the proxy on ``CLASSROOM_PORT``, the gateway
as the hub's external service, and the hub in supervised mode, which leaves labs, the
proxy and the gateway running when it restarts. Isolation is the same: run as root,
every lab runs as its own OS user and the data stays root's.

What separate units must agree on:

- the ports: ``CLASSROOM_HUB_PORT``, ``CLASSROOM_PROXY_API_PORT`` and
  ``CLASSROOM_GATEWAY_PORT`` must be set (``/etc/classroom/classroom.env``), since a free
  port picked by one unit would be unknown to the others;
- the proxy's token and the gateway's hub token, kept in ``<data dir>/units.json``
  (mode 0600), made by whichever unit starts first.

``python -m hub.units --print gateway`` shows the command and the names of the
variables without starting anything.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from pathlib import Path

from .config import HubSettings
from .supervisor import Part, define_parts, run_environment

PARTS = ("proxy", "gateway", "hub")
FIXED_PORTS = ("CLASSROOM_HUB_PORT", "CLASSROOM_PROXY_API_PORT", "CLASSROOM_GATEWAY_PORT")
TOKENS_FILE = "units.json"


def shared_tokens(data_dir: Path) -> dict[str, str]:
    """The tokens the three units share, made once (the first unit wins a race)."""
    path = data_dir / TOKENS_FILE
    fresh = {"proxy": secrets.token_hex(32), "gateway": secrets.token_hex(32)}
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        tokens = json.loads(path.read_text())
        if not all(isinstance(tokens.get(k), str) and len(tokens[k]) >= 32 for k in fresh):
            raise SystemExit(f"{path} is damaged: remove it and restart the units") from None
        return {k: tokens[k] for k in fresh}
    with os.fdopen(fd, "w") as out:
        json.dump(fresh, out)
    return fresh


def part_of(name: str, environ: dict[str, str] | None = None) -> Part:
    environ = dict(os.environ if environ is None else environ)
    missing = [v for v in FIXED_PORTS if not environ.get(v, "").strip()]
    if missing:
        raise SystemExit(f"hub.units: set {', '.join(missing)} (e.g. in /etc/classroom/"
                         "classroom.env): the units must agree on these ports")
    settings = HubSettings.from_environ(environ)
    if name == "hub":
        # As `classroom run` does: tenants checked, data dir laid out, admin bootstrapped.
        from .cli import _prepare_run

        os.environ.update({k: environ[k] for k in environ if k.startswith("CLASSROOM_")})
        settings, note, config_file = _prepare_run()
        print(f"hub.units: admin {settings.admin_user}: {note}", file=sys.stderr)
    else:
        settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        config_file = settings.repo_dir / "jupyterhub_config.py"
    tokens = shared_tokens(settings.data_dir)
    parts = define_parts(settings, config_file, run_environment(settings, environ),
                         tokens["proxy"], tokens["gateway"])
    return next(part for part in parts if part.name == name)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m hub.units", description=__doc__.split(
        "\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--print", action="store_true", dest="show",
                        help="print the command and variable names; start nothing")
    parser.add_argument("part", choices=PARTS)
    args = parser.parse_args(argv)
    part = part_of(args.part)
    if args.show:
        print(json.dumps({"command": part.command, "environment": sorted(part.env)}, indent=2))
        return
    settings = HubSettings.from_environ()
    if settings.isolated:
        os.umask(0o077)  # whatever the parts create is root's alone
    os.chdir(settings.data_dir)  # where `classroom run` starts its parts
    os.execvpe(part.command[0], part.command, part.env)


if __name__ == "__main__":
    main()
