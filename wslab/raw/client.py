"""A WebSocket client on one plain socket, to read next to RFC 6455.

:meth:`RawClient.connect` opens TCP and does the opening handshake (section
4.1): it sends :func:`~wslab.handshake.client_request` and checks the answer
with :func:`~wslab.handshake.check_response`. After that, the sans-I/O
:class:`~wslab.connection.Connection` does sections 5 to 7: it masks every
frame the client sends with a fresh key (5.3), answers pings, and runs the
closing handshake, while the client waits for the server to close TCP first
(7.1.1). One thread, blocking calls: each method reads top to bottom.

Example::

    client = RawClient.connect("ws://127.0.0.1:8080/chat")
    client.send("Hello")
    client.recv()          # 'You sent: Hello'
    client.close()
"""

from __future__ import annotations

import socket
import time
from collections import deque
from types import TracebackType

from ..closing import CloseCode
from ..connection import CloseReceived, Connection, Failed, Message, Pong, State
from ..errors import ConnectionClosed, HandshakeError
from ..frames import DEFAULT_MAX_SIZE, Frame, Side
from ..handshake import Request, Response, check_response, client_request, new_key, split_head
from ..rules import redact
from ..uri import parse_uri
from ._sockets import CHUNK, no_delay
from .heads import receive

__all__ = ["RawClient"]

#: How long the client waits for the server to close TCP after the closing handshake.
_LINGER = 1.0


