"""The server rules every wslab server applies, sans I/O.

:class:`wslab.raw.RawServer`, the in-kernel :func:`wslab.serve` and the
:class:`~wslab.tap.Tap` all answer HTTP the same way, because they all ask
this module. Nothing here touches a socket: a server parses a request head,
calls :func:`route`, and writes what it gets back, in the spirit of h11 and
wsproto (events in, decisions out)::

    decision = route(request, policy, clients=len(open_connections))
    if isinstance(decision, Accept):
        ...  # answer 101 (RFC 6455 section 4.2.2) and run the handler
    else:
        ...  # write decision.response, record decision.text, close

The order of the checks, and why:

1. ``Host`` is present and single (RFC 9112 section 3.2, RFC 6455 4.1), and
   names this machine when the browser came straight here (the DNS rebinding
   rule, :func:`host_allowed`);
2. the path: ``/`` is the page (GET and HEAD), the WebSocket path takes only
   a WebSocket handshake (a plain GET gets 426), anything else is 404;
3. the token of a private server (:func:`token_matches`), before anything
   else is said about the resource;
4. the handshake itself (:func:`wslab.handshake.check_request`, 400 or 426);
5. the ``Origin`` (section 10.2), then the client limit (503).

Every refusal is a :class:`Reply` with a one-line reason, the same for every
server, so that a student sees the same answer from all of them.
"""

from __future__ import annotations

import difflib
import errno
import hmac
import inspect
import ipaddress
import re
import secrets
import urllib.parse
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from . import chat, handshake
from .connection import DEFAULT_MAX_FRAGMENTS
from .errors import HandshakeError, ServerStartError
from .frames import DEFAULT_MAX_SIZE
from .uri import is_loopback

__all__ = [
    "PAGE_PATHS",
    "TOKEN_BYTES",
    "Accept",
    "Limits",
    "Policy",
    "Reply",
    "bind_error",
    "check_bind",
    "check_port",
    "choose_token",
    "host_allowed",
    "hub_prefix",
    "limits_from",
    "new_token",
    "page_url",
    "read_request",
    "redact",
    "refusal",
    "route",
    "token_matches",
    "ws_url",
]

#: Paths that serve the page (``GET /``), besides nothing else.
PAGE_PATHS = ("/", "/index.html")
#: Random bytes in a server's token: 16 bytes, 22 URL-safe base64 characters.
TOKEN_BYTES = 16
#: The query parameter that carries the token. Not Jupyter's own ``?token=``: through
#: jupyter-server-proxy, Jupyter would take ours for a login token and try it first.
TOKEN_PARAM = "wslab_token"
#: Shown instead of a secret in records and reprs.
REDACTED = "[redacted]"

_TOKEN_PARAM_RE = re.compile(rf"([?&]{TOKEN_PARAM}=)[^&#\s\"'<>]+")
# Headers a proxy in front of us adds: jupyter-server-proxy sets these on the
# plain HTTP requests it forwards for /proxy/<port>/ routes (not on WebSockets).
_CONTEXT_HEADERS = ("X-ProxyContextPath", "X-Forwarded-Context")


