"""The in-kernel server (wslab.server, wslab.handlers), tested in this process.

Clients are independent implementations: the websockets sync client, and raw
sockets speaking bytes built with wslab's core (to misbehave on purpose).
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from _servers import port_is_free
from _util import wait_until
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

import wslab
import wslab.handlers
import wslab.server
from wslab.closing import parse_close
from wslab.errors import LoopBlockedError, ServerStartError
from wslab.frames import Frame, FrameDecoder, Opcode, Side, encode, new_mask_key
from wslab.handlers import Chat
from wslab.handshake import Response, client_request, split_head
from wslab.rules import origin_allowed
from wslab.server import Server
from wslab.traffic import Direction, Kind

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def start() -> Iterator[Callable[..., Server]]:
    """Start servers on free ports; stop them all afterwards, whatever happens."""
    started: list[Server] = []

    def _start(handler: Any = "echo", **options: Any) -> Server:
        options.setdefault("port", 0)
        server = wslab.serve(handler, **options)
        started.append(server)
        return server

    try:
        yield _start
    finally:
        for server in started:
            server.stop()


def ws_connect(url: str, **kwargs: Any) -> ClientConnection:
    return connect(url, open_timeout=5, close_timeout=2, compression=None, **kwargs)


def named(server: Server, name: str) -> str:
    """The server's URL (with its token) and a chat name."""
    return f"{server.url}&name={name}" if server.token else f"{server.url}?name={name}"


def target(server: Server) -> str:
    """The request target of the server's WebSocket URL: its path and token."""
    parts = urllib.parse.urlsplit(server.url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


class RawClient:
    """A hand-driven client socket, for handshakes and frames a library won't send."""

    def __init__(
        self,
        server: Server,
        *,
        host: str | None = None,
        origin: str | None = None,
        rcvbuf: int | None = None,
    ) -> None:
        self.sock = socket.socket()
        if rcvbuf is not None:  # before connect(), so that the TCP window is small too
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(5)
        self.sock.connect(("127.0.0.1", server.port))
        self.host = host or f"127.0.0.1:{server.port}"
        self.path = target(server)
        self.origin = origin
        self.rest = b""

    def handshake(self, path: str | None = None) -> Response:
        request = client_request(self.host, path or self.path, origin=self.origin)
        self.sock.sendall(request.serialize())
        buffer = b""
        while (parts := split_head(buffer)) is None:
            chunk = self.sock.recv(4096)
            assert chunk, "server closed during the handshake"
            buffer += chunk
        head, self.rest = parts
        return Response.parse(head)

    def send_frame(self, frame: Frame) -> None:
        self.sock.sendall(encode(frame, new_mask_key()))

    def frames_until_close(self) -> list[Frame]:
        """Read frames until a close frame (or EOF)."""
        decoder = FrameDecoder(Side.CLIENT)
        frames = decoder.feed(self.rest)
        while not any(f.opcode is Opcode.CLOSE for f in frames):
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            frames += decoder.feed(chunk)
        return frames

    def close(self) -> None:
        self.sock.close()


def close_code(frames: list[Frame]) -> int:
    closes = [f for f in frames if f.opcode is Opcode.CLOSE]
    assert closes, f"no close frame among {frames}"
    return parse_close(closes[0].payload).code


# -- basics ------------------------------------------------------------------


def test_echo_text_and_binary(start: Callable[..., Server]) -> None:
    server = start("echo")
    assert server.token is not None
    assert server.url == f"ws://127.0.0.1:{server.port}/chat?wslab_token={server.token}"
    assert server.page_url == f"http://127.0.0.1:{server.port}/?wslab_token={server.token}"
    with ws_connect(server.url) as ws:
        ws.send("hello")
        assert ws.recv(timeout=5) == "You sent: hello"
        ws.send(b"\x00\xff")
        assert ws.recv(timeout=5) == b"\x00\xff"


def test_echo_with_wsproto(start: Callable[..., Server]) -> None:
    """A second independent implementation, driven by hand over a socket."""
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import (
        AcceptConnection,
        BytesMessage,
        CloseConnection,
        Request,
        TextMessage,
    )

    server = start("echo")
    ws = WSConnection(ConnectionType.CLIENT)
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:

        def events_until(kind: type) -> list[Any]:
            seen: list[Any] = []
            while not any(isinstance(e, kind) for e in seen):
                data = sock.recv(65536)
                assert data, f"the server closed the connection; events so far: {seen}"
                ws.receive_data(data)
                seen += list(ws.events())
            return seen

        sock.sendall(ws.send(Request(host=f"127.0.0.1:{server.port}", target=target(server))))
        events_until(AcceptConnection)
        sock.sendall(ws.send(TextMessage("wsproto")) + ws.send(BytesMessage(b"\x01")))
        got = [e for e in events_until(BytesMessage) if isinstance(e, TextMessage | BytesMessage)]
        assert [e.data for e in got] == ["You sent: wsproto", b"\x01"]
        sock.sendall(ws.send(CloseConnection(code=1000)))
        closing = events_until(CloseConnection)
        assert [e.code for e in closing if isinstance(e, CloseConnection)] == [1000]


def test_repr_shows_url_handler_clients_state(start: Callable[..., Server]) -> None:
    server = start("chat")
    with ws_connect(server.url):
        wait_until(lambda: len(server.clients) == 1)
        text = repr(server)
        assert server.url.split("?")[0] in text and "handler=chat" in text and "clients=1" in text
        assert server.token not in text  # a password: never saved into a notebook
        assert "running" in text
        assert "127.0.0.1" in server._repr_html_() and "1009" in server._repr_html_()
    server.stop()
    assert "stopped" in repr(server)


def test_same_port_replaces_previous_server(start: Callable[..., Server]) -> None:
    first = start("echo")
    port = first.port
    second = start("chat", port=port)
    assert not first.running and second.running and second.port == port
    assert [s for s in wslab.servers() if s.port == port] == [second]
    with ws_connect(named(second, "Ann")) as ws:
        assert ws.recv(timeout=5) == "* Ann joined"


def test_stop_frees_port_and_closes_clients_with_1001(start: Callable[..., Server]) -> None:
    server = start("echo")
    with ws_connect(server.url) as ws:
        server.stop()
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=5)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1001
    assert port_is_free(server.port)
    assert server not in wslab.servers()
    server.stop()  # twice is fine


