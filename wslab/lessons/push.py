"""Lesson 08: Server-Sent Events, long polling and a WebSocket on one tornado server.

:class:`PushServer` serves the three ways of pushing events, on wslab's
background loop; :func:`compare_push` subscribes one client of each kind and
measures the latency and the bytes of every event; :func:`sse_sample` shows
the bytes of an event stream, as ``EventSource`` parses them.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

from ..connection import Connection, Event, Message
from ..errors import WSLabError
from ..frames import Side
from ..loop import run_sync
from .servers import LessonServer
from .sockets import CountingSocket

__all__ = ["SSE_RETRY_MS", "PushServer", "compare_push", "sse_blocks", "sse_sample"]


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


class PushServer(LessonServer):
    """Tornado serving ``/events`` (SSE), ``/poll`` (long polling) and ``/ws`` (WebSocket).

    It runs on wslab's background loop, so cells stay free. Each SSE event has
    an ``id:``, and a stream opened with ``Last-Event-ID`` resumes after it.
    """

    what = "the tornado server"

    def __init__(self) -> None:
        self.hub: _Hub
        self.server, port = run_sync(self._start(), timeout=5)
        self._started(port)

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

        async def fresh() -> None:
            self.hub = _Hub()

        run_sync(fresh(), timeout=5)

    def publish_all(self, n: int, interval: float = 0.01) -> None:
        """Publish ``n`` events, one every ``interval`` seconds, then the end."""

        async def publish() -> None:
            for seq in range(n):
                self.hub.publish(_event(seq))
                await asyncio.sleep(interval)
            self.hub.publish(None)  # the end: streams finish

        run_sync(publish(), timeout=n * interval + 10)

    def _close(self) -> None:
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
                # ASCII digits only: '²'.isdigit() is true too, and int('²') raises.
                if last is not None and last.isascii() and last.isdigit():  # resume after it
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
    with CountingSocket("127.0.0.1", port) as conn:
        conn.handshake("/ws")
        ws = Connection(Side.CLIENT)
        messages: list[Event] = []
        while len(result["latencies"]) < n:
            if not messages:
                messages = conn.events(ws)
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
