"""The machinery of the lessons, so that each lesson's cells show only what matters.

Nothing here is part of the protocol; it is the scaffolding around the
experiments: a reference server from an independent library, sockets that
count their bytes, the measurements of lessons 01 and 08, the course map and
the environment check of lesson 00, and the page around the JavaScript chat
client students write in lesson 05. Read it with ``wslab.lessons.<name>??``
in a notebook.

Everything a lesson starts here stops with ``wslab.stop_all()`` and when the
kernel shuts down or restarts.
"""

from __future__ import annotations

import asyncio
import atexit
import hashlib
import http.server
import importlib
import importlib.metadata
import json
import logging
import shutil
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .display import HTMLView, svg_view
from .errors import ConnectError, WSLabError
from .handshake import Response, check_response, client_request, split_head

__all__ = [
    "COURSE",
    "UPDATE",
    "CountingSocket",
    "Measurement",
    "PushServer",
    "ReferenceServer",
    "ServerStopped",
    "UpdateServer",
    "ask",
    "client_page",
    "compare_push",
    "course_map",
    "environment_check",
    "measure_polling",
    "plot_polling",
    "plot_push",
    "reference_server",
    "sse_sample",
    "wait_for",
    "working_copy",
]

#: The twelve lessons: number, file stem, short name, part of the course.
COURSE: tuple[tuple[str, str, str, str], ...] = (
    ("00", "00-start-here", "start", "intro"),
    ("01", "01-why-websockets", "why", "intro"),
    ("02", "02-handshake", "handshake", "core"),
    ("03", "03-frame-bytes", "frames", "core"),
    ("04", "04-closing", "closing", "core"),
    ("05", "05-chat-app", "chat", "apps"),
    ("06", "06-extensions-and-subprotocols", "extensions", "apps"),
    ("07", "07-errors-and-security", "security", "apps"),
    ("08", "08-beyond-websockets", "beyond", "beyond"),
    ("09", "09-staying-connected", "reconnect", "production"),
    ("10", "10-deploying-and-scaling", "deploy", "production"),
    ("11", "11-check-your-server", "check", "production"),
)
_PART_COLOURS = {
    "intro": "#dddddd",
    "core": "#99ccff",
    "apps": "#99dd99",
    "beyond": "#ffcc99",
    "production": "#e0c3f0",
}


class ServerStopped(ConnectError):
    """A lesson's server was stopped (``wslab.stop_all()`` or a restart).

    A :class:`~wslab.errors.ConnectError`. A notebook shows its one-line
    message (what to re-run) without a traceback: the message says it all.
    """

    def _render_traceback_(self) -> list[str]:
        """How IPython shows it: the name and the message, no frames."""
        return [f"\x1b[0;31m{type(self).__name__}\x1b[0m: {self}"]


def _on_stop(callback: Callable[[], object]) -> None:
    """Run ``callback`` on ``wslab.stop_all()`` and at exit (wslab.loop.on_stop)."""
    from . import loop

    register = getattr(loop, "on_stop", None)
    if register is not None:
        register(callback)
    else:  # an older wslab.loop: at least at interpreter exit
        atexit.register(callback)


def course_map() -> HTMLView:
    """The path through the course: one box per lesson, coloured by part."""
    boxes = []
    for i, (number, _, name, part) in enumerate(COURSE):
        x, y = 10 + (i % 6) * 120, 10 + (i // 6) * 60
        boxes.append(
            f'<rect x="{x}" y="{y}" width="100" height="40" rx="6" '
            f'fill="{_PART_COLOURS[part]}" stroke="#555"/>'
            f'<text x="{x + 50}" y="{y + 17}" text-anchor="middle" font-size="12">{number}</text>'
            f'<text x="{x + 50}" y="{y + 32}" text-anchor="middle" font-size="12">{name}</text>'
        )
        if i % 6:
            boxes.append(
                f'<line x1="{x - 20}" y1="{y + 20}" x2="{x}" y2="{y + 20}" stroke="#555"/>'
            )
    boxes.append('<path d="M 660 50 L 660 60 L 60 60 L 60 70" fill="none" stroke="#555"/>')
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" width="730" height="120" '
        f'font-family="sans-serif">{"".join(boxes)}</svg>'
    )
    names = ", ".join(f"{n} {name}" for n, _, name, _ in COURSE)
    return svg_view(svg, "the course map", f"The lessons in order: {names}")


