"""WebSocket URLs: ``ws://host:port/path`` and ``wss://`` (RFC 6455 section 3)."""

from __future__ import annotations

import ipaddress
import urllib.parse
from dataclasses import dataclass

__all__ = ["WebSocketURI", "is_loopback", "parse_uri"]


@dataclass(frozen=True)
class WebSocketURI:
    """The parts of a WebSocket URL that the handshake needs."""

    secure: bool
    host: str
    port: int
    path: str

    @property
    def host_header(self) -> str:
        """The ``Host`` header: the port is left out when it is the default."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.secure else 80
        return host if self.port == default else f"{host}:{self.port}"

    def __str__(self) -> str:
        return f"{'wss' if self.secure else 'ws'}://{self.host_header}{self.path}"


def parse_uri(uri: str) -> WebSocketURI:
    """Split a ``ws://`` or ``wss://`` URL into host, port and path (section 3).

    Raises:
        ValueError: With a message that says what a valid URL looks like.
    """
    hint = "expected a URL like ws://127.0.0.1:8080/chat"
    if not isinstance(uri, str):
        raise TypeError(f"URL must be a str, got {type(uri).__name__}; {hint}")
    parsed = urllib.parse.urlsplit(uri.strip())
    if parsed.scheme in ("http", "https"):
        # urlsplit lower-cases the scheme, so rebuild the URL rather than replace text.
        rest = uri.strip()[len(parsed.scheme) :]
        fixed = ("ws" if parsed.scheme == "http" else "wss") + rest
        raise ValueError(f"{uri!r} is an HTTP URL; WebSocket URLs start with ws:// ({fixed})")
    if parsed.scheme not in ("ws", "wss"):
        raise ValueError(f"{uri!r} is not a WebSocket URL; {hint}")
    if parsed.fragment or "#" in uri:
        raise ValueError(f"{uri!r} has a fragment (#...), which section 3 forbids; {hint}")
    try:
        port = parsed.port
    except ValueError:
        raise ValueError(f"{uri!r} has an invalid port; {hint}") from None
    if port == 0:
        raise ValueError(f"{uri!r} has port 0, which no server listens on; {hint}")
    if not parsed.hostname:
        raise ValueError(f"{uri!r} has no host; {hint}")
    secure = parsed.scheme == "wss"
    path = (parsed.path or "/") + (f"?{parsed.query}" if parsed.query else "")
    return WebSocketURI(secure, parsed.hostname, port or (443 if secure else 80), path)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine only: 127.0.0.0/8, ``::1`` or ``localhost``.

    ``""`` and ``"0.0.0.0"`` mean every interface, and a name may resolve
    anywhere, so both count as the network.
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
