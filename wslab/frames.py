"""WebSocket frames: the bytes on the wire after the handshake (RFC 6455 section 5).

A frame is a small header followed by a payload::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-------+-+-------------+-------------------------------+
    |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
    |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
    |N|V|V|V|       |S|             |   (if payload len==126/127)   |
    | |1|2|3|       |K|             |                               |
    +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
    |     Extended payload length continued, if payload len == 127  |
    + - - - - - - - - - - - - - - - +-------------------------------+
    |                               |Masking-key, if MASK set to 1  |
    +-------------------------------+-------------------------------+
    | Masking-key (continued)       |          Payload Data         |
    +-------------------------------- - - - - - - - - - - - - - - - +

This module is sans-I/O: :func:`encode` turns a :class:`Frame` into bytes and
:class:`FrameDecoder` turns bytes, in any chunking, back into frames.
"""

from __future__ import annotations

import dataclasses
import enum
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

from . import utils
from .closing import parse_close
from .errors import ProtocolError

__all__ = [
    "CONTROL_OPCODES",
    "DATA_OPCODES",
    "DEFAULT_MAX_SIZE",
    "Frame",
    "FrameDecoder",
    "Header",
    "Opcode",
    "RawFrame",
    "Side",
    "apply_mask",
    "encode",
    "new_mask_key",
    "parse_header",
]

#: Default limit on a frame's (and a message's) payload: 1 MiB.
DEFAULT_MAX_SIZE = 2**20
#: Control frames carry at most 125 bytes (section 5.5).
MAX_CONTROL_PAYLOAD = 125
#: The types accepted as bytes. A tuple rather than ``bytes | bytearray |
#: memoryview``: that union is built anew at each use, and these checks run
#: for every frame.
_BYTES_LIKE = (bytes, bytearray, memoryview)


class Opcode(enum.IntEnum):
    """The frame types of RFC 6455 section 5.2 (and 11.8)."""

    #: "%x0 denotes a continuation frame"
    CONT = 0x0
    #: "%x1 denotes a text frame"
    TEXT = 0x1
    #: "%x2 denotes a binary frame"
    BINARY = 0x2
    #: "%x8 denotes a connection close"
    CLOSE = 0x8
    #: "%x9 denotes a ping"
    PING = 0x9
    #: "%xA denotes a pong"
    PONG = 0xA


DATA_OPCODES = frozenset({Opcode.CONT, Opcode.TEXT, Opcode.BINARY})
CONTROL_OPCODES = frozenset({Opcode.CLOSE, Opcode.PING, Opcode.PONG})
#: Each defined opcode by its number. The decoder looks opcodes up here:
#: ``Opcode(n)`` gives the same through the enum machinery, several times slower.
_OPCODES = {opcode.value: opcode for opcode in Opcode}


class Side(enum.Enum):
    """Which end of the connection we are; it decides who masks (section 5.3)."""

    #: A client masks every frame it sends ...
    CLIENT = "client"
    #: ... and a server never does.
    SERVER = "server"


