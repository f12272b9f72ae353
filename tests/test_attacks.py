"""Issue #9 section 2, run as attacks against every wslab server.

The targets (``tests/_servers.py``): ``wslab serve --impl raw`` and ``wslab
serve --impl websockets`` as child processes started like a background job,
and ``wslab.serve`` in a real Jupyter kernel, each running the chat room.

After every attack the server must still answer a fresh client within 1 s,
and the serving process may not have grown by more than :data:`RSS_BOUND`;
at the end Ctrl-C still stops the command. The attacks that need a student's
handler (2.4, 2.5) run in the kernel only; the one that needs a file limit
(2.8, EMFILE) on the command only; 2.9 (frames before a bad one) is asked of
the from-scratch server.

The last test runs every plain-HTTP and handshake case of issue #9 (2.7,
2.10) against both implementations and expects the same status and reason.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from _servers import KernelTarget, Target, cli_server, kernel_server, local_server
from _util import wait_until
from test_hardening import (
    BINARY,
    CLOSE,
    PING,
    TEXT,
    Peer,
    client_frame,
    close_code,
    read_http_response,
    request_bytes,
)
from websockets.sync.client import connect

from wslab.rules import Limits

pytestmark = pytest.mark.timeout(120)

#: How much an attack may grow the serving process (resident memory). Each
#: defence keeps a few MiB per connection at most (``Limits.max_write_buffer``
#: is 4 MiB); the rest is allocator slack.
RSS_BOUND = 64 * 2**20

KINDS = ["raw", "websockets", "kernel"]

#: What each attack grew each server by, printed at the end (for the issue's note).
GROWTH: dict[str, dict[str, int]] = {}


@pytest.fixture(scope="module", params=KINDS)
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    """One chat server per kind, shared by the attacks, stopped at the end."""
    kind = str(request.param)
    if kind == "kernel":
        with kernel_server("chat") as server:
            yield server
    else:
        with cli_server(kind, "--handler", "chat") as server:
            yield server


#: Attacks that apply to some kinds only, and why not to the others.
ONLY = {
    "lingering_handlers_free_their_slots": (
        {"kernel"},
        "the command line runs only wslab's own handlers",
    ),
    "a_blocking_handler_is_named": ({"kernel"}, "the command line runs only wslab's own handlers"),
    "a_message_before_a_bad_frame_is_answered": (
        {"raw"},
        "asked of the from-scratch server (websockets fails the connection first)",
    ),
}


@pytest.fixture
def attack(target: Target, request: pytest.FixtureRequest) -> Iterator[Target]:
    """Run one attack; then the server answers a fresh client and its memory is bounded."""
    kinds, why = ONLY.get(request.node.originalname.removeprefix("test_"), (set(KINDS), ""))
    if target.kind not in kinds:
        pytest.skip(why)
    target.answers()
    before = target.rss()
    peak = [before]
    target.peak = peak  # type: ignore[attr-defined]  # attacks note their worst moment
    yield target
    peak.append(target.rss())
    growth = max(peak) - before
    name = request.node.originalname.removeprefix("test_")
    GROWTH.setdefault(name, {})[target.kind] = growth
    assert growth < RSS_BOUND, f"{name}: the {target.kind} server grew by {growth / 2**20:.0f} MiB"
    target.answers()


def note_peak(target: Target) -> None:
    target.peak.append(target.rss())  # type: ignore[attr-defined]


def handshake(target: Target, name: str, *, rcvbuf: int | None = None) -> Peer:
    """A hand-driven chat member, after its 101."""
    sock = socket.socket()
    if rcvbuf is not None:  # before connect(): a small window, as a client that reads little
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", target.port))
    path = f"{target.target}{'&' if '?' in target.target else '?'}name={name}"
    sock.sendall(request_bytes(target.port, path))
    status, _, rest = read_http_response(sock)
    assert status == 101, f"handshake refused with {status}"
    return Peer(sock, rest)


def flood(sock: socket.socket, data: bytes, seconds: float, stop: threading.Event) -> int:
    """Write ``data`` again and again for ``seconds`` (never reading); return bytes sent."""
    sent = 0
    sock.settimeout(0.2)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not stop.is_set():
        try:
            sock.sendall(data)
            sent += len(data)
        except TimeoutError:
            continue  # the server reads more slowly than we write
        except OSError:
            break  # it dropped us
    return sent


# -- 2.1: a client that pings and never reads cannot wedge the others ------------------


def test_a_pinging_member_that_never_reads_blocks_nobody(attack: Target) -> None:
    flooder = handshake(attack, "flooder", rcvbuf=4096)
    stop = threading.Event()
    pings = client_frame(PING, b"p" * 125) * 200
    thread = threading.Thread(target=flood, args=(flooder.sock, pings, 4.0, stop))
    thread.start()
    try:
        time.sleep(0.5)  # its pongs have filled every buffer by now
        attack.answers()  # a newcomer gets its 101, and the room's broadcast
        note_peak(attack)
    finally:
        stop.set()
        thread.join(10)
        flooder.sock.close()


# -- 2.2: a ping flood does not grow memory without limit -------------------------------


def test_a_ping_flood_is_cut_off(attack: Target) -> None:
    flooder = handshake(attack, "flooder", rcvbuf=4096)
    try:
        sent = flood(flooder.sock, client_frame(PING, b"p" * 125) * 500, 6.0, threading.Event())
        note_peak(attack)
        assert sent > 4 * 2**20, "the flood was too small to test anything"
        # The server gave up on it: reading what it sent ends with its close.
        flooder.recv_until_eof(timeout=30)
    finally:
        flooder.sock.close()


# -- 2.3: slow handshakes do not hold the server ----------------------------------------


def test_slowloris_does_not_hold_the_server(attack: Target) -> None:
    slow: list[socket.socket] = []
    try:
        for _ in range(100):
            sock = socket.create_connection(("127.0.0.1", attack.port), timeout=5)
            sock.sendall(b"GET /chat HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            slow.append(sock)
        for _ in range(3):  # a byte now and then, as slowloris does
            for sock in slow:
                with contextlib.suppress(OSError):
                    sock.sendall(b"X")
            time.sleep(0.2)
        attack.answers()
        note_peak(attack)
    finally:
        for sock in slow:
            sock.close()


def open_sockets(pid: int) -> int:
    """How many sockets process ``pid`` holds open (listening ones included)."""
    fds = Path(f"/proc/{pid}/fd")
    count = 0
    for fd in fds.iterdir():
        with contextlib.suppress(OSError):  # closed while we looked
            count += os.readlink(fd).startswith("socket:")
    return count


def test_refused_clients_that_never_close_are_dropped(attack: Target) -> None:
    """A refused client counts as handshaking until it closes (max_handshaking).

    Each gets its 426 and keeps its connection open, as a scanner would; the
    server may keep ``max_handshaking`` of them, not one descriptor each for
    its close timeout (3 s), which a flood of thousands would exhaust.
    """
    before = open_sockets(attack.pid)
    refused: list[socket.socket] = []
    try:
        for _ in range(200):
            sock = socket.create_connection(("127.0.0.1", attack.port), timeout=5)
            sock.sendall(b"GET /chat HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")  # no Upgrade
            refused.append(sock)
        assert read_http_response(refused[-1])[0] == 426
        limit = before + Limits().max_handshaking + 8  # a few of the test's own probes
        wait_until(
            lambda: open_sockets(attack.pid) <= limit,
            timeout=2.0,  # well before close_timeout
            what=f"at most {limit} sockets open in the server",
        )
        attack.answers()
        note_peak(attack)
    finally:
        for sock in refused:
            sock.close()


# -- 2.4: a handler that never returns keeps no slot (a student's handler: kernel) ------

LINGER_CELL = """
import asyncio, time
from websockets.exceptions import ConnectionClosed

