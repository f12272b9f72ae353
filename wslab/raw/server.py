"""A WebSocket server on plain sockets and threads, to read next to RFC 6455.

Each client gets a thread that tells its story in the RFC's order:

1. the opening handshake (section 4.2): read the request head before a
   deadline, ask :func:`wslab.rules.route` what to answer, write the 101
   (or the page, or an error) and join the handler;
2. messages (sections 5 and 6): feed the bytes ``recv()`` returns to the
   sans-I/O :class:`~wslab.connection.Connection`, pass whole messages to
   the handler, and ping a quiet client to know it is still there (5.5.2);
3. the closing handshake (section 7): answer the client's close frame, or
   send ours, then close TCP first (7.1.1).

Everything sent to a client goes through its outbox, which never blocks, so a
client that does not read cannot hold up another client, a join or a stop:
see :mod:`wslab.raw._sockets` for that plumbing.

The server applies the same rules as :func:`wslab.serve` (routing, limits,
Host and Origin checks: :mod:`wslab.rules`); ``asyncio`` would scale further,
but blocking ``recv()`` calls read top to bottom like the RFC does.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import select
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

from .. import chat, peercred, rules
from ..closing import CloseCode
from ..connection import Connection, Message, Pong, State
from ..errors import ConnectionClosed
from ..frames import Side
from ..handshake import Request, server_response
from ..page import chat_page
from ._sockets import (
    CHUNK,
    Flusher,
    Outbox,
    WakeUp,
    close_gracefully,
    no_delay,
    out_of_descriptors,
    send_before,
    shutdown,
)
from .handlers import ChatHandler, Handler, HandlerSpec, make_handler
from .heads import receive
from .peer import Peer

__all__ = ["RawServer", "run"]

#: How long the server waits for the client's FIN after its own (section 7.1.1).
_LINGER = 1.0
#: Read no more from a client while more than this waits for it: backpressure,
#: so that a client that sends without reading cannot make us buffer forever.
_READ_AGAIN_BELOW = 64 * 1024
#: Waits between two accept() calls while the process is out of file descriptors.
_ACCEPT_BACKOFF = (0.01, 1.0)


class RawServer:
    """A WebSocket server on plain sockets and threads.

    Args:
        handler: ``"echo"``, ``"chat"``, a :class:`~wslab.raw.Handler`, or a
            function ``fn(peer, message)`` called for every message.
        host: The address to listen on; ``127.0.0.1`` keeps it on this
            machine, anything else needs ``allow_remote=True``.
        port: The TCP port; 0 picks a free one (read it back from ``.port``).
        path: The WebSocket resource name, e.g. ``/chat``.
        origins: Extra ``Origin`` values to accept. Requests without an Origin
            (non-browser clients) and from the server's own page are always
            accepted; any other Origin gets 403 (section 10.2).
        allow_remote: Let other machines connect (see :func:`wslab.rules.check_bind`).
        allowed_hosts: More ``Host`` names to accept from browsers that come
            straight to the port (see :func:`wslab.rules.host_allowed`).
        token: ``True`` (the default): a random secret that ``url`` and
            ``page_url`` carry (``?wslab_token=...``) and every request must have,
            so that only whoever holds the link gets in, as with
            :func:`wslab.serve`; a ``str``: that secret; ``None``: no secret,
            anyone on this machine may connect (what :func:`run` and the
            command line do).
        page: HTML to serve on ``/`` instead of the chat page.
        limits: Every limit (:class:`wslab.rules.Limits`, the same for every
            wslab server): sizes, client counts, timeouts, keepalive pings.
        limit_options: Or any of its fields one by one, e.g. ``max_size``
            (largest message, then 1009), ``max_clients`` (then 503),
            ``handshake_timeout``, ``ping_interval`` (None: no pings).

    Raises:
        ServerStartError: For a bad host, port, option or limit; and from
            :meth:`start` or :meth:`serve_forever` for a port in use.
    """

    def __init__(
        self,
        handler: HandlerSpec = "echo",
        host: str = "127.0.0.1",
        port: int = 8080,
        path: str = "/chat",
        *,
        origins: Iterable[str] | None = None,
        allow_remote: bool = False,
        allowed_hosts: Iterable[str] | None = None,
        token: str | bool | None = True,
        page: str | bytes | None = None,
        limits: rules.Limits | None = None,
        **limit_options: Any,
    ) -> None:
        self.handler: Handler = make_handler(handler)
        self.host = rules.check_bind(host, allow_remote)
        self.port = rules.check_port(port)
        self.limits = rules.limits_from(limits, limit_options, server=type(self))
        if page is None:
            # The page shows a sent message once when the room sends it back.
            page = chat_page(path.lstrip("/"), chat=isinstance(self.handler, ChatHandler))
        self.policy = rules.Policy(
            path=path,
            origins=tuple(origins or ()),
            token=rules.choose_token(token),
            allowed_hosts=tuple(allowed_hosts or ()),
            hub_prefix=rules.hub_prefix(os.environ),
            page=page.encode() if isinstance(page, str) else page,
            limits=self.limits,
            owner_uid=os.getuid(),
        )
        self.path = path
        self.peers: set[Peer] = set()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        # Sockets in their opening handshake, oldest first (a dict keeps order).
        self._handshaking: dict[socket.socket, None] = {}
        self._sockets: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._wakeup: WakeUp | None = None
        self._flusher: Flusher | None = None

    @property
    def token(self) -> str | None:
        """The secret every request must carry, or None for a public server."""
        return self.policy.token

    @property
    def url(self) -> str:
        """The WebSocket URL, with the token: ``ws://127.0.0.1:8080/chat?wslab_token=...``."""
        return rules.ws_url(self.host, self.port, self.path, self.token)

    @property
    def page_url(self) -> str:
        """The link to the chat page, with the token: ``http://127.0.0.1:8080/?wslab_token=...``.

        Under JupyterHub it is the proxy route, as for :func:`wslab.serve`.
        """
        return rules.page_url(self.host, self.port, self.token, self.policy.hub_prefix)

    @property
    def max_size(self) -> int:
        return self.limits.max_size

    @property
    def max_clients(self) -> int:
        return self.limits.max_clients

    def __repr__(self) -> str:
        state = "running" if self._listener is not None else "stopped"
        return f"<RawServer {type(self.handler).__name__} {rules.redact(self.url)} {state}>"

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
            target=self._accept_loop, name="wslab-raw-accept", daemon=True
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
        """Close every connection with 1001 (going away) and stop listening.

        Clients get ``timeout`` seconds to answer the close frame; then what
        is left is cut. A handler may call it too.
        """
        with self._lock:
            listener, self._listener = self._listener, None
        if listener is None:
            return  # Not running, or another thread is stopping it already.
        assert self._wakeup is not None and self._flusher is not None
        self._wakeup.wake()
        if self._accept_thread not in (None, threading.current_thread()):
            self._accept_thread.join(timeout)
        with self._lock:
            peers = list(self.peers)
            # Connections still in their handshake get no close frame: no WebSocket yet.
            for sock in self._handshaking:
                shutdown(sock)
        for peer in peers:
            try:
                peer.close(CloseCode.GOING_AWAY, "server shutting down")
            except ConnectionClosed:
                pass  # Already dropped.
        self._join_clients(time.monotonic() + timeout)
        with self._lock:
            for sock in self._sockets:
                shutdown(sock)  # They had their chance to answer: cut what is left.
        self._join_clients(time.monotonic() + timeout)
        self._flusher.stop()
        listener.close()
        self._wakeup.close()

    def _join_clients(self, deadline: float) -> None:
        """Wait for the client threads, but not the caller's (a handler may call stop)."""
        with self._lock:
            threads = [t for t in self._threads if t is not threading.current_thread()]
        for thread in threads:
            if thread.is_alive():  # Ctrl-C may have come while it was starting.
                thread.join(max(0.0, deadline - time.monotonic()))

    def _listen(self) -> None:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        # Restart at once on the same port after a stop, even with connections
        # in TIME_WAIT; on Linux this does not let two servers share a port.
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((self.host, self.port))
            listener.listen()
        except OSError as error:
            listener.close()
            raise rules.bind_error(self.host, self.port, error) from None
        self.port = listener.getsockname()[1]
        self.policy = dataclasses.replace(self.policy, port=self.port)
        self._wakeup = WakeUp()
        self._flusher = Flusher()
        self._flusher.start()
        self._listener = listener

    # -- accepting clients ----------------------------------------------------------

    def _accept_loop(self) -> None:
        """Accept clients until :meth:`stop`, and give each one its thread."""
        listener, wakeup = self._listener, self._wakeup
        assert listener is not None and wakeup is not None
        backoff = _ACCEPT_BACKOFF[0]
        while self._wait_for_client(listener, wakeup, None):
            try:
                sock, address = listener.accept()
            except OSError as error:
                if out_of_descriptors(error):
                    # EMFILE: the client waits in the backlog and the listener
                    # stays readable, so accepting at once would spin. Wait
                    # (serving everyone else), then try again.
                    if not self._wait_for_client(None, wakeup, backoff):
                        return
                    backoff = min(backoff * 2, _ACCEPT_BACKOFF[1])
                continue  # Else the client gave up before we accepted it.
            backoff = _ACCEPT_BACKOFF[0]
            self._start_client(sock, address)

    @staticmethod
    def _wait_for_client(
        listener: socket.socket | None, wakeup: WakeUp, timeout: float | None
    ) -> bool:
        """Wait for a client (or just ``timeout``); False once :meth:`stop` woke us."""
        poller = select.poll()
        poller.register(wakeup, select.POLLIN)
        if listener is not None:
            poller.register(listener, select.POLLIN)
        ready = poller.poll(None if timeout is None else timeout * 1000)
        return wakeup.fileno() not in (fd for fd, _ in ready)

    def _start_client(self, sock: socket.socket, address: tuple[str, int]) -> None:
        no_delay(sock)
        thread = threading.Thread(
            target=self._serve_client, args=(sock, address), name="wslab-raw-client", daemon=True
        )
        with self._lock:
            # Slowloris: connections that never finish their request must not
            # pile up. Past the limit, the oldest one makes room.
            if len(self._handshaking) >= self.limits.max_handshaking:
                oldest = next(iter(self._handshaking))
                del self._handshaking[oldest]
                shutdown(oldest)
            self._handshaking[sock] = None
            self._sockets.add(sock)
            self._threads.add(thread)
        try:
            thread.start()
        except RuntimeError:  # Out of threads: drop this client, keep the others.
            self._forget(sock)
            sock.close()

    def _forget(self, sock: socket.socket) -> None:
        with self._lock:
            self._handshaking.pop(sock, None)
            self._sockets.discard(sock)
            self._threads.discard(threading.current_thread())

    # -- one client, from its handshake to its close ----------------------------------

    def _serve_client(self, sock: socket.socket, address: tuple[str, int]) -> None:
        peer: Peer | None = None
        try:
            opened = self._handshake(sock, address)
            if opened is not None:
                peer, rest = opened
                self._run(peer, rest)
        except OSError:
            pass  # The client vanished, or was cut.
        finally:
            self._close_tcp(sock, peer)
            self._forget(sock)

    def _handshake(
        self, sock: socket.socket, address: tuple[str, int]
    ) -> tuple[Peer, bytes] | None:
        """Read the client's request and answer it (section 4.2).

        Returns:
            The new peer and the bytes that followed the request (perhaps
            frames), or None if the request got a plain HTTP answer.
        """
        try:
            received = self._read_request(sock, time.monotonic() + self.limits.handshake_timeout)
            if isinstance(received, rules.Reply):
                self._reply(sock, received)  # 400 or 431: not HTTP we can answer
                return None
            request, rest = received
            # A public server still refuses another user of this machine.
            peer_uid = peercred.peer_uid(address, sock.getsockname())
            with self._lock:
                decision = rules.route(
                    request, self.policy, clients=len(self.peers), peer_uid=peer_uid
                )
                if isinstance(decision, rules.Accept):
                    peer = self._new_peer(sock, address, request, decision.name)
                    self.peers.add(peer)
                    self._handshaking.pop(sock, None)  # a client now, counted in peers
            if isinstance(decision, rules.Reply):
                # The page, or a refusal with its reason. Until the connection
                # is closed it counts against max_handshaking: a client that
                # does not read its answer, or never closes, is slow too.
                self._reply(sock, decision)
                return None
            self._open(peer, decision.key)
            return peer, rest
        except TimeoutError:
            return None  # Too slow, or a slowloris: close without a word.

    def _read_request(
        self, sock: socket.socket, deadline: float
    ) -> tuple[Request, bytes] | rules.Reply:
        """Receive until the request head is complete, or the deadline passes."""
        buffer = b""
        while (received := rules.read_request(buffer)) is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the client did not finish its request in time")
            # One deadline for the whole head, not a timeout per recv(): a
            # byte every few seconds must not hold the connection forever.
            sock.settimeout(left)
            buffer += receive(sock, "the client, before the end of its request,")
        sock.settimeout(None)
        return received

    def _reply(self, sock: socket.socket, reply: rules.Reply) -> None:
        """Answer plain HTTP; the connection then closes (``Connection: close``)."""
        send_before(sock, reply.response.serialize(), time.monotonic() + self.limits.send_timeout)

    def _new_peer(
        self, sock: socket.socket, address: tuple[str, int], request: Request, name: str | None
    ) -> Peer:
        assert self._flusher is not None
        id = next(self._ids)
        connection = Connection(
            Side.SERVER,
            max_size=self.limits.max_size,
            max_fragments=self.limits.max_fragments,
        )
        # Held: nothing reaches the client before its 101 and its handler are ready.
        outbox = Outbox(
            sock,
            self._flusher,
            limit=self.limits.max_write_buffer,
            stall_timeout=self.limits.send_timeout,
            held=True,
        )
        return Peer(
            id,
            name or chat.guest_name(id),
            address,
            request,
            connection,
            outbox,
            close_timeout=self.limits.close_timeout,
        )

    def _open(self, peer: Peer, key: str) -> None:
        """Answer 101 (section 4.2.2) and hand the client to the handler."""
        peer._write(server_response(key).serialize())
        # Join the handler (a chat room) before the client sees the 101, so
        # that nothing broadcast after its handshake completes can miss it.
        opened = self._call(self.handler.on_open, peer)
        peer._outbox.release()
        if not opened:
            peer.close(CloseCode.INTERNAL_ERROR, "handler error")

    def _run(self, peer: Peer, data: bytes) -> None:
        """Pass messages to the handler until the connection closes (sections 5 to 7)."""
        assert self._flusher is not None
        keepalive = _Keepalive(peer, self._flusher, self.limits)
        try:
            while True:
                if data:
                    self._handle(peer, data, keepalive)
                if peer.connection.state is State.CLOSED:
                    return  # Section 7.1.1: the server closes TCP first.
                # Backpressure: read nothing more from a client that does not
                # read what we send it (its echoes, its pongs).
                if not peer._outbox.wait_until_below(_READ_AGAIN_BELOW):
                    return  # It was cut.
                data = peer._sock.recv(CHUNK)
                if not data:
                    peer._receive_eof()  # It vanished without a closing handshake (7.1.5).
                    return
        except ConnectionClosed:
            pass  # It was dropped while we answered it.
        finally:
            self._leave(peer)

    def _handle(self, peer: Peer, data: bytes, keepalive: _Keepalive) -> None:
        """Act on the frames in ``data``, one at a time (sections 5 to 7).

        Each message is answered before the next frame is decoded, so a
        message that came just before a broken frame still gets its answer,
        before the close frame that the broken one causes.
        """
        for event in peer._receive(data):
            if isinstance(event, Message):
                # Section 7.4.1: 1011, the server hit an unexpected condition.
                if not self._call(self.handler.on_message, peer, event.data):
                    peer.close(CloseCode.INTERNAL_ERROR, "handler error")
            elif isinstance(event, Pong):
                keepalive.pong(event.payload)
            # Ping: the pong is already on its way (5.5.2). CloseReceived
            # and Failed: so is our close frame (5.5.1, 7.1.7), and they
            # are the last events (7.1.7: after failing, process no more data).

    def _leave(self, peer: Peer) -> None:
        with self._lock:
            self.peers.discard(peer)
        self._call(self.handler.on_close, peer)

    def _close_tcp(self, sock: socket.socket, peer: Peer | None) -> None:
        """Send what still waits (our close frame), then close TCP first (7.1.1)."""
        if peer is not None:
            outbox = peer._outbox
            outbox.cut_at(time.monotonic() + self.limits.close_timeout)
            outbox.wait_until_below(0)
            outbox.close()
        close_gracefully(sock, _LINGER)

    @staticmethod
    def _call(method: Callable[..., None], *args: object) -> bool:
        """Run handler code; show its exception instead of killing the thread."""
        try:
            method(*args)
        except ConnectionClosed:
            pass  # The client closed while we answered it: nothing to do.
        except Exception:
            traceback.print_exc(file=sys.stderr)
            return False
        return True


