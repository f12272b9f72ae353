"""Hardening: both servers under load, faults, bad input and attacks (issue #6).

Every test here runs against both of wslab's servers where it applies: the
in-kernel server (``wslab.serve``, on the websockets library, in this test
process) and the from-scratch ``wslab.raw.RawServer``. The peers are
independent of wslab's own code: frames and handshakes are built by hand
from RFC 6455 (its section 1.3 key and section 5.7 masking key), or come from
the websockets library's client.

After each fault the server must still serve a new client, and nothing may
leak: threads, tasks on wslab's background loop, and open file descriptors
return to where they were, after a short settle time.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import gc
import logging
import os
import selectors
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from _servers import RFC_ACCEPT, request_bytes
from websockets.sync.client import connect as ws_connect

from wslab import loop, rules
from wslab.errors import ServerStartError

KINDS = ["kernel", "raw"]

#: The masking key of the examples in RFC 6455 section 5.7.
RFC_MASK = bytes.fromhex("37fa213d")

TEXT, BINARY, CLOSE, PING, PONG = 0x1, 0x2, 0x8, 0x9, 0xA


# -- frames and handshakes by hand (independent of wslab's core) ---------------------


def client_frame(
    opcode: int, payload: bytes, *, fin: bool = True, length: int | None = None
) -> bytes:
    """A masked client frame (RFC 6455 section 5.2), optionally lying about its length."""
    size = len(payload) if length is None else length
    first = (0x80 if fin else 0) | opcode
    if size < 126:
        header = struct.pack("!BB", first, 0x80 | size)
    elif size < 2**16:
        header = struct.pack("!BBH", first, 0x80 | 126, size)
    else:
        header = struct.pack("!BBQ", first, 0x80 | 127, size)
    stream = (RFC_MASK * (len(payload) // 4 + 1))[: len(payload)]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(stream, "big")).to_bytes(
        len(payload), "big"
    )
    return header + RFC_MASK + masked


def read_http_response(
    sock: socket.socket, timeout: float = 10.0
) -> tuple[int, dict[str, str], bytes]:
    """Read an HTTP response head (and what follows so far): status, headers, rest."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before the end of the response: {data!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, rest


class Peer:
    """A hand-driven WebSocket client socket: raw bytes in, parsed server frames out."""

    def __init__(self, sock: socket.socket, rest: bytes = b"") -> None:
        self.sock = sock
        self.buffer = bytearray(rest)

    def frames(self) -> Iterator[tuple[int, bytes]]:
        """Yield every complete (unmasked) server frame in the buffer."""
        while len(self.buffer) >= 2:
            size = self.buffer[1] & 0x7F
            start = 2
            if size == 126:
                if len(self.buffer) < 4:
                    return
                (size,) = struct.unpack_from("!H", self.buffer, 2)
                start = 4
            elif size == 127:
                if len(self.buffer) < 10:
                    return
                (size,) = struct.unpack_from("!Q", self.buffer, 2)
                start = 10
            assert not self.buffer[1] & 0x80, "server frames must not be masked (5.1)"
            if len(self.buffer) < start + size:
                return
            opcode = self.buffer[0] & 0x0F
            payload = bytes(self.buffer[start : start + size])
            del self.buffer[: start + size]
            yield opcode, payload

    def recv_frame(self, timeout: float = 10.0) -> tuple[int, bytes]:
        deadline = time.monotonic() + timeout
        while True:
            for frame in self.frames():
                if frame[0] != PING:
                    return frame
            self.sock.settimeout(max(deadline - time.monotonic(), 0.01))
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed TCP")
            self.buffer += chunk

    def recv_until_eof(self, timeout: float = 10.0) -> list[tuple[int, bytes]]:
        """Every frame until the server closes TCP; fail if it does not within ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            assert left > 0, "the server did not close the connection"
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return list(self.frames())
            self.buffer += chunk


def close_code(payload: bytes) -> int:
    return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005


def reset(sock: socket.socket) -> None:
    """Kill the connection abruptly: SO_LINGER 0 makes close() send a TCP RST."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