def test_context_manager_stops(start: Callable[..., Server]) -> None:
    with start("echo") as server:
        assert server.running
    assert not server.running and port_is_free(server.port)


def test_port_used_by_another_program_gives_one_line_error() -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        with pytest.raises(ServerStartError) as info:
            wslab.serve("echo", port=port)
    message = str(info.value)
    assert str(port) in message and "port=0" in message and "\n" not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__


@pytest.mark.parametrize("port", [-1, 70000, "8080", 80.5, True])
def test_bad_port(port: Any) -> None:
    with pytest.raises(ServerStartError, match="port"):
        wslab.serve("echo", port=port)


@pytest.mark.parametrize(
    "option", [{"max_size": "1MB"}, {"max_clients": 0}, {"ping_interval": -1}]
)
def test_bad_limits(option: dict[str, Any]) -> None:
    with pytest.raises(ServerStartError, match=f"{next(iter(option))} must be a positive"):
        wslab.serve("echo", port=0, **option)


def test_remote_host_needs_allow_remote() -> None:
    with pytest.raises(ServerStartError, match="allow_remote=True"):
        wslab.serve("echo", host="0.0.0.0", port=0)


def test_allow_remote_warns_and_shows_in_the_repr() -> None:
    with pytest.warns(UserWarning, match="other machines"):
        server = Server("echo", host="0.0.0.0", port=0, allow_remote=True)  # not started
    assert server.url.startswith("ws://127.0.0.1:") and "remote allowed" in server._repr_html_()


def test_ipv6_loopback(start: Callable[..., Server]) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        server = start("echo", host="::1")
    except ServerStartError as exc:
        pytest.skip(f"IPv6 loopback unavailable: {exc}")
    assert server.url == f"ws://[::1]:{server.port}/chat?wslab_token={server.token}"
    with ws_connect(server.url) as ws:
        ws.send("six")
        assert ws.recv(timeout=5) == "You sent: six"


def test_unknown_handler_name() -> None:
    with pytest.raises(ValueError, match="'echo', 'chat'"):
        wslab.serve("ehco", port=0)

    def not_async(ws: Any) -> None: ...

    with pytest.raises(ValueError, match="async def not_async"):
        wslab.serve(not_async, port=0)


def test_run_serves_until_ctrl_c() -> None:
    code = "from wslab.server import run; run('echo', port=0)"
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=os.getcwd()
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = line.split()[1]
        assert url.startswith("ws://127.0.0.1:")
        with ws_connect(url) as ws:
            ws.send("hi")
            assert ws.recv(timeout=5) == "You sent: hi"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
        proc.wait()


