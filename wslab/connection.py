"""A WebSocket connection after the handshake, sans I/O (RFC 6455 sections 5-7).

:class:`Connection` takes the bytes you received and returns *events*
(messages, pings, pongs, the peer's close); it turns what you want to send into
*bytes* for you to write. It never touches a socket, so the same class drives
the from-scratch server, the from-scratch client and the lessons' cells.

Its :class:`State` makes the closing handshake visible (section 7)::

    OPEN --send_close()----------------> LOCAL_CLOSING --peer's close--> CLOSED
    OPEN --peer's close, our reply queued------------------------------> CLOSED
    OPEN or LOCAL_CLOSING --protocol error (7.1.7) or end of TCP-------> CLOSED

Every arrow is one line of :data:`TRANSITIONS`, and one method,
``Connection._transition()``, follows them: the state changes nowhere else.

It answers pings with pongs and echoes the peer's close on its own, the way
section 5.5 says an endpoint must; those replies wait in :meth:`data_to_send`
until you send them. Once our reply to the peer's close is queued, both close
frames are, as far as the protocol goes, sent: the state is CLOSED and only
the TCP connection is left to close.
"""

from __future__ import annotations

import codecs
import enum
from collections.abc import Iterator
from dataclasses import dataclass

from .closing import Close, CloseCode, parse_close, serialize_close
from .errors import ProtocolError
from .frames import (
    _BYTES_LIKE,
    DEFAULT_MAX_SIZE,
    Frame,
    FrameDecoder,
    Opcode,
    RawFrame,
    Side,
    _check_mask_key,
    _check_max_size,
    encode,
    new_mask_key,
)

__all__ = [
    "DEFAULT_MAX_FRAGMENTS",
    "TRANSITIONS",
    "CloseReceived",
    "Connection",
    "Event",
    "Failed",
    "Message",
    "MessageAssembler",
    "Ping",
    "Pong",
    "State",
    "Trigger",
]

#: Default limit on the frames of one message. Section 10.4: "implementations
#: that have ... limitations regarding the frame size or total message size
#: after reassembly from multiple frames MUST protect themselves against
#: exceeding those limits". Without this limit a peer can send empty
#: continuation frames forever: 6 bytes each, the message never ends and
#: never grows past max_size. Browsers send a message in one frame; a library
#: that fragments uses a few frames per message. 4096 is far above both.
DEFAULT_MAX_FRAGMENTS = 4096


class State(enum.Enum):
    """Where a connection is in its life (section 7)."""

    #: Messages flow both ways.
    OPEN = "open"
    #: We sent a close frame and wait for the peer's (section 7.1.2). Data
    #: may still arrive; we may send pongs but no more data (5.5.1).
    LOCAL_CLOSING = "local closing"
    #: Both close frames are sent (ours may still wait in data_to_send()), or
    #: the connection failed, or TCP ended: only closing TCP is left (7.1.1).
    CLOSED = "closed"


class Trigger(enum.Enum):
    """What moves a connection from one state to another."""

    #: We send a close frame: :meth:`Connection.send_close` (section 7.1.2).
    CLOSE_SENT = "close sent"
    #: The peer's close frame arrives. "If an endpoint receives a Close frame
    #: and did not previously send a Close frame, the endpoint MUST send a
    #: Close frame in response" (5.5.1): our reply is queued at once.
    CLOSE_RECEIVED = "close received"
    #: The peer broke the protocol: we "_Fail the WebSocket Connection_"
    #: (7.1.7), queuing a close frame unless ours is already sent.
    FAILED = "failed"
    #: The TCP connection ended (:meth:`Connection.receive_eof`); without a
    #: closing handshake, the close code is 1006 (7.1.5).
    EOF = "end of TCP"


