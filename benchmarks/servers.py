"""The servers the benchmarks compare, each run in its own process.

Usage: ``python benchmarks/servers.py KIND HANDLER`` prints ``PORT <n>`` once
the server listens on 127.0.0.1 (on a free port), then serves until killed.

KIND is one of:

* ``tcp``: a plain TCP echo (asyncio protocol), the floor: no WebSocket at all;
* ``websockets``: the websockets library on its own, with a handler that does
  what wslab's echo and chat handlers do;
* ``wslab``: ``wslab.serve()`` in a plain process (no kernel), to tell the
  kernel's cost from the cost of wslab's layer on websockets;
* ``raw``: wslab's from-scratch server, ``wslab.raw.RawServer``.
"""

from __future__ import annotations

import asyncio
import resource
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
    else:
        raise SystemExit(f"unknown server kind {kind!r}: use tcp, websockets, wslab or raw")
    del ballast


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
