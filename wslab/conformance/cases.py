"""The test cases of the conformance checker, as data.

A :class:`Case` says what to send after the opening handshake (its steps),
and what a conforming server does about it (its :class:`Expect`). A
:class:`HandshakeCase` changes the opening handshake itself. Nothing here
touches a socket: :mod:`wslab.conformance.runner` plays the cases and
:mod:`wslab.conformance.grading` grades what happened.

The cases follow the Autobahn|Testsuite (https://github.com/crossbario/autobahn-testsuite),
the reference test suite of RFC 6455, chapter by chapter: the ``autobahn``
field names the Autobahn case that a case follows, when there is one. Chapters
8 (masking), 10 (the opening handshake) and some cases in other chapters are
wslab's own. Like Autobahn, the checker expects an *echo server*: every text
or binary message comes back unchanged (a fixed prefix on text, such as
wslab's ``You sent: ``, is detected and allowed).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from ..frames import Opcode
from .wire import deflate, forge

__all__ = [
    "CASES",
    "CATEGORIES",
    "Case",
    "Event",
    "Expect",
    "FrameSpec",
    "HandshakeCase",
    "Pause",
    "Send",
    "Trickle",
    "select",
]

#: The categories, in the order of the report.
CATEGORIES = (
    "framing",
    "pings",
    "reserved bits",
    "opcodes",
    "fragmentation",
    "utf-8",
    "closing",
    "masking",
    "limits",
    "handshake",
    "compression",
)

_RSV_NAMES = {4: "RSV1", 2: "RSV2", 1: "RSV3"}


# -- what to send ----------------------------------------------------------------


@dataclass(frozen=True)
class FrameSpec:
    """One frame to send, valid or not (see :func:`wslab.conformance.wire.forge`).

    Attributes:
        opcode: 0 to 15; 3-7 and 11-15 are reserved (section 5.2).
        payload: The payload, before masking.
        fin: The FIN bit.
        rsv: The reserved bits as a number: 4 is RSV1, 2 is RSV2, 1 is RSV3.
        masked: Whether the frame is masked, as a client's must be (5.1).
        mask_key: A fixed masking key; None for a fresh random one per send.
        length_bits: Force a 16- or 64-bit length field.
        length_field: Announce this length instead of the payload's.
    """

    opcode: int
    payload: bytes = b""
    fin: bool = True
    rsv: int = 0
    masked: bool = True
    mask_key: bytes | None = None
    length_bits: int | None = None
    length_field: int | None = None

    def to_bytes(self) -> bytes:
        """The frame on the wire, masked with a fresh key."""
        return forge(
            self.opcode,
            self.payload,
            fin=self.fin,
            rsv=self.rsv,
            masked=self.masked,
            mask_key=self.mask_key,
            length_bits=self.length_bits,
            length_field=self.length_field,
        )

    def __repr__(self) -> str:
        return f"<FrameSpec {self}>"

    def __str__(self) -> str:
        """Read like ``TEXT 'Hello' [5 bytes, not final, RSV1]``."""
        try:
            name = Opcode(self.opcode).name
        except ValueError:
            name = f"opcode {self.opcode:#x} (reserved)"
        notes = [f"{len(self.payload)} byte{'' if len(self.payload) == 1 else 's'}"]
        if not self.fin:
            notes.append("not final")
        notes += [bit for value, bit in _RSV_NAMES.items() if self.rsv & value]
        if not self.masked:
            notes.append("NOT masked")
        if self.length_field is not None:
            notes.append(f"announces {self.length_field} bytes")
        elif self.length_bits is not None:
            notes.append(f"{self.length_bits}-bit length")
        return f"{name} {_preview(self.payload)}[{', '.join(notes)}]"


@dataclass(frozen=True)
class Send:
    """Write frames to the socket.

    Attributes:
        frames: The frames, in order.
        chop: Write the bytes in pieces of this many bytes (1: octet by
            octet), to check that the server reassembles a TCP stream.
        frame_by_frame: One write per frame.
    """

    frames: tuple[FrameSpec, ...]
    chop: int | None = None
    frame_by_frame: bool = False


@dataclass(frozen=True)
class Pause:
    """Wait a moment (the run's ``pause``) and watch what the server does.

    Attributes:
        label: If the connection is still open after the pause, record a
            ``pause`` event with this label, so that an expectation can say
            "the server must close *before* this point". None records nothing.
    """

    label: str | None = None


@dataclass(frozen=True)
class Trickle:
    """Send one frame in pieces, pausing between them.

    The pauses are labelled A, B, C... and recorded as in :class:`Pause`.

    Attributes:
        frame: The frame.
        cuts: Offsets in the payload where a piece ends.
    """

    frame: FrameSpec
    cuts: tuple[int, ...]


Step = Send | Pause | Trickle


# -- what should come back ------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """Something the server did that an expectation can name.

    Attributes:
        kind: ``"text"``, ``"binary"``, ``"pong"``, ``"pause"`` (a pause
            passed with the connection still open) or ``"bad text"`` (a text
            message that is not UTF-8, which a server must never send).
        data: The message, the pong's payload or the pause's label.
    """

    kind: str
    data: str | bytes = b""

    @classmethod
    def text(cls, data: str | bytes) -> Event:
        """An echoed text message (bytes are decoded from UTF-8)."""
        return cls("text", data.decode() if isinstance(data, bytes) else data)

    @classmethod
    def binary(cls, data: bytes) -> Event:
        """An echoed binary message."""
        return cls("binary", data)

    @classmethod
    def pong(cls, data: bytes = b"") -> Event:
        """A pong with this payload."""
        return cls("pong", data)

    @classmethod
    def pause(cls, label: str) -> Event:
        """The pause with this label passed and the connection was still open."""
        return cls("pause", label)

    def __repr__(self) -> str:
        return f"<Event {self}>"

    def __str__(self) -> str:
        if self.kind == "bad text":
            return "a text message that is not UTF-8"
        if self.kind == "pause":
            label = self.data if isinstance(self.data, str) else self.data.decode()
            return f"still open after pause {label}"
        if isinstance(self.data, str):
            if len(self.data) > 40:
                return f"{self.kind} {self.data[:30]!r}... ({len(self.data)} characters)"
            return f"{self.kind} {self.data!r}"
        if len(self.data) > 12:
            return f"{self.kind} {self.data[:12].hex(' ')} ... ({len(self.data)} bytes)"
        return f"{self.kind} {self.data!r}"


@dataclass(frozen=True)
class Expect:
    """What a conforming server does, in the terms of Autobahn's grading.

    Attributes:
        ok: The events that make the case OK, in order.
        non_strict: Other events that are acceptable but not ideal, or None.
        server_closes: True if the server must close (fail the connection);
            False if the checker closes once the events have arrived.
        codes: The close codes the server may send (or send none).
        clean: Whether the closing handshake must complete, both close
            frames exchanged; a server failing the connection may just drop TCP.
        wrong_code_fails: A wrong close code makes the case FAILED (the
            closing cases), not only NON-STRICT.
        wrong_endpoint_fails: If the checker has to close, the server did not
            notice the problem at all: FAILED (the UTF-8 cases).
        informational: The RFC leaves the outcome open: report what happened.
        limit_codes: Closing with one of these codes instead of echoing is a
            size limit, which section 10.4 asks for: INFORMATIONAL, not FAILED.
    """

    ok: tuple[Event, ...] = ()
    non_strict: tuple[Event, ...] | None = None
    server_closes: bool = False
    codes: tuple[int, ...] = (1000,)
    clean: bool = True
    wrong_code_fails: bool = False
    wrong_endpoint_fails: bool = False
    informational: bool = False
    limit_codes: tuple[int, ...] = ()

    def __str__(self) -> str:
        """The expectation in words, for the report."""
        if self.informational:
            return "Any behaviour: the RFC leaves this case open; the report says what happened."
        got = _events_words(self.ok)
        got = got[0].upper() + got[1:]
        if self.non_strict is not None:
            got += f" (NON-STRICT: {_events_words(self.non_strict)})"
        codes = " or ".join(str(code) for code in self.codes)
        if self.server_closes:
            end = (
                f"then the server fails the connection: a close frame with {codes}, or TCP closed."
            )
        elif self.clean:
            end = f"then the closing handshake completes with {codes}."
        else:
            end = f"then the server answers the close with {codes}, or just closes TCP."
        if self.limit_codes:
            end += f" Refusing with {' or '.join(map(str, self.limit_codes))} is a size limit."
        return f"{got}; {end}"


def _events_words(events: tuple[Event, ...]) -> str:
    """Say what the server does: ``the server sends back pong b'', ...``."""
    pauses = [str(event.data) for event in events if event.kind == "pause"]
    answers = [event for event in events if event.kind != "pause"]
    shown = ", ".join(str(event) for event in answers[:4])
    if len(answers) > 4:
        shown += f" and {len(answers) - 4} more"
    words = f"the server sends back {shown or 'nothing'}"
    if pauses:
        words = f"the connection stays open through pause {' and '.join(pauses)}" + (
            f" and {words}" if answers else ""
        )
    return words


# -- the cases ------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One test case after the opening handshake.

    Attributes:
        id: Like ``"5.6"``: the chapter, then the case.
        category: One of :data:`CATEGORIES`.
        section: The RFC 6455 section the case checks (RFC 7692 for compression).
        description: What the case sends, in words.
        steps: What to send, in order.
        expect: What a conforming server does.
        autobahn: The Autobahn|Testsuite case this one follows, if any.
        deflate: Offer permessage-deflate (RFC 7692); the case is
            UNIMPLEMENTED if the server does not accept it.
        patience: How many timeouts the server may take (big messages).
    """

    id: str
    category: str
    section: str
    description: str
    steps: tuple[Step, ...]
    expect: Expect
    autobahn: str | None = None
    deflate: bool = False
    patience: float = 1.0

    def __repr__(self) -> str:
        # The steps can hold megabytes: show what a person reads instead.
        return f"<Case {self.id} ({self.category}): {self.description}>"


@dataclass(frozen=True)
class HandshakeCase:
    """One test case of the opening handshake (section 4).

    The request starts as a valid one for the URL (the one
    :func:`wslab.handshake.client_request` builds) and is then changed.

    Attributes:
        id, category, section, description: As in :class:`Case`.
        method: The request method.
        version: The HTTP version of the request line.
        path: The request path, or None for the URL's path.
        drop: Headers to leave out.
        replace: Headers to set to another value (added if absent).
        add: Headers to add, after the others (duplicates included).
        chop: Write the request in pieces of this many bytes.
        accept: True if ``101 Switching Protocols`` is the right answer.
        statuses: The refusals graded OK when ``accept`` is False.
        check: The name of an extra check in :data:`wslab.conformance.grading.CHECKS`.
        informational: The RFC leaves the answer open.
    """

    id: str
    section: str
    description: str
    method: str = "GET"
    version: str = "HTTP/1.1"
    path: str | None = None
    drop: tuple[str, ...] = ()
    replace: tuple[tuple[str, str], ...] = ()
    add: tuple[tuple[str, str], ...] = ()
    chop: int | None = None
    accept: bool = False
    statuses: tuple[int, ...] = (400,)
    check: str | None = None
    informational: bool = False
    category: str = "handshake"
    autobahn: str | None = None
    expect: str = field(default="", repr=False)

    def __repr__(self) -> str:
        return f"<HandshakeCase {self.id}: {self.description}>"

    def __post_init__(self) -> None:
        if not self.expect:
            if self.informational:
                text = "Any answer: the RFC leaves it to the server; the report says which."
            elif self.accept:
                text = "101 Switching Protocols with the right Sec-WebSocket-Accept."
            else:
                codes = " or ".join(map(str, self.statuses))
                text = f"A refusal: {codes} (another 4xx is NON-STRICT; 101 is FAILED)."
            object.__setattr__(self, "expect", text)


AnyCase = Case | HandshakeCase


# -- small builders, so that the tables below read like the RFC ------------------


def _bytes(payload: str | bytes) -> bytes:
    return payload.encode() if isinstance(payload, str) else payload


def text(payload: str | bytes = b"", **flags: object) -> FrameSpec:
    """A TEXT frame (opcode 0x1)."""
    return FrameSpec(Opcode.TEXT, _bytes(payload), **flags)  # type: ignore[arg-type]


def binary(payload: bytes = b"", **flags: object) -> FrameSpec:
    """A BINARY frame (opcode 0x2)."""
    return FrameSpec(Opcode.BINARY, payload, **flags)  # type: ignore[arg-type]


def cont(payload: str | bytes = b"", **flags: object) -> FrameSpec:
    """A continuation frame (opcode 0x0)."""
    return FrameSpec(Opcode.CONT, _bytes(payload), **flags)  # type: ignore[arg-type]


def ping(payload: str | bytes = b"", **flags: object) -> FrameSpec:
    """A PING frame (opcode 0x9)."""
    return FrameSpec(Opcode.PING, _bytes(payload), **flags)  # type: ignore[arg-type]


def pong(payload: str | bytes = b"", **flags: object) -> FrameSpec:
    """A PONG frame (opcode 0xA)."""
    return FrameSpec(Opcode.PONG, _bytes(payload), **flags)  # type: ignore[arg-type]


def close(code: int | None = 1000, reason: bytes = b"", **flags: object) -> FrameSpec:
    """A CLOSE frame (opcode 0x8) with any code, valid or not; None for no code."""
    payload = b"" if code is None else struct.pack("!H", code) + reason
    return FrameSpec(Opcode.CLOSE, payload, **flags)  # type: ignore[arg-type]


def send(*frames: FrameSpec, chop: int | None = None, frame_by_frame: bool = False) -> Send:
    """A :class:`Send` step."""
    return Send(frames, chop, frame_by_frame)


def echo(*events: Event, non_strict: tuple[Event, ...] | None = None) -> Expect:
    """The server answers with ``events``; then the checker closes normally."""
    return Expect(ok=events, non_strict=non_strict)


def failure(
    code: int = 1002,
    *,
    ok: tuple[Event, ...] = (),
    non_strict: tuple[Event, ...] | None = None,
    also: tuple[int, ...] = (),
    utf8: bool = False,
) -> Expect:
    """The server fails the connection (section 7.1.7), with ``code`` (or ``also``)."""
    return Expect(
        ok=ok,
        non_strict=non_strict,
        server_closes=True,
        codes=(code, *also),
        clean=False,
        wrong_endpoint_fails=utf8,
    )


def close_answer(*codes: int, clean: bool = True) -> Expect:
    """The checker sent a close frame; the server answers with one of ``codes``."""
    return Expect(codes=codes, clean=clean, wrong_code_fails=True)


def limit(*events: Event, codes: tuple[int, ...] = (1009,)) -> Expect:
    """A big message: echoed, or refused with ``codes`` (a size limit, 10.4)."""
    return Expect(ok=events, limit_codes=codes)


# -- chapter 1: framing ---------------------------------------------------------

_LENGTHS = (
    (0, "an empty payload"),
    (125, "the longest 7-bit length"),
    (126, "the shortest 16-bit length"),
    (127, "a 16-bit length"),
    (128, "a 16-bit length"),
    (65535, "the longest 16-bit length"),
    (65536, "the shortest 64-bit length"),
)


def _framing() -> Iterator[Case]:
    for number, (size, words) in enumerate(_LENGTHS, 1):
        payload = b"*" * size
        yield Case(
            f"1.1.{number}",
            "framing",
            "5.2, 5.6",
            f"A text message of {size} bytes ({words}).",
            (send(text(payload)),),
            echo(Event.text(payload)),
            autobahn=f"1.1.{number}",
        )
    big = b"*" * 65536
    yield Case(
        "1.1.8",
        "framing",
        "5.2",
        "A text message of 65536 bytes, written in pieces of 997 bytes.",
        (send(text(big), chop=997),),
        echo(Event.text(big)),
        autobahn="1.1.8",
    )
    for number, (size, words) in enumerate(_LENGTHS, 1):
        payload = b"\xfe" * size
        yield Case(
            f"1.2.{number}",
            "framing",
            "5.2, 5.6",
            f"A binary message of {size} bytes ({words}).",
            (send(binary(payload)),),
            echo(Event.binary(payload)),
            autobahn=f"1.2.{number}",
        )
    yield Case(
        "1.2.8",
        "framing",
        "5.2",
        "A binary message of 65536 bytes, written in pieces of 997 bytes.",
        (send(binary(b"\xfe" * 65536), chop=997),),
        echo(Event.binary(b"\xfe" * 65536)),
        autobahn="1.2.8",
    )
    yield Case(
        "1.3.1",
        "framing",
        "5.2",
        "'Hello' with its length in the 16-bit form: senders must use the shortest form, "
        "but the RFC does not tell receivers to refuse a longer one.",
        (send(text("Hello", length_bits=16)),),
        Expect(ok=(Event.text("Hello"),), informational=True),
    )
    yield Case(
        "1.3.2",
        "framing",
        "5.2",
        "'Hello' with its length in the 64-bit form (not the shortest form).",
        (send(text("Hello", length_bits=64)),),
        Expect(ok=(Event.text("Hello"),), informational=True),
    )
    yield Case(
        "1.3.3",
        "framing",
        "5.2",
        "A 64-bit length with its most significant bit set, which must be 0.",
        (send(text("Hello", length_field=2**63 + 5)),),
        failure(1002, also=(1009,)),
    )
    yield Case(
        "1.3.4",
        "framing",
        "5.2",
        "Two text messages and a binary message in a single write: echoed in order.",
        (send(text("one"), binary(b"\x02"), text("three")),),
        echo(Event.text("one"), Event.binary(b"\x02"), Event.text("three")),
    )
    yield Case(
        "1.3.5",
        "framing",
        "5.2",
        "A text message written one byte at a time.",
        (send(text("Hello, world!"), chop=1),),
        echo(Event.text("Hello, world!")),
    )


# -- chapter 2: pings and pongs -------------------------------------------------


def _pings() -> Iterator[Case]:
    def case(number: str, description: str, steps: tuple[Step, ...], expect: Expect) -> Case:
        return Case(number, "pings", "5.5.2, 5.5.3", description, steps, expect, number)

    yield case("2.1", "A ping without payload.", (send(ping()),), echo(Event.pong()))
    yield case(
        "2.2",
        "A ping with a short text payload.",
        (send(ping("Hello, world!")),),
        echo(Event.pong(b"Hello, world!")),
    )
    odd = b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff"
    yield case(
        "2.3",
        "A ping with a binary payload that is not UTF-8.",
        (send(ping(odd)),),
        echo(Event.pong(odd)),
    )
    yield case(
        "2.4",
        "A ping with 125 bytes, the most a control frame may carry.",
        (send(ping(b"\xfe" * 125)),),
        echo(Event.pong(b"\xfe" * 125)),
    )
    yield Case(
        "2.5",
        "pings",
        "5.5",
        "A ping with 126 bytes: over the 125-byte limit of control frames.",
        (send(ping(b"\xfe" * 126)),),
        failure(1002),
        "2.5",
    )
    yield case(
        "2.6",
        "A ping with 125 bytes, written one byte at a time.",
        (send(ping(b"\xfe" * 125), chop=1),),
        echo(Event.pong(b"\xfe" * 125)),
    )
    yield case(
        "2.7",
        "An unsolicited pong without payload: the server must not answer it.",
        (send(pong()),),
        echo(),
    )
    yield case(
        "2.8",
        "An unsolicited pong with a payload: the server must not answer it.",
        (send(pong("unsolicited pong payload")),),
        echo(),
    )
    yield case(
        "2.9",
        "An unsolicited pong, then a ping: only the ping gets a pong.",
        (send(pong("unsolicited"), ping("ping payload")),),
        echo(Event.pong(b"ping payload")),
    )
    pings = tuple(ping(f"payload-{i}") for i in range(10))
    pongs = tuple(Event.pong(f"payload-{i}".encode()) for i in range(10))
    yield case(
        "2.10",
        "Ten pings in one write. The RFC lets a server answer only the last one "
        "(NON-STRICT); answering all is better.",
        (send(*pings),),
        echo(*pongs, non_strict=(pongs[-1],)),
    )
    yield case(
        "2.11",
        "Ten pings, written one byte at a time.",
        (send(*pings, chop=1),),
        echo(*pongs, non_strict=(pongs[-1],)),
    )
    yield Case(
        "2.12",
        "pings",
        "5.5",
        "A pong with 126 bytes: over the 125-byte limit of control frames.",
        (send(pong(b"\xfe" * 126)),),
        failure(1002),
    )


# -- chapter 3: reserved bits ---------------------------------------------------


def _reserved_bits() -> Iterator[Case]:
    hello = "Hello, world!"

    def case(number: str, description: str, steps: tuple[Step, ...], expect: Expect) -> Case:
        return Case(number, "reserved bits", "5.2", description, steps, expect, number)

    yield case("3.1", "A text message with RSV3 set.", (send(text(hello, rsv=1)),), failure(1002))
    after_echo = failure(1002, ok=(Event.text(hello),), non_strict=())
    yield case(
        "3.2",
        "A text message, then one with RSV2 set, then a ping: echo the first, "
        "fail on the second, never answer the ping.",
        (send(text(hello), text(hello, rsv=2), ping()),),
        after_echo,
    )
    yield case(
        "3.3",
        "Like 3.2 with RSV2 and RSV3 set, one write per frame.",
        (send(text(hello), text(hello, rsv=3), ping(), frame_by_frame=True),),
        after_echo,
    )
    yield case(
        "3.4",
        "Like 3.2 with RSV1 set, written one byte at a time.",
        (send(text(hello), text(hello, rsv=4), ping(), chop=1),),
        after_echo,
    )
    yield case(
        "3.5",
        "A binary message with RSV1 and RSV3 set.",
        (send(binary(b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff", rsv=5)),),
        failure(1002),
    )
    yield case("3.6", "A ping with RSV1 and RSV2 set.", (send(ping(hello, rsv=6)),), failure(1002))
    yield case(
        "3.7", "A close frame with all three RSV bits set.", (send(close(rsv=7)),), failure(1002)
    )


# -- chapter 4: reserved opcodes ------------------------------------------------


def _opcodes() -> Iterator[Case]:
    hello = "Hello, world!"
    after_echo = failure(1002, ok=(Event.text(hello),), non_strict=())
    # The shapes of Autobahn's cases 4.x.1 to 4.x.5: (words, payload?, between?, chop).
    shapes = (
        ("an empty frame", False, False, None),
        ("a frame with a payload", True, False, None),
        ("a text message, then an empty frame, then a ping", False, True, None),
        ("a text message, then a frame with a payload, then a ping", True, True, None),
        ("a text message, a frame with a payload, a ping, one byte at a time", True, True, 1),
    )
    for group, kind, first in ((1, "data", 3), (2, "control", 11)):
        opcodes = range(first, first + len(shapes))
        for number, (opcode, shape) in enumerate(zip(opcodes, shapes, strict=True), 1):
            words, with_payload, between, chop = shape
            odd = FrameSpec(opcode, hello.encode() if with_payload else b"")
            yield Case(
                f"4.{group}.{number}",
                "opcodes",
                "5.2",
                f"Reserved {kind} opcode {opcode:#x}: {words}.",
                (send(*((text(hello), odd, ping()) if between else (odd,)), chop=chop),),
                after_echo if between else failure(1002),
                f"4.{group}.{number}",
            )


# -- chapter 5: fragmentation ---------------------------------------------------


def _fragmentation() -> Iterator[Case]:
    f1, f2 = "fragment1", "fragment2"
    whole = Event.text(f1 + f2)

    def case(
        number: str,
        description: str,
        steps: tuple[Step, ...],
        expect: Expect,
        section: str = "5.4",
        autobahn: str | None = "same",
    ) -> Case:
        source = number if autobahn == "same" else autobahn
        return Case(number, "fragmentation", section, description, steps, expect, source)

    yield case(
        "5.1",
        "A ping in two fragments: control frames must not be fragmented.",
        (send(ping(f1, fin=False), cont(f2)),),
        failure(1002),
        "5.4, 5.5",
    )
    yield case(
        "5.2",
        "A pong in two fragments: control frames must not be fragmented.",
        (send(pong(f1, fin=False), cont(f2)),),
        failure(1002),
        "5.4, 5.5",
    )
    two = (text(f1, fin=False), cont(f2))
    yield case("5.3", "A text message in two fragments.", (send(*two),), echo(whole))
    yield case(
        "5.4",
        "A text message in two fragments, one write per frame.",
        (send(*two, frame_by_frame=True),),
        echo(whole),
    )
    yield case(
        "5.5",
        "A text message in two fragments, written one byte at a time.",
        (send(*two, chop=1),),
        echo(whole),
    )
    with_ping = (text(f1, fin=False), ping("ping payload"), cont(f2))
    answer = echo(Event.pong(b"ping payload"), whole)
    yield case(
        "5.6",
        "A text message in two fragments with a ping between them: the pong comes first.",
        (send(*with_ping),),
        answer,
        "5.4, 5.5.2",
    )
    yield case(
        "5.7",
        "Like 5.6, one write per frame.",
        (send(*with_ping, frame_by_frame=True),),
        answer,
        "5.4, 5.5.2",
    )
    yield case(
        "5.8",
        "Like 5.6, written one byte at a time.",
        (send(*with_ping, chop=1),),
        answer,
        "5.4, 5.5.2",
    )
    # (FIN, one write per frame?, chop, words) for Autobahn's cases 5.9 to 5.14.
    orphans = (
        (True, False, None, "in one write"),
        (True, True, None, "one write per frame"),
        (True, False, 1, "one byte at a time"),
        (False, False, None, "in one write"),
        (False, True, None, "one write per frame"),
        (False, False, 1, "one byte at a time"),
    )
    for number, (fin, by_frame, chop, words) in enumerate(orphans, 9):
        orphan = (cont("non-continuation payload", fin=fin), text("Hello, world!"))
        yield case(
            f"5.{number}",
            f"A continuation frame (FIN={int(fin)}) with nothing to continue, "
            f"then a text message, {words}.",
            (send(*orphan, chop=chop, frame_by_frame=by_frame),),
            failure(1002),
        )
    yield case(
        "5.15",
        "A message in two fragments, then a continuation (FIN=0) with nothing to "
        "continue, then a text frame: echo the first message, then fail.",
        (send(text(f1, fin=False), cont(f2), cont("fragment3", fin=False), text("fragment4")),),
        failure(1002, ok=(whole,), non_strict=()),
    )
    for number, fin in ((16, False), (17, True)):
        twice = (cont(f1, fin=fin), text(f2, fin=False), cont("fragment3"))
        yield case(
            f"5.{number}",
            f"Twice: a continuation (FIN={int(fin)}) with nothing to continue, "
            "then a message in two fragments.",
            (send(*twice, *twice),),
            failure(1002),
        )
    yield case(
        "5.18",
        "A message in two fragments where both frames say TEXT: after the first, "
        "only continuation frames may follow.",
        (send(text(f1, fin=False), text(f2)),),
        failure(1002),
    )
    five = [f"fragment{i}" for i in range(1, 6)]
    steps = (
        send(text(five[0], fin=False), cont(five[1], fin=False), ping("pongme 1!")),
        Pause(),
        send(cont(five[2], fin=False), cont(five[3], fin=False), ping("pongme 2!"), cont(five[4])),
    )
    answers = (Event.pong(b"pongme 1!"), Event.pong(b"pongme 2!"), Event.text("".join(five)))
    yield case(
        "5.19",
        "A text message in five fragments with a ping after the second, a pause, "
        "then the rest with another ping: each ping is answered at once.",
        steps,
        echo(*answers),
        "5.4, 5.5.2",
    )
    one_by_one = tuple(
        Send(step.frames, frame_by_frame=True) if isinstance(step, Send) else step
        for step in steps
    )
    yield case("5.20", "Like 5.19, one write per frame.", one_by_one, echo(*answers), "5.4, 5.5.2")
    yield case(
        "5.21",
        "A binary message in three fragments, the last one empty.",
        (send(binary(b"\x01\x02", fin=False), cont(b"\x03", fin=False), cont()),),
        echo(Event.binary(b"\x01\x02\x03")),
        autobahn=None,
    )
    yield case(
        "5.22",
        "A close frame with FIN=0: control frames must not be fragmented.",
        (send(close(fin=False)),),
        failure(1002),
        "5.4, 5.5",
        autobahn=None,
    )
    yield case(
        "5.23",
        "A text message whose second fragment says BINARY instead of continuation.",
        (send(text(f1, fin=False), binary(b"fragment2")),),
        failure(1002),
        autobahn=None,
    )
    yield case(
        "5.24",
        "A text message in 100 fragments of one byte each.",
        (send(*(cont("x", fin=i == 99) if i else text("x", fin=False) for i in range(100))),),
        echo(Event.text("x" * 100)),
        autobahn=None,
    )


# -- chapter 6: UTF-8 -----------------------------------------------------------

#: "κόσμε" (Greek for "world"), the example of Markus Kuhn's UTF-8 test file.
KOSME = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"
#: Valid UTF-8 with multi-byte code points, from Autobahn's case 6.2.1.
MIXED = "Hello-µ@ßöäüàá-UTF-8!!".encode()

#: Sequences from Markus Kuhn's UTF-8 decoder test, as Autobahn uses them.
VALID_UTF8 = (
    (b"hello$world", "one-byte U+0024"),
    (b"hello\xc2\xa2world", "two-byte U+00A2"),
    (b"hello\xe2\x82\xacworld", "three-byte U+20AC"),
    (b"hello\xf0\xa4\xad\xa2world", "four-byte U+24B62"),
    (b"\x00", "U+0000, NUL"),
    (b"\xc2\x80", "the first two-byte code point"),
    (b"\xe0\xa0\x80", "the first three-byte code point"),
    (b"\xf0\x90\x80\x80", "the first four-byte code point"),
    (b"\xdf\xbf", "the last two-byte code point"),
    (b"\xef\xbf\xbf", "U+FFFF, a non-character but valid UTF-8"),
    (b"\xf4\x8f\xbf\xbf", "U+10FFFF, the last code point"),
    (b"\xed\x9f\xbf", "U+D7FF, just below the surrogates"),
    (b"\xee\x80\x80", "U+E000, just above the surrogates"),
    (b"\xef\xbf\xbd", "U+FFFD, the replacement character"),
    (b"\xef\xbf\xbe", "U+FFFE, a non-character but valid UTF-8"),
)
INVALID_UTF8 = (
    (b"\x80", "a lone continuation byte"),
    (b"\x80\xbf\x80", "three continuation bytes"),
    (b"\xc2\x20", "a two-byte start followed by a space"),
    (b"hello\xe2\x82", "a three-byte code point cut short at the end"),
    (b"hello\xf0\x9f\x98", "a four-byte code point cut short at the end"),
    (b"\xc0\xaf", "'/' in an overlong two-byte form"),
    (b"\xe0\x80\xaf", "'/' in an overlong three-byte form"),
    (b"\xf0\x80\x80\xaf", "'/' in an overlong four-byte form"),
    (b"\xc0\x80", "NUL in an overlong two-byte form"),
    (b"\xf0\x8f\xbf\xbf", "the largest overlong four-byte form"),
    (b"\xed\xa0\x80", "U+D800, a UTF-16 surrogate"),
    (b"\xed\xbf\xbf", "U+DFFF, a UTF-16 surrogate"),
    (b"\xed\xa0\x80\xed\xb0\x80", "a UTF-16 surrogate pair"),
    (b"\xf4\x90\x80\x80", "U+110000, past the last code point"),
    (b"\xfe", "the byte 0xFE, never in UTF-8"),
    (b"\xff", "the byte 0xFF, never in UTF-8"),
    (b"\xf8\x88\x80\x80\x80", "an old five-byte form"),
    (b"\xfc\x84\x80\x80\x80\x80", "an old six-byte form"),
)


def _one_byte_fragments(data: bytes) -> tuple[FrameSpec, ...]:
    """A text message split into one-byte fragments (most end mid code point)."""
    last = len(data) - 1
    return tuple(
        (text if i == 0 else cont)(data[i : i + 1], fin=i == last) for i in range(len(data))
    )


def _utf8() -> Iterator[Case]:
    def case(
        number: str, description: str, steps: tuple[Step, ...], expect: Expect, autobahn: bool
    ) -> Case:
        return Case(
            number, "utf-8", "8.1, 5.6", description, steps, expect, number if autobahn else None
        )

    yield case("6.1.1", "An empty text message.", (send(text()),), echo(Event.text("")), True)
    yield case(
        "6.1.2",
        "A text message in three empty fragments.",
        (send(text(fin=False), cont(fin=False), cont()),),
        echo(Event.text("")),
        True,
    )
    yield case(
        "6.1.3",
        "A text message: an empty fragment, 'middle', an empty fragment.",
        (send(text(fin=False), cont("middle", fin=False), cont()),),
        echo(Event.text("middle")),
        True,
    )
    yield case(
        "6.2.1",
        f"Valid UTF-8 with multi-byte code points ({MIXED.decode()!r}) in one frame.",
        (send(text(MIXED)),),
        echo(Event.text(MIXED)),
        True,
    )
    yield case(
        "6.2.2",
        "The same text in two fragments, split between two code points (after 'ä').",
        (send(text(MIXED[:15], fin=False), cont(MIXED[15:])),),
        echo(Event.text(MIXED)),
        True,
    )
    yield case(
        "6.2.3",
        "The same text in one-byte fragments: most fragments end inside a code point.",
        (send(*_one_byte_fragments(MIXED)),),
        echo(Event.text(MIXED)),
        True,
    )
    yield case(
        "6.2.4",
        "'κόσμε' in one-byte fragments.",
        (send(*_one_byte_fragments(KOSME)),),
        echo(Event.text(KOSME)),
        True,
    )
    invalid = KOSME + b"\xed\xa0\x80" + b"edited"
    yield case(
        "6.3.1",
        "Invalid UTF-8 (a surrogate after 'κόσμε') in one frame.",
        (send(text(invalid)),),
        failure(1007, utf8=True),
        True,
    )
    yield case(
        "6.3.2",
        "The same invalid text in one-byte fragments.",
        (send(*_one_byte_fragments(invalid)),),
        failure(1007, utf8=True),
        True,
    )
    fail_fast = failure(
        1007, ok=(Event.pause("A"),), non_strict=(Event.pause("A"), Event.pause("B")), utf8=True
    )
    past = b"\xf4\x90\x80\x80"  # U+110000: valid form, but past the last code point
    yield case(
        "6.4.1",
        "Invalid text in three frames with pauses: valid 'κόσμε', then U+110000, then "
        "the rest. The server should fail at the second frame, not wait for the end.",
        (
            send(text(KOSME, fin=False)),
            Pause("A"),
            send(cont(past, fin=False)),
            Pause("B"),
            send(cont(b"edited")),
        ),
        fail_fast,
        True,
    )
    yield case(
        "6.4.2",
        "Like 6.4.1, but the second frame holds only the first invalid byte (0x90 after 0xF4).",
        (
            send(text(KOSME + b"\xf4", fin=False)),
            Pause("A"),
            send(cont(b"\x90", fin=False)),
            Pause("B"),
            send(cont(b"\x80\x80edited")),
        ),
        fail_fast,
        True,
    )
    whole = KOSME + past + b"edited"
    yield case(
        "6.4.3",
        "The text of 6.4.1 in ONE frame sent in three pieces with pauses: the server "
        "should fail as soon as the invalid bytes arrive, inside the frame.",
        (Trickle(text(whole), (len(KOSME), len(KOSME) + 4)),),
        fail_fast,
        True,
    )
    yield case(
        "6.4.4",
        "Like 6.4.3, but the second piece is only the first invalid byte.",
        (Trickle(text(whole), (len(KOSME) + 1, len(KOSME) + 2)),),
        fail_fast,
        True,
    )
    for number, (data, words) in enumerate(VALID_UTF8, 1):
        yield case(
            f"6.5.{number}",
            f"Valid UTF-8: {words} ({data.hex(' ')}).",
            (send(text(data)),),
            echo(Event.text(data)),
            False,
        )
    for number, (data, words) in enumerate(INVALID_UTF8, 1):
        yield case(
            f"6.6.{number}",
            f"Invalid UTF-8: {words} ({data.hex(' ')}).",
            (send(text(data)),),
            failure(1007, utf8=True),
            False,
        )


# -- chapter 7: closing ---------------------------------------------------------

#: Close codes a server must accept on the wire (7.4.1, 7.4.2 and the IANA registry).
VALID_CODES = (
    *(1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014),
    *(3000, 3999, 4000, 4999),
)
#: Close codes that must never appear on the wire (7.4.1, 7.4.2).
INVALID_CODES = (0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999)


def _closing() -> Iterator[Case]:
    def case(
        number: str,
        description: str,
        steps: tuple[Step, ...],
        expect: Expect,
        section: str,
        autobahn: str | None = "same",
    ) -> Case:
        source = number if autobahn == "same" else autobahn
        return Case(number, "closing", section, description, steps, expect, source)

    normal = close_answer(1000)
    yield case(
        "7.1.1",
        "A text message; once it is echoed, a close frame.",
        (send(text("Hello World!")),),
        Expect(ok=(Event.text("Hello World!"),), wrong_code_fails=True),
        "7.1.2, 5.5.1",
    )
    yield case(
        "7.1.2",
        "Two close frames: the second one is ignored.",
        (send(close(), close(None)),),
        normal,
        "5.5.1",
    )
    yield case(
        "7.1.3",
        "A close frame, then a ping: no pong may follow a close.",
        (send(close(), ping()),),
        normal,
        "5.5.1",
    )
    yield case(
        "7.1.4",
        "A close frame, then a text message: it is not echoed.",
        (send(close(), text("Hello World!")),),
        normal,
        "5.5.1",
    )
    yield case(
        "7.1.5",
        "A first fragment, a close frame, the last fragment: nothing is echoed.",
        (send(text("fragment1", fin=False), close(), cont("fragment2")),),
        normal,
        "5.5.1",
    )
    yield case(
        "7.1.6",
        "A 256 KiB text message, a short one, a close and a ping, back to back: "
        "whether the short message is echoed before the close depends on the server.",
        (send(text(b"BAsd7&jh23" * 26215), text("Hello World!"), close(), ping()),),
        Expect(
            ok=(Event.text(b"BAsd7&jh23" * 26215), Event.text("Hello World!")),
            informational=True,
        ),
        "7.1.2",
    )
    yield case(
        "7.3.1", "A close frame without payload.", (send(close(None)),), normal, "5.5.1, 7.1.5"
    )
    yield case(
        "7.3.2",
        "A close frame with a payload of 1 byte: too short for a code.",
        (send(FrameSpec(Opcode.CLOSE, b"a")),),
        close_answer(1002, clean=False),
        "5.5.1",
    )
    yield case("7.3.3", "A close frame with code 1000.", (send(close()),), normal, "5.5.1")
    yield case(
        "7.3.4",
        "A close frame with code 1000 and a reason.",
        (send(close(1000, b"Hello World!")),),
        normal,
        "5.5.1",
    )
    yield case(
        "7.3.5",
        "A close frame with a reason of 123 bytes, the longest that fits.",
        (send(close(1000, b"*" * 123)),),
        normal,
        "5.5.1, 5.5",
    )
    yield case(
        "7.3.6",
        "A close frame with a reason of 124 bytes: a 126-byte control frame.",
        (send(close(1000, b"*" * 124)),),
        close_answer(1002, clean=False),
        "5.5",
    )
    yield case(
        "7.3.7",
        "A close frame with a UTF-8 reason of multi-byte code points ('κόσμε').",
        (send(close(1000, KOSME)),),
        normal,
        "5.5.1",
        autobahn=None,
    )
    yield case(
        "7.5.1",
        "A close frame whose reason is not valid UTF-8.",
        (send(close(1000, KOSME + b"\xed\xa0\x80edited")),),
        close_answer(1002, 1007, clean=False),
        "5.5.1, 8.1",
    )
    for number, code in enumerate(VALID_CODES, 1):
        yield case(
            f"7.7.{number}",
            f"A close frame with the valid code {code}: answered with 1000 or {code}.",
            (send(close(code)),),
            close_answer(1000, code),
            "7.4.1, 7.4.2",
            autobahn=None if 1012 <= code <= 1014 else "7.7.x",
        )
    for number, code in enumerate(INVALID_CODES, 1):
        yield case(
            f"7.9.{number}",
            f"A close frame with code {code}, which may not be sent: fail with 1002.",
            (send(close(code)),),
            close_answer(1002, clean=False),
            "7.4.1, 7.4.2",
            autobahn=None if code == 1015 else "7.9.x",
        )
    for number, code in enumerate((5000, 65535), 1):
        yield case(
            f"7.13.{number}",
            f"A close frame with code {code}, which no range of 7.4.2 covers.",
            (send(close(code)),),
            Expect(codes=(1000, 1002, code), clean=False, informational=True),
            "7.4.2",
        )


# -- chapter 8: masking (wslab's own) -------------------------------------------


def _masking() -> Iterator[Case]:
    yield Case(
        "8.1",
        "masking",
        "5.1",
        "A text message that is not masked: a server must fail the connection.",
        (send(text("Hello, world!", masked=False)),),
        failure(1002),
    )
    yield Case(
        "8.2",
        "masking",
        "5.1",
        "A ping that is not masked.",
        (send(ping("Hello", masked=False)),),
        failure(1002),
    )
    yield Case(
        "8.3",
        "masking",
        "5.1",
        "A close frame that is not masked.",
        (send(close(masked=False)),),
        failure(1002),
    )
    yield Case(
        "8.4",
        "masking",
        "5.3",
        "A message masked with the key 00 00 00 00: predictable, but valid; the "
        "server must unmask it, not judge the key.",
        (send(text("Hello, world!", mask_key=b"\x00\x00\x00\x00")),),
        echo(Event.text("Hello, world!")),
    )


# -- chapter 9: limits ----------------------------------------------------------


def _limits() -> Iterator[Case]:
    def case(
        number: str,
        description: str,
        steps: tuple[Step, ...],
        expect: Expect,
        patience: float = 10,
    ) -> Case:
        # Big messages may take a while: ten timeouts to answer, by default.
        return Case(number, "limits", "10.4, 5.4", description, steps, expect, patience=patience)

    kib = 1024
    for number, size in enumerate((64 * kib, 256 * kib, 1023 * kib), 1):
        payload = b"BAsd7&jh23" * (size // 10) + b"*" * (size % 10)
        yield case(
            f"9.1.{number}",
            f"A text message of {size // kib} KiB.",
            (send(text(payload)),),
            limit(Event.text(payload)),
        )
    for number, size in enumerate((64 * kib, 256 * kib, 1023 * kib), 1):
        payload = b"\x00\xfe\x23\xfa\xf0" * (size // 5) + b"\xfe" * (size % 5)
        yield case(
            f"9.2.{number}",
            f"A binary message of {size // kib} KiB.",
            (send(binary(payload)),),
            limit(Event.binary(payload)),
        )
    payload = b"*" * (256 * kib)
    yield case(
        "9.3.1",
        "A text message of 256 KiB written in pieces of 64 bytes.",
        (send(text(payload), chop=64),),
        limit(Event.text(payload)),
    )
    chunk = b"\xfe" * 64
    yield case(
        "9.4.1",
        "A binary message of 256 KiB in 4096 fragments of 64 bytes.",
        (
            send(
                binary(chunk, fin=False),
                *(cont(chunk, fin=False) for _ in range(4094)),
                cont(chunk),
            ),
        ),
        limit(Event.binary(chunk * 4096), codes=(1008, 1009)),
    )
    yield case(
        "9.4.2",
        "A text message in 10000 fragments of one byte.",
        (send(text("*", fin=False), *(cont("*", fin=False) for _ in range(9998)), cont("*")),),
        limit(Event.text("*" * 10000), codes=(1008, 1009)),
    )
    messages = [f"message {i}" for i in range(100)]
    yield case(
        "9.5.1",
        "100 text messages in one write: all echoed, in order.",
        (send(*(text(message) for message in messages)),),
        echo(*(Event.text(message) for message in messages)),
    )
    blobs = [bytes([i]) * 4096 for i in range(100)]
    yield case(
        "9.5.2",
        "100 binary messages of 4 KiB in one write: all echoed, in order.",
        (send(*(binary(blob) for blob in blobs)),),
        echo(*(Event.binary(blob) for blob in blobs)),
    )
    yield case(
        "9.6.1",
        "A frame header announcing 2**62 bytes: the server should refuse it at once "
        "(1009) instead of waiting for them.",
        (send(binary(b"\xfe" * 1024, length_field=2**62)),),
        failure(1009),
        patience=1,
    )


# -- chapter 10: the opening handshake (wslab's own) ----------------------------


def _handshake() -> Iterator[HandshakeCase]:
    yield HandshakeCase(
        "10.1", "4.1, 4.2.2", "A valid opening handshake, as wslab's clients send it.", accept=True
    )
    yield HandshakeCase(
        "10.2",
        "4.2.1",
        "'Upgrade: WebSocket' in mixed case: the value is case-insensitive.",
        replace=(("Upgrade", "WebSocket"),),
        accept=True,
    )
    yield HandshakeCase(
        "10.3",
        "4.2.1",
        "'Connection: keep-alive, Upgrade', as Firefox sends it: a list containing Upgrade.",
        replace=(("Connection", "keep-alive, Upgrade"),),
        accept=True,
    )
    yield HandshakeCase(
        "10.4",
        "4.2.1, RFC 9110 5.1",
        "Header names in lower case: HTTP names are case-insensitive.",
        drop=("Upgrade", "Connection"),
        add=(("upgrade", "websocket"), ("connection", "Upgrade")),
        accept=True,
    )
    yield HandshakeCase(
        "10.5",
        "4.1",
        "A valid request written one byte at a time.",
        chop=1,
        accept=True,
    )
    yield HandshakeCase(
        "10.6",
        "4.2.1",
        "No Upgrade header.",
        drop=("Upgrade",),
        statuses=(400, 426),
    )
    yield HandshakeCase(
        "10.7", "4.2.1", "No Connection header.", drop=("Connection",), statuses=(400, 426)
    )
    yield HandshakeCase(
        "10.8",
        "4.2.1",
        "'Upgrade: h2c' instead of websocket.",
        replace=(("Upgrade", "h2c"),),
        statuses=(400, 426),
    )
    yield HandshakeCase("10.9", "4.2.1", "No Sec-WebSocket-Key.", drop=("Sec-WebSocket-Key",))
    yield HandshakeCase(
        "10.10",
        "4.1, 4.2.1",
        "A Sec-WebSocket-Key that is not base64.",
        replace=(("Sec-WebSocket-Key", "this is not a key!"),),
    )
    yield HandshakeCase(
        "10.11",
        "4.1, 4.2.1",
        "A Sec-WebSocket-Key of 15 bytes instead of 16.",
        replace=(("Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAA"),),
    )
    yield HandshakeCase(
        "10.12",
        "4.1, 11.3.1",
        "Two Sec-WebSocket-Key headers: the header must appear once.",
        add=(("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),),
    )
    yield HandshakeCase(
        "10.13",
        "4.2.1",
        "No Sec-WebSocket-Version.",
        drop=("Sec-WebSocket-Version",),
        statuses=(400, 426),
    )
    yield HandshakeCase(
        "10.14",
        "4.4",
        "Sec-WebSocket-Version 8: refuse, and name version 13 in a Sec-WebSocket-Version header.",
        replace=(("Sec-WebSocket-Version", "8"),),
        statuses=(400, 426),
        check="version header",
    )
    yield HandshakeCase(
        "10.15", "4.1", "A POST instead of a GET.", method="POST", statuses=(400, 405)
    )
    yield HandshakeCase(
        "10.16",
        "4.1",
        "An HTTP/1.0 request: the handshake needs HTTP/1.1 or later.",
        version="HTTP/1.0",
        statuses=(400, 426, 505),
    )
    yield HandshakeCase(
        "10.17",
        "4.1, RFC 9112 3.2",
        "No Host header: HTTP/1.1 requires one (400).",
        drop=("Host",),
    )
    yield HandshakeCase(
        "10.18",
        "4.1, RFC 9112 3.2",
        "Two Host headers (400).",
        add=(("Host", "example.com"),),
    )
    yield HandshakeCase(
        "10.19",
        "4.2.1",
        "A plain GET of the WebSocket path, as a browser's address bar sends it.",
        drop=("Upgrade", "Connection", "Sec-WebSocket-Key", "Sec-WebSocket-Version"),
        statuses=(400, 426),
    )
    yield HandshakeCase(
        "10.20",
        "4.2.2",
        "A subprotocol the server does not know: accept without one, never pick another.",
        add=(("Sec-WebSocket-Protocol", "wslab-conformance-unknown"),),
        accept=True,
        check="subprotocol",
    )
    yield HandshakeCase(
        "10.21",
        "4.2.2, 9.1",
        "An extension nobody implements: accept without it.",
        add=(("Sec-WebSocket-Extensions", "x-wslab-conformance-unknown"),),
        accept=True,
        check="extension",
    )
    yield HandshakeCase(
        "10.22",
        "10.2",
        "An Origin of another site (https://evil.example). Servers may refuse it (403); "
        "a server for browsers should, against cross-site WebSocket hijacking.",
        add=(("Origin", "https://evil.example"),),
        informational=True,
    )
    yield HandshakeCase(
        "10.23",
        "4.1, 10.4",
        "A request with a 16 KiB header: servers may limit the size of a request.",
        add=(("X-Filler", "x" * 16384),),
        informational=True,
    )
    yield HandshakeCase(
        "10.24",
        "4.1",
        "A path that no one serves (/wslab-conformance-nowhere).",
        path="/wslab-conformance-nowhere",
        informational=True,
    )


# -- chapter 12: permessage-deflate (RFC 7692) ----------------------------------


def _compression() -> Iterator[Case]:
    def case(number: str, description: str, steps: tuple[Step, ...], expect: Expect) -> Case:
        return Case(
            number,
            "compression",
            "RFC 7692 6, 7.2",
            description,
            steps,
            expect,
            deflate=True,
        )

    hello = b"Hello, compressed world! " * 4
    yield case(
        "12.1",
        "A compressed text message (RSV1 set).",
        (send(text(deflate(hello), rsv=4)),),
        echo(Event.text(hello)),
    )
    blob = bytes(range(256)) * 256
    yield case(
        "12.2",
        "A compressed binary message of 64 KiB.",
        (send(binary(deflate(blob), rsv=4)),),
        echo(Event.binary(blob)),
    )
    data = deflate(hello)
    yield case(
        "12.3",
        "A compressed text message in three fragments, RSV1 on the first only.",
        (send(text(data[:5], rsv=4, fin=False), cont(data[5:10], fin=False), cont(data[10:])),),
        echo(Event.text(hello)),
    )
    yield case(
        "12.4",
        "An uncompressed message after negotiation: compression is per message.",
        (send(text(hello)),),
        echo(Event.text(hello)),
    )
    yield case(
        "12.5",
        "A compressed message with RSV1 on a continuation frame too.",
        (send(text(data[:5], rsv=4, fin=False), cont(data[5:], rsv=4)),),
        failure(1002),
    )
    yield case(
        "12.6",
        "A ping with RSV1 set: control frames are never compressed.",
        (send(ping("Hello", rsv=4)),),
        failure(1002),
    )


def _all_cases() -> tuple[AnyCase, ...]:
    groups: tuple[Iterable[AnyCase], ...] = (
        _framing(),
        _pings(),
        _reserved_bits(),
        _opcodes(),
        _fragmentation(),
        _utf8(),
        _closing(),
        _masking(),
        _limits(),
        _handshake(),
        _compression(),
    )
    return tuple(case for group in groups for case in group)


#: Every case, in the order of the report.
CASES: tuple[AnyCase, ...] = _all_cases()


def select(chosen: Iterable[str | AnyCase] | str | None = None) -> list[AnyCase]:
    """Pick cases by id, chapter, or category.

    Args:
        chosen: None for all; or ids and prefixes (``"6.4.1"``, ``"6.4"``,
            ``"6"``), category names (``"utf-8"``, ``"closing"``) and
            :class:`Case` objects, in any mix.

    Raises:
        ValueError: Something matches no case; the message lists the categories.
    """
    if chosen is None:
        return list(CASES)
    if isinstance(chosen, str):
        chosen = [chosen]
    picked: list[AnyCase] = []
    for item in chosen:
        if isinstance(item, Case | HandshakeCase):
            matches = [item]
        elif isinstance(item, str):
            matches = [
                case
                for case in CASES
                if case.category == item.lower()
                or case.id == item
                or case.id.startswith(item.rstrip(".") + ".")
            ]
        else:
            raise TypeError(f"cases must be ids, categories or Case objects, got {item!r}")
        if not matches:
            raise ValueError(
                f"no case matches {item!r}: use an id such as '6.4.1', a chapter such as "
                f"'6', or a category: {', '.join(CATEGORIES)}"
            )
        picked += [case for case in matches if case not in picked]
    return picked


def _preview(data: bytes, limit: int = 30) -> str:
    """Show a payload briefly: as text if it is short UTF-8, else as hex."""
    if not data:
        return ""
    try:
        shown = data.decode()
    except UnicodeDecodeError:
        hexed = data[: limit // 3].hex(" ")
        return hexed + (" ... " if len(data) > limit // 3 else " ")
    if len(shown) > limit:
        return repr(shown[: limit - 3] + "...") + " "
    return repr(shown) + " "
