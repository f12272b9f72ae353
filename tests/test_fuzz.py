"""Fuzz the parsers with random and mutated bytes (issue #6, hardening).

A peer controls every byte we parse, so the rule is: whatever arrives, the
frame decoder and the handshake parser raise only ``ProtocolError`` or
``HandshakeError``, and :meth:`Connection.receive_data` raises nothing at all
(it turns a protocol error into a ``Failed`` event and a close frame, RFC 6455
section 7.1.7). Nothing may hang or buffer without bound.

The inputs are mutations of valid streams (the RFC 6455 section 5.7 examples
and frames we encode), so that most examples get deep into the parser instead
of failing on the first byte. Valid streams, in any chunking, must decode to
what websockets' own parser sees in the same bytes.

The socket-level fuzz of both servers lives at the end of this file.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wslab.closing import is_valid_wire_code, parse_close
from wslab.connection import CloseReceived, Connection, Failed, Message, Ping, Pong, State
from wslab.errors import HandshakeError, ProtocolError
from wslab.frames import Frame, FrameDecoder, Opcode, Side, encode, parse_header
from wslab.handshake import Request, check_request, client_request, split_head

# The examples of RFC 6455 section 5.7, as a client (masked) would send them.
RFC_CLIENT_FRAMES = [
    bytes.fromhex("818537fa213d7f9f4d5158"),  # masked "Hello"
    bytes.fromhex("8985" + "37fa213d" + "7f9f4d5158"),  # masked ping "Hello"
]
RFC_SERVER_FRAMES = [
    bytes.fromhex("810548656c6c6f"),  # unmasked "Hello"
    bytes.fromhex("010348656c") + bytes.fromhex("80026c6f"),  # fragmented "Hel" + "lo"
    bytes.fromhex("890548656c6c6f"),  # unmasked ping "Hello"
    bytes.fromhex("8a0548656c6c6f"),  # unmasked pong "Hello"
    bytes.fromhex("827e0100") + bytes(256),  # 256 bytes binary, 16-bit length
    bytes.fromhex("827f0000000000010000") + bytes(65536),  # 64 KiB binary, 64-bit length
]

#: A small limit so that the "huge frame" paths are reached with small inputs.
MAX_SIZE = 4096
FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# -- strategies --------------------------------------------------------------------


@st.composite
def frames(draw: st.DrawFn) -> Frame:
    """A valid frame of any opcode (control payloads within 125 bytes)."""
    opcode = draw(st.sampled_from(list(Opcode)))
    if opcode in (Opcode.PING, Opcode.PONG):
        payload = draw(st.binary(max_size=125))
    elif opcode is Opcode.CLOSE:
        code = draw(st.sampled_from([1000, 1001, 1002, 1003, 1007, 1008, 1009, 1011, 3000, 4999]))
        reason = draw(st.text(max_size=20)).encode()[:100]
        payload = struct.pack("!H", code) + reason
    elif opcode is Opcode.TEXT:
        payload = draw(st.text(max_size=300)).encode()
    else:
        payload = draw(st.binary(max_size=300))
    fin = True if opcode in (Opcode.CLOSE, Opcode.PING, Opcode.PONG) else draw(st.booleans())
    return Frame(opcode, payload, fin=fin)


@st.composite
def client_streams(draw: st.DrawFn) -> bytes:
    """Bytes a client could send: masked frames, some from the RFC, some drawn."""
    parts = []
    for _ in range(draw(st.integers(1, 5))):
        if draw(st.booleans()):
            parts.append(draw(st.sampled_from(RFC_CLIENT_FRAMES)))
        else:
            parts.append(encode(draw(frames()), draw(st.binary(min_size=4, max_size=4))))
    return b"".join(parts)


@st.composite
def server_streams(draw: st.DrawFn) -> bytes:
    """Bytes a server could send: unmasked frames."""
    parts = []
    for _ in range(draw(st.integers(1, 5))):
        if draw(st.booleans()):
            parts.append(draw(st.sampled_from(RFC_SERVER_FRAMES[:4])))
        else:
            parts.append(encode(draw(frames())))
    return b"".join(parts)


@st.composite
def mutated(draw: st.DrawFn, base: st.SearchStrategy[bytes]) -> bytes:
    """Apply a few random edits (flip, replace, insert, delete, truncate) to ``base``."""
    data = bytearray(draw(base))
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        index = draw(st.integers(0, max(len(data) - 1, 0)))
        if action == "flip" and data:
            data[index] ^= 1 << draw(st.integers(0, 7))
        elif action == "set" and data:
            data[index] = draw(st.integers(0, 255))
        elif action == "insert":
            data[index:index] = draw(st.binary(min_size=1, max_size=8))
        elif action == "delete" and data:
            del data[index : index + draw(st.integers(1, 4))]
        elif action == "truncate":
            del data[index:]
    return bytes(data)


def chunked(data: bytes, cuts: list[int]) -> Iterator[bytes]:
    """Split ``data`` at the given offsets (as TCP may)."""
    start = 0
    for cut in sorted({c % (len(data) + 1) for c in cuts}):
        yield data[start:cut]
        start = cut
    yield data[start:]


cuts = st.lists(st.integers(0, 2**16), max_size=8)


def any_stream(base: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    """Random bytes, or a mutated valid stream (mostly the latter: it goes deeper)."""
    return st.one_of(st.binary(max_size=200), mutated(base), mutated(base), mutated(base))


# -- the frame decoder -------------------------------------------------------------


def feed_all(decoder: FrameDecoder, data: bytes, splits: list[int]) -> list[Frame]:
    """Feed ``data`` in chunks; stop at the first ProtocolError (as a peer must)."""
    out: list[Frame] = []
    for chunk in chunked(data, splits):
        out.extend(decoder.feed(chunk))
        # Section 5.2 / 10.4: nothing over the limit is ever buffered; at most one
        # incomplete frame (header + payload) waits in the decoder.
        assert decoder.buffered <= 14 + MAX_SIZE + len(chunk)
    return out


@FUZZ
@given(data=any_stream(client_streams()), splits=cuts)
def test_server_decoder_raises_only_protocol_error(data: bytes, splits: list[int]) -> None:
    decoder = FrameDecoder(Side.SERVER, max_size=MAX_SIZE)
    try:
        for frame in feed_all(decoder, data, splits):
            assert isinstance(frame.opcode, Opcode)
            frame.check()  # Whatever the decoder returns obeys section 5.
    except ProtocolError as error:
        assert error.code in (1002, 1007, 1009), error


@FUZZ
@given(data=any_stream(server_streams()), splits=cuts)
def test_client_decoder_raises_only_protocol_error(data: bytes, splits: list[int]) -> None:
    decoder = FrameDecoder(Side.CLIENT, max_size=MAX_SIZE)
    try:
        for frame in feed_all(decoder, data, splits):
            frame.check()
    except ProtocolError as error:
        assert error.code in (1002, 1007, 1009), error


@FUZZ
@given(data=st.one_of(client_streams(), server_streams()), splits=cuts)
def test_valid_streams_decode_like_websockets(data: bytes, splits: list[int]) -> None:
    """Any chunking of a valid stream gives the frames websockets' parser sees."""
    from websockets.frames import Frame as WsFrame
    from websockets.streams import StreamReader

    decoder = FrameDecoder(None, max_size=None)
    ours = [(f.opcode.value, f.fin, f.payload) for f in feed_all_unbounded(decoder, data, splits)]
    assert decoder.buffered == 0

    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    theirs = []
    while reader.buffer:
        # websockets' parser is told which side it is; the MASK bit says so here.
        parser = WsFrame.parse(reader.read_exact, mask=bool(reader.buffer[1] & 0x80))
        with pytest.raises(StopIteration) as done:
            next(parser)  # The stream is complete, so the parser never waits.
        frame = done.value.value
        theirs.append((frame.opcode.value, frame.fin, bytes(frame.data)))
    assert ours == theirs


