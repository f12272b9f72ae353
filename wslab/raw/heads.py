"""Reading an HTTP head from a socket (RFC 6455 sections 4.1 and 4.2.1).

The opening handshake is plain HTTP: a head of lines that ends with a blank
line. TCP delivers bytes, not lines, so a reader keeps calling ``recv()``
until the blank line has arrived; what follows it may already be frames.
"""

from __future__ import annotations

import socket

from ..handshake import split_head
from ._sockets import CHUNK

__all__ = ["read_head", "receive"]


def receive(sock: socket.socket, who: str = "the peer") -> bytes:
    """Return the bytes that have arrived on ``sock`` (up to 64 KiB).

    Raises:
        ConnectionResetError: The peer closed TCP instead (``recv`` gave ``b""``).
    """
    data = sock.recv(CHUNK)
    if not data:
        raise ConnectionResetError(f"{who} closed the connection")
    return data


def read_head(sock: socket.socket, who: str = "the peer") -> tuple[bytes, bytes]:
    """Read until the blank line that ends an HTTP head (sections 4.1 and 4.2.1).

    Returns:
        The head, and whatever arrived after it (perhaps the first frames).

    Raises:
        ConnectionResetError: The peer closed TCP before the end of the head.
        HandshakeError: 431 if the head grows too large.
    """
    buffer = b""
    while (parts := split_head(buffer)) is None:
        buffer += receive(sock, who)
    return parts
