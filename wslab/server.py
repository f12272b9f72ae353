"""The in-kernel WebSocket server that the lessons lean on.

``wslab.serve()`` starts a server built on the ``websockets`` library's asyncio
API. It runs on wslab's background loop (:mod:`wslab.loop`), not on the
kernel's loop, so it keeps answering while a cell blocks, for example in a
synchronous client call to that very server::

    server = wslab.serve("echo")   # any free port
    server.url                     # 'ws://127.0.0.1:PORT/chat?wslab_token=...'
    server.page_url                # the browser chat page
    server.stop()

Re-running a cell is safe: the servers its earlier run started stop first, a
new server on a port replaces the earlier one on that port (no "address
already in use"), and every server stops when the kernel shuts down or
restarts. A port taken by another program raises
:class:`~wslab.errors.ServerStartError` with the fix.

Every request goes through the rules all wslab servers share
(:func:`wslab.rules.route`): the page on ``/``, the WebSocket at ``path``, one
status and one-line reason for everything else. Safe defaults, all in the repr:

* private: a random token, carried in ``server.url`` and ``server.page_url``
  (``?wslab_token=...``) and passed on by wslab's clients, the tap and the page, is
  required before anything reaches the handler; ``token=None`` makes the
  server public (for a class chat, or a lesson that needs a bare URL);
* it binds 127.0.0.1; another interface needs ``allow_remote=True``;
* the Host rule (DNS rebinding) and the Origin rule (RFC 6455 section 10.2):
  a browser must come from the server's own page, or through a proxy such
  as jupyter-server-proxy (see :func:`wslab.rules.host_allowed`); ``origins``
  adds accepted origins;
* the limits of :class:`wslab.rules.Limits`: 1 MiB messages (then 1009), 64
  clients (then 503), a keepalive ping every 20 s, a 10 s handshake
  deadline, and 4 MiB waiting for one client (then 1008, so that a client
  that sends pings and never reads its pongs cannot grow memory);
* compression (permessage-deflate) is off, so that frames on the wire show
  the payload as it was sent (the tap and the hex views rely on it).

Handlers run on one loop, so a handler that blocks (``time.sleep``) freezes
every server of the kernel: wslab's watchdog notices, and the next call that
needs the loop raises :class:`~wslab.errors.LoopBlockedError` naming the
handler. A handler that does not return after its client left (an ``await``
that never ends) no longer holds the client's slot: the client leaves
``server.clients`` when its connection closes, and the handler is cancelled
``close_timeout`` seconds later.

The browser page. ``GET /`` answers with the chat page of
:func:`wslab.page.chat_page` (or ``page=...``), which opens its WebSocket at a
URL relative to the page. Under JupyterHub or Binder, ``page_url`` is the
jupyter-server-proxy route (``/user/<name>/proxy/<port>/?wslab_token=...``), which
proxies the WebSocket too. On Colab, WebSockets through its port proxy do
not work; use the widget client, which connects from inside the kernel.

Output. Nothing is printed from the background loop for normal traffic: the
server records it in :attr:`Server.recorder` instead. An exception in a
handler is the exception: its traceback is recorded as an ERROR record and
printed to stderr (once per server), and that client is closed with 1011.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import html
import itertools
import logging
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, overload

import websockets.asyncio.server
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed as WebSocketsClosed
from websockets.protocol import State

from . import handshake, jupyter, loop, peercred, rules
from .closing import CloseCode
from .errors import LoopBlockedError, ServerStartError
from .handlers import AsyncHandler, Chat, close_or_abort, resolve
from .page import chat_page
from .traffic import Direction, Kind, Record, Recorder
from .uri import is_loopback

if TYPE_CHECKING:
    from .tap import Tap

__all__ = ["ClientInfo", "Server", "run", "serve", "servers", "stop_all"]

#: Seconds a start or stop may take before we give up with a clear error.
START_TIMEOUT = 10.0
#: The most payload bytes a MESSAGE record keeps (previews stay small).
RECORD_BYTES = 64 * 1024
#: Bytes read from one client at once, at the least and at the most. All
#: connections share one loop, and websockets handles every frame of a read in
#: one go: 256 KiB (asyncio's default) of empty pings is 43,000 frames, 0.2 s
#: during which no other client is served, while 256 KiB of big frames takes
#: microseconds. So the size follows what a read costs (:data:`READ_BUDGET`):
#: a flood of tiny frames gets 16 KiB reads (3,000 frames at most), a client
#: of big messages the full 256 KiB (a fixed 16 KiB made a 64 KiB echo 15-30%
#: slower; benchmarks/run.py --only echo).
MIN_READ, MAX_READ = 16 * 1024, 256 * 1024
#: CPU seconds one client's read may take before its next read is halved.
READ_BUDGET = 0.002

_LOGGER = logging.getLogger("wslab.server")


# Running servers, keyed by port: serving on a port again replaces the server.
_registry: dict[int, Server] = {}
_registry_lock = threading.Lock()


@dataclass
class ClientInfo:
    """One connected client, as listed by :attr:`Server.clients`.

    Attributes:
        id: The connection number, the same as in the server's records.
        address: The client's ``host:port``.
        path: The request path, with its query string (the token hidden).
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


