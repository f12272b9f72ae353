"""The in-kernel WebSocket server that the lessons lean on.

``wslab.serve()`` starts a server built on the ``websockets`` library's asyncio
API. It runs on wslab's background loop (:mod:`wslab.loop`), not on the
kernel's loop, so it keeps answering while a cell blocks, for example in a
synchronous client call to that very server::

    server = wslab.serve("echo", port=0)   # port=0: any free port
    server.url                             # 'ws://127.0.0.1:PORT/chat'
    server.page_url                        # the browser chat page
    server.stop()

Re-running a cell is safe: a new server on a port replaces the earlier one on
that port (no "address already in use"), and every server stops when the
kernel shuts down or restarts. A port taken by another program raises
:class:`~wslab.errors.ServerStartError` with the fix.

Safe defaults, all visible in the repr:

* it binds 127.0.0.1; another interface needs ``allow_remote=True``;
* the Origin rule (RFC 6455 sections 4.2.2 and 10.2): a request without an
  ``Origin`` header (a script, not a browser) is accepted; a browser request
  is accepted when its Origin's host and port equal the request's ``Host``
  header, that is when the page came from the same place the WebSocket goes
  to (this server's own page at ``page_url``, or the same page through
  jupyter-server-proxy, which forwards the browser's ``Host`` and ``Origin``
  headers unchanged, and checks the Origin against the Jupyter server itself
  before proxying); any other Origin gets HTTP 403, which is the defence
  against cross-site WebSocket hijacking. ``origins=[...]`` adds more
  accepted origins (the same rule as :class:`wslab.raw.RawServer`). The
  same-host rule does not stop DNS rebinding, where an attacker's name
  resolves to 127.0.0.1; the lessons mention it as a limit;
* messages above ``max_size`` bytes (1 MiB) close the connection with 1009;
* more than ``max_clients`` clients (64) get HTTP 503;
* a ping every ``ping_interval`` seconds (20) closes dead connections;
* compression (permessage-deflate) is off, so that frames on the wire show
  the payload as it was sent (the tap and the hex views rely on it).

The browser page. ``GET /`` on the server's port answers with the chat page of
:func:`wslab.page.chat_page`, which opens its WebSocket at a URL relative to
the page. When the kernel runs elsewhere (JupyterHub, Binder), open the page
through jupyter-server-proxy at ``<jupyter URL>/proxy/<port>/``: it proxies
the WebSocket too. Binder's default image lacks jupyter-server-proxy, which is
why the environment lists it. On Colab, WebSockets through its port proxy do
not work; use the widget client, which connects from inside the kernel.

Output. Nothing is printed from the background loop for normal traffic: the
server records it in :attr:`Server.recorder` instead. An exception in a
handler is the exception: its traceback is recorded as an ERROR record and
printed to stderr (once per server), and that client is closed with 1011.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import html
import http
import itertools
import logging
import sys
import threading
import time
import traceback
import urllib.parse
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, overload

import websockets.asyncio.server
from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from . import handshake, jupyter, loop
from .errors import HandshakeError, ServerStartError
from .handlers import Handler, close_or_abort, resolve
from .traffic import Direction, Kind, Record, Recorder
from .uri import is_loopback

if TYPE_CHECKING:
    from .tap import Tap

__all__ = ["ClientInfo", "Server", "run", "serve", "servers"]

#: Seconds to wait for the peer's Close frame before dropping TCP (7.1.1).
CLOSE_TIMEOUT = 3.0
#: Seconds a start or stop may take before we give up with a clear error.
START_TIMEOUT = 10.0
#: The most payload bytes a MESSAGE record keeps (previews stay small).
RECORD_BYTES = 64 * 1024

_LOGGER = logging.getLogger("wslab.server")


def _not_the_send_eof_bug(record: logging.LogRecord) -> bool:
    """Drop websockets 17's "unexpected internal error" from a refused handshake.

    When bytes that fail as a frame follow a request that the server refuses,
    websockets sends EOF twice and trips its own assertion. The connection
    closes as the refusal wants; without this filter, a misbehaving client
    would print websockets' traceback into the student's notebook.
    """
    if record.exc_info is None or not isinstance(record.exc_info[1], AssertionError):
        return True
    tb = record.exc_info[2]
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is None or tb.tb_frame.f_code.co_name != "send_eof"


_LOGGER.addFilter(_not_the_send_eof_bug)

# Running servers, keyed by port: serving on a port again replaces the server.
_registry: dict[int, Server] = {}
# The servers each notebook cell started, with the run that started them:
# running the cell again replaces them, even on port=0 (see wslab.jupyter).
_by_cell: dict[object, tuple[int, list[Server]]] = {}
_registry_lock = threading.Lock()


@dataclass
class ClientInfo:
    """One connected client, as listed by :attr:`Server.clients`.

    Attributes:
        id: The connection number, the same as in the server's records.
        address: The client's ``host:port``.
        path: The request path, with its query string.
        origin: The ``Origin`` header (browsers send it, scripts usually not).
        name: The chat name, for the chat handler.
    """

    id: int
    address: str
    path: str
    origin: str | None
    name: str | None = None

    def __str__(self) -> str:
        name = f" {self.name!r}" if self.name else ""
        return f"#{self.id}{name} from {self.address}"


def _preview(message: str | bytes, limit: int = 80) -> str:
    """A one-line summary of a message for the traffic log."""
    if isinstance(message, str):
        text = message if len(message) <= limit else message[: limit - 1] + "…"
        return f"text {text!r}"
    head = message[:16].hex(" ")
    more = " …" if len(message) > 16 else ""
    return f"binary, {len(message)} bytes: {head}{more}"


class _RecordingConnection(ServerConnection):
    """A ``websockets`` server connection that records whole messages.

    Student handlers receive this object; it behaves exactly like the
    ``ServerConnection`` of the websockets documentation.
    """

    wslab_server: Server | None = None
    wslab_client: ClientInfo | None = None

    @overload
    async def recv(self, decode: Literal[True]) -> str: ...

    @overload
    async def recv(self, decode: Literal[False]) -> bytes: ...

    @overload
    async def recv(self, decode: bool | None = None) -> str | bytes: ...

    async def recv(self, decode: bool | None = None) -> str | bytes:
        message = await super().recv(decode)
        self._record(Direction.TO_SERVER, message)
        return message

    async def send(self, message: Any, *, text: bool | None = None) -> None:
        await super().send(message, text=text)
        if isinstance(message, str | bytes | bytearray | memoryview):
            self._record(Direction.TO_CLIENT, message)

    def _record(self, direction: Direction, message: str | bytes | bytearray | memoryview) -> None:
        if self.wslab_server is None or self.wslab_client is None:
            return
        if not isinstance(message, str):
            message = bytes(message)
        data = message.encode() if isinstance(message, str) else message
        self.wslab_server._record(
            self.wslab_client.id,
            direction,
            Kind.MESSAGE,
            data=data[:RECORD_BYTES],
            text=_preview(message),
        )


class Server:
    """A WebSocket server running in this kernel; create it with :func:`serve`.

    Attributes:
        recorder: Message-level traffic: CONNECT, MESSAGE (both directions,
            with a preview), TCP_CLOSE (with the close code) and ERROR records.
    """

    def __init__(
        self,
        handler: str | Handler = "echo",
        host: str = "127.0.0.1",
        port: int = 8080,
        path: str = "/chat",
        *,
        origins: Iterable[str] | None = None,
        max_size: int = 2**20,
        max_clients: int = 64,
        ping_interval: float | None = 20.0,
        allow_remote: bool = False,
        handshake_timeout: float = 10.0,
    ) -> None:
        self._handler = resolve(handler)
        if isinstance(handler, str):
            self.handler_name = handler
        else:
            self.handler_name = getattr(handler, "__name__", type(handler).__name__)
        self.host = _check_host(host, allow_remote)
        self._requested_port = _check_port(port)
        self.port = self._requested_port
        self.path = path if path.startswith("/") else "/" + path
        self.origins = list(origins or ())
        self.max_size = _check_positive("max_size", max_size, "2**20 (1 MiB)")
        self.max_clients = _check_positive("max_clients", max_clients, "64")
        if ping_interval is not None:
            _check_positive("ping_interval", ping_interval, "20.0 or None (no pings)")
        self.ping_interval = ping_interval
        self.allow_remote = allow_remote
        _check_positive("handshake_timeout", handshake_timeout, "10.0")
        # A peer that connects and never finishes its handshake (slowloris) is
        # dropped after this many seconds, which frees its slot.
        self.handshake_timeout = handshake_timeout
        self.recorder = Recorder()
        self._t0 = time.monotonic()
        self._ids = itertools.count(1)
        self._clients: dict[int, ClientInfo] = {}
        self._taps: list[Tap] = []
        self._ws_server: websockets.asyncio.server.Server | None = None
        self._state = "new"
        self._error_printed = False
        self._cell: object = None  # the notebook cell that started it, if any

    # -- addresses ---------------------------------------------------------

    @property
    def _url_host(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        host = "::1" if host == "::" else host
        return f"[{host}]" if ":" in host else host

    @property
    def url(self) -> str:
        """The WebSocket URL, for example ``ws://127.0.0.1:8080/chat``."""
        return f"ws://{self._url_host}:{self.port}{self.path}"

    @property
    def page_url(self) -> str:
        """The URL of the browser chat page served on ``GET /``."""
        return f"http://{self._url_host}:{self.port}/"

    @property
    def clients(self) -> list[ClientInfo]:
        """The clients connected right now."""
        return list(self._clients.values())

    @property
    def running(self) -> bool:
        return self._state == "running"

    @property
    def state(self) -> str:
        """``"running"`` or ``"stopped"``."""
        return "running" if self._state == "running" else "stopped"

    # -- starting and stopping ---------------------------------------------

    def start(self) -> Server:
        """Bind the port and start serving on the background loop.

        Raises:
            ServerStartError: When the port is in use or cannot be bound.
        """
        if self._state == "running":
            return self
        # Re-running a cell replaces what its earlier run started...
        cell = jupyter.current_cell()
        with _registry_lock:
            earlier = _by_cell.get(cell[0]) if cell is not None else None
        if cell is not None and earlier is not None and earlier[0] != cell[1]:
            for replaced in list(earlier[1]):
                replaced.stop()
        # ...and any server of this kernel on the same port goes first.
        if self._requested_port != 0:
            with _registry_lock:
                old = _registry.get(self._requested_port)
            if old is not None and old is not self:
                old.stop()
        try:
            loop.run_sync(self._start(), timeout=START_TIMEOUT)
        except OSError as exc:
            raise ServerStartError(_bind_message(self.host, self._requested_port, exc)) from None
        except TimeoutError:
            raise ServerStartError(
                f"the server on port {self._requested_port} did not start within "
                f"{START_TIMEOUT:g} s: a handler may be blocking the wslab loop (time.sleep, "
                "or a loop without await); fix it, then restart the kernel"
            ) from None
        self._state = "running"
        with _registry_lock:
            _registry[self.port] = self
            if cell is not None:
                run, started = _by_cell.get(cell[0], (cell[1], []))
                if run != cell[1]:
                    started = []
                _by_cell[cell[0]] = (cell[1], [*started, self])
                self._cell = cell[0]
        return self

    async def _start(self) -> None:
        self._ws_server = await websockets.asyncio.server.serve(
            self._handle,
            self.host,
            self._requested_port,
            process_request=self._process_request,
            create_connection=_RecordingConnection,
            compression=None,
            max_size=self.max_size,
            ping_interval=self.ping_interval,
            ping_timeout=self.ping_interval,
            close_timeout=CLOSE_TIMEOUT,
            open_timeout=self.handshake_timeout,
            server_header="wslab (websockets)",
            logger=_LOGGER,
        )
        self.port = self._ws_server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        """Close every connection (code 1001, going away), free the port, stop taps.

        Safe to call twice, and from a handler running on the server itself.
        """
        for tap in self._taps:
            with contextlib.suppress(Exception):
                tap.stop()
        self._taps.clear()
        with _registry_lock:
            if _registry.get(self.port) is self:
                del _registry[self.port]
            _, started = _by_cell.get(self._cell, (0, []))
            if self in started:
                started.remove(self)
                if not started:
                    del _by_cell[self._cell]
        ws_server, self._ws_server = self._ws_server, None
        self._state = "stopped" if self._state != "new" else "new"
        if ws_server is None:
            return
        if loop.in_loop_thread():
            # Called from a handler: closing waits for handlers, this one included.
            ws_server.close()
            return
        with contextlib.suppress(Exception):
            loop.run_sync(_close(ws_server), timeout=START_TIMEOUT)

    def tap(self) -> Tap:
        """Return a recording proxy in front of this server (see :mod:`wslab.tap`).

        The tap stops when this server stops.
        """
        from .tap import Tap  # the tap layer is optional: import on use

        tap = Tap(self)
        self._taps.append(tap)
        return tap

    def __enter__(self) -> Server:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- the connection lifecycle ------------------------------------------

    def _record(
        self,
        connection: int,
        direction: Direction,
        kind: Kind,
        *,
        data: bytes = b"",
        text: str = "",
    ) -> None:
        record = Record(
            time.monotonic() - self._t0, connection, direction, kind, data=data, text=text
        )
        self.recorder.add(record)

    def _process_request(self, ws: ServerConnection, request: Request) -> Response | None:
        """Answer plain HTTP, and check path, Origin and client count (4.2.1, 4.2.2)."""
        target = urllib.parse.urlsplit(request.path).path
        upgrade = request.headers.get("Upgrade", "").lower() == "websocket"
        if not upgrade:
            if target in ("/", "/index.html"):
                return _html_response(ws, _page(self.path))
            if target == self.path:
                # The resource exists, but only as a WebSocket: 426 says so (RFC 9110 15.5.22).
                response = ws.respond(
                    http.HTTPStatus.UPGRADE_REQUIRED,
                    f"{self.path} is a WebSocket endpoint: connect a WebSocket client to "
                    f"{self.url}, or open the chat page at {self.page_url}.\n",
                )
                response.headers["Upgrade"] = "websocket"
                return response
            return ws.respond(
                http.HTTPStatus.NOT_FOUND,
                f"Nothing at {target}. The chat page is at / and the WebSocket at {self.path}.\n",
            )
        if target != self.path:
            return ws.respond(
                http.HTTPStatus.NOT_FOUND,
                f"No WebSocket at {target}; this server's WebSocket path is {self.path}.\n",
            )
        try:
            # The core checks the handshake (RFC 6455 4.2.1) as the lessons teach it,
            # and says what is wrong in one line with the right status: websockets'
            # own answers take two lines, and a bad version gets a bare 400 (4.4).
            headers = handshake.Headers(request.headers.raw_items())
            handshake.check_request(handshake.Request(request.path, headers))
        except (HandshakeError, ValueError) as error:
            status = error.status if isinstance(error, HandshakeError) else 400
            response = ws.respond(http.HTTPStatus(status), f"{error}\n")
            for name, value in getattr(error, "headers", []):
                response.headers[name] = value
            return response
        origin = request.headers.get("Origin")
        if not handshake.origin_allowed(origin, request.headers.get("Host"), self.origins):
            self._record(
                0,
                Direction.NONE,
                Kind.ERROR,
                text=f"403 Forbidden: origin {origin} is not allowed (cross-site request)",
            )
            return ws.respond(
                http.HTTPStatus.FORBIDDEN,
                f"Origin {origin} is not allowed to connect. Open the page at "
                f"{self.page_url} or pass origins=[...] to wslab.serve().\n",
            )
        if len(self._clients) >= self.max_clients:
            self._record(
                0, Direction.NONE, Kind.ERROR, text=f"503: {self.max_clients} clients already"
            )
            return ws.respond(
                http.HTTPStatus.SERVICE_UNAVAILABLE,
                f"This server accepts at most {self.max_clients} clients; close one, or "
                "pass a larger max_clients to wslab.serve().\n",
            )
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        """Run the handler for one connection, recording what happens."""
        request = ws.request
        address = ws.remote_address
        info = ClientInfo(
            id=next(self._ids),
            address=f"{address[0]}:{address[1]}" if address else "?",
            path=request.path if request is not None else "",
            origin=request.headers.get("Origin") if request is not None else None,
        )
        if isinstance(ws, _RecordingConnection):
            ws.wslab_server, ws.wslab_client = self, info
        self._clients[info.id] = info
        self._record(
            info.id, Direction.TO_SERVER, Kind.CONNECT, text=f"connect from {info.address}"
        )
        try:
            await self._handler(ws)
        except ConnectionClosed:
            pass  # the client left while the handler waited: that is normal
        except Exception as exc:
            self._handler_failed(info, exc)
            # 1011: the server met an unexpected condition (RFC 6455 7.4.1).
            await close_or_abort(ws, 1011, f"handler error: {type(exc).__name__}"[:120])
        finally:
            self._clients.pop(info.id, None)
        await close_or_abort(ws)
        self._record(info.id, Direction.NONE, Kind.TCP_CLOSE, text=_close_text(ws))

    def _handler_failed(self, info: ClientInfo, exc: Exception) -> None:
        text = "".join(traceback.format_exception(exc))
        self._record(info.id, Direction.NONE, Kind.ERROR, text=text)
        if not self._error_printed:
            self._error_printed = True
            print(
                f"wslab: the handler {self.handler_name} raised an exception for client "
                f"{info}; that client was closed with 1011, the server keeps running.\n"
                f"{text}(Later errors of this server are only in server.recorder.)",
                file=sys.stderr,
            )

    # -- display -----------------------------------------------------------

    def __repr__(self) -> str:
        return (
            f"<wslab.Server {self.url} handler={self.handler_name} "
            f"clients={len(self._clients)} {self.state}>"
        )

    def _repr_html_(self) -> str:
        e = html.escape
        origins = "the server's own page (same host), clients without an Origin"
        origins += "".join(f", {origin}" for origin in self.origins)
        rows = [
            ("WebSocket URL", f"<code>{e(self.url)}</code>"),
            ("Chat page", f'<a href="{e(self.page_url)}" target="_blank">{e(self.page_url)}</a>'),
            ("Handler", e(self.handler_name)),
            ("State", e(self.state)),
            ("Clients", f"{len(self._clients)} of at most {self.max_clients}"),
            ("Binds", e(self.host) + ("" if is_loopback(self.host) else " (remote allowed)")),
            ("Origins allowed", e(origins) + "; others get 403"),
            ("Max message size", f"{self.max_size:,} bytes (then close 1009)"),
            (
                "Keepalive ping",
                "off" if self.ping_interval is None else f"every {self.ping_interval:g} s",
            ),
        ]
        body = "".join(
            f"<tr><th style='text-align:left'>{k}</th><td style='text-align:left'>{v}</td></tr>"
            for k, v in rows
        )
        return (
            f"<table><caption style='text-align:left'><b>wslab server</b></caption>{body}</table>"
        )