def test_run_reports_port_in_use() -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        with pytest.raises(ServerStartError, match=f"port {port} is already in use"):
            wslab.server.run("echo", port=port)


# -- plain HTTP on the same port ---------------------------------------------


def http_get(server: Server, path: str, headers: dict[str, str] | None = None) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type"), response.read()
    finally:
        conn.close()


def test_get_root_serves_the_chat_page(start: Callable[..., Server]) -> None:
    server = start("chat")
    status, content_type, body = http_get(server, f"/?wslab_token={server.token}")
    assert status == 200 and content_type.startswith("text/html")
    assert b"<html" in body.lower() or b"<!doctype html" in body.lower()
    status, _, body = http_get(server, "/nothing-here")
    assert status == 404 and b"/chat" in body


def test_websocket_on_wrong_path_is_404(start: Callable[..., Server]) -> None:
    server = start("echo")
    with pytest.raises(InvalidStatus) as info:
        ws_connect(server.url.replace("/chat", "/other"))
    assert info.value.response.status_code == 404


# -- safe defaults -------------------------------------------------------------


def test_foreign_origin_is_403_and_recorded(start: Callable[..., Server]) -> None:
    server = start("echo")
    with pytest.raises(InvalidStatus) as info:
        ws_connect(server.url, origin="https://evil.example")
    assert info.value.response.status_code == 403
    assert any(r.kind is Kind.ERROR and "evil.example" in r.text for r in server.recorder.records)


def test_no_origin_and_own_page_origin_are_accepted(start: Callable[..., Server]) -> None:
    server = start("echo")
    page_origin = server.page_url.rstrip("/")
    for origin in (None, page_origin):
        with ws_connect(server.url, origin=origin) as ws:
            ws.send("x")
            assert ws.recv(timeout=5) == "You sent: x"


def test_proxied_page_origin_is_accepted(start: Callable[..., Server]) -> None:
    # jupyter-server-proxy forwards the browser's Host (the hub's name, on the
    # hub's port) and Origin unchanged.
    server = start("echo")
    client = RawClient(server, host="hub.example.org", origin="https://hub.example.org")
    try:
        assert client.handshake().status == 101
    finally:
        client.close()
    client = RawClient(server, host="hub.example.org", origin="https://evil.example")
    try:
        assert client.handshake().status == 403
    finally:
        client.close()


def test_origins_adds_accepted_origins(start: Callable[..., Server]) -> None:
    server = start("echo", origins=["https://lab.example"])
    for origin in ("https://lab.example", None, server.page_url.rstrip("/")):
        with ws_connect(server.url, origin=origin):
            pass
    with pytest.raises(InvalidStatus) as info:
        ws_connect(server.url, origin="https://evil.example")
    assert info.value.response.status_code == 403


@pytest.mark.parametrize(
    ("origin", "host", "allowed"),
    [
        (None, "127.0.0.1:8080", True),
        ("http://127.0.0.1:8080", "127.0.0.1:8080", True),
        ("http://LOCALHOST:8080", "localhost:8080", True),
        ("https://hub.example.org", "hub.example.org:443", True),
        ("https://127.0.0.1:8080", "127.0.0.1:8080", False),
        ("http://127.0.0.1:9999", "127.0.0.1:8080", False),
        ("https://evil.example", "127.0.0.1:8080", False),
        ("null", "127.0.0.1:8080", False),
    ],
)
def test_origin_rule(origin: str | None, host: str, allowed: bool) -> None:
    assert origin_allowed(origin, host, 8080) is allowed
    assert origin_allowed(origin, host, 8080, ("https://evil.example",)) is (
        allowed or origin == "https://evil.example"
    )


def test_message_over_max_size_closes_with_1009(start: Callable[..., Server]) -> None:
    server = start("echo")  # the default limit: 1 MiB
    with ws_connect(server.url, max_size=None) as ws:
        ws.send(b"x" * 2**20)
        assert ws.recv(timeout=10) == b"x" * 2**20
        ws.send(b"x" * (2**20 + 1))
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=10)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1009


def test_client_limit_gives_503(start: Callable[..., Server]) -> None:
    server = start("echo", max_clients=2)
    with ws_connect(server.url), ws_connect(server.url):
        wait_until(lambda: len(server.clients) == 2)
        with pytest.raises(InvalidStatus) as info:
            ws_connect(server.url)
        assert info.value.response.status_code == 503
    wait_until(lambda: len(server.clients) == 0)
    with ws_connect(server.url):
        pass


