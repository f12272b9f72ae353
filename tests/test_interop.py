"""wslab against independent WebSocket implementations, over real sockets.

* the websockets library's server with :class:`wslab.raw.RawClient`;
* the malformed frames of ``test_raw`` against ``wslab.serve`` (websockets);
* Node's ``ws`` package (``tests/interop``) as client of the raw server and of
  ``wslab serve --impl websockets``, and as server for ``RawClient``.

(The websockets *client* against the raw server is in ``test_raw``.)
"""

from __future__ import annotations

import json
import queue
import select
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _servers import cli_server, websockets_sync_server
from test_raw import MALFORMED, close_code_of, masked, open_ws, read_all
from websockets.sync.client import connect
from websockets.sync.server import ServerConnection

import wslab.server
from wslab.errors import HandshakeError
from wslab.raw import ConnectionClosed, RawClient, RawServer

INTEROP = Path(__file__).parent / "interop"

#: The (code, reason) of each close frame the websockets server received.
Closes = queue.Queue[tuple[int | None, str | None]]


# -- RawClient against the websockets server ----------------------------------------


def websockets_handler(ws: ServerConnection, closes: Closes) -> None:
    """Echo, plus a few commands that make the server do what a test needs."""
    for message in ws:
        if message == "fragments":
            ws.send(["Hel", "lo, ", "fragments"])  # a list is sent as fragments
        elif message == "ping me":
            pong = ws.ping(b"from websockets")
            ws.send(f"pong received: {pong.wait(5)}")
        elif message == "close me":
            ws.close(4000, "bye from websockets")
            break
        elif isinstance(message, str):
            ws.send(f"You sent: {message}")
        else:
            ws.send(message)
    closes.put((ws.close_code, ws.close_reason))


@pytest.fixture
def websockets_server() -> Iterator[tuple[str, Closes]]:
    """A websockets sync server; yields its URL and the close codes it received."""
    closes: Closes = queue.Queue()

    def handler(ws: ServerConnection) -> None:
        websockets_handler(ws, closes)

    with websockets_sync_server(handler) as server:
        yield f"ws://127.0.0.1:{server.socket.getsockname()[1]}/chat", closes


def test_raw_client_talks_to_websockets_server(
    websockets_server: tuple[str, Closes],
) -> None:
    url, closes = websockets_server
    client = RawClient.connect(url)
    client.send("Hello")
    assert client.recv(timeout=5) == "You sent: Hello"
    client.send("é€😀")
    assert client.recv(timeout=5) == "You sent: é€😀"
    big = bytes(range(256)) * 400  # 102400 bytes: the 64-bit length form
    client.send(big)
    assert client.recv(timeout=5) == big
    client.send("fragments")
    assert client.recv(timeout=5) == "Hello, fragments"
    client.ping(b"from wslab")
    client.send("ping me")  # the client answers the server's ping while it reads
    assert client.recv(timeout=5) == "pong received: True"
    assert list(client.pongs) == [b"from wslab"]
    client.close(1000, "bye from wslab")
    assert client.close_code == 1000
    assert closes.get(timeout=5) == (1000, "bye from wslab")


def test_raw_client_answers_a_close_from_websockets_server(
    websockets_server: tuple[str, Closes],
) -> None:
    url, closes = websockets_server
    client = RawClient.connect(url)
    client.send("close me")
    with pytest.raises(ConnectionClosed, match="code 4000") as info:
        client.recv(timeout=5)
    assert (info.value.code, info.value.reason) == (4000, "bye from websockets")
    assert (client.close_code, client.close_reason) == (4000, "bye from websockets")
    assert closes.get(timeout=5) == (4000, "")  # our echo carries the code only


def test_raw_client_reports_a_refused_handshake() -> None:
    def refuse(connection: ServerConnection, request: Any) -> Any:
        return connection.respond(403, "Forbidden by the test\n")

    with websockets_sync_server(lambda ws: None, process_request=refuse) as server:
        url = f"ws://127.0.0.1:{server.socket.getsockname()[1]}/"
        with pytest.raises(HandshakeError, match=r"403.*Forbidden by the test") as info:
            RawClient.connect(url)
        assert info.value.status == 403


# -- the malformed frames of test_raw, against wslab.serve (websockets) -------------

# Where websockets answers differently from the raw server, and why.
WEBSOCKETS_CODES = {
    # websockets reads the huge length and refuses it as too big before it
    # looks at the top bit; 1009 is a fair answer to 2**63 bytes too.
    "64-bit length with top bit": 1009,
}


@pytest.fixture
def wslab_server() -> Iterator[wslab.server.Server]:
    srv = wslab.server.serve("echo", port=0, token=None)  # framing, not access
    try:
        yield srv
    finally:
        srv.stop()


@pytest.mark.parametrize("case", MALFORMED.keys())
def test_malformed_frames_against_wslab_serve(
    wslab_server: wslab.server.Server, case: str
) -> None:
    data, code = MALFORMED[case]
    with connect(wslab_server.url, open_timeout=5) as bystander:
        sock, _ = open_ws(wslab_server)  # type: ignore[arg-type]
        with sock:
            sock.sendall(data)
            assert close_code_of(read_all(sock)) == WEBSOCKETS_CODES.get(case, code)
        bystander.send("still there?")
        assert bystander.recv(timeout=5) == "You sent: still there?"


