"""The exceptions wslab raises.

Every error a student can cause names the problem and the fix. Errors that a
peer causes carry what the protocol says to do about them: a close code for
:class:`ProtocolError` (RFC 6455 section 7.4.1) and an HTTP status for
:class:`HandshakeError` (RFC 6455 section 4.2.2).

All of wslab's exceptions live here, so that there is one of each::

    WSLabError
    ├── ProtocolError       the peer broke a framing rule (sections 5 to 7)
    ├── HandshakeError      the opening handshake is refused (section 4)
    ├── ConnectionClosed    the connection is closed (section 7)
    ├── ConnectError        a client could not connect
    └── ServerStartError    a server could not start
        └── LoopBlockedError    the wslab background loop did not answer
"""

from __future__ import annotations

__all__ = [
    "ConnectError",
    "ConnectionClosed",
    "HandshakeError",
    "LoopBlockedError",
    "ProtocolError",
    "ServerStartError",
    "WSLabError",
    "code_meaning",
]


class WSLabError(Exception):
    """Base class of every error wslab raises on purpose."""


class ProtocolError(WSLabError):
    """The peer broke a rule of RFC 6455 after the handshake.

    Attributes:
        code: The close code to send when failing the connection
            (1002 protocol error, 1007 invalid data, 1009 message too big).
        reason: A short explanation, also suitable as the close reason.
    """

    def __init__(self, reason: str, code: int = 1002) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.reason} (close code {self.code})"


class HandshakeError(WSLabError):
    """The opening handshake is wrong (RFC 6455 sections 4.1 and 4.2).

    Attributes:
        status: The HTTP status a server answers with: 400 for a malformed
            request, 426 for an unsupported version, 403 for a rejected origin,
            431 for a header block that is too large.
        headers: Extra response headers the status calls for, for example
            ``Sec-WebSocket-Version: 13`` with a 426.
    """

    def __init__(
        self,
        message: str,
        status: int = 400,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or []


class ConnectionClosed(WSLabError):
    """The WebSocket connection is closed; no more messages will arrive.

    ``str(error)`` names the code's meaning, e.g. ``connection closed with
    code 1001 (going away): server is closing``.

    Args:
        code: The close code received.
        reason: The close reason received.
        message: A message to use instead of the default one, for a client
            that knows more (e.g. "cannot send: the connection is CLOSED").

    Attributes:
        code: The close code received: 1005 if the close frame had none,
            1006 if the TCP connection ended without a close frame (7.1.5).
        reason: The close reason received ("" if none).
    """

    def __init__(self, code: int = 1006, reason: str = "", *, message: str | None = None) -> None:
        if message is None:
            message = f"connection closed with code {code} ({code_meaning(code)})"
            message += f": {reason}" if reason else ""
        super().__init__(message)
        self.code = code
        self.reason = reason


class ConnectError(WSLabError):
    """A client could not open the connection: bad URL, refused, or rejected.

    Attributes:
        status: The HTTP status when the server answered the handshake with
            one (e.g. 403 for a refused Origin); None when it never answered.
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ServerStartError(WSLabError):
    """A server could not start: a bad port, or the port is already in use.

    The message names the port and the fix (another port, or ``port=0``).
    """


class LoopBlockedError(ServerStartError):
    """The wslab background loop did not answer in time.

    Usually a handler blocks it (``time.sleep`` or a blocking call in an
    ``async def``); whoever raises it says which, and what to do instead.
    """


def code_meaning(code: int) -> str:
    """Name a close code: ``'going away'`` for 1001 (RFC 6455 section 7.4).

    Codes 3000-3999 are registered with IANA by libraries, frameworks and
    applications; 4000-4999 are private use (section 7.4.2).

    >>> code_meaning(1001), code_meaning(3000), code_meaning(4000), code_meaning(2000)
    ('going away', 'registered code', 'private code', 'unknown code')
    """
    # Imported here: closing.py imports this module for ProtocolError.
    from .closing import CloseCode

    try:
        return CloseCode(code).meaning
    except ValueError:
        if 3000 <= code <= 3999:
            return "registered code"
        return "private code" if 4000 <= code <= 4999 else "unknown code"
