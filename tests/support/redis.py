"""A real Redis server for tests: Debian's ``redis-server`` on a free loopback port in a
fresh directory, stopped by PID (``make install-test`` installs it when it is missing).

``stop()`` and ``start()`` on the same object stop the server and start it again on the
same port (with its data, when ``persist``: an append-only file fsynced on every write),
for the tests of a Redis that goes away and comes back.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.procs import free_port, stop_process, wait_until


def redis_server_bin() -> str | None:
    return shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None)


def _answers(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(16).startswith(b"+PONG")


@dataclass
class RedisServer:
    root: Path
    port: int
    persist: bool = False
    process: subprocess.Popen[bytes] | None = None
    starts: int = field(default=0)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log(self) -> Path:
        return self.root / "redis.log"

    def start(self) -> None:
        binary = redis_server_bin()
        if binary is None:
            raise RuntimeError("redis-server is not installed (make install-test installs it)")
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.root),
                "--save", "", "--daemonize", "no", "--protected-mode", "yes",
                "--logfile", str(self.log)]
        if self.persist:
            args += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            args += ["--appendonly", "no"]
        self.process = subprocess.Popen(args, cwd=self.root, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        self.starts += 1
        wait_until(lambda: _answers(self.port), 30, "redis-server", self.process)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.process = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def start_redis(persist: bool = False) -> RedisServer:
    server = RedisServer(Path(tempfile.mkdtemp(prefix="classroom-redis-")), free_port(), persist)
    try:
        server.start()
    except BaseException:
        server.close()
        raise
    return server
