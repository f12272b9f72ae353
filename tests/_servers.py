"""Every wslab server behind one test interface, started and always stopped.

Import from here instead of writing another way to start a server::

    from _servers import cli_server, kernel_server, local_server  # tests/ is on sys.path

    with cli_server("websockets", "--handler", "chat") as server:   # `wslab serve`
        server.answers()                     # a fresh client, answered within 1 s
        server.rss()                         # the serving process's memory
        assert server.interrupt() == 0       # Ctrl-C stops it

Three kinds, one :class:`Target` each:

* :func:`cli_server`: ``wslab serve --impl raw|websockets`` as a child process,
  started the way a background job is (SIGINT ignored by the parent shell), so
  that Ctrl-C must be reset by the command itself (issue #9 2.11);
* :func:`kernel_server`: ``wslab.serve`` in a real Jupyter kernel
  (``tests/_kernel.py``);
* :func:`local_server`: ``RawServer`` or ``wslab.serve`` in this process, for
  quick checks that need the server object.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect
from websockets.sync.server import Server as WebsocketsServer
from websockets.sync.server import ServerConnection, serve

__all__ = [
    "RFC_ACCEPT",
    "RFC_KEY",
    "CliTarget",
    "KernelTarget",
    "Target",
    "cli_server",
    "kernel_server",
    "local_server",
    "port_is_free",
    "request_bytes",
    "websockets_sync_server",
]

#: How long a fresh client may wait for the handshake, and then for its answer.
ANSWER_WITHIN = 1.0

#: The sample key of RFC 6455 section 1.3 and the answer it must get.
RFC_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
RFC_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def request_bytes(
    port: int,
    path: str = "/chat",
    *,
    extra: str = "",
    drop: str = "",
    replace: Mapping[str, str | None] | None = None,
) -> bytes:
    """The client handshake of RFC 6455 section 1.3, by hand (independent of wslab's core).

    Args:
        port: The server's port, for ``Host``.
        path: The request target, with the token of a private server.
        extra: More header lines, each ending with CRLF.
        drop: A header to leave out, e.g. ``"Sec-WebSocket-Key"``.
        replace: Headers to set (or, with None, to leave out), e.g.
            ``{"Sec-WebSocket-Version": "8"}``.
    """
    headers: dict[str, str | None] = {
        "Host": f"127.0.0.1:{port}",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": RFC_KEY,
        "Sec-WebSocket-Version": "13",
    }
    headers.update(replace or {})
    lines = [f"GET {path} HTTP/1.1"] + [
        f"{k}: {v}" for k, v in headers.items() if k != drop and v is not None
    ]
    return ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode()


@contextlib.contextmanager
def websockets_sync_server(
    handler: Callable[[ServerConnection], None], **options: Any
) -> Iterator[WebsocketsServer]:
    """The websockets library's sync server (an independent implementation) on a
    free port of 127.0.0.1, served by a thread; ``options`` go to its ``serve()``."""
    with serve(handler, "127.0.0.1", 0, **options) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield server
        finally:
            server.shutdown()
            thread.join(10)


def port_is_free(port: int) -> bool:
    """Whether a server could bind ``port`` now (with SO_REUSEADDR, as servers do).

    Without SO_REUSEADDR, connections in TIME_WAIT would keep it busy for a minute.
    """
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@dataclass
class Target:
    """A running server, seen from outside.

    Attributes:
        kind: ``"raw"`` or ``"websockets"`` (the implementation), with
            ``"kernel"`` for ``wslab.serve`` in a Jupyter kernel.
        url: Its WebSocket URL, with its token if it has one.
        pid: The process that serves (this one for a local server).
        handler: ``"echo"`` or ``"chat"``, for :meth:`answers`.
        server: The server object, for a local server.
    """

    kind: str
    url: str
    pid: int
    handler: str = "chat"
    server: Any = field(default=None, repr=False)

    @property
    def port(self) -> int:
        return int(re.search(r":(\d+)/", self.url).group(1))  # type: ignore[union-attr]

    @property
    def target(self) -> str:
        """The request target of the WebSocket URL: path and query (the token)."""
        return self.url.split(str(self.port), 1)[1]

    def with_name(self, name: str) -> str:
        """The URL with a chat name."""
        return f"{self.url}{'&' if '?' in self.url else '?'}name={name}"

    def rss(self) -> int:
        """The serving process's resident memory, in bytes (Linux)."""
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise RuntimeError(f"no VmRSS for process {self.pid}")

    def cpu(self) -> float:
        """CPU seconds the serving process has used (user + system)."""
        with open(f"/proc/{self.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def answers(self, within: float = ANSWER_WITHIN) -> None:
        """A fresh client connects and gets its answer, each within ``within`` s.

        Raises:
            AssertionError: Naming what did not come in time.
        """
        name = f"probe{time.monotonic_ns() % 10**6}"
        try:
            with connect(self.with_name(name), open_timeout=within, compression=None) as ws:
                ws.send("are you there?")
                expected = (
                    "You sent: are you there?"
                    if self.handler == "echo"
                    else f"{name}: are you there?"
                )
                deadline = time.monotonic() + within
                while (left := deadline - time.monotonic()) > 0:
                    if ws.recv(timeout=left) == expected:
                        return
        except (TimeoutError, OSError, ConnectionClosed) as error:
            raise AssertionError(
                f"the {self.kind} server did not answer within {within} s: {error!r}"
            ) from None
        raise AssertionError(f"the {self.kind} server did not answer within {within} s")


@dataclass
class CliTarget(Target):
    """``wslab serve`` in a child process."""

    process: subprocess.Popen[str] | None = field(default=None, repr=False)
    stderr: IO[str] | None = field(default=None, repr=False)
    #: The chat page's URL, as the command printed it.
    page: str = ""

    def errors(self) -> str:
        """What the command wrote to stderr so far."""
        if self.stderr is None:
            return ""
        self.stderr.seek(0)
        return self.stderr.read()

    def interrupt(self, timeout: float = 10.0) -> int:
        """Press Ctrl-C (SIGINT); return the exit code.

        Raises:
            subprocess.TimeoutExpired: It did not stop within ``timeout`` s.
        """
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=timeout)


@dataclass
class KernelTarget(Target):
    """``wslab.serve`` in a real Jupyter kernel; ``kernel`` runs more cells."""

    kernel: Any = field(default=None, repr=False)


@contextlib.contextmanager
def cli_server(
    impl: str, *args: str, ignore_sigint: bool = True, max_files: int | None = None
) -> Iterator[CliTarget]:
    """Run ``wslab serve --impl IMPL --port 0 ARGS``; stop it whatever happens.

    Args:
        impl: ``"raw"`` or ``"websockets"``.
        args: More arguments, e.g. ``"--handler", "chat"``.
        ignore_sigint: Start it with SIGINT ignored, as a shell starts a
            background job (``make test &``); the command must reset it.
        max_files: The child's limit on open files (``ulimit -n``).
    """
    command = [sys.executable, "-m", "wslab", "serve", "--impl", impl, "--port", "0", *args]
    setup = ['trap "" INT'] if ignore_sigint else []
    setup += [f"ulimit -n {max_files}"] if max_files is not None else []
    if setup:
        command = ["sh", "-c", "; ".join([*setup, 'exec "$@"']), "sh", *command]
    # stderr to a file, not a pipe: a server that logs a lot (asyncio on EMFILE)
    # would block on a full pipe that nobody reads, and look wedged.
    errors = tempfile.TemporaryFile("w+")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True)
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 30)
        assert ready, "wslab serve printed nothing within 30 s"
        line = process.stdout.readline()
        match = re.search(r"(ws://\S+) \(chat page: (http://\S+)\)", line)
        assert match, f"unexpected first line from wslab serve: {line!r}"
        handler = "chat" if "chat" in args else "echo"
        yield CliTarget(
            impl,
            match.group(1),
            process.pid,
            handler,
            process=process,
            stderr=errors,
            page=match.group(2),
        )
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
        errors.close()


