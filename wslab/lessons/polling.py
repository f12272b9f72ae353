"""Lesson 01: polling for updates against a WebSocket, in time and in bytes.

An HTTP server of the standard library answers every GET with the same
32-byte update (:data:`UPDATE`); the websockets reference server echoes it.
Three clients on a :class:`~wslab.lessons.sockets.CountingSocket` fetch it
``n`` times each (:func:`measure_polling`): a new connection per request,
keep-alive polling, and one WebSocket.
"""

from __future__ import annotations

import http.server
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from ..connection import Connection, Event, Message
from ..frames import Side
from .servers import LessonServer
from .sockets import CountingSocket

__all__ = ["UPDATE", "Measurement", "UpdateServer", "measure_polling"]

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


class UpdateServer(LessonServer):
    """An HTTP server from the standard library that answers every GET with :data:`UPDATE`."""

    what = "the HTTP update server"

    def __init__(self) -> None:
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _UpdateHandler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self._started(self.server.server_address[1])

    def _close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __repr__(self) -> str:
        state = f"on 127.0.0.1:{self._port}" if self._running else "stopped"
        return f"<HTTP update server {state}>"


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
    result = Measurement()
    with CountingSocket("127.0.0.1", port) as conn:
        conn.handshake("/")
        result.once = conn.sent + conn.received - len(conn.buffer)
        conn.sent, conn.received = 0, len(conn.buffer)
        # A fixed key keeps the byte counts the same on every run; a real client
        # picks a new random one for every frame (section 5.3).
        ws = Connection(Side.CLIENT, mask_key=b"\x37\xfa\x21\x3d")
        pending: list[Event] = []
        for _ in range(n):
            start = time.perf_counter()
            conn.send(ws.send_binary(UPDATE))
            while not pending:
                pending = conn.events(ws)
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
