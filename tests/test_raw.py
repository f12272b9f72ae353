"""The from-scratch server and client of wslab.raw, checked over real sockets.

The bytes a test sends are written out by hand from RFC 6455 section 5.2 and
the answers are parsed by hand too, so these tests do not trust the wslab core
they exercise. Independent clients (websockets) play the well-behaved peers.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import select
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from _servers import RFC_ACCEPT, request_bytes
from _util import launch_chromium, wait_until
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Origin

from wslab.errors import HandshakeError, ServerStartError
from wslab.raw import ConnectionClosed, Handler, Peer, RawClient, RawServer
from wslab.rules import Limits

MASK = b"\x37\xfa\x21\x3d"


# -- helpers: frames and handshakes written out by hand ----------------------------


def masked(first: int, payload: bytes, mask: bytes = MASK) -> bytes:
    """A client frame: first byte (FIN, RSV, opcode), then MASK bit and length."""
    length = len(payload)
    if length < 126:
        header = bytes([first, 0x80 | length])
    elif length < 2**16:
        header = bytes([first, 0x80 | 126]) + struct.pack("!H", length)
    else:
        header = bytes([first, 0x80 | 127]) + struct.pack("!Q", length)
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def handshake_bytes(port: int, path: str = "/chat", **headers: str | None) -> bytes:
    """RFC 6455 1.3's request with headers set or left out (None); ``_`` spells ``-``."""
    return request_bytes(port, path, replace={k.replace("_", "-"): v for k, v in headers.items()})


def read_until(sock: socket.socket, marker: bytes) -> bytes:
    data = b""
    while marker not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def read_all(sock: socket.socket) -> bytes:
    """Read until the server closes the connection (bounded by the socket timeout)."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def target(server: RawServer, path: str | None = None) -> str:
    """The request target for ``path`` (else the WebSocket path), with the server's token.

    A RawServer is private by default: a request gets in only with the token
    that ``server.url`` carries (``?wslab_token=...``).
    """
    path = server.path if path is None else path
    query = urllib.parse.urlsplit(server.url).query
    return f"{path}{'&' if '?' in path else '?'}{query}" if query else path


def named(url: str, name: str) -> str:
    """``url`` with a chat name: ``?name=`` or, after a token, ``&name=``."""
    return f"{url}{'&' if '?' in url else '?'}name={name}"


def open_ws(server: RawServer, path: str | None = None) -> tuple[socket.socket, bytes]:
    """Do the opening handshake by hand; return the socket and any extra bytes."""
    return open_ws_at(server.port, target(server, path))


def open_ws_at(
    port: int, path: str = "/chat", *, rcvbuf: int | None = None
) -> tuple[socket.socket, bytes]:
    """Like :func:`open_ws` for any port; ``rcvbuf`` shrinks the receive buffer first."""
    sock = socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # before connect()
    sock.settimeout(5)
    sock.connect(("127.0.0.1", port))
    sock.sendall(handshake_bytes(port, path))
    data = read_until(sock, b"\r\n\r\n")
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 "), head
    assert f"Sec-WebSocket-Accept: {RFC_ACCEPT}".encode() in head
    return sock, rest


def http_status(port: int, request: bytes) -> tuple[int, bytes]:
    """Send raw HTTP bytes; return the status code and the whole response."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        data = read_all(sock)
    status_line = data.split(b"\r\n", 1)[0]
    return int(status_line.split()[1]), data


def parse_server_frames(data: bytes) -> list[tuple[int, bytes]]:
    """Split unmasked server frames into (first byte, payload), by hand (5.2)."""
    frames = []
    while data:
        first, second = data[0], data[1]
        assert not second & 0x80, "a server must not mask its frames (5.1)"
        length, offset = second & 0x7F, 2
        if length == 126:
            (length,), offset = struct.unpack("!H", data[2:4]), 4
        elif length == 127:
            (length,), offset = struct.unpack("!Q", data[2:10]), 10
        frames.append((first, data[offset : offset + length]))
        data = data[offset + length :]
    return frames


def close_code_of(data: bytes) -> int:
    first, payload = parse_server_frames(data)[-1]
    assert first == 0x88, f"expected a close frame, got first byte {first:#x}"
    return int(struct.unpack("!H", payload[:2])[0])


# -- fixtures ---------------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[RawServer]:
    srv = RawServer("echo", port=0).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def bystander(server: RawServer) -> Iterator[ClientConnection]:
    """A well-behaved client that must keep working while another misbehaves."""
    with connect(server.url, open_timeout=5) as ws:
        ws.send("before")
        assert ws.recv(timeout=5) == "You sent: before"
        yield ws


def assert_still_serving(ws: ClientConnection) -> None:
    ws.send("still there?")
    assert ws.recv(timeout=5) == "You sent: still there?"


# -- the echo handler and the conformance rules -----------------------------------


def test_echo_text_and_binary_with_an_independent_client(server: RawServer) -> None:
    with connect(server.url, open_timeout=5) as ws:
        ws.send("Hello")
        assert ws.recv(timeout=5) == "You sent: Hello"
        ws.send(b"\x00\x01\xfe\xff")
        assert ws.recv(timeout=5) == b"\x00\x01\xfe\xff"
        ws.send("é€😀")
        assert ws.recv(timeout=5) == "You sent: é€😀"
        big = bytes(range(256)) * 1000  # 256000 bytes: the 64-bit length form
        ws.send(big)
        assert ws.recv(timeout=5) == big


def test_fragmented_message_is_echoed_whole(server: RawServer) -> None:
    with connect(server.url, open_timeout=5) as ws:
        ws.send(["Hel", "lo, ", "world"])  # websockets sends a list as fragments
        assert ws.recv(timeout=5) == "You sent: Hello, world"


