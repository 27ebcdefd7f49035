"""Real service binaries on free loopback ports, for tests and benchmarks.

Each service runs as a child process in its own temporary directory (config,
data and ``service.log`` live there), on a port nobody else uses, and is
stopped with terminate -> wait -> kill. Use them as context managers::

    with RedisServer() as redis_srv:
        client = redis.Redis.from_url(redis_srv.url)

A missing binary raises ``ServiceUnavailable`` (the pytest fixtures turn that
into a skip outside CI and a failure under CI); a service that exits or does not
answer in time raises ``ServiceStartError`` carrying the tail of its log.

Processes never outlive the test run: every started service is stopped at
interpreter exit, and on Linux the child also gets SIGTERM if the starting
thread dies (``setpriv --pdeathsig``), so a killed pytest leaves no broker behind.
Start services from the main thread: a worker thread that exits takes them along.
"""

from __future__ import annotations

import atexit
import getpass
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, ClassVar

from vitalstream.errors import VitalstreamError

HOST = "127.0.0.1"


class ServiceError(VitalstreamError):
    """A test service could not be used."""


class ServiceUnavailable(ServiceError):
    """The service binary is not installed on this machine."""


class ServiceStartError(ServiceError):
    """The service exited or did not become ready in time; detail holds its log tail."""


class ServiceTimeout(ServiceError):
    """A wait on a running service (e.g. for points to appear) timed out."""


