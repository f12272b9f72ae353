"""Which user account is on the other end of a TCP connection from this machine.

On a shared JupyterHub host (The Littlest JupyterHub, ``LocalProcessSpawner``,
``SystemdSpawner``) every student's kernel listens on the same loopback
interface, so a port number is all a classmate needs. Linux knows which user
opened each socket: the kernel's socket diagnostics (``sock_diag``, what
``ss`` uses) answer for one exact connection in about 30 microseconds.
(Reading ``/proc/net/tcp`` would tell the same, but it lists every socket of
the machine: 5 to 10 ms per lookup on a busy host, measured.)

:func:`wslab.rules.route` uses the answer (see ``Policy.owner_uid``).
"""

from __future__ import annotations

import contextlib
import socket
import struct
import sys

__all__ = ["peer_uid"]

_NETLINK_SOCK_DIAG = 4
_SOCK_DIAG_BY_FAMILY = 20
_NLM_F_REQUEST = 1
_NO_COOKIE = 0xFFFFFFFF
#: Where ``idiag_uid`` sits in the answer: the netlink header (16 bytes), then
#: ``inet_diag_msg``: family, state, timer, retrans (4), the socket id (48),
#: expires, rqueue, wqueue (12).
_UID_OFFSET = 16 + 4 + 48 + 12


def peer_uid(peer: tuple[str, int] | object, local: tuple[str, int] | object) -> int | None:
    """The uid of the process that owns the other end of a local TCP connection.

    Args:
        peer: The connection's remote ``(address, port)`` as ``getpeername()``
            gives it (the other end, seen from our socket).
        local: Our end, as ``getsockname()`` gives it.

    Returns:
        The uid, or None when it cannot be known: not Linux, the other end is
        on another machine (or in another network namespace), or the kernel
        does not answer (a sandbox may forbid netlink sockets).
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        request = _request(peer, local)
    except (TypeError, ValueError, OSError, IndexError):
        return None
    with contextlib.suppress(OSError):
        nl = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, _NETLINK_SOCK_DIAG)
        with nl:
            nl.settimeout(0.5)
            nl.send(request)
            answer = nl.recv(4096)
        if len(answer) >= _UID_OFFSET + 4:
            _, kind = struct.unpack_from("=IH", answer)
            if kind == _SOCK_DIAG_BY_FAMILY:
                return int(struct.unpack_from("=I", answer, _UID_OFFSET)[0])
    return None


def _request(peer: object, local: object) -> bytes:
    """An exact ``SOCK_DIAG_BY_FAMILY`` lookup for the socket bound to ``peer``."""
    (peer_host, peer_port), (local_host, local_port) = peer[:2], local[:2]  # type: ignore[index]
    family = socket.AF_INET6 if ":" in peer_host else socket.AF_INET

    def address(host: str) -> bytes:
        packed = socket.inet_pton(family, host)
        return packed + bytes(16 - len(packed))

    # The other end's socket: its source is our peer, its destination is us.
    sockid = (
        struct.pack("!HH", peer_port, local_port)
        + address(peer_host)
        + address(local_host)
        + struct.pack("=III", 0, _NO_COOKIE, _NO_COOKIE)
    )
    body = struct.pack("=BBBBI", family, socket.IPPROTO_TCP, 0, 0, 0xFFFFFFFF) + sockid
    header = struct.pack("=IHHII", 16 + len(body), _SOCK_DIAG_BY_FAMILY, _NLM_F_REQUEST, 1, 0)
    return header + body