async def _close(ws_server: websockets.asyncio.server.Server) -> None:
    """Stop listening, close connections with 1001, and drop any that hang.

    A client that never reads can leave a Close frame stuck behind its unread
    data; after ``CLOSE_TIMEOUT`` its TCP connection is aborted (7.1.1), so a
    cell that stops a server never hangs.
    """
    ws_server.close()
    try:
        async with asyncio.timeout(CLOSE_TIMEOUT + 0.5):
            await ws_server.wait_closed()
    except TimeoutError:
        for connection in list(ws_server.all_connections):
            connection.transport.abort()
        async with asyncio.timeout(CLOSE_TIMEOUT):
            await ws_server.wait_closed()


def _close_text(ws: ServerConnection) -> str:
    """Describe how a connection closed: who sent which code (7.1.5, 7.4)."""
    protocol = ws.protocol
    sent, rcvd = protocol.close_sent, protocol.close_rcvd
    if rcvd is not None and (sent is None or protocol.close_rcvd_then_sent):
        return f"closed by the client: code {rcvd.code}" + (
            f" {rcvd.reason!r}" if rcvd.reason else ""
        )
    if sent is not None:
        return f"closed by the server: code {sent.code}" + (
            f" {sent.reason!r}" if sent.reason else ""
        )
    return "connection lost without a closing handshake: code 1006"