async def stubborn(ws):
    await ws.recv()
    while True:
        try:
            await ws.recv()
        except ConnectionClosed:
            time.sleep(0.05)           # a sync sleep...
            await asyncio.sleep(3600)  # ...and an await that never ends

linger = wslab.serve(stubborn, max_clients=2, close_timeout=0.5)
"""


def test_lingering_handlers_free_their_slots(attack: Target) -> None:
    assert isinstance(attack, KernelTarget)
    kernel = attack.kernel
    kernel.run(LINGER_CELL).raise_for_error()
    url = kernel.eval("linger.url").strip("'")
    try:
        for _ in range(4):  # twice as many clients as slots, one after the other
            with connect(url, open_timeout=5) as ws:  # never a 503
                ws.send("hello")
        wait_until(
            lambda: kernel.eval("len(linger.clients)") == "0",
            timeout=10,
            what="server.clients lists only connected clients",
        )
    finally:
        kernel.run("linger.stop()").raise_for_error()


# -- 2.5: a blocking handler is named, and nothing claims what is not true --------------

BLOCK_CELL = """
async def sleepy(ws):
    async for message in ws:
        time.sleep(5)

blocker = wslab.serve(sleepy)
"""


def test_a_blocking_handler_is_named(attack: Target) -> None:
    assert isinstance(attack, KernelTarget)
    kernel = attack.kernel
    kernel.run("import time\n" + BLOCK_CELL).raise_for_error()
    url = kernel.eval("blocker.url").strip("'")
    with connect(url, open_timeout=5) as ws:
        ws.send("sleep")
        result = kernel.run("wslab.serve('echo')", timeout=20)
        assert result.error is not None and result.error[0] == "LoopBlockedError"
        assert "the handler sleepy" in result.error[1] and "asyncio.sleep" in result.error[1]
        assert "wslab/" not in result.text  # one line, no traceback through wslab
        stopped = kernel.run("blocker.stop()", timeout=20)
        assert stopped.error is not None and "cannot stop" in stopped.error[1]
        assert kernel.eval("blocker.state") == "'blocked'"
    wait_until(lambda: kernel.eval("blocker.state") == "'running'", timeout=20)
    kernel.run("blocker.stop()").raise_for_error()


# -- 2.6: endless empty continuation frames are cut off ---------------------------------


def test_endless_empty_continuation_frames_are_cut_off(attack: Target) -> None:
    member = handshake(attack, "fragments")
    try:
        member.sock.sendall(client_frame(TEXT, b"a", fin=False))
        empty = client_frame(0x0, b"", fin=False) * 10_000
        flood(member.sock, empty, 8.0, threading.Event())
        note_peak(attack)
        frames = member.recv_until_eof(timeout=30)
        closes = [close_code(payload) for opcode, payload in frames if opcode == CLOSE]
        assert closes and closes[0] in (1008, 1009), closes
    finally:
        member.sock.close()


# -- 2.8: no busy loop out of file descriptors; no stalled room -------------------------


def test_a_member_that_never_reads_does_not_stall_the_room(attack: Target) -> None:
    sleeper = handshake(attack, "sleeper", rcvbuf=4096)  # joins, never reads
    try:
        with (
            connect(attack.with_name("talker"), open_timeout=5, max_size=None) as talker,
            connect(attack.with_name("listener"), open_timeout=5, max_size=None) as listener,
        ):
            body = "x" * 65536
            got = 0
            for i in range(60):  # 4 MB: more than the sleeper's buffers hold
                talker.send(f"{i} {body}")
                deadline = time.monotonic() + 20  # generous: the room must move, not race
                while got <= i:
                    message = listener.recv(timeout=max(deadline - time.monotonic(), 0.01))
                    if isinstance(message, str) and message.startswith("talker: "):
                        got += 1
                with contextlib.suppress(TimeoutError):
                    while talker.recv(timeout=0):  # the talker reads its own copies
                        pass
            note_peak(attack)
            assert got == 60
    finally:
        sleeper.sock.close()


def test_no_busy_loop_without_file_descriptors(target: Target) -> None:
    if isinstance(target, KernelTarget):
        pytest.skip("a kernel's file limit is the kernel's")
    with cli_server(target.kind, "--handler", "chat", max_files=48) as server:
        server.answers()
        held: list[socket.socket] = []
        try:
            for _ in range(80):  # more than it may open: accept() fails with EMFILE
                held.append(socket.create_connection(("127.0.0.1", server.port), timeout=5))
            time.sleep(0.5)
            cpu = server.cpu()
            time.sleep(2)
            # A generous bound: spinning on accept() takes all of one core.
            assert server.cpu() - cpu < 1.0, "the accept loop spins without file descriptors"
        finally:
            for sock in held:
                sock.close()
        wait_until(lambda: _answers(server), timeout=15, what="it serves again")
        assert server.interrupt() == 0


def _answers(target: Target) -> bool:
    try:
        target.answers()
    except AssertionError:
        return False
    return True


# -- 2.9: a message before a bad frame is still answered --------------------------------


def test_a_message_before_a_bad_frame_is_answered(attack: Target) -> None:
    member = handshake(attack, "strict")
    try:
        unmasked = bytes([0x80 | TEXT, 3]) + b"bad"  # clients must mask (5.1): 1002
        member.sock.sendall(client_frame(TEXT, b"before") + unmasked)
        frames = member.recv_until_eof()
        texts = [payload for opcode, payload in frames if opcode == TEXT]
        closes = [close_code(payload) for opcode, payload in frames if opcode == CLOSE]
        assert b"strict: before" in texts and closes == [1002]
        assert frames.index((TEXT, b"strict: before")) < [f[0] for f in frames].index(CLOSE)
    finally:
        member.sock.close()


# -- beyond issue #9: more attacks, by a hostile client or a curious classmate ----------


def drain(sock: socket.socket, stop: threading.Event) -> None:
    """Read and drop whatever arrives until ``stop`` (a flooder that reads its answers)."""
    sock.settimeout(0.2)
    while not stop.is_set():
        try:
            if not sock.recv(2**20):
                return
        except TimeoutError:
            continue
        except OSError:
            return


def test_a_flood_of_tiny_frames_does_not_starve_the_others(attack: Target) -> None:
    # Empty pings and one-byte messages as fast as TCP takes them, from a
    # client that reads every answer (so no write-buffer limit stops it):
    # within the RFC, but each read holds thousands of frames.
    flooder = handshake(attack, "flooder")
    stop = threading.Event()
    tiny = (client_frame(PING, b"") + client_frame(TEXT, b"a")) * 2000
    threads = [
        threading.Thread(target=drain, args=(flooder.sock, stop)),
        threading.Thread(target=flood, args=(flooder.sock, tiny, 30.0, stop)),
    ]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.5)
        for _ in range(3):
            attack.answers()  # within 1 s, flood or not
        note_peak(attack)
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
        flooder.sock.close()


def test_a_member_that_closes_but_keeps_tcp_open_leaves_in_time(attack: Target) -> None:
    # A Close frame (or a frame that fails the connection), then TCP stays
    # open: the server closes TCP itself after close_timeout (3 s). wslab.serve
    # waited for its next keepalive ping (20 s; forever with pings off), so the
    # member held its slot and the room never heard it had left.
    with connect(attack.with_name("listener"), open_timeout=5) as listener:
        members = [handshake(attack, f"closer{i}") for i in range(2)]
        try:
            members[0].sock.sendall(client_frame(CLOSE, b"\x03\xe8"))
            members[1].sock.sendall(bytes([0x80 | TEXT, 3]) + b"bad")  # unmasked: 1002
            waiting = {"* closer0 left", "* closer1 left"}
            deadline = time.monotonic() + 12  # close_timeout, generously; not 20 s
            while waiting:
                left = deadline - time.monotonic()
                assert left > 0, f"the room never heard: {sorted(waiting)}"
                message = listener.recv(timeout=left)
                waiting.discard(message if isinstance(message, str) else "")
            note_peak(attack)
        finally:
            for member in members:
                member.sock.close()


# -- 2.11 and the end: Ctrl-C still stops the command -----------------------------------


def test_binary_still_relayed_then_ctrl_c_stops_the_command(target: Target) -> None:
    target.answers()
    with (
        connect(target.with_name("a"), open_timeout=5) as a,
        connect(target.with_name("b"), open_timeout=5) as b,
    ):
        a.send(bytes([BINARY, 0, 255]))
        deadline = time.monotonic() + 5
        while b.recv(timeout=max(deadline - time.monotonic(), 0.01)) != bytes([BINARY, 0, 255]):
            pass
    if not isinstance(target, KernelTarget):
        # Started as a background job (SIGINT ignored by its shell): 2.11.
        assert target.interrupt() == 0  # type: ignore[attr-defined]
    print("\nRSS growth per attack (MiB):")
    for name, by_kind in GROWTH.items():
        print(f"  {name}: " + ", ".join(f"{k} {v / 2**20:.1f}" for k, v in by_kind.items()))


# -- 2.7 and 2.10: one answer to every plain-HTTP and handshake case ---------------------

TOKEN = "Attack-Table-Token-0123"


def _case(
    request_line: str = "GET /chat?wslab_token={token} HTTP/1.1",
    *,
    websocket: bool = True,
    extra: str = "",
    drop: tuple[str, ...] = (),
    host: str = "127.0.0.1:{port}",
    body: bytes = b"",
) -> Callable[[int], bytes]:
    """A request, built once the server's port is known."""

    def build(port: int) -> bytes:
        headers = [("Host", host.format(port=port))]
        if websocket:
            headers += [
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                ("Sec-WebSocket-Version", "13"),
            ]
        lines = [request_line.format(token=TOKEN, port=port)]
        lines += [f"{n}: {v}" for n, v in headers if n not in drop]
        head = "\r\n".join(lines) + "\r\n" + extra.format(port=port) + "\r\n"
        return head.encode("latin-1") + body

    return build