@dataclass
class Frame:
    """One WebSocket frame, with its payload already unmasked.

    Attributes:
        opcode: What the payload is (:class:`Opcode`).
        payload: The application data, unmasked.
        fin: Whether this is the final fragment of a message (section 5.4).
        rsv1: Reserved bit 1, only set by an extension such as
            permessage-deflate (RFC 7692).
        rsv2: Reserved bit 2.
        rsv3: Reserved bit 3.
    """

    opcode: Opcode
    payload: bytes = b""
    fin: bool = True
    rsv1: bool = False
    rsv2: bool = False
    rsv3: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.opcode, Opcode):
            if isinstance(self.opcode, int) and not isinstance(self.opcode, bool):
                try:
                    self.opcode = Opcode(self.opcode)
                except ValueError:
                    raise ValueError(
                        f"opcode {self.opcode:#x} is reserved: use one of "
                        f"{', '.join(f'{o.name}={o.value:#x}' for o in Opcode)} (5.2)"
                    ) from None
            else:
                raise TypeError(f"opcode must be an Opcode, got {type(self.opcode).__name__}")
        if isinstance(self.payload, str):
            raise TypeError("payload must be bytes: encode text first, e.g. 'Hello'.encode()")
        if not isinstance(self.payload, _BYTES_LIKE):
            raise TypeError(f"payload must be bytes, got {type(self.payload).__name__}")
        self.payload = bytes(self.payload)

    def __str__(self) -> str:
        """Read like ``TEXT 'Hello' [5 bytes]``."""
        size = f"{len(self.payload)} byte{'' if len(self.payload) == 1 else 's'}"
        extra = "" if self.fin else ", continued"
        preview = self._preview()
        return f"{self.opcode.name} {preview}{' ' if preview else ''}[{size}{extra}]"

    def _preview(self, limit: int = 60) -> str:
        data = self.payload
        if self.opcode is Opcode.CLOSE:
            try:
                return str(parse_close(data))
            except ProtocolError:
                pass  # An invalid close payload is shown as raw bytes.
        if self.opcode in (Opcode.TEXT, Opcode.CONT) and not self.rsv1:
            try:
                text = data.decode()
            except UnicodeDecodeError:
                pass  # A fragment can end mid-character; show hex instead.
            else:
                return repr(text if len(text) <= limit else text[: limit - 3] + "...")
        if not data:
            return ""
        shown = data[: limit // 3].hex(" ")
        return shown + (" ..." if len(data) > limit // 3 else "")

    @property
    def is_control(self) -> bool:
        """Whether this is a close, ping or pong frame (section 5.5)."""
        return self.opcode in CONTROL_OPCODES

    def check(self, *, allow_rsv1: bool = False) -> None:
        """Check the rules of section 5 that one frame can break on its own.

        Args:
            allow_rsv1: Whether an extension that uses RSV1 (permessage-deflate)
                was negotiated.

        Raises:
            ProtocolError: With close code 1002.
        """
        _check_rules(
            self.opcode,
            self.fin,
            (self.rsv1, self.rsv2, self.rsv3),
            len(self.payload),
            allow_rsv1=allow_rsv1,
        )


def _check_rules(
    opcode: Opcode,
    fin: bool,
    rsv: tuple[bool, bool, bool],
    length: int,
    *,
    allow_rsv1: bool,
) -> None:
    """The rules of :meth:`Frame.check`, on a frame's fields.

    The decoder applies them to a header, before the payload has arrived, so
    they take the payload's length rather than the payload.
    """
    rsv1, rsv2, rsv3 = rsv
    if rsv2 or rsv3 or (rsv1 and not allow_rsv1):
        raise ProtocolError("reserved bit set, but no extension was negotiated (5.2)")
    if opcode in CONTROL_OPCODES:
        if length > MAX_CONTROL_PAYLOAD:
            raise ProtocolError(
                f"{opcode.name} frame of {length} bytes: "
                f"control frames carry at most {MAX_CONTROL_PAYLOAD} (5.5)"
            )
        if not fin:
            raise ProtocolError(f"fragmented {opcode.name} frame (5.5)")
        if rsv1:
            raise ProtocolError(f"RSV1 set on a {opcode.name} frame (RFC 7692 6)")


def new_mask_key() -> bytes:
    """Return a fresh random 4-byte masking key (section 5.3: unpredictable)."""
    return os.urandom(4)


def apply_mask(data: bytes, mask_key: bytes) -> bytes:
    """XOR ``data`` with the 4-byte ``mask_key`` repeated (section 5.3).

    Octet ``i`` of the result is octet ``i`` of ``data`` XOR octet ``i % 4`` of
    the key. Masking and unmasking are the same operation.

    >>> apply_mask(b"Hello", bytes.fromhex("37fa213d")).hex(" ")
    '7f 9f 4d 51 58'

    This is the RFC's definition, one byte at a time: clear, and slow for
    long payloads (about 100 ms per MiB). :func:`encode` and
    :class:`FrameDecoder` use :func:`wslab.utils.apply_mask`, which gives
    the same bytes a hundred times faster.
    """
    data = _require_bytes(data, "data")
    mask_key = _check_mask_key(mask_key)
    return bytes(octet ^ mask_key[i % 4] for i, octet in enumerate(data))


def encode(frame: Frame, mask_key: bytes | None = None) -> bytes:
    """Serialize ``frame`` to bytes, masked if a ``mask_key`` is given.

    Clients must mask (pass ``new_mask_key()``, or fixed bytes to get
    reproducible output); servers must not (section 5.1).

    Raises:
        TypeError: ``frame`` is not a :class:`Frame`.
        ValueError: ``mask_key`` is not exactly 4 bytes.
        ProtocolError: The frame breaks a rule of section 5 (see ``Frame.check``).
    """
    if not isinstance(frame, Frame):
        raise TypeError(f"encode() takes a Frame, got {type(frame).__name__}")
    frame.check(allow_rsv1=True)
    first = (
        (0x80 if frame.fin else 0)
        | (0x40 if frame.rsv1 else 0)
        | (0x20 if frame.rsv2 else 0)
        | (0x10 if frame.rsv3 else 0)
        | frame.opcode
    )
    mask_bit = 0x80 if mask_key is not None else 0
    length = len(frame.payload)
    if length < 126:
        header = struct.pack("!BB", first, mask_bit | length)
    elif length < 2**16:
        header = struct.pack("!BBH", first, mask_bit | 126, length)
    else:
        header = struct.pack("!BBQ", first, mask_bit | 127, length)
    if mask_key is None:
        return header + frame.payload
    mask_key = _check_mask_key(mask_key)
    return header + mask_key + utils.apply_mask(frame.payload, mask_key)


class Header(NamedTuple):
    """The decoded header of one frame, before its payload.

    A named tuple rather than a dataclass: the decoder makes one per frame,
    and a tuple is built in half the time (small frames decode 10% faster).

    Attributes:
        fin, rsv1, rsv2, rsv3: The flag bits of the first byte.
        opcode: The raw 4-bit opcode (it may be a reserved value).
        masked: The MASK bit.
        length: The payload length, after the 16- or 64-bit extension.
        length_bits: 7, 16 or 64: which length form was used.
        mask_key: The 4-byte masking key, or None.
        size: How many bytes the header takes (2 to 14).
    """

    fin: bool
    rsv1: bool
    rsv2: bool
    rsv3: bool
    opcode: int
    masked: bool
    length: int
    length_bits: int
    mask_key: bytes | None
    size: int


def parse_header(data: bytes | bytearray) -> Header | None:
    """Decode a frame header from the start of ``data``.

    Returns:
        The header, or None if ``data`` does not hold all of it yet.

    Raises:
        ProtocolError: 1002 if a 64-bit length has its top bit set (5.2).
    """
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError(f"data must be bytes, got {type(data).__name__}")
    if len(data) < 2:
        return None
    first, second = data[0], data[1]
    masked = bool(second & 0x80)
    length = second & 0x7F
    size, length_bits = 2, 7
    if length == 126:
        size, length_bits = 4, 16
        if len(data) < size:
            return None
        (length,) = struct.unpack("!H", data[2:4])
    elif length == 127:
        size, length_bits = 10, 64
        if len(data) < size:
            return None
        (length,) = struct.unpack("!Q", data[2:10])
        if length >> 63:
            raise ProtocolError("64-bit payload length with its top bit set (5.2)")
    mask_key = None
    if masked:
        if len(data) < size + 4:
            return None
        mask_key = bytes(data[size : size + 4])
        size += 4
    return Header(
        fin=bool(first & 0x80),
        rsv1=bool(first & 0x40),
        rsv2=bool(first & 0x20),
        rsv3=bool(first & 0x10),
        opcode=first & 0x0F,
        masked=masked,
        length=length,
        length_bits=length_bits,
        mask_key=mask_key,
        size=size,
    )


class RawFrame(NamedTuple):
    """A decoded frame together with the exact bytes it came from."""

    frame: Frame
    header: Header
    data: bytes


class FrameDecoder:
    """Turn a stream of bytes into frames, whatever the chunking.

    Feed it bytes as they arrive from the socket; it returns every frame that
    is complete so far and keeps the rest for the next call::

        decoder = FrameDecoder(side=Side.CLIENT)
        decoder.feed(b"\\x81\\x05Hel")   # -> []
        decoder.feed(b"lo")              # -> [Frame(TEXT, b'Hello')]

    The start of a frame's payload can be read before the frame is complete,
    with :meth:`peek_header` and :meth:`read_partial`.

    Args:
        side: Which end we are. A server requires masked frames from its
            clients, a client requires unmasked frames (section 5.1). None
            accepts both, for a tap that only watches.
        max_size: Largest payload accepted, in bytes; a larger frame fails with
            1009 as soon as its header arrives, before the payload is buffered.
            None for no limit.
        allow_rsv1: Whether RSV1 is allowed (permessage-deflate negotiated).
    """

    def __init__(
        self,
        side: Side | None,
        *,
        max_size: int | None = DEFAULT_MAX_SIZE,
        allow_rsv1: bool = False,
    ) -> None:
        if side is not None and not isinstance(side, Side):
            raise TypeError(f"side must be Side.CLIENT, Side.SERVER or None, got {side!r}")
        self.side = side
        self.max_size = _check_max_size(max_size)
        self.allow_rsv1 = allow_rsv1
        # Bytes received that are not part of a returned frame yet, as they came.
        self._buffer = bytearray()
        # The start of the payload of the incomplete frame at the head of the
        # buffer, already unmasked by read_partial().
        self._unmasked = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        """Add received bytes; return the frames they complete."""
        return [raw.frame for raw in self.iter_raw(data)]

    def feed_raw(self, data: bytes) -> list[RawFrame]:
        """Like :meth:`feed`, but keep each frame's header and raw bytes."""
        return list(self.iter_raw(data))

    def iter_raw(self, data: bytes) -> Iterator[RawFrame]:
        """Add received bytes; yield the frames they complete, one at a time.

        Unlike :meth:`feed_raw`, the frames that arrived before a broken one
        are yielded before its :class:`ProtocolError` is raised, so a
        connection can deliver them before it fails (section 7.1.7).
        """
        # Buffer now, not on the first next(): the bytes must not be lost if
        # the caller never iterates.
        self._buffer += _require_bytes(data, "data")
        return self._complete_frames()

    @property
    def buffered(self) -> int:
        """How many bytes wait for the rest of their frame."""
        return len(self._buffer)

    def peek_header(self) -> Header | None:
        """Return the header of the frame that is still arriving, if it is complete.

        Call it after :meth:`feed` has returned every complete frame.

        Raises:
            ProtocolError: The header breaks a rule, as in :meth:`feed`.
        """
        if (header := parse_header(self._buffer)) is None:
            return None
        self._check_header(header)
        return header

    def read_partial(self) -> bytes:
        """Unmask and return what arrived of that frame's payload since the last call.

        The frame that :meth:`feed` returns once it is complete still carries
        its whole payload. A connection uses this to find invalid UTF-8 in a
        long text frame as soon as it arrives (section 8.1).
        """
        header = self.peek_header()
        if header is None:
            return b""
        done = len(self._unmasked)
        stop = min(len(self._buffer), header.size + header.length)
        with memoryview(self._buffer) as buffer:
            new = _unmask(buffer[header.size + done : stop], header.mask_key, offset=done)
        self._unmasked += new
        return new

    def _complete_frames(self) -> Iterator[RawFrame]:
        # Every header takes at least 2 bytes: with fewer, don't even try.
        while len(self._buffer) >= 2 and (header := parse_header(self._buffer)) is not None:
            opcode = self._check_header(header)
            end = header.size + header.length
            if len(self._buffer) < end:
                return
            # A memoryview copies the bytes once; slicing the bytearray would
            # copy them twice, and is 40 times slower on a MiB.
            with memoryview(self._buffer) as buffer:
                raw = bytes(buffer[:end])
            del self._buffer[:end]
            done = len(self._unmasked)  # payload bytes read_partial() unmasked
            rest = _unmask(memoryview(raw)[header.size + done :], header.mask_key, offset=done)
            payload = bytes(self._unmasked) + rest if done else rest
            self._unmasked.clear()
            frame = Frame(opcode, payload, header.fin, header.rsv1, header.rsv2, header.rsv3)
            yield RawFrame(frame, header, raw)

    def _check_header(self, header: Header) -> Opcode:
        """Apply every rule that the header alone can break, before buffering.

        Returns:
            The header's opcode, as an :class:`Opcode`.
        """
        opcode = _OPCODES.get(header.opcode)
        if opcode is None:
            raise ProtocolError(f"reserved opcode {header.opcode:#x} (5.2)")
        if self.side is Side.SERVER and not header.masked:
            raise ProtocolError("client frame is not masked (5.1)")
        if self.side is Side.CLIENT and header.masked:
            raise ProtocolError("server frame is masked (5.1)")
        # The length comes from the header, so a frame that is too big fails
        # before its payload is buffered.
        _check_rules(
            opcode,
            header.fin,
            (header.rsv1, header.rsv2, header.rsv3),
            header.length,
            allow_rsv1=self.allow_rsv1,
        )
        if self.max_size is not None and header.length > self.max_size:
            raise ProtocolError(
                f"frame of {header.length} bytes is over the limit of {self.max_size}",
                1009,
            )
        return opcode


def _unmask(data: memoryview, mask_key: bytes | None, offset: int = 0) -> bytes:
    """Unmask payload bytes that start ``offset`` bytes into the payload.

    Octet ``i`` of the payload goes with octet ``i % 4`` of the key (5.3), so
    a piece that starts at ``offset`` starts with key octet ``offset % 4``.
    """
    if mask_key is None:
        return bytes(data)
    if turn := offset % 4:
        mask_key = mask_key[turn:] + mask_key[:turn]
    return utils.apply_mask(data, mask_key)


def _check_mask_key(mask_key: object) -> bytes:
    if not isinstance(mask_key, _BYTES_LIKE):
        raise TypeError(
            f"mask_key must be 4 bytes, got {type(mask_key).__name__}; "
            "try new_mask_key() or b'\\x37\\xfa\\x21\\x3d'"
        )
    if len(mask_key) != 4:
        raise ValueError(f"mask_key must be exactly 4 bytes, got {len(mask_key)} (5.3)")
    return bytes(mask_key)


def _check_max_size(max_size: int | None) -> int | None:
    if max_size is not None and (
        not isinstance(max_size, int) or isinstance(max_size, bool) or max_size < 0
    ):
        raise ValueError(
            f"max_size must be a number of bytes (an int >= 0) or None, got {max_size!r}"
        )
    return max_size


def _require_bytes(value: object, name: str) -> bytes:
    if isinstance(value, str):
        raise TypeError(f"{name} must be bytes, got str; encode it first, e.g. s.encode()")
    if not isinstance(value, _BYTES_LIKE):
        raise TypeError(f"{name} must be bytes, got {type(value).__name__}")
    return bytes(value)


# dataclasses.replace is handy in lessons: replace(frame, fin=False).
replace = dataclasses.replace