def test_keepalive_closes_a_peer_that_never_answers_pings(start: Callable[..., Server]) -> None:
    server = start("echo", ping_interval=0.2, ping_timeout=0.2)
    client = RawClient(server)
    try:
        assert client.handshake().status == 101
        frames = client.frames_until_close()  # reads the pings, never answers them
    finally:
        client.close()
    assert any(f.opcode is Opcode.PING for f in frames)
    assert close_code(frames) == 1011  # websockets: "keepalive ping timeout"


# -- student handlers ----------------------------------------------------------


def test_handler_exception_closes_that_client_with_1011(
    start: Callable[..., Server], capsys: pytest.CaptureFixture[str]
) -> None:
    async def handler(ws: Any) -> None:
        async for message in ws:
            if message == "boom":
                raise ValueError("student bug")
            await ws.send(message.upper())

    server = start(handler)
    with ws_connect(server.url) as good, ws_connect(server.url) as bad:
        for ws in (good, bad):
            ws.send("boom")
            with pytest.raises(ConnectionClosed) as info:
                ws.recv(timeout=5)
            assert info.value.rcvd is not None and info.value.rcvd.code == 1011
    with ws_connect(server.url) as other:
        other.send("still up")
        assert other.recv(timeout=5) == "STILL UP"
    errors = [r for r in server.recorder.records if r.kind is Kind.ERROR]
    assert len(errors) == 2 and all("ValueError: student bug" in r.text for r in errors)
    err = capsys.readouterr().err
    assert err.count("ValueError: student bug") == 1  # printed once per server
    assert "1011" in err


def test_recorder_has_connect_messages_and_close(start: Callable[..., Server]) -> None:
    server = start("echo")
    with ws_connect(server.url) as ws:
        ws.send("ping me")
        ws.recv(timeout=5)
        ws.send(b"\x01\x02")
        ws.recv(timeout=5)
    wait_until(lambda: any(r.kind is Kind.TCP_CLOSE for r in server.recorder.records))
    records = server.recorder.records
    kinds = [(r.kind, r.direction) for r in records]
    assert kinds == [
        (Kind.CONNECT, Direction.TO_SERVER),
        (Kind.MESSAGE, Direction.TO_SERVER),
        (Kind.MESSAGE, Direction.TO_CLIENT),
        (Kind.MESSAGE, Direction.TO_SERVER),
        (Kind.MESSAGE, Direction.TO_CLIENT),
        (Kind.TCP_CLOSE, Direction.NONE),
    ]
    assert records[1].data == b"ping me" and "ping me" in records[1].text
    assert records[2].data == b"You sent: ping me"
    assert records[3].data == b"\x01\x02" and "2 bytes" in records[3].text
    assert "1000" in records[-1].text
    assert len({r.connection for r in records}) == 1


# -- chat -----------------------------------------------------------------------


def test_chat_names_notices_and_binary(start: Callable[..., Server]) -> None:
    server = start("chat")
    with ws_connect(named(server, "Alice")) as alice:
        assert alice.recv(timeout=5) == "* Alice joined"
        with ws_connect(server.url) as guest:
            assert guest.recv(timeout=5) == "* guest-1 joined"
            assert alice.recv(timeout=5) == "* guest-1 joined"
            guest.send("/name Bob")
            assert alice.recv(timeout=5) == "* guest-1 is now Bob"
            assert guest.recv(timeout=5) == "* guest-1 is now Bob"
            assert sorted(c.name or "" for c in server.clients) == ["Alice", "Bob"]
            alice.send("hi Bob")
            assert guest.recv(timeout=5) == "Alice: hi Bob"
            assert alice.recv(timeout=5) == "Alice: hi Bob"  # the sender too
            guest.send(b"\x00\x01")
            assert alice.recv(timeout=5) == b"\x00\x01"
        assert alice.recv(timeout=5) == "* Bob left"


