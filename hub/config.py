"""Hub configuration from the environment: the one place settings are read.

``jupyterhub_config.py`` calls :func:`configure`; ``classroom run`` uses
:class:`HubSettings` for the same values, so the hub, the CLI and the gateway
service agree on directories and ports.

Environment (all optional):

=========================  =================================================
``CLASSROOM_PORT``         public port (default 8000)
``CLASSROOM_BIND_ADDRESS`` address the public port is bound on (default 127.0.0.1)
``CLASSROOM_PUBLIC_URL``   the URL people open (default http://127.0.0.1:<port>)
``CLASSROOM_HUB_DB_URL``   the hub's database (default SQLite in the data dir)
``CLASSROOM_DATA_DIR``     hub, accounts and gateway data (default ./data)
``CLASSROOM_TENANTS_DIR``  tenant files (default <repo>/tenants)
``CLASSROOM_ADMIN_USER``   bootstrap admin account (default admin)
``CLASSROOM_HUB_PORT``     hub's internal API port (default: a free port)
``CLASSROOM_PROXY_API_PORT`` proxy's API port (default: a free port)
``CLASSROOM_GATEWAY_PORT`` gateway service port (default: a free port)
``CLASSROOM_PARALLEL_STARTS`` labs starting at once; the rest wait in line
                           (default: the number of CPU cores)
``CLASSROOM_IDLE_CULL_SECONDS`` stop a lab idle this long (default 3600; 0: never)
``CLASSROOM_LAB_MEMORY_LIMIT`` memory limit of one lab, e.g. ``2G`` (default:
                           none; enforced with a cgroup when run as root)
=========================  =================================================

Every other ``CLASSROOM_*`` variable (DB URL, keys file, master key, ...) is
passed through to the gateway service unchanged, and so are the network's
proxy and certificate variables (``HTTPS_PROXY``, ``NO_PROXY``, ``SSL_CERT_FILE``
...; :data:`gateway.config.network.NETWORK_VARIABLES`).

``classroom run`` (:mod:`hub.supervisor`) starts the proxy and the gateway
itself, then the hub with ``CLASSROOM_SUPERVISED=1``, the proxy's token in
``CONFIGPROXY_AUTH_TOKEN`` and the gateway's hub token in
``CLASSROOM_GATEWAY_API_TOKEN``. The hub then leaves labs, proxy and gateway
running when it stops, so that it can be restarted under students' feet; the
supervisor stops everything on Ctrl-C. Started by ``jupyterhub -f`` alone, the
hub manages proxy and gateway itself and stops everything when it stops.

When the hub runs as root, labs run as their own OS users (:mod:`hub.users`)
and the data directory is laid out for them (:meth:`HubSettings.make_data_dir`):
the directory itself ``0711`` (labs pass through to their homes, list nothing),
``home/`` and ``published/`` ``0711``, every other entry root's with mode
``0600`` (files) or ``0700`` (folders). See docs/isolation.md.
"""

from __future__ import annotations

import os
import pwd
import re
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from traitlets.config import Config

from gateway.config.network import NETWORK_VARIABLES
from gateway.config.tenants import Tenant, TenantFileError, load_tenants
from gateway.contract import PUBLISHED_DIR

from . import culler, homes, hubapi, roles
from .accounts import ACCOUNTS_FILE, is_valid_username
from .branding import UserBranding
from .labs import VENV_BIN

REPO_DIR = Path(__file__).resolve().parent.parent
GATEWAY_SERVICE = "gateway"
DEFAULT_PORT = 8000
# Set by `classroom run` for the hub it supervises; never handed to the gateway as such.
SUPERVISOR_VARIABLES = ("CLASSROOM_SUPERVISED", "CLASSROOM_GATEWAY_API_TOKEN")
HUB_ONLY_VARIABLES = ("CLASSROOM_ADMIN_PASSWORD", "CLASSROOM_HUB_DB_URL")
HUB_DB = "jupyterhub.sqlite"
GATEWAY_DB = "gateway.sqlite"
# Folders of the data dir that labs pass through (0711); everything else is root's alone.
LAB_FOLDERS = ("home", "published")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _port(environ: Mapping[str, str], name: str, default: int | None) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default if default is not None else free_port()
    try:
        port = int(raw)
    except ValueError:
        raise SystemExit(f"{name}={raw!r} is not a port number") from None
    if not 0 < port < 65536:
        raise SystemExit(f"{name}={port} is outside 1-65535")
    return port


