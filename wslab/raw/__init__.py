"""The whole protocol, by hand: a WebSocket server and client on the standard library.

This package is what the lessons build up to. It opens real TCP sockets and
runs the sans-I/O core over them, and it is small enough to read in one
sitting, in this order:

* :mod:`wslab.raw.heads`: read an HTTP head from a socket (``read_head``,
  ``receive``), the first thing both ends do (section 4);
* :mod:`wslab.raw.server`: :class:`RawServer`, one thread per client, each
  running the handshake (4.2), the messages (5, 6) and the close (7) in order;
* :mod:`wslab.raw.peer`: :class:`Peer`, one client as a handler sees it;
* :mod:`wslab.raw.handlers`: :class:`Handler`, :class:`EchoHandler`,
  :class:`ChatHandler` (the rules of :mod:`wslab.chat`);
* :mod:`wslab.raw.client`: :class:`RawClient`, the other end (4.1, 5 to 7).

The rules the server applies (routing, limits, Host and Origin checks) are
those of every wslab server, in :mod:`wslab.rules`; the socket plumbing that
keeps a misbehaving client from blocking the others is in
:mod:`wslab.raw._sockets`, out of the reading path. :func:`wslab.serve` (on
the websockets library) is the production-style server.

Quick start::

    from wslab.raw import RawServer, RawClient
    with RawServer("echo", port=0).start() as server:
        client = RawClient.connect(server.url)
        client.send("Hello")
        client.recv()          # 'You sent: Hello'
        client.close()
"""

from __future__ import annotations

from ..errors import ConnectionClosed
from .client import RawClient
from .handlers import ChatHandler, EchoHandler, Handler
from .heads import read_head, receive
from .peer import Peer
from .server import RawServer, run

__all__ = [
    "ChatHandler",
    "ConnectionClosed",
    "EchoHandler",
    "Handler",
    "Peer",
    "RawClient",
    "RawServer",
    "read_head",
    "receive",
    "run",
]