def test_chat_records_every_delivery(start: Callable[..., Server]) -> None:
    """The chat writes to all members at once, not through ws.send(): each
    delivery is still in the server's traffic log, one record per member."""
    server = start("chat")
    with ws_connect(named(server, "Ann")) as ann, ws_connect(named(server, "Bo")) as bo:
        assert ann.recv(timeout=5) == "* Ann joined"
        assert ann.recv(timeout=5) == bo.recv(timeout=5) == "* Bo joined"
        ann.send("hi")
        assert ann.recv(timeout=5) == bo.recv(timeout=5) == "Ann: hi"
        bo.send(b"\x00\x01")  # binary: to everyone else
        assert ann.recv(timeout=5) == b"\x00\x01"
    sent = [
        (r.connection, r.data, r.text)
        for r in server.recorder.records
        if r.kind is Kind.MESSAGE and r.direction is Direction.TO_CLIENT
    ]
    ann_id, bo_id = sent[0][0], sent[2][0]  # the join notices
    assert sent[:6] == [
        (ann_id, b"* Ann joined", "text '* Ann joined'"),
        (ann_id, b"* Bo joined", "text '* Bo joined'"),
        (bo_id, b"* Bo joined", "text '* Bo joined'"),
        (ann_id, b"Ann: hi", "text 'Ann: hi'"),
        (bo_id, b"Ann: hi", "text 'Ann: hi'"),
        (ann_id, b"\x00\x01", "binary, 2 bytes: 00 01"),
    ]  # then perhaps "* Bo left" to Ann, if she was still there


def test_chat_rooms_do_not_mix(start: Callable[..., Server]) -> None:
    one, two = start("chat"), start("chat")
    with ws_connect(named(one, "A")) as a, ws_connect(named(two, "B")) as b:
        assert a.recv(timeout=5) == "* A joined"
        assert b.recv(timeout=5) == "* B joined"
        a.send("only here")
        assert a.recv(timeout=5) == "A: only here"
        with pytest.raises(TimeoutError):
            b.recv(timeout=0.2)


# -- faults do not disturb the others ------------------------------------------


def test_faulty_clients_do_not_disturb_others(start: Callable[..., Server]) -> None:
    server = start("chat")
    with ws_connect(named(server, "Steady")) as steady:
        assert steady.recv(timeout=5) == "* Steady joined"

        # 1. Garbage instead of an HTTP request: 400, as from every wslab server.
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(b"\x16\x03\x01garbage\r\n\r\n")
            assert sock.recv(1024).startswith(b"HTTP/1.1 400 Bad Request\r\n")

        # 2. Garbage after the handshake: an unmasked frame, 1002 (section 5.1).
        garbage = RawClient(server)
        assert garbage.handshake().status == 101
        garbage.sock.sendall(encode(Frame(Opcode.TEXT, b"not masked")))
        assert close_code(garbage.frames_until_close()) == 1002
        garbage.close()

        # 3. A client that vanishes in the middle of a frame.
        vanish = RawClient(server)
        assert vanish.handshake().status == 101
        vanish.sock.sendall(encode(Frame(Opcode.TEXT, b"x" * 1000), new_mask_key())[:300])
        vanish.close()

        notices = [steady.recv(timeout=5) for _ in range(4)]
        assert notices == [
            "* guest-1 joined",
            "* guest-1 left",
            "* guest-2 joined",
            "* guest-2 left",
        ]
        steady.send("still here")
        assert steady.recv(timeout=5) == "Steady: still here"
    wait_until(lambda: not server.clients)


def test_slow_reader_is_closed_with_1008_and_others_get_everything(
    start: Callable[..., Server],
) -> None:
    # A small max_pending keeps this test fast; the policy is the same at 4 MiB.
    server = start(Chat(max_pending=256 * 1024), max_size=2**20, close_timeout=0.5)
    slow = RawClient(server)
    slow.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        assert slow.handshake().status == 101  # and then it never reads again
        with ws_connect(named(server, "Fast"), max_size=None) as fast:
            assert fast.recv(timeout=5) == "* Fast joined"
            chunk = "y" * 65536
            count = 200  # 13 MB: more than the slow reader's socket buffers hold
            received = 0
            for i in range(count):
                fast.send(f"{i:04d}{chunk}")
                # Read as we go, like a live client, so that only the slow one lags.
                while received <= i:
                    message = fast.recv(timeout=10)
                    assert isinstance(message, str)
                    if message.startswith("Fast: "):
                        assert message[6:10] == f"{received:04d}"
                        received += 1
            assert received == count
            wait_until(
                lambda: any(
                    r.kind is Kind.TCP_CLOSE and "code 1008" in r.text
                    for r in server.recorder.records
                ),
                timeout=10,
            )
            assert fast.recv(timeout=5) == "* guest-1 left"
    finally:
        slow.close()