class _Connection(ServerConnection):
    """A ``websockets`` server connection that applies wslab's rules.

    Student handlers receive it; it behaves exactly like the
    ``ServerConnection`` of the websockets documentation. What it adds, each
    hooked where websockets' asyncio connection does the work:

    * the request head is parsed with wslab's own parser and routed with the
      shared rules (:func:`wslab.rules.read_request`, :func:`wslab.rules.route`)
      before websockets sees it: anything but an accepted handshake gets the
      same answer as from the raw server (websockets would close without a
      word on a malformed request, and answer 500 on a duplicate header);
    * after each chunk of received bytes (which is when websockets writes the
      pongs it owes), the bytes waiting to be sent are checked against
      ``max_write_buffer``: past it, close with 1008;
    * when TCP closes, the client leaves :attr:`Server.clients` at once,
      whatever its handler is doing;
    * whole messages are recorded in the server's recorder.

    A subclass per server sets ``wslab_server``.
    """

    wslab_server: Server
    wslab_client: ClientInfo | None = None
    # The task running the handler, and whether the server cancelled it.
    wslab_task: asyncio.Task[Any] | None = None
    wslab_cancelled = False
    _head: bytearray | None
    _refused = False
    _dropping = False
    _close_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if hasattr(transport, "max_size"):  # asyncio's socket transport: its recv() size
            transport.max_size = MIN_READ
        self._head = bytearray()
        handshaking = self.wslab_server._handshaking
        if len(handshaking) >= self.wslab_server.limits.max_handshaking:
            # Slowloris: connections that never finish their request must not
            # pile up. Past the limit the oldest makes room, as in RawServer.
            oldest = next(iter(handshaking))
            del handshaking[oldest]
            oldest.transport.abort()
        handshaking[self] = None

    def data_received(self, data: bytes) -> None:
        if self._head is not None:
            if self._refused:
                return  # answered already; the client's rest is not read
            self._head += data
            parsed = rules.read_request(bytes(self._head))
            if parsed is None:
                return
            data, self._head = bytes(self._head), None
            decision = (
                parsed
                if isinstance(parsed, rules.Reply)
                else self.wslab_server._route(parsed[0], self._peer_uid())
            )
            if isinstance(decision, rules.Reply):
                # Still counted against max_handshaking until it closes: a
                # client that never closes after its answer would otherwise
                # hold a file descriptor for close_timeout, thousands at once.
                self._answer(decision)
                return
            self.wslab_server._handshaking.pop(self, None)
        # CPU time of this thread, not wall time: in a kernel, other threads
        # (heartbeat, output) can hold the GIL for 5 ms in the middle of a read.
        started = time.thread_time()
        super().data_received(data)
        self._adapt_read_size(time.thread_time() - started)
        if self.close_deadline is not None and self._close_timer is None:
            # The client's Close frame, or a frame that failed the connection,
            # set websockets' close deadline; but only a send() or close()
            # waits for it, not a handler in recv(), so a client that kept TCP
            # open stayed in server.clients until the next keepalive ping (20 s;
            # forever with ping_interval=None). Drop TCP at the deadline itself.
            self._close_timer = self.loop.call_at(self.close_deadline, self.transport.abort)
        if self.transport.get_write_buffer_size() > self.wslab_server.limits.max_write_buffer:
            self._too_slow()

    def _peer_uid(self) -> int | None:
        """The user account of the other end, if it is on this machine (Linux)."""
        return peercred.peer_uid(
            self.transport.get_extra_info("peername"), self.transport.get_extra_info("sockname")
        )

    def _adapt_read_size(self, spent: float) -> None:
        """Halve the next read if this one held the loop too long, else double it."""
        transport = self.transport
        if not hasattr(transport, "max_size"):
            return
        if spent > READ_BUDGET:
            transport.max_size = max(transport.max_size // 2, MIN_READ)
        else:
            transport.max_size = min(transport.max_size * 2, MAX_READ)

    def _answer(self, reply: rules.Reply) -> None:
        """Answer anything but a handshake we accept (the page, or a refusal), then close."""
        self._refused = True
        self._head = bytearray()  # keep discarding what else arrives
        if reply.status >= 400:
            self.wslab_server._record(0, Direction.NONE, Kind.ERROR, text=reply.text)
        self.transport.write(reply.response.serialize())
        with contextlib.suppress(OSError, RuntimeError):
            self.transport.write_eof()
        # The client should close now; if it does not, drop it (RFC 6455 7.1.1).
        self.loop.call_later(self.wslab_server.limits.close_timeout, self.transport.abort)

    def _too_slow(self) -> None:
        """Close a client that makes us queue more than max_write_buffer bytes (1008).

        Typically a ping flood from a client that never reads its pongs: each
        ping makes websockets write a pong, whatever the buffer holds.
        """
        if self._dropping:
            return
        self._dropping = True
        limit = self.wslab_server.limits.max_write_buffer
        client = self.wslab_client.id if self.wslab_client is not None else 0
        self.wslab_server._record(
            client,
            Direction.NONE,
            Kind.ERROR,
            text=f"more than {limit:,} bytes wait for a client that does not read "
            "(pongs or messages): closed with 1008",
        )
        # fail() sends the Close frame and stops reading (RFC 6455 7.1.7);
        # the frame waits behind the unread bytes, so TCP goes soon after.
        self.protocol.fail(CloseCode.POLICY_VIOLATION, "too slow: not reading")
        self.send_data()
        self.loop.call_later(self.wslab_server.limits.close_timeout, self.transport.abort)

    def eof_received(self) -> None:
        if self._refused:
            self.transport.close()  # the client read our answer and closed
            return
        super().eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._close_timer is not None:
            self._close_timer.cancel()
        self.wslab_server._handshaking.pop(self, None)
        super().connection_lost(exc)
        self.wslab_server._client_left(self)

    @overload
    async def recv(self, decode: Literal[True]) -> str: ...

    @overload
    async def recv(self, decode: Literal[False]) -> bytes: ...

    @overload
    async def recv(self, decode: bool | None = None) -> str | bytes: ...

    async def recv(self, decode: bool | None = None) -> str | bytes:
        # Let every other connection have its turn first. With messages queued,
        # recv() returns without ever giving the loop back, so a client that
        # sends a flood of tiny messages would keep everyone else waiting.
        await asyncio.sleep(0)
        message = await super().recv(decode)
        self._record(Direction.TO_SERVER, message)
        return message

    async def send(self, message: Any, *, text: bool | None = None) -> None:
        await super().send(message, text=text)
        if isinstance(message, str | bytes | bytearray | memoryview):
            self._record(Direction.TO_CLIENT, message)

    def _record(self, direction: Direction, message: str | bytes | bytearray | memoryview) -> None:
        if self.wslab_client is not None:
            message = message if isinstance(message, str) else bytes(message)
            self.wslab_server._record_message([self.wslab_client.id], direction, message)


class Server:
    """A WebSocket server running in this kernel; start one with :func:`serve`.

    Args:
        handler: ``"echo"``, ``"chat"`` (see :mod:`wslab.handlers`) or your
            own ``async def handler(ws)``.
        host: The interface to bind; 127.0.0.1 keeps it on this machine.
        port: The TCP port; ``0`` (the default) picks a free one, so that
            two students on one machine never meet on a port. A server
            already running in this kernel on that port is stopped first.
        path: The WebSocket endpoint's path (``GET /`` serves the page).
        token: ``True`` (the default): a random secret that ``url`` and
            ``page_url`` carry and every request must have; a ``str``: that
            secret; ``None``: no secret, anyone on this machine may connect.
        page: HTML to serve on ``/`` instead of the chat page (a ``str`` or
            ``bytes``), e.g. your own JavaScript client.
        origins: More ``Origin`` values to accept, besides the server's own
            page and clients without an Origin (see :mod:`wslab.rules`).
        allow_remote: Required to bind anything but a loopback address.
        allowed_hosts: More ``Host`` names to accept from browsers that come
            straight to the port (e.g. this machine's name on the network).
        limits: A :class:`wslab.rules.Limits` (the same for every wslab server).
        limit_options: Or any of its fields one by one, e.g. ``max_size``
            (largest message, then 1009), ``max_clients`` (then 503),
            ``ping_interval`` (``None``: no keepalive), ``handshake_timeout``,
            ``close_timeout``, ``max_write_buffer``.

    Raises:
        ServerStartError: For a bad option, a bad or busy port, or a remote
            host without ``allow_remote=True`` (from :meth:`start`).

    Attributes:
        recorder: Message-level traffic: CONNECT, MESSAGE (both directions,
            with a preview), TCP_CLOSE (with the close code) and ERROR records.
            A MESSAGE record appears just after the handler's step that saw it.
        token: The secret, or None for a public server.
    """

    def __init__(
        self,
        handler: str | AsyncHandler = "echo",
        host: str = "127.0.0.1",
        port: int = 0,
        path: str = "/chat",
        *,
        token: str | bool | None = True,
        page: str | bytes | None = None,
        origins: Iterable[str] | None = None,
        allow_remote: bool = False,
        allowed_hosts: Iterable[str] | None = None,
        limits: rules.Limits | None = None,
        **limit_options: Any,
    ) -> None:
        self._handler = resolve(handler)
        if isinstance(handler, str):
            self.handler_name = handler
        else:
            self.handler_name = getattr(handler, "__name__", type(handler).__name__)
        self.host = rules.check_bind(host, allow_remote)
        self._requested_port = rules.check_port(port)
        self.port = self._requested_port
        self.allow_remote = allow_remote
        self.limits = rules.limits_from(limits, limit_options, server=type(self))
        self.token = rules.choose_token(token)
        self._token_chosen = token is not True
        self.origins = list(origins or ())
        self.policy = rules.Policy(
            path=f"/{path}" if isinstance(path, str) and not path.startswith("/") else path,
            origins=tuple(self.origins),
            token=self.token,
            allowed_hosts=tuple(allowed_hosts or ()),
            hub_prefix=rules.hub_prefix(os.environ),
            page=_page(page, path, isinstance(self._handler, Chat)),
            owner_uid=os.getuid(),
            limits=self.limits,
        )
        self.path = self.policy.path
        self.recorder = Recorder()
        # Messages seen but not recorded yet: (time, clients, direction, message).
        self._unrecorded: list[tuple[float, list[int], Direction, str | bytes]] = []
        self._t0 = time.monotonic()
        self._ids = itertools.count(1)
        self._clients: dict[int, ClientInfo] = {}
        # Connections still in their opening handshake, oldest first.
        self._handshaking: dict[_Connection, None] = {}
        self._taps: list[Tap] = []
        self._ws_server: websockets.asyncio.server.Server | None = None
        self._state = "new"
        self._error_printed = False
        # Forgets this server's stop() in its cell's list (see _replace_earlier).
        self._forget_cell: Callable[[], None] = lambda: None

    # -- addresses and state -------------------------------------------------

    @property
    def url(self) -> str:
        """The WebSocket URL, with the token: ``ws://127.0.0.1:PORT/chat?wslab_token=...``."""
        return rules.ws_url(self.host, self.port, self.path, self.token)

    @property
    def page_url(self) -> str:
        """The link for a browser: ``http://127.0.0.1:PORT/?wslab_token=...``, or under
        JupyterHub the proxy route ``/user/<name>/proxy/PORT/?wslab_token=...``."""
        return rules.page_url(self.host, self.port, self.token, self.policy.hub_prefix)

    @property
    def clients(self) -> list[ClientInfo]:
        """The clients connected right now."""
        return list(self._clients.values())

    @property
    def running(self) -> bool:
        return self._state == "running"

    @property
    def state(self) -> str:
        """``"running"``, ``"stopped"``, or ``"blocked"`` while a handler blocks the loop."""
        if self._state != "running":
            return "stopped"
        return "blocked" if loop.blocked() is not None else "running"

    @property
    def max_size(self) -> int:
        return self.limits.max_size

    @property
    def max_clients(self) -> int:
        return self.limits.max_clients

    # -- starting and stopping ---------------------------------------------

    def start(self) -> Server:
        """Bind the port and start serving on the background loop.

        Raises:
            ServerStartError: When the port is in use or cannot be bound.
            LoopBlockedError: When a handler blocks the wslab loop.
        """
        if self._state == "running":
            return self
        self._replace_earlier()
        try:
            loop.run_sync(self._start(), timeout=START_TIMEOUT)
        except LoopBlockedError:
            raise
        except TimeoutError:  # before OSError: TimeoutError is one
            raise LoopBlockedError(
                f"the server on port {self._requested_port} did not start within "
                f"{START_TIMEOUT:g} s: the wslab loop is busy; restart the kernel if it stays so"
            ) from None
        except OSError as exc:
            raise rules.bind_error(self.host, self._requested_port, exc) from None
        self.policy = dataclasses.replace(self.policy, port=self.port)
        self._state = "running"
        self._register()
        return self

    def _replace_earlier(self) -> None:
        """Stop what an earlier run of this cell started, and any server on our port.

        A server that replaces one on the same port keeps its token, so that
        the links already handed out (a browser tab, a client cell) still work.
        """
        with _registry_lock:
            old = _registry.get(self._requested_port) if self._requested_port else None
        self._forget_cell = jupyter.replace_on_rerun(self.stop)
        if old is not None and old is not self:
            old.stop()
            if not self._token_chosen and old.token is not None:
                self.token = old.token
                self.policy = dataclasses.replace(self.policy, token=old.token)

    def _register(self) -> None:
        with _registry_lock:
            _registry[self.port] = self

    async def _start(self) -> None:
        limits = self.limits
        connection = type("_ServerConnection", (_Connection,), {"wslab_server": self})
        self._ws_server = await websockets.asyncio.server.serve(
            self._handle,
            self.host,
            self._requested_port,
            create_connection=connection,
            compression=None,
            max_size=limits.max_size,
            ping_interval=limits.ping_interval,
            ping_timeout=limits.ping_timeout,
            close_timeout=limits.close_timeout,
            open_timeout=limits.handshake_timeout,
            server_header="wslab (websockets)",
            logger=_LOGGER,
        )
        self.port = self._ws_server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        """Close every connection (code 1001, going away), free the port, stop taps.

        Safe to call twice, and from a handler running on the server itself.

        Raises:
            LoopBlockedError: A handler blocks the wslab loop, so the server
                cannot stop: it keeps its port until the handler returns.
        """
        for tap in list(self._taps):
            with contextlib.suppress(Exception):
                tap.stop()
        self._taps.clear()
        ws_server = self._ws_server
        if ws_server is not None:
            if loop.in_loop_thread():
                # Called from a handler: closing waits for handlers, this one included.
                _begin_closing(ws_server, self._handshaking)
            else:
                try:
                    loop.run_sync(self._close(ws_server), START_TIMEOUT)
                except LoopBlockedError as error:
                    raise LoopBlockedError(
                        f"cannot stop the server on port {self.port}, which keeps its port: "
                        f"{error}"
                    ) from None
                except TimeoutError:
                    pass  # Some handler ignores cancellation; the port is closed anyway.
        self._ws_server = None
        self._state = "stopped" if self._state != "new" else "new"
        with _registry_lock:
            if _registry.get(self.port) is self:
                del _registry[self.port]
        self._forget_cell()

    async def _close(self, ws_server: websockets.asyncio.server.Server) -> None:
        """Close every connection, and drop those that cannot close in time.

        A client that never reads can leave our Close frame stuck behind its
        unread data: after ``close_timeout`` its TCP connection is aborted
        (RFC 6455 7.1.1), so a cell that stops a server never hangs.
        """
        _begin_closing(ws_server, self._handshaking)
        try:
            async with asyncio.timeout(self.limits.close_timeout + 0.5):
                await ws_server.wait_closed()
        except TimeoutError:
            for connection in list(ws_server.all_connections):
                connection.transport.abort()
            async with asyncio.timeout(self.limits.close_timeout):
                await ws_server.wait_closed()

    def tap(self, **options: Any) -> Tap:
        """Return a recording proxy in front of this server (see :mod:`wslab.tap`).

        The tap stops when this server stops; ``options`` go to :class:`~wslab.tap.Tap`.
        """
        from .tap import Tap  # the tap layer is optional: import on use

        tap = Tap(self, **options)
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
        self._record_messages()  # the messages seen before come first
        record = Record(
            time.monotonic() - self._t0, connection, direction, kind, data=data, text=text
        )
        self.recorder.add(record)

    def _record_message(
        self, clients: list[int], direction: Direction, message: str | bytes
    ) -> None:
        """Note a message seen on each of ``clients``, to record just after this step.

        Why not at once: this runs between a handler's ``recv()`` and its
        reply. Making the records there cost 5 to 10 % of an echo's round
        trip (measured); right after the handler's step, the reply is already
        on its way.
        """
        if not clients:
            return
        if not self._unrecorded:
            asyncio.get_running_loop().call_soon(self._record_messages)
        self._unrecorded.append((time.monotonic() - self._t0, clients, direction, message))

    def _record_messages(self) -> None:
        """Record the messages :meth:`_record_message` noted, in order (one preview each)."""
        unrecorded, self._unrecorded = self._unrecorded, []
        for now, clients, direction, message in unrecorded:
            data = message.encode() if isinstance(message, str) else message
            record = Record(
                now,
                clients[0],
                direction,
                Kind.MESSAGE,
                data=data[:RECORD_BYTES],
                text=_preview(message),
            )
            self.recorder.add_all([record] if len(clients) == 1 else record.copies(clients))

    def record_sent(
        self, connections: Iterable[ServerConnection], data: bytes, *, text: bool
    ) -> None:
        """Record a message as sent to each of ``connections``.

        What ``ws.send()`` sends is recorded already. A handler that writes
        another way, as websockets' ``broadcast()`` does, calls this (see
        :func:`wslab.handlers.send_now`), so the traffic log shows every delivery.

        Call it from the handler (on the wslab loop).

        Args:
            connections: This server's connections the message went to.
            data: The message's payload.
            text: Whether it went as a text message (UTF-8) or binary.
        """
        clients = [
            ws.wslab_client.id
            for ws in connections
            if isinstance(ws, _Connection) and ws.wslab_client is not None
        ]
        self._record_message(clients, Direction.TO_CLIENT, data.decode() if text else data)

    def _route(
        self, request: handshake.Request, peer_uid: int | None
    ) -> rules.Accept | rules.Reply:
        """What to answer to a request (:func:`wslab.rules.route`), with our client count."""
        return rules.route(request, self.policy, clients=len(self._clients), peer_uid=peer_uid)

    async def _handle(self, ws: ServerConnection) -> None:
        """Run the handler for one connection, recording what happens."""
        assert isinstance(ws, _Connection)
        request = ws.request
        address = ws.remote_address
        info = ClientInfo(
            id=next(self._ids),
            address=f"{address[0]}:{address[1]}" if address else "?",
            path=rules.redact(request.path) if request is not None else "",
            origin=request.headers.get("Origin") if request is not None else None,
        )
        task = asyncio.current_task()
        assert task is not None
        # The watchdog names the task that blocks the loop by this name.
        task.set_name(
            f"wslab the handler {self.handler_name} (server on port {self.port}, "
            f"client #{info.id})"
        )
        ws.wslab_client, ws.wslab_task = info, task
        self._record(
            info.id, Direction.TO_SERVER, Kind.CONNECT, text=f"connect from {info.address}"
        )
        if ws.protocol.state is State.CLOSED:  # gone before its handler started
            self._record(info.id, Direction.NONE, Kind.TCP_CLOSE, text=_close_text(ws))
            return
        self._clients[info.id] = info
        try:
            await self._handler(ws)
        except WebSocketsClosed:
            pass  # the client left while the handler waited: that is normal
        except asyncio.CancelledError:
            if not ws.wslab_cancelled:
                raise
            task.uncancel()  # our own cancel (see _client_left): the handler is done
        except Exception as exc:
            self._handler_failed(info, exc)
            # 1011: the server met an unexpected condition (RFC 6455 7.4.1).
            reason = f"handler error: {type(exc).__name__}"[:120]
            await close_or_abort(ws, CloseCode.INTERNAL_ERROR, reason)
        finally:
            self._clients.pop(info.id, None)
        await close_or_abort(ws)

    def _client_left(self, ws: _Connection) -> None:
        """TCP closed: free the client's slot now, and end a handler that lingers."""
        info = ws.wslab_client
        if info is None:
            return
        self._clients.pop(info.id, None)
        self._record(info.id, Direction.NONE, Kind.TCP_CLOSE, text=_close_text(ws))
        if ws.wslab_task is not None and not ws.wslab_task.done():
            ws.loop.call_later(self.limits.close_timeout, self._cancel_lingering, ws)

    def _cancel_lingering(self, ws: _Connection) -> None:
        task, info = ws.wslab_task, ws.wslab_client
        if task is None or info is None or task.done():
            return
        self._record(
            info.id,
            Direction.NONE,
            Kind.ERROR,
            text=f"the handler {self.handler_name} did not return "
            f"{self.limits.close_timeout:g} s after its client left (an await that never "
            "ends?): cancelled",
        )
        ws.wslab_cancelled = True
        task.cancel()

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
            # The token is a password: a repr saved in a notebook must not show it
            # (server.url and the HTML repr's link still carry it on purpose).
            f"<wslab.Server {rules.redact(self.url)} handler={self.handler_name} "
            f"clients={len(self._clients)} {self.state}>"
        )

    def _repr_html_(self) -> str:
        e = html.escape
        limits = self.limits
        origins = "the server's own page (same host), clients without an Origin"
        origins += "".join(f", {origin}" for origin in self.origins)
        access = (
            "private: the links carry a token (share a link to let someone in)"
            if self.token
            else "public: anyone on this machine who finds the port"
        )
        rows = [
            ("WebSocket URL", f"<code>{e(self.url)}</code>"),
            ("Chat page", f'<a href="{e(self.page_url)}" target="_blank">{e(self.page_url)}</a>'),
            ("Handler", e(self.handler_name)),
            ("State", e(self.state)),
            ("Access", e(access)),
            ("Clients", f"{len(self._clients)} of at most {limits.max_clients}"),
            ("Binds", e(self.host) + ("" if is_loopback(self.host) else " (remote allowed)")),
            ("Origins allowed", e(origins) + "; others get 403"),
            ("Max message size", f"{limits.max_size:,} bytes (then close 1009)"),
            (
                "Keepalive ping",
                "off" if limits.ping_interval is None else f"every {limits.ping_interval:g} s",
            ),
        ]
        body = "".join(
            f"<tr><th style='text-align:left'>{k}</th><td style='text-align:left'>{v}</td></tr>"
            for k, v in rows
        )
        return (
            f"<table><caption style='text-align:left'><b>wslab server</b></caption>{body}</table>"
        )


