"""The whole protocol, by hand: a WebSocket server and client on the standard library.

This module is what the lessons build up to. It opens real TCP sockets and
runs the sans-I/O core over them, so it is small enough to read in one
sitting:

* the opening handshake (RFC 6455 section 4) is :mod:`wslab.handshake`: read
  an HTTP head, :func:`~wslab.handshake.check_request` it, answer
  :func:`~wslab.handshake.server_response` (101) or
  :func:`~wslab.handshake.error_response` (400, 403, 426, 431, ...);
* everything after it (sections 5 to 7) is :class:`wslab.connection.Connection`:
  feed it the bytes ``recv()`` returns, write what it gives back.

There is one thread per connection: blocking ``recv()`` calls read top to
bottom like the RFC does. ``asyncio`` would scale further; :func:`wslab.serve`
(on the websockets library) is the production-style server.

Quick start::

    from wslab.raw import RawServer, RawClient
    with RawServer("echo", port=0).start() as server:
        client = RawClient.connect(server.url)
        client.send("Hello")
        client.recv()          # 'You sent: Hello'
        client.close()
"""

from __future__ import annotations

import errno
import itertools
import select
import socket
import sys
import threading
import time
import traceback
import urllib.parse
import warnings
from collections import deque
from collections.abc import Callable, Iterable
from types import TracebackType

from .closing import CloseCode
from .connection import CloseReceived, Connection, Failed, Message, Pong, State
from .errors import HandshakeError, ServerStartError, WSLabError
from .frames import DEFAULT_MAX_SIZE, Frame, Side
from .handshake import (
    Request,
    Response,
    check_request,
    check_response,
    client_request,
    error_response,
    new_key,
    server_response,
    split_head,
)
from .page import chat_page
from .uri import is_loopback, parse_uri

__all__ = [
    "ChatHandler",
    "ConnectionClosed",
    "EchoHandler",
    "Handler",
    "Peer",
    "RawClient",
    "RawServer",
    "read_head",
    "receive",
    "run",
]

#: How much to read from a socket at once.
_CHUNK = 65536
#: How long the server waits for the client's FIN after closing (section 7.1.1).
_LINGER = 1.0
#: How long one send to a client may block. A client that reads nothing for
#: this long is dropped, so that it cannot stall a chat broadcast to everyone.
_SEND_TIMEOUT = 5.0


class ConnectionClosed(WSLabError):
    """The WebSocket connection is closed; no more messages will arrive.

    Attributes:
        code: The close code received (1005 if the close frame had none,
            1006 if the TCP connection ended without a close frame).
        reason: The close reason received.
    """

    def __init__(self, code: int, reason: str = "") -> None:
        meaning = _meaning(code)
        text = f"connection closed with code {code} ({meaning})"
        super().__init__(text + (f": {reason}" if reason else ""))
        self.code = code
        self.reason = reason


# -- handlers -------------------------------------------------------------------


