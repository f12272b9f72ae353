"""HTML and SVG pictures of frames and traffic, for notebooks.

Pure functions, no I/O: each takes bytes or :class:`wslab.traffic.Record`
objects and returns an :class:`HTMLView`, which a notebook shows as HTML.

* :func:`frame_diagram`: one frame as the 32-bit-wide bit grid of RFC 6455
  section 5.2, filled in with the frame's real bits;
* :func:`fields_table`: the rows of :func:`wslab.explain.explain`, coloured;
* :func:`hex_view`: recorded bytes as hex, each byte coloured by the field it
  belongs to (flags and opcode, MASK and length, extended length, masking key,
  payload), with a legend;
* :func:`sequence_diagram`: client and server lanes with an arrow per record:
  the HTTP Upgrade, the 101, frames both ways, pings and pongs, the two close
  frames and the TCP FINs (section 7).

The output is deterministic (no random ids, times only on request), so lessons
can store it and nbval can compare it. Payloads are untrusted: every piece of
text is escaped before it goes into HTML or SVG.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .explain import Field, explain
from .frames import Opcode
from .traffic import Direction, Kind, Record

__all__ = [
    "PART_COLOURS",
    "HTMLView",
    "fields_table",
    "frame_diagram",
    "frame_hex",
    "hex_view",
    "legend",
    "record_label",
    "sequence_diagram",
    "svg_view",
]

#: The colour of each part of a frame, keyed by ``explain()``'s ``Field.part``.
PART_COLOURS: dict[str, tuple[str, str]] = {
    "flags": ("#fde2b3", "FIN, RSV1-3 and opcode"),
    "length": ("#c9e4f6", "MASK and payload length"),
    "extended": ("#b9e0c9", "extended payload length"),
    "mask": ("#e6d2f2", "masking key"),
    "payload": ("#eeeeee", "payload"),
}

_MONO = "font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace"
_BOX = "display: inline-block; padding: 0 2px; margin: 1px 0; border-radius: 2px"


@dataclass(frozen=True)
class HTMLView:
    """A piece of HTML that a notebook displays as such.

    Attributes:
        html: The HTML source.
        summary: A one-line description, shown as the plain-text repr.
        svg: For a picture, its SVG source, also offered as ``image/svg+xml``;
            ``html`` then shows it as an ``<img>`` (see :func:`svg_view`).
    """

    html: str
    summary: str = "HTML view"
    svg: str | None = None

    def _repr_html_(self) -> str:
        return self.html

    def _repr_svg_(self) -> str | None:
        return self.svg

    def __repr__(self) -> str:
        return f"<{self.summary}>"

    def __str__(self) -> str:
        return self.html


def svg_view(svg: str, summary: str, alt: str = "") -> HTMLView:
    """Show an SVG picture so that an untrusted notebook shows it too.

    JupyterLab renders ``image/svg+xml`` only in trusted notebooks (its SVG
    renderer is not "safe"), and its HTML sanitizer strips inline ``<svg>``
    from untrusted HTML, leaving the labels run together. An ``<img>`` with a
    ``data:`` URL survives the sanitizer, so a freshly opened lesson shows the
    picture before anything runs. The SVG itself is offered too.

    Args:
        svg: The SVG document.
        summary: A one-line description, the plain-text repr.
        alt: The image's text alternative (default: ``summary``).
    """
    data = base64.b64encode(svg.encode()).decode("ascii")
    return HTMLView(
        f'<img src="data:image/svg+xml;base64,{data}" alt="{_attr(alt or summary)}">',
        summary,
        svg=svg,
    )


def _text(value: object) -> str:
    """Escape text for an element's content (quotes may stay readable)."""
    return html.escape(str(value), quote=False)


def _attr(value: object) -> str:
    """Escape text for an attribute value."""
    return html.escape(str(value), quote=True)


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# Frames, byte by byte


def _byte_parts(data: bytes) -> tuple[list[str], list[list[str]]]:
    """For each byte of a frame: its part, and the fields that cover it."""
    parts = ["payload"] * len(data)
    notes: list[list[str]] = [[] for _ in data]
    try:
        fields: Sequence[Field] = explain(data)
    except (ValueError, TypeError):
        return parts, notes
    for each in fields:
        if each.bits == "-":
            continue
        first, _, last = each.bits.partition("-")
        start, end = int(first) // 8, int(last or first) // 8
        for i in range(start, min(end + 1, len(data))):
            if not notes[i]:
                parts[i] = each.part
            if each.part != "payload" or i == start:
                notes[i].append(f"{each.name} = {_short(repr(each.value), 40)}")
    return parts, notes