# -- leak accounting ---------------------------------------------------------------


@dataclass
class Snapshot:
    threads: set[threading.Thread]
    fds: int
    tasks: int


async def _count_tasks() -> int:
    return len(asyncio.all_tasks()) - 1  # not this one


def snapshot() -> Snapshot:
    return Snapshot(
        set(threading.enumerate()),
        len(os.listdir("/proc/self/fd")),
        loop.run_sync(_count_tasks(), timeout=5),
    )


def assert_no_leaks(before: Snapshot, settle: float = 10.0) -> None:
    """Wait up to ``settle`` seconds for threads, loop tasks and fds to go back."""
    deadline = time.monotonic() + settle
    while True:
        gc.collect()
        now = snapshot()
        extra_threads = [t.name for t in now.threads - before.threads if t.is_alive()]
        if not extra_threads and now.fds <= before.fds and now.tasks <= before.tasks:
            return
        if time.monotonic() > deadline:
            pytest.fail(
                f"leak after {settle:g} s: threads {extra_threads}, "
                f"fds {before.fds} -> {now.fds}, loop tasks {before.tasks} -> {now.tasks}"
            )
        time.sleep(0.1)


def rss() -> int:
    """This process's resident memory in bytes."""
    for line in open("/proc/self/status").read().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


# -- the two servers ---------------------------------------------------------------