def test_code_point_split_across_fragments_is_fine(server: RawServer) -> None:
    sock, _ = open_ws(server)
    with sock:
        euro = "€".encode()  # e2 82 ac
        sock.sendall(masked(0x01, euro[:2]) + masked(0x80, euro[2:]))
        frames = parse_server_frames(read_until(sock, "€".encode()))
        assert frames == [(0x81, "You sent: €".encode())]


def test_ping_gets_pong_with_same_payload_and_pong_is_ignored(server: RawServer) -> None:
    sock, _ = open_ws(server)
    with sock:
        # An unsolicited pong (5.5.3) must be ignored; then a ping in the middle
        # of a fragmented message (control frames may be interleaved, 5.4).
        sock.sendall(masked(0x8A, b"unsolicited"))
        sock.sendall(masked(0x01, b"a") + masked(0x89, b"ping!") + masked(0x80, b"b"))
        frames = parse_server_frames(read_until(sock, b"You sent: ab"))
        assert frames == [(0x8A, b"ping!"), (0x81, b"You sent: ab")]


def test_close_handshake_echoes_code_then_server_closes_tcp_first(server: RawServer) -> None:
    sock, _ = open_ws(server)
    with sock:
        sock.sendall(masked(0x88, struct.pack("!H", 4000) + b"done"))
        # read_all returns only once the server closed TCP: it did so first (7.1.1).
        frames = parse_server_frames(read_all(sock))
        assert frames == [(0x88, struct.pack("!H", 4000))]


def test_empty_close_is_answered_with_empty_close(server: RawServer) -> None:
    sock, _ = open_ws(server)
    with sock:
        sock.sendall(masked(0x88, b""))
        assert parse_server_frames(read_all(sock)) == [(0x88, b"")]


MALFORMED = {
    "unmasked client frame": (b"\x81\x05hello", 1002),
    "reserved opcode 0x3": (masked(0x83, b""), 1002),
    "reserved opcode 0xB": (masked(0x8B, b""), 1002),
    "RSV1 without extension": (masked(0xC1, b"hi"), 1002),
    "RSV3 set": (masked(0x91, b"hi"), 1002),
    "fragmented ping": (masked(0x09, b"ping"), 1002),
    "ping of 126 bytes": (masked(0x89, b"x" * 126), 1002),
    "invalid UTF-8": (masked(0x81, b"caf\xc3"), 1007),
    "invalid UTF-8 across fragments": (masked(0x01, b"\xe2\x82") + masked(0x80, b"\x28"), 1007),
    "continuation without start": (masked(0x80, b"orphan"), 1002),
    "new message inside a fragmented one": (masked(0x01, b"a") + masked(0x81, b"b"), 1002),
    # Only the header: the server must refuse before any payload arrives.
    "message over max_size": (b"\x82\xff" + struct.pack("!Q", 2**21) + MASK, 1009),
    "64-bit length with top bit": (b"\x82\xff" + struct.pack("!Q", 2**63 + 5) + MASK, 1002),
    "close code 1005 on the wire": (masked(0x88, struct.pack("!H", 1005)), 1002),
    "close payload of 1 byte": (masked(0x88, b"\x03"), 1002),
    "close reason not UTF-8": (masked(0x88, struct.pack("!H", 1000) + b"\xff"), 1007),
}


