"""The opening handshake: an HTTP/1.1 Upgrade (RFC 6455 sections 1.3, 4.1, 4.2).

The client sends a GET with ``Upgrade: websocket`` and a random
``Sec-WebSocket-Key``; the server proves it understood WebSocket by answering
``101 Switching Protocols`` with ``Sec-WebSocket-Accept``, the base64 of the
SHA-1 of the key joined with a fixed GUID. Nothing here touches a socket.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import urllib.parse
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from .errors import HandshakeError

__all__ = [
    "GUID",
    "MAX_HEAD_SIZE",
    "Headers",
    "Request",
    "Response",
    "accept_key",
    "check_host",
    "check_request",
    "check_response",
    "client_request",
    "error_response",
    "new_key",
    "origin_allowed",
    "server_response",
    "single_value",
    "split_head",
]

#: The fixed GUID of section 1.3, the same for every WebSocket server.
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#: The largest request or response head (status line plus headers) we accept.
MAX_HEAD_SIZE = 8192
#: The only protocol version RFC 6455 defines (section 4.1, item 9).
VERSION = "13"

#: Control characters (all but HTAB) may not appear in an HTTP head (RFC 9110
#: 5.5, RFC 9112 2.2); a NUL in particular is read differently by different
#: parsers, which is how requests are smuggled past a proxy.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
#: An HTTP version as the request line writes it: "HTTP/1.1".
_HTTP_VERSION = re.compile(r"HTTP/(\d)\.(\d)")

_REASONS = {
    101: "Switching Protocols",
    200: "OK",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    426: "Upgrade Required",
    431: "Request Header Fields Too Large",
    503: "Service Unavailable",
}


def new_key() -> str:
    """Return a fresh ``Sec-WebSocket-Key``: base64 of 16 random bytes (4.1)."""
    return base64.b64encode(os.urandom(16)).decode()


def accept_key(key: str) -> str:
    """Compute ``Sec-WebSocket-Accept`` for a ``Sec-WebSocket-Key`` (4.2.2).

    >>> accept_key("dGhlIHNhbXBsZSBub25jZQ==")
    's3pPLMBiTxaQ9kYGzzhZRbK+xOo='

    Raises:
        TypeError: ``key`` is not a str.
        ValueError: ``key`` is not base64 of 16 bytes, so no client sent it.
    """
    if not isinstance(key, str):
        raise TypeError(f"key must be a str such as 'dGhlIHNhbXBsZSBub25jZQ==', got {key!r}")
    if not is_valid_key(key):
        raise ValueError(
            f"key must be base64 of 16 bytes (24 characters, e.g. from new_key()), got {key!r}"
        )
    digest = hashlib.sha1((key + GUID).encode()).digest()
    return base64.b64encode(digest).decode()


def is_valid_key(key: str) -> bool:
    """Return whether ``key`` is base64 of exactly 16 bytes, as 4.1 requires."""
    try:
        return len(base64.b64decode(key.encode(), validate=True)) == 16
    except (binascii.Error, UnicodeEncodeError):
        return False


class Headers:
    """HTTP headers: ordered name-value pairs, with case-insensitive lookup."""

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = []
        for name, value in items:
            self.add(name, value)

    def add(self, name: str, value: str) -> None:
        """Append a header, rejecting characters that would split the head.

        CR and LF would start a new header (header injection); NUL and the
        other control characters are invalid in a field (RFC 9110 5.5).
        """
        for part in (name, value):
            if not isinstance(part, str) or _CONTROL.search(part):
                raise ValueError(f"invalid header {name!r}: {value!r}")
        self._items.append((name, value))

    def get(self, name: str, default: str | None = None) -> str | None:
        """Return the value of ``name``; several values are joined by ', '."""
        values = self.get_all(name)
        return ", ".join(values) if values else default

    def get_all(self, name: str) -> list[str]:
        """Return every value of ``name``, in order."""
        return [v for n, v in self._items if n.lower() == name.lower()]

    def tokens(self, name: str) -> list[str]:
        """Split a comma-separated header into lower-case tokens."""
        return [t.strip().lower() for v in self.get_all(name) for t in v.split(",")]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and bool(self.get_all(name))

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and self._items == other._items

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"

    def serialize(self) -> bytes:
        return b"".join(f"{n}: {v}\r\n".encode() for n, v in self._items)


@dataclass
class Request:
    """The client's opening handshake: ``GET /path HTTP/1.1`` and headers."""

    path: str
    headers: Headers = field(default_factory=Headers)
    method: str = "GET"
    version: str = "HTTP/1.1"

    def serialize(self) -> bytes:
        """Return the request as the bytes sent on the wire."""
        line = f"{self.method} {self.path} {self.version}\r\n".encode()
        return line + self.headers.serialize() + b"\r\n"

    @classmethod
    def parse(cls, head: bytes) -> Request:
        """Parse a request head (everything up to the blank line).

        Raises:
            HandshakeError: 400 if it is not a well-formed HTTP request, or if
                bytes follow the head (a client waits for the 101, section 4.1).
        """
        start, headers, rest = _parse_head(head)
        if rest:
            raise HandshakeError(
                f"{len(rest)} bytes follow the request head: pass only the head, "
                "e.g. from split_head()"
            )
        parts = start.split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            raise HandshakeError(
                f"malformed request line {start!r}: expected 'GET /path HTTP/1.1'"
            )
        method, path, version = parts
        return cls(path, headers, method, version)

    def __str__(self) -> str:
        return self.serialize().decode("latin-1").rstrip("\r\n").replace("\r\n", "\n")