class Harness:
    """Starts servers of one kind and hand-driven peers; stops and closes them all."""

    def __init__(self, kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
        self.kind = kind
        self.monkeypatch = monkeypatch
        self.servers: list[Any] = []
        self.sockets: list[socket.socket] = []

    def start(
        self, handler: str = "echo", *, handshake_timeout: float | None = None, **options: Any
    ) -> Any:
        if handshake_timeout is not None:
            options["handshake_timeout"] = handshake_timeout
        # Public: these tests are about robustness, not access (tests/test_attacks.py,
        # test_server.py and test_raw.py cover the token).
        options.setdefault("token", None)
        if self.kind == "kernel":
            import wslab.server

            server = wslab.server.serve(handler, port=0, **options)
        else:
            from wslab.raw import RawServer

            server = RawServer(handler, port=0, **options).start()
        self.servers.append(server)
        return server

    def tcp(self, server: Any) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        self.sockets.append(sock)
        return sock

    def peer(self, server: Any, path: str = "/chat") -> Peer:
        """A connection after a successful handshake, checked against RFC 6455 1.3."""
        sock = self.tcp(server)
        sock.sendall(request_bytes(server.port, path))
        status, headers, rest = read_http_response(sock)
        assert status == 101, f"handshake refused with {status}"
        assert headers["sec-websocket-accept"] == RFC_ACCEPT
        return Peer(sock, rest)

    def close(self) -> None:
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.close()
        self.sockets.clear()
        for server in self.servers:
            server.stop()
        self.servers.clear()
        gc.collect()


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def harness(kind: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    loop.get_loop()  # the background loop is per process, not per test
    h = Harness(kind, monkeypatch)
    try:
        yield h
    finally:
        h.close()


@pytest.fixture
def baseline() -> Snapshot:
    """Threads, tasks and fds before the test (taken before its servers start)."""
    loop.get_loop()
    gc.collect()
    return snapshot()


def assert_serves(server: Any, handler: str = "echo") -> None:
    """A fresh client (websockets' own) connects and gets an answer."""
    with ws_connect(
        server.url + ("?name=probe" if handler == "chat" else ""), open_timeout=10
    ) as ws:
        ws.send("still there?")
        expected = "You sent: still there?" if handler == "echo" else "probe: still there?"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if ws.recv(timeout=10) == expected:
                return
        pytest.fail(f"no {expected!r} from the server")


# -- load --------------------------------------------------------------------------


def test_chat_load_nothing_lost_duplicated_or_reordered(harness: Harness) -> None:
    """50 clients x 200 messages: every client gets every message, in order per sender."""
    clients, messages = 50, 200
    # On a starved CI machine this one-thread reader of 50 sockets can lag for
    # seconds; the raw server's drop-a-slow-reader policy (tested on its own
    # below) must not fire here, where the subject is order and completeness.
    limits = rules.Limits(send_timeout=60.0, max_clients=clients + 10)
    server = harness.start("chat", limits=limits)
    peers = [harness.peer(server, f"/chat?name=c{i}") for i in range(clients)]
    selector = selectors.DefaultSelector()
    for index, peer in enumerate(peers):
        peer.sock.setblocking(False)
        selector.register(peer.sock, selectors.EVENT_READ, index)
    # next expected sequence number, per receiver and per sender
    expected = [[0] * clients for _ in range(clients)]
    outgoing = [bytearray() for _ in range(clients)]
    received = 0
    total = clients * clients * messages

    def read(index: int) -> None:
        nonlocal received
        peer = peers[index]
        try:
            chunk = peer.sock.recv(262144)
        except BlockingIOError:
            return
        assert chunk, f"server closed client c{index}"
        peer.buffer += chunk
        for opcode, payload in peer.frames():
            if opcode == PING:
                # A long run meets the server's keepalive: answer it as a peer must (5.5.2).
                outgoing[index] += client_frame(PONG, payload)
                continue
            assert opcode == TEXT
            text = payload.decode()
            if text.startswith("* "):
                continue  # join notices
            name, _, body = text.partition(": ")
            sender, seq = int(name[1:]), int(body.split()[1])
            assert body == f"{name} {seq}"
            assert seq == expected[index][sender], (
                f"c{index} got {text!r} but expected message {expected[index][sender]} "
                f"from c{sender}: lost, duplicated or reordered"
            )
            expected[index][sender] += 1
            received += 1

    sent = 0
    deadline = time.monotonic() + 90
    while received < total:
        assert time.monotonic() < deadline, f"only {received} of {total} deliveries"
        if sent < messages:
            for index in range(clients):
                outgoing[index] += client_frame(TEXT, f"c{index} {sent}".encode())
            sent += 1
        for index, peer in enumerate(peers):
            if outgoing[index]:
                with contextlib.suppress(BlockingIOError):
                    del outgoing[index][: peer.sock.send(outgoing[index])]
        for key, _ in selector.select(timeout=0 if sent < messages else 1):
            read(key.data)
    selector.close()
    assert all(row == [messages] * clients for row in expected)


# -- faults ------------------------------------------------------------------------


@pytest.mark.parametrize("stage", ["handshake", "frame", "close"])
@pytest.mark.parametrize("handler", ["echo", "chat"])
def test_clients_killed_mid_way(
    harness: Harness, baseline: Snapshot, handler: str, stage: str
) -> None:
    """Clients that vanish (TCP RST) mid-handshake, mid-frame or mid-close do no harm."""
    server = harness.start(handler)
    for _ in range(10):
        if stage == "handshake":
            sock = harness.tcp(server)
            sock.sendall(request_bytes(server.port)[:40])
        else:
            peer = harness.peer(server)
            sock = peer.sock
            if stage == "frame":
                sock.sendall(client_frame(BINARY, b"x" * 100, length=1000))
            else:
                sock.sendall(client_frame(CLOSE, struct.pack("!H", 1000)))
        reset(sock)
        harness.sockets.remove(sock)
    assert_serves(server, handler)
    harness.close()
    assert_no_leaks(baseline)


def test_slowloris_handshake_times_out(harness: Harness, baseline: Snapshot) -> None:
    """100 connections that never send a handshake are dropped and free their slots."""
    server = harness.start("echo", handshake_timeout=0.5, max_clients=4)
    idle = [harness.tcp(server) for _ in range(100)]
    # The idle connections do not take the client slots of real clients ...
    assert_serves(server)
    # ... and the server drops each of them once the handshake timeout passes.
    for sock in idle:
        sock.settimeout(10)  # a TimeoutError here means the server kept the connection
        with contextlib.suppress(ConnectionResetError):
            while sock.recv(1024):
                pass  # an HTTP error answer is fine; what matters is the EOF
    assert_serves(server)
    harness.close()
    assert_no_leaks(baseline)


def test_echo_client_that_never_reads(harness: Harness, baseline: Snapshot) -> None:
    """A client that sends but never reads meets backpressure; others are unaffected."""
    server = harness.start("echo")
    slow = harness.peer(server)
    slow.sock.settimeout(2.0)
    message = client_frame(BINARY, os.urandom(65536))
    before = rss()
    pushed = 0
    limit = 128 * 2**20
    # The send times out once the server stops reading (or the server drops us).
    with contextlib.suppress(TimeoutError, BlockingIOError, ConnectionError):
        while pushed < limit:
            slow.sock.sendall(message)
            pushed += len(message)
    # The server stopped reading once its writes to the slow client blocked:
    # it did not buffer everything the client pushed.
    assert pushed < limit, "the server kept reading from a client that never reads"
    grown = rss() - before
    assert grown < 48 * 2**20, f"memory grew by {grown / 2**20:.0f} MiB"
    assert_serves(server)
    harness.close()
    assert_no_leaks(baseline)


def test_stop_returns_with_a_client_that_never_reads(harness: Harness, baseline: Snapshot) -> None:
    """stop() must not hang on a close frame that cannot be sent (section 7.1.1)."""
    # Shorter give-up times than the defaults, to keep the test fast.
    server = harness.start("echo", limits=rules.Limits(send_timeout=1.0, close_timeout=0.5))
    flood = harness.peer(server)
    flood.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    flood.sock.settimeout(1.0)
    message = client_frame(BINARY, bytes(65536))
    with contextlib.suppress(TimeoutError, ConnectionError):
        for _ in range(1000):  # until the server stops reading: its echoes are stuck
            flood.sock.sendall(message)
    stopper = threading.Thread(target=server.stop, daemon=True)
    stopper.start()
    stopper.join(30)  # a liveness bound, not a speed target
    assert not stopper.is_alive(), "stop() hangs on a client that never reads"
    harness.close()
    assert_no_leaks(baseline)


def test_chat_client_that_never_reads(harness: Harness, baseline: Snapshot) -> None:
    """A chat member that never reads does not hold up the others or grow memory."""
    # RawServer drops a client whose sends block this long (5 s by default).
    server = harness.start("chat", limits=rules.Limits(send_timeout=1.0))
    harness.peer(server, "/chat?name=sleeper")  # joins, then never reads
    talker = harness.peer(server, "/chat?name=talker")
    listener = harness.peer(server, "/chat?name=listener")
    count, size = 200, 256 * 1024
    body = "x" * (size - 10)
    before = rss()
    got = {"talker": 0, "listener": 0}
    peers = {"talker": talker, "listener": listener}
    selector = selectors.DefaultSelector()
    for name, peer in peers.items():
        peer.sock.setblocking(False)
        selector.register(peer.sock, selectors.EVENT_READ, name)
    outgoing = bytearray()
    sent = 0
    deadline = time.monotonic() + 60
    while min(got.values()) < count:
        assert time.monotonic() < deadline, f"stalled at {got} of {count} messages"
        if sent < count and len(outgoing) < 4 * size:
            outgoing += client_frame(TEXT, f"{sent:08d}:{body}".encode())
            sent += 1
        if outgoing:
            with contextlib.suppress(BlockingIOError):
                del outgoing[: talker.sock.send(outgoing)]
        for key, _ in selector.select(timeout=0.05):
            peer = peers[key.data]
            with contextlib.suppress(BlockingIOError):
                chunk = peer.sock.recv(1 << 20)
                assert chunk, f"server closed {key.data}"
                peer.buffer += chunk
            for _opcode, payload in peer.frames():
                if payload.startswith(b"talker: "):
                    assert int(payload[8:16]) == got[key.data], "lost or reordered"
                    got[key.data] += 1
    selector.close()
    grown = rss() - before
    # 200 x 256 KiB = 50 MiB went to the sleeper (and as much to each of the
    # others): the server must not hold on to all of it.
    assert grown < 36 * 2**20, f"memory grew by {grown / 2**20:.0f} MiB"
    harness.close()
    assert_no_leaks(baseline)


# -- bad handshakes ----------------------------------------------------------------


HANDSHAKES = {
    "no Upgrade": (dict(drop="Upgrade"), {400, 426}),
    "no Connection": (dict(drop="Connection"), {400, 426}),
    "no key": (dict(drop="Sec-WebSocket-Key"), {400}),
    "bad key": (dict(drop="Sec-WebSocket-Key", extra="Sec-WebSocket-Key: not-base64\r\n"), {400}),
    "bad version": (
        dict(drop="Sec-WebSocket-Version", extra="Sec-WebSocket-Version: 8\r\n"),
        {426},
    ),
    "huge headers": (
        dict(extra="".join(f"X-Filler-{i}: {'a' * 100}\r\n" for i in range(200))),
        {431},
    ),
    "foreign Origin": (dict(extra="Origin: http://evil.example\r\n"), {403}),
}


@pytest.mark.parametrize("case", list(HANDSHAKES))
def test_bad_handshake_gets_status_and_one_line_reason(harness: Harness, case: str) -> None:
    """RFC 6455 4.2.1/4.2.2: refuse with the right status and say why, in one line."""
    options, statuses = HANDSHAKES[case]
    server = harness.start("echo")
    sock = harness.tcp(server)
    sock.sendall(request_bytes(server.port, **options))
    status, headers, body = read_http_response(sock)
    assert status in statuses, f"{case}: got {status}"
    if case == "bad version":
        assert headers.get("sec-websocket-version") == "13"  # section 4.4
    length = int(headers.get("content-length", len(body)))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    reason = body.decode().strip()
    assert reason and "\n" not in reason, f"{case}: reason is not one line: {reason!r}"
    assert_serves(server)


def test_frame_after_a_refused_handshake_prints_no_traceback(
    harness: Harness, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    """A frame glued to a refused request: a clean close, and nothing in the notebook.

    websockets 17.4 trips its own assertion here about once in a hundred tries
    and logs a traceback; wslab.serve filters that one record out.
    """
    server = harness.start("echo")
    request = request_bytes(server.port, "/nowhere") + b"\x81\x05hello"  # unmasked, too
    with caplog.at_level(logging.ERROR):
        for _ in range(300):
            with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
                sock.sendall(request)
                with contextlib.suppress(ConnectionError):  # closing at once is fine too
                    status, _, _ = read_http_response(sock)
                    assert status == 404
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "Traceback" not in capfd.readouterr().err


# -- security ----------------------------------------------------------------------


def test_oversized_message_closes_1009_before_buffering(harness: Harness) -> None:
    """A header announcing 100 MiB closes with 1009 at once (sections 7.4.1, 10.4)."""
    server = harness.start("echo")
    peer = harness.peer(server)
    before = rss()
    announced = 100 * 2**20
    header = client_frame(BINARY, b"", length=announced)
    peer.sock.sendall(header + os.urandom(65536))
    frames = peer.recv_until_eof(timeout=10)
    closes = [payload for opcode, payload in frames if opcode == CLOSE]
    assert closes and close_code(closes[0]) == 1009, frames
    assert rss() - before < announced // 4
    assert_serves(server)


def test_non_loopback_bind_needs_explicit_opt_in(
    kind: str,
) -> None:
    """Listening beyond this machine is never a default, and it is loudly announced.

    One rule for both servers (wslab.rules.check_bind, issue #9 2.8).
    """
    harness = Harness(kind, pytest.MonkeyPatch())
    try:
        with pytest.raises(ServerStartError, match="allow_remote"):
            harness.start("echo", host="0.0.0.0")
        with pytest.warns(UserWarning, match="other machines"):
            harness.start("echo", host="0.0.0.0", allow_remote=True)
    finally:
        harness.close()


def test_traffic_recorder_is_bounded_in_bytes() -> None:
    """Found by the slow-reader test: 10,000 records of big messages were 640 MiB."""
    from wslab.traffic import Direction, Kind, Record, Recorder

    recorder = Recorder()
    for i in range(100):
        recorder.add(Record(i, 1, Direction.TO_SERVER, Kind.MESSAGE, data=bytes(2**20)))
    kept = recorder.records
    assert sum(len(r.data) for r in kept) <= recorder.max_bytes
    assert kept[-1].time == 99 and len(kept) < 100  # the newest stay, the oldest go
    recorder.add(Record(100, 1, Direction.TO_SERVER, Kind.MESSAGE, data=bytes(64 * 2**20)))
    assert [r.time for r in recorder.records] == [100]  # even one huge record is kept


# -- the kernel's stop button ------------------------------------------------------


CENSUS = """
import asyncio, gc, os, threading, time, wslab, wslab.loop

async def _tasks():
    return len(asyncio.all_tasks()) - 1

def census():
    gc.collect()
    fds = len(os.listdir("/proc/self/fd"))
    return threading.active_count(), wslab.loop.run_sync(_tasks(), 5), fds

def settled(before, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        now = census()
        if all(n <= b for n, b in zip(now, before)) or time.monotonic() > deadline:
            return now
        time.sleep(0.1)
"""


def interrupt_cell(kernel: Any, code: str) -> str | None:
    """Run ``code``, press the stop button while it runs; return the error's name."""
    msg_id = kernel.client.execute(code)
    busy = False
    while not busy:  # wait until the kernel runs that cell
        msg = kernel.client.get_iopub_msg(timeout=10)
        busy = (
            msg["parent_header"].get("msg_id") == msg_id
            and msg["msg_type"] == "status"
            and msg["content"]["execution_state"] == "busy"
        )
    time.sleep(0.3)  # let it get into the blocking call; the outcome does not depend on it
    kernel.manager.interrupt_kernel()
    error = None
    while True:
        msg = kernel.client.get_iopub_msg(timeout=10)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "error":
            error = msg["content"]["ename"]
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    kernel.client.get_shell_msg(timeout=10)
    return error


@pytest.mark.kernel
def test_interrupt_while_a_client_call_blocks() -> None:
    """The stop button during blocking client calls: the kernel and the server carry on."""
    from _kernel import Kernel

    with Kernel() as kernel:
        kernel.run(CENSUS).raise_for_error()
        kernel.run(
            "server = wslab.serve('echo', port=0)\n"
            "with wslab.Client(server) as warm:\n"  # first use starts the loop, imports
            "    warm.send('warm'); warm.recv(timeout=5)\n"
            "async def hold_the_loop():\n"
            "    time.sleep(1.5)\n"
            "before = census()\n"
            "client = wslab.Client(server)"
        ).raise_for_error()
        # 1. A cell blocked in recv(): the echo server never sends unprompted.
        assert interrupt_cell(kernel, "client.recv()") == "KeyboardInterrupt"
        # 2. A cell blocked in the constructor (the loop is busy, so the handshake
        #    waits): the connection must not live on once it opens.
        code = "wslab.loop.submit(hold_the_loop()); orphan = wslab.Client(server)"
        assert interrupt_cell(kernel, code) == "KeyboardInterrupt"
        # The kernel answers at once, the interrupted client still works, and
        # the server still serves new clients.
        assert kernel.eval("1 + 1", timeout=10) == "2"
        result = kernel.run(
            "client.send('after the interrupt'); print(client.recv(timeout=5))\n"
            "with wslab.Client(server) as fresh:\n"
            "    fresh.send('new'); print(fresh.recv(timeout=5))\n"
            "client.close()",
            timeout=20,
        ).raise_for_error()
        assert result.stdout.split("\n")[:2] == ["You sent: after the interrupt", "You sent: new"]
        # Nothing leaked: threads, tasks on wslab's loop, file descriptors, clients.
        before = ast.literal_eval(kernel.eval("before"))
        after = ast.literal_eval(kernel.eval("settled(before)", timeout=20))
        assert all(a <= b for a, b in zip(after, before, strict=True)), (
            f"(threads, tasks, fds) {before} -> {after}"
        )
        assert kernel.eval("len(server.clients)") == "0"