@pytest.mark.parametrize(("data", "code"), MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_frames_fail_with_the_rfc_close_code(
    server: RawServer, bystander: ClientConnection, data: bytes, code: int
) -> None:
    sock, _ = open_ws(server)
    with sock:
        sock.sendall(data)
        assert close_code_of(read_all(sock)) == code
    assert_still_serving(bystander)


def test_fragmented_messages_over_max_size_fail_with_1009() -> None:
    with RawServer("echo", port=0, max_size=10).start() as srv:
        sock, _ = open_ws(srv)
        with sock:
            sock.sendall(masked(0x02, b"x" * 6) + masked(0x80, b"y" * 6))
            assert close_code_of(read_all(sock)) == 1009


def test_client_vanishing_mid_frame_does_not_disturb_others(
    server: RawServer, bystander: ClientConnection
) -> None:
    sock, _ = open_ws(server)
    sock.sendall(masked(0x81, b"half a message")[:7])
    sock.close()
    assert_still_serving(bystander)


def test_stop_closes_clients_with_1001() -> None:
    srv = RawServer("echo", port=0).start()
    try:
        with connect(srv.url, open_timeout=5) as ws:
            srv.stop()
            with pytest.raises(Exception):  # noqa: B017 - websockets' ConnectionClosedOK
                ws.recv(timeout=5)
            assert ws.close_code == 1001
    finally:
        srv.stop()


def test_a_handler_may_stop_its_server(capsys: pytest.CaptureFixture[str]) -> None:
    servers: list[RawServer] = []

    def stop_server(peer: object, message: str | bytes) -> None:
        servers[0].stop()

    srv = RawServer(stop_server, port=0).start()
    servers.append(srv)
    try:
        with connect(srv.url, open_timeout=5) as ws:
            ws.send("stop")
            with pytest.raises(Exception):  # noqa: B017 - websockets' ConnectionClosedOK
                ws.recv(timeout=5)
            assert ws.close_code == 1001
        assert "<RawServer" in repr(srv) and "stopped" in repr(srv)
    finally:
        srv.stop()
    assert "Traceback" not in capsys.readouterr().err


# -- HTTP and the opening handshake -------------------------------------------------


def test_get_slash_serves_the_chat_page(server: RawServer) -> None:
    with urllib.request.urlopen(server.page_url, timeout=5) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/html")
        html = response.read().decode()
    assert "new WebSocket(" in html
    assert 'const WS_PATH = "chat";' in html


def test_the_page_is_the_chat_page_for_the_room_or_your_own() -> None:
    """As wslab.serve: the chat page knows whether the room sends a message back."""
    for handler, chat in (("chat", "true"), ("echo", "false")):
        with RawServer(handler, port=0).start() as srv:
            with urllib.request.urlopen(srv.page_url, timeout=5) as response:
                assert f"const CHAT = {chat};" in response.read().decode()
    with RawServer("echo", port=0, page="<p>mine</p>").start() as srv:
        with urllib.request.urlopen(srv.page_url, timeout=5) as response:
            assert response.read() == b"<p>mine</p>"


def test_limits_one_by_one_or_together() -> None:
    srv = RawServer("echo", port=0, limits=Limits(max_size=10), ping_interval=None)
    assert (srv.limits.max_size, srv.limits.ping_interval) == (10, None)
    with pytest.raises(ServerStartError, match=r"unknown option.*max_sise"):
        RawServer("echo", port=0, max_sise=10)
    with pytest.raises(ServerStartError, match="max_clients must be a positive number"):
        RawServer("echo", port=0, max_clients=0)


def test_a_server_is_private_by_default_and_public_with_token_none() -> None:
    """Issue 10: as wslab.serve, only whoever holds the link gets in."""
    with RawServer("echo", port=0).start() as srv:
        assert "?wslab_token=" in srv.url and "?wslab_token=" in srv.page_url
        assert srv.token is not None and srv.token not in repr(srv)
        for path in ("/chat", "/"):  # no token: neither the WebSocket nor the page
            status, data = http_status(srv.port, handshake_bytes(srv.port, path))
            assert status == 403 and b"token" in data, path
        with connect(srv.url, open_timeout=5) as ws:
            assert_still_serving(ws)
        with urllib.request.urlopen(srv.page_url, timeout=5) as response:
            assert response.status == 200
    with RawServer("echo", port=0, token=None).start() as srv:
        assert srv.url == f"ws://127.0.0.1:{srv.port}/chat"
        assert srv.page_url == f"http://127.0.0.1:{srv.port}/"
        sock, _ = open_ws_at(srv.port)
        sock.close()
    with RawServer("echo", port=0, token="s3cret").start() as srv:
        assert srv.url.endswith("/chat?wslab_token=s3cret")


def test_a_public_server_refuses_another_user_of_this_machine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same rule as wslab.serve: without a token, only the owner's account gets in."""
    from wslab import peercred

    with RawServer("echo", port=0, token=None).start() as public:
        sock, _ = open_ws(public)  # this user: welcome
        sock.close()
        monkeypatch.setattr(peercred, "peer_uid", lambda peer, local: os.getuid() + 1)
        status, data = http_status(public.port, handshake_bytes(public.port))
        assert status == 403 and b"another user of this machine" in data
    with RawServer("echo", port=0).start() as private:  # a link shared on purpose works
        with connect(private.url, open_timeout=5) as ws:
            assert_still_serving(ws)


def test_other_plain_http_paths_get_404(server: RawServer) -> None:
    status, _ = http_status(server.port, plain(server, "GET", "/favicon.ico"))
    assert status == 404


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Upgrade": None}, 400),
        ({"Connection": None}, 400),
        ({"Connection": "keep-alive"}, 400),
        ({"Sec-WebSocket-Key": None}, 400),
        ({"Sec-WebSocket-Key": "too short"}, 400),
        ({"Origin": "http://evil.example"}, 403),
    ],
    ids=["no Upgrade", "no Connection", "Connection keep-alive", "no key", "bad key", "origin"],
)
def test_broken_handshakes_get_their_status(
    server: RawServer, headers: dict[str, str | None], status: int
) -> None:
    request = handshake_bytes(server.port, target(server), **headers)  # type: ignore[arg-type]
    got, data = http_status(server.port, request)
    assert got == status
    body = data.partition(b"\r\n\r\n")[2].decode()
    assert body.count("\n") == 1 and len(body) > 10  # a one-line reason


def test_wrong_version_gets_426_naming_version_13(server: RawServer) -> None:
    status, data = http_status(
        server.port, handshake_bytes(server.port, target(server), **{"Sec-WebSocket-Version": "8"})
    )
    assert status == 426
    assert b"\r\nSec-WebSocket-Version: 13\r\n" in data


def test_huge_header_block_gets_431(server: RawServer) -> None:
    request = handshake_bytes(server.port, target(server), X_Padding="a" * 20000)
    status, _ = http_status(server.port, request)
    assert status == 431


def test_websocket_on_another_path_gets_404(server: RawServer) -> None:
    status, _ = http_status(server.port, handshake_bytes(server.port, target(server, "/other")))
    assert status == 404


def test_own_page_origin_and_extra_origins_are_accepted() -> None:
    with RawServer("echo", port=0, origins=["http://localhost:3000"]).start() as srv:
        for origin in (f"http://127.0.0.1:{srv.port}", "http://localhost:3000"):
            with connect(srv.url, origin=Origin(origin), open_timeout=5) as ws:
                ws.send("hi")
                assert ws.recv(timeout=5) == "You sent: hi"


def test_clients_beyond_max_clients_get_503() -> None:
    with RawServer("echo", port=0, max_clients=1).start() as srv:
        with connect(srv.url, open_timeout=5):
            with pytest.raises(InvalidStatus) as info:
                connect(srv.url, open_timeout=5)
            assert info.value.response.status_code == 503
        # Once the first client left, there is room again.
        with connect(srv.url, open_timeout=5) as ws:
            ws.send("x")
            assert ws.recv(timeout=5) == "You sent: x"


def test_silent_client_is_dropped_after_the_handshake_timeout() -> None:
    with RawServer("echo", port=0, handshake_timeout=0.2).start() as srv:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as sock:
            sock.sendall(b"GET /chat HTTP/1.1\r\n")  # ... and never the rest
            assert read_all(sock) == b""  # the server closed it