def test_stop_does_not_hang_on_a_client_that_never_reads(start: Callable[..., Server]) -> None:
    server = start("echo", close_timeout=0.5)
    flood = RawClient(server)
    flood.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        assert flood.handshake().status == 101
        frame = encode(Frame(Opcode.BINARY, b"z" * 65536), new_mask_key())
        flood.sock.settimeout(0.5)
        with contextlib.suppress(TimeoutError):  # the server stops reading too
            for _ in range(300):  # 20 MB of echoes that are never read
                flood.sock.sendall(frame)
        wait_until(lambda: len(server.clients) == 1)
        server.stop()  # must return: the stuck connection is aborted
        assert port_is_free(server.port)
        assert any(r.kind is Kind.TCP_CLOSE for r in server.recorder.records)
    finally:
        flood.close()


def test_stop_drops_at_once_a_client_whose_handler_stopped_reading(
    start: Callable[..., Server],
) -> None:
    """A handler busy elsewhere leaves its client's messages unread; past a few,
    websockets stops reading that socket, so the client's Close frame (or its
    reset) can never be read and the closing handshake cannot finish. stop()
    sends it 1001 and drops it at once (RFC 6455 7.1.1), not close_timeout
    later: when stop() returns, it is gone."""
    connections: list[Any] = []

    async def busy_elsewhere(ws: Any) -> None:
        connections.append(ws)
        await ws.wait_closed()  # reads nothing, returns once TCP is gone

    # A close_timeout longer than stop()'s own patience: waiting it out would
    # leave the connection open when stop() returns.
    server = start(busy_elsewhere, close_timeout=wslab.server.START_TIMEOUT * 3)
    client = RawClient(server)
    try:
        assert client.handshake().status == 101
        for n in range(200):  # far more than websockets queues before it stops reading
            client.send_frame(Frame(Opcode.TEXT, f"message {n}".encode()))
        wait_until(
            lambda: connections and not connections[0].transport.is_reading(),
            what="websockets stops reading what the handler does not take",
        )
        server.stop()
        connect, closed = (
            [r for r in server.recorder.records if r.kind is kind]
            for kind in (Kind.CONNECT, Kind.TCP_CLOSE)
        )
        assert len(connect) == len(closed) == 1
        assert closed[0].text == "closed by the server: code 1001"
        assert port_is_free(server.port)
        assert close_code(client.frames_until_close()) == 1001  # it was told why
    finally:
        client.close()


# -- issue #9 section 2: each failure, now held --------------------------------------


def ping_frame(payload: bytes = b"p" * 125) -> bytes:
    return encode(Frame(Opcode.PING, payload), new_mask_key())


def test_ping_flood_is_closed_with_1008_past_the_write_buffer_limit(
    start: Callable[..., Server],
) -> None:
    """Issue #9 2.2: pongs to a client that never reads were queued without limit."""
    limit = 2**18
    server = start("echo", max_write_buffer=limit, close_timeout=1.0)
    flood = RawClient(server, rcvbuf=4096)
    try:
        assert flood.handshake().status == 101
        flood.sock.settimeout(0.2)
        batch = ping_frame() * 500
        deadline = time.monotonic() + 20

        def dropped() -> bool:
            return any("code 1008" in r.text for r in server.recorder.records)

        while time.monotonic() < deadline and not dropped():
            try:
                flood.sock.sendall(batch)  # never reads a pong
            except TimeoutError:
                continue  # the server reads more slowly than we write: go on
            except OSError:
                break  # dropped
        wait_until(dropped, timeout=10, what="the flooding client is closed with 1008")
        assert not server.clients
    finally:
        flood.close()
    with ws_connect(server.url) as ws:  # and the server serves the next client
        ws.send("after")
        assert ws.recv(timeout=5) == "You sent: after"


def test_a_client_that_reads_its_pongs_is_not_closed(start: Callable[..., Server]) -> None:
    server = start("echo", max_write_buffer=2**16)
    client = RawClient(server)
    try:
        assert client.handshake().status == 101
        for _ in range(50):
            client.sock.sendall(ping_frame() * 20)
            decoder = FrameDecoder(Side.CLIENT)
            pongs = 0
            while pongs < 20:
                pongs += sum(
                    f.opcode is Opcode.PONG for f in decoder.feed(client.sock.recv(65536))
                )
        assert len(server.clients) == 1
    finally:
        client.close()


def never_returns() -> Any:
    async def handler(ws: Any) -> None:
        await ws.recv()
        while True:  # ignores that its client left: ConnectionClosed is caught
            try:
                await ws.recv()
            except ConnectionClosed:
                await asyncio.sleep(3600)

    return handler


def sleeps_then_waits() -> Any:
    async def handler(ws: Any) -> None:
        await ws.recv()
        time.sleep(0.2)  # a student's sync sleep
        await asyncio.Event().wait()

    return handler