def _count(environ: Mapping[str, str], name: str, default: int | None, least: int) -> int | None:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"{name}={raw!r} is not a whole number") from None
    if value < least:
        raise SystemExit(f"{name}={value} must be at least {least}")
    return value


def _memory(environ: Mapping[str, str], name: str) -> str:
    raw = environ.get(name, "").strip().upper().removesuffix("B")
    if raw and not re.fullmatch(r"\d+(\.\d+)?[KMGT]?", raw):
        raise SystemExit(f"{name}={raw!r} is not a size (e.g. 2G, 1536M)")
    return raw


def _directory(environ: Mapping[str, str], name: str, default: Path) -> Path:
    raw = environ.get(name, "").strip()
    return Path(raw).expanduser().resolve() if raw else default.resolve()


def resolve_data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``CLASSROOM_DATA_DIR`` as an absolute path (default ``./data``)."""
    environ = os.environ if environ is None else environ
    return _directory(environ, "CLASSROOM_DATA_DIR", Path.cwd() / "data")


def resolve_tenants_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``CLASSROOM_TENANTS_DIR`` as an absolute path (default ``<repo>/tenants``)."""
    environ = os.environ if environ is None else environ
    return _directory(environ, "CLASSROOM_TENANTS_DIR", REPO_DIR / "tenants")