@dataclass
class Response:
    """The server's answer: a status line, headers and, for errors, a body."""

    status: int
    headers: Headers = field(default_factory=Headers)
    reason: str = ""
    body: bytes = b""
    version: str = "HTTP/1.1"

    def __post_init__(self) -> None:
        if not self.reason:
            self.reason = _REASONS.get(self.status, "")

    def serialize(self) -> bytes:
        """Return the response as the bytes sent on the wire."""
        line = f"{self.version} {self.status} {self.reason}\r\n".encode()
        return line + self.headers.serialize() + b"\r\n" + self.body

    @classmethod
    def parse(cls, head: bytes) -> Response:
        """Parse a response head; bytes after the blank line become ``body``.

        Raises:
            HandshakeError: If it is not a well-formed HTTP response.
        """
        start, headers, body = _parse_head(head)
        parts = start.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise HandshakeError(f"malformed status line {start!r}: expected 'HTTP/1.1 101 ...'")
        return cls(int(parts[1]), headers, parts[2] if len(parts) == 3 else "", body, parts[0])

    def __str__(self) -> str:
        head, _, _ = self.serialize().partition(b"\r\n\r\n")
        return head.decode("latin-1").replace("\r\n", "\n")


def split_head(buffer: bytes, limit: int = MAX_HEAD_SIZE) -> tuple[bytes, bytes] | None:
    """Split received bytes into an HTTP head and whatever follows it.

    Returns:
        ``(head, rest)``, or None while the blank line has not arrived yet.

    Raises:
        HandshakeError: 431 if the head grows past ``limit`` bytes.
    """
    end = buffer.find(b"\r\n\r\n")
    if end == -1:
        if len(buffer) > limit:
            raise HandshakeError(f"HTTP head is over {limit} bytes", 431)
        return None
    if end > limit:
        raise HandshakeError(f"HTTP head is over {limit} bytes", 431)
    return bytes(buffer[: end + 4]), bytes(buffer[end + 4 :])


