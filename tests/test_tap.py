"""The wire tap: a real client through the tap to a real server.

The server and client are independent implementations (websockets), or raw
sockets for byte-exact checks; the tap must forward every byte unchanged and
record what RFC 6455 says went over the wire.
"""

from __future__ import annotations

import itertools
import socket
import threading
import time
import tracemalloc
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from _servers import websockets_sync_server
from _util import launch_chromium
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request as WSRequest
from websockets.sync.client import connect
from websockets.sync.server import Server, ServerConnection

from wslab.closing import serialize_close
from wslab.errors import ServerStartError
from wslab.frames import Frame, Opcode, encode
from wslab.handshake import Request, Response, accept_key, client_request, server_response
from wslab.tap import Tap, taps
from wslab.traffic import Direction, Kind, Record

pytestmark = pytest.mark.timeout(30)


def _echo(ws: ServerConnection) -> None:
    for message in ws:
        ws.send(message)


def _page(connection: ServerConnection, request: WSRequest) -> object:
    """Answer plain HTTP GETs of / with a page, as wslab servers do."""
    if (
        request.path.split("?")[0] == "/"
        and "websocket" not in request.headers.get("Upgrade", "").lower()
    ):
        return connection.respond(200, "<h1>chat page</h1>\n")
    return None


@pytest.fixture
def upstream() -> Iterator[Server]:
    """A websockets echo server on a free port, in a thread."""
    with websockets_sync_server(_echo, process_request=_page) as server:
        yield server


@pytest.fixture
def tap(upstream: Server) -> Iterator[Tap]:
    port = upstream.socket.getsockname()[1]
    with Tap(f"ws://127.0.0.1:{port}/chat") as tap:
        yield tap


def _wait_for(tap: Tap, predicate: object, timeout: float = 5.0) -> list[Record]:
    """Wait until the records satisfy ``predicate`` (the tap decodes after forwarding)."""
    done = threading.Event()

    def check(_: Record | None = None) -> None:
        if predicate(tap.records):  # type: ignore[operator]
            done.set()

    unsubscribe = tap.recorder.subscribe(check)
    try:
        check()
        assert done.wait(timeout), f"records never matched; got {tap.records}"
    finally:
        unsubscribe()
    return tap.records


def _closed_twice(records: list[Record]) -> bool:
    return sum(r.kind is Kind.TCP_CLOSE for r in records) >= 2


def test_a_websocket_session_is_recorded_as_rfc_6455_describes(tap: Tap) -> None:
    with connect(tap.url, compression=None) as ws:
        ws.send("Hello")
        assert ws.recv(timeout=5) == "Hello"
        ws.send(b"\x00\xff")
        assert ws.recv(timeout=5) == b"\x00\xff"
        ws.ping(b"are you there").wait(5)
    records = _wait_for(tap, _closed_twice)

    kinds = [r.kind for r in records]
    assert kinds[:3] == [Kind.CONNECT, Kind.HTTP_REQUEST, Kind.HTTP_RESPONSE]
    request = Request.parse(records[1].data)
    response = Response.parse(records[2].data)
    assert request.path == "/chat?wslab_token=[redacted]"  # the token stays out of records
    assert tap.token is not None and tap.token not in repr(tap)
    assert response.status == 101
    key = request.headers.get("Sec-WebSocket-Key")
    assert key is not None
    assert response.headers.get("Sec-WebSocket-Accept") == accept_key(key)

    frames = tap.frames()
    assert [(d, f.opcode, f.payload) for d, f in frames] == [
        (Direction.TO_SERVER, Opcode.TEXT, b"Hello"),
        (Direction.TO_CLIENT, Opcode.TEXT, b"Hello"),
        (Direction.TO_SERVER, Opcode.BINARY, b"\x00\xff"),
        (Direction.TO_CLIENT, Opcode.BINARY, b"\x00\xff"),
        (Direction.TO_SERVER, Opcode.PING, b"are you there"),
        (Direction.TO_CLIENT, Opcode.PONG, b"are you there"),
        (Direction.TO_SERVER, Opcode.CLOSE, serialize_close(1000)),
        (Direction.TO_CLIENT, Opcode.CLOSE, serialize_close(1000)),
    ]
    for record in records:
        if record.kind is not Kind.FRAME:
            continue
        assert record.frame is not None and record.header is not None
        if record.direction is Direction.TO_SERVER:
            # Masked on the wire (5.3), unmasked in the decoded frame.
            mask_key = record.header.mask_key
            assert mask_key is not None
            assert record.data == encode(record.frame, mask_key)
            assert record.frame.payload not in record.data or not record.frame.payload
        else:
            assert record.header.mask_key is None
            assert record.data == encode(record.frame)

    # Section 7.1.1: the server closes TCP first; the tap says so.
    closes = [r for r in records if r.kind is Kind.TCP_CLOSE]
    assert [r.direction for r in closes] == [Direction.TO_CLIENT, Direction.TO_SERVER]
    assert "server closed TCP first" in closes[0].text
    assert records[-1].kind is Kind.TCP_CLOSE
    assert all(a.time <= b.time for a, b in itertools.pairwise(records))