#: Every change of state, and what triggers it; nothing else changes it.
TRANSITIONS: dict[tuple[State, Trigger], State] = {
    (State.OPEN, Trigger.CLOSE_SENT): State.LOCAL_CLOSING,
    (State.OPEN, Trigger.CLOSE_RECEIVED): State.CLOSED,
    (State.LOCAL_CLOSING, Trigger.CLOSE_RECEIVED): State.CLOSED,
    (State.OPEN, Trigger.FAILED): State.CLOSED,
    (State.LOCAL_CLOSING, Trigger.FAILED): State.CLOSED,
    (State.OPEN, Trigger.EOF): State.CLOSED,
    (State.LOCAL_CLOSING, Trigger.EOF): State.CLOSED,
    (State.CLOSED, Trigger.EOF): State.CLOSED,
}


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
    across two fragments is fine, but invalid bytes fail at once with 1007:
    even inside a frame that is still arriving (see :meth:`add_partial`).

    Args:
        max_size: Largest message, in bytes; over it, 1009.
        max_fragments: Most frames in one message; over it, 1009 (see
            :data:`DEFAULT_MAX_FRAGMENTS`). None for no limit.
    """

    def __init__(
        self,
        max_size: int | None = DEFAULT_MAX_SIZE,
        max_fragments: int | None = DEFAULT_MAX_FRAGMENTS,
    ) -> None:
        self.max_size = _check_max_size(max_size)
        self.max_fragments = _check_max_fragments(max_fragments)
        self._opcode: Opcode | None = None
        # Binary fragments are kept as bytes, text fragments as decoded str.
        self._parts: list[bytes] = []
        self._text: list[str] = []
        self._size = 0
        self._fragments = 0
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        # How many bytes of the frame still arriving add_partial() decoded.
        self._checked = 0

    @property
    def in_progress(self) -> bool:
        """Whether a fragmented message has started and not yet finished."""
        return self._opcode is not None

    def add(self, frame: Frame) -> Message | None:
        """Add one data frame; return the message it completes, if any.

        Raises:
            ProtocolError: 1002 for a CONT without a start or a new message
                before the last one ended, 1007 for invalid UTF-8, 1009 for a
                message over ``max_size`` bytes or ``max_fragments`` frames.
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
        self._count(frame)
        if self._opcode is Opcode.TEXT:
            # add_partial() may have decoded the start of this frame already.
            rest, self._checked = frame.payload[self._checked :], 0
            self._text.append(self._decode_utf8(rest, final=frame.fin))
        else:
            self._parts.append(frame.payload)
        return self._finish() if frame.fin else None

    def is_text(self, opcode: Opcode) -> bool:
        """Whether a data frame with this opcode carries text (section 5.6).

        That is a TEXT frame that starts a message, or a CONT frame that
        continues a text message.
        """
        if opcode is Opcode.CONT:
            return self._opcode is Opcode.TEXT
        return opcode is Opcode.TEXT and self._opcode is None

    def add_partial(self, data: bytes) -> None:
        """Check the next bytes of a text frame that is still arriving.

        Section 8.1 says to fail "when an endpoint is to interpret a byte
        stream as UTF-8 but finds that the byte stream is not, in fact, a
        valid UTF-8 stream": not only when the frame is complete. Call
        :meth:`add` with the whole frame once it is complete, as usual.

        Raises:
            ProtocolError: 1007 as soon as the bytes cannot be UTF-8.
        """
        self._text.append(self._decode_utf8(data, final=False))
        self._checked += len(data)

    def _count(self, frame: Frame) -> None:
        """Apply the limits on a message's size and number of frames (10.4)."""
        self._size += len(frame.payload)
        if self.max_size is not None and self._size > self.max_size:
            raise ProtocolError(f"message is over the limit of {self.max_size} bytes", 1009)
        self._fragments += 1
        if self.max_fragments is not None and self._fragments > self.max_fragments:
            # 1009, "a message that is too big for it to process" (7.4.1): too
            # big in frames rather than in bytes, and 1008 (policy) is only
            # for when "there is no other more suitable status code".
            raise ProtocolError(f"message is over the limit of {self.max_fragments} frames", 1009)

    def _decode_utf8(self, data: bytes, final: bool) -> str:
        # The incremental decoder keeps the first bytes of a code point that a
        # fragment boundary splits, and fails as soon as bytes cannot be UTF-8.
        try:
            return self._utf8.decode(data, final)
        except UnicodeDecodeError:
            raise ProtocolError("text message is not valid UTF-8 (8.1)", 1007) from None

    def _finish(self) -> Message:
        data = "".join(self._text) if self._opcode is Opcode.TEXT else b"".join(self._parts)
        self._opcode, self._parts, self._text = None, [], []
        self._size = self._fragments = 0
        self._utf8.reset()
        return Message(data)