class Peer:
    """One client connected to a :class:`RawServer`, as a handler sees it.

    Attributes:
        id: A number, unique in this server.
        name: The chat name: the ``?name=`` query parameter of the URL the
            client connected to, or ``guest-<id>``.
        address: The client's ``(host, port)``.
        request: The client's opening handshake.
        connection: The sans-I/O :class:`~wslab.connection.Connection`.
    """

    def __init__(
        self,
        id: int,
        sock: socket.socket,
        address: tuple[str, int],
        request: Request,
        max_size: int,
    ) -> None:
        self.id = id
        self.address = address
        self.request = request
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(request.path).query)
        self.name = (query.get("name") or [""])[0].strip()[:40] or f"guest-{id}"
        self.connection = Connection(Side.SERVER, max_size=max_size)
        self._sock = sock
        # Handlers of other clients may send to this one (a chat broadcast), so
        # the connection and the socket are used under a lock.
        self._lock = threading.RLock()
        self._aborted = False
        # Until the 101 response is written, frames for this client wait here:
        # it joins its handler (on_open) before it can see the 101.
        self._pending: bytearray | None = bytearray()

    def __repr__(self) -> str:
        return f"<Peer {self.id} {self.name!r} {self.connection.state.value}>"

    @property
    def is_open(self) -> bool:
        """Whether messages can still be sent to this client."""
        return self.connection.state is State.OPEN

    def send(self, message: str | bytes) -> None:
        """Send a text (``str``) or binary (``bytes``) message to this client."""
        with self._lock:
            if self._aborted or self.connection.state is not State.OPEN:
                raise ConnectionClosed(CloseCode.GOING_AWAY, f"{self.name} is closing")
            if isinstance(message, str):
                data = self.connection.send_text(message)
            else:
                data = self.connection.send_binary(message)
            self._send(data)

    def _send(self, data: bytes) -> None:
        if self._pending is not None:
            self._pending += data  # written right after the 101
            return
        try:
            _send_all(self._sock, data, _SEND_TIMEOUT)
        except OSError:
            # The client did not read for _SEND_TIMEOUT seconds, or is gone.
            # Part of the frame may be sent, so no close frame can follow:
            # drop TCP. Its own thread then wakes up and runs on_close.
            self._aborted = True
            _shutdown(self._sock)
            raise

    def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Start the closing handshake (section 7.1.2); the client answers."""
        with self._lock:
            if not self._aborted and self.connection.state is State.OPEN:
                self._send(self.connection.send_close(code, reason))

    def _receive(self, data: bytes) -> list[object]:
        """Feed received bytes to the connection and send its replies."""
        with self._lock:
            events: list[object] = list(self.connection.receive_data(data))
            # Pongs, our half of the closing handshake, or a failing close frame.
            replies = self.connection.data_to_send()
            if replies:
                self._sock.sendall(replies)
            return events


class Handler:
    """What a :class:`RawServer` does with its clients; override what you need."""

    def on_open(self, peer: Peer) -> None:
        """A client completed the opening handshake."""

    def on_message(self, peer: Peer, message: str | bytes) -> None:
        """A client sent a whole message (fragments are already joined)."""

    def on_close(self, peer: Peer) -> None:
        """A client left, after a closing handshake or not."""


class EchoHandler(Handler):
    """Answer text with ``You sent: <message>``; send binary back unchanged."""

    def on_message(self, peer: Peer, message: str | bytes) -> None:
        peer.send(f"You sent: {message}" if isinstance(message, str) else message)


class ChatHandler(Handler):
    """One chat room, with the same conventions as ``wslab.handlers.Chat``.

    * A client's name is the ``?name=`` query parameter of the WebSocket URL
      (``ws://127.0.0.1:8080/chat?name=Ada``), else ``guest-<id>``; sending
      ``/name Ada`` renames it.
    * Every text message goes to everyone, the sender included, as ``Ada: text``.
    * Notices start with ``* ``: ``* Ada joined``, ``* Ada left``,
      ``* guest-3 is now Ada``.
    * Binary messages go unchanged to everyone else.
    """

    def __init__(self) -> None:
        self.peers: set[Peer] = set()
        self._lock = threading.Lock()

    def on_open(self, peer: Peer) -> None:
        with self._lock:
            self.peers.add(peer)
        self.broadcast(f"* {peer.name} joined")

    def on_message(self, peer: Peer, message: str | bytes) -> None:
        if isinstance(message, bytes):
            self.broadcast(message, exclude=peer)
        elif message.startswith("/name "):
            old, peer.name = peer.name, message[len("/name ") :].strip()[:40] or peer.name
            self.broadcast(f"* {old} is now {peer.name}")
        else:
            self.broadcast(f"{peer.name}: {message}")

    def on_close(self, peer: Peer) -> None:
        with self._lock:
            self.peers.discard(peer)
        self.broadcast(f"* {peer.name} left")

    def broadcast(self, message: str | bytes, exclude: Peer | None = None) -> None:
        """Send ``message`` to every connected client but ``exclude``."""
        with self._lock:
            peers = [peer for peer in self.peers if peer is not exclude]
        for peer in peers:
            try:
                peer.send(message)
            except (OSError, ConnectionClosed):
                pass  # That client is closing or gone; its own thread cleans up.


class _FunctionHandler(Handler):
    """Wrap a plain ``fn(peer, message)`` as a handler."""

    def __init__(self, function: Callable[[Peer, str | bytes], None]) -> None:
        self.function = function

    def on_message(self, peer: Peer, message: str | bytes) -> None:
        self.function(peer, message)


HandlerSpec = str | Handler | Callable[[Peer, str | bytes], None]


def _make_handler(handler: HandlerSpec) -> Handler:
    if isinstance(handler, Handler):
        return handler
    if handler == "echo":
        return EchoHandler()
    if handler == "chat":
        return ChatHandler()
    if callable(handler):
        return _FunctionHandler(handler)
    raise ValueError(
        f"unknown handler {handler!r}: use 'echo', 'chat', a Handler, or fn(peer, message)"
    )


# -- the server -----------------------------------------------------------------


class RawServer:
    """A WebSocket server on plain sockets and threads.

    Args:
        handler: ``"echo"``, ``"chat"``, a :class:`Handler`, or a function
            ``fn(peer, message)`` called for every message.
        host: The address to listen on; ``127.0.0.1`` keeps it on this machine.
        port: The TCP port; 0 picks a free one (read it back from ``.port``).
        path: The WebSocket resource name, e.g. ``/chat``.
        origins: Extra ``Origin`` values to accept. Requests without an Origin
            (non-browser clients) and from the server's own page are always
            accepted; any other Origin gets 403 (section 10.2).
        max_size: Largest message accepted; a bigger one fails with 1009.
        max_clients: Most open WebSocket connections; more get 503.
        handshake_timeout: Seconds a client has to send its whole handshake,
            so that a slow client cannot hold a connection open forever.

    Raises:
        ServerStartError: From :meth:`start` or :meth:`serve_forever`, for a
            bad port or a port in use.
    """

    def __init__(
        self,
        handler: HandlerSpec = "echo",
        host: str = "127.0.0.1",
        port: int = 8080,
        path: str = "/chat",
        *,
        origins: Iterable[str] | None = None,
        max_size: int = DEFAULT_MAX_SIZE,
        max_clients: int = 64,
        handshake_timeout: float = 10.0,
    ) -> None:
        if not path.startswith("/"):
            raise ValueError(f"path must start with '/', e.g. '/chat', got {path!r}")
        self.handler = _make_handler(handler)
        self.host = host
        self.port = port
        self.path = path
        self.origins = set(origins or ())
        self.max_size = max_size
        self.max_clients = max_clients
        self.handshake_timeout = handshake_timeout
        self.peers: set[Peer] = set()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        # Writing a byte to this socket pair wakes the accept loop up to stop.
        self._wakeup_r, self._wakeup_w = socket.socketpair()

    @property
    def url(self) -> str:
        """The WebSocket URL, e.g. ``ws://127.0.0.1:8080/chat``."""
        return f"ws://{self._authority}{self.path}"

    @property
    def page_url(self) -> str:
        """The URL of the browser chat page, e.g. ``http://127.0.0.1:8080/``."""
        return f"http://{self._authority}/"

    @property
    def _authority(self) -> str:
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"

    def __repr__(self) -> str:
        state = "running" if self._listener is not None else "stopped"
        return f"<RawServer {type(self.handler).__name__} {self.url} {state}>"

    def __enter__(self) -> RawServer:
        if self._listener is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- starting and stopping ------------------------------------------------------

    def start(self) -> RawServer:
        """Listen, and accept clients on a background thread; return self."""
        self._listen()
        self._accept_thread = threading.Thread(
            target=self._accept_loop, name=f"wslab-raw-{self.port}", daemon=True
        )
        self._accept_thread.start()
        return self

    def serve_forever(self) -> None:
        """Listen and accept clients in this thread until :meth:`stop` (or Ctrl-C)."""
        if self._listener is None:
            self._listen()
        try:
            self._accept_loop()
        finally:
            self.stop()

    def stop(self, timeout: float = 2.0) -> None:
        """Close every connection with 1001 (going away) and stop listening."""
        with self._lock:
            listener, self._listener = self._listener, None
        if listener is None:
            return  # Not running, or another thread is stopping it already.
        self._wakeup_w.send(b"x")
        if (
            self._accept_thread is not None
            and self._accept_thread is not threading.current_thread()
        ):
            self._accept_thread.join(timeout)
        with self._lock:
            peers = list(self.peers)
        for peer in peers:
            try:
                peer.close(CloseCode.GOING_AWAY, "server shutting down")
            except OSError:
                pass  # Already gone.
        with self._lock:
            # Connections still in their opening handshake get no close frame.
            for sock in self._sockets - {peer._sock for peer in self.peers}:
                _shutdown(sock)
        # Give clients a moment to answer the close frames, then cut what is left.
        deadline = time.monotonic() + timeout
        for thread in self._other_threads():
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            _shutdown(sock)
        for thread in self._other_threads():
            thread.join(timeout)
        listener.close()
        # The wake-up pair is only needed while listening: free its two sockets.
        self._wakeup_r.close()
        self._wakeup_w.close()

    def _other_threads(self) -> list[threading.Thread]:
        """The client threads, but not the caller: a handler may call stop()."""
        with self._lock:
            return [t for t in self._threads if t is not threading.current_thread()]

    def _listen(self) -> None:
        port = self.port
        if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
            raise ServerStartError(
                f"port {port!r} is not a TCP port: "
                "use a number from 1 to 65535, or 0 for a free one"
            )
        if not is_loopback(self.host):
            # Never the default: the host was asked for, but say what it means.
            warnings.warn(
                f"RawServer on {self.host!r} accepts connections from other machines; "
                "use host='127.0.0.1' to keep it on this one",
                stacklevel=3,
            )
        if self._wakeup_r.fileno() == -1:
            # stop() closed the previous pair; a restarted server needs a new one.
            self._wakeup_r, self._wakeup_w = socket.socketpair()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        # Restart at once on the same port after a stop, even with connections
        # in TIME_WAIT; on Linux this does not let two servers share a port.
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((self.host, port))
            listener.listen()
        except OSError as error:
            listener.close()
            if error.errno == errno.EADDRINUSE:
                raise ServerStartError(
                    f"port {port} is already in use: stop the other server, "
                    "or pick another port (port 0 picks a free one)"
                ) from None
            raise ServerStartError(
                f"cannot listen on {self.host}:{port}: {error.strerror or error}"
            ) from None
        self._listener = listener
        self.port = listener.getsockname()[1]

    def _accept_loop(self) -> None:
        listener = self._listener
        assert listener is not None
        while True:
            readable, _, _ = select.select([listener, self._wakeup_r], [], [])
            if self._wakeup_r in readable:
                self._wakeup_r.recv(1)  # Consume the wake-up, so start() works again.
                return
            try:
                sock, address = listener.accept()
            except OSError:
                continue  # The client gave up before we accepted it.
            _no_delay(sock)
            thread = threading.Thread(
                target=self._serve_client,
                args=(sock, address),
                name="wslab-raw-client",
                daemon=True,
            )
            with self._lock:
                self._sockets.add(sock)
                self._threads.add(thread)
            thread.start()

    # -- one client -----------------------------------------------------------------

    def _serve_client(self, sock: socket.socket, address: tuple[str, int]) -> None:
        try:
            # The handshake must arrive within handshake_timeout (slowloris).
            sock.settimeout(self.handshake_timeout)
            peer, rest = self._handshake(sock, address)
            if peer is not None:
                sock.settimeout(None)
                self._run(peer, rest)
        except OSError:
            pass  # The client vanished, or stop() shut the socket down.
        finally:
            _close_tcp(sock)
            with self._lock:
                self._sockets.discard(sock)
                self._threads.discard(threading.current_thread())

    def _handshake(
        self, sock: socket.socket, address: tuple[str, int]
    ) -> tuple[Peer | None, bytes]:
        """Read the client's HTTP request and answer it (section 4.2).

        Returns:
            The new peer and the bytes that followed the request, or
            ``(None, b"")`` if the request was not upgraded.
        """
        try:
            request, rest = _read_request(sock)
            path = urllib.parse.urlsplit(request.path).path
            if "Upgrade" not in request.headers and path != self.path:
                # A plain HTTP request: the chat page on /, nothing else.
                if request.method == "GET" and path in ("/", "/index.html"):
                    sock.sendall(_page_response(self.path).serialize())
                else:
                    sock.sendall(_text_response(404, f"nothing at {path}: try / or {self.path}"))
                return None, b""
            if path != self.path:
                raise HandshakeError(f"no WebSocket at {path}: connect to {self.path}", 404)
            key = check_request(request, origins=self.origins)
            peer = Peer(next(self._ids), sock, address, request, self.max_size)
            with self._lock:
                if len(self.peers) >= self.max_clients:
                    raise HandshakeError(
                        f"too many clients (max_clients={self.max_clients}): try again later",
                        503,
                    )
                self.peers.add(peer)
            # Join the handler (a chat room) before the client sees the 101, so
            # that nothing broadcast after its handshake completes can miss it.
            # What is sent to it meanwhile waits in peer._pending.
            opened = self._call(self.handler.on_open, peer)
            try:
                with peer._lock:
                    pending, peer._pending = peer._pending or b"", None
                    sock.sendall(server_response(key).serialize() + pending)
            except OSError:
                self._leave(peer)  # It left during its handshake.
                raise
            if not opened:
                peer.close(CloseCode.INTERNAL_ERROR, "handler error")
        except HandshakeError as error:
            sock.sendall(error_response(error).serialize())
            return None, b""
        return peer, rest

    def _run(self, peer: Peer, data: bytes) -> None:
        """Pass messages to the handler until the connection closes (sections 5-7)."""
        try:
            while True:
                for event in peer._receive(data) if data else []:
                    if isinstance(event, Message):
                        self._call_handler(peer, event.data)
                    # Ping: the pong is already sent. Pong: nothing to do (5.5.3).
                    # CloseReceived / Failed: our close frame is already sent.
                if peer.connection.state is State.CLOSED:
                    return  # Section 7.1.1: the server closes TCP first.
                data = peer._sock.recv(_CHUNK)
                if not data:
                    return  # The client vanished without a closing handshake.
        finally:
            self._leave(peer)

    def _leave(self, peer: Peer) -> None:
        with self._lock:
            self.peers.discard(peer)
        self._call(self.handler.on_close, peer)

    def _call_handler(self, peer: Peer, message: str | bytes) -> None:
        # Section 7.4.1: 1011, the server hit an unexpected condition.
        if not self._call(self.handler.on_message, peer, message):
            peer.close(CloseCode.INTERNAL_ERROR, "handler error")

    @staticmethod
    def _call(method: Callable[..., None], *args: object) -> bool:
        """Run handler code; show its exception instead of killing the thread."""
        try:
            method(*args)
        except (OSError, ConnectionClosed):
            pass  # The client closed while we answered it: nothing to do.
        except Exception:
            traceback.print_exc(file=sys.stderr)
            return False
        return True


def receive(sock: socket.socket, who: str = "the peer") -> bytes:
    """Return the bytes that have arrived on ``sock`` (up to 64 KiB).

    Raises:
        ConnectionResetError: The peer closed TCP instead (``recv`` gave ``b""``).
    """
    data = sock.recv(_CHUNK)
    if not data:
        raise ConnectionResetError(f"{who} closed the connection")
    return data


def read_head(sock: socket.socket, who: str = "the peer") -> tuple[bytes, bytes]:
    """Read until the blank line that ends an HTTP head (sections 4.1 and 4.2.1).

    Returns:
        The head, and whatever arrived after it (perhaps the first frames).
    """
    buffer = b""
    while (parts := split_head(buffer)) is None:
        buffer += receive(sock, who)
    return parts


def _read_request(sock: socket.socket) -> tuple[Request, bytes]:
    head, rest = read_head(sock, "the client, before the end of its handshake,")
    return Request.parse(head), rest


def _page_response(ws_path: str) -> Response:
    body = chat_page(ws_path.lstrip("/"))
    response = Response(200, body=body)
    response.headers.add("Content-Type", "text/html; charset=utf-8")
    response.headers.add("Content-Length", str(len(body)))
    response.headers.add("Connection", "close")
    return response


def _text_response(status: int, text: str) -> bytes:
    return error_response(HandshakeError(text, status)).serialize()


def _send_all(sock: socket.socket, data: bytes, timeout: float) -> None:
    """Like ``sock.sendall(data)``, but give up after ``timeout`` seconds in all.

    ``MSG_DONTWAIT`` makes this one call non-blocking without changing the
    socket, on which the client's own thread blocks in ``recv()``.

    Raises:
        TimeoutError: The client did not read enough to make room in time.
    """
    try:
        sent = sock.send(data, socket.MSG_DONTWAIT)
    except BlockingIOError:
        sent = 0
    if sent == len(data):
        return  # The usual case: it all fit in the socket's buffer at once.
    view = memoryview(data)[sent:]
    deadline = time.monotonic() + timeout
    while view:
        try:
            view = view[sock.send(view, socket.MSG_DONTWAIT) :]
            continue
        except BlockingIOError:
            pass  # The client's buffers are full: wait for room, up to the deadline.
        poller = select.poll()
        try:
            poller.register(sock, select.POLLOUT)
        except ValueError:  # Another thread closed the socket meanwhile.
            raise ConnectionResetError("the connection is closed") from None
        left = deadline - time.monotonic()
        if left <= 0 or not poller.poll(left * 1000):
            raise TimeoutError(f"the client did not read its messages for {timeout:g} s")


def _no_delay(sock: socket.socket) -> None:
    """Send each frame at once (TCP_NODELAY), as WebSocket libraries do.

    Otherwise Nagle's algorithm may hold a small frame (a pong, a short
    message) until the previous one is acknowledged, which the peer may delay
    by up to 40 ms: slow, and confusing in a lesson about latency.
    """
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _shutdown(sock: socket.socket) -> None:
    """Wake a thread blocked in ``recv()`` on ``sock``: it reads end of file."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # Already closed.


def _close_tcp(sock: socket.socket) -> None:
    """Close TCP as a server should (section 7.1.1): first, then wait for the client.

    ``shutdown(SHUT_WR)`` sends our FIN after the close frame. Reading until
    the client's FIN (for at most a second) matters: closing a socket with
    unread bytes makes the kernel send a reset, which can destroy the close
    frame before the client reads it.
    """
    try:
        sock.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + _LINGER
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            if not sock.recv(_CHUNK):
                break
    except OSError:
        pass  # Reset by the client, or the deadline passed.
    finally:
        sock.close()


def run(
    handler: HandlerSpec = "echo",
    host: str = "127.0.0.1",
    port: int = 8080,
    path: str = "/chat",
    *,
    announce: Callable[[RawServer], None] | None = None,
    **options: object,
) -> None:
    """Serve in the foreground until Ctrl-C (what ``wslab serve --impl raw`` does).

    Args:
        announce: Called once the server listens, e.g. to print its URL.
        options: The keyword arguments of :class:`RawServer`.

    Raises:
        ServerStartError: For a bad port or a port in use.
    """
    server = RawServer(handler, host, port, path, **options)  # type: ignore[arg-type]
    server._listen()
    if announce is not None:
        announce(server)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass  # Ctrl-C is how a foreground server is meant to stop.
    finally:
        server.stop()


# -- the client -----------------------------------------------------------------


class RawClient:
    """A WebSocket client on a plain socket: connect, send, receive, close.

    Create it with :meth:`connect`. Every frame it sends is masked with a fresh
    random key (section 5.3), unless a fixed ``mask_key`` was given for
    reproducible lessons.

    Attributes:
        url: The URL it connected to.
        request: The opening handshake it sent; ``response``: the server's answer.
        connection: The sans-I/O :class:`~wslab.connection.Connection`.
        close_code: The code of the closing handshake once closed, else None
            (1006 if TCP ended without a close frame).
        close_reason: The close reason once closed, else None.
    """

    def __init__(
        self,
        sock: socket.socket,
        url: str,
        request: Request,
        response: Response,
        rest: bytes,
        *,
        max_size: int = DEFAULT_MAX_SIZE,
        mask_key: bytes | None = None,
    ) -> None:
        self.url = url
        self.request = request
        self.response = response
        self.connection = Connection(Side.CLIENT, max_size=max_size, mask_key=mask_key)
        self.close_code: int | None = None
        self.close_reason: str | None = None
        #: Payloads of the pongs received, oldest first.
        self.pongs: deque[bytes] = deque()
        self._sock = sock
        self._messages: deque[str | bytes] = deque()
        self._unread = rest

    @classmethod
    def connect(
        cls,
        url: str,
        *,
        origin: str | None = None,
        timeout: float = 5.0,
        mask_key: bytes | None = None,
        max_size: int = DEFAULT_MAX_SIZE,
    ) -> RawClient:
        """Open a TCP connection to ``url`` and do the opening handshake (section 4.1).

        Args:
            url: ``ws://host:port/path``.
            origin: An ``Origin`` header to send, as a browser would.
            timeout: Seconds to wait for the connection and the handshake.
            mask_key: A fixed 4-byte masking key (only for reproducible lessons).
            max_size: Largest message accepted from the server.

        Raises:
            ValueError: ``url`` is not a ``ws://`` URL.
            ConnectionRefusedError: No server listens there.
            TimeoutError: The server did not answer within ``timeout``.
            HandshakeError: The server refused the handshake.
        """
        uri = parse_uri(url)
        if uri.secure:
            raise ValueError(f"{url!r} is wss:// (TLS); RawClient speaks ws:// only")
        if mask_key is not None and (not isinstance(mask_key, bytes) or len(mask_key) != 4):
            raise ValueError(
                f"mask_key must be 4 bytes such as b'\\x37\\xfa\\x21\\x3d', got {mask_key!r}"
            )
        try:
            sock = socket.create_connection((uri.host, uri.port), timeout=timeout)
        except ConnectionRefusedError:
            raise ConnectionRefusedError(
                f"no server at {url}: is it running? start one with wslab.serve() or `wslab serve`"
            ) from None
        except TimeoutError:
            raise TimeoutError(
                f"no answer from {uri.host}:{uri.port} within {timeout} s"
            ) from None
        except socket.gaierror as error:
            raise ConnectionError(f"cannot find host {uri.host!r}: {error.strerror}") from None
        _no_delay(sock)
        response: Response | None = None
        try:
            key = new_key()
            request = client_request(uri.host_header, uri.path, key=key, origin=origin)
            sock.sendall(request.serialize())
            response, rest = _read_response(sock, url, timeout)
            check_response(response, key)
        except HandshakeError as error:
            sock.close()
            reason = _with_server_reason(error, response)
            raise HandshakeError(f"handshake with {url} failed: {reason}", error.status) from None
        except BaseException:
            sock.close()
            raise
        sock.settimeout(None)
        return cls(sock, url, request, response, rest, max_size=max_size, mask_key=mask_key)

    def __repr__(self) -> str:
        return f"<RawClient {self.url} {self.connection.state.value}>"

    def __enter__(self) -> RawClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- sending --------------------------------------------------------------------

    def send(self, message: str | bytes) -> None:
        """Send a text (``str``) or binary (``bytes``) message in one frame."""
        self._check_open()
        if isinstance(message, str):
            self._sock.sendall(self.connection.send_text(message))
        else:
            self._sock.sendall(self.connection.send_binary(message))

    def send_frame(self, frame: Frame) -> None:
        """Send one frame, e.g. a fragment: ``Frame(Opcode.TEXT, b"Hel", fin=False)``."""
        self._check_open()
        self._sock.sendall(self.connection.send_frame(frame))

    def send_raw(self, data: bytes) -> None:
        """Write bytes to the socket as they are: to see what a server does with bad frames."""
        self._sock.sendall(data)

    def ping(self, payload: bytes = b"") -> None:
        """Send a ping (section 5.5.2); its pong lands in :attr:`pongs`."""
        self._check_open()
        self._sock.sendall(self.connection.send_ping(payload))

    def _check_open(self) -> None:
        if self.connection.state is not State.OPEN:
            raise ConnectionClosed(
                self.close_code or CloseCode.ABNORMAL_CLOSURE, self.close_reason or ""
            )

    # -- receiving ------------------------------------------------------------------

    def recv(self, timeout: float | None = None) -> str | bytes:
        """Return the next message: ``str`` for text, ``bytes`` for binary.

        Args:
            timeout: Seconds to wait; None waits as long as it takes.

        Raises:
            TimeoutError: No message within ``timeout``.
            ConnectionClosed: The connection closed; see :attr:`close_code`.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._messages:
            if self.connection.state is State.CLOSED or self._sock.fileno() == -1:
                raise ConnectionClosed(self.close_code or 1006, self.close_reason or "")
            self._read(deadline)
        return self._messages.popleft()

    def _read(self, deadline: float | None) -> None:
        """Read from the socket once and handle the events (sections 5-7)."""
        if self._unread:
            data, self._unread = self._unread, b""
        else:
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("no message arrived within the timeout")
                self._sock.settimeout(left)
            try:
                data = self._sock.recv(_CHUNK)
            except TimeoutError:
                raise TimeoutError("no message arrived within the timeout") from None
            finally:
                self._sock.settimeout(None)
            if not data:
                # TCP ended without a closing handshake: "abnormal closure" (7.1.5).
                self._finish(CloseCode.ABNORMAL_CLOSURE, "")
                return
        for event in self.connection.receive_data(data):
            if isinstance(event, Message):
                self._messages.append(event.data)
            elif isinstance(event, Pong):
                self.pongs.append(event.payload)
            elif isinstance(event, CloseReceived | Failed):
                self.close_code, self.close_reason = event.code, event.reason
        replies = self.connection.data_to_send()
        if replies:
            self._sock.sendall(replies)  # A pong, or our half of the closing handshake.
        if self.connection.state is State.CLOSED:
            self._wait_for_tcp_close()

    def _wait_for_tcp_close(self, timeout: float = _LINGER) -> None:
        """Section 7.1.1: the client waits for the server to close TCP first."""
        try:
            self._sock.settimeout(timeout)
            while self._sock.recv(_CHUNK):
                pass
        except OSError:
            pass  # The server reset the connection, or took too long.
        self._finish(self.close_code or CloseCode.ABNORMAL_CLOSURE, self.close_reason or "")

    def _finish(self, code: int, reason: str) -> None:
        self.close_code, self.close_reason = code, reason
        self.connection.state = State.CLOSED
        self._sock.close()

    # -- closing ----------------------------------------------------------------------

    def close(
        self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "", timeout: float = 5.0
    ) -> None:
        """Do the closing handshake (section 7.1.2) and wait for the server to close TCP.

        Messages that arrive before the server's close frame are kept for :meth:`recv`.
        """
        if self._sock.fileno() == -1:
            return
        if self.connection.state is State.OPEN:
            try:
                self._sock.sendall(self.connection.send_close(code, reason))
            except OSError:
                self._finish(CloseCode.ABNORMAL_CLOSURE, "")
                return
        deadline = time.monotonic() + timeout
        try:
            while self._sock.fileno() != -1:
                self._read(deadline)
        except (TimeoutError, OSError):
            self._finish(self.close_code or CloseCode.ABNORMAL_CLOSURE, self.close_reason or "")


def _read_response(sock: socket.socket, url: str, timeout: float) -> tuple[Response, bytes]:
    """Read the server's answer to the handshake; keep the body of an error."""
    try:
        head, rest = read_head(sock, url)
    except ConnectionResetError:
        raise HandshakeError(f"{url} closed the connection without answering") from None
    except TimeoutError:
        raise TimeoutError(f"{url} did not answer the handshake within {timeout} s") from None
    response = Response.parse(head)
    if response.status != 101:
        # An error answer explains itself in its body: keep it for the message.
        length = int(response.headers.get("Content-Length") or 0)
        body = rest
        while len(body) < min(length, 4096):
            data = sock.recv(4096)
            if not data:
                break
            body += data
        response.body = body[:length]
        rest = b""
    return response, rest


def _with_server_reason(error: HandshakeError, response: Response | None) -> str:
    """Combine a handshake error with the reason the server gave in its body."""
    text = str(error)
    if response is not None and response.status != 101 and response.body:
        detail = response.body.decode(errors="replace").strip().splitlines()[0][:200]
        text += f" ({detail})"
    return text


def _meaning(code: int) -> str:
    try:
        return CloseCode(code).meaning
    except ValueError:
        return "application code" if code >= 3000 else "unknown code"