class _Keepalive:
    """Pings for a quiet client (section 5.5.2), and the end of one that never answers.

    A ping "may serve either as a keepalive or as a means to verify that the
    remote endpoint is still responsive": one every ``ping_interval``
    seconds, and if its pong is not back ``ping_timeout`` seconds later, the
    client is gone (a dead network path, a frozen peer) and the server closes
    with 1011. The pings go out from the flusher's thread, so the client's
    own thread does nothing but read.
    """

    def __init__(self, peer: Peer, flusher: Flusher, limits: rules.Limits) -> None:
        self.peer = peer
        self.flusher = flusher
        self.interval = limits.ping_interval
        self.timeout = limits.ping_timeout
        self.awaited: bytes | None = None  # the payload of the unanswered ping
        if self.interval is not None:
            flusher.call_at(time.monotonic() + self.interval, self._ping)

    def pong(self, payload: bytes) -> None:
        """A pong arrived; it answers our ping if it carries the same payload (5.5.3)."""
        if payload == self.awaited:
            self.awaited = None

    def _ping(self) -> None:
        if not self.peer.is_open:
            return  # Closing or gone: no more pings.
        assert self.interval is not None
        now = time.monotonic()
        self.flusher.call_at(now + self.interval, self._ping)
        if self.awaited is not None:
            return  # The last ping is still unanswered; its timeout is running.
        payload = self.awaited = os.urandom(4)
        try:
            self.peer.ping(payload)
        except ConnectionClosed:
            return  # Dropped meanwhile.
        if self.timeout is not None:
            self.flusher.call_at(now + self.timeout, lambda: self._check(payload))

    def _check(self, payload: bytes) -> None:
        if self.awaited == payload and self.peer.is_open:
            try:
                self.peer.close(CloseCode.INTERNAL_ERROR, "keepalive ping timeout")
            except ConnectionClosed:
                pass  # Dropped meanwhile.


def run(
    handler: HandlerSpec = "echo",
    host: str = "127.0.0.1",
    port: int = 8080,
    path: str = "/chat",
    *,
    token: str | bool | None = None,
    announce: Callable[[RawServer], None] | None = None,
    **options: object,
) -> None:
    """Serve in the foreground until Ctrl-C (what ``wslab serve --impl raw`` does).

    Like the tutorials' ``node server.js``: no token by default, so the URL
    it prints is a bare one.

    Args:
        token: As for :class:`RawServer`, but None (public) by default.
        announce: Called once the server listens, e.g. to print its URL.
        options: The other keyword arguments of :class:`RawServer`.

    Raises:
        ServerStartError: For a bad host or port, or a port in use.
    """
    server = RawServer(handler, host, port, path, token=token, **options)  # type: ignore[arg-type]
    server._listen()
    if announce is not None:
        announce(server)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass  # Ctrl-C is how a foreground server is meant to stop.
    finally:
        server.stop()