def _page(ws_path: str) -> bytes:
    """The browser chat page; a placeholder until :mod:`wslab.page` exists."""
    try:
        from .page import chat_page
    except ImportError:
        return (
            b"<!doctype html><title>wslab</title><p>The wslab chat page is not available yet.</p>"
        )
    return chat_page(ws_path.lstrip("/"))


def _html_response(ws: ServerConnection, body: bytes) -> Response:
    response = ws.respond(http.HTTPStatus.OK, "")
    headers = Headers(
        (k, v)
        for k, v in response.headers.raw_items()
        if k.lower() not in ("content-type", "content-length")
    )
    headers["Content-Type"] = "text/html; charset=utf-8"
    headers["Content-Length"] = str(len(body))
    headers["Cache-Control"] = "no-store"
    return Response(response.status_code, response.reason_phrase, headers, body)


def _check_port(port: Any) -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ServerStartError(
            f"port must be a whole number from 1 to 65535 (or 0 for any free port), got {port!r}"
        )
    return port


def _check_positive(name: str, value: Any, example: str) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ServerStartError(
            f"{name} must be a positive number such as {example}, got {value!r}"
        )
    return value


def _check_host(host: Any, allow_remote: bool) -> str:
    if not isinstance(host, str):
        raise ServerStartError(f"host must be a str such as '127.0.0.1', got {host!r}")
    if host == "localhost":
        # One address, so that port=0 gives one port (localhost is also ::1).
        return "127.0.0.1"
    if not is_loopback(host):
        if not allow_remote:
            raise ServerStartError(
                f"host {host!r} would let other machines connect; keep the default "
                "'127.0.0.1', or pass allow_remote=True if you mean it"
            )
        warnings.warn(
            f"wslab server on {host!r} accepts connections from other machines",
            stacklevel=3,
        )
    return host