def test_compressed_frames_are_shown_inflated(tap: Tap) -> None:
    # websockets negotiates permessage-deflate (RFC 7692) by default, as browsers do.
    with connect(tap.url) as ws:
        ws.send("Hello, Hello, Hello, Hello")
        assert ws.recv(timeout=5) == "Hello, Hello, Hello, Hello"
        ws.send(iter(["Hel", "lo"]))  # a fragmented message: TEXT then CONT (5.4)
        assert ws.recv(timeout=5) == "Hello"
    records = _wait_for(tap, _closed_twice)
    sent = [
        r
        for r in records
        if r.direction is Direction.TO_SERVER
        and r.frame is not None
        and r.frame.opcode in (Opcode.TEXT, Opcode.CONT)
    ]
    fragments = sent[1:]  # the second message
    assert fragments[0].text.startswith("TEXT 'Hel' [3 bytes, continued] (compressed to")
    assert fragments[1].text.startswith("CONT 'lo' [2 bytes")
    # RSV1 marks only the first fragment of a compressed message (RFC 7692 6.1).
    assert [r.frame.rsv1 for r in fragments if r.frame is not None] == [True] + [False] * (
        len(fragments) - 1
    )
    texts = [r for r in records if r.frame is not None and r.frame.opcode is Opcode.TEXT]
    texts = [r for r in texts if r.frame is not None and r.frame.fin][:2]
    assert len(texts) == 2
    for record in texts:
        assert record.frame is not None and record.frame.rsv1
        assert b"Hello" not in record.frame.payload  # compressed on the wire
        assert "'Hello, Hello, Hello, Hello'" in record.text
        assert f"compressed to {len(record.frame.payload)} bytes" in record.text


class _ScriptedServer:
    """A server for one connection on a free port: after the request head it
    sends ``script``, reads ``expect`` more bytes, closes TCP first (as a
    server should, 7.1.1) and reads until the client closes too.

    Attributes:
        port: Its port.
        received: Every byte it received.
    """

    def __init__(self, script: bytes, expect: int = 0) -> None:
        self.received = bytearray()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, args=(script, expect))
        self._thread.start()

    def _serve(self, script: bytes, expect: int) -> None:
        received = self.received
        conn, _ = self._listener.accept()
        with conn:
            while b"\r\n\r\n" not in received:
                received += conn.recv(4096)
            head_end = received.index(b"\r\n\r\n") + 4
            conn.sendall(script)
            while len(received) < head_end + expect:
                received += conn.recv(4096)
            conn.shutdown(socket.SHUT_WR)
            while chunk := conn.recv(4096):
                received += chunk

    def join(self) -> None:
        """Wait until it has closed its connection."""
        self._thread.join(5)

    def __enter__(self) -> _ScriptedServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self._listener.close()
        self.join()


