"""A WebSocket connection after the handshake, sans I/O (RFC 6455 sections 5-7).

:class:`Connection` takes the bytes you received and returns *events*
(messages, pings, pongs, the peer's close); it turns what you want to send into
*bytes* for you to write. It never touches a socket, so the same class drives
the from-scratch server, the from-scratch client and the lessons' cells.

Its :class:`State` makes the closing handshake visible (section 7)::

    OPEN --send_close()--> LOCAL_CLOSING --peer's close--> CLOSED
    OPEN --peer's close--> REMOTE_CLOSING --our reply---> CLOSED

It answers pings with pongs and echoes the peer's close on its own, the way
section 5.5 says an endpoint must; those replies wait in :meth:`data_to_send`.
"""

from __future__ import annotations

import codecs
import enum
from dataclasses import dataclass

from .closing import Close, CloseCode, parse_close, serialize_close
from .errors import ProtocolError
from .frames import (
    DEFAULT_MAX_SIZE,
    Frame,
    FrameDecoder,
    Opcode,
    Side,
    _check_mask_key,
    _check_max_size,
    encode,
    new_mask_key,
)

__all__ = [
    "CloseReceived",
    "Connection",
    "Event",
    "Failed",
    "Message",
    "MessageAssembler",
    "Ping",
    "Pong",
    "State",
]


class State(enum.Enum):
    """Where a connection is in its life (section 7)."""

    #: Messages flow both ways.
    OPEN = "open"
    #: We sent a close frame and wait for the peer's (section 7.1.2).
    LOCAL_CLOSING = "local closing"
    #: The peer sent a close frame; we owe it ours (section 5.5.1).
    REMOTE_CLOSING = "remote closing"
    #: Both close frames are sent, or the connection failed: only TCP is left.
    CLOSED = "closed"


@dataclass(frozen=True)
class Message:
    """A complete message: ``str`` for a text message, ``bytes`` for binary."""

    data: str | bytes

    def __str__(self) -> str:
        kind = "TEXT" if isinstance(self.data, str) else "BINARY"
        return f"{kind} message {self.data!r}"


@dataclass(frozen=True)
class Ping:
    """The peer sent a ping; the pong is already queued (section 5.5.2)."""

    payload: bytes


@dataclass(frozen=True)
class Pong:
    """The peer sent a pong (section 5.5.3)."""

    payload: bytes


@dataclass(frozen=True)
class CloseReceived:
    """The peer sent a close frame with this code and reason (section 5.5.1)."""

    code: int
    reason: str

    def __str__(self) -> str:
        return f"close received: {Close(self.code, self.reason)}"


@dataclass(frozen=True)
class Failed:
    """The peer broke the protocol; we queued a close frame with ``code`` (7.1.7)."""

    code: int
    reason: str


Event = Message | Ping | Pong | CloseReceived | Failed