def _bind_message(host: str, port: int, exc: OSError) -> str:
    import errno

    if exc.errno == errno.EADDRINUSE:
        return (
            f"port {port} is already in use by another program; "
            "pass port=0 (any free port) or another port"
        )
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"no permission to use port {port}; ports below 1024 need root: use port=0 or 8080"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"cannot listen on {host!r}: it is not an address of this machine; use '127.0.0.1'"
    return f"cannot listen on {host}:{port} ({exc.strerror or exc}); try port=0"


def serve(
    handler: str | Handler = "echo",
    host: str = "127.0.0.1",
    port: int = 8080,
    path: str = "/chat",
    *,
    origins: Iterable[str] | None = None,
    max_size: int = 2**20,
    max_clients: int = 64,
    ping_interval: float | None = 20.0,
    allow_remote: bool = False,
    handshake_timeout: float = 10.0,
) -> Server:
    """Start a WebSocket server in this kernel and return it.

    Args:
        handler: ``"echo"``, ``"chat"`` (see :mod:`wslab.handlers`) or your
            own ``async def handler(ws)``.
        host: The interface to bind; 127.0.0.1 keeps it on this machine.
        port: The TCP port; ``0`` picks a free one. A server already running
            in this kernel on that port is stopped first.
        path: The WebSocket endpoint's path (``GET /`` serves the chat page).
        origins: More ``Origin`` values to accept, besides the server's own
            page and clients without an Origin (see the module docstring).
        max_size: Largest incoming message in bytes; bigger closes with 1009.
        max_clients: More clients at once get HTTP 503.
        ping_interval: Seconds between keepalive pings (``None``: off).
        allow_remote: Required to bind anything but a loopback address.
        handshake_timeout: Seconds a client may take to finish its opening
            handshake before it is dropped (a defence against slowloris).

    Raises:
        ServerStartError: For a bad or busy port, or a remote host without
            ``allow_remote=True``.
    """
    server = Server(
        handler,
        host,
        port,
        path,
        origins=origins,
        max_size=max_size,
        max_clients=max_clients,
        ping_interval=ping_interval,
        allow_remote=allow_remote,
        handshake_timeout=handshake_timeout,
    )
    return server.start()


def servers() -> list[Server]:
    """The servers running in this kernel."""
    with _registry_lock:
        return list(_registry.values())


def stop_all() -> None:
    """Stop every server of this kernel (runs at exit, too)."""
    for server in servers():
        server.stop()


def run(
    handler: str | Handler = "echo",
    host: str = "127.0.0.1",
    port: int = 8080,
    path: str = "/chat",
    **options: Any,
) -> None:
    """Serve in the foreground until Ctrl-C (``wslab serve --impl websockets``).

    Raises:
        ServerStartError: For a bad port or a port in use.
    """
    server = serve(handler, host, port, path, **options)
    print(f"Serving {server.url} (chat page: {server.page_url}); press Ctrl-C to stop.")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


# Registered after wslab.loop's own atexit hook, so it runs first (LIFO order):
# servers close their connections while the loop still runs.
atexit.register(stop_all)
