"""The notebook clients (wslab.client), tested in this process.

Servers: the in-kernel server, and an independent one (the websockets sync
server on its own thread) so that the clients do not only work with wslab.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from _servers import websockets_sync_server
from _util import wait_until
from websockets.sync.server import ServerConnection

import wslab
import wslab.handshake
from wslab.client import AsyncClient, Client, ConnectError, ConnectionClosedError
from wslab.errors import WSLabError
from wslab.server import Server
from wslab.traffic import Kind

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def echo() -> Iterator[Server]:
    server = wslab.serve("echo", port=0)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def independent() -> Iterator[tuple[str, list[tuple[int | None, str | None]]]]:
    """A websockets sync server that echoes, then closes with 4001 on 'bye'."""
    closes: list[tuple[int | None, str | None]] = []

    def handler(ws: ServerConnection) -> None:
        for message in ws:
            if message == "bye":
                ws.close(4001, "see you")
                break
            ws.send(message)
        closes.append((ws.close_code, ws.close_reason))

    with websockets_sync_server(handler, compression=None) as server:
        yield f"ws://127.0.0.1:{server.socket.getsockname()[1]}/", closes


def test_send_recv_messages_and_ready_state(echo: Server) -> None:
    with Client(echo) as ws:
        assert ws.ready_state == "OPEN" and ws.url == echo.url
        ws.send("hello")
        assert ws.recv(timeout=5) == "You sent: hello"
        ws.send(b"\x00\x01")
        assert ws.recv(timeout=5) == b"\x00\x01"
        assert ws.messages == ["You sent: hello", b"\x00\x01"]
        assert "OPEN" in repr(ws)
    assert ws.ready_state == "CLOSED" and ws.close_code == 1000


def test_callbacks_fire_in_browser_order(echo: Server) -> None:
    events: list[Any] = []
    ws = Client(
        echo.url,
        on_open=lambda: events.append("open"),
        on_message=lambda m: events.append(("message", m)),
        on_error=lambda e: events.append(("error", e)),
        on_close=lambda code, reason: events.append(("close", code, reason)),
    )
    ws.send("a")
    wait_until(lambda: len(events) == 2)
    ws.close(4000, "done")
    assert events == ["open", ("message", "You sent: a"), ("close", 4000, "done")]
    wait_until(lambda: any(r.kind is Kind.TCP_CLOSE for r in echo.recorder.records))
    assert "code 4000 'done'" in echo.recorder.records[-1].text


def test_send_from_a_callback(echo: Server) -> None:
    # on_message runs on the loop thread: send() must not deadlock there.
    replies: list[str | bytes] = []

    def on_message(message: str | bytes) -> None:
        replies.append(message)
        if len(replies) < 3:
            ws.send(f"again {len(replies)}")

    ws = Client(echo, on_message=on_message)
    try:
        ws.send("start")
        wait_until(lambda: len(replies) == 3)
        assert replies == ["You sent: start", "You sent: again 1", "You sent: again 2"]
    finally:
        ws.close()


def test_server_close_code_reaches_client(echo: Server) -> None:
    async def failing(ws: Any) -> None:
        await ws.recv()
        raise RuntimeError("oops")

    server = wslab.serve(failing, port=0)
    events: list[Any] = []
    try:
        ws = Client(
            server,
            on_error=lambda e: events.append("error"),
            on_close=lambda code, reason: events.append(("close", code)),
        )
        ws.send("x")
        with pytest.raises(ConnectionClosedError, match="1011"):
            ws.recv(timeout=5)
        assert ws.ready_state == "CLOSED" and ws.close_code == 1011
        assert events == [("close", 1011)]  # a clean close: no error, as in a browser
        with pytest.raises(ConnectionClosedError, match="cannot send"):
            ws.send("y")
    finally:
        server.stop()


def test_recv_timeout(echo: Server) -> None:
    with Client(echo) as ws, pytest.raises(TimeoutError, match=r"within 0\.1 s"):
        ws.recv(timeout=0.1)


def test_iterating_ends_when_the_server_closes(independent: Any) -> None:
    url, closes = independent
    ws = Client(url)
    ws.send("one")
    ws.send("bye")
    assert list(ws) == ["one"]
    assert ws.close_code == 4001 and ws.close_reason == "see you"
    wait_until(lambda: bool(closes))
    assert closes == [(4001, "see you")]


def test_against_an_independent_server(independent: Any) -> None:
    url, closes = independent
    with Client(url) as ws:
        ws.send("text")
        ws.send(b"bin")
        assert [ws.recv(timeout=5), ws.recv(timeout=5)] == ["text", b"bin"]
    wait_until(lambda: bool(closes))
    assert closes == [(1000, "")]


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("http://127.0.0.1:8080/chat", "start with ws://"),
        ("127.0.0.1:8080", "not a WebSocket URL"),
        ("ws://127.0.0.1:8080/chat#x", "fragment"),
    ],
)
def test_bad_url_is_a_one_line_connect_error(url: str, match: str) -> None:
    with pytest.raises(ConnectError, match=match) as info:
        Client(url)
    assert "\n" not in str(info.value) and isinstance(info.value, WSLabError)


def test_refused_connection(echo: Server) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: refused
        errors: list[Exception] = []
        with pytest.raises(ConnectError, match="connection refused") as info:
            Client(f"ws://127.0.0.1:{port}/", on_error=errors.append)
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert len(errors) == 1 and isinstance(errors[0], ConnectError)


def test_rejected_handshakes_name_the_status(echo: Server) -> None:
    with pytest.raises(ConnectError, match=r"HTTP 403 Forbidden: Origin https://evil\.example"):
        Client(echo, origin="https://evil.example")
    with pytest.raises(ConnectError, match="HTTP 404"):
        Client(echo.url.replace("/chat", "/nope"))


def test_silent_server_times_out() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()  # accepts TCP, never answers the handshake
        port = sock.getsockname()[1]
        with pytest.raises(ConnectError, match=r"no answer .* within 0\.3 s"):
            Client(f"ws://127.0.0.1:{port}/", timeout=0.3)


@pytest.mark.parametrize(
    "after_101",
    [b"\x88\x02\x03\xe8", b"\x88\x01\x03", b"\x82\x7f" + (2**63).to_bytes(8, "big")],
    ids=["close frame", "1-byte close payload", "2**63 length"],
)
def test_a_server_that_ends_but_keeps_tcp_open_is_dropped_after_timeout(
    after_101: bytes,
) -> None:
    """After the server's Close (or a frame that fails the connection) recv() ends
    within the client's timeout, not at the next keepalive ping 20 s later."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        held: list[socket.socket] = []

        def serve() -> None:
            conn, _ = listener.accept()
            held.append(conn)  # never closed until the test ends
            head = b""
            while b"\r\n\r\n" not in head:
                head += conn.recv(4096)
            key = head.split(b"Sec-WebSocket-Key: ")[1].split(b"\r\n")[0].decode()
            conn.sendall(wslab.handshake.server_response(key).serialize() + after_101)

        thread = threading.Thread(target=serve)
        thread.start()
        try:
            client = Client(f"ws://127.0.0.1:{port}/", timeout=1)
            with pytest.raises(ConnectionClosedError):
                client.recv(timeout=15)  # was a TimeoutError: 20 s for the keepalive ping
            assert client.ready_state == "CLOSED"
        finally:
            thread.join(5)
            for conn in held:
                conn.close()