#: What the lessons import, the package that provides it, and its lowest version.
REQUIREMENTS = (
    ("wslab", "wslab", "0.1"),
    ("websockets", "websockets", "15"),
    ("ipywidgets", "ipywidgets", "8.1"),
    ("anywidget", "anywidget", "0.9"),
    ("matplotlib", "matplotlib", "3.8"),
    ("tornado", "tornado", "6"),
    ("trustme", "trustme", "1.1"),
)


def _as_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".")[:2] if part.isdigit())


def environment_check() -> None:
    """Print one line per requirement: ok, MISSING or TOO OLD, with the fix."""
    problems = 0
    python_ok = sys.version_info >= (3, 11)
    print(f"{'Python >= 3.11':22} {'ok' if python_ok else 'TOO OLD: install Python 3.11+'}")
    problems += not python_ok
    for module, package, lowest in REQUIREMENTS:
        try:
            importlib.import_module(module)
            version = importlib.metadata.version(package)
        except ImportError:
            status = f"MISSING: pip install '{package}>={lowest}'"
        else:
            too_old = _as_tuple(version) < _as_tuple(lowest)
            status = f"TOO OLD: pip install -U '{package}>={lowest}'" if too_old else "ok"
        problems += status != "ok"
        print(f"{package + ' >= ' + lowest:22} {status}")
    print("Everything is in place." if not problems else f"{problems} thing(s) to fix above.")


# A reference server: the websockets library, on a thread of this kernel


def _echo(websocket: Any) -> None:
    for message in websocket:
        websocket.send(message)


class _Stoppable:
    """A lesson's server: a port while it runs, a clear error once it stopped."""

    #: What the error calls it.
    what = "this server"
    _port: int
    _running: bool

    @property
    def running(self) -> bool:
        """Whether it still accepts connections."""
        return self._running

    @property
    def port(self) -> int:
        """Its port.

        Raises:
            ServerStopped: It was stopped; run the cell that starts it again.
        """
        if not self._running:
            raise ServerStopped(
                f"{self.what} was stopped (wslab.stop_all() or a kernel restart): "
                "run the cell that starts it again"
            )
        return self._port


class ReferenceServer(_Stoppable):
    """A server of the websockets library (an independent implementation) on a thread.

    Attributes:
        server: The ``websockets.sync.server.Server``.
        host: Always 127.0.0.1.
    """

    def __init__(self, handler: Callable[[Any], None] = _echo, **options: Any) -> None:
        from websockets.sync.server import serve

        # The library logs every refused handshake; the lessons show them instead.
        logging.getLogger("websockets").setLevel(logging.CRITICAL)
        options.setdefault("compression", None)
        self.server = serve(handler, "127.0.0.1", 0, **options)
        self.host = "127.0.0.1"
        self._port: int = self.server.socket.getsockname()[1]
        self._secure = options.get("ssl") is not None
        self._running = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        _on_stop(self.stop)

    @property
    def url(self) -> str:
        """``ws://127.0.0.1:PORT/`` (``wss://`` with TLS)."""
        return f"{'wss' if self._secure else 'ws'}://{self.host}:{self.port}/"

    def stop(self) -> None:
        """Stop accepting connections and close the open ones."""
        if self._running:
            self._running = False
            self.server.shutdown()

    def __repr__(self) -> str:
        state = f"on {self.host}:{self._port}" if self._running else "stopped"
        return f"<websockets reference server {state}>"


