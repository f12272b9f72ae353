"""Display helpers: hex view, frame diagram and sequence diagram.

The records come from the tap's sans-I/O decoder fed with the bytes of RFC 6455
examples, so these tests need no sockets and run in milliseconds.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from wslab.closing import serialize_close
from wslab.display import (
    PART_COLOURS,
    fields_table,
    frame_diagram,
    hex_view,
    record_label,
    sequence_diagram,
)
from wslab.frames import Frame, Opcode, encode
from wslab.handshake import client_request, server_response
from wslab.tap import ConnectionDecoder
from wslab.traffic import Direction, Kind, Record

KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 section 1.3
MASK = b"\x37\xfa\x21\x3d"  # RFC 6455 section 5.7
HELLO_MASKED = bytes.fromhex("818537fa213d7f9f4d5158")  # 5.7: masked "Hello"


def session(text: bytes = b"Hello") -> list[Record]:
    """A whole WebSocket session, as the tap records it, at fixed times."""
    ticks = iter(i / 1000 for i in range(1000))
    decoder = ConnectionDecoder(1, lambda: next(ticks))
    up, down = Direction.TO_SERVER, Direction.TO_CLIENT
    records = [decoder.connect("127.0.0.1:5000 connected")]
    records += decoder.data(up, client_request("127.0.0.1:8080", "/chat", key=KEY).serialize())
    records += decoder.data(down, server_response(KEY).serialize())
    records += decoder.data(up, encode(Frame(Opcode.TEXT, text), MASK))
    records += decoder.data(down, encode(Frame(Opcode.TEXT, text)))
    records += decoder.data(up, encode(Frame(Opcode.PING, b"Hello"), MASK))
    records += decoder.data(down, encode(Frame(Opcode.PONG, b"Hello")))
    records += decoder.data(up, encode(Frame(Opcode.CLOSE, serialize_close(1000)), MASK))
    records += decoder.data(down, encode(Frame(Opcode.CLOSE, serialize_close(1000))))
    records += decoder.eof(down)
    records += decoder.eof(up)
    return records


def svg_of(html: str) -> ET.Element:
    """Parse the SVG inside the diagram's HTML; fails if it is not well-formed XML."""
    match = re.search(r"<svg.*</svg>", html, re.S)
    assert match is not None
    return ET.fromstring(match.group(0))


def texts_of(svg: ET.Element) -> list[str]:
    return [t.text or "" for t in svg.iter("{http://www.w3.org/2000/svg}text")]


def test_sequence_diagram_shows_the_whole_session_in_order() -> None:
    texts = texts_of(svg_of(sequence_diagram(session()).svg))
    assert texts[:2] == ["client", "server"]
    assert texts[2:] == [
        "TCP connect",
        "GET /chat HTTP/1.1 (Upgrade: websocket)",
        "HTTP/1.1 101 Switching Protocols",
        "TEXT 'Hello' [5 bytes]",
        "TEXT 'Hello' [5 bytes]",
        "PING 48 65 6c 6c 6f [5 bytes]",
        "PONG 48 65 6c 6c 6f [5 bytes]",
        "CLOSE 1000 (normal closure) [2 bytes]",
        "CLOSE 1000 (normal closure) [2 bytes]",
        "server closed TCP first (FIN)",
        "client closed TCP (FIN)",
    ]


def test_arrows_point_the_way_the_bytes_went() -> None:
    svg = svg_of(sequence_diagram(session()).svg)
    lines = [line for line in svg.iter("{http://www.w3.org/2000/svg}line")]
    arrows = [line for line in lines if line.get("y1") == line.get("y2")]
    # connect, request, then TEXT both ways: right, right, left, right, left ...
    going_right = [float(a.get("x2", 0)) > float(a.get("x1", 0)) for a in arrows]
    assert going_right == [True, True, False, True, False, True, False, True, False, False, True]


def test_diagram_is_deterministic_and_times_are_optional() -> None:
    first, second = sequence_diagram(session()), sequence_diagram(session())
    assert first.html == second.html and first.svg == second.svg
    assert not re.search(r"\d\.\d{3}s<", str(first.svg))
    timed = sequence_diagram(session(), times=True).svg
    assert ">0.003s<" in timed
    assert "sequence diagram of 11 records" in repr(first)
    assert first._repr_html_() == first.html


def test_payloads_are_escaped() -> None:
    evil = b"<script>alert('x')</script>&"
    records = session(evil)
    for text in (sequence_diagram(records).svg, hex_view(records).html):
        assert text is not None and "<script>" not in text
        assert "&lt;script&gt;" in text
    svg_of(sequence_diagram(records).svg)  # still well-formed
    assert "<script>" not in hex_view(session(b'"><img src=x onerror=alert(1)>')).html


def test_several_connections_are_numbered() -> None:
    records = session()
    other = [
        Record(r.time, 2, r.direction, r.kind, r.data, r.frame, r.header, r.text) for r in records
    ]
    texts = texts_of(svg_of(sequence_diagram(records + other).svg))
    assert "#1 TCP connect" in texts and "#2 TCP connect" in texts


def test_empty_and_long_transcripts() -> None:
    assert "no traffic recorded yet" in sequence_diagram([]).svg
    assert "no traffic recorded yet" in hex_view([]).html
    many = session() * 30
    assert "… 130 more records" in sequence_diagram(many, max_records=200).svg


def byte_spans(html: str) -> list[tuple[str, str]]:
    """The (part, hex) of every coloured byte in a hex view."""
    return re.findall(r'<span class="wslab-(\w+)"[^>]*>([0-9a-f]{2})</span>', html)