class RawClient:
    """A WebSocket client on a plain socket: connect, send, receive, close.

    Create it with :meth:`connect`. Every frame it sends is masked with a fresh
    random key (section 5.3), unless a fixed ``mask_key`` was given for
    reproducible lessons.

    Attributes:
        url: The URL it connected to.
        request: The opening handshake it sent; ``response``: the server's answer.
        connection: The sans-I/O :class:`~wslab.connection.Connection`.
        close_code: The code of the closing handshake once closed, else None
            (1006 if TCP ended without a close frame).
        close_reason: The close reason once closed, else None.
    """

    def __init__(
        self,
        sock: socket.socket,
        url: str,
        request: Request,
        response: Response,
        rest: bytes,
        *,
        max_size: int = DEFAULT_MAX_SIZE,
        mask_key: bytes | None = None,
    ) -> None:
        self.url = url
        self.request = request
        self.response = response
        self.connection = Connection(Side.CLIENT, max_size=max_size, mask_key=mask_key)
        self.close_code: int | None = None
        self.close_reason: str | None = None
        #: Payloads of the pongs received, oldest first.
        self.pongs: deque[bytes] = deque()
        self._sock = sock
        self._messages: deque[str | bytes] = deque()
        self._unread = rest

    @classmethod
    def connect(
        cls,
        url: str,
        *,
        origin: str | None = None,
        timeout: float = 5.0,
        mask_key: bytes | None = None,
        max_size: int = DEFAULT_MAX_SIZE,
    ) -> RawClient:
        """Open a TCP connection to ``url`` and do the opening handshake (section 4.1).

        Args:
            url: ``ws://host:port/path``.
            origin: An ``Origin`` header to send, as a browser would.
            timeout: Seconds to wait for the connection and the handshake.
            mask_key: A fixed 4-byte masking key (only for reproducible lessons).
            max_size: Largest message accepted from the server.

        Raises:
            ValueError: ``url`` is not a ``ws://`` URL.
            ConnectionRefusedError: No server listens there.
            TimeoutError: The server did not answer within ``timeout``.
            HandshakeError: The server refused the handshake.
        """
        uri = parse_uri(url)
        if uri.secure:
            raise ValueError(f"{url!r} is wss:// (TLS); RawClient speaks ws:// only")
        if mask_key is not None and (not isinstance(mask_key, bytes) or len(mask_key) != 4):
            raise ValueError(
                f"mask_key must be 4 bytes such as b'\\x37\\xfa\\x21\\x3d', got {mask_key!r}"
            )
        try:
            sock = socket.create_connection((uri.host, uri.port), timeout=timeout)
        except ConnectionRefusedError:
            raise ConnectionRefusedError(
                f"no server at {redact(url)}: is it running? start one with wslab.serve() "
                "or `wslab serve`"
            ) from None
        except TimeoutError:
            raise TimeoutError(
                f"no answer from {uri.host}:{uri.port} within {timeout} s"
            ) from None
        except socket.gaierror as error:
            raise ConnectionError(f"cannot find host {uri.host!r}: {error.strerror}") from None
        no_delay(sock)
        response: Response | None = None
        try:
            key = new_key()
            request = client_request(uri.host_header, uri.path, key=key, origin=origin)
            sock.sendall(request.serialize())
            response, rest = _read_response(sock, url, timeout, time.monotonic() + timeout)
            check_response(response, key)
        except HandshakeError as error:
            sock.close()
            reason = _with_server_reason(error, response)
            where = redact(url)
            raise HandshakeError(
                f"handshake with {where} failed: {reason}", error.status
            ) from None
        except BaseException:
            sock.close()
            raise
        sock.settimeout(None)
        return cls(sock, url, request, response, rest, max_size=max_size, mask_key=mask_key)

    def __repr__(self) -> str:
        # A private server's URL carries its token: keep it out of saved notebooks.
        return f"<RawClient {redact(self.url)} {self.connection.state.value}>"

    def __enter__(self) -> RawClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- sending --------------------------------------------------------------------

    def send(self, message: str | bytes) -> None:
        """Send a text (``str``) or binary (``bytes``) message in one frame."""
        self._check_open()
        if isinstance(message, str):
            self._sock.sendall(self.connection.send_text(message))
        else:
            self._sock.sendall(self.connection.send_binary(message))

    def send_frame(self, frame: Frame) -> None:
        """Send one frame, e.g. a fragment: ``Frame(Opcode.TEXT, b"Hel", fin=False)``."""
        self._check_open()
        self._sock.sendall(self.connection.send_frame(frame))

    def send_raw(self, data: bytes) -> None:
        """Write bytes to the socket as they are: to see what a server does with bad frames."""
        self._sock.sendall(data)

    def ping(self, payload: bytes = b"") -> None:
        """Send a ping (section 5.5.2); its pong lands in :attr:`pongs`."""
        self._check_open()
        self._sock.sendall(self.connection.send_ping(payload))

    def _check_open(self) -> None:
        if self.connection.state is not State.OPEN:
            raise ConnectionClosed(
                self.close_code or CloseCode.ABNORMAL_CLOSURE, self.close_reason or ""
            )

    # -- receiving ------------------------------------------------------------------

    def recv(self, timeout: float | None = None) -> str | bytes:
        """Return the next message: ``str`` for text, ``bytes`` for binary.

        Args:
            timeout: Seconds to wait; None waits as long as it takes.

        Raises:
            TimeoutError: No message within ``timeout``.
            ConnectionClosed: The connection closed; see :attr:`close_code`.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._messages:
            if self.connection.state is State.CLOSED or self._sock.fileno() == -1:
                raise ConnectionClosed(self.close_code or 1006, self.close_reason or "")
            self._read(deadline)
        return self._messages.popleft()

    def _read(self, deadline: float | None) -> None:
        """Read from the socket once and handle the events (sections 5-7)."""
        if self._unread:
            data, self._unread = self._unread, b""
        else:
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("no message arrived within the timeout")
                self._sock.settimeout(left)
            try:
                data = self._sock.recv(CHUNK)
            except TimeoutError:
                raise TimeoutError("no message arrived within the timeout") from None
            finally:
                self._sock.settimeout(None)
            if not data:
                # TCP ended without a closing handshake: "abnormal closure" (7.1.5).
                self._finish(CloseCode.ABNORMAL_CLOSURE, "")
                return
        for event in self.connection.receive_data(data):
            if isinstance(event, Message):
                self._messages.append(event.data)
            elif isinstance(event, Pong):
                self.pongs.append(event.payload)
            elif isinstance(event, CloseReceived | Failed):
                self.close_code, self.close_reason = event.code, event.reason
        replies = self.connection.data_to_send()
        if replies:
            self._sock.sendall(replies)  # A pong, or our half of the closing handshake.
        if self.connection.state is State.CLOSED:
            self._wait_for_tcp_close()

    def _wait_for_tcp_close(self, timeout: float = _LINGER) -> None:
        """Section 7.1.1: the client waits for the server to close TCP first."""
        # One deadline, not a timeout per recv(): a server that keeps sending
        # after its close frame would otherwise keep us reading forever.
        deadline = time.monotonic() + timeout
        try:
            while (left := deadline - time.monotonic()) > 0:
                self._sock.settimeout(left)
                if not self._sock.recv(CHUNK):
                    break
        except OSError:
            pass  # The server reset the connection, or took too long.
        self._finish(self.close_code or CloseCode.ABNORMAL_CLOSURE, self.close_reason or "")

    def _finish(self, code: int, reason: str) -> None:
        self.close_code, self.close_reason = code, reason
        self.connection.receive_eof()  # TCP is over: the connection is CLOSED.
        self._sock.close()

    # -- closing ----------------------------------------------------------------------

    def close(
        self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "", timeout: float = 5.0
    ) -> None:
        """Do the closing handshake (section 7.1.2) and wait for the server to close TCP.

        Messages that arrive before the server's close frame are kept for :meth:`recv`.
        """
        if self._sock.fileno() == -1:
            return
        if self.connection.state is State.OPEN:
            try:
                self._sock.sendall(self.connection.send_close(code, reason))
            except OSError:
                self._finish(CloseCode.ABNORMAL_CLOSURE, "")
                return
        deadline = time.monotonic() + timeout
        try:
            while self._sock.fileno() != -1:
                self._read(deadline)
        except (TimeoutError, OSError):
            self._finish(self.close_code or CloseCode.ABNORMAL_CLOSURE, self.close_reason or "")


def _read_response(
    sock: socket.socket, url: str, timeout: float, deadline: float
) -> tuple[Response, bytes]:
    """Read the server's answer to the handshake by ``deadline``; keep the body of an error."""
    buffer = b""
    try:
        # read_head()'s loop, with one deadline for the whole answer: a timeout
        # per recv() alone lets a server that sends a byte a second hold us forever.
        while (parts := split_head(buffer)) is None:
            sock.settimeout(max(deadline - time.monotonic(), 0.001))
            buffer += receive(sock, redact(url))
    except ConnectionResetError:
        raise HandshakeError(f"{redact(url)} closed the connection without answering") from None
    except TimeoutError:
        raise TimeoutError(
            f"{redact(url)} did not answer the handshake within {timeout} s"
        ) from None
    head, rest = parts
    response = Response.parse(head)
    if response.status != 101:
        # An error answer explains itself in its body: keep it for the message.
        declared = (response.headers.get("Content-Length") or "").strip()
        length = int(declared) if declared.isdigit() else 0  # a bad length: no body
        body = rest
        try:
            while len(body) < min(length, 4096):
                sock.settimeout(max(deadline - time.monotonic(), 0.001))
                data = sock.recv(4096)
                if not data:
                    break
                body += data
        except TimeoutError:
            pass  # the status alone says it: refused
        response.body = body[:length]
        rest = b""
    return response, rest


def _with_server_reason(error: HandshakeError, response: Response | None) -> str:
    """Combine a handshake error with the reason the server gave in its body."""
    text = str(error)
    if response is not None and response.status != 101 and response.body:
        detail = response.body.decode(errors="replace").strip().splitlines()[0][:200]
        text += f" ({detail})"
    return text