@pytest.mark.parametrize("handler", [never_returns, sleeps_then_waits])
def test_a_lingering_handler_does_not_keep_its_clients_slot(
    start: Callable[..., Server], handler: Callable[[], Any]
) -> None:
    """Issue #9 2.4: slots leaked, server.clients listed gone clients, then 503 for good."""
    server = start(handler(), max_clients=2, close_timeout=0.5)
    for _ in range(3):  # more clients than slots, one after the other
        with ws_connect(server.url) as ws:
            ws.send("hello")
            wait_until(lambda: len(server.clients) == 1)
        wait_until(lambda: not server.clients, what="server.clients lists only connected clients")
    errors = [r.text for r in server.recorder.records if r.kind is Kind.ERROR]
    wait_until(
        lambda: sum("did not return" in r.text for r in server.recorder.records) == 3,
        what="each lingering handler is cancelled",
    )
    assert not any("Traceback" in e for e in errors)


def test_a_blocking_handler_is_named_and_states_stay_true(start: Callable[..., Server]) -> None:
    """Issue #9 2.5: a blocked loop, misleading messages, and "stopped" with the port bound."""

    async def sleepy(ws: Any) -> None:
        async for _ in ws:
            time.sleep(6)  # blocks every server of the kernel: the bug to report

    server = start(sleepy)
    client = RawClient(server)
    try:
        assert client.handshake().status == 101
        client.send_frame(Frame(Opcode.TEXT, b"go to sleep"))
        with pytest.raises(LoopBlockedError) as info:
            wslab.serve("echo", port=0)  # fails fast, naming the culprit
        message = str(info.value)
        assert "the handler sleepy" in message and f"port {server.port}" in message
        assert "await asyncio.sleep" in message and "\n" not in message
        assert server.state == "blocked"
        with pytest.raises(LoopBlockedError, match="cannot stop the server"):
            server.stop()
        assert server.running and not port_is_free(server.port)  # the truth
    finally:
        client.close()
    wait_until(lambda: server.state == "running", timeout=15, what="the handler returned")
    server.stop()
    assert server.state == "stopped" and port_is_free(server.port)


@pytest.mark.parametrize(
    "extra",
    [
        "Origin: http://127.0.0.1\r\nOrigin: http://127.0.0.1\r\n",
        "Host: 127.0.0.1\r\n",
        "Upgrade: websocket\r\n",
    ],
)
def test_duplicate_headers_get_400_without_a_traceback(
    start: Callable[..., Server], extra: str, capfd: pytest.CaptureFixture[str]
) -> None:
    """Issue #9 2.7: a 500, and websockets' traceback on stderr, each time."""
    server = start("echo", token=None)
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        request = client_request(f"127.0.0.1:{server.port}", "/chat").serialize()
        sock.sendall(request[:-2] + extra.encode() + b"\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 400 ")
    assert "Traceback" not in capfd.readouterr().err


# -- issue #10: private by default, links that work where the student is --------------


def test_private_by_default_and_public_on_request(start: Callable[..., Server]) -> None:
    private, public, chosen = start("echo"), start("echo", token=None), start("echo", token="s3")
    assert private.token and len(private.token) == 22 and private.token in private.url
    assert public.token is None and public.url == f"ws://127.0.0.1:{public.port}/chat"
    assert chosen.url.endswith("/chat?wslab_token=s3")
    bare = f"ws://127.0.0.1:{private.port}/chat"
    with pytest.raises(InvalidStatus) as info:
        ws_connect(bare)
    assert info.value.response.status_code == 403
    assert b"private" in info.value.response.body
    assert not private.clients and not any(
        r.kind is Kind.CONNECT for r in private.recorder.records
    )
    with ws_connect(bare.replace(str(private.port), str(public.port))) as ws:
        ws.send("x")
        assert ws.recv(timeout=5) == "You sent: x"


def test_a_client_that_reaches_somebody_elses_server_is_told_so(
    start: Callable[..., Server],
) -> None:
    """Issue #10: with a fixed port, the second student's clients met the first's server."""
    theirs, mine = start("chat"), start("chat")
    # My link, but the port now answers with their server (same port, another kernel).
    misdirected = mine.url.replace(str(mine.port), str(theirs.port))
    with pytest.raises(wslab.ConnectError) as info:
        wslab.Client(misdirected)
    assert info.value.status == 403
    message = str(info.value)
    assert "wrong token" in message and "somebody else" in message
    assert mine.token not in message  # error messages keep the secret out of notebooks