#: Each case: the request, and the status every wslab server must answer.
CASES: dict[str, tuple[Callable[[int], bytes], int]] = {
    "valid handshake": (_case(), 101),
    "page": (_case("GET /?wslab_token={token} HTTP/1.1", websocket=False), 200),
    "page without its token": (_case("GET / HTTP/1.1", websocket=False), 403),
    "page with a wrong token": (_case("GET /?wslab_token=nope HTTP/1.1", websocket=False), 403),
    "HEAD on the page": (_case("HEAD /?wslab_token={token} HTTP/1.1", websocket=False), 200),
    "POST on the page": (_case("POST /?wslab_token={token} HTTP/1.1", websocket=False), 405),
    "PUT on the page": (_case("PUT / HTTP/1.1", websocket=False), 405),
    "OPTIONS on the page": (_case("OPTIONS / HTTP/1.1", websocket=False), 405),
    "plain GET on the WebSocket path": (_case(websocket=False), 426),
    "POST on the WebSocket path": (_case("POST /chat?wslab_token={token} HTTP/1.1"), 405),
    "unknown path": (_case("GET /nope HTTP/1.1", websocket=False), 404),
    "WebSocket on an unknown path": (_case("GET /nope?wslab_token={token} HTTP/1.1"), 404),
    "WebSocket without the token": (_case("GET /chat HTTP/1.1"), 403),
    "WebSocket with a wrong token": (_case("GET /chat?wslab_token=nope HTTP/1.1"), 403),
    "no Host": (_case(drop=("Host",)), 400),
    "two Hosts": (_case(extra="Host: 127.0.0.1:{port}\r\n"), 400),
    "two Origins": (
        _case(extra="Origin: http://127.0.0.1:{port}\r\nOrigin: http://127.0.0.1:{port}\r\n"),
        400,
    ),
    "two Upgrades": (_case(extra="Upgrade: websocket\r\n"), 400),
    "two keys": (_case(extra="Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"), 400),
    "Upgrade: h2c": (_case(drop=("Upgrade",), extra="Upgrade: h2c\r\n"), 400),
    "no Connection": (_case(drop=("Connection",)), 400),
    "bad key": (_case(drop=("Sec-WebSocket-Key",), extra="Sec-WebSocket-Key: short\r\n"), 400),
    "no version": (_case(drop=("Sec-WebSocket-Version",)), 400),
    "version 8": (
        _case(drop=("Sec-WebSocket-Version",), extra="Sec-WebSocket-Version: 8\r\n"),
        426,
    ),
    "https Origin for an http page": (_case(extra="Origin: https://127.0.0.1:{port}\r\n"), 403),
    "foreign Origin": (_case(extra="Origin: http://evil.example\r\n"), 403),
    "DNS rebinding Host": (
        _case(host="evil.example:{port}", extra="Origin: http://evil.example:{port}\r\n"),
        403,
    ),
    "Transfer-Encoding": (_case(extra="Transfer-Encoding: chunked\r\n"), 400),
    "Content-Length body": (_case(extra="Content-Length: 5\r\n", body=b"\x81\x85abcd"), 400),
    "NUL in a header": (_case(extra="X-Evil: a\x00b\r\n"), 400),
    "HTTP/1.0": (_case("GET /chat?wslab_token={token} HTTP/1.0"), 400),
    "malformed request line": (_case("GET /chat"), 400),
    "head over 8 KiB": (_case(extra="X-Big: " + "a" * 9000 + "\r\n"), 431),
}