def client_request(
    host: str,
    path: str = "/",
    *,
    key: str | None = None,
    origin: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
) -> Request:
    """Build the client's opening handshake (section 4.1).

    Args:
        host: The ``Host`` header, e.g. ``"localhost:8080"``.
        path: The resource name, e.g. ``"/chat"``.
        key: The ``Sec-WebSocket-Key``; a fresh random one if None. Pass a
            fixed key to get reproducible bytes.
        origin: The ``Origin`` header browsers send; None to leave it out.
        headers: More headers, e.g. ``[("Sec-WebSocket-Protocol", "chat")]``.
    """
    key = new_key() if key is None else key
    if not isinstance(key, str) or not is_valid_key(key):
        raise ValueError(f"key must be base64 of 16 bytes (24 characters), got {key!r}")
    if not isinstance(host, str) or not host:
        raise ValueError(f"host must be a str such as 'localhost:8080', got {host!r}")
    if not isinstance(path, str) or not path.startswith("/"):
        raise ValueError(f"path must start with '/', got {path!r}")
    request = Request(path)
    request.headers.add("Host", host)
    request.headers.add("Upgrade", "websocket")
    request.headers.add("Connection", "Upgrade")
    request.headers.add("Sec-WebSocket-Key", key)
    # The order of the example in section 1.3, so that the RFC's own request
    # comes out byte for byte: Origin and extra headers, then the version.
    if origin is not None:
        request.headers.add("Origin", origin)
    for name, value in headers:
        request.headers.add(name, value)
    request.headers.add("Sec-WebSocket-Version", VERSION)
    return request


def check_request(
    request: Request,
    *,
    origins: Iterable[str] | None = None,
    secure: bool | None = False,
) -> str:
    """Validate a client's handshake as a server must (section 4.2.1).

    The checks follow the section's list: a GET over HTTP/1.1 or higher (item
    1), one ``Host`` (2), ``Upgrade: websocket`` (3), ``Connection: Upgrade``
    (4), one valid ``Sec-WebSocket-Key`` (5), ``Sec-WebSocket-Version: 13``
    (6), at most one ``Origin`` (7). A handshake has no body either: the
    bytes after it are frames.

    Args:
        request: The parsed request.
        origins: If given, check the Origin with :func:`origin_allowed`: a
            request without an Origin (not a browser), from a page on the same
            host, or from one of these origins is accepted; any other gets 403.
            None skips the check.
        secure: How the server's pages are served, for the Origin check: see
            :func:`origin_allowed`.

    Returns:
        The client's ``Sec-WebSocket-Key``.

    Raises:
        HandshakeError: With the status to answer (400, 403 or 426) and a
            one-line reason that names the RFC section.
    """
    if not isinstance(request, Request):
        raise TypeError(
            f"check_request() takes a Request (see Request.parse), got {type(request).__name__}"
        )
    if request.method != "GET":
        raise HandshakeError(f"method is {request.method}: the handshake must be a GET (4.2.1)")
    _check_http_version(request.version)
    headers = request.headers
    host = check_host(headers)
    single_value(headers, "Upgrade", "4.2.1 item 3")
    if "websocket" not in headers.tokens("Upgrade"):
        raise HandshakeError(
            f"{_describe(headers, 'Upgrade')}: expected 'websocket' (4.2.1 item 3)"
        )
    if "upgrade" not in headers.tokens("Connection"):
        raise HandshakeError(
            f"{_describe(headers, 'Connection')}: expected 'Upgrade' (4.2.1 item 4)"
        )
    key = single_value(headers, "Sec-WebSocket-Key", "4.2.1 item 5")
    if key is None or not is_valid_key(key):
        raise HandshakeError(
            f"{_describe(headers, 'Sec-WebSocket-Key')}: expected base64 of 16 random "
            "bytes (4.2.1 item 5)"
        )
    _check_version(headers)
    _check_no_body(headers)
    origin = single_value(headers, "Origin", "4.2.1 item 7")
    if origins is not None and not origin_allowed(origin, host, origins, secure=secure):
        raise HandshakeError(f"Origin {origin!r} is not allowed (10.2)", 403)
    return key


def _check_http_version(version: str) -> None:
    """Item 1 of section 4.2.1: "An HTTP/1.1 or higher GET request"."""
    match = _HTTP_VERSION.fullmatch(version)
    if match is None:
        raise HandshakeError(f"malformed HTTP version {version!r}: expected 'HTTP/1.1' (4.2.1)")
    if (int(match[1]), int(match[2])) < (1, 1):
        raise HandshakeError(
            f"{version} is too old: the handshake needs HTTP/1.1 or higher (4.2.1 item 1)"
        )