def _positive(name: str, value: object, example: str, *, allow_none: bool = False) -> None:
    """Refuse a limit that is not a positive number, naming a good one."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ServerStartError(
            f"{name} must be a positive number such as {example}, got {value!r}"
        )


@dataclass(frozen=True)
class Limits:
    """Every limit of a wslab server, in one place.

    Attributes:
        max_size: Bytes per incoming message; a bigger one closes with 1009
            (RFC 6455 section 7.4.1, "too big to process").
        max_clients: Open WebSocket connections; the next handshake gets 503.
        max_handshaking: Connections still in their opening handshake, or
            answered with plain HTTP (the page, a refusal) and not closed yet;
            past it the oldest is dropped, so that slow handshakes (slowloris)
            or refused clients that never close cannot hold every thread or
            file descriptor.
        handshake_timeout: Seconds for the whole request head, a deadline
            rather than a timeout per byte (a byte every few seconds would
            otherwise hold a connection forever).
        ping_interval: Seconds between keepalive pings (section 5.5.2);
            None turns them off.
        ping_timeout: Seconds to wait for the pong before the connection
            counts as dead and is dropped; None waits forever.
        close_timeout: Seconds to wait for the peer's Close frame, and then
            for its TCP FIN, before dropping TCP (section 7.1.1 allows it).
        send_timeout: Seconds a peer may read nothing while bytes wait for
            it; then it is dropped, so that it cannot stall anyone else.
        max_write_buffer: Bytes that may wait for one peer (messages, pongs
            and close frames not yet written to its socket); past it the peer
            is closed with 1008, policy violation. A client that sends pings
            without reading its pongs would otherwise grow memory forever.
            Above ``max_size``, so one whole message always fits.
        max_fragments: Frames in one fragmented message; more close with
            1009. Empty continuation frames carry no bytes, so ``max_size``
            alone cannot stop an endless stream of them.
    """

    # The core's defaults, so that a server and a bare Connection agree.
    max_size: int = DEFAULT_MAX_SIZE
    max_clients: int = 64
    max_handshaking: int = 32
    handshake_timeout: float = 10.0
    ping_interval: float | None = 20.0
    ping_timeout: float | None = 20.0
    close_timeout: float = 3.0
    send_timeout: float = 5.0
    max_write_buffer: int = 4 * 2**20
    max_fragments: int = DEFAULT_MAX_FRAGMENTS

    def __post_init__(self) -> None:
        _positive("max_size", self.max_size, "2**20 (1 MiB)")
        _positive("max_clients", self.max_clients, "64")
        _positive("max_handshaking", self.max_handshaking, "32")
        _positive("handshake_timeout", self.handshake_timeout, "10.0")
        _positive("ping_interval", self.ping_interval, "20.0 or None (no pings)", allow_none=True)
        _positive("ping_timeout", self.ping_timeout, "20.0 or None", allow_none=True)
        _positive("close_timeout", self.close_timeout, "3.0")
        _positive("send_timeout", self.send_timeout, "5.0")
        _positive("max_write_buffer", self.max_write_buffer, "4 * 2**20 (4 MiB)")
        _positive("max_fragments", self.max_fragments, str(DEFAULT_MAX_FRAGMENTS))


def limits_from(limits: Limits | None, options: Mapping[str, Any], *, server: type) -> Limits:
    """``limits`` (or the defaults) with the limits given one by one, as servers take them.

    ``wslab.serve(max_size=2**16)`` and ``RawServer(max_clients=8)`` both
    come here, so that both accept the same names and refuse a typo alike.

    Args:
        limits: A :class:`Limits`, or None for the defaults.
        options: Fields of :class:`Limits` by name, e.g. ``{"max_size": 2**16}``.
        server: The server class that took them: an unknown option is
            compared with its own arguments too, to suggest the one meant.

    Raises:
        ServerStartError: An option that is no limit (named, with the closest
            argument or limit), ``limits`` that is not a :class:`Limits`, or a
            limit that is not a positive number.
    """
    known = sorted(f.name for f in fields(Limits))
    unknown = sorted(set(options) - set(known))
    if unknown:
        arguments = [
            name
            for name, parameter in inspect.signature(server).parameters.items()
            if parameter.kind is not parameter.VAR_KEYWORD
        ]
        close = difflib.get_close_matches(unknown[0], [*arguments, *known], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ServerStartError(
            f"unknown option {unknown[0]!r}{hint}: {server.__name__} takes "
            f"{', '.join(arguments)}, and the limits one by one: {', '.join(known)}"
        )
    if limits is not None and not isinstance(limits, Limits):
        raise ServerStartError(f"limits must be a wslab.rules.Limits, got {limits!r}")
    return replace(limits or Limits(), **options)


@dataclass(frozen=True)
class Policy:
    """What one server accepts: its paths, its secret and its neighbours.

    Attributes:
        path: The WebSocket endpoint, e.g. ``/chat``; ``/`` is the page.
        origins: More ``Origin`` values to accept, besides the server's own
            page and clients that send none (see :func:`origin_allowed`).
        token: The secret a private server requires, in the ``?wslab_token=``
            query parameter of the page and of the WebSocket URL; None makes
            the server public (the command line, or ``token=None``).
        allowed_hosts: More ``Host`` names to accept from browsers that come
            straight to this port (see :func:`host_allowed`), e.g. a LAN name
            for a server started with ``allow_remote=True``.
        hub_prefix: ``JUPYTERHUB_SERVICE_PREFIX`` of the kernel (``/user/stu1/``)
            when it runs under JupyterHub or Binder, else None; requests
            proxied through another user's prefix are refused.
        page: The HTML served on ``GET /``; None for the chat page.
        port: The port the server listens on, once known (for the DNS
            rebinding rule, :func:`host_allowed`).
        owner_uid: The user account the server runs as (``os.getuid()``),
            for the same-user rule of a public server (see :func:`route`).
        limits: The limits (only ``max_clients`` matters to :func:`route`).
    """

    path: str = "/chat"
    origins: tuple[str, ...] = ()
    token: str | None = None
    allowed_hosts: tuple[str, ...] = ()
    hub_prefix: str | None = None
    page: bytes | None = None
    port: int | None = None
    owner_uid: int | None = None
    limits: Limits = field(default_factory=Limits)

    def __post_init__(self) -> None:
        if not isinstance(self.path, str) or not self.path.startswith("/") or self.path == "/":
            raise ServerStartError(
                f"path must start with '/' and name the WebSocket, e.g. '/chat', got {self.path!r}"
            )
        if urllib.parse.urlsplit(self.path).path in PAGE_PATHS:
            raise ServerStartError(f"path {self.path!r} is the page's; use e.g. '/chat'")
        if self.token is not None and (not isinstance(self.token, str) or not self.token):
            raise ServerStartError(
                f"token must be a non-empty str (or None for a public server), got {self.token!r}"
            )


@dataclass(frozen=True)
class Accept:
    """A valid WebSocket handshake that passed every rule: answer 101.

    Attributes:
        key: The client's ``Sec-WebSocket-Key``, for ``Sec-WebSocket-Accept``.
        name: The chat name from ``?name=``, cleaned, or None.
    """

    key: str
    name: str | None = None


@dataclass(frozen=True)
class Reply:
    """Anything but a WebSocket: an HTTP response, ready to write, then close.

    Attributes:
        response: Status, headers (``Content-Length``, ``Connection: close``
            and what the status requires) and body.
        reason: One line that says what happened and what to do, also the
            body of every error response.
    """

    response: handshake.Response
    reason: str

    @property
    def status(self) -> int:
        return self.response.status

    @property
    def text(self) -> str:
        """A short line for a server's records, e.g. ``403 Forbidden: ...``."""
        return f"{self.response.status} {self.response.reason}: {self.reason}"