def reference_server(
    handler: Callable[[Any], None] | None = None, **options: Any
) -> ReferenceServer:
    """Start a websockets server on a free port of 127.0.0.1; echo by default.

    Args:
        handler: ``def handler(websocket)`` of ``websockets.sync.server``.
        options: Passed to ``websockets.sync.server.serve`` (``compression``
            defaults to None, so frames show the payload as sent).
    """
    return ReferenceServer(handler or _echo, **options)


# Sockets that count their bytes


class CountingSocket:
    """A TCP connection that counts the bytes it sends and receives, and reads HTTP.

    Attributes:
        sent: Bytes sent so far.
        received: Bytes received so far.
        buffer: Received bytes not read yet.
    """

    def __init__(self, host: str, port: int, *, timeout: float = 10.0) -> None:
        try:
            self.sock = socket.create_connection((host, port), timeout=timeout)
        except ConnectionRefusedError:
            raise ServerStopped(
                f"nothing listens on {host}:{port} any more: run the cell that starts "
                "the server again"
            ) from None
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sent = self.received = 0
        self.buffer = b""

    def send(self, data: bytes) -> None:
        """Send all of ``data``."""
        self.sock.sendall(data)
        self.sent += len(data)

    def fill(self) -> None:
        """Receive what has arrived into :attr:`buffer`.

        Raises:
            ConnectionError: The peer closed the connection.
        """
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("the server closed the connection")
        self.received += len(data)
        self.buffer += data

    def head(self) -> Response:
        """Read an HTTP response head (up to the blank line)."""
        while (parts := split_head(self.buffer)) is None:
            self.fill()
        head, self.buffer = parts
        return Response.parse(head)

    def exactly(self, n: int) -> bytes:
        """Read exactly ``n`` bytes."""
        while len(self.buffer) < n:
            self.fill()
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def line(self) -> bytes:
        """Read one CRLF-terminated line, without the CRLF."""
        while b"\r\n" not in self.buffer:
            self.fill()
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def get(self, request: bytes) -> bytes:
        """Send a request and read the response's body (by its Content-Length)."""
        self.send(request)
        length = int(self.head().headers.get("Content-Length") or 0)
        return self.exactly(length)

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()

    def __enter__(self) -> CountingSocket:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# Lesson 01: polling against a WebSocket

#: The update both sides send in lesson 01: 32 bytes of valid JSON (RFC 8259).
UPDATE = b'{"price": 101.25, "seq": 100042}'


class _UpdateHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the connection stays open after a response
    server_version, sys_version = "demo/1.0", ""
    disable_nagle_algorithm = True  # lesson 01's "40 ms trap"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(UPDATE)))
        self.end_headers()
        self.wfile.write(UPDATE)

    def log_message(self, *args: Any) -> None:
        pass  # one line per request would flood the notebook


