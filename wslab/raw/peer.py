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
from ..errors import ConnectionClosed, ProtocolError
from ..frames import parse_header
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
        self._frames = FrameSplitter()

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

    def _split(self, data: bytes) -> Iterator[bytes]:
        """Received bytes, one frame at a time (see :class:`FrameSplitter`)."""
        return self._frames.split(data)

    def _receive(self, data: bytes) -> list[Event]:
        """Feed received bytes to the connection; queue its replies (pongs, closes)."""
        with self._lock:
            events = self.connection.receive_data(data)
            replies = self.connection.data_to_send()
            if replies:
                self._write(replies)
            return events

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


class FrameSplitter:
    """Cut received bytes at frame boundaries (section 5.2), one frame per piece.

    The server feeds its :class:`~wslab.connection.Connection` one frame at a
    time and answers each before it looks at the next, as the RFC reads
    them: a message that arrived just before a broken frame is still
    answered, and only then does the close frame go out (section 7.1.7 fails
    the connection at the broken frame, not before it).

    A frame that is not complete yet goes on in pieces as it arrives, so that
    the connection sees its header at once (a frame announced too big fails
    with 1009 before its payload is buffered).
    """

    def __init__(self) -> None:
        self._head = bytearray()  # the start of a frame whose header is incomplete
        self._left = 0  # bytes still to come of a frame already passed on

    def split(self, data: bytes) -> Iterator[bytes]:
        """Yield ``data`` in pieces: whole frames, or what arrived of the last one."""
        if self._left:
            piece, data = data[: self._left], data[self._left :]
            self._left -= len(piece)
            yield piece
        if self._head:
            data, self._head = bytes(self._head) + data, bytearray()
        while data:
            try:
                header = parse_header(data)
            except ProtocolError:
                yield data  # The connection finds the same error, and fails.
                return
            if header is None:
                self._head += data  # Not even the header yet: wait for the rest.
                return
            end = header.size + header.length
            piece, data = data[:end], data[end:]
            self._left = end - len(piece)
            yield piece