# -- routing ----------------------------------------------------------------------


def read_request(buffer: bytes) -> tuple[handshake.Request, bytes] | Reply | None:
    """Parse a request head from the bytes received so far.

    Returns:
        None while the head is incomplete; ``(request, rest)`` once it is
        whole (``rest``: the bytes after it); a :class:`Reply` (400 or 431)
        if it is not HTTP a server may answer, with the parser's reason.
    """
    try:
        parts = handshake.split_head(buffer)
        if parts is None:
            return None
        head, rest = parts
        return handshake.Request.parse(head), rest
    except HandshakeError as error:
        return _error_reply(error)
    except ValueError as error:  # a header the core refuses to hold (a control character)
        return _error_reply(HandshakeError(f"malformed request: {error}"))


def route(
    request: handshake.Request,
    policy: Policy,
    *,
    clients: int = 0,
    peer_uid: int | None = None,
) -> Accept | Reply:
    """Decide what to answer to one HTTP request (RFC 6455 section 4.2, RFC 9110).

    Args:
        request: The parsed request head.
        policy: The server's policy.
        clients: How many WebSocket clients are connected now.
        peer_uid: The user account of the other end when it is on this
            machine (:func:`wslab.peercred.peer_uid`), else None.

    Returns:
        :class:`Accept` for a WebSocket handshake that passes every rule,
        else the :class:`Reply` to send: the page (200), 400, 403, 404, 405,
        426 or 503, each with a one-line reason.
    """
    head = request.method == "HEAD"
    try:
        return _route(request, policy, clients, peer_uid)
    except HandshakeError as error:
        return _error_reply(error, head=head)