@pytest.fixture(scope="module")
def both() -> Iterator[dict[str, Target]]:
    """RawServer and wslab.serve in this process, with the same token."""
    with (
        local_server("raw", token=TOKEN) as raw,
        local_server("websockets", token=TOKEN) as kernel,
    ):
        yield {"raw": raw, "websockets": kernel}


def _answer(target: Target, request: bytes) -> tuple[int, str, dict[str, str], bytes]:
    """Send a request; the status, the first line of the body, the headers, the body."""
    with socket.create_connection(("127.0.0.1", target.port), timeout=5) as sock:
        sock.sendall(request)
        status, headers, rest = read_http_response(sock)
        length = int(headers.get("content-length", "0"))
        sock.settimeout(5)
        while status != 101 and len(rest) < length and not request.startswith(b"HEAD"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
    body = rest if status != 101 else b""
    reason = body.decode(errors="replace").splitlines()[0] if status >= 400 and body else ""
    return status, reason, headers, body


@pytest.mark.parametrize("case", CASES)
def test_every_server_gives_the_same_answer(both: dict[str, Target], case: str) -> None:
    build, expected = CASES[case]
    answers = {kind: _answer(target, build(target.port)) for kind, target in both.items()}
    for kind, (status, reason, headers, body) in answers.items():
        assert status == expected, f"{kind}: {status} {reason}"
        if status >= 400:
            assert reason and "\n" not in reason.strip(), f"{kind}: no one-line reason"
        if status == 426:
            assert headers.get("upgrade") == "websocket"  # RFC 9110 15.5.22
        if case.startswith("HEAD"):
            assert body == b"" and int(headers["content-length"]) > 0
    same = {
        kind: (status, reason.replace(str(both[kind].port), "PORT"))
        for kind, (status, reason, *_) in answers.items()
    }
    assert same["raw"] == same["websockets"]