def _exchange(port: int, request: bytes, *, piece: int = 65536) -> bytes:
    """Send ``request`` to ``port`` in pieces of ``piece`` bytes; read until it closes."""
    got = bytearray()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
        for i in range(0, len(request), piece):
            client.sendall(request[i : i + piece])
        while chunk := client.recv(65536):
            got += chunk
    return bytes(got)


def test_bytes_are_forwarded_unchanged_both_ways() -> None:
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    request = client_request("127.0.0.1", "/chat", key=key).serialize()
    client_frames = (
        encode(Frame(Opcode.TEXT, b"Hello"), b"\x37\xfa\x21\x3d")  # RFC 6455 5.7
        + encode(Frame(Opcode.TEXT, b"Hel", fin=False), b"\x01\x02\x03\x04")
        + encode(Frame(Opcode.CONT, b"lo"), b"\x05\x06\x07\x08")
        + encode(Frame(Opcode.BINARY, bytes(range(256)) * 300), b"\xaa\xbb\xcc\xdd")
        + encode(Frame(Opcode.CLOSE, serialize_close(1000)), b"\x00\x00\x00\x00")
    )
    server_script = (
        server_response(key).serialize()
        + encode(Frame(Opcode.TEXT, b"Hello"))
        + encode(Frame(Opcode.PING, b"Hello"))
        + encode(Frame(Opcode.CLOSE, serialize_close(1001, "bye")))
    )
    with _ScriptedServer(server_script, len(client_frames)) as upstream:
        with Tap(f"ws://127.0.0.1:{upstream.port}/chat", token=None) as tap:
            # Dribble the request and the frames in small pieces.
            got = _exchange(tap.port, request + client_frames, piece=7000)
            upstream.join()
            records = _wait_for(tap, _closed_twice)

    assert bytes(upstream.received) == request + client_frames
    assert bytes(got) == server_script
    # Every byte is in exactly one record, in order, in each direction.
    for direction, stream in (
        (Direction.TO_SERVER, upstream.received),
        (Direction.TO_CLIENT, got),
    ):
        assert b"".join(r.data for r in records if r.direction is direction) == stream
    frames = tap.frames()
    assert [f.payload for d, f in frames if d is Direction.TO_SERVER][:3] == [
        b"Hello",
        b"Hel",
        b"lo",
    ]
    assert (Direction.TO_CLIENT, Frame(Opcode.PING, b"Hello")) in frames
    rfc_example = next(r for r in records if r.direction is Direction.TO_SERVER and r.frame)
    assert rfc_example.data == bytes.fromhex("818537fa213d7f9f4d5158")
    assert not any(r.kind is Kind.ERROR for r in records)


def test_a_plain_http_get_passes_through(tap: Tap, upstream: Server) -> None:
    with urllib.request.urlopen(tap.page_url, timeout=5) as reply:
        assert reply.status == 200
        assert reply.read() == b"<h1>chat page</h1>\n"
    records = _wait_for(tap, lambda rs: any(r.kind is Kind.HTTP_RESPONSE for r in rs))
    request = next(r for r in records if r.kind is Kind.HTTP_REQUEST)
    response = next(r for r in records if r.kind is Kind.HTTP_RESPONSE)
    assert request.text == "GET /?wslab_token=[redacted] HTTP/1.1"
    assert response.text == "HTTP/1.1 200 OK"
    assert response.data.endswith(b"\r\n\r\n<h1>chat page</h1>\n")
    assert not any(r.kind is Kind.FRAME for r in records)


def test_a_refused_upgrade_is_recorded_as_http() -> None:
    body = b"Origin not allowed\n"
    refusal = b"HTTP/1.1 403 Forbidden\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    with _ScriptedServer(refusal) as upstream:
        with Tap(f"ws://127.0.0.1:{upstream.port}/chat", token=None) as tap:
            request = client_request("127.0.0.1", "/chat", origin="http://evil").serialize()
            got = _exchange(tap.port, request)
            upstream.join()
            records = _wait_for(tap, _closed_twice)
    assert got == refusal
    response = next(r for r in records if r.kind is Kind.HTTP_RESPONSE)
    assert response.text == "HTTP/1.1 403 Forbidden" and response.data == refusal
    assert not any(r.kind in (Kind.FRAME, Kind.ERROR) for r in records)


