"""Explain one frame's bytes field by field, as in RFC 6455 section 5.2.

``explain(data)`` returns the rows of the RFC's frame diagram, read off real
bytes: which bits each field takes, what those bits are, and what they mean.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from . import utils
from .closing import parse_close
from .errors import ProtocolError
from .frames import Opcode, parse_header

__all__ = ["Explanation", "Field", "explain"]

_OPCODE_MEANINGS = {
    Opcode.CONT: "continuation of a fragmented message",
    Opcode.TEXT: "text frame (UTF-8)",
    Opcode.BINARY: "binary frame",
    Opcode.CLOSE: "connection close",
    Opcode.PING: "ping",
    Opcode.PONG: "pong",
}


@dataclass(frozen=True)
class Field:
    """One field of a frame.

    Attributes:
        name: The field's name in the RFC's diagram.
        bits: The bit range it takes, counted from 0, e.g. ``"4-7"``.
        raw: Its raw bits (or, for the payload, its bytes in hex).
        value: Its decoded value.
        meaning: What the value means.
        part: Which coloured part of the frame it belongs to
            (``"flags"``, ``"length"``, ``"extended"``, ``"mask"``, ``"payload"``).
    """

    name: str
    bits: str
    raw: str
    value: object
    meaning: str
    part: str


class Explanation(list[Field]):
    """The fields of one frame; prints as a table, and as HTML in notebooks."""

    def __str__(self) -> str:
        rows = [("field", "bits", "raw", "value", "meaning")]
        rows += [(f.name, f.bits, _short(f.raw), _short(repr(f.value)), f.meaning) for f in self]
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        lines = [
            "  ".join([*(c.ljust(w) for c, w in zip(r, widths, strict=False)), r[4]]) for r in rows
        ]
        return "\n".join(line.rstrip() for line in lines)

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{h}</th>" for h in ("field", "bits", "raw", "value", "meaning"))
        body = "".join(
            f'<tr class="wslab-{f.part}"><td>{html.escape(f.name)}</td><td>{f.bits}</td>'
            f"<td><code>{html.escape(_short(f.raw))}</code></td>"
            f"<td>{html.escape(_short(repr(f.value)))}</td><td>{html.escape(f.meaning)}</td></tr>"
            for f in self
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def explain(data: bytes) -> Explanation:
    """Break the bytes of one frame into the fields of section 5.2.

    Args:
        data: Exactly one frame, header and payload, as on the wire.

    Raises:
        ValueError: ``data`` is not exactly one whole frame.
        TypeError: ``data`` is not bytes.
    """
    if isinstance(data, str):
        raise TypeError("explain() takes the frame's bytes, not a str")
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"explain() takes bytes, got {type(data).__name__}")
    data = bytes(data)
    try:
        header = parse_header(data)
    except ProtocolError as error:
        raise ValueError(f"not a valid frame header: {error}") from None
    if header is None:
        raise ValueError(f"{len(data)} bytes is not a whole frame header (2 to 14 bytes)")
    if len(data) != header.size + header.length:
        raise ValueError(
            f"the header announces {header.length} payload bytes, so the frame is "
            f"{header.size + header.length} bytes long, but {len(data)} were given"
        )
    first, second = f"{data[0]:08b}", f"{data[1]:08b}"
    fields = Explanation()
    fields.append(Field("FIN", "0", first[0], header.fin, _fin_meaning(header.fin), "flags"))
    for i, name in enumerate(("RSV1", "RSV2", "RSV3"), start=1):
        value = bool(data[0] & (0x80 >> i))
        meaning = "set: needs a negotiated extension" if value else "not used"
        fields.append(Field(name, str(i), first[i], value, meaning, "flags"))
    fields.append(
        Field("opcode", "4-7", first[4:], header.opcode, _opcode_meaning(header.opcode), "flags")
    )
    masked = "payload is masked (client to server)" if header.masked else "payload is not masked"
    fields.append(Field("MASK", "8", second[0], header.masked, masked, "length"))
    fields.append(
        Field("payload len", "9-15", second[1:], data[1] & 0x7F, _len7(data[1]), "length")
    )
    offset = 2
    if header.length_bits > 7:
        n = header.length_bits // 8
        raw = "".join(f"{b:08b}" for b in data[2 : 2 + n])
        meaning = f"{header.length_bits}-bit extended length"
        bits = f"16-{16 + header.length_bits - 1}"
        fields.append(Field("extended payload len", bits, raw, header.length, meaning, "extended"))
        offset += n
    if header.mask_key is not None:
        bits = f"{offset * 8}-{offset * 8 + 31}"
        fields.append(
            Field(
                "masking key",
                bits,
                header.mask_key.hex(" "),
                "0x" + header.mask_key.hex(),
                "XOR key for the payload (5.3)",
                "mask",
            )
        )
    fields.append(_payload_field(data[header.size :], header.mask_key, header.opcode, header.size))
    return fields


def _payload_field(raw: bytes, mask_key: bytes | None, opcode: int, start: int) -> Field:
    payload = utils.apply_mask(raw, mask_key) if mask_key is not None else raw
    bits = f"{start * 8}-{(start + len(raw)) * 8 - 1}" if raw else "-"
    meaning = f"{len(raw)} bytes" + (", unmasked shown as value" if mask_key else "")
    value: object = payload
    if opcode == Opcode.TEXT:
        try:
            value = payload.decode()
        except UnicodeDecodeError:
            meaning += ", not valid UTF-8"
    elif opcode == Opcode.CLOSE:
        try:
            value = str(parse_close(payload))
        except ProtocolError as error:
            meaning += f", invalid: {error}"
    return Field("payload", bits, raw.hex(" "), value, meaning, "payload")


def _fin_meaning(fin: bool) -> str:
    return "final fragment of a message" if fin else "more fragments follow"


def _opcode_meaning(opcode: int) -> str:
    try:
        return f"{Opcode(opcode).name}: {_OPCODE_MEANINGS[Opcode(opcode)]}"
    except ValueError:
        return "reserved opcode (a protocol error)"


def _len7(value: int) -> str:
    value &= 0x7F
    if value == 126:
        return "126: the length is in the next 16 bits"
    if value == 127:
        return "127: the length is in the next 64 bits"
    return f"payload is {value} bytes"


def _short(text: str, limit: int = 48) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