class MessageAssembler:
    """Join data frames into messages (section 5.4).

    A message is a TEXT or BINARY frame followed by CONT frames until one has
    FIN set. Text is checked as UTF-8 as it arrives, so a code point split
    across two fragments is fine, but invalid bytes fail at once with 1007.
    """

    def __init__(self, max_size: int | None = DEFAULT_MAX_SIZE) -> None:
        self.max_size = _check_max_size(max_size)
        self._opcode: Opcode | None = None
        # Binary fragments are kept as bytes, text fragments as decoded str.
        self._parts: list[bytes] = []
        self._text: list[str] = []
        self._size = 0
        self._utf8 = codecs.getincrementaldecoder("utf-8")()

    @property
    def in_progress(self) -> bool:
        """Whether a fragmented message has started and not yet finished."""
        return self._opcode is not None

    def add(self, frame: Frame) -> Message | None:
        """Add one data frame; return the message it completes, if any.

        Raises:
            ProtocolError: 1002 for a CONT without a start or a new message
                before the last one ended, 1007 for invalid UTF-8, 1009 for a
                message over ``max_size``.
            ValueError: ``frame`` is a control frame, which is never part of
                a message (section 5.4).
        """
        if not isinstance(frame, Frame):
            raise TypeError(f"add() takes a Frame, got {type(frame).__name__}")
        if frame.is_control:
            raise ValueError(
                f"add() takes data frames (TEXT, BINARY, CONT), got {frame.opcode.name} (5.4)"
            )
        if frame.opcode is Opcode.CONT:
            if self._opcode is None:
                raise ProtocolError("continuation frame without a message to continue (5.4)")
        elif self._opcode is not None:
            raise ProtocolError(
                f"{frame.opcode.name} frame while a fragmented message is open (5.4)"
            )
        else:
            self._opcode = frame.opcode
        self._size += len(frame.payload)
        if self.max_size is not None and self._size > self.max_size:
            raise ProtocolError(f"message is over the limit of {self.max_size} bytes", 1009)
        if self._opcode is Opcode.TEXT:
            self._text.append(self._decode_utf8(frame.payload, final=frame.fin))
        else:
            self._parts.append(frame.payload)
        return self._finish() if frame.fin else None

    def _decode_utf8(self, data: bytes, final: bool) -> str:
        # The incremental decoder keeps the first bytes of a code point that a
        # fragment boundary splits, and fails as soon as bytes cannot be UTF-8.
        try:
            return self._utf8.decode(data, final)
        except UnicodeDecodeError:
            raise ProtocolError("text message is not valid UTF-8 (8.1)", 1007) from None

    def _finish(self) -> Message:
        data = "".join(self._text) if self._opcode is Opcode.TEXT else b"".join(self._parts)
        self._opcode, self._parts, self._text, self._size = None, [], [], 0
        self._utf8.reset()
        return Message(data)