def test_undecodable_bytes_are_forwarded_and_reported() -> None:
    garbage = b"\x16\x03\x01 this is TLS, not HTTP\r\n\r\n"
    with _ScriptedServer(b"") as upstream:
        with Tap(f"ws://127.0.0.1:{upstream.port}/", token=None) as tap:
            assert _exchange(tap.port, garbage) == b""
            upstream.join()
            records = _wait_for(tap, _closed_twice)
    assert bytes(upstream.received) == garbage
    errors = [r for r in records if r.kind is Kind.ERROR]
    assert len(errors) == 1 and errors[0].data == garbage
    assert "malformed HTTP" in errors[0].text


def test_many_connections_at_once(tap: Tap) -> None:
    def talk(n: int) -> str:
        with connect(tap.url, compression=None) as ws:
            ws.send(f"message {n}")
            return str(ws.recv(timeout=10))

    with ThreadPoolExecutor(max_workers=10) as pool:
        replies = list(pool.map(talk, range(30)))
    assert replies == [f"message {n}" for n in range(30)]
    records = _wait_for(tap, lambda rs: sum(r.kind is Kind.TCP_CLOSE for r in rs) == 60)
    connections = {r.connection for r in records if r.kind is Kind.CONNECT}
    assert len(connections) == 30
    for connection in connections:
        texts = [f.payload for _, f in tap.frames(connection) if f.opcode is Opcode.TEXT]
        assert len(texts) == 2 and texts[0] == texts[1]


def test_stop_closes_the_listener_and_open_connections(upstream: Server) -> None:
    port = upstream.socket.getsockname()[1]
    tap = Tap(f"ws://127.0.0.1:{port}/chat")
    assert tap in taps()
    with connect(tap.url, compression=None) as ws:
        tap.stop()
        assert not tap.running and tap not in taps()
        assert not tap._handlers and not tap._writers  # no leaked tasks or sockets
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", tap.port), timeout=5).close()
        with pytest.raises(ConnectionClosed):  # the tap dropped the connection
            ws.send("still there?")
            ws.recv(timeout=5)
    tap.stop()  # stopping twice is fine
    assert "stopped" in repr(tap)


def test_a_server_object_works_as_upstream(upstream: Server) -> None:
    class FakeServer:
        host = "127.0.0.1"
        port = upstream.socket.getsockname()[1]
        path = "/room"

    with Tap(FakeServer()) as tap:
        # A public upstream: the tap is private all the same, with its own token.
        assert tap.url == f"ws://127.0.0.1:{tap.port}/room?wslab_token={tap.token}"
        assert tap.page_url == f"http://127.0.0.1:{tap.port}/?wslab_token={tap.token}"
        with connect(tap.url, compression=None) as ws:
            ws.send("hi")
            assert ws.recv(timeout=5) == "hi"
        records = _wait_for(tap, _closed_twice)
        assert Request.parse(records[1].data).path == "/room?wslab_token=[redacted]"
        tap.clear()
        assert tap.records == []


def test_an_unreachable_server_is_reported() -> None:
    with socket.create_server(("127.0.0.1", 0)) as placeholder:
        port = placeholder.getsockname()[1]
    # Nothing listens on ``port`` any more.
    with Tap(f"ws://127.0.0.1:{port}/chat") as tap:
        with socket.create_connection(("127.0.0.1", tap.port), timeout=5) as client:
            # The tap connects once a request passed its rules.
            client.sendall(
                client_request(
                    f"127.0.0.1:{tap.port}", f"/chat?wslab_token={tap.token}"
                ).serialize()
            )
            assert client.recv(10) == b""
        records = _wait_for(tap, lambda rs: bool(rs))
    assert records[0].kind is Kind.ERROR
    assert "cannot reach the server" in records[0].text