@dataclass(frozen=True)
class HubSettings:
    """Everything the hub side needs, resolved to absolute paths and concrete ports."""

    repo_dir: Path
    data_dir: Path
    tenants_dir: Path
    port: int
    hub_port: int
    proxy_api_port: int
    gateway_port: int
    admin_user: str
    passthrough: Mapping[str, str]
    bind_address: str = "127.0.0.1"
    # The URL people open (JupyterHub.public_url when set; else the local address).
    public_url_setting: str = ""
    hub_db_url: str = ""
    # Labs run as their own OS users: the hub runs as root (see hub.users).
    isolated: bool = False
    # Under `classroom run`: proxy and gateway are the supervisor's, not the hub's.
    supervised: bool = False
    proxy_auth_token: str = ""
    gateway_api_token: str = ""
    # None: the start queue's default (the number of CPU cores).
    parallel_starts: int | None = None
    idle_cull_seconds: int = 3600
    lab_memory_limit: str = ""

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> HubSettings:
        environ = os.environ if environ is None else environ
        admin_user = environ.get("CLASSROOM_ADMIN_USER", "").strip() or "admin"
        if not is_valid_username(admin_user):
            raise SystemExit(
                f"CLASSROOM_ADMIN_USER={admin_user!r} is not a valid username "
                "(lower-case letters, digits, '.', '_', '-'; starts with a letter)"
            )
        return cls(
            repo_dir=REPO_DIR,
            data_dir=resolve_data_dir(environ),
            tenants_dir=resolve_tenants_dir(environ),
            port=_port(environ, "CLASSROOM_PORT", DEFAULT_PORT),
            hub_port=_port(environ, "CLASSROOM_HUB_PORT", None),
            proxy_api_port=_port(environ, "CLASSROOM_PROXY_API_PORT", None),
            gateway_port=_port(environ, "CLASSROOM_GATEWAY_PORT", None),
            admin_user=admin_user,
            bind_address=environ.get("CLASSROOM_BIND_ADDRESS", "").strip() or "127.0.0.1",
            public_url_setting=environ.get("CLASSROOM_PUBLIC_URL", "").strip().rstrip("/"),
            hub_db_url=environ.get("CLASSROOM_HUB_DB_URL", "").strip(),
            passthrough={
                k: v
                for k, v in environ.items()
                if (k.startswith("CLASSROOM_") and k not in SUPERVISOR_VARIABLES)
                or k in NETWORK_VARIABLES
            },
            isolated=os.geteuid() == 0,
            supervised=environ.get("CLASSROOM_SUPERVISED", "") == "1",
            proxy_auth_token=environ.get("CONFIGPROXY_AUTH_TOKEN", ""),
            gateway_api_token=environ.get("CLASSROOM_GATEWAY_API_TOKEN", ""),
            parallel_starts=_count(environ, "CLASSROOM_PARALLEL_STARTS", None, 1),
            idle_cull_seconds=_count(environ, "CLASSROOM_IDLE_CULL_SECONDS", 3600, 0) or 0,
            lab_memory_limit=_memory(environ, "CLASSROOM_LAB_MEMORY_LIMIT"),
        )

    @property
    def public_url(self) -> str:
        """The URL people open: ``CLASSROOM_PUBLIC_URL``, or the proxy's local address."""
        return self.public_url_setting or self.local_url

    @property
    def local_url(self) -> str:
        """The public proxy as seen from this machine."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def bind_url(self) -> str:
        host = f"[{self.bind_address}]" if ":" in self.bind_address else self.bind_address
        return f"http://{host}:{self.port}"

    @property
    def hub_database_url(self) -> str:
        return self.hub_db_url or f"sqlite:///{self.data_dir / HUB_DB}"

    @property
    def gateway_public_url(self) -> str:
        """The gateway through the proxy, as labs on this machine call it (no trailing slash)."""
        return f"{self.local_url}/services/{GATEWAY_SERVICE}"

    @property
    def hub_api_url(self) -> str:
        """The hub's own REST API (not through the proxy)."""
        return f"http://127.0.0.1:{self.hub_port}/hub/api"

    @property
    def accounts_db(self) -> Path:
        return self.data_dir / ACCOUNTS_FILE

    @property
    def proxy_command(self) -> list[str]:
        local = self.repo_dir / ".node" / "node_modules" / ".bin" / "configurable-http-proxy"
        return [str(local)] if local.exists() else ["configurable-http-proxy"]

    def load_tenants(self) -> dict[str, Tenant]:
        """The tenant files; a bad one exits with its file and field named."""
        try:
            return load_tenants(self.tenants_dir)
        except TenantFileError as exc:
            raise SystemExit(f"Cannot start: {exc}") from None

    @property
    def proxy_args(self) -> list[str]:
        """configurable-http-proxy's arguments, as JupyterHub would give them."""
        return [
            "--ip", self.bind_address, "--port", str(self.port),
            "--api-ip", "127.0.0.1", "--api-port", str(self.proxy_api_port),
            "--error-target", f"http://127.0.0.1:{self.hub_port}/hub/error",
            "--log-level", "info",
        ]

    def make_data_dir(self) -> list[Path]:
        """Create the data dir with the modes above; return folders opened for labs on the way.

        Without isolation everything is the hub user's and the dir is 0700.
        With it, files from earlier runs are given back to root and closed, and
        the two databases are made before their owners would create them with
        a looser umask.
        """
        data = self.data_dir
        data.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not self.isolated:
            data.chmod(0o700)
            return []
        opened = open_path_to(data)
        os.chown(data, 0, 0)
        data.chmod(0o711)
        for name in LAB_FOLDERS:
            (data / name).mkdir(mode=0o711, exist_ok=True)
        databases = ([] if self.hub_db_url else [HUB_DB]) + (
            [] if self.passthrough.get("CLASSROOM_DB_URL") else [GATEWAY_DB])
        for name in databases:
            fd = os.open(data / name, os.O_WRONLY | os.O_CREAT, 0o600)
            os.close(fd)
        for entry in data.iterdir():
            if entry.is_symlink():
                continue
            os.chown(entry, 0, 0, follow_symlinks=False)
            if entry.name in LAB_FOLDERS:
                entry.chmod(0o711)
            else:
                entry.chmod(0o700 if entry.is_dir() else 0o600)
        return opened

    def gateway_environment(self) -> dict[str, str]:
        """What the gateway service is given: managed services inherit little."""
        # The hub's own secrets are the CLASSROOM_* values the gateway never needs.
        env = {k: v for k, v in self.passthrough.items() if k not in HUB_ONLY_VARIABLES}
        env.update(
            CLASSROOM_DATA_DIR=str(self.data_dir),
            CLASSROOM_TENANTS_DIR=str(self.tenants_dir),
            CLASSROOM_PORT=str(self.port),
            CLASSROOM_GATEWAY_PORT=str(self.gateway_port),
            CLASSROOM_PUBLIC_URL=self.public_url,
        )
        return env

    @property
    def gateway_command(self) -> list[str]:
        return [
            str(Path(VENV_BIN) / "classroom"),
            "gateway",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.gateway_port),
        ]

    def gateway_process_environment(self, api_token: str) -> dict[str, str]:
        """The whole environment of a gateway started by the supervisor, not the hub."""
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TZ")}
        env.update(self.gateway_environment())
        env.update(
            JUPYTERHUB_API_URL=self.hub_api_url,
            JUPYTERHUB_API_TOKEN=api_token,
            JUPYTERHUB_SERVICE_NAME=GATEWAY_SERVICE,
            JUPYTERHUB_SERVICE_URL=f"http://127.0.0.1:{self.gateway_port}",
            JUPYTERHUB_SERVICE_PREFIX=f"/services/{GATEWAY_SERVICE}/",
        )
        return env

    def gateway_service(self) -> dict[str, object]:
        """The hub's ``services`` entry: managed by the hub, or the supervisor's."""
        service: dict[str, object] = {
            "name": GATEWAY_SERVICE,
            "url": f"http://127.0.0.1:{self.gateway_port}",
            "display": False,
        }
        if self.supervised:
            service["api_token"] = self.gateway_api_token
        else:
            service["command"] = self.gateway_command
            service["environment"] = self.gateway_environment()
        return service