def test_wslab_serve_echoes_split_code_point(wslab_server: wslab.server.Server) -> None:
    sock, _ = open_ws(wslab_server)  # type: ignore[arg-type]
    with sock:
        euro = "€".encode()
        sock.sendall(masked(0x01, euro[:2]) + masked(0x80, euro[2:]))
        sock.sendall(masked(0x88, b"\x03\xe8"))
        data = read_all(sock)
    assert "You sent: €".encode() in data


# -- Node's ws package --------------------------------------------------------------


@pytest.fixture(scope="session")
def node_ws() -> Path:
    """tests/interop with its node_modules installed (npm install on first use)."""
    if not (INTEROP / "node_modules" / "ws").is_dir():
        result = subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund"],
            cwd=INTEROP,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if result.returncode != 0:
            pytest.skip(f"npm install failed in tests/interop: {result.stderr.strip()[-300:]}")
    return INTEROP


def run_node_client(directory: Path, url: str) -> list[dict[str, Any]]:
    result = subprocess.run(
        ["node", "client.mjs", url], cwd=directory, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


EXPECTED_FROM_ECHO = [
    {"event": "open"},
    {"event": "pong", "data": "node ping"},
    {"event": "text", "data": "You sent: hello from node"},
    {"event": "binary", "hex": "000102ff"},
]


@pytest.mark.node
def test_node_client_with_raw_server(node_ws: Path) -> None:
    with RawServer("echo", port=0).start() as server:
        events = run_node_client(node_ws, server.url)
    # The raw server echoes the close code only, without the reason (5.5.1).
    assert events == [*EXPECTED_FROM_ECHO, {"event": "close", "code": 1000, "reason": ""}]


@pytest.mark.node
def test_node_client_with_wslab_serve_websockets(node_ws: Path) -> None:
    with cli_server("websockets", ignore_sigint=False) as server:
        events = run_node_client(node_ws, server.url)
    assert events[:-1] == EXPECTED_FROM_ECHO
    assert events[-1]["event"] == "close" and events[-1]["code"] == 1000


@pytest.fixture
def node_server(node_ws: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``node server.mjs``: a ws echo server; it exits when its stdin closes."""
    proc = subprocess.Popen(
        ["node", "server.mjs"],
        cwd=node_ws,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        port = json.loads(read_line(proc))["port"]
        yield f"ws://127.0.0.1:{port}/chat", proc
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def read_line(proc: subprocess.Popen[str], timeout: float = 30) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, f"no output from node within {timeout} s"
    return proc.stdout.readline()


@pytest.mark.node
def test_raw_client_with_node_server(node_server: tuple[str, subprocess.Popen[str]]) -> None:
    url, proc = node_server
    client = RawClient.connect(url)
    client.send("hello node")
    assert client.recv(timeout=10) == "You sent: hello node"
    client.send(b"\x00\xff" * 70000)  # 140000 bytes: the 64-bit length form
    assert client.recv(timeout=10) == b"\x00\xff" * 70000
    client.ping(b"ping from wslab")
    client.close(1000, "bye from wslab")
    assert client.close_code == 1000
    assert list(client.pongs) == [b"ping from wslab"]
    assert json.loads(read_line(proc)) == {
        "event": "close",
        "code": 1000,
        "reason": "bye from wslab",
    }


# -- wsproto, a sans-I/O implementation, as client of the raw server ---------------


def test_wsproto_client_with_raw_server() -> None:
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import (
        AcceptConnection,
        BytesMessage,
        CloseConnection,
        Message,
        Ping,
        Pong,
        Request,
        TextMessage,
    )

    def exchange(
        ws: WSConnection, sock: socket.socket, *events: Any, until: type[Any]
    ) -> list[Any]:
        """Send ``events``; read until an event of type ``until`` arrives."""
        for event in events:
            sock.sendall(ws.send(event))
        received: list[Any] = []
        while not any(isinstance(event, until) for event in received):
            data = sock.recv(65536)
            ws.receive_data(data or None)
            received.extend(ws.events())
            assert data or any(isinstance(e, until) for e in received), "connection closed"
        return received

    with RawServer("echo", port=0, token=None).start() as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            ws = WSConnection(ConnectionType.CLIENT)
            host = f"127.0.0.1:{server.port}"
            assert isinstance(
                exchange(ws, sock, Request(host=host, target="/chat"), until=AcceptConnection)[0],
                AcceptConnection,
            )
            got = exchange(ws, sock, TextMessage("héllo"), until=Message)
            assert [(type(e), e.data) for e in got] == [(TextMessage, "You sent: héllo")]
            got = exchange(ws, sock, BytesMessage(b"\x00\xff"), until=Message)
            assert [(type(e), e.data) for e in got] == [(BytesMessage, bytearray(b"\x00\xff"))]
            got = exchange(ws, sock, Ping(b"wsproto"), until=Pong)
            assert [e.payload for e in got if isinstance(e, Pong)] == [b"wsproto"]
            got = exchange(ws, sock, CloseConnection(1000, "bye"), until=CloseConnection)
            assert [e.code for e in got if isinstance(e, CloseConnection)] == [1000]
            # The server closes TCP first (7.1.1): we read end of file.
            assert sock.recv(1) == b""