def test_port_in_use_and_bad_port_raise_server_start_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ServerStartError, match=f"port {port} is already in use"):
            RawServer(port=port).start()
    with pytest.raises(ServerStartError, match="got 70000"):
        RawServer(port=70000).start()


# -- misbehaving clients (issue 9): nobody may block anybody -------------------------


def flood_with_pings(sock: socket.socket, limit: int = 64 * 2**20) -> int:
    """Send pings and never read the pongs until the server stops reading; return bytes sent.

    The pongs fill our small receive buffer, then the server's send buffer;
    a server that went on reading would have to hold them all.
    """
    burst = masked(0x89, b"x" * 125) * 512
    sock.settimeout(2.0)
    pushed = 0
    with contextlib.suppress(TimeoutError, ConnectionError):
        while pushed < limit:
            sock.sendall(burst)
            pushed += len(burst)
    return pushed


def recv_until(ws: ClientConnection, expected: str | bytes, timeout: float = 10) -> None:
    """Read messages until ``expected`` arrives (others may come first)."""
    while (message := ws.recv(timeout=timeout)) != expected:
        assert isinstance(message, str) and message.startswith("* "), message


def is_closed(sock: socket.socket) -> bool:
    """Whether the server closed ``sock`` (without reading what it sent)."""
    if not select.select([sock], [], [], 0)[0]:
        return False
    try:
        return sock.recv(65536) == b""
    except ConnectionResetError:
        return True


def stop_returns(server: RawServer) -> bool:
    stopper = threading.Thread(target=server.stop, daemon=True)
    stopper.start()
    stopper.join(30)  # a liveness bound, not a speed target
    return not stopper.is_alive()


def test_a_client_that_pings_without_reading_blocks_nobody() -> None:
    """Issue 9, 2.1: its pongs pile up, yet newcomers, broadcasts and stop() go on."""
    srv = RawServer("chat", port=0, limits=Limits(send_timeout=2.0)).start()
    try:
        flooder, _ = open_ws_at(srv.port, target(srv, "/chat?name=flooder"), rcvbuf=4096)
        with flooder, connect(named(srv.url, "ada"), open_timeout=5) as ada:
            pushed = flood_with_pings(flooder)
            assert pushed < 64 * 2**20, "the server read pings whose pongs it could not send"
            with connect(named(srv.url, "bob"), open_timeout=5) as bob:  # 101 at once
                recv_until(bob, "* bob joined")
                bob.send("hello")
                # The room goes on; the flooder, which read nothing for
                # send_timeout, is dropped and the room is told (in any order).
                seen: set[str | bytes] = set()
                while not {"bob: hello", "* flooder left"} <= seen:
                    seen.add(ada.recv(timeout=10))
            assert stop_returns(srv), "stop() hangs on a client that pings without reading"
    finally:
        srv.stop()


def test_a_message_bigger_than_the_write_buffer_reaches_a_client_that_reads() -> None:
    """The write limit is for peers that fall behind, not for one big message."""

    def big(peer: Peer, message: str | bytes) -> None:
        peer.send(b"x" * 8_000_000)

    with RawServer(big, port=0, limits=Limits(max_write_buffer=2**20)).start() as srv:
        # A small receive buffer: most of the message has to wait in the server.
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", srv.port))
        with connect(srv.url, sock=sock, open_timeout=5, max_size=None) as ws:
            ws.send("go")
            assert ws.recv(timeout=10) == b"x" * 8_000_000


def test_handshake_timeout_is_a_deadline_for_the_whole_request() -> None:
    """Issue 9, 2.3: a request sent a byte at a time is cut at the deadline (slowloris)."""
    with RawServer("echo", port=0, handshake_timeout=1.0).start() as srv:
        request = handshake_bytes(srv.port, target(srv))
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as sock:
            for sent in range(len(request)):
                with contextlib.suppress(ConnectionError):
                    sock.sendall(request[sent : sent + 1])
                if select.select([sock], [], [], 0.2)[0]:
                    break  # The server answered, or closed.
            assert sent < len(request) - 1, "the server waited for the whole slow request"
            assert is_closed(sock)


def test_connections_in_their_handshake_are_limited() -> None:
    """Issue 9, 2.3: idle connections hold at most max_handshaking threads; clients get in."""

    def client_threads() -> int:
        return sum(thread.name == "wslab-raw-client" for thread in threading.enumerate())

    with RawServer("echo", port=0, limits=Limits(max_handshaking=4)).start() as srv:
        idle = [socket.create_connection(("127.0.0.1", srv.port), timeout=5) for _ in range(20)]
        try:
            # The oldest make room for the newest, so 16 of the 20 are closed ...
            wait_until(lambda: sum(map(is_closed, idle)) >= 16, what="16 idle connections closed")
            wait_until(lambda: client_threads() <= 4, what="at most 4 handshake threads")
            # ... and a real client still gets in.
            with connect(srv.url, open_timeout=5) as ws:
                assert_still_serving(ws)
        finally:
            for sock in idle:
                sock.close()


def test_keepalive_pings_a_quiet_client_and_closes_one_that_never_answers() -> None:
    """Issue 9, 2.3: pings after the handshake (5.5.2); no pong means 1011, then TCP closes."""
    limits = Limits(ping_interval=0.2, ping_timeout=0.3, close_timeout=0.5)
    with RawServer("echo", port=0, limits=limits).start() as srv:
        sock, rest = open_ws(srv)
        with sock:
            data = rest + read_all(sock)  # ... and never a pong from us
        assert parse_server_frames(data)[0][0] == 0x89  # a ping
        assert close_code_of(data) == 1011  # then "keepalive ping timeout"
        # A client that answers pings (websockets does) stays as long as it likes.
        with connect(srv.url, open_timeout=5) as ws:
            time.sleep(1.0)  # five ping intervals
            assert_still_serving(ws)