def _check_version(headers: Headers) -> None:
    """Item 6 of section 4.2.1, answered as section 4.4 asks.

    Every refusal carries ``Sec-WebSocket-Version: 13``, so that a client can
    retry with a version this server speaks (4.2.2 /version/, 4.4). An
    unsupported version gets 426, the status 4.2.2 suggests; a missing or
    repeated header is a malformed request: 400.
    """
    we_speak = [("Sec-WebSocket-Version", VERSION)]
    versions = headers.get_all("Sec-WebSocket-Version")
    if len(versions) != 1:
        raise HandshakeError(
            f"{_describe(headers, 'Sec-WebSocket-Version')}: send exactly one, "
            f"with the value {VERSION} (4.2.1 item 6)",
            400,
            we_speak,
        )
    if versions[0].strip() != VERSION:
        raise HandshakeError(
            f"Sec-WebSocket-Version is {versions[0]!r}: this server speaks {VERSION} (4.4)",
            426,
            we_speak,
        )


def _check_no_body(headers: Headers) -> None:
    """Refuse a request with a body: after the handshake come frames (4.2.1, 4.2.2).

    The server switches protocols right after the request's head, so a body
    would be read as WebSocket frames: a peer could smuggle frames past
    whatever inspected the HTTP request (RFC 9110 9.3.1: GET content has no
    defined meaning).
    """
    length = headers.get("Content-Length")
    if length is not None and length.strip() != "0":
        raise HandshakeError(
            f"Content-Length is {length!r}: a handshake has no body, frames follow it (4.2.1)"
        )
    if "Transfer-Encoding" in headers:
        raise HandshakeError(
            f"{_describe(headers, 'Transfer-Encoding')}: a handshake has no body, "
            "frames follow it (4.2.1)"
        )


def check_host(headers: Headers) -> str:
    """Return the one ``Host`` header (section 4.2.1 item 2; RFC 9112 3.2).

    Raises:
        HandshakeError: 400 if it is missing, empty or repeated.
    """
    host = single_value(headers, "Host", "4.2.1 item 2")
    if host is None or not host.strip():
        raise HandshakeError(
            f"{_describe(headers, 'Host')}: expected the server's host and port (4.2.1 item 2)"
        )
    return host.strip()


def single_value(headers: Headers, name: str, rule: str) -> str | None:
    """Return the value of a header that may appear at most once, or None.

    Two ``Host`` headers can name two servers, and a proxy and a server may
    each believe a different one; so a repeated header is refused, not joined.

    Args:
        headers: The request's headers.
        name: The header, e.g. ``"Origin"``.
        rule: The section that says "one", for the error message, e.g.
            ``"4.2.1 item 7"``.

    Raises:
        HandshakeError: 400 if the header appears more than once.
    """
    values = headers.get_all(name)
    if len(values) > 1:
        raise HandshakeError(f"{len(values)} {name} headers {values!r}: send exactly one ({rule})")
    return values[0] if values else None


def server_response(key: str, headers: Iterable[tuple[str, str]] = ()) -> Response:
    """Build the ``101 Switching Protocols`` answer to a valid request (4.2.2).

    Args:
        key: The client's ``Sec-WebSocket-Key``, as :func:`check_request` returns it.
        headers: More headers, e.g. ``[("Sec-WebSocket-Protocol", "chat")]``.
    """
    response = Response(101)
    response.headers.add("Upgrade", "websocket")
    response.headers.add("Connection", "Upgrade")
    response.headers.add("Sec-WebSocket-Accept", accept_key(key))
    for name, value in headers:
        response.headers.add(name, value)
    return response


def error_response(error: HandshakeError) -> Response:
    """Build the HTTP answer to a refused handshake: status, headers and reason.

    The body is the error's one-line reason. A 426 also names the protocol
    to upgrade to, ``Upgrade: websocket``, which RFC 9110 15.5.22 requires
    of every 426; and whoever sends ``Upgrade`` lists ``upgrade`` in
    ``Connection`` (RFC 9110 7.8).
    """
    if not isinstance(error, HandshakeError):
        raise TypeError(f"error_response() takes a HandshakeError, got {type(error).__name__}")
    body = (str(error) + "\n").encode()
    response = Response(error.status, body=body)
    for name, value in error.headers:
        response.headers.add(name, value)
    upgrade = error.status == 426
    if upgrade and "Upgrade" not in response.headers:
        response.headers.add("Upgrade", "websocket")
    response.headers.add("Content-Type", "text/plain; charset=utf-8")
    response.headers.add("Content-Length", str(len(body)))
    response.headers.add("Connection", "Upgrade, close" if upgrade else "close")
    return response