def test_bad_arguments_give_clear_errors() -> None:
    with pytest.raises(ValueError, match="ws://"):
        Tap("http://127.0.0.1:8080/chat")
    with pytest.raises(ValueError, match="wss://"):
        Tap("wss://127.0.0.1:8080/chat")
    with pytest.raises(ValueError, match="Tap\\(\\) takes"):
        Tap(8080)  # type: ignore[arg-type]
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        with pytest.raises(ServerStartError, match="already in use"):
            Tap("ws://127.0.0.1:9/chat", port=port)


def test_records_can_be_decoded_from_any_chunking() -> None:
    """The decoder alone (sans I/O): one byte at a time gives the same records."""
    from wslab.tap import ConnectionDecoder

    key = "dGhlIHNhbXBsZSBub25jZQ=="
    up = client_request("h", "/chat", key=key).serialize() + encode(
        Frame(Opcode.TEXT, b"Hello"), b"\x37\xfa\x21\x3d"
    )
    down = server_response(key).serialize() + encode(Frame(Opcode.TEXT, b"Hello"))

    def decode(step: int) -> list[tuple[object, ...]]:
        decoder = ConnectionDecoder(1, lambda: 0.0)
        records = []
        for i in range(0, max(len(up), len(down)), step):
            records += decoder.data(Direction.TO_SERVER, up[i : i + step])
            records += decoder.data(Direction.TO_CLIENT, down[i : i + step])
        return sorted((r.direction.name, r.kind.name, r.data, r.text) for r in records)

    whole = decode(len(up) + len(down))
    assert decode(1) == whole
    assert [kind for _, kind, _, _ in whole].count("FRAME") == 2


def test_server_tap_stops_with_its_server() -> None:
    import wslab

    server = wslab.serve("echo", port=0)
    try:
        tap = server.tap()
        assert tap.token == server.token  # the same secret: the bytes pass unchanged
        assert tap.url == server.url.replace(str(server.port), str(tap.port))
        with wslab.Client(tap) as client:
            client.send("Hello")
            assert client.recv(timeout=5) == "You sent: Hello"
        _wait_for(tap, _closed_twice)
        # The SVG is an <img> (display.py): its alt text is escaped once.
        assert "TEXT &#x27;Hello&#x27; [5 bytes]" in tap._repr_html_()
        svg = tap.diagram(1).svg
        assert svg is not None and "TEXT 'Hello' [5 bytes]" in svg
        lanes = tap.diagram(2).svg
        assert lanes is not None and lanes.count("<line") == 2  # just the lanes: no connection 2
        assert "wslab-mask" in tap.hex_view().html
    finally:
        server.stop()
    assert not tap.running


@pytest.mark.browser
def test_a_browser_through_the_tap() -> None:
    """Chromium loads the page through the tap and chats: the tap sees it all."""
    import wslab

    server = wslab.serve("echo", port=0)
    try:
        tap = server.tap()
        with launch_chromium() as browser:
            page = browser.new_page()
            page.goto(tap.page_url, timeout=15000)
            page.wait_for_function("document.getElementById('status').textContent == 'open'")
            page.fill("#message", "Hello from <b>chromium</b>")
            page.click("#send")
            page.wait_for_selector("#messages li:has-text('You sent: Hello from')")
            page.click("#close")
            page.wait_for_function(
                "document.getElementById('status').textContent.startsWith('closed')"
            )
        records = _wait_for(tap, lambda rs: any(r.opcode is Opcode.CLOSE for r in rs[-3:]))
    finally:
        server.stop()
    requests = [Request.parse(r.data) for r in records if r.kind is Kind.HTTP_REQUEST]
    assert requests[0].path == "/?wslab_token=[redacted]"
    upgrade = next(r for r in requests if r.path.startswith("/chat?wslab_token=[redacted]"))
    assert upgrade.headers.get("Origin") == f"http://127.0.0.1:{tap.port}"
    frames = tap.frames()
    assert (Direction.TO_SERVER, Frame(Opcode.TEXT, b"Hello from <b>chromium</b>")) in frames
    sent = next(r for r in records if r.frame and r.frame.opcode is Opcode.TEXT)
    assert sent.header is not None and sent.header.masked  # browsers mask (5.3)
    assert (Direction.TO_CLIENT, Frame(Opcode.TEXT, b"You sent: Hello from <b>chromium</b>")) in (
        frames
    )
    closes = [d for d, f in frames if f.opcode is Opcode.CLOSE]
    assert closes == [Direction.TO_SERVER, Direction.TO_CLIENT]