def refusal(
    request: handshake.Request, policy: Policy, what: str = "link", *, peer_uid: int | None = None
) -> Reply | None:
    """The access rules alone, for a proxy such as the tap: Host, proxy route, token.

    A request without one ``Host`` passes on: whether that is a 400 is the
    server's to say, and a proxy shows what the server says.

    Returns:
        The 403 :class:`Reply` for a request that may not pass, else None.
    """
    try:
        if len(request.headers.get_all("Host")) == 1:
            _check_host(request, policy)
        _check_access(urllib.parse.urlsplit(request.path).query, policy, what, peer_uid)
    except HandshakeError as error:
        return _error_reply(error, head=request.method == "HEAD")
    return None


def _check_host(request: handshake.Request, policy: Policy) -> str:
    """One Host, from the right proxy route, naming this machine (DNS rebinding)."""
    host = _single_host(request.headers)
    _check_proxy_context(request.headers, policy)
    if not host_allowed(host, policy.port, policy.allowed_hosts):
        raise HandshakeError(
            f"Host {host!r} is not a name of this server, so a web page may be reaching "
            "it by DNS rebinding; open the server's own link (server.page_url), or pass "
            "allowed_hosts=[...] to the server",
            403,
        )
    return host


def _route(
    request: handshake.Request, policy: Policy, clients: int, peer_uid: int | None
) -> Accept | Reply:
    host = _check_host(request, policy)
    target = urllib.parse.urlsplit(request.path)
    if target.path in PAGE_PATHS:
        return _page(request, policy, peer_uid)
    websocket = "Upgrade" in request.headers or "Sec-WebSocket-Key" in request.headers
    if target.path != policy.path:
        where = "No WebSocket" if websocket else "Nothing"
        raise HandshakeError(
            f"{where} at {target.path}: the page is at / and the WebSocket at {policy.path}", 404
        )
    if request.method not in ("GET", "HEAD"):
        raise HandshakeError(
            f"{request.method} is not allowed on {policy.path}: a WebSocket opens with GET "
            "(RFC 6455 4.1)",
            405,
            [("Allow", "GET")],
        )
    if not websocket:
        # The resource exists, but only as a WebSocket (RFC 9110 15.5.22: the
        # 426 names the protocol to switch to in an Upgrade header).
        raise HandshakeError(
            f"{policy.path} is a WebSocket endpoint: connect a WebSocket client to it, "
            "or open the page at /",
            426,
            [("Upgrade", "websocket")],
        )
    _check_access(target.query, policy, "WebSocket URL", peer_uid)
    key = handshake.check_request(request)
    origin = _single(request.headers, "Origin")
    if not origin_allowed(origin, host, policy.port, policy.origins):
        raise HandshakeError(
            f"Origin {origin} is not allowed to connect (cross-site request, RFC 6455 10.2): "
            "open the server's own page, or pass origins=[...] to the server",
            403,
        )
    if clients >= policy.limits.max_clients:
        raise HandshakeError(
            f"this server accepts at most {policy.limits.max_clients} clients: close one, "
            "or pass a larger max_clients",
            503,
        )
    return Accept(key, chat.name_from_path(request.path))


def _page(request: handshake.Request, policy: Policy, peer_uid: int | None) -> Reply:
    """``GET /`` and ``HEAD /``: the page; any other method: 405."""
    if request.method not in ("GET", "HEAD"):
        raise HandshakeError(
            f"{request.method} is not allowed on /: the page answers GET and HEAD",
            405,
            [("Allow", "GET, HEAD")],
        )
    _check_access(urllib.parse.urlsplit(request.path).query, policy, "page link", peer_uid)
    body = policy.page if policy.page is not None else _chat_page(policy.path)
    response = handshake.Response(200)
    for name, value in (
        ("Content-Type", "text/html; charset=utf-8"),
        ("Content-Length", str(len(body))),
        ("Cache-Control", "no-store"),
        # The page's URL carries the token: never send it on as a Referer.
        ("Referrer-Policy", "no-referrer"),
        ("X-Content-Type-Options", "nosniff"),
        ("Connection", "close"),
    ):
        response.headers.add(name, value)
    if request.method == "GET":
        response.body = body
    return Reply(response, "the page")