def _hex_bytes(data: bytes, limit: int) -> str:
    """The bytes of one frame as coloured hex, with a tooltip per byte."""
    parts, notes = _byte_parts(data)
    header_size = sum(1 for p in parts if p != "payload")
    shown = min(len(data), header_size + limit)
    spans = []
    for i in range(shown):
        colour = PART_COLOURS[parts[i]][0]
        title = "; ".join(notes[i]) or PART_COLOURS[parts[i]][1]
        spans.append(
            f'<span class="wslab-{parts[i]}" title="{_attr(title)}" '
            f'style="{_BOX}; background: {colour}">{data[i]:02x}</span>'
        )
    if shown < len(data):
        spans.append(f"<span> … {len(data) - shown} more bytes</span>")
    return " ".join(spans)


def frame_hex(data: bytes, *, limit: int = 64) -> HTMLView:
    """One frame's bytes as hex, each byte coloured by its field (hover for details).

    Args:
        data: Exactly one frame, as on the wire.
        limit: Show at most this many payload bytes.
    """
    return HTMLView(
        f'<div style="{_MONO}; line-height: 1.7">{_hex_bytes(data, limit)}</div>',
        f"hex of a {len(data)}-byte frame",
    )


def legend() -> HTMLView:
    """The colour key of the hex view and the frame diagram."""
    items = "".join(
        f'<span style="{_BOX}; margin-right: 6px; background: {colour}">{_text(label)}</span>'
        for colour, label in PART_COLOURS.values()
    )
    return HTMLView(f'<div class="wslab-legend" style="font-size: 90%">{items}</div>', "legend")


# Records


def record_label(record: Record) -> str:
    """A short, human description of one record, as the diagrams show it.

    Frames read like ``TEXT 'Hello' [5 bytes]``; handshake records show the
    HTTP start line; TCP records say which side closed first.
    """
    if record.kind is Kind.FRAME and record.frame is not None:
        return record.text or str(record.frame)
    if record.kind is Kind.CONNECT:
        return "TCP connect"
    if record.kind is Kind.TCP_CLOSE:
        return record.text or "TCP close"
    if record.kind is Kind.HTTP_REQUEST and b"upgrade: websocket" in record.data.lower():
        return f"{record.text} (Upgrade: websocket)"
    if record.kind is Kind.ERROR:
        return f"error: {record.text}"
    return record.text or record.kind.value


def hex_view(records: Iterable[Record], *, limit: int = 64, max_records: int = 200) -> HTMLView:
    """Show recorded bytes as annotated, colour-coded hex.

    Each frame's bytes are coloured by the field they belong to (hover a byte
    for its field and value); HTTP records show their head as text.

    Args:
        records: Records from a tap (``tap.records``) or a server recorder.
        limit: Show at most this many payload bytes of each frame.
        max_records: Show at most this many records (the first ones).
    """
    records = list(records)
    rows = []
    for record in records[:max_records]:
        where = "" if record.direction is Direction.NONE else f"{record.direction.value}: "
        head = (
            f"#{record.connection} {_text(where)}<b>{_text(_short(record_label(record), 120))}</b>"
        )
        if record.kind is Kind.FRAME and record.data:
            body = frame_hex(record.data, limit=limit).html
        elif record.kind in (Kind.HTTP_REQUEST, Kind.HTTP_RESPONSE, Kind.ERROR) and record.data:
            text = record.data.decode("latin-1")
            if len(text) > 2000:
                text = text[:2000] + f"\n… {len(record.data) - 2000} more bytes"
            body = f'<pre style="margin: 2px 0 2px 1em">{_text(text)}</pre>'
        else:
            body = ""
        rows.append(f'<div style="margin-bottom: 6px">{head}{body}</div>')
    if len(records) > max_records:
        rows.append(f"<div>… {len(records) - max_records} more records</div>")
    if not records:
        rows.append("<div><i>no traffic recorded yet</i></div>")
    content = legend().html + "".join(rows)
    return HTMLView(
        f'<div class="wslab-hex-view">{content}</div>', f"hex view of {len(records)} records"
    )


# One frame as the RFC's bit grid


def fields_table(data: bytes) -> HTMLView:
    """The fields of one frame (:func:`wslab.explain.explain`), coloured by part."""
    fields = explain(data)
    head = "".join(f"<th>{h}</th>" for h in ("field", "bits", "raw", "value", "meaning"))
    body = "".join(
        f'<tr style="background: {PART_COLOURS[f.part][0]}"><td>{_text(f.name)}</td>'
        f"<td>{_text(f.bits)}</td><td><code>{_text(_short(f.raw, 48))}</code></td>"
        f"<td>{_text(_short(repr(f.value), 48))}</td><td>{_text(f.meaning)}</td></tr>"
        for f in fields
    )
    return HTMLView(
        f'<table class="wslab-fields"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>',
        f"fields of a {len(data)}-byte frame",
    )