def feed_all_unbounded(decoder: FrameDecoder, data: bytes, splits: list[int]) -> list[Frame]:
    return [frame for chunk in chunked(data, splits) for frame in decoder.feed(chunk)]


def test_huge_length_fails_before_payload() -> None:
    """A header announcing 100 MiB fails with 1009 at once, with 14 bytes buffered."""
    header = bytes([0x82, 0xFF]) + struct.pack("!Q", 100 * 2**20) + b"\x00\x00\x00\x00"
    decoder = FrameDecoder(Side.SERVER)
    with pytest.raises(ProtocolError) as info:
        decoder.feed(header + b"x" * 100)
    assert info.value.code == 1009
    assert parse_header(header) is not None


# -- the sans-I/O connection -------------------------------------------------------


def check_events(connection: Connection, events: list[Any]) -> None:
    """Whatever happened, the connection's answer is itself valid RFC 6455."""
    for event in events:
        assert isinstance(event, Message | Ping | Pong | CloseReceived | Failed)
        if isinstance(event, Failed):
            assert event.code in (1002, 1007, 1009)
            assert connection.state is State.CLOSED
    reply = connection.data_to_send()
    # The replies (pongs, our close) decode cleanly with the peer's decoder.
    peer_side = Side.CLIENT if connection.side is Side.SERVER else Side.SERVER
    for frame in FrameDecoder(peer_side, max_size=None).feed(reply):
        frame.check()
        if frame.opcode is Opcode.CLOSE and frame.payload:
            assert is_valid_wire_code(parse_close(frame.payload).code)