def check_response(
    response: Response,
    key: str,
    *,
    protocols: Iterable[str] = (),
    extensions: Iterable[str] = (),
) -> None:
    """Validate the server's answer as a client must (section 4.1, steps 1 to 6).

    Args:
        response: The parsed response.
        key: The ``Sec-WebSocket-Key`` the client sent.
        protocols: The subprotocols the client offered in
            ``Sec-WebSocket-Protocol``, e.g. ``["chat", "superchat"]``.
        extensions: The extensions the client offered in
            ``Sec-WebSocket-Extensions``, by name or as sent, e.g.
            ``["permessage-deflate; client_max_window_bits"]``.

    Raises:
        HandshakeError: The status is not 101; an Upgrade, Connection or
            Sec-WebSocket-Accept header is wrong; or the server selected a
            subprotocol or an extension the client never offered.
    """
    if not isinstance(response, Response):
        raise TypeError(
            "check_response() takes a Response (see Response.parse), "
            f"got {type(response).__name__}"
        )
    if response.status != 101:
        raise HandshakeError(
            f"server answered {response.status} {response.reason}, not 101 Switching "
            "Protocols (4.1 step 1)",
            response.status,
        )
    headers = response.headers
    if "websocket" not in headers.tokens("Upgrade"):
        raise HandshakeError(f"{_describe(headers, 'Upgrade')}: expected 'websocket' (4.1 step 2)")
    if "upgrade" not in headers.tokens("Connection"):
        raise HandshakeError(
            f"{_describe(headers, 'Connection')}: expected 'Upgrade' (4.1 step 3)"
        )
    expected = accept_key(key)
    if headers.get_all("Sec-WebSocket-Accept") != [expected]:
        raise HandshakeError(
            f"{_describe(headers, 'Sec-WebSocket-Accept')}: expected {expected!r}, "
            "the accept_key() of the key we sent (4.1 step 4)"
        )
    _check_selected_extensions(headers, extensions)
    _check_selected_protocol(headers, protocols)


def _check_selected_extensions(headers: Headers, offered: Iterable[str]) -> None:
    """Step 5 of section 4.1: the server may only accept extensions we offered."""
    names = {_extension_name(offer) for offer in offered}
    for value in headers.get_all("Sec-WebSocket-Extensions"):
        for selected in _split_list(value):
            name = _extension_name(selected)
            if name not in names:
                raise HandshakeError(
                    f"server selected the extension {name!r}, which the client did not "
                    f"offer{_offered(names)} (4.1 step 5)"
                )


def _check_selected_protocol(headers: Headers, offered: Iterable[str]) -> None:
    """Step 6 of section 4.1: the server may only select a subprotocol we offered."""
    selected = [
        p for value in headers.get_all("Sec-WebSocket-Protocol") for p in _split_list(value)
    ]
    if not selected:
        return  # The server picked none: the client decides whether that will do.
    if len(selected) > 1:
        # Section 4.2.2, /subprotocol/: "Either a single value ... or null".
        raise HandshakeError(
            f"server selected {len(selected)} subprotocols {selected!r}: at most one (4.2.2)"
        )
    names = set(offered)
    if selected[0] not in names:
        raise HandshakeError(
            f"server selected the subprotocol {selected[0]!r}, which the client did not "
            f"offer{_offered(names)} (4.1 step 6)"
        )


def _extension_name(offer: str) -> str:
    """``'permessage-deflate; client_max_window_bits'`` -> ``'permessage-deflate'``."""
    return offer.partition(";")[0].strip().lower()


def _split_list(value: str) -> list[str]:
    """Split a comma-separated header value into its items, keeping their case.

    Subprotocols are compared exactly as written, as websockets and browsers do.
    """
    return [item.strip() for item in value.split(",") if item.strip()]


def _offered(names: set[str]) -> str:
    return f" (it offered {sorted(names)!r})" if names else " (it offered none)"


