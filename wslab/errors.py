"""The exceptions wslab raises.

Every error a student can cause names the problem and the fix. Errors that a
peer causes carry what the protocol says to do about them: a close code for
:class:`ProtocolError` (RFC 6455 section 7.4.1) and an HTTP status for
:class:`HandshakeError` (RFC 6455 section 4.2.2).
"""

from __future__ import annotations

__all__ = ["HandshakeError", "ProtocolError", "ServerStartError", "WSLabError"]


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


class ServerStartError(WSLabError):
    """A server could not start: a bad port, or the port is already in use.

    The message names the port and the fix (another port, or ``port=0``).
    """
