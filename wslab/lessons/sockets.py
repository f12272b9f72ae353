"""Talking to the lessons' servers by hand: a socket that counts its bytes, one request.

* :class:`CountingSocket`: a TCP connection that counts the bytes both ways
  and reads HTTP and WebSocket (lessons 01 and 08 measure with it);
* :func:`ask`: send a request head, get the response and its body (lesson
  02's broken handshakes);
* :func:`wait_for`: wait until something that happens on another thread
  has happened (lesson 05's chat).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

from ..connection import Connection, Event
from ..handshake import Response, check_response, client_request, split_head
from .servers import ServerStopped

__all__ = ["CountingSocket", "ask", "wait_for"]

#: The sample key of RFC 6455 section 1.3: the same handshake bytes on every run.
SAMPLE_KEY = "dGhlIHNhbXBsZSBub25jZQ=="


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
        self.host, self.port = host, port
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

    def handshake(self, path: str) -> None:
        """Open a WebSocket on this connection (RFC 6455 section 4.1).

        Raises:
            HandshakeError: The server's answer is not a valid acceptance.
        """
        request = client_request(f"{self.host}:{self.port}", path, key=SAMPLE_KEY)
        self.send(request.serialize())
        check_response(self.head(), SAMPLE_KEY)

    def events(self, ws: Connection) -> list[Event]:
        """Feed the bytes received (waiting for some if none are left) to ``ws``; its events."""
        if not self.buffer:
            self.fill()
        data, self.buffer = self.buffer, b""
        return ws.receive_data(data)

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()

    def __enter__(self) -> CountingSocket:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def ask(host: str, port: int, lines: list[str]) -> tuple[Response, str]:
    """Send a request head made of ``lines``; return the server's response and body."""
    with CountingSocket(host, port, timeout=5) as conn:
        conn.send(("\r\n".join(lines) + "\r\n\r\n").encode())
        answer = conn.head()
        body = conn.exactly(int(answer.headers.get("Content-Length") or 0))
    return answer, body.decode().strip()


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