class UpdateServer:
    """An HTTP server from the standard library that answers every GET with :data:`UPDATE`."""

    def __init__(self) -> None:
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _UpdateHandler)
        self.port: int = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        _on_stop(self.stop)

    def stop(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()

    def __repr__(self) -> str:
        return f"<HTTP update server on 127.0.0.1:{self.port}>"


@dataclass
class Measurement:
    """Round-trip times and byte counts of one way of getting updates.

    Attributes:
        times: Seconds per update.
        sent: Bytes the client sent for all the updates.
        received: Bytes the client received for them.
        once: Bytes paid once per connection (the WebSocket handshake).
    """

    times: list[float] = field(default_factory=list)
    sent: int = 0
    received: int = 0
    once: int = 0

    def row(self) -> dict[str, Any]:
        """The numbers per update, as lesson 01's table shows them."""
        n = len(self.times)
        return {
            "times": self.times,
            "bytes per update": (self.sent + self.received) / n,
            "to server": self.sent / n,
            "to client": self.received / n,
            "once": self.once,
        }


def _request(port: int) -> bytes:
    return (
        f"GET /update HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: application/json\r\n\r\n"
    ).encode()


def new_connection_per_request(port: int, n: int) -> Measurement:
    """Connect, GET, read the answer and disconnect, ``n`` times (HTTP/1.0 style)."""
    result = Measurement()
    for _ in range(n):
        start = time.perf_counter()
        with CountingSocket("127.0.0.1", port) as conn:
            assert conn.get(_request(port)) == UPDATE
        result.times.append(time.perf_counter() - start)
        result.sent += conn.sent
        result.received += conn.received
    return result


def keep_alive_polling(port: int, n: int) -> Measurement:
    """One connection, one GET after another (HTTP/1.1 keep-alive)."""
    result = Measurement()
    with CountingSocket("127.0.0.1", port) as conn:
        for _ in range(n):
            start = time.perf_counter()
            assert conn.get(_request(port)) == UPDATE
            result.times.append(time.perf_counter() - start)
    result.sent, result.received = conn.sent, conn.received
    return result


def websocket_round_trips(port: int, n: int) -> Measurement:
    """One handshake (counted apart), then ``n`` echoed 32-byte messages."""
    from .connection import Connection, Message
    from .frames import Side

    key = "dGhlIHNhbXBsZSBub25jZQ=="
    result = Measurement()
    with CountingSocket("127.0.0.1", port) as conn:
        conn.send(client_request(f"127.0.0.1:{port}", "/", key=key).serialize())
        check_response(conn.head(), key)
        result.once = conn.sent + conn.received - len(conn.buffer)
        conn.sent, conn.received = 0, len(conn.buffer)
        # A fixed key keeps the byte counts the same on every run; a real client
        # picks a new random one for every frame (section 5.3).
        ws = Connection(Side.CLIENT, mask_key=b"\x37\xfa\x21\x3d")
        pending = ws.receive_data(conn.buffer)
        for _ in range(n):
            start = time.perf_counter()
            conn.send(ws.send_binary(UPDATE))
            while not pending:
                conn.buffer = b""
                conn.fill()
                pending = ws.receive_data(conn.buffer)
            event = pending.pop(0)
            assert isinstance(event, Message) and event.data == UPDATE
            result.times.append(time.perf_counter() - start)
        result.sent, result.received = conn.sent, conn.received
        conn.send(ws.send_close())
    return result


def measure_polling(http_port: int, ws_port: int, n: int = 200) -> dict[str, dict[str, Any]]:
    """Run lesson 01's three clients, ``n`` updates each; one row per client."""
    return {
        "new connection per request": new_connection_per_request(http_port, n).row(),
        "keep-alive polling": keep_alive_polling(http_port, n).row(),
        "WebSocket": websocket_round_trips(ws_port, n).row(),
    }


# Lesson 08: Server-Sent Events, long polling and a WebSocket on one tornado server


class _Hub:
    """The events so far, and a way to wait for the next one."""

    def __init__(self) -> None:
        self.events: list[str | None] = []
        self.streams: set[asyncio.Queue[tuple[int, str | None]]] = set()
        self.changed = asyncio.Event()

    def publish(self, event: str | None) -> None:
        self.events.append(event)
        for stream in self.streams:
            stream.put_nowait((len(self.events), event))
        self.changed.set()  # wake the long polls ...
        self.changed = asyncio.Event()  # ... and arm a new event for the next ones


#: The reconnection time the SSE stream asks for, in milliseconds.
SSE_RETRY_MS = 3000


class PushServer(_Stoppable):
    """Tornado serving ``/events`` (SSE), ``/poll`` (long polling) and ``/ws`` (WebSocket).

    It runs on wslab's background loop, so cells stay free. Each SSE event has
    an ``id:``, and a stream opened with ``Last-Event-ID`` resumes after it.
    """

    what = "the tornado server"

    def __init__(self) -> None:
        from .loop import run_sync

        self.hub: _Hub
        self._running = False
        self.server, self._port = run_sync(self._start(), timeout=5)
        self._running = True
        _on_stop(self.stop)

    async def _start(self) -> tuple[Any, int]:
        import tornado.httpserver
        import tornado.netutil
        import tornado.web

        self.hub = _Hub()
        handlers = _push_handlers(self)
        app = tornado.web.Application(handlers)
        server = tornado.httpserver.HTTPServer(app)
        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
        server.add_sockets(sockets)
        return server, sockets[0].getsockname()[1]

    def reset(self) -> None:
        """Forget every event: a new run starts from the first."""
        from .loop import run_sync

        async def fresh() -> None:
            self.hub = _Hub()

        run_sync(fresh(), timeout=5)

    def publish_all(self, n: int, interval: float = 0.01) -> None:
        """Publish ``n`` events, one every ``interval`` seconds, then the end."""
        from .loop import run_sync

        async def publish() -> None:
            for seq in range(n):
                self.hub.publish(_event(seq))
                await asyncio.sleep(interval)
            self.hub.publish(None)  # the end: streams finish

        run_sync(publish(), timeout=n * interval + 10)

    def stop(self) -> None:
        """Stop serving and close every connection."""
        if not self._running:
            return
        self._running = False
        from .loop import run_sync

        async def stop() -> None:
            self.server.stop()
            for stream in list(self.hub.streams):
                stream.put_nowait((0, None))
            await self.server.close_all_connections()

        try:
            run_sync(stop(), timeout=5)
        except Exception:  # stopping at exit must never raise
            pass

    def __repr__(self) -> str:
        state = f"on 127.0.0.1:{self._port}" if self._running else "stopped"
        return f"<tornado push server {state}: /events, /poll, /ws>"


def _push_handlers(owner: PushServer) -> list[tuple[str, Any]]:
    import tornado.web
    import tornado.websocket

    class EventStream(tornado.web.RequestHandler):
        """Server-Sent Events: one response, an ``id:`` and a ``data:`` per event."""

        async def get(self) -> None:
            self.set_header("Content-Type", "text/event-stream")
            self.set_header("Cache-Control", "no-cache")
            hub = owner.hub
            queue: asyncio.Queue[tuple[int, str | None]] = asyncio.Queue()
            hub.streams.add(queue)
            try:
                # A comment says the stream is open; retry: sets the reconnection time.
                self.write(f"retry: {SSE_RETRY_MS}\n: subscribed\n\n")
                last = self.request.headers.get("Last-Event-ID")
                if last is not None and last.isdigit():  # resume after the last event seen
                    for i, event in enumerate(hub.events[int(last) :], start=int(last) + 1):
                        queue.put_nowait((i, event))
                await self.flush()
                while (item := await queue.get())[1] is not None:
                    self.write(f"id: {item[0]}\ndata: {item[1]}\n\n")
                    await self.flush()
            finally:
                hub.streams.discard(queue)

    class LongPoll(tornado.web.RequestHandler):
        """Long polling: answer at once if there is news, else when there is."""

        async def get(self) -> None:
            hub = owner.hub
            seen = int(self.get_argument("seen"))
            while len(hub.events) <= seen:
                await hub.changed.wait()
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps([e for e in hub.events[seen:] if e is not None]))

    class Socket(tornado.websocket.WebSocketHandler):
        """A WebSocket: one message per event."""

        async def open(self, *args: Any, **kwargs: Any) -> None:
            self.queue: asyncio.Queue[tuple[int, str | None]] = asyncio.Queue()
            owner.hub.streams.add(self.queue)
            await self.write_message("subscribed")
            while (item := await self.queue.get())[1] is not None:
                await self.write_message(str(item[1]))

        def on_close(self) -> None:
            owner.hub.streams.discard(self.queue)

    return [("/events", EventStream), ("/poll", LongPoll), ("/ws", Socket)]


