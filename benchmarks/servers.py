"""The servers the benchmarks compare, each run in its own process.

Usage: ``python benchmarks/servers.py KIND HANDLER`` prints ``PORT <n>`` once
the server listens on 127.0.0.1 (on a free port), then serves until killed.

KIND is one of:

* ``tcp``: a plain TCP echo (asyncio protocol), the floor: no WebSocket at all;
* ``websockets``: the websockets library on its own, with a handler that does
  what wslab's echo and chat handlers do;
* ``wslab``: ``wslab.serve()`` in a plain process (no kernel), to tell the
  kernel's cost from the cost of wslab's layer on websockets;
* ``raw``: wslab's from-scratch server, ``wslab.raw.RawServer``;
* ``pyfloor``: the least a pure-Python WebSocket echo can do (a thread per
  client, frames parsed by hand, no checks at all, wslab's fast unmasking):
  the floor under RawServer, which does the same work plus the RFC's checks.
"""

from __future__ import annotations

import asyncio
import resource
import socket
import sys
import threading


def raise_fd_limit() -> None:
    """Raise the soft limit on open files as far as the hard limit allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def leave_room_in_arenas() -> list[object]:
    """Give this small process the free heap room that a long-running kernel has.

    Python's allocator takes memory from the OS in 1 MiB arenas and gives an
    arena back as soon as it is empty. In a small server process each request
    can empty one and map it again; a kernel's large, fragmented heap never
    does. Measured here: a 16-byte round trip to a standalone server was 20%
    slower than to the same server in a kernel, and this evened it out. Keep
    the returned list alive.
    """
    ballast = [object() for _ in range(2_000_000)]
    del ballast[::2]  # half-empty arenas stay mapped
    return ballast


def announce(port: int) -> None:
    print(f"PORT {port}", flush=True)


class _Echo(asyncio.Protocol):
    """Write back whatever arrives: the cheapest possible round trip."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


async def tcp_echo() -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Echo, "127.0.0.1", 0)
    announce(server.sockets[0].getsockname()[1])
    await server.serve_forever()


async def websockets_server(handler: str) -> None:
    from websockets.asyncio.server import ServerConnection, broadcast, serve

    room: set[ServerConnection] = set()

    async def echo(ws: ServerConnection) -> None:
        async for message in ws:
            await ws.send(f"You sent: {message}" if isinstance(message, str) else message)

    async def chat(ws: ServerConnection) -> None:
        name = f"user{ws.id.int % 10000}"
        room.add(ws)
        try:
            async for message in ws:
                text = message if isinstance(message, str) else message.decode(errors="replace")
                broadcast(room, f"{name}: {text}")
        finally:
            room.discard(ws)

    async with serve(
        echo if handler == "echo" else chat,
        "127.0.0.1",
        0,
        max_size=2**20,
        compression=None,
    ) as server:
        announce(next(iter(server.sockets)).getsockname()[1])
        await server.serve_forever()


def _recv_exactly(sock: socket.socket, view: memoryview) -> None:
    got = 0
    while got < len(view):
        n = sock.recv_into(view[got:])
        if not n:
            raise ConnectionError("the client left")
        got += n


def _floor_client(sock: socket.socket) -> None:
    """Answer one handshake, then echo binary frames back unmasked; nothing checked."""
    from wslab.handshake import accept_key
    from wslab.utils import apply_mask

    with sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(4096)
        key = next(
            line.split(b":", 1)[1].strip().decode()
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        )
        sock.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
            + accept_key(key).encode()
            + b"\r\n\r\n"
        )
        buffer = memoryview(bytearray(2**20 + 14))
        try:
            while True:
                _recv_exactly(sock, buffer[:2])
                first, length = buffer[0], buffer[1] & 0x7F
                extra = {126: 2, 127: 8}.get(length, 0)
                _recv_exactly(sock, buffer[: extra + 4])
                if extra:
                    length = int.from_bytes(buffer[:extra], "big")
                mask = bytes(buffer[extra : extra + 4])
                _recv_exactly(sock, buffer[:length])
                payload = apply_mask(buffer[:length], mask)
                if length < 126:
                    header = bytes([first, length])
                elif length < 2**16:
                    header = bytes([first, 126]) + length.to_bytes(2, "big")
                else:
                    header = bytes([first, 127]) + length.to_bytes(8, "big")
                sock.sendall(header + payload)
        except OSError:
            pass  # the client left


def pure_python_floor() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    announce(listener.getsockname()[1])
    while True:
        sock, _ = listener.accept()
        threading.Thread(target=_floor_client, args=(sock,), daemon=True).start()


def block_forever() -> None:
    threading.Event().wait()


def main() -> None:
    kind, handler = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "echo"
    raise_fd_limit()
    ballast = leave_room_in_arenas()
    if kind == "tcp":
        asyncio.run(tcp_echo())
    elif kind == "websockets":
        asyncio.run(websockets_server(handler))
    elif kind == "wslab":
        from wslab.server import serve

        server = serve(handler, port=0, max_clients=2000, token=None)  # a public server
        announce(server.port)
        block_forever()
    elif kind == "raw":
        from wslab.raw import RawServer

        raw = RawServer(handler, port=0, path="/chat", max_clients=2000, token=None).start()
        announce(raw.port)
        block_forever()
    elif kind == "pyfloor":
        pure_python_floor()
    else:
        raise SystemExit(
            f"unknown server kind {kind!r}: use tcp, websockets, wslab, raw or pyfloor"
        )
    del ballast


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