def test_a_reset_is_told_apart_from_a_fin() -> None:
    import struct

    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def until_closed() -> None:
            conn, _ = listener.accept()
            with conn:
                while conn.recv(4096):
                    pass

        server = threading.Thread(target=until_closed)
        server.start()
        with Tap(f"ws://127.0.0.1:{port}/", token=None) as tap:
            client = socket.create_connection(("127.0.0.1", tap.port), timeout=5)
            client.sendall(b"GET / HTTP/1.1\r\n\r\n")
            _wait_for(tap, lambda rs: any(r.kind is Kind.HTTP_REQUEST for r in rs))
            # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.close()
            records = _wait_for(tap, _closed_twice)
            server.join(5)
    closes = [r.text for r in records if r.kind is Kind.TCP_CLOSE]
    assert closes[0] == "client reset TCP (RST) first"


def test_a_decoding_bug_becomes_an_error_record(monkeypatch: pytest.MonkeyPatch) -> None:
    """Watching must never break forwarding: the decoder itself never raises."""
    from wslab.frames import FrameDecoder
    from wslab.tap import ConnectionDecoder

    def broken(self: FrameDecoder, data: bytes) -> list[object]:
        raise RuntimeError("bug")

    monkeypatch.setattr(FrameDecoder, "feed_raw", broken)
    decoder = ConnectionDecoder(1, lambda: 0.0)
    decoder.data(
        Direction.TO_SERVER, client_request("h", "/", key="dGhlIHNhbXBsZSBub25jZQ==").serialize()
    )
    decoder.data(Direction.TO_CLIENT, server_response("dGhlIHNhbXBsZSBub25jZQ==").serialize())
    frame = encode(Frame(Opcode.TEXT, b"Hello"))
    (record,) = decoder.data(Direction.TO_CLIENT, frame)
    assert record.kind is Kind.ERROR and record.data == frame
    assert "cannot decode this: RuntimeError('bug')" in record.text
    (after,) = decoder.data(Direction.TO_CLIENT, frame)
    assert after.kind is Kind.ERROR and after.data == frame


def test_an_invalid_frame_keeps_all_its_bytes_in_the_error_record() -> None:
    from wslab.tap import ConnectionDecoder

    decoder = ConnectionDecoder(1, lambda: 0.0)
    decoder.data(Direction.TO_CLIENT, server_response("dGhlIHNhbXBsZSBub25jZQ==").serialize())
    hello = encode(Frame(Opcode.TEXT, b"Hello"))
    (first,) = decoder.data(Direction.TO_CLIENT, hello + b"\x83")  # and a partial header
    assert first.kind is Kind.FRAME and first.data == hello
    (error,) = decoder.data(Direction.TO_CLIENT, b"\x00")
    assert error.kind is Kind.ERROR
    assert error.data == b"\x83\x00"  # reserved opcode 0x3 (5.2), from both chunks
    assert "reserved opcode" in error.text
    (closed,) = decoder.eof(Direction.TO_CLIENT)
    assert closed.text == "server closed TCP first (FIN)"


def test_a_body_that_runs_until_close_is_recorded_whole() -> None:
    reply = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nno length: read until FIN"
    with _ScriptedServer(reply) as upstream:
        with Tap(f"ws://127.0.0.1:{upstream.port}/", token=None) as tap:
            got = _exchange(tap.port, b"GET /plain HTTP/1.0\r\n\r\n")
            upstream.join()
            records = _wait_for(tap, _closed_twice)
    assert got == reply
    kinds = [(r.direction, r.kind) for r in records]
    assert kinds[-3:] == [
        (Direction.TO_CLIENT, Kind.HTTP_RESPONSE),
        (Direction.TO_CLIENT, Kind.TCP_CLOSE),
        (Direction.TO_SERVER, Kind.TCP_CLOSE),
    ]
    assert records[-3].data == reply