@contextlib.contextmanager
def kernel_server(handler: str = "chat", options: str = "") -> Iterator[KernelTarget]:
    """``server = wslab.serve(handler, <options>)`` in a fresh Jupyter kernel.

    Args:
        handler: ``"echo"`` or ``"chat"``.
        options: More keyword arguments, as source, e.g. ``"token=None"``.
    """
    from _kernel import Kernel

    kernel = Kernel()
    try:
        kernel.run(f"import wslab\nserver = wslab.serve({handler!r}, {options})").raise_for_error()
        url = kernel.eval("server.url").strip("'")
        pid = kernel.pid
        assert pid is not None
        yield KernelTarget("kernel", url, pid, handler, kernel=kernel)
    finally:
        kernel.shutdown()


@contextlib.contextmanager
def local_server(kind: str, handler: str = "echo", **options: Any) -> Iterator[Target]:
    """``RawServer`` (kind ``"raw"``) or ``wslab.serve`` (``"websockets"``) in this process."""
    if kind == "raw":
        from wslab.raw import RawServer

        server: Any = RawServer(handler, port=0, **options).start()
    else:
        import wslab

        server = wslab.serve(handler, port=0, **options)
    try:
        yield Target(kind, server.url, os.getpid(), handler, server=server)
    finally:
        server.stop()