def open_path_to(folder: Path) -> list[Path]:
    """Let every user pass through (o+x, never list) the folders above ``folder``.

    Labs running as their own users must reach their homes in the data dir.
    Only folders of the hub's own user are changed, never anyone's home
    directory (such as /root): the hub refuses to start instead.
    """
    homes = {Path(p.pw_dir) for p in pwd.getpwall() if p.pw_dir not in ("", "/")}
    opened: list[Path] = []
    for parent in reversed(folder.parents):
        info = parent.stat()
        if info.st_mode & 0o001:
            continue
        if info.st_uid != os.geteuid() or parent in homes:
            raise SystemExit(
                f"Labs run as their own OS users and cannot pass through {parent} "
                f"(mode {info.st_mode & 0o7777:04o}), which holds CLASSROOM_DATA_DIR="
                f"{folder}. Choose a data directory outside it (e.g. /var/lib/classroom)."
            )
        parent.chmod((info.st_mode & 0o7777) | 0o001)
        opened.append(parent)
    if opened:
        print(
            "classroom: let lab users pass through (o+x, no listing) "
            + ", ".join(map(str, opened)),
            file=sys.stderr,
        )
    return opened


def configure(c: Config, environ: Mapping[str, str] | None = None) -> HubSettings:
    """Fill a JupyterHub config ``c`` from the environment; return the settings used."""
    # Imported here so that `classroom accounts` does not pay for importing JupyterHub.
    from .spawner import ClassroomSpawner

    settings = HubSettings.from_environ(environ)
    tenants = settings.load_tenants()
    settings.make_data_dir()
    data = settings.data_dir

    # Network: public proxy on CLASSROOM_PORT, everything else on free loopback ports.
    c.JupyterHub.bind_url = settings.bind_url
    if settings.public_url_setting:
        c.JupyterHub.public_url = settings.public_url_setting
    c.JupyterHub.hub_ip = "127.0.0.1"
    c.JupyterHub.hub_port = settings.hub_port
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{settings.proxy_api_port}"
    c.ConfigurableHTTPProxy.command = settings.proxy_command
    c.ConfigurableHTTPProxy.pid_file = str(data / "jupyterhub-proxy.pid")

    # State in the data directory.
    c.JupyterHub.db_url = settings.hub_database_url
    c.JupyterHub.cookie_secret_file = str(data / "jupyterhub_cookie_secret")
    c.JupyterHub.pid_file = str(data / "jupyterhub.pid")
    if settings.supervised:
        # `classroom run` owns proxy and gateway and stops labs itself on Ctrl-C,
        # so the hub can restart while students keep working.
        c.ConfigurableHTTPProxy.should_start = False
        c.ConfigurableHTTPProxy.auth_token = settings.proxy_auth_token
        c.JupyterHub.cleanup_servers = False
        c.JupyterHub.cleanup_proxy = False
    else:
        # Stopping the hub stops proxy, gateway and labs: one Ctrl-C ends the classroom.
        c.JupyterHub.cleanup_servers = True
        c.JupyterHub.cleanup_proxy = True

    configure_classroom(c, settings, tenants)
    c.JupyterHub.services = [
        settings.gateway_service(),
        # API-only: `classroom accounts import` creates users and groups through it.
        hubapi.prepare_service(data, settings.hub_api_url),
    ]
    if settings.idle_cull_seconds:
        c.JupyterHub.services.append(culler.service(settings.idle_cull_seconds))
        c.JupyterHub.load_roles.append(culler.role())

    c.JupyterHub.spawner_class = ClassroomSpawner
    # Labs start a few at a time, the others wait in order (hub.startqueue); the
    # hub's own limit would refuse them with "try again later" instead.
    c.JupyterHub.concurrent_spawn_limit = 0
    if settings.parallel_starts is not None:
        c.LabStarts.parallel = settings.parallel_starts
    if settings.lab_memory_limit:
        c.Spawner.mem_limit = settings.lab_memory_limit
    c.ClassroomSpawner.home_dir_template = str(data / "home" / "{username}")
    c.ClassroomSpawner.lessons_dir = str(settings.repo_dir / "notebooks" / "lessons")
    c.ClassroomSpawner.role_notebooks = {
        role: [str(settings.repo_dir / "notebooks" / f) for f in folders]
        for role, folders in homes.ROLE_FOLDERS.items()
    }
    c.ClassroomSpawner.gateway_url = settings.gateway_public_url
    c.ClassroomSpawner.published_root = str(data / PUBLISHED_DIR)
    c.Spawner.default_url = "/lab"
    # A link to a published dashboard starts the viewer's own server when it is stopped.
    c.JupyterHub.implicit_spawn_seconds = 2
    # False: the hub's home page warns admins that labs share one OS user.
    c.JupyterHub.template_vars["classroom_labs_isolated"] = settings.isolated
    return settings