EMFILE_SERVER = """
import os, resource, socket, sys
from wslab.raw import RawServer

calls = 0
accept = socket.socket.accept

def counted(self):
    global calls
    calls += 1
    return accept(self)

socket.socket.accept = counted
server = RawServer("echo", port=0, token=None).start()
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
used = len(os.listdir("/proc/self/fd"))
resource.setrlimit(resource.RLIMIT_NOFILE, (used + 2, hard))  # room for 2 clients
print(server.port, flush=True)
for line in sys.stdin:
    if line.strip() != "calls":
        break
    print(calls, flush=True)
resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
server.stop()
"""


def test_out_of_file_descriptors_the_server_waits_then_recovers() -> None:
    """Issue 9, 2.8: accept() failing with EMFILE must not spin at 100 % CPU."""
    proc = subprocess.Popen(
        [sys.executable, "-c", EMFILE_SERVER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    stdin, stdout = proc.stdin, proc.stdout

    def ask() -> int:
        stdin.write("calls\n")
        stdin.flush()
        assert select.select([stdout], [], [], 30)[0], "the server process does not answer"
        return int(stdout.readline())

    try:
        assert select.select([stdout], [], [], 30)[0], "the server process did not start"
        port = int(stdout.readline())
        # Two clients take the last descriptors; the others wait in the backlog.
        clients = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(6)]
        wait_until(lambda: ask() > 3, what="accept() was called for the waiting clients")
        before = ask()
        time.sleep(1.0)
        # A spinning accept loop calls accept() hundreds of thousands of times a second.
        assert ask() - before < 100, "the accept loop spins while out of file descriptors"
        for sock in clients:
            sock.close()  # Their descriptors come back to the server ...
        url = f"ws://127.0.0.1:{port}/chat"
        with connect(url, open_timeout=10) as ws:  # ... and it serves again.
            assert_still_serving(ws)
    finally:
        with contextlib.suppress(OSError):
            stdin.write("stop\n")
            stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        stdout.close()


def test_a_chat_member_that_never_reads_stalls_nobody() -> None:
    """Issue 9, 2.8: the room goes on at once, however long the server would wait for it."""
    limits = Limits(send_timeout=600.0)  # a stall would last ten minutes
    with RawServer("chat", port=0, limits=limits).start() as srv:
        sleeper, _ = open_ws_at(srv.port, target(srv, "/chat?name=sleeper"), rcvbuf=4096)
        with (
            sleeper,
            connect(named(srv.url, "talker"), open_timeout=5, max_queue=None) as talker,
            connect(named(srv.url, "listener"), open_timeout=5, max_queue=None) as listener,
        ):
            body = "x" * 65536  # 100 of them: more than the sleeper's socket buffers hold
            for i in range(100):
                talker.send(f"{i} {body}")
            for i in range(100):
                recv_until(listener, f"talker: {i} {body}")


def test_listening_beyond_this_machine_needs_allow_remote() -> None:
    """Issue 9, 2.8: one bind rule for both servers (wslab.rules.check_bind)."""
    with pytest.raises(ServerStartError, match="allow_remote=True"):
        RawServer("echo", host="0.0.0.0", port=0)
    with pytest.warns(UserWarning, match="other machines"):
        srv = RawServer("echo", host="::", port=8080, allow_remote=True, token=None)
    # A server on every interface is reached on loopback, as wslab.serve() says.
    assert srv.url == "ws://[::1]:8080/chat"
    assert srv.page_url == "http://[::1]:8080/"


# -- frames before a broken one (issue 9, 2.9) ----------------------------------------------

#: Autobahn's cases: good frames, then a broken one and more, all in one write.
BEFORE_A_BROKEN_FRAME = {
    "3.2 RSV2 set": (masked(0x81, b"Hello"), masked(0xA1, b"Hello")),
    "4.1.3 reserved opcode 5": (masked(0x81, b"Hello"), masked(0x85, b"")),
    "4.2.3 reserved opcode 0xB": (masked(0x81, b"Hello"), masked(0x8B, b"")),
    "5.15 continuation of nothing": (
        masked(0x01, b"Hel") + masked(0x80, b"lo"),
        masked(0x00, b"x") + masked(0x81, b"more"),
    ),
    "invalid UTF-8": (masked(0x81, b"Hello"), masked(0x81, b"caf\xc3")),
}


@pytest.mark.parametrize(
    ("good", "bad"), BEFORE_A_BROKEN_FRAME.values(), ids=BEFORE_A_BROKEN_FRAME.keys()
)
def test_a_message_before_a_broken_frame_is_answered_before_the_close(
    server: RawServer, good: bytes, bad: bytes
) -> None:
    """Section 7.1.7 fails the connection at the broken frame, not before it."""
    sock, _ = open_ws(server)
    with sock:
        sock.sendall(good + bad + masked(0x89, b"after"))
        frames = parse_server_frames(read_all(sock))
    assert frames[0] == (0x81, b"You sent: Hello")
    assert [first for first, _ in frames[1:]] == [0x88]  # then the close, and nothing else


def test_a_message_and_a_close_in_one_write_are_both_answered(server: RawServer) -> None:
    sock, _ = open_ws(server)
    with sock:
        sock.sendall(masked(0x81, b"Hello") + masked(0x88, struct.pack("!H", 1000)))
        frames = parse_server_frames(read_all(sock))
    assert frames == [(0x81, b"You sent: Hello"), (0x88, struct.pack("!H", 1000))]


def test_invalid_utf8_fails_before_the_rest_of_its_frame_arrives(server: RawServer) -> None:
    """Section 8.1, Autobahn 6.4.3: fail fast, not once the whole frame is here."""
    sock, _ = open_ws(server)
    with sock:
        payload = "κόσμε".encode() + b"\xed\xa0\x80"  # then a UTF-16 surrogate: not UTF-8
        frame = masked(0x81, payload + b"x" * 50)
        sock.sendall(frame[:-50])  # all but the end of the payload
        assert close_code_of(read_all(sock)) == 1007


# -- endless continuation frames (issue 9, 2.6) ---------------------------------------------


def test_endless_empty_continuation_frames_close_with_1009(
    server: RawServer, bystander: ClientConnection
) -> None:
    """Section 10.4: empty frames never grow a message past max_size; they are counted."""
    sock, _ = open_ws(server)
    with sock:
        frames = masked(0x01, b"a") + masked(0x00, b"") * (server.limits.max_fragments + 10)
        with contextlib.suppress(ConnectionError):  # the server may close before the end
            sock.sendall(frames)
        assert close_code_of(read_all(sock)) == 1009
    assert_still_serving(bystander)


def test_the_fragment_limit_is_a_server_limit() -> None:
    with RawServer("echo", port=0, limits=Limits(max_fragments=3)).start() as srv:
        sock, _ = open_ws(srv)
        with sock:
            sock.sendall(masked(0x01, b"a") + masked(0x00, b"b") + masked(0x80, b"c"))
            assert parse_server_frames(read_until(sock, b"abc")) == [(0x81, b"You sent: abc")]
            sock.sendall(masked(0x01, b"a") + masked(0x00, b"b") * 3)
            assert close_code_of(read_all(sock)) == 1009


def test_the_server_is_strict_clean_on_every_conformance_case(server: RawServer) -> None:
    """Issue 9, 2.9: no case graded NON-STRICT or FAILED (Autobahn's grading)."""
    from wslab import conformance

    report = conformance.run(server.url)
    assert not report.failed and not report.non_strict, str(report)


# -- HTTP: the rules of wslab.rules (issue 9, 2.7) ----------------------------------------------


def request_with(server: RawServer, *lines: str, method: str = "GET") -> bytes:
    """The RFC's handshake with more header lines (which may repeat a header)."""
    head = handshake_bytes(server.port, target(server)).decode()
    head = head.replace("GET ", f"{method} ", 1)
    return (head[:-2] + "".join(f"{line}\r\n" for line in lines) + "\r\n").encode()


def plain(server: RawServer, method: str, path: str = "/") -> bytes:
    """A plain HTTP request, with the server's token."""
    host = f"127.0.0.1:{server.port}"
    return f"{method} {target(server, path)} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()


def test_requests_the_rfc_refuses_get_400() -> None:
    """RFC 6455 4.2.1 and RFC 9110: one Host, one Upgrade, no body, no control bytes."""
    with RawServer("echo", port=0).start() as srv:
        port = srv.port
        frame = masked(0x81, b"hello")
        refused = {
            "two Hosts": request_with(srv, f"Host: evil.example:{port}"),
            "two Upgrades": request_with(srv, "Upgrade: websocket"),
            "Transfer-Encoding": request_with(srv, "Transfer-Encoding: chunked"),
            "NUL byte": request_with(srv, "X-Name: a\0b"),
            "a body": request_with(srv, f"Content-Length: {len(frame)}") + frame,
            "no Host": handshake_bytes(port, target(srv), Host=None),  # type: ignore[arg-type]
        }
        for case, request in refused.items():
            status, data = http_status(port, request)
            assert status == 400, f"{case}: {status}"
            assert b"You sent" not in data, f"{case}: the body was taken for frames"


def test_the_page_answers_get_and_head_and_only_them() -> None:
    with RawServer("echo", port=0).start() as srv:
        status, data = http_status(srv.port, plain(srv, "HEAD"))
        head, _, body = data.partition(b"\r\n\r\n")
        assert status == 200 and body == b"" and b"Content-Length: " in head
        for method in ("POST", "PUT", "OPTIONS", "DELETE"):
            status, data = http_status(srv.port, plain(srv, method))
            assert status == 405 and b"\r\nAllow: GET, HEAD\r\n" in data, method


def test_a_plain_get_on_the_websocket_path_gets_426_naming_websocket(server: RawServer) -> None:
    """RFC 9110 15.5.22: a 426 says which protocol to upgrade to."""
    status, data = http_status(server.port, plain(server, "GET", "/chat"))
    assert status == 426 and b"\r\nUpgrade: websocket\r\n" in data


def test_an_https_origin_is_not_the_pages_origin(server: RawServer) -> None:
    """RFC 6454: the scheme is part of the origin; the page is served over http."""
    origin = f"Origin: https://127.0.0.1:{server.port}"
    status, _ = http_status(server.port, request_with(server, origin))
    assert status == 403


# -- the chat handler ------------------------------------------------------------------


def test_chat_broadcasts_with_names_and_notices() -> None:
    with RawServer("chat", port=0).start() as srv:
        with connect(named(srv.url, "Ada"), open_timeout=5) as ada:
            assert ada.recv(timeout=5) == "* Ada joined"
            with connect(named(srv.url, "Bob"), open_timeout=5) as bob:
                assert bob.recv(timeout=5) == "* Bob joined"
                assert ada.recv(timeout=5) == "* Bob joined"
                bob.send("hi all")
                assert ada.recv(timeout=5) == "Bob: hi all"
                assert bob.recv(timeout=5) == "Bob: hi all"
                bob.send("/name Robert")
                assert ada.recv(timeout=5) == "* Bob is now Robert"
                bob.send(b"\x01\x02")
                assert ada.recv(timeout=5) == b"\x01\x02"  # binary: to the others only
            assert ada.recv(timeout=5) == "* Robert left"


def test_exception_in_on_open_closes_that_client_with_1011(
    capsys: pytest.CaptureFixture[str],
) -> None:
    class Broken(Handler):
        def on_open(self, peer: Peer) -> None:
            raise RuntimeError("bug in on_open")

    with RawServer(Broken(), port=0).start() as srv:
        for _ in range(2):  # the server survives it
            with connect(srv.url, open_timeout=5) as ws:
                with pytest.raises(Exception):  # noqa: B017 - websockets' ConnectionClosedError
                    ws.recv(timeout=5)
                assert ws.close_code == 1011
    assert "RuntimeError: bug in on_open" in capsys.readouterr().err


def test_handler_exception_closes_that_client_with_1011(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def broken(peer: object, message: str | bytes) -> None:
        raise ValueError("student bug")

    with RawServer(broken, port=0).start() as srv:
        with connect(srv.url, open_timeout=5) as ws:
            ws.send("boom")
            with pytest.raises(Exception):  # noqa: B017 - websockets' ConnectionClosedError
                ws.recv(timeout=5)
            assert ws.close_code == 1011
    assert "ValueError: student bug" in capsys.readouterr().err


# -- the client ------------------------------------------------------------------------


@contextmanager
def scripted_server(
    script: Callable[[socket.socket], None], *, answer: bool = True
) -> Iterator[str]:
    """A plain-socket server: it accepts one client, answers its handshake by
    hand (section 4.2.2) unless ``answer`` is false, then runs ``script(conn)``.
    Yields its ws:// URL."""
    errors: list[BaseException] = []
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(10)

        def serve_once() -> None:
            try:
                conn, _ = listener.accept()
                with conn:
                    conn.settimeout(5)
                    head = read_until(conn, b"\r\n\r\n").decode()
                    key = head.split("Sec-WebSocket-Key: ")[1].split("\r\n")[0]
                    digest = hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode())
                    accept = base64.b64encode(digest.digest()).decode()
                    if answer:
                        conn.sendall(
                            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                            b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
                            + accept.encode()
                            + b"\r\n\r\n"
                        )
                    script(conn)
            except BaseException as error:
                errors.append(error)

        thread = threading.Thread(target=serve_once)
        thread.start()
        try:
            yield f"ws://127.0.0.1:{listener.getsockname()[1]}/"
        finally:
            thread.join(15)
    if errors:
        raise errors[0]


def read_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, f"connection closed after {len(data)} of {size} bytes"
        data += chunk
    return data


def test_client_masks_with_a_fixed_key_as_in_rfc_5_7() -> None:
    """The client's bytes are those of RFC 6455 section 5.7, "Hello" masked."""
    received: list[bytes] = []

    def script(conn: socket.socket) -> None:
        received.append(read_exactly(conn, 11))
        conn.sendall(b"\x81\x05Hello")  # the RFC's unmasked "Hello" (5.7)

    with scripted_server(script) as url:
        with RawClient.connect(url, mask_key=MASK) as client:
            client.send("Hello")
            assert client.recv(timeout=5) == "Hello"
    assert received == [bytes.fromhex("818537fa213d7f9f4d5158")]


def test_client_fails_a_masked_server_frame_with_1002() -> None:
    """Section 5.1: a client closes the connection if a server frame is masked."""
    received: list[bytes] = []

    def script(conn: socket.socket) -> None:
        conn.sendall(masked(0x81, b"masked by mistake"))
        head = read_exactly(conn, 2)  # the client's close frame: 0x88, MASK | length
        payload = read_exactly(conn, 4 + (head[1] & 0x7F))
        mask, body = payload[:4], payload[4:]
        received.append(head[:1] + bytes(b ^ mask[i % 4] for i, b in enumerate(body))[:2])
        # The client waits for the server to close TCP first (7.1.1): it has
        # sent nothing more.
        conn.shutdown(socket.SHUT_WR)
        assert conn.recv(1) == b""

    with scripted_server(script) as url:
        client = RawClient.connect(url)
        with pytest.raises(ConnectionClosed, match="code 1002"):
            client.recv(timeout=5)
        assert client.close_code == 1002
    assert received == [b"\x88" + struct.pack("!H", 1002)]


def keep_sending(conn: socket.socket, data: bytes, dropped: list[bool]) -> None:
    """Send ``data`` again and again for up to 20 s; note whether the client hung up first."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            conn.sendall(data)
        except OSError:
            dropped.append(True)  # the client closed its socket
            return
        time.sleep(0.05)


@pytest.mark.parametrize(
    "first",
    [b"\x88\x05\x03\xe8bye", masked(0x81, b"masked by mistake")],
    ids=["close frame", "masked server frame"],
)
def test_client_gives_up_on_a_server_that_keeps_sending_after_the_end(first: bytes) -> None:
    """The client waits a while for the server's FIN (7.1.1), not for as long as bytes come.

    Before: a timeout per recv(), so a server that kept sending after its
    close frame (or after a frame that failed the connection) held recv() forever.
    """
    dropped: list[bool] = []

    def script(conn: socket.socket) -> None:
        conn.sendall(first)
        keep_sending(conn, b"\x00" * 100, dropped)

    with scripted_server(script) as url:
        client = RawClient.connect(url)
        with pytest.raises(ConnectionClosed):
            client.recv(timeout=5)
        assert client.close_code in (1000, 1002)
    assert dropped, "the client read until the server stopped sending"


def test_client_handshake_timeout_is_a_deadline_for_the_whole_answer() -> None:
    """A server that sends its 101 a byte at a time does not hold connect() forever."""
    dropped: list[bool] = []

    def script(conn: socket.socket) -> None:
        keep_sending(conn, b"H", dropped)

    with scripted_server(script, answer=False) as url:
        with pytest.raises(TimeoutError, match="did not answer the handshake within 1 s"):
            RawClient.connect(url, timeout=1)
    assert dropped, "connect() waited until the server stopped sending"


def test_client_reports_a_refusal_with_a_malformed_content_length() -> None:
    def script(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: many\r\n\r\nno")

    with scripted_server(script, answer=False) as url:
        with pytest.raises(HandshakeError, match="400 Bad Request") as info:
            RawClient.connect(url, timeout=5)  # was a ValueError from int("many")
    assert info.value.status == 400


def test_client_uses_a_fresh_mask_key_per_frame(server: RawServer) -> None:
    client = RawClient.connect(server.url)
    try:
        frames = [client.connection.send_text("same") for _ in range(3)]
        assert len({frame[2:6] for frame in frames}) == 3
    finally:
        client.close()


def test_client_close_handshake_and_close_code(server: RawServer) -> None:
    client = RawClient.connect(server.url)
    client.send("x")
    assert client.recv(timeout=5) == "You sent: x"
    client.ping(b"are you there")
    client.close(4001, "bye")
    assert (client.close_code, client.close_reason) == (4001, "")  # the server echoes the code
    assert list(client.pongs) == [b"are you there"]
    with pytest.raises(ConnectionClosed, match="code 4001"):
        client.recv(timeout=1)


def test_client_errors_are_one_line_and_name_the_fix() -> None:
    with pytest.raises(ValueError, match="ws://"):
        RawClient.connect("http://127.0.0.1:1/chat")
    with pytest.raises(ValueError, match="mask_key must be 4 bytes"):
        RawClient.connect("ws://127.0.0.1:1/chat", mask_key=b"abc")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]  # bound but not listening: connections are refused
        with pytest.raises(ConnectionRefusedError, match=r"no server at .* is it running"):
            RawClient.connect(f"ws://127.0.0.1:{free}/chat")


def test_client_reports_a_refused_handshake_with_the_servers_reason(server: RawServer) -> None:
    with pytest.raises(HandshakeError, match=r"403 Forbidden.*not allowed") as info:
        RawClient.connect(server.url, origin="http://evil.example")
    assert info.value.status == 403
    assert "\n" not in str(info.value)


# -- the chat page in a real browser -----------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # A page that Playwright fulfils itself (the proxy stand-in below)
    # does not come from 127.0.0.1, so Chromium's Local Network Access
    # checks would block its WebSocket to 127.0.0.1.
    with launch_chromium("--disable-features=LocalNetworkAccessChecks") as chromium:
        yield chromium


@pytest.mark.browser
def test_chat_page_echo_in_chromium(server: RawServer, browser: Any) -> None:
    from playwright.sync_api import expect

    page = browser.new_page()
    try:
        page.goto(server.page_url)
        expect(page.locator("#status")).to_have_text("open", timeout=10_000)
        page.fill("#message", "hello from chromium")
        page.press("#message", "Enter")
        expect(page.locator("#messages li.in")).to_have_text(
            ["You sent: hello from chromium"], timeout=10_000
        )
        page.click("#close")
        expect(page.locator("#status")).to_have_text("closed (code 1000)", timeout=10_000)
    finally:
        page.close()


@pytest.mark.browser
def test_chat_page_uses_a_url_relative_to_itself(browser: Any) -> None:
    """Served under a prefix (as by jupyter-server-proxy), the page finds its WebSocket."""
    from playwright.sync_api import Route, expect

    from wslab.page import chat_page

    # Public: the proxy stand-in below serves the page without the server's token.
    with RawServer("chat", port=0, path="/proxy/8080/chat", token=None).start() as srv:
        prefix = f"http://127.0.0.1:{srv.port}/proxy/8080/"

        def fulfill(route: Route) -> None:
            # Stand in for the proxy: the page is served under /proxy/8080/.
            route.fulfill(status=200, content_type="text/html", body=chat_page("chat"))

        page = browser.new_page()
        try:
            page.route(prefix + "?name=Ada", fulfill)
            page.goto(prefix + "?name=Ada")
            expect(page.locator("#url")).to_have_text(
                f"ws://127.0.0.1:{srv.port}/proxy/8080/chat?name=Ada", timeout=10_000
            )
            expect(page.locator("#status")).to_have_text("open", timeout=10_000)
            page.fill("#message", "hi")
            page.click("#send")
            expect(page.locator("#messages li.in")).to_have_text(
                ["* Ada joined", "Ada: hi"], timeout=10_000
            )
        finally:
            page.close()


def test_chat_page_is_self_contained_and_escapes_the_path() -> None:
    from wslab.page import chat_page

    html = chat_page("chat").decode()
    assert "src=" not in html and "href=" not in html  # no CDN, no external assets
    for element in ("name", "message", "send", "messages", "status", "close"):
        assert f'id="{element}"' in html
    assert 'binaryType = "arraybuffer"' in html
    tricky = chat_page("x</script><script>alert(1)").decode()
    assert "x</script>" not in tricky
    assert 'const WS_PATH = "x\\u003c/script>\\u003cscript>alert(1)";' in tricky


def test_a_raw_clients_repr_and_errors_hide_the_token() -> None:
    """A private server's token is a password: reprs and messages must not print it."""
    with RawServer("echo", port=0).start() as server:
        assert server.token
        client = RawClient.connect(server.url)
        try:
            assert server.token not in repr(client)
        finally:
            client.close()
        wrong = server.url.replace(server.token, "x" * len(server.token))
        with pytest.raises(HandshakeError) as refused:
            RawClient.connect(wrong)
        assert "x" * len(server.token) not in str(refused.value)
        assert "403" in str(refused.value)
