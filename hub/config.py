"""Hub configuration from the environment: the one place settings are read.

``jupyterhub_config.py`` calls :func:`configure`; ``classroom run`` uses
:class:`HubSettings` for the same values, so the hub, the CLI and the gateway
service agree on directories and ports.

Environment (all optional):

=========================  =================================================
``CLASSROOM_PORT``         public port on 127.0.0.1 (default 8000)
``CLASSROOM_DATA_DIR``     hub, accounts and gateway data (default ./data)
``CLASSROOM_TENANTS_DIR``  tenant files (default <repo>/tenants)
``CLASSROOM_ADMIN_USER``   bootstrap admin account (default admin)
``CLASSROOM_HUB_PORT``     hub's internal API port (default: a free port)
``CLASSROOM_PROXY_API_PORT`` proxy's API port (default: a free port)
``CLASSROOM_GATEWAY_PORT`` gateway service port (default: a free port)
=========================  =================================================

Every other ``CLASSROOM_*`` variable (DB URL, keys file, master key, ...) is
passed through to the gateway service unchanged.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from traitlets.config import Config

from gateway.tenants import Tenant, TenantFileError, load_tenants

from . import hubapi, roles
from .accounts import ACCOUNTS_FILE, is_valid_username
from .branding import UserBranding

REPO_DIR = Path(__file__).resolve().parent.parent
# The venv this code runs from: its jupyterhub, jupyterhub-singleuser and classroom.
VENV_BIN = str(Path(sys.prefix) / "bin")
GATEWAY_SERVICE = "gateway"
DEFAULT_PORT = 8000


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
            passthrough={k: v for k, v in environ.items() if k.startswith("CLASSROOM_")},
        )

    @property
    def public_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def gateway_public_url(self) -> str:
        """The gateway through the proxy, as labs call it (no trailing slash)."""
        return f"{self.public_url}/services/{GATEWAY_SERVICE}"

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

    def make_data_dir(self) -> None:
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)

    def gateway_environment(self) -> dict[str, str]:
        """What the gateway service is given: managed services inherit little."""
        # The hub admin's password is the one CLASSROOM_* value the gateway never needs.
        env = {k: v for k, v in self.passthrough.items() if k != "CLASSROOM_ADMIN_PASSWORD"}
        env.update(
            CLASSROOM_DATA_DIR=str(self.data_dir),
            CLASSROOM_TENANTS_DIR=str(self.tenants_dir),
            CLASSROOM_PORT=str(self.port),
            CLASSROOM_GATEWAY_PORT=str(self.gateway_port),
            CLASSROOM_PUBLIC_URL=self.public_url,
        )
        return env

    def gateway_service(self) -> dict[str, object]:
        return {
            "name": GATEWAY_SERVICE,
            "url": f"http://127.0.0.1:{self.gateway_port}",
            "command": [
                str(Path(VENV_BIN) / "classroom"),
                "gateway",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.gateway_port),
            ],
            "environment": self.gateway_environment(),
            "display": False,
        }


def configure(c: Config, environ: Mapping[str, str] | None = None) -> HubSettings:
    """Fill a JupyterHub config ``c`` from the environment; return the settings used."""
    # Imported here so that `classroom accounts` does not pay for importing JupyterHub.
    from .auth import ClassroomAuthenticator
    from .spawner import ClassroomSpawner

    settings = HubSettings.from_environ(environ)
    tenants = settings.load_tenants()
    settings.make_data_dir()
    data = settings.data_dir

    # Network: public proxy on CLASSROOM_PORT, everything else on free loopback ports.
    c.JupyterHub.bind_url = settings.public_url
    c.JupyterHub.hub_ip = "127.0.0.1"
    c.JupyterHub.hub_port = settings.hub_port
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{settings.proxy_api_port}"
    c.ConfigurableHTTPProxy.command = settings.proxy_command
    c.ConfigurableHTTPProxy.pid_file = str(data / "jupyterhub-proxy.pid")

    # State in the data directory.
    c.JupyterHub.db_url = f"sqlite:///{data / 'jupyterhub.sqlite'}"
    c.JupyterHub.cookie_secret_file = str(data / "jupyterhub_cookie_secret")
    c.JupyterHub.pid_file = str(data / "jupyterhub.pid")
    # Stopping the hub stops proxy, gateway and labs: one Ctrl-C ends the classroom.
    c.JupyterHub.cleanup_servers = True
    c.JupyterHub.cleanup_proxy = True

    c.JupyterHub.authenticator_class = ClassroomAuthenticator
    c.ClassroomAuthenticator.data_dir = str(data)
    c.ClassroomAuthenticator.tenants_dir = str(settings.tenants_dir)
    c.Authenticator.admin_users = {settings.admin_user}

    c.JupyterHub.custom_scopes = roles.custom_scopes()
    c.JupyterHub.load_roles = [
        *roles.load_roles(tenants, gateway_service=GATEWAY_SERVICE),
        hubapi.service_role(),
    ]
    c.JupyterHub.services = [
        settings.gateway_service(),
        # API-only: `classroom accounts import` creates users and groups through it.
        hubapi.prepare_service(data, settings.hub_api_url),
    ]

    c.JupyterHub.spawner_class = ClassroomSpawner
    c.ClassroomSpawner.home_dir_template = str(data / "home" / "{username}")
    c.ClassroomSpawner.lessons_dir = str(settings.repo_dir / "notebooks" / "lessons")
    c.ClassroomSpawner.gateway_url = settings.gateway_public_url
    c.ClassroomSpawner.published_root = str(data / "published")
    c.Spawner.server_token_scopes = list(roles.SERVER_TOKEN_SCOPES)
    c.Spawner.default_url = "/lab"
    # A link to a published dashboard starts the viewer's own server when it is stopped.
    c.JupyterHub.implicit_spawn_seconds = 2

    default_tenant = tenants.get("default")
    if default_tenant is not None and default_tenant.branding.logo_path:
        c.JupyterHub.logo_file = str(settings.tenants_dir / default_tenant.branding.logo_path)
    # Every page is branded for its user's school (the login page for ?tenant=).
    c.JupyterHub.template_vars = {"classroom": UserBranding(tenants)}
    c.JupyterHub.template_paths = [str(Path(__file__).resolve().parent / "templates")]
    return settings


def main() -> None:  # pragma: no cover - debugging aid
    """Print the resolved settings (``python -m hub.config``)."""
    settings = HubSettings.from_environ()
    for name, value in vars(settings).items():
        if name != "passthrough":
            print(f"{name:16} {value}")
    print(f"{'python':16} {sys.executable}")


if __name__ == "__main__":  # pragma: no cover
    main()
