"""Real network parts for tests: a private certificate authority and Debian's tinyproxy.

- :func:`private_ca` writes a CA and a server certificate it signed (for 127.0.0.1
  and localhost) into a folder: ``ca.pem``, ``server.pem``, ``server-key.pem``.
- :class:`Tinyproxy` runs ``tinyproxy -d`` on a free loopback port with its own
  configuration and log in a temporary folder, stopped by its PID; :meth:`Tinyproxy.requests`
  reads what the proxy itself logged it forwarded (``CONNECT host:port`` or ``GET http://…``).
"""

from __future__ import annotations

import datetime
import ipaddress
import re
import shutil
import subprocess
from pathlib import Path

from tests.support.procs import free_port, stop_process, wait_until

TINYPROXY = shutil.which("tinyproxy") or "/usr/bin/tinyproxy"


def private_ca(folder: Path) -> dict[str, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test School Root CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vendor.test")]))
        .issuer_name(ca_name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"ca": folder / "ca.pem", "cert": folder / "server.pem",
             "key": folder / "server-key.pem"}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return paths


class Tinyproxy:
    """Debian's tinyproxy on 127.0.0.1, optionally asking for Basic credentials."""

    def __init__(self, folder: Path, basic_auth: tuple[str, str] | None = None) -> None:
        self.folder = folder
        self.port = free_port()
        self.log = folder / "tinyproxy.log"
        self.basic_auth = basic_auth
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Tinyproxy:
        self.folder.mkdir(parents=True, exist_ok=True)
        config = self.folder / "tinyproxy.conf"
        lines = [f"Port {self.port}", "Listen 127.0.0.1", "Timeout 60",
                 f'LogFile "{self.log}"', "LogLevel Connect", "MaxClients 100",
                 "Allow 127.0.0.1", "DisableViaHeader Yes"]
        if self.basic_auth:
            lines.append(f"BasicAuth {self.basic_auth[0]} {self.basic_auth[1]}")
        config.write_text("\n".join(lines) + "\n")
        with open(self.folder / "tinyproxy.out", "wb") as out:
            self.process = subprocess.Popen([TINYPROXY, "-d", "-c", str(config)],
                                            stdout=out, stderr=subprocess.STDOUT)
        wait_until(lambda: "Accepting connections" in self._log_text()
                   or self._accepts(), 20, "tinyproxy", self.process)
        return self

    def _accepts(self) -> bool:
        import socket
        with socket.create_connection(("127.0.0.1", self.port), timeout=1):
            return True

    def _log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def requests(self) -> list[str]:
        """Each request line the proxy logged (``CONNECT 127.0.0.1:443 HTTP/1.1`` ...)."""
        return re.findall(r"Request \(file descriptor \d+\): (.+)", self._log_text())

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