def _chat_page(ws_path: str) -> bytes:
    from .page import chat_page  # reads a package file: only when a page is asked for

    return chat_page(ws_path.lstrip("/"))


def _error_reply(error: HandshakeError, *, head: bool = False) -> Reply:
    """Turn a refusal into its response: one line of text, then close."""
    response = handshake.error_response(error)
    if head:
        response.body = b""  # RFC 9110 9.3.2: the same headers, no content
    return Reply(response, str(error))


# -- the rules, one function each --------------------------------------------------


def _single(headers: handshake.Headers, name: str) -> str | None:
    """The one value of a header, or None; two values are an error (400).

    Two ``Origin`` or ``Host`` headers leave it open which one a check saw
    and which one the application uses, so neither is guessed.
    """
    values = headers.get_all(name)
    if len(values) > 1:
        raise HandshakeError(f"{len(values)} {name} headers: send exactly one")
    return values[0] if values else None


def _single_host(headers: handshake.Headers) -> str:
    host = _single(headers, "Host")
    if host is None or not host.strip():
        raise HandshakeError(
            "Host header is missing: HTTP/1.1 requires it (RFC 9112 3.2, RFC 6455 4.1)"
        )
    return host.strip()


def new_token() -> str:
    """A fresh secret for a private server: 22 URL-safe base64 characters."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def choose_token(token: str | bool | None) -> str | None:
    """A server's token from its ``token=`` argument.

    ``True`` (the default of every private server): a fresh one from
    :func:`new_token`; ``None`` or ``False``: none (public); a str: itself.

    Raises:
        ServerStartError: For anything else, or an empty str.
    """
    if token is True:
        return new_token()
    if token is None or token is False:
        return None
    if not isinstance(token, str) or not token.strip():
        raise ServerStartError(
            f"token must be True (a random one), a str, or None (public), got {token!r}"
        )
    return token


def token_matches(query: str, token: str | None) -> bool:
    """Whether a request's query string carries ``token`` (always true for None).

    The comparison takes the same time wherever the strings differ
    (:func:`hmac.compare_digest`), so that timing cannot reveal the token
    one character at a time.
    """
    if token is None:
        return True
    given = urllib.parse.parse_qs(query, keep_blank_values=True).get(TOKEN_PARAM, [])
    if len(given) != 1:
        return False
    return hmac.compare_digest(given[0].encode(), token.encode())


def _check_access(query: str, policy: Policy, what: str, peer_uid: int | None) -> None:
    """Who may in: whoever has the token; without one, the owner's own account.

    The token is the key, so a link shared on purpose works for anyone. A
    public server (no token) still refuses another user of this machine,
    when the system can tell (Linux): on a shared JupyterHub host that is a
    classmate who found the port.
    """
    stranger = (
        peer_uid is not None and policy.owner_uid is not None and peer_uid != policy.owner_uid
    )
    if token_matches(query, policy.token) and not (stranger and policy.token is None):
        return
    if stranger:
        raise HandshakeError(
            f"this server belongs to another user of this machine (it runs as uid "
            f"{policy.owner_uid}, you as uid {peer_uid}): start a server of your own with "
            "wslab.serve(), or ask its owner for its link",
            403,
        )
    _check_token(query, policy.token, what)


def _check_token(query: str, token: str | None, what: str) -> None:
    if token_matches(query, token):
        return
    given = urllib.parse.parse_qs(query, keep_blank_values=True).get(TOKEN_PARAM)
    if given:
        raise HandshakeError(
            f"wrong token: this is not the server whose {what} you used (each server has its "
            "own token, so this port now belongs to another server, perhaps somebody else's); "
            "use server.url or server.page_url of your own server",
            403,
        )
    raise HandshakeError(
        f"this server is private and the {what} has no token: if it is yours, use "
        "server.url or server.page_url (they end with ?wslab_token=...); if it is somebody "
        "else's, ask them for its link",
        403,
    )


def _check_proxy_context(headers: handshake.Headers, policy: Policy) -> None:
    """Refuse a request that came through another Jupyter user's proxy route.

    On a shared JupyterHub, ``/user/stu2/proxy/<port>/`` lets student 2 reach
    any port of the machine, student 1's included; jupyter-server-proxy says
    which route it served in ``X-ProxyContextPath`` (plain HTTP only).
    """
    if policy.hub_prefix is None:
        return
    prefix = policy.hub_prefix.rstrip("/") + "/"
    for name in _CONTEXT_HEADERS:
        context = _single(headers, name)
        if context is not None and not (context.rstrip("/") + "/").startswith(prefix):
            raise HandshakeError(
                f"this server belongs to another Jupyter user: it came through {context}, "
                "not through its owner's proxy; start a server of your own with wslab.serve()",
                403,
            )


def host_allowed(host: str, port: int | None = None, allowed_hosts: tuple[str, ...] = ()) -> bool:
    """The DNS rebinding rule: may a request with this ``Host`` be answered?

    DNS rebinding: a page from ``evil.example:8080`` makes its name resolve to
    127.0.0.1, and the browser then treats our server on port 8080 as part of
    the attacker's site; it sends ``Host: evil.example:8080`` (a page cannot
    change ``Host``). So a request whose ``Host`` names this server's own
    port must name this machine: ``localhost``, ``*.localhost``, an IP
    address (no DNS involved) or one of ``allowed_hosts``.

    A ``Host`` that names another port (or none, meaning 80 or 443) means the
    browser connected to something else that forwarded the request here: a
    proxy such as jupyter-server-proxy behind JupyterHub, which keeps the
    browser's ``Host`` (the hub's name) and checked the user's login before
    forwarding. Such a request is accepted; a private server still requires
    its token, which no rebinding page can know.

    Args:
        host: The ``Host`` header.
        port: The port this server listens on; None treats every request as
            direct (the strict rule).
        allowed_hosts: More names to accept.

    >>> host_allowed("127.0.0.1:8080", 8080), host_allowed("evil.example:8080", 8080)
    (True, False)
    >>> host_allowed("hub.example.org", 8080)  # through the hub's proxy
    True
    """
    name = _hostname(host)
    if name is None:
        return False
    if name == "localhost" or name.endswith(".localhost") or _is_ip(name):
        return True
    if name in (h.lower().rstrip(".") for h in allowed_hosts):
        return True
    return not _direct(host, port)


def _direct(host: str, port: int | None) -> bool:
    """Whether a browser that sent this ``Host`` connected to ``port`` itself."""
    if port is None:
        return True
    parsed = urllib.parse.urlsplit(f"//{host.strip()}")
    return (parsed.port or 80) == port


def _hostname(host: str) -> str | None:
    """The name part of a ``Host`` value, lower case; None if malformed."""
    try:
        parsed = urllib.parse.urlsplit(f"//{host.strip()}")
        parsed.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return None
    return parsed.hostname.rstrip(".") if parsed.hostname else None


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def origin_allowed(
    origin: str | None, host: str, port: int | None = None, origins: tuple[str, ...] = ()
) -> bool:
    """The ``Origin`` rule of section 10.2, with the scheme taken into account.

    :func:`wslab.handshake.origin_allowed` compares the Origin's host and
    port with ``Host``: a page from the place the WebSocket goes to. A wslab
    server speaks plain HTTP, so a browser that came straight to it has an
    ``http://`` origin; ``https://127.0.0.1:8080`` is another origin (RFC
    6454) and is refused. Behind a proxy (see :func:`host_allowed`) the
    page may be ``https://``: the proxy ends TLS.

    >>> origin_allowed("http://127.0.0.1:8080", "127.0.0.1:8080", 8080)
    True
    >>> origin_allowed("https://127.0.0.1:8080", "127.0.0.1:8080", 8080)
    False
    """
    # Direct: our page is http. Proxied: the scheme is the proxy's, unknown here.
    secure = False if _direct(host, port) else None
    return handshake.origin_allowed(origin, host, origins, secure=secure)


# -- binding and addresses --------------------------------------------------------


def check_port(port: object) -> int:
    """Return ``port`` if it is a TCP port (0: any free one).

    Raises:
        ServerStartError: With the range, for anything else.
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ServerStartError(
            f"port must be a whole number from 1 to 65535 (or 0 for any free port), got {port!r}"
        )
    return port