def _describe(headers: Headers, name: str) -> str:
    """Say what a header holds, for an error message: its value, or that it is missing."""
    values = headers.get_all(name)
    if not values:
        return f"{name} header is missing"
    shown = values[0] if len(values) == 1 else values
    return f"{name} header is {shown!r}"


def _parse_head(data: bytes) -> tuple[str, Headers, bytes]:
    """Split an HTTP message into its start line, its headers and what follows."""
    if not isinstance(data, bytes | bytearray):
        raise TypeError(f"head must be bytes, got {type(data).__name__}")
    head, _, rest = bytes(data).partition(b"\r\n\r\n")
    try:
        text = head.decode("ascii")
    except UnicodeDecodeError:
        raise HandshakeError("HTTP head contains non-ASCII bytes") from None
    lines = text.rstrip("\r\n").split("\r\n")
    for number, line in enumerate(lines, 1):
        if match := _CONTROL.search(line):
            raise HandshakeError(_control_message(match.group(), number))
    headers = Headers()
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip() or " " in name:
            raise HandshakeError(f"malformed header line {line!r}: expected 'Name: value'")
        headers.add(name, value.strip())
    return lines[0], headers, rest


def _control_message(char: str, line: int) -> str:
    """Say which control character a head holds, and where."""
    if char in "\r\n":
        # A lone CR or LF is not a line end in HTTP/1.1 (RFC 9112 2.2); refusing it
        # keeps a peer from smuggling a second header past the parser.
        return f"HTTP head has a bare CR or LF in line {line}: every line must end with CRLF"
    name = "NUL" if char == "\0" else f"{ord(char):#04x}"
    return f"HTTP head has the control character {name} in line {line} (RFC 9110 5.5)"


def origin_allowed(
    origin: str | None,
    host: str | None,
    origins: Iterable[str] = (),
    *,
    secure: bool | None = False,
) -> bool:
    """Decide whether a browser's ``Origin`` may open a WebSocket (section 10.2).

    Browsers send the page's origin; scripts usually send none. A server that
    accepts any Origin lets every web page the user visits talk to it with the
    user's cookies: cross-site WebSocket hijacking. The rule here:

    * no ``Origin`` header (not a browser): accepted;
    * an Origin listed in ``origins``: accepted;
    * the server's own origin, that is, a page served from the place the
      WebSocket goes to: same scheme (``http`` unless ``secure``), and host
      and port equal to the request's ``Host`` header (jupyter-server-proxy
      forwards both headers unchanged): accepted;
    * anything else: refused.

    An origin is scheme, host and port (RFC 6454 4): ``https://127.0.0.1:8080``
    is another origin than the ``http`` page on ``127.0.0.1:8080``.

    It does not stop DNS rebinding (a hostile name that resolves to 127.0.0.1).

    Args:
        origin: The request's ``Origin`` header, or None.
        host: The request's ``Host`` header.
        origins: More origins to accept, exactly as browsers send them
            (e.g. ``"http://localhost:8888"``).
        secure: Whether the server's own pages are served over ``https``
            (the server, or a proxy in front of it, speaks TLS). None: not
            known, because a proxy in front may or may not; then only host
            and port are compared.

    >>> origin_allowed("http://127.0.0.1:8080", "127.0.0.1:8080")
    True
    >>> origin_allowed("https://127.0.0.1:8080", "127.0.0.1:8080")
    False
    >>> origin_allowed("https://evil.example", "127.0.0.1:8080")
    False
    """
    if origin is None or origin in origins:
        return True
    parsed = urllib.parse.urlsplit(origin)
    if not parsed.netloc or host is None:
        return False
    if secure is not None and parsed.scheme != ("https" if secure else "http"):
        return False
    # The browser sends ws:// to the page's host, so compare as the page's scheme.
    return _netloc(parsed.scheme, parsed.netloc) == _netloc(parsed.scheme, host)


def _netloc(scheme: str, host_and_port: str) -> str:
    """Normalise ``host[:port]``: lower case, default port left out."""
    host_and_port = host_and_port.strip().lower()
    default = {"http": ":80", "ws": ":80", "https": ":443", "wss": ":443"}.get(scheme)
    if default and host_and_port.endswith(default):
        host_and_port = host_and_port[: -len(default)]
    return host_and_port