def _page(page: str | bytes | None, path: str, chat: bool) -> bytes:
    """The page on ``/``: the student's own, or the chat page."""
    if page is None:
        return chat_page(path.lstrip("/"), chat=chat)
    if isinstance(page, str):
        return page.encode()
    if isinstance(page, bytes | bytearray):
        return bytes(page)
    raise ServerStartError(f"page must be HTML as a str or bytes, got {type(page).__name__}")


def _begin_closing(
    ws_server: websockets.asyncio.server.Server, handshaking: Iterable[ServerConnection]
) -> None:
    """Stop listening and start closing every connection with 1001 (going away).

    websockets runs the closing handshake of every open connection. Two kinds
    of connection could only make it wait, so they are dropped at once:

    * one still in its opening handshake: a stopping server has nothing to
      serve it;
    * one whose reading is paused: its handler took none of the messages
      websockets queued, so the client's Close frame, or its reset, waits
      unread behind them and the closing handshake cannot finish. It gets
      our Close frame first, so that it knows why.
    """
    for connection in list(handshaking):
        connection.transport.abort()
    for connection in list(ws_server.all_connections):
        if not connection.transport.is_reading():
            if connection.protocol.state is State.OPEN:
                connection.protocol.send_close(CloseCode.GOING_AWAY)
                connection.send_data()
            connection.transport.abort()
    ws_server.close()


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