def check_bind(host: object, allow_remote: bool = False) -> str:
    """Return the address to listen on, refusing the network unless asked.

    ``localhost`` becomes ``127.0.0.1`` (one address, so ``port=0`` gives one
    port). Anything but loopback lets other machines connect: it needs
    ``allow_remote=True``, and then warns.

    Raises:
        ServerStartError: For a host that is not a str, or a remote one
            without ``allow_remote``.
    """
    if not isinstance(host, str):
        raise ServerStartError(f"host must be a str such as '127.0.0.1', got {host!r}")
    if host == "localhost":
        return "127.0.0.1"
    if not is_loopback(host):
        if not allow_remote:
            raise ServerStartError(
                f"host {host!r} would let other machines connect; keep the default "
                "'127.0.0.1', or pass allow_remote=True if you mean it"
            )
        warnings.warn(
            f"a wslab server on {host!r} accepts connections from other machines",
            stacklevel=3,
        )
    return host


def bind_error(host: str, port: int, exc: OSError) -> ServerStartError:
    """The one wording for a failed ``bind()``/``listen()``, with the fix."""
    if exc.errno == errno.EADDRINUSE:
        message = (
            f"port {port} is already in use by another program; "
            "pass port=0 (any free port) or another port"
        )
    elif exc.errno in (errno.EACCES, errno.EPERM):
        message = f"no permission to use port {port}; ports below 1024 need root: use port=0"
    elif exc.errno == errno.EADDRNOTAVAIL:
        message = (
            f"cannot listen on {host!r}: it is not an address of this machine; use '127.0.0.1'"
        )
    else:
        message = f"cannot listen on {host}:{port} ({exc.strerror or exc}); try port=0"
    return ServerStartError(message)


