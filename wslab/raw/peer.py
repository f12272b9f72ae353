"""One client of a :class:`~wslab.raw.RawServer`, as a handler sees it.

A :class:`Peer` pairs the sans-I/O :class:`~wslab.connection.Connection`
(which turns messages into bytes and bytes into events) with an outbox, the
bytes waiting for this client's socket. Handlers of other clients may send
to it (a chat broadcast), so the connection is used under a lock; writing to
the outbox never blocks, so that lock is never held for long and no client
can make another wait.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

from ..closing import CloseCode
from ..connection import Connection, Event, State
from ..errors import ConnectionClosed
from ..handshake import Request
from ._sockets import Outbox

__all__ = ["Peer"]


class Peer:
    """One client connected to a :class:`~wslab.raw.RawServer`.

    Attributes:
        id: A number, unique in this server.
        name: The chat name: the ``?name=`` query parameter of the URL the
            client connected to (cleaned by :func:`wslab.chat.clean_name`),
            or ``guest-<id>``.
        address: The client's ``(host, port)``.
        request: The client's opening handshake.
        connection: The sans-I/O :class:`~wslab.connection.Connection`.
    """

    def __init__(
        self,
        id: int,
        name: str,
        address: tuple[str, int],
        request: Request,
        connection: Connection,
        outbox: Outbox,
        *,
        close_timeout: float,
    ) -> None:
        self.id = id
        self.name = name
        self.address = address
        self.request = request
        self.connection = connection
        self._outbox = outbox
        self._close_timeout = close_timeout
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<Peer {self.id} {self.name!r} {self.connection.state.value}>"

    @property
    def is_open(self) -> bool:
        """Whether messages can still be sent to this client."""
        return self.connection.state is State.OPEN and not self._outbox.closed

    @property
    def _sock(self) -> socket.socket:
        return self._outbox.sock

    def send(self, message: str | bytes) -> None:
        """Send a text (``str``) or binary (``bytes``) message to this client.

        It never waits for the client to read: the frame joins the bytes
        waiting for it. A client that lets too much wait, or reads nothing
        for a while, is dropped.

        Raises:
            ConnectionClosed: The client is closing, or was dropped.
        """
        with self._lock:
            if not self.is_open:
                raise ConnectionClosed(CloseCode.GOING_AWAY, f"{self.name} is closing")
            if isinstance(message, str):
                data = self.connection.send_text(message)
            else:
                data = self.connection.send_binary(message)
            self._write(data)

    def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Start the closing handshake (section 7.1.2); the client answers.

        A client that does not answer within the close timeout is dropped
        (section 7.1.1 lets the server close TCP then).
        """
        with self._lock:
            if self.is_open:
                self._write(self.connection.send_close(code, reason))
                self._outbox.cut_at(time.monotonic() + self._close_timeout)

    def ping(self, payload: bytes) -> None:
        """Send a ping (section 5.5.2); the client must answer with a pong."""
        with self._lock:
            if self.is_open:
                self._write(self.connection.send_ping(payload))

    def _receive(self, data: bytes) -> Iterator[Event]:
        """Feed received bytes to the connection; yield its events one frame at a time.

        The next frame is decoded only once the caller asks for the next
        event (see :meth:`Connection.receive_events
        <wslab.connection.Connection.receive_events>`), so each message is
        answered before the frames after it are looked at. The replies the
        connection queues (pongs, closes) go to the outbox as they come.
        """
        events = self.connection.receive_events(data)
        while True:
            # Another thread may send to this client between two events:
            # the lock is held for one frame at a time, never while the
            # caller runs the handler.
            with self._lock:
                event = next(events, None)
                replies = self.connection.data_to_send()
                if replies:
                    self._write(replies)
            if event is None:
                return
            yield event

    def _receive_eof(self) -> None:
        """The client closed TCP: nothing more can be sent to it."""
        with self._lock:
            self.connection.receive_eof()

    def _write(self, data: bytes) -> None:
        try:
            self._outbox.write(data)
        except ConnectionResetError:
            # Dropped: too much was waiting for it, or its connection failed.
            # Its own thread wakes up (its socket is shut down) and cleans up.
            raise ConnectionClosed(
                CloseCode.ABNORMAL_CLOSURE, f"{self.name} was dropped: {self._outbox.cut_reason}"
            ) from None
