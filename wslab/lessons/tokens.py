"""Lesson 10: tokens that expire, and a server that checks them on a long-lived connection.

A token is ``name.expiry.signature``: the expiry in milliseconds since the
epoch, the signature an HMAC-SHA256 of the rest with the server's secret
(RFC 6455 section 10.5 leaves authentication to the server).
:func:`token_guard` wants one in the first message, no token in the URL, so
none in any log, and closes the connection when it expires.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from websockets.asyncio.server import ServerConnection

__all__ = ["make_token", "token_guard", "verify_token"]


def make_token(name: str, lifetime: float, secret: bytes) -> str:
    """A token ``name.expiry.signature``: expiry in ms, signature HMAC-SHA256 in hex."""
    expires = int((time.time() + lifetime) * 1000)
    body = f"{name}.{expires}"
    return f"{body}.{hmac.new(secret, body.encode(), 'sha256').hexdigest()}"


def verify_token(token: object, secret: bytes) -> tuple[str, float] | None:
    """The token's name and expiry (in seconds), or None if forged, malformed or expired."""
    parts = token.split(".") if isinstance(token, str) else []
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    name, expires, signature = parts
    expected = hmac.new(secret, f"{name}.{expires}".encode(), "sha256").hexdigest()
    # compare_digest takes the same time however early the strings differ.
    if not hmac.compare_digest(signature, expected) or int(expires) / 1000 < time.time():
        return None
    return name, int(expires) / 1000


def token_guard(secret: bytes) -> Callable[[ServerConnection], Any]:
    """An echo-like chat handler that wants a token, first and then before each expiry.

    The first message must be ``{"type": "auth", "token": ...}`` (no token in
    the URL, so none in any log); a bad one closes with 1008. After that,
    ``{"type": "message", "text": ...}`` comes back as ``name: text``, and a
    new ``auth`` message extends the connection; when the current token
    expires the server closes with 4001, a private code (RFC 6455 7.4.2).
    """

    async def guarded(ws: ServerConnection) -> None:
        first = _json(await ws.recv())
        who = verify_token(first.get("token"), secret)
        if who is None:
            await ws.close(1008, "bad token")
            return
        name, expires = who
        while True:
            try:
                async with asyncio.timeout(max(0.0, expires - time.time())):
                    message = _json(await ws.recv())
            except TimeoutError:
                await ws.close(4001, "token expired")
                return
            renewed = verify_token(message.get("token"), secret)
            if message.get("type") == "auth" and renewed is not None:
                name, expires = renewed
            elif message.get("type") == "message":
                await ws.send(f"{name}: {message.get('text')}")

    return guarded


def _json(message: str | bytes) -> dict[str, Any]:
    try:
        value = json.loads(message)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