def _authority(host: str, port: int) -> str:
    """``host:port`` as a client reaches a server bound to ``host``."""
    # A server on every interface is reached on loopback.
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _query(token: str | None, name: str | None = None) -> str:
    params = [(k, v) for k, v in ((TOKEN_PARAM, token), ("name", name)) if v is not None]
    return "?" + urllib.parse.urlencode(params) if params else ""


def ws_url(
    host: str, port: int, path: str = "/chat", token: str | None = None, name: str | None = None
) -> str:
    """The WebSocket URL of a server: ``ws://127.0.0.1:8080/chat?wslab_token=...``.

    >>> ws_url("::", 8080, "/chat")
    'ws://[::1]:8080/chat'
    """
    return f"ws://{_authority(host, port)}{path}{_query(token, name)}"


def page_url(host: str, port: int, token: str | None = None, hub_prefix: str | None = None) -> str:
    """The link a student's browser should open for the page on ``/``.

    Under JupyterHub or Binder the browser is elsewhere: the link is the
    jupyter-server-proxy route, a path relative to the Jupyter server
    (``/user/stu1/proxy/8080/?wslab_token=...``), whatever the hub's public name.

    >>> page_url("127.0.0.1", 8080)
    'http://127.0.0.1:8080/'
    >>> page_url("127.0.0.1", 8080, hub_prefix="/user/stu1/")
    '/user/stu1/proxy/8080/'
    """
    if hub_prefix:
        return f"{hub_prefix.rstrip('/')}/proxy/{port}/{_query(token)}"
    return f"http://{_authority(host, port)}/{_query(token)}"


def hub_prefix(environ: Mapping[str, str]) -> str | None:
    """The kernel's ``JUPYTERHUB_SERVICE_PREFIX`` (e.g. ``/user/stu1/``), or None."""
    prefix = environ.get("JUPYTERHUB_SERVICE_PREFIX", "").strip()
    if not prefix.startswith("/"):
        return None
    return prefix if prefix.endswith("/") else prefix + "/"


def redact(text: str, token: str | None = None) -> str:
    """Hide a token in a URL, path or record text: ``?wslab_token=[redacted]``.

    Any ``token=`` query parameter is hidden, and so is ``token`` itself
    wherever it appears.
    """
    if token:
        text = text.replace(token, REDACTED)
    return _TOKEN_PARAM_RE.sub(rf"\g<1>{REDACTED}", text)