def test_the_from_scratch_server_and_client_through_the_tap() -> None:
    """wslab.raw on both ends: the tap's records match what RawClient sent."""
    from wslab.raw import RawClient, RawServer

    with RawServer("echo", port=0).start() as server, Tap(server) as tap:
        client = RawClient.connect(tap.url, mask_key=b"\x37\xfa\x21\x3d")
        try:
            client.send("Hello")
            assert client.recv(timeout=5) == "You sent: Hello"
        finally:
            client.close()
        records = _wait_for(tap, _closed_twice)
    sent = next(r for r in records if r.kind is Kind.FRAME)
    assert sent.data == bytes.fromhex("818537fa213d7f9f4d5158")  # RFC 6455 5.7
    closes = [r for r in records if r.kind is Kind.TCP_CLOSE]
    assert closes[0].direction is Direction.TO_CLIENT  # the server closes TCP first (7.1.1)


def test_stop_works_from_a_callback_on_the_loop(upstream: Server) -> None:
    from wslab.loop import run_sync

    port = upstream.socket.getsockname()[1]
    tap = Tap(f"ws://127.0.0.1:{port}/chat")

    async def stop_from_the_loop() -> None:
        tap.stop()  # must neither deadlock nor raise

    run_sync(stop_from_the_loop(), timeout=5)
    assert not tap.running
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", tap.port), timeout=5).close()
        except ConnectionRefusedError:
            break
        time.sleep(0.01)
    else:
        pytest.fail("the tap still listens after stop()")


def test_wait_closed_returns_once_both_fins_are_recorded(tap: Tap) -> None:
    """Section 7.1.1: the tap sees the server's FIN and the client's, then wait_closed returns."""
    with connect(tap.url) as ws:
        ws.send("Hello")
        ws.recv()
        # While the connection is open, waiting must time out rather than return.
        with pytest.raises(TimeoutError, match="still open"):
            tap.wait_closed(timeout=0.05)
    tap.wait_closed(timeout=5)
    closes = [r for r in tap.records if r.kind is Kind.TCP_CLOSE]
    assert len(closes) == 2
    assert {r.direction for r in closes} == {Direction.TO_SERVER, Direction.TO_CLIENT}


# -- issue #10: the tap is private, and discreet ----------------------------------------

SECRET_COOKIE = "jupyterhub-user-stu2=SESSION-SECRET-42"
SECRET_AUTH = "token HUB-API-SECRET-43"


def _request_with_credentials(tap: Tap, path: str) -> bytes:
    request = client_request(
        f"127.0.0.1:{tap.port}",
        path,
        headers=[("Cookie", SECRET_COOKIE), ("Authorization", SECRET_AUTH)],
    )
    return request.serialize()


def test_credentials_are_forwarded_but_never_recorded() -> None:
    refusal = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nSet-Cookie: s=SET-SECRET\r\n\r\n"
    with _ScriptedServer(refusal) as upstream:
        with Tap(f"ws://127.0.0.1:{upstream.port}/chat?wslab_token=UPSTREAM-TOKEN-1234567") as tap:
            assert tap.token == "UPSTREAM-TOKEN-1234567"  # the upstream's own secret
            _exchange(tap.port, _request_with_credentials(tap, f"/chat?wslab_token={tap.token}"))
            upstream.join()
            records = _wait_for(tap, _closed_twice)
            shown = [
                repr(tap),
                tap.diagram().svg or "",
                tap.hex_view().html,
                *(r.text for r in records),
                *(r.data.decode("latin-1") for r in records),
            ]
    # The bytes went through unchanged: the server saw the cookie and the token.
    assert (
        SECRET_COOKIE.encode() in upstream.received
        and b"UPSTREAM-TOKEN-1234567" in upstream.received
    )
    for secret in ("SESSION-SECRET-42", "HUB-API-SECRET-43", "UPSTREAM-TOKEN", "SET-SECRET"):
        assert not any(secret in text for text in shown), secret
    request = next(r for r in records if r.kind is Kind.HTTP_REQUEST)
    assert b"Cookie: [redacted]\r\n" in request.data
    assert request.text == "GET /chat?wslab_token=[redacted] HTTP/1.1"