def test_page_url_under_jupyterhub(
    start: Callable[..., Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/stu1/")
    server = start("chat")
    assert server.page_url == f"/user/stu1/proxy/{server.port}/?wslab_token={server.token}"
    assert f'href="/user/stu1/proxy/{server.port}/?wslab_token=' in server._repr_html_()
    assert server.url.startswith("ws://127.0.0.1:")  # kernel clients connect directly
    # The page through the proxy (the hub's Host), from the owner's route: served.
    status, _, _ = http_get(
        server,
        f"/?wslab_token={server.token}",
        {"Host": "hub.example.org", "X-ProxyContextPath": f"/user/stu1/proxy/{server.port}"},
    )
    assert status == 200
    # From another student's route: refused, saying whose it is not.
    status, _, body = http_get(
        server,
        f"/?wslab_token={server.token}",
        {"Host": "hub.example.org", "X-ProxyContextPath": f"/user/stu2/proxy/{server.port}"},
    )
    assert status == 403 and b"another Jupyter user" in body


def test_page_url_on_a_laptop(
    start: Callable[..., Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JUPYTERHUB_SERVICE_PREFIX", raising=False)
    server = start("chat")
    assert server.page_url == f"http://127.0.0.1:{server.port}/?wslab_token={server.token}"


def test_dns_rebinding_is_refused_even_when_public(start: Callable[..., Server]) -> None:
    server = start("echo", token=None)
    evil = f"evil.example:{server.port}"
    client = RawClient(server, host=evil, origin=f"http://{evil}")
    try:
        assert client.handshake().status == 403
    finally:
        client.close()
    status, _, body = http_get(server, "/", {"Host": evil})
    assert status == 403 and b"DNS rebinding" in body


def test_a_custom_page(start: Callable[..., Server]) -> None:
    server = start("echo", page="<!doctype html><title>mine</title><p>my client</p>")
    status, content_type, body = http_get(server, f"/?wslab_token={server.token}")
    assert status == 200 and content_type.startswith("text/html")
    assert body == b"<!doctype html><title>mine</title><p>my client</p>"
    with pytest.raises(ServerStartError, match="page must be HTML"):
        wslab.serve("echo", page=42)


def test_unknown_option_is_one_line() -> None:
    with pytest.raises(ServerStartError, match="unknown option 'max_sise'"):
        wslab.serve("echo", max_sise=10)


def test_stop_all_and_on_stop(start: Callable[..., Server]) -> None:
    from wslab import loop

    server = start("echo")
    tap = server.tap()
    stopped: list[str] = []
    remove = loop.on_stop(lambda: stopped.append("mine"))
    try:
        wslab.stop_all()
    finally:
        remove()
    assert stopped == ["mine"]
    assert not server.running and not tap.running and port_is_free(server.port)
    wslab.stop_all()  # nothing left: nothing happens
    assert stopped == ["mine"]


def _as_another_user(port: int, target: str) -> bytes:
    """The status line another user account of this machine gets (needs root)."""
    import encodings.idna  # noqa: F401 - "nobody" cannot import it from root's Python

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: become "nobody", ask, report, leave at once
        try:
            os.setuid(65534)
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(client_request(f"127.0.0.1:{port}", target).serialize())
                os.write(write, sock.recv(4096))
        except BaseException as error:  # say it: the test reads the pipe
            os.write(write, repr(error).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as answer:
        data = answer.read()
    os.waitpid(pid, 0)
    return data


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
def test_another_user_of_this_machine(start: Callable[..., Server]) -> None:
    """Issue #10: on a shared host, a classmate's kernel reached the server by its port."""
    from wslab.peercred import peer_uid

    public, private = start("echo", token=None), start("echo")
    # A public server is public to its owner's account only...
    body = _as_another_user(public.port, "/chat")
    assert b"belongs to another user of this machine" in body
    # ...a private one lets in whoever has its link (sharing on purpose),
    assert _as_another_user(private.port, target(private)).startswith(b"HTTP/1.1 101 ")
    # and tells a stranger without it whose server this is.
    assert b"belongs to another user" in _as_another_user(private.port, "/chat")
    with socket.create_server(("127.0.0.1", 0)) as listener:
        with socket.create_connection(listener.getsockname()):
            theirs, _ = listener.accept()
            with theirs:
                assert peer_uid(theirs.getpeername(), theirs.getsockname()) == os.getuid()
        assert peer_uid(("127.0.0.1", 1), listener.getsockname()) is None