def configure_classroom(c: Config, settings: HubSettings, tenants: Mapping[str, Tenant]) -> None:
    """What every classroom hub has, on one server or on Kubernetes (:mod:`hub.kube`):
    the authenticator, the custom scopes and roles, the lab token's scopes, branding."""
    from .auth import ClassroomAuthenticator

    c.JupyterHub.authenticator_class = ClassroomAuthenticator
    c.ClassroomAuthenticator.data_dir = str(settings.data_dir)
    c.ClassroomAuthenticator.tenants_dir = str(settings.tenants_dir)
    c.Authenticator.admin_users = {settings.admin_user}
    # A disabled or deleted account is refused by the hub at its next request
    # (every second at most one accounts lookup per user), and by the gateway
    # when its identity cache (at most 60 s) expires.
    c.ClassroomAuthenticator.auth_refresh_age = 1

    c.JupyterHub.custom_scopes = roles.custom_scopes()
    c.JupyterHub.load_roles = [
        *c.JupyterHub.get("load_roles", []),  # z2jh's hub.loadRoles, if any
        *roles.load_roles(dict(tenants), gateway_service=GATEWAY_SERVICE),
        hubapi.service_role(),
    ]
    c.Spawner.server_token_scopes = list(roles.SERVER_TOKEN_SCOPES)

    default_tenant = tenants.get("default")
    if default_tenant is not None and default_tenant.branding.logo_path:
        c.JupyterHub.logo_file = str(settings.tenants_dir / default_tenant.branding.logo_path)
    # Every page is branded for its user's school (the login page for ?tenant=).
    c.JupyterHub.template_vars = {
        **c.JupyterHub.get("template_vars", {}),
        "classroom": UserBranding(dict(tenants)),
        "classroom_labs_isolated": True,
    }
    c.JupyterHub.template_paths = [str(Path(__file__).resolve().parent / "templates")]


def main() -> None:  # pragma: no cover - debugging aid
    """Print the resolved settings (``python -m hub.config``)."""
    settings = HubSettings.from_environ()
    for name, value in vars(settings).items():
        if name != "passthrough":
            print(f"{name:16} {value}")
    print(f"{'python':16} {sys.executable}")


if __name__ == "__main__":  # pragma: no cover
    main()