def test_hex_view_colours_each_byte_by_its_field() -> None:
    frame = next(r for r in session() if r.kind is Kind.FRAME)
    assert frame.data == HELLO_MASKED
    spans = byte_spans(hex_view([frame]).html)
    assert spans == [
        ("flags", "81"),
        ("length", "85"),
        ("mask", "37"),
        ("mask", "fa"),
        ("mask", "21"),
        ("mask", "3d"),
        ("payload", "7f"),
        ("payload", "9f"),
        ("payload", "4d"),
        ("payload", "51"),
        ("payload", "58"),
    ]
    html = hex_view([frame]).html
    for colour, label in PART_COLOURS.values():
        assert colour in html and label in html  # the legend


def test_hex_view_extended_length_and_payload_limit() -> None:
    data = encode(Frame(Opcode.BINARY, bytes(300)))
    decoder = ConnectionDecoder(1, lambda: 0.0)
    decoder.data(Direction.TO_CLIENT, server_response(KEY).serialize())
    (record,) = decoder.data(Direction.TO_CLIENT, data)
    html = hex_view([record], limit=10).html
    parts = [part for part, _ in byte_spans(html)]
    assert parts == ["flags", "length", "extended", "extended"] + ["payload"] * 10
    assert "… 290 more bytes" in html


def test_hex_view_shows_http_heads_as_text() -> None:
    html = hex_view(session()).html
    assert "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in html
    assert "GET /chat HTTP/1.1" in html


def test_frame_diagram_is_the_rfc_grid_with_real_bits() -> None:
    html = frame_diagram(HELLO_MASKED).html
    rows = re.findall(r"<tr>(.*?)</tr>", html.split("<tbody>")[1])
    widths = [sum(int(n) for n in re.findall(r'colspan="(\d+)"', row)) for row in rows]
    assert widths == [32, 32, 24]  # 2 + 4 header bytes, then 5 payload bytes
    cells = re.findall(r"<div style=\"font-family[^\"]*\">([01]+)</div>", html)
    assert cells[:7] == ["1", "0", "0", "0", "0001", "1", "0000101"]
    # The masking key crosses the 32-bit line, as in the RFC's drawing.
    assert cells[7:9] == ["0011011111111010", "0010000100111101"]
    assert "37^37=48 &#x27;H&#x27;" not in html and "7f^37=48 'H'" in html


@pytest.mark.parametrize(("size", "bits"), [(126, 16), (70000, 64)])
def test_frame_diagram_extended_lengths(size: int, bits: int) -> None:
    html = frame_diagram(encode(Frame(Opcode.BINARY, bytes(size)))).html
    assert "extended payload len" in html
    assert f"{size - 8} more payload bytes" in html
    lengths = re.findall(r'title="extended payload len = (\d+)', html)
    assert lengths and all(int(n) == size for n in lengths)
    rows = re.findall(r"<tr>(.*?)</tr>", html.split("<tbody>")[1])
    widths = [sum(int(n) for n in re.findall(r'colspan="(\d+)"', row)) for row in rows]
    assert sum(widths[:-1]) == 16 + bits + 64  # header, extension, 8 payload bytes


def test_frame_diagram_rejects_what_is_not_one_frame() -> None:
    with pytest.raises(ValueError, match="payload bytes"):
        frame_diagram(HELLO_MASKED[:-1])


def test_fields_table_colours_rows() -> None:
    html = fields_table(HELLO_MASKED).html
    assert html.count("<tr") == 1 + 9  # header row and the nine fields
    assert PART_COLOURS["mask"][0] in html and "&#x27;Hello&#x27;" not in html
    assert "'Hello'" in html


def test_record_labels() -> None:
    records = session()
    assert record_label(records[1]) == "GET /chat HTTP/1.1 (Upgrade: websocket)"
    assert record_label(records[3]) == "TEXT 'Hello' [5 bytes]"
    error = Record(0.0, 1, Direction.TO_SERVER, Kind.ERROR, b"x", text="not HTTP")
    assert record_label(error) == "error: not HTTP"


def test_message_level_records_of_a_server_are_drawn_too() -> None:
    up, down = Direction.TO_SERVER, Direction.TO_CLIENT
    records = [
        Record(0.0, 1, up, Kind.CONNECT, text="connect from 127.0.0.1:5000"),
        Record(0.1, 1, up, Kind.MESSAGE, b"hi", text="text 'hi'"),
        Record(0.2, 1, down, Kind.MESSAGE, b"You sent: hi", text="text 'You sent: hi'"),
        Record(0.3, 1, Direction.NONE, Kind.TCP_CLOSE, text="closed by the client: code 1000"),
    ]
    svg = svg_of(sequence_diagram(records).svg)
    assert texts_of(svg)[2:] == [
        "TCP connect",
        "text 'hi'",
        "text 'You sent: hi'",
        "closed by the client: code 1000",
    ]
    # The close has no direction, so it is a note across both lanes, not an arrow.
    rects = list(svg.iter("{http://www.w3.org/2000/svg}rect"))
    assert len(rects) == 3  # two lane heads and the note


def test_pictures_show_in_untrusted_notebooks() -> None:
    """JupyterLab renders image/svg+xml only when trusted and strips inline <svg>
    from untrusted HTML; an <img> with a data: URL shows either way."""
    import base64

    view = sequence_diagram(session())
    assert view.svg is not None and view._repr_svg_() == view.svg
    match = re.fullmatch(
        r'<img src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)" alt="[^"]*">', view.html
    )
    assert match and base64.b64decode(match.group(1)).decode() == view.svg
    assert "<svg" not in view.html
    assert "TEXT &#x27;Hello&#x27; [5 bytes]" in view.html  # the alt text lists the records