def _char(byte: int) -> str:
    """A printable ASCII byte as itself, anything else as a dot."""
    return repr(chr(byte)) if 32 <= byte < 127 else "·"


_ABBREVIATIONS = {"RSV1": "R1", "RSV2": "R2", "RSV3": "R3", "MASK": "M"}


def frame_diagram(data: bytes, *, payload_bytes: int = 8) -> HTMLView:
    """Draw one frame like the diagram of RFC 6455 section 5.2, with its real bits.

    Each row is 32 bits wide; each field spans its bits, coloured by part and
    labelled with its name (hover for its value and meaning).

    Args:
        data: Exactly one frame, as on the wire.
        payload_bytes: Show at most this many payload bytes, one cell each.

    Raises:
        ValueError: ``data`` is not exactly one whole frame (see ``explain``).
    """
    fields = explain(data)
    bits = "".join(f"{b:08b}" for b in data)
    cells: list[tuple[int, int, str, str, str]] = []  # start, end, part, label, title
    payload_start = len(data) * 8
    for each in fields:
        if each.part == "payload":
            if each.bits != "-":
                payload_start = int(each.bits.split("-")[0])
            continue
        first, _, last = each.bits.partition("-")
        start, end = int(first), int(last or first)
        name = _ABBREVIATIONS.get(each.name, each.name)
        title = f"{each.name} = {each.value!r}: {each.meaning}"
        cells.append((start, end, each.part, name, title))
    payload_end = min(len(data), payload_start // 8 + payload_bytes) * 8
    mask_key = next((f.value for f in fields if f.part == "mask"), None)
    for start in range(payload_start, payload_end, 8):
        index = (start - payload_start) // 8
        byte = data[start // 8]
        if isinstance(mask_key, str):
            # Show what the receiver gets back: the byte XOR the key (5.3).
            key = bytes.fromhex(mask_key[2:])[index % 4]
            clear = byte ^ key
            label = f"{byte:02x}^{key:02x}={clear:02x} {_char(clear)}"
        else:
            label = f"{byte:02x} {_char(byte)}"
        cells.append((start, start + 7, "payload", label, f"payload byte {index}"))
    rows: list[str] = []
    row: list[str] = []
    for start, end, part, label, title in cells:
        # A field that crosses a 32-bit line is split, as in the RFC's drawing.
        position = start
        while position <= end:
            stop = min(end, (position // 32) * 32 + 31)
            span = stop - position + 1
            small = span < 4
            row.append(
                f'<td colspan="{span}" title="{_attr(title)}" style="background: '
                f"{PART_COLOURS[part][0]}; border: 1px solid #888; text-align: center; "
                f'padding: 1px">'
                f'<div style="font-size: {"70" if small else "80"}%">{_text(label)}</div>'
                f'<div style="{_MONO}">{bits[position : stop + 1]}</div></td>'
            )
            if stop % 32 == 31:
                rows.append("<tr>" + "".join(row) + "</tr>")
                row = []
            position = stop + 1
    if row:
        rows.append("<tr>" + "".join(row) + "</tr>")
    more = len(data) - payload_end // 8
    if more > 0:
        rows.append(
            f'<tr><td colspan="32" style="text-align: center">… {more} more payload '
            f"byte{'' if more == 1 else 's'}</td></tr>"
        )
    # The two header rows number the bits 0 to 31, as the RFC's drawing does.
    tens = "".join(
        f'<th colspan="{span}" style="text-align: left">{n}</th>'
        for n, span in enumerate((10, 10, 10, 2))
    )
    ones = "".join(f'<th style="{_MONO}; font-weight: normal">{i % 10}</th>' for i in range(32))
    table = (
        f'<table class="wslab-frame-diagram" style="border-collapse: collapse; '
        f'table-layout: fixed; font-size: 85%"><thead><tr>{tens}</tr><tr>{ones}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )
    return HTMLView(table, f"frame diagram of a {len(data)}-byte frame")


# The sequence diagram

_LANE_CLIENT = 110
_LANE_SERVER = 550
_WIDTH = 660
_ROW = 30
_TOP = 50

_OPCODE_COLOURS = {
    Opcode.TEXT: "#1f5fa8",
    Opcode.BINARY: "#1f5fa8",
    Opcode.CONT: "#1f5fa8",
    Opcode.PING: "#2e7d32",
    Opcode.PONG: "#2e7d32",
    Opcode.CLOSE: "#b3261e",
}


def _arrow(y: int, direction: Direction, colour: str, dashed: bool) -> str:
    """One horizontal arrow between the lanes, with its head drawn as a polygon."""
    if direction is Direction.TO_CLIENT:
        x1, x2, tip = _LANE_SERVER, _LANE_CLIENT, 1
    else:
        x1, x2, tip = _LANE_CLIENT, _LANE_SERVER, -1
    dash = ' stroke-dasharray="5,4"' if dashed else ""
    head = f"{x2},{y} {x2 + tip * 9},{y - 4} {x2 + tip * 9},{y + 4}"
    return (
        f'<line x1="{x1}" y1="{y}" x2="{x2 + tip * 8}" y2="{y}" stroke="{colour}" '
        f'stroke-width="1.5"{dash}/><polygon points="{head}" fill="{colour}"/>'
    )


def _row_style(record: Record) -> tuple[str, bool]:
    """The colour of a record's arrow, and whether it is dashed."""
    if record.kind is Kind.FRAME and record.frame is not None:
        return _OPCODE_COLOURS.get(record.frame.opcode, "#1f5fa8"), False
    if record.kind in (Kind.HTTP_REQUEST, Kind.HTTP_RESPONSE):
        return "#6a3d9a", False
    if record.kind is Kind.MESSAGE:
        return "#1f5fa8", False
    return "#555555", True


def sequence_diagram(
    records: Iterable[Record], *, times: bool = False, max_records: int = 200
) -> HTMLView:
    """Draw records as a sequence diagram with a client lane and a server lane.

    One arrow per record, top to bottom in the order they happened: the
    Upgrade request and the 101 (section 4), frames both ways (section 5),
    pings and pongs (5.5.2-3), the two close frames and the TCP FINs (7.1).

    Args:
        records: Records from a tap (frame level) or a server (message level).
        times: Print each record's time on the left; off by default so that
            the same traffic always gives the same picture.
        max_records: Draw at most this many records (the first ones).
    """
    records = list(records)
    shown = records[:max_records]
    several = len({r.connection for r in records}) > 1
    height = _TOP + _ROW * (len(shown) + (1 if len(records) > max_records else 0)) + 20
    middle = (_LANE_CLIENT + _LANE_SERVER) // 2
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{height}" '
        f'viewBox="0 0 {_WIDTH} {height}" font-family="sans-serif" font-size="12" '
        f'class="wslab-sequence">'
    ]
    for x, name in ((_LANE_CLIENT, "client"), (_LANE_SERVER, "server")):
        parts.append(
            f'<rect x="{x - 45}" y="8" width="90" height="24" rx="4" fill="#f4f4f4" '
            f'stroke="#888"/><text x="{x}" y="25" text-anchor="middle" '
            f'font-weight="bold">{name}</text>'
            f'<line x1="{x}" y1="32" x2="{x}" y2="{height - 8}" stroke="#bbb"/>'
        )
    for i, record in enumerate(shown):
        y = _TOP + _ROW * i + 12
        label = record_label(record)
        if several:
            label = f"#{record.connection} {label}"
        label = _text(_short(label, 64))
        colour, dashed = _row_style(record)
        if times:
            parts.append(
                f'<text x="4" y="{y - 4}" font-size="10" fill="#777">{record.time:.3f}s</text>'
            )
        if record.kind is Kind.ERROR or (
            record.direction is Direction.NONE and record.kind is not Kind.CONNECT
        ):
            fill = "#fdecea" if record.kind is Kind.ERROR else "#f4f4f4"
            parts.append(
                f'<rect x="{_LANE_CLIENT + 20}" y="{y - 16}" '
                f'width="{_LANE_SERVER - _LANE_CLIENT - 40}" height="20" rx="3" '
                f'fill="{fill}" stroke="{colour}"/>'
                f'<text x="{middle}" y="{y - 2}" text-anchor="middle" fill="{colour}">'
                f"{label}</text>"
            )
            continue
        parts.append(_arrow(y, record.direction, colour, dashed))
        parts.append(
            f'<text x="{middle}" y="{y - 5}" text-anchor="middle" fill="{colour}">{label}</text>'
        )
    if len(records) > max_records:
        y = _TOP + _ROW * len(shown) + 12
        parts.append(
            f'<text x="{middle}" y="{y}" text-anchor="middle" fill="#777">'
            f"… {len(records) - max_records} more records</text>"
        )
    if not records:
        parts.append(
            f'<text x="{middle}" y="{_TOP + 12}" text-anchor="middle" fill="#777">'
            "no traffic recorded yet</text>"
        )
    parts.append("</svg>")
    alt = "; ".join(record_label(r) for r in shown)
    return svg_view("".join(parts), f"sequence diagram of {len(records)} records", alt)