def test_non_blocking_constructor(echo: Server) -> None:
    opened = threading.Event()
    ws = Client(echo, block=False, on_open=opened.set)
    assert ws.ready_state in ("CONNECTING", "OPEN")
    assert opened.wait(5)
    ws.send("later")
    assert ws.recv(timeout=5) == "You sent: later"
    ws.close()

    errors: list[Exception] = []
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        bad = Client(
            f"ws://127.0.0.1:{sock.getsockname()[1]}/", block=False, on_error=errors.append
        )
        wait_until(lambda: bool(errors))
    assert bad.ready_state == "CLOSED" and isinstance(errors[0], ConnectError)


def test_async_client(echo: Server) -> None:
    events: list[Any] = []

    async def main() -> list[str | bytes]:
        async with AsyncClient(
            echo,
            on_open=lambda: events.append("open"),
            on_close=lambda code, reason: events.append(code),
        ) as ws:
            assert ws.ready_state == "OPEN"
            await ws.send("a")
            await ws.send(b"b")
            got = [await ws.recv(timeout=5), await ws.recv(timeout=5)]
            with pytest.raises(TimeoutError):
                await ws.recv(timeout=0.05)
        assert ws.ready_state == "CLOSED" and ws.close_code == 1000
        return got

    assert asyncio.run(main()) == ["You sent: a", b"b"]
    assert events == ["open", 1000]


def test_async_client_errors() -> None:
    async def main() -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            async with AsyncClient(f"ws://127.0.0.1:{sock.getsockname()[1]}/"):
                pass

    with pytest.raises(ConnectError, match="connection refused"):
        asyncio.run(main())


def test_async_iteration(independent: Any) -> None:
    url, _ = independent

    async def main() -> list[str | bytes]:
        async with AsyncClient(url) as ws:
            await ws.send("x")
            await ws.send("bye")
            return [message async for message in ws]

    assert asyncio.run(main()) == ["x"]


def test_connection_lost_fires_error_then_close_1006(echo: Server) -> None:
    # A peer that drops TCP without a Close frame: the browser's "error, then close 1006".
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        events: list[Any] = []

        def accept_then_drop() -> None:
            conn, _ = listener.accept()
            with conn:
                request = b""
                while b"\r\n\r\n" not in request:
                    request += conn.recv(4096)
                key = next(
                    line.split(b":", 1)[1].strip().decode()
                    for line in request.split(b"\r\n")
                    if line.lower().startswith(b"sec-websocket-key:")
                )
                conn.sendall(wslab.handshake.server_response(key).serialize())
                conn.recv(1)  # wait for the client's first frame, then vanish

        thread = threading.Thread(target=accept_then_drop, daemon=True)
        thread.start()
        ws = Client(
            f"ws://127.0.0.1:{port}/",
            on_error=lambda e: events.append("error"),
            on_close=lambda code, reason: events.append(("close", code)),
        )
        ws.send("hello")
        thread.join(5)
        wait_until(lambda: len(events) == 2)
    assert events == ["error", ("close", 1006)] and ws.close_code == 1006


@pytest.mark.parametrize(("code", "reason"), [(1006, ""), (999, ""), (1000, "x" * 124)])
def test_close_checks_code_and_reason(echo: Server, code: int, reason: str) -> None:
    with Client(echo) as ws:
        with pytest.raises(ValueError, match=r"close (code|reason)"):
            ws.close(code, reason)
        assert ws.ready_state == "OPEN"