class Connection:
    """One end of an open WebSocket connection, without any I/O.

    Args:
        side: ``Side.CLIENT`` masks what it sends and expects unmasked frames;
            ``Side.SERVER`` the reverse (section 5.1).
        max_size: Largest message accepted; over it the connection fails
            with 1009.
        max_fragments: Most frames in one message; over it the connection
            fails with 1009 (see :data:`DEFAULT_MAX_FRAGMENTS`).
        mask_key: A fixed 4-byte key for every frame a client sends. Only for
            reproducible lessons and tests: real clients need a fresh random
            key per frame (section 10.3), which is what None gives.
    """

    def __init__(
        self,
        side: Side,
        *,
        max_size: int | None = DEFAULT_MAX_SIZE,
        max_fragments: int | None = DEFAULT_MAX_FRAGMENTS,
        mask_key: bytes | None = None,
    ) -> None:
        if not isinstance(side, Side):
            raise TypeError(f"side must be Side.CLIENT or Side.SERVER, got {side!r}")
        if mask_key is not None:
            mask_key = _check_mask_key(mask_key)
        self.side = side
        #: Where the connection is (section 7); see :data:`TRANSITIONS`.
        self.state = State.OPEN
        self.decoder = FrameDecoder(side, max_size=max_size)
        self.assembler = MessageAssembler(max_size, max_fragments)
        self.fixed_mask_key = mask_key
        #: The close frame we sent, once sent.
        self.close_sent: Close | None = None
        #: The close frame we received, once received.
        self.close_received: Close | None = None
        self._outgoing = bytearray()

    def __repr__(self) -> str:
        return f"<Connection {self.side.value} {self.state.value}>"

    def _transition(self, trigger: Trigger) -> None:
        """Move to the state :data:`TRANSITIONS` gives: the only place the state changes."""
        try:
            self.state = TRANSITIONS[self.state, trigger]
        except KeyError:
            # A bug in this class: the public methods check the state first.
            raise RuntimeError(
                f"no transition from {self.state.value} on {trigger.value}"
            ) from None

    # -- sending ----------------------------------------------------------------

    def send_text(self, text: str) -> bytes:
        """Return the bytes of a text message (one frame)."""
        if not isinstance(text, str):
            raise TypeError(f"send_text() takes a str, got {type(text).__name__}")
        return self.send_frame(Frame(Opcode.TEXT, text.encode()))

    def send_binary(self, data: bytes) -> bytes:
        """Return the bytes of a binary message (one frame)."""
        if not isinstance(data, _BYTES_LIKE):
            raise TypeError(f"send_binary() takes bytes, got {type(data).__name__}")
        return self.send_frame(Frame(Opcode.BINARY, bytes(data)))

    def send_ping(self, payload: bytes = b"") -> bytes:
        """Return the bytes of a ping (section 5.5.2)."""
        return self.send_frame(Frame(Opcode.PING, payload))

    def send_close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> bytes:
        """Start the closing handshake (section 7.1.2) and return the close frame."""
        if self.close_received is not None:
            raise RuntimeError(
                "cannot start closing: the peer closed first, and our reply is already "
                "queued: send data_to_send() (5.5.1)"
            )
        if self.close_sent is not None:
            raise RuntimeError(
                f"cannot start closing: the connection is {self.state.value} and a close "
                "frame was already sent (7.1.2)"
            )
        if self.state is not State.OPEN:
            raise RuntimeError("cannot start closing: the TCP connection is already closed")
        data = self._encode(Frame(Opcode.CLOSE, serialize_close(code, reason)))
        self.close_sent = Close(code, reason)
        self._transition(Trigger.CLOSE_SENT)
        return data

    def send_frame(self, frame: Frame) -> bytes:
        """Return the bytes of any frame but a close, masked if we are the client.

        Raises:
            RuntimeError: The frame may not be sent now: no data frame after
                our close frame (5.5.1), nothing at all once CLOSED.
            ValueError: A close frame: use :meth:`send_close`, which also
                records that the closing handshake has started.
        """
        if frame.opcode is Opcode.CLOSE:
            raise ValueError("send a close frame with send_close(code, reason) (7.1.2)")
        if self.state is State.CLOSED or (
            self.state is State.LOCAL_CLOSING and not frame.is_control
        ):
            # Section 5.5.1: "The application MUST NOT send any more data
            # frames after sending a Close frame." Pings and pongs may follow.
            raise RuntimeError(
                f"cannot send {frame.opcode.name}: the connection is {self.state.value} "
                "and no data may follow our close frame (5.5.1)"
            )
        return self._encode(frame)

    def _encode(self, frame: Frame) -> bytes:
        """Serialize a frame, masked with a fresh key if we are the client (5.3)."""
        return encode(frame, self._mask_key())

    def _mask_key(self) -> bytes | None:
        if self.side is Side.SERVER:
            return None
        return self.fixed_mask_key if self.fixed_mask_key is not None else new_mask_key()

    # -- receiving --------------------------------------------------------------

    def receive_data(self, data: bytes) -> list[Event]:
        """Feed bytes read from the socket; return what they mean, in order.

        Replies the protocol requires (a pong, our half of the closing
        handshake, a close frame that fails the connection) are queued in
        :meth:`data_to_send`. If the peer broke the protocol, the events of
        the frames before the broken one come first and a :class:`Failed`
        event comes last; then stop reading.
        """
        return list(self.receive_events(data))

    def receive_events(self, data: bytes) -> Iterator[Event]:
        """Like :meth:`receive_data`, but one frame at a time, as you iterate.

        The bytes are buffered at once; each frame is decoded only when you
        ask for the next event, so you can act on a message (answer it)
        before the frame after it is even looked at. A server that does
        this answers a message that came just before a broken frame before
        the close frame the broken one causes (section 7.1.7 fails the
        connection at the broken frame, not before it). Frames you did not
        iterate over stay buffered for the next call.
        """
        if self.state is State.CLOSED:
            return iter(())
        return self._events(self.decoder.iter_raw(data))

    def _events(self, frames: Iterator[RawFrame]) -> Iterator[Event]:
        try:
            for raw in frames:
                yield from self._handle(raw.frame)
                if self.state is State.CLOSED:
                    return  # Section 5.5.1: nothing may follow a close frame.
            self._check_incomplete_text()
        except ProtocolError as error:
            yield self._fail(error)

    def receive_eof(self) -> None:
        """Record that the TCP connection ended: nothing more will arrive.

        Without a closing handshake before it, that is an abnormal closure,
        close code 1006 (section 7.1.5).
        """
        self._transition(Trigger.EOF)

    def data_to_send(self) -> bytes:
        """Return and clear the replies queued by :meth:`receive_data`.

        It changes nothing else: the state already says where the connection is.
        """
        data = bytes(self._outgoing)
        self._outgoing.clear()
        return data

    def _handle(self, frame: Frame) -> list[Event]:
        if frame.opcode is Opcode.PING:
            # Section 5.5.2: answer "unless it already received a Close frame",
            # so also after we sent ours (LOCAL_CLOSING).
            self._outgoing += self._encode(Frame(Opcode.PONG, frame.payload))
            return [Ping(frame.payload)]
        if frame.opcode is Opcode.PONG:
            return [Pong(frame.payload)]
        if frame.opcode is Opcode.CLOSE:
            return [self._receive_close(frame)]
        # In LOCAL_CLOSING, data may still arrive until the peer's close (7.1.2).
        message = self.assembler.add(frame)
        return [message] if message is not None else []

    def _check_incomplete_text(self) -> None:
        """Fail fast on invalid UTF-8 in a text frame still arriving (8.1).

        A long text frame arrives in many pieces; its first invalid byte
        fails the connection as soon as it is here, not once the whole frame
        is (Autobahn's cases 6.4.3 and 6.4.4 check this).
        """
        header = self.decoder.peek_header()
        if header is not None and self.assembler.is_text(Opcode(header.opcode)):
            self.assembler.add_partial(self.decoder.read_partial())

    def _receive_close(self, frame: Frame) -> CloseReceived:
        close = parse_close(frame.payload)
        self.close_received = close
        if self.close_sent is None:
            # Section 5.5.1: answer with a close frame, echoing the code.
            code = close.code if close.code != CloseCode.NO_STATUS_RCVD else None
            payload = serialize_close(code) if code is not None else b""
            self._outgoing += self._encode(Frame(Opcode.CLOSE, payload))
            self.close_sent = Close(code or CloseCode.NO_STATUS_RCVD, "")
        self._transition(Trigger.CLOSE_RECEIVED)
        return CloseReceived(close.code, close.reason)

    def _fail(self, error: ProtocolError) -> Failed:
        """Fail the connection (section 7.1.7): send a close frame, then stop."""
        if self.close_sent is None:
            reason = _truncate_utf8(error.reason, 123)
            self._outgoing += self._encode(
                Frame(Opcode.CLOSE, serialize_close(error.code, reason))
            )
            self.close_sent = Close(error.code, reason)
        self._transition(Trigger.FAILED)
        return Failed(error.code, error.reason)

    @property
    def server_closes_tcp_first(self) -> bool:
        """Section 7.1.1: once closed, the server should close TCP first."""
        return self.state is State.CLOSED and self.side is Side.SERVER


def _check_max_fragments(max_fragments: int | None) -> int | None:
    if max_fragments is not None and (
        not isinstance(max_fragments, int) or isinstance(max_fragments, bool) or max_fragments < 1
    ):
        raise ValueError(
            f"max_fragments must be a number of frames (an int >= 1) or None, "
            f"got {max_fragments!r}"
        )
    return max_fragments


def _truncate_utf8(text: str, limit: int) -> str:
    """Shorten ``text`` to at most ``limit`` UTF-8 bytes without splitting a character."""
    return text.encode()[:limit].decode(errors="ignore")