@FUZZ
@given(data=any_stream(client_streams()), splits=cuts)
def test_server_connection_never_raises(data: bytes, splits: list[int]) -> None:
    connection = Connection(Side.SERVER, max_size=MAX_SIZE)
    for chunk in chunked(data, splits):
        check_events(connection, connection.receive_data(chunk))


@FUZZ
@given(data=any_stream(server_streams()), splits=cuts)
def test_client_connection_never_raises(data: bytes, splits: list[int]) -> None:
    connection = Connection(Side.CLIENT, max_size=MAX_SIZE)
    for chunk in chunked(data, splits):
        check_events(connection, connection.receive_data(chunk))


# -- the opening handshake ---------------------------------------------------------


def valid_request(origin: str | None = None) -> bytes:
    request = client_request("127.0.0.1:8080", "/chat", origin=origin)
    return request.serialize()


request_bytes = st.builds(
    lambda o: valid_request(o), st.sampled_from([None, "http://127.0.0.1:8080"])
)


def parse_and_check(data: bytes) -> str | None:
    """What a server does with received bytes: split, parse, check."""
    split = split_head(data)
    if split is None:
        return None
    head, _rest = split
    return check_request(Request.parse(head), origins=["http://127.0.0.1:8080"])


@FUZZ
@given(data=any_stream(request_bytes))
def test_handshake_parser_raises_only_handshake_error(data: bytes) -> None:
    try:
        parse_and_check(data)
    except HandshakeError as error:
        assert error.status in (400, 403, 426, 431)
        assert "\n" not in str(error)


@pytest.mark.parametrize(
    "line",
    [b"X-Bad: a\nb", b"X-Bad: a\rb", b"X-Bad\r: b", b"X-Bad: \x00", b"\n: x"],
)
def test_bare_cr_or_lf_in_a_header_is_a_400(line: bytes) -> None:
    """Found by the fuzz: a lone CR or LF inside a header line is a 400, not a crash."""
    head = valid_request().replace(b"\r\n\r\n", b"\r\n" + line + b"\r\n\r\n")
    try:
        parse_and_check(head)
    except HandshakeError as error:
        assert error.status == 400


# -- both servers, over real sockets ------------------------------------------------

SOCKET_FUZZ = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
#: What a server may answer to a handshake: the page, the upgrade, or an error.
HANDSHAKE_STATUSES = {101, 200, 400, 403, 404, 405, 426, 431, 503}