P = ParamSpec("P")


def _starting(server_class: Callable[P, Server]) -> Callable[P, Server]:
    """Make ``serve(...)``: ``Server(...).start()``, with Server's own signature."""

    @functools.wraps(server_class)
    def serve(*args: P.args, **kwargs: P.kwargs) -> Server:
        return server_class(*args, **kwargs).start()

    serve.__name__ = serve.__qualname__ = "serve"
    serve.__doc__ = (
        "Start a WebSocket server in this kernel and return it.\n\n"
        "It takes the arguments of :class:`Server` (see ``help(wslab.Server)``)::\n\n"
        "    server = wslab.serve('chat')            # private, any free port\n"
        "    server = wslab.serve('echo', token=None) # public: a bare URL\n\n"
        "Raises:\n"
        "    ServerStartError: For a bad option, a bad or busy port, or a remote host\n"
        "        without ``allow_remote=True``.\n"
        "    LoopBlockedError: A handler blocks the wslab loop.\n"
    )
    return serve


serve = _starting(Server)


def servers() -> list[Server]:
    """The servers running in this kernel."""
    with _registry_lock:
        return list(_registry.values())


def _stop_servers() -> None:
    for server in servers():
        try:
            server.stop()
        except LoopBlockedError as error:
            print(f"wslab: {error}", file=sys.stderr)


#: Stop every server, tap and registered process of this kernel (see wslab.loop).
stop_all = loop.stop_all
loop.on_stop(_stop_servers)


def run(
    handler: str | AsyncHandler = "echo",
    host: str = "127.0.0.1",
    port: int = 8080,
    path: str = "/chat",
    *,
    token: str | bool | None = None,
    **options: Any,
) -> None:
    """Serve in the foreground until Ctrl-C (``wslab serve --impl websockets``).

    Like the tutorials' ``node server.js``: port 8080 and no token by default.

    Raises:
        ServerStartError: For a bad port or a port in use.
    """
    server = serve(handler, host, port, path, token=token, **options)
    print(f"Serving {server.url} (chat page: {server.page_url}); press Ctrl-C to stop.")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