def free_port(host: str = HOST) -> int:
    """A TCP port free right now: the kernel picks it when binding port 0."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _port_conflict(log: str) -> bool:
    low = log.lower()
    return "address already in use" in low or "address in use" in low


class Service:
    """Base of a service child process; subclasses write its config and say when it is ready."""

    name: ClassVar[str] = "service"
    binary_path: ClassVar[str] = ""
    binary_env: ClassVar[str] = ""  # env var that overrides binary_path (binary elsewhere)
    scheme: ClassVar[str] = "tcp"

    def __init__(self, workdir: str | Path | None = None, *, binary: str | None = None,
                 port: int | None = None, start_timeout_s: float = 20.0) -> None:
        self.binary = binary or os.environ.get(self.binary_env) or self.binary_path
        self.host = HOST
        self.port = port or 0
        self._fixed_port = port is not None
        self.start_timeout_s = start_timeout_s
        self._own_dir = workdir is None
        self.dir = Path(workdir) if workdir is not None else None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: Any = None

    # --- subclass hooks -------------------------------------------------
    def _prepare(self) -> None:
        """Write config files into self.dir; self.port is already chosen."""

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _ready(self) -> bool:
        raise NotImplementedError

    def _pick_ports(self) -> None:
        self.port = free_port()

    # --- public API -----------------------------------------------------
    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        assert self.dir is not None, "service not started"
        return self.dir / "service.log"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except (OSError, AssertionError):
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def start(self) -> "Service":
        if self.running:
            raise ServiceError("service", None, "already_running", f"{self.name} on {self.url}")
        self._check_binary(self.binary)
        if self.dir is None:
            self.dir = Path(tempfile.mkdtemp(prefix=f"vitalstream-{self.name}-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        attempts = 1 if (self._fixed_port or self.port) else 3
        for attempt in range(attempts):
            if not self.port:
                self._pick_ports()
            self._prepare()
            try:
                self._spawn_and_wait()
                return self
            except ServiceStartError as e:
                # Another process may have taken the port between pick and bind: pick again.
                if attempt + 1 < attempts and _port_conflict(e.detail):
                    self.port = 0
                    continue
                raise
        raise AssertionError("unreachable")

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM (a clean shutdown: mosquitto saves its sessions), then SIGKILL if it hangs."""
        self._signal_and_reap(signal.SIGTERM, timeout_s)

    def kill(self) -> None:
        """SIGKILL: a crash, nothing saved since the last autosave."""
        self._signal_and_reap(signal.SIGKILL, 5.0)

    def restart(self, *, crash: bool = False) -> None:
        """Stop and start again on the same port and directory (data and sessions kept)."""
        if crash:
            self.kill()
        else:
            self.stop()
        self._spawn_and_wait()

    def close(self) -> None:
        """Stop and remove the temporary directory if this object created it."""
        self.stop()
        if self._own_dir and self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self) -> "Service":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- internals -----------------------------------------------------
    def _check_binary(self, path: str) -> None:
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise ServiceUnavailable(
                "service", None, "binary_missing",
                f"{self.name}: {path} not found (Debian: run scripts/setup.sh)")

    def _env(self) -> dict[str, str]:
        return dict(os.environ)

    def _spawn_and_wait(self) -> None:
        assert self.dir is not None
        cmd = self._command()
        setpriv = shutil.which("setpriv")
        if setpriv is not None:
            cmd = [setpriv, "--pdeathsig", "TERM", "--", *cmd]
        self._log_file = open(self.log_path, "ab")
        self._proc = subprocess.Popen(cmd, cwd=self.dir, env=self._env(), stdin=subprocess.DEVNULL,
                                      stdout=self._log_file, stderr=subprocess.STDOUT,
                                      start_new_session=True)
        atexit.register(self.stop)
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            if self._proc.poll() is not None:
                rc = self._proc.returncode
                self._reap()
                raise ServiceStartError("service", None, "exited",
                                        f"{self.name} exited with {rc}; log tail:\n{self.log_tail()}")
            try:
                if self._ready():
                    return
            except OSError:
                pass  # not listening yet
            if time.monotonic() > deadline:
                self.kill()
                raise ServiceStartError(
                    "service", None, "not_ready",
                    f"{self.name} not ready on {self.url} after {self.start_timeout_s} s; "
                    f"log tail:\n{self.log_tail()}")
            time.sleep(0.05)

    def _signal_and_reap(self, sig: int, timeout_s: float) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, sig)
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5.0)
            except ProcessLookupError:
                pass
        self._reap()

    def _reap(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.wait()
        self._proc = None
        atexit.unregister(self.stop)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def _http(self, method: str, path: str, body: bytes | None = None,
              timeout_s: float = 10.0) -> tuple[int, bytes]:
        req = urllib.request.Request(f"http://{self.host}:{self.port}{path}", data=body, method=method)
        try:
            with urllib.request.urlopen(req, timeout=timeout_s) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()


def _mqtt_connack(host: str, port: int) -> bool:
    """A bare MQTT 3.1.1 CONNECT (clean session, empty client id) answered by a CONNACK."""
    connect = bytes([0x10, 12, 0, 4]) + b"MQTT" + bytes([4, 0x02, 0, 10, 0, 0])
    with socket.create_connection((host, port), timeout=1.0) as s:
        s.sendall(connect)
        return s.recv(4)[:1] == b"\x20"


class Mosquitto(Service):
    """mosquitto with persistence in its directory: persistent sessions survive ``restart()``.

    ``users`` creates a password file (``mosquitto_passwd``) and, unless told
    otherwise, turns anonymous access off. ``acl`` is the text of an ACL file
    (``user``/``topic``/``pattern`` lines), written beside the config and named
    by ``acl_file``. ``tls`` = ``(cafile, certfile, keyfile)`` adds a second,
    TLS-only listener on ``tls_port`` (``tls_url``: ``mqtts://``); the plain
    listener stays, for the readiness probe. ``extra_config`` is appended
    verbatim (e.g. ``max_queued_messages 100000``: the default of 1000 drops
    QoS 1 messages queued for an offline persistent session beyond that).
    """

    name = "mosquitto"
    binary_env = "VITALSTREAM_MOSQUITTO_BIN"
    binary_path = "/usr/sbin/mosquitto"
    passwd_path = "/usr/bin/mosquitto_passwd"
    scheme = "mqtt"

    def __init__(self, workdir: str | Path | None = None, *, users: dict[str, str] | None = None,
                 allow_anonymous: bool | None = None, acl: str | None = None,
                 tls: tuple[str | Path, str | Path, str | Path] | None = None,
                 extra_config: str = "", **kw: Any) -> None:
        super().__init__(workdir, **kw)
        self.users = dict(users or {})
        self.allow_anonymous = (not self.users) if allow_anonymous is None else allow_anonymous
        self.acl = acl
        self.tls = tls
        self.tls_port = 0
        self.extra_config = extra_config

    @property
    def tls_url(self) -> str:
        return f"mqtts://{self.host}:{self.tls_port}"

    def _pick_ports(self) -> None:
        self.port = free_port()
        if self.tls is not None:
            self.tls_port = free_port()

    def _prepare(self) -> None:
        assert self.dir is not None
        lines = [
            f"listener {self.port} {self.host}",
            f"allow_anonymous {'true' if self.allow_anonymous else 'false'}",
            "persistence true",
            f"persistence_location {self.dir}/",
            # Run as whoever started us: as root mosquitto would otherwise switch to
            # user 'mosquitto', which cannot write this private temp dir.
            f"user {getpass.getuser()}",
            "log_dest stdout",
            "log_type error", "log_type warning", "log_type notice", "log_type information",
            "connection_messages true",
        ]
        if self.users:
            self._check_binary(self.passwd_path)
            pw = self.dir / "passwd"
            pw.write_text("")
            for user, password in self.users.items():
                subprocess.run([self.passwd_path, "-b", str(pw), user, password], check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            lines.append(f"password_file {pw}")
        if self.acl is not None:
            (self.dir / "acl").write_text(self.acl)
            lines.append(f"acl_file {self.dir / 'acl'}")
        if self.tls is not None:
            if not self.tls_port:
                self.tls_port = free_port()
            ca, cert, key = self.tls
            # Last: cafile/certfile/keyfile belong to the listener line before them.
            lines += [f"listener {self.tls_port} {self.host}", f"cafile {ca}",
                      f"certfile {cert}", f"keyfile {key}"]
        (self.dir / "mosquitto.conf").write_text("\n".join(lines) + "\n" + self.extra_config + "\n")

    def _command(self) -> list[str]:
        assert self.dir is not None
        return [self.binary, "-c", str(self.dir / "mosquitto.conf")]

    def _ready(self) -> bool:
        return _mqtt_connack(self.host, self.port)


class RedisServer(Service):
    """redis-server without persistence; ``url`` names database 0."""

    name = "redis"
    binary_env = "VITALSTREAM_REDIS_SERVER_BIN"
    binary_path = "/usr/bin/redis-server"
    scheme = "redis"

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def _command(self) -> list[str]:
        return [self.binary, "--port", str(self.port), "--bind", self.host, "--save", "",
                "--appendonly", "no", "--dir", str(self.dir), "--daemonize", "no"]

    def _ready(self) -> bool:
        with socket.create_connection((self.host, self.port), timeout=1.0) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