@pytest.fixture(scope="module", params=["kernel", "raw"])
def live_server(request: pytest.FixtureRequest) -> Iterator[Any]:
    """One echo server per kind for the whole module, with a small message limit."""
    if request.param == "kernel":
        from wslab.server import serve

        # Public, as the raw server: the fuzz is about robustness, not the token.
        server: Any = serve("echo", port=0, max_size=MAX_SIZE, token=None)
    else:
        from wslab.raw import RawServer

        server = RawServer(
            "echo", port=0, max_size=MAX_SIZE, handshake_timeout=5, token=None
        ).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def server_errors() -> Iterator[list[str]]:
    """Collect what would be a traceback: thread crashes and logged errors."""
    errors: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            error = f"{record.name}: {record.getMessage()}"
            if record.exc_info and record.exc_info[1] is not None:
                error += f" ({record.exc_info[1]!r})"
            errors.append(error)

    handler = Collect(logging.ERROR)
    logging.getLogger().addHandler(handler)
    saved = threading.excepthook
    threading.excepthook = lambda args: errors.append(f"thread crashed: {args.exc_value!r}")
    try:
        yield errors
    finally:
        threading.excepthook = saved
        logging.getLogger().removeHandler(handler)


def exchange(port: int, data: bytes, timeout: float = 10.0, *, handshake: bool = False) -> bytes:
    """Send ``data``, then end our side (FIN); return all the server sent until it closed.

    With ``handshake``, first do a valid opening handshake and wait for its 101.
    A server that neither answers nor closes after our FIN hangs: TimeoutError.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        head = b""
        if handshake:
            sock.sendall(client_request(f"127.0.0.1:{port}", "/chat").serialize())
            while b"\r\n\r\n" not in head:
                chunk = sock.recv(65536)
                assert chunk, f"closed during the handshake: {head!r}"
                head += chunk
            assert head.startswith(b"HTTP/1.1 101 "), head[:80]
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            sock.sendall(data)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return head.partition(b"\r\n\r\n")[2] + b"".join(chunks)


def server_frames(data: bytes) -> list[Any]:
    """Parse what a server sent with websockets' parser (an independent decoder)."""
    from websockets.frames import Frame as WsFrame
    from websockets.streams import StreamReader

    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    frames = []
    while reader.buffer:
        parser = WsFrame.parse(reader.read_exact, mask=False)
        try:
            next(parser)
        except StopIteration as done:
            frames.append(done.value)
        else:
            pytest.fail(f"the server sent an incomplete frame: {bytes(reader.buffer)[:40]!r}")
    return frames


def assert_still_serves(port: int) -> None:
    from websockets.sync.client import connect

    with connect(f"ws://127.0.0.1:{port}/chat", open_timeout=10) as ws:
        ws.send("ok?")
        assert ws.recv(timeout=10) == "You sent: ok?"


@SOCKET_FUZZ
@given(data=any_stream(client_streams()))
def test_servers_survive_mutated_frames(
    live_server: Any, server_errors: list[str], data: bytes
) -> None:
    """After a good handshake, any bytes get echoes, a valid close, or a clean TCP close."""
    server_errors.clear()
    for frame in server_frames(exchange(live_server.port, data, handshake=True)):
        if frame.opcode.name == "CLOSE" and frame.data:
            code = struct.unpack("!H", frame.data[:2])[0]
            assert is_valid_wire_code(code), code
    assert not server_errors
    assert_still_serves(live_server.port)


@SOCKET_FUZZ
@given(data=any_stream(request_bytes))
def test_servers_survive_mutated_handshakes(
    live_server: Any, server_errors: list[str], data: bytes
) -> None:
    """Any request bytes get an HTTP answer with a one-line reason, or a clean close."""
    server_errors.clear()
    reply = exchange(live_server.port, data)
    if reply:
        head, _, body = reply.partition(b"\r\n\r\n")
        status_line = head.split(b"\r\n")[0].decode("latin-1")
        assert status_line.startswith("HTTP/1.1 "), status_line
        status = int(status_line.split()[1])
        assert status in HANDSHAKE_STATUSES, status_line
        if status >= 400:
            reason = body.decode().strip()
            assert reason and "\n" not in reason, reason
    assert not server_errors
    assert_still_serves(live_server.port)