class Connection:
    """One end of an open WebSocket connection, without any I/O.

    Args:
        side: ``Side.CLIENT`` masks what it sends and expects unmasked frames;
            ``Side.SERVER`` the reverse (section 5.1).
        max_size: Largest message accepted; over it the connection fails
            with 1009.
        mask_key: A fixed 4-byte key for every frame a client sends. Only for
            reproducible lessons and tests: real clients need a fresh random
            key per frame (section 10.3), which is what None gives.
    """

    def __init__(
        self,
        side: Side,
        *,
        max_size: int | None = DEFAULT_MAX_SIZE,
        mask_key: bytes | None = None,
    ) -> None:
        if not isinstance(side, Side):
            raise TypeError(f"side must be Side.CLIENT or Side.SERVER, got {side!r}")
        if mask_key is not None:
            mask_key = _check_mask_key(mask_key)
        self.side = side
        self.state = State.OPEN
        self.decoder = FrameDecoder(side, max_size=max_size)
        self.assembler = MessageAssembler(max_size)
        self.fixed_mask_key = mask_key
        #: The close frame we sent, once sent.
        self.close_sent: Close | None = None
        #: The close frame we received, once received.
        self.close_received: Close | None = None
        self._outgoing = bytearray()

    def __repr__(self) -> str:
        return f"<Connection {self.side.value} {self.state.value}>"

    # -- sending ----------------------------------------------------------------

    def send_text(self, text: str) -> bytes:
        """Return the bytes of a text message (one frame)."""
        if not isinstance(text, str):
            raise TypeError(f"send_text() takes a str, got {type(text).__name__}")
        return self.send_frame(Frame(Opcode.TEXT, text.encode()))

    def send_binary(self, data: bytes) -> bytes:
        """Return the bytes of a binary message (one frame)."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"send_binary() takes bytes, got {type(data).__name__}")
        return self.send_frame(Frame(Opcode.BINARY, bytes(data)))

    def send_ping(self, payload: bytes = b"") -> bytes:
        """Return the bytes of a ping (section 5.5.2)."""
        return self.send_frame(Frame(Opcode.PING, payload))

    def send_close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> bytes:
        """Start the closing handshake (section 7.1.2) and return the close frame."""
        if self.state is State.REMOTE_CLOSING:
            raise RuntimeError(
                "cannot start closing: the peer closed first, and our reply is already "
                "queued: send data_to_send() (5.5.1)"
            )
        if self.state is not State.OPEN:
            raise RuntimeError(
                f"cannot start closing: the connection is {self.state.value} and a close "
                "frame was already sent (7.1.2)"
            )
        data = self.send_frame(Frame(Opcode.CLOSE, serialize_close(code, reason)))
        self.close_sent = Close(code, reason)
        self.state = State.LOCAL_CLOSING
        return data

    def send_frame(self, frame: Frame) -> bytes:
        """Return the bytes of any frame, masked if we are the client."""
        if self.state in (State.CLOSED, State.LOCAL_CLOSING) and frame.opcode is not Opcode.CLOSE:
            # Section 5.5.1: after sending a close frame, send no more data.
            raise RuntimeError(
                f"cannot send {frame.opcode.name}: the connection is {self.state.value} "
                "and nothing may follow our close frame (5.5.1)"
            )
        return encode(frame, self._mask_key())

    def _mask_key(self) -> bytes | None:
        if self.side is Side.SERVER:
            return None
        return self.fixed_mask_key if self.fixed_mask_key is not None else new_mask_key()

    # -- receiving --------------------------------------------------------------

    def receive_data(self, data: bytes) -> list[Event]:
        """Feed bytes read from the socket; return what they mean.

        Replies the protocol requires (a pong, our half of the closing
        handshake, a close frame that fails the connection) are queued in
        :meth:`data_to_send`. After a :class:`Failed` event, stop reading.
        """
        if self.state is State.CLOSED or self.close_received is not None:
            return []
        events: list[Event] = []
        try:
            # One frame at a time, so that frames before a broken one still count.
            for raw in self.decoder.iter_raw(data):
                events.extend(self._handle(raw.frame))
                if self.close_received is not None:
                    break  # Section 5.5.1: nothing may follow a close frame.
        except ProtocolError as error:
            events.append(self._fail(error))
        return events

    def data_to_send(self) -> bytes:
        """Return and clear the replies queued by :meth:`receive_data`."""
        data = bytes(self._outgoing)
        self._outgoing.clear()
        if self.state is State.REMOTE_CLOSING:
            # Our close frame is on its way: the closing handshake is complete.
            self.state = State.CLOSED
        return data

    def _handle(self, frame: Frame) -> list[Event]:
        if frame.opcode is Opcode.PING:
            if self.state is State.OPEN:
                self._outgoing += self.send_frame(Frame(Opcode.PONG, frame.payload))
            return [Ping(frame.payload)]
        if frame.opcode is Opcode.PONG:
            return [Pong(frame.payload)]
        if frame.opcode is Opcode.CLOSE:
            return [self._receive_close(frame)]
        # In LOCAL_CLOSING, data may still arrive until the peer's close (7.1.2).
        message = self.assembler.add(frame)
        return [message] if message is not None else []

    def _receive_close(self, frame: Frame) -> CloseReceived:
        close = parse_close(frame.payload)
        self.close_received = close
        if self.state is State.OPEN:
            # Section 5.5.1: answer with a close frame, echoing the code.
            self.state = State.REMOTE_CLOSING
            code = close.code if close.code != CloseCode.NO_STATUS_RCVD else None
            payload = serialize_close(code) if code is not None else b""
            self._outgoing += encode(Frame(Opcode.CLOSE, payload), self._mask_key())
            self.close_sent = Close(code or CloseCode.NO_STATUS_RCVD, "")
        else:
            self.state = State.CLOSED
        return CloseReceived(close.code, close.reason)

    def _fail(self, error: ProtocolError) -> Failed:
        """Fail the connection (section 7.1.7): send a close frame, then stop."""
        if self.state is State.OPEN:
            reason = _truncate_utf8(error.reason, 123)
            self._outgoing += encode(
                Frame(Opcode.CLOSE, serialize_close(error.code, reason)), self._mask_key()
            )
            self.close_sent = Close(error.code, reason)
        self.state = State.CLOSED
        return Failed(error.code, error.reason)

    @property
    def server_closes_tcp_first(self) -> bool:
        """Section 7.1.1: once closed, the server should close TCP first."""
        return self.state is State.CLOSED and self.side is Side.SERVER


def _truncate_utf8(text: str, limit: int) -> str:
    """Shorten ``text`` to at most ``limit`` UTF-8 bytes without splitting a character."""
    return text.encode()[:limit].decode(errors="ignore")