def test_show_credentials_shows_them() -> None:
    with _ScriptedServer(b"HTTP/1.1 404 Not Found\r\n\r\n") as upstream:
        with Tap(f"ws://127.0.0.1:{upstream.port}/chat", show_credentials=True) as tap:
            _exchange(tap.port, _request_with_credentials(tap, f"/chat?wslab_token={tap.token}"))
            upstream.join()
            records = _wait_for(tap, _closed_twice)
    request = next(r for r in records if r.kind is Kind.HTTP_REQUEST)
    assert SECRET_COOKIE.encode() in request.data and (tap.token or "") in request.text


@pytest.mark.parametrize(
    ("path", "host", "reason"),
    [
        ("/chat", "127.0.0.1:{port}", b"private"),
        ("/chat?wslab_token=nope", "127.0.0.1:{port}", b"wrong token"),
        ("/?wslab_token={token}", "evil.example:{port}", b"DNS rebinding"),
    ],
)
def test_the_tap_refuses_before_forwarding_or_recording(
    upstream: Server, path: str, host: str, reason: bytes
) -> None:
    port = upstream.socket.getsockname()[1]
    with Tap(f"ws://127.0.0.1:{port}/chat") as tap:
        request = _request_with_credentials(tap, path.format(token=tap.token)).replace(
            f"Host: 127.0.0.1:{tap.port}".encode(),
            f"Host: {host.format(port=tap.port)}".encode(),
        )
        answer = _exchange(tap.port, request)
        assert answer.startswith(b"HTTP/1.1 403 Forbidden\r\n") and reason in answer
        records = _wait_for(tap, lambda rs: bool(rs))
    assert [r.kind for r in records] == [Kind.ERROR]  # no CONNECT: nothing reached the server
    assert records[0].text.startswith("refused: 403 Forbidden: ")
    assert "SESSION-SECRET" not in records[0].text and not records[0].data


_HEAD_101 = server_response("dGhlIHNhbXBsZSBub25jZQ==").serialize()
_UPGRADE = client_request("127.0.0.1", "/chat", key="dGhlIHNhbXBsZSBub25jZQ==").serialize()


@pytest.mark.parametrize(
    ("direction", "start"),
    [
        # A header that claims 2**40 bytes: the tap held every byte of it.
        (Direction.TO_CLIENT, _HEAD_101 + b"\x82\x7f" + (2**40).to_bytes(8, "big")),
        # A response without a length: its body runs until the server closes.
        (Direction.TO_CLIENT, b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n"),
        # A client that sends after its Upgrade without waiting for the 101.
        (Direction.TO_SERVER, _UPGRADE),
    ],
    ids=["2**40-byte frame", "body until close", "bytes before the 101"],
)
def test_an_endless_frame_or_body_is_not_held_in_memory(
    direction: Direction, start: bytes
) -> None:
    """A hostile peer streaming 48 MiB grew the tap as much (3 GiB in 8 s through a real tap)."""
    from wslab.tap import ConnectionDecoder

    decoder = ConnectionDecoder(1, lambda: 0.0)
    records = decoder.data(direction, start)
    chunk = bytes(65536)
    tracemalloc.start()
    try:
        for _ in range(48 * 16):  # 48 MiB, in a tap's reads
            records += decoder.data(direction, chunk)[:1]  # records are the recorder's to bound
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 24 * 2**20, f"the decoder held {peak / 2**20:.0f} MiB"
    errors = [r for r in records if r.kind is Kind.ERROR]
    assert "too big for the tap to decode" in errors[0].text, errors[0].text
    assert "forwarded unchanged" in errors[0].text