def _event(seq: int) -> str:
    """An event of fixed size that carries the time it was published."""
    return f'{{"seq": {seq:3d}, "published": {time.perf_counter():16.6f}}}'


def _latency(event: str) -> float:
    published: float = json.loads(event)["published"]
    return time.perf_counter() - published


def _chunks(conn: CountingSocket) -> Iterator[str]:
    """The pieces of a chunked response body (each: its size in hex, CRLF, data, CRLF)."""
    while size := int(conn.line(), 16):
        yield conn.exactly(size + 2)[:-2].decode()


def sse_blocks(conn: CountingSocket) -> Iterator[str]:
    """The blocks of an event stream, each up to its blank line."""
    text = ""
    for chunk in _chunks(conn):
        text += chunk
        while "\n\n" in text:
            block, text = text.split("\n\n", 1)
            yield block


def _sse_client(port: int, n: int, result: dict[str, Any], ready: threading.Event) -> None:
    with CountingSocket("127.0.0.1", port) as conn:
        conn.send(b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n")
        conn.head()
        for block in sse_blocks(conn):
            if block.endswith(": subscribed"):
                ready.set()
            data = [line[len("data: ") :] for line in block.split("\n") if line.startswith("data")]
            if data:
                result["latencies"].append(_latency("\n".join(data)))
            if len(result["latencies"]) == n:
                break
        result["bytes"] = conn.received


def _long_poll_client(port: int, n: int, result: dict[str, Any], ready: threading.Event) -> None:
    with CountingSocket("127.0.0.1", port) as conn:
        seen, requests = 0, 0
        ready.set()  # events are kept in the hub, so none can be missed
        while seen < n:
            body = conn.get(f"GET /poll?seen={seen} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            requests += 1
            for event in json.loads(body):
                result["latencies"].append(_latency(event))
                seen += 1
        result["bytes"], result["requests"] = conn.received, requests


def _websocket_client(port: int, n: int, result: dict[str, Any], ready: threading.Event) -> None:
    from .connection import Connection, Message
    from .frames import Side

    key = "dGhlIHNhbXBsZSBub25jZQ=="
    with CountingSocket("127.0.0.1", port) as conn:
        conn.send(client_request(f"127.0.0.1:{port}", "/ws", key=key).serialize())
        check_response(conn.head(), key)
        ws = Connection(Side.CLIENT)
        messages = ws.receive_data(conn.buffer)
        while len(result["latencies"]) < n:
            if not messages:
                conn.buffer = b""
                conn.fill()
                messages = ws.receive_data(conn.buffer)
                continue
            message = messages.pop(0)
            if not isinstance(message, Message):
                continue
            if message.data == "subscribed":
                ready.set()
            else:
                result["latencies"].append(_latency(str(message.data)))
        result["bytes"] = conn.received
        conn.send(ws.send_close())


def compare_push(server: PushServer, n: int = 50) -> dict[str, dict[str, Any]]:
    """Subscribe three clients, publish ``n`` events 10 ms apart, and measure.

    Returns:
        For each client, ``latencies`` (seconds from publication to arrival),
        ``bytes`` received and, for long polling, ``requests``.

    Raises:
        WSLabError: A client did not subscribe or did not get every event.
    """
    port = server.port
    server.reset()
    clients = {
        "long polling": _long_poll_client,
        "Server-Sent Events": _sse_client,
        "WebSocket": _websocket_client,
    }
    results: dict[str, dict[str, Any]] = {name: {"latencies": []} for name in clients}
    errors: list[str] = []
    threads = []
    for name, client in clients.items():
        ready = threading.Event()

        def run(client: Any = client, name: str = name, ready: threading.Event = ready) -> None:
            try:
                client(port, n, results[name], ready)
            except Exception as error:  # reported below, not as a thread traceback
                errors.append(f"{name}: {type(error).__name__}: {error}")
                ready.set()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        if not ready.wait(5):
            raise WSLabError(f"the {name} client did not subscribe within 5 s")
        threads.append(thread)
    server.publish_all(n)
    for thread in threads:
        thread.join(timeout=10)
    if errors:
        raise WSLabError("; ".join(errors))
    return results


def sse_sample(server: PushServer, events: int = 3, last_event_id: int | None = None) -> str:
    """The first bytes of an event stream, as text: what ``EventSource`` parses.

    Args:
        server: The push server.
        events: Publish this many events (after a fresh start) and read them.
        last_event_id: Send ``Last-Event-ID``, as a reconnecting EventSource does.
    """
    port = server.port
    if last_event_id is None:
        server.reset()
    header = "" if last_event_id is None else f"Last-Event-ID: {last_event_id}\r\n"
    with CountingSocket("127.0.0.1", port) as conn:
        conn.send(f"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n{header}\r\n".encode())
        conn.head()
        blocks = sse_blocks(conn)
        shown = [next(blocks)]  # retry: and the comment
        if last_event_id is None:
            threading.Thread(target=server.publish_all, args=(events, 0.0), daemon=True).start()
        for block in blocks:
            shown.append(block)
            if len(shown) > events:
                break
    text = "\n\n".join(shown) + "\n\n"
    # The timestamps differ on every run; the structure does not.
    return "\n".join(
        line.split('"published"')[0] + '"published": ...}' if '"published"' in line else line
        for line in text.split("\n")
    )


# Lesson 05: the page around a student's JavaScript chat client

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>My chat client</title>
<style>
  body {{ font-family: sans-serif; max-width: 40em; margin: 2em auto; }}
  #log {{ list-style: none; padding: 0; border: 1px solid #ccc; min-height: 10em; }}
  #log li {{ padding: 2px 6px; }}
  #box {{ width: 70%; }}
</style>
</head>
<body>
<h1>My chat client</h1>
<ul id="log"></ul>
<form id="form"><input id="box" autocomplete="off" autofocus> <button>Send</button></form>
<script>
// Given to your script: the WebSocket URL of the chat (same host, port and
// token as this page), the form, the text box, and show(text) for the log.
const params = new URLSearchParams(location.search);
if (!params.has("name")) params.set("name", "me");
const WS_URL = new URL("chat?" + params, location.href).href.replace(/^http/, "ws");
const form = document.getElementById("form");
const box = document.getElementById("box");
const log = document.getElementById("log");
function show(text) {{
  const item = document.createElement("li");
  item.textContent = text;
  log.append(item);
}}
window.addEventListener("error", (event) => show("error in your script: " + event.message));
</script>
<script>
{script}
</script>
</body>
</html>
"""


def client_page(script: str) -> str:
    """The page that runs a student's chat client script.

    The page gives the script ``WS_URL``, ``form``, ``box`` and ``show(text)``;
    an error in the script is shown on the page.
    """
    if not isinstance(script, str):
        raise TypeError(f"the script must be a str of JavaScript, got {type(script).__name__}")
    # A "</script" inside the script would end the element early.
    return _PAGE.format(script=script.replace("</script", "<\\/script"))


# Small helpers of the lessons


def wait_for(condition: Callable[[], object], timeout: float = 5.0) -> None:
    """Wait until ``condition()`` is true; messages arrive on another thread.

    Raises:
        TimeoutError: ``timeout`` seconds passed first.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not true within {timeout} s; is the server still running?")
        time.sleep(0.01)


def ask(host: str, port: int, lines: list[str]) -> tuple[Response, str]:
    """Send a request head made of ``lines``; return the server's response and body."""
    with CountingSocket(host, port, timeout=5) as conn:
        conn.send(("\r\n".join(lines) + "\r\n\r\n").encode())
        answer = conn.head()
        body = conn.exactly(int(answer.headers.get("Content-Length") or 0))
    return answer, body.decode().strip()


def plot_polling(results: dict[str, dict[str, Any]]) -> None:
    """Lesson 01's plot: latency per update, and bytes per update both ways."""
    import matplotlib.pyplot as plt

    names = list(results)
    labels = ["new conn.\nper request", "keep-alive\npolling", "WebSocket"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
    left.boxplot([[t * 1e6 for t in results[n]["times"]] for n in names], showfliers=False)
    left.set_xticks(range(1, 4), labels)
    left.set_ylabel("round-trip time (µs), loopback")
    left.set_title(f"Latency of {len(results[names[0]]['times'])} updates")
    up = [results[n]["to server"] for n in names]
    right.bar(range(3), up, label="client → server")
    right.bar(
        range(3), [results[n]["to client"] for n in names], bottom=up, label="server → client"
    )
    right.set_xticks(range(3), labels)
    right.set_ylabel("bytes on the wire per update")
    right.set_title(f"Bytes per update ({len(UPDATE)}-byte payload)")
    right.legend()
    fig.tight_layout()
    plt.show()


def plot_push(results: dict[str, dict[str, Any]]) -> None:
    """Lesson 08's plot: publish-to-arrival latency, and bytes received per event."""
    import matplotlib.pyplot as plt

    names = list(results)
    n = len(results[names[0]]["latencies"])
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
    left.boxplot([[t * 1e6 for t in results[k]["latencies"]] for k in names], showfliers=False)
    left.set_xticks(range(1, len(names) + 1), names)
    left.set_ylabel("publish → received (µs), loopback")
    left.set_title(f"Latency of {n} pushed events")
    right.bar(names, [results[k]["bytes"] / n for k in names], color=["#c66", "#6a6", "#36c"])
    right.set_ylabel("bytes received per event")
    right.set_title("Overhead, server → client")
    fig.tight_layout()
    plt.show()


#: In a working folder: what each course file was when it was last copied in.
MANIFEST = ".wslab-course.json"


def working_copy(course: str | Path, work: str | Path) -> list[Path]:
    """Copy the lessons and the exercises' student version into a working folder.

    Students open the lessons from ``work``, so JupyterLab's autosave and their
    own edits never touch the course files, and ``git pull`` always updates the
    course cleanly. Run it again after an update: new course files are copied
    in, and so are updated ones whose copy the student never changed (a
    manifest in ``work`` remembers what each copy was). A file the student
    changed is never overwritten; to take a fresh copy, rename or delete it.

    Args:
        course: The course's ``notebooks/`` folder.
        work: The working folder, e.g. ``my-work/`` (created if missing).

    Returns:
        The files copied this time.
    """
    course, work = Path(course), Path(work)
    wanted = [*sorted(course.glob("[0-9][0-9]-*.ipynb")), course / "README.md"]
    release = course / "exercises" / "release"
    wanted += sorted(
        p for p in release.rglob("*") if p.is_file() and ".ipynb_checkpoints" not in p.parts
    )
    manifest_path = work / MANIFEST
    try:
        manifest: dict[str, str] = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        manifest = {}
    copied = []
    for source in wanted:
        name = source.relative_to(course).as_posix()
        target = work / name
        if not source.is_file():
            continue
        if target.exists() and _digest(target) != manifest.get(name):
            continue  # the student's own work (or a copy from before the manifest)
        if target.exists() and _digest(source) == manifest.get(name):
            continue  # already the course's current version
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
        manifest[name] = _digest(target)
        copied.append(target)
    if copied:
        manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return copied


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


if __name__ == "__main__":  # python -m wslab.lessons notebooks my-work
    if len(sys.argv) != 3:
        sys.exit(
            "usage: python -m wslab.lessons COURSE_FOLDER WORK_FOLDER (e.g. notebooks my-work)"
        )
    for path in working_copy(sys.argv[1], sys.argv[2]):
        print(f"copied {path}")
