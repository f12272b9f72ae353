"""A minimal blocking WebSocket client for measuring servers.

Every server is measured with this same client, so the differences between
rows are the servers'. It does the handshake with wslab's core, encodes each
test message once (a fixed mask key is fine for a benchmark, not for real
clients: RFC 6455 section 10.3) and reads frames with a small header parser
instead of the teaching decoder, to keep the client's own cost low.
"""

from __future__ import annotations

import socket
import struct

from wslab.frames import Frame, Opcode, encode
from wslab.handshake import Response, check_response, client_request, split_head

MASK = b"\x1f\x2e\x3d\x4c"


def masked(opcode: Opcode, payload: bytes) -> bytes:
    """The bytes of one client frame (section 5.2)."""
    return encode(Frame(opcode, payload), MASK)


class Client:
    """One blocking connection: ``send_raw`` pre-encoded frames, ``recv`` messages."""

    def __init__(self, port: int, path: str = "/chat", timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        request = client_request(f"127.0.0.1:{port}", path)
        self.sock.sendall(request.serialize())
        self.buffer = bytearray()
        while (split := split_head(bytes(self.buffer))) is None:
            self._fill()
        head, rest = split
        check_response(Response.parse(head), request.headers.get("Sec-WebSocket-Key") or "")
        self.buffer = bytearray(rest)

    def fileno(self) -> int:
        return self.sock.fileno()

    def _fill(self) -> None:
        chunk = self.sock.recv(262144)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self.buffer += chunk

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def next_frame(self) -> tuple[int, bytes] | None:
        """Parse one complete frame from the buffer, or None if it is not all there."""
        buf = self.buffer
        if len(buf) < 2:
            return None
        length = buf[1] & 0x7F
        start = 2
        if length == 126:
            if len(buf) < 4:
                return None
            (length,) = struct.unpack_from("!H", buf, 2)
            start = 4
        elif length == 127:
            if len(buf) < 10:
                return None
            (length,) = struct.unpack_from("!Q", buf, 2)
            start = 10
        end = start + length
        if len(buf) < end:
            return None
        opcode, payload = buf[0] & 0x0F, bytes(buf[start:end])
        del buf[:end]
        if opcode == Opcode.PING:
            # Keepalive pings must be answered, or the server drops us (5.5.2).
            self.send_raw(masked(Opcode.PONG, payload))
            return self.next_frame()
        return opcode, payload

    def recv(self) -> tuple[int, bytes]:
        """Block until the next data or close frame arrives."""
        while (frame := self.next_frame()) is None:
            self._fill()
        return frame

    def pump(self) -> list[tuple[int, bytes]]:
        """Read what the socket has now (one recv) and return the complete frames."""
        self._fill()
        frames = []
        while (frame := self.next_frame()) is not None:
            frames.append(frame)
        return frames

    def close(self) -> None:
        try:
            self.sock.sendall(masked(Opcode.CLOSE, struct.pack("!H", 1000)))
        except OSError:
            pass
        self.sock.close()


class TcpClient:
    """The floor: the same round trip with no WebSocket framing at all."""

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.view = memoryview(bytearray(2**20))

    def round_trip(self, data: bytes) -> None:
        self.sock.sendall(data)
        got = 0
        while got < len(data):
            n = self.sock.recv_into(self.view[got:], len(data) - got)
            if not n:
                raise ConnectionError("the echo server closed the connection")
            got += n

    def close(self) -> None:
        self.sock.close()
