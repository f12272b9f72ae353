"""The wire tap: a recording TCP proxy between a client and a server.

Browsers' developer tools show WebSocket *messages*; the tap shows the real
*bytes*. Point a client (a kernel client or a browser) at ``tap.url`` instead
of the server's URL: the tap forwards every byte unchanged and at once, and
only afterwards decodes a copy of it with wslab's own core, so watching never
changes what happens on the wire::

    client  <-->  Tap (127.0.0.1:random port)  <-->  server

What it records, as :class:`wslab.traffic.Record` objects in ``tap.records``:

* ``CONNECT`` when a client connects and the tap reaches the server;
* ``HTTP_REQUEST`` / ``HTTP_RESPONSE``: the opening handshake (RFC 6455
  section 4), or any other HTTP exchange such as ``GET /`` for the chat page;
* ``FRAME``: every frame (section 5.2), with its raw bytes (client frames are
  masked on the wire, section 5.3) and the decoded, unmasked :class:`Frame`;
* ``TCP_CLOSE``: each side's TCP FIN, in the order they happened (section 7.1.1
  says the server should close TCP first);
* ``ERROR``: bytes the tap could not decode; they were still forwarded.

Private and discreet, like the servers (issue #10):

* the tap requires the server's token (or, in front of a public server, a
  token of its own) in ``tap.url`` and ``tap.page_url``; a request without
  it is refused with 403 before anything is forwarded or recorded, and so is
  a browser sent by DNS rebinding (see :mod:`wslab.rules`);
* records, reprs, diagrams and hex views hide credentials: the values of
  ``Cookie``, ``Set-Cookie``, ``Authorization`` and ``Proxy-Authorization``
  and the token (the bytes on the wire are forwarded unchanged);
  ``Tap(..., show_credentials=True)`` shows them.

Everything runs on the shared background loop (:mod:`wslab.loop`).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import itertools
import os
import re
import time
import urllib.parse
import zlib
from collections.abc import Callable
from typing import Any, Protocol

from . import loop, peercred, rules
from .errors import HandshakeError, ProtocolError
from .frames import Frame, FrameDecoder, Header, Opcode
from .handshake import Headers, Request, Response, error_response, split_head
from .loop import get_loop, in_loop_thread, run_sync
from .traffic import Direction, Kind, Record, Recorder
from .uri import parse_uri

__all__ = ["ConnectionDecoder", "Tap", "taps"]

#: How many bytes the tap reads from a socket at once.
_CHUNK = 65536
#: The largest message the tap inflates for display (permessage-deflate).
_MAX_INFLATE = 2**20
#: The largest frame or HTTP body the tap holds to decode (a recorder's worth,
#: ``Recorder.max_bytes``). Bigger ones are still forwarded, only no longer
#: decoded: a frame header may claim 2**63 bytes and a body may run until TCP
#: closes, and holding them would grow the kernel without limit.
_MAX_DECODE = 16 * 2**20
#: Seconds to wait for the upstream server to accept a connection.
_CONNECT_TIMEOUT = 5.0
#: Headers whose values are credentials: hidden in records unless asked.
CREDENTIAL_HEADERS = ("Cookie", "Set-Cookie", "Authorization", "Proxy-Authorization")
_CREDENTIAL_LINE = re.compile(
    rb"(?im)^(" + b"|".join(h.encode() for h in CREDENTIAL_HEADERS) + rb")([ \t]*:[ \t]*)[^\r\n]*"
)

_running: list[Tap] = []


class _Upstream(Protocol):
    """Anything with a host, a port and a path, such as a wslab Server."""

    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...

    @property
    def path(self) -> str: ...


class _Mode(enum.Enum):
    """What the next bytes in one direction are expected to be."""

    HTTP = "http head"  # an HTTP request or response head
    BODY = "http body"  # the body of an HTTP message, until it is complete
    WAIT = "waiting for 101"  # after an Upgrade request, until the server answers
    FRAMES = "frames"  # after 101 Switching Protocols (section 4.2.2)
    BROKEN = "undecodable"  # after an error: forward, but no longer decode


class _Half:
    """The decoding state of one direction of one connection."""

    def __init__(self, direction: Direction) -> None:
        self.direction = direction
        self.mode = _Mode.HTTP
        self.buffer = bytearray()
        self.body_left: int | None = 0  # None: the body runs until TCP closes
        self.pending_head = b""
        self.pending_text = ""
        self.pending_kind = Kind.HTTP_REQUEST
        self.frames = FrameDecoder(side=None, max_size=_MAX_DECODE, allow_rsv1=True)
        self.fed = 0  # how many bytes of the buffer the frame decoder has seen
        # permessage-deflate (RFC 7692): one raw-deflate stream per direction.
        self.inflater: Any = None
        self.in_compressed_message = False


class ConnectionDecoder:
    """Turn the two byte streams of one TCP connection into records, sans I/O.

    The tap feeds it a copy of every chunk it forwards; tests and lessons can
    feed it bytes directly. It never raises on what it decodes: whatever it
    cannot understand becomes an ``ERROR`` record.

    Args:
        connection: The number that tells this connection's records apart.
        clock: Returns the current time in seconds, for ``Record.time``.
        show_credentials: Keep cookies, authorization headers and tokens in
            the HTTP records; by default their values are replaced by
            ``[redacted]`` (see :func:`redact_head`).
    """

    def __init__(
        self, connection: int, clock: Callable[[], float], *, show_credentials: bool = False
    ) -> None:
        self.connection = connection
        self.clock = clock
        self.show_credentials = show_credentials
        self._halves = {
            Direction.TO_SERVER: _Half(Direction.TO_SERVER),
            Direction.TO_CLIENT: _Half(Direction.TO_CLIENT),
        }
        self._closed_first: Direction | None = None

    def connect(self, text: str) -> Record:
        """The record of the TCP connection opening."""
        return self._record(Direction.NONE, Kind.CONNECT, text=text)

    def data(self, direction: Direction, data: bytes) -> list[Record]:
        """Decode ``data`` that travelled in ``direction``; return the new records."""
        half = self._halves[direction]
        if half.mode is _Mode.BROKEN:
            return [self._record(direction, Kind.ERROR, data, f"{len(data)} bytes not decoded")]
        half.buffer += data
        records: list[Record] = []
        progress = True
        try:
            while progress and len(half.buffer) > half.fed:
                progress = self._step(half, records)
        except Exception as error:
            # Decoding is only watching: whatever goes wrong in it must never
            # stop the bytes from flowing, so it becomes a record too.
            self._break(half, records, f"the tap cannot decode this: {error!r}")
        held = len(half.buffer) + len(half.pending_head)
        if half.mode in (_Mode.BODY, _Mode.WAIT) and held > _MAX_DECODE:
            # A body without an end, or a client that never waits for the 101.
            # (Frames are bounded by the frame decoder's max_size.)
            half.buffer.clear()  # not in the record either: it would fill the recorder
            half.pending_head = b""
            self._break(half, records, _too_big(f"{half.mode.value} of over {held:,} bytes"))
        return records

    def eof(self, direction: Direction, *, reset: bool = False) -> list[Record]:
        """Record one side closing its half of TCP; return the new records.

        That is a ``TCP_CLOSE`` record, after the HTTP response whose body ran
        until this close, if there is one.

        Args:
            direction: The way the FIN (or reset) travelled.
            reset: Whether the connection was reset (RST) rather than closed.
        """
        half = self._halves[direction]
        records: list[Record] = []
        if half.mode is _Mode.BODY and half.body_left is None:
            # A body without a length ends when the server closes TCP.
            half.pending_head += bytes(half.buffer)
            half.buffer.clear()
            self._finish_body(half, records)
        who = "client" if direction is Direction.TO_SERVER else "server"
        how = "reset TCP (RST)" if reset else "closed TCP"
        first = self._closed_first is None
        if first:
            self._closed_first = direction
        text = f"{who} {how}" + (" first" if first else "") + ("" if reset else " (FIN)")
        if half.buffer:
            text += f", {len(half.buffer)} bytes of an incomplete {half.mode.value} left"
        records.append(self._record(direction, Kind.TCP_CLOSE, bytes(half.buffer), text))
        return records

    @property
    def closed_first(self) -> Direction | None:
        """Which direction's FIN came first: TO_SERVER means the client closed first."""
        return self._closed_first

    # Decoding, one step at a time. Each step consumes bytes from the buffer
    # and returns whether it made progress (False: wait for more bytes).

    def _step(self, half: _Half, records: list[Record]) -> bool:
        if half.mode is _Mode.HTTP:
            return self._step_head(half, records)
        if half.mode is _Mode.BODY:
            return self._step_body(half, records)
        if half.mode is _Mode.FRAMES:
            return self._step_frames(half, records)
        return False  # WAIT: keep the bytes until the server answers.

    def _step_head(self, half: _Half, records: list[Record]) -> bool:
        try:
            parts = split_head(bytes(half.buffer))
        except HandshakeError as error:
            self._break(half, records, f"not HTTP: {error}")
            return False
        if parts is None:
            return False
        head, rest = parts
        half.buffer = bytearray(rest)
        try:
            if half.direction is Direction.TO_SERVER:
                self._request(half, Request.parse(head), head, records)
            else:
                self._response(half, Response.parse(head), head, records)
        except HandshakeError as error:
            half.buffer = bytearray(head + rest)
            self._break(half, records, f"malformed HTTP: {error}")
        return True

    def _request(self, half: _Half, request: Request, head: bytes, records: list[Record]) -> None:
        upgrade = "websocket" in request.headers.tokens("Upgrade")
        self._start_body(half, Kind.HTTP_REQUEST, head, request.headers, upgrade, records)
        if upgrade:
            # Frames may follow only after the server's 101 (section 4.1).
            switched = self._halves[Direction.TO_CLIENT].mode is _Mode.FRAMES
            half.mode = _Mode.FRAMES if switched else _Mode.WAIT

    def _response(
        self, half: _Half, response: Response, head: bytes, records: list[Record]
    ) -> None:
        client = self._halves[Direction.TO_SERVER]
        switching = response.status == 101
        # 1xx, 204 and 304 responses never have a body (RFC 9112 section 6.3).
        no_body = response.status < 200 or response.status in (204, 304)
        self._start_body(half, Kind.HTTP_RESPONSE, head, response.headers, no_body, records)
        if switching:
            half.mode = _Mode.FRAMES
            extensions = response.headers.tokens("Sec-WebSocket-Extensions")
            if any(t.split(";")[0].strip() == "permessage-deflate" for t in extensions):
                for each in self._halves.values():
                    each.inflater = zlib.decompressobj(wbits=-15)
        if client.mode is _Mode.WAIT:
            # The client's bytes after its Upgrade request are frames if the
            # server switched protocols, and HTTP again if it refused.
            client.mode = _Mode.FRAMES if switching else _Mode.HTTP
            more: list[Record] = []
            while client.buffer and self._step(client, more):
                pass
            records.extend(more)

    def _start_body(
        self,
        half: _Half,
        kind: Kind,
        head: bytes,
        headers: Headers,
        no_body: bool,
        records: list[Record],
    ) -> None:
        half.pending_head = head
        half.pending_kind = kind
        half.pending_text = head.split(b"\r\n", 1)[0].decode("latin-1")
        length = headers.get("Content-Length")
        if no_body or (length is None and kind is Kind.HTTP_REQUEST):
            half.body_left = 0
        elif length is not None and length.strip().isdigit():
            half.body_left = int(length)
        else:
            half.body_left = None  # The body ends when the server closes TCP.
        half.mode = _Mode.BODY
        self._step_body(half, records)

    def _step_body(self, half: _Half, records: list[Record]) -> bool:
        if half.body_left is None:
            return False
        take = min(half.body_left, len(half.buffer))
        half.pending_head += bytes(half.buffer[:take])
        del half.buffer[:take]
        half.body_left -= take
        if half.body_left:
            return False
        self._finish_body(half, records)
        return True

    def _finish_body(self, half: _Half, records: list[Record]) -> None:
        head, text = half.pending_head, half.pending_text
        if not self.show_credentials:
            head, text = redact_head(head), rules.redact(text)
        records.append(self._record(half.direction, half.pending_kind, head, text))
        half.pending_head = b""
        if half.mode is _Mode.BODY:
            half.mode = _Mode.HTTP

    def _step_frames(self, half: _Half, records: list[Record]) -> bool:
        # The buffer keeps every byte until a whole frame claims it, so that
        # an error record can carry all the bytes that were not decoded.
        new = bytes(half.buffer[half.fed :])
        half.fed = len(half.buffer)
        try:
            decoded = half.frames.feed_raw(new)
        except ProtocolError as error:
            if error.code == 1009:  # valid, only too big to hold: keep no bytes
                half.buffer.clear()
                self._break(half, records, _too_big(error.reason))
            else:
                self._break(half, records, f"undecodable frame: {error}")
            return False
        for raw in decoded:
            del half.buffer[: len(raw.data)]
            half.fed -= len(raw.data)
            text = self._describe(half, raw.frame)
            records.append(
                self._record(half.direction, Kind.FRAME, raw.data, text, raw.frame, raw.header)
            )
        return False  # Wait for more bytes: the frame decoder holds any partial frame.

    def _describe(self, half: _Half, frame: Frame) -> str:
        """Summarize a frame, inflating permessage-deflate payloads (RFC 7692)."""
        if half.inflater is None or frame.is_control:
            return str(frame)
        if frame.opcode is not Opcode.CONT:
            half.in_compressed_message = frame.rsv1
        if not half.in_compressed_message:
            return str(frame)
        try:
            data = half.inflater.decompress(frame.payload, _MAX_INFLATE)
            if frame.fin:
                # RFC 7692 7.2.2: the sender removed this empty block's tail.
                data += half.inflater.decompress(b"\x00\x00\xff\xff", _MAX_INFLATE)
        except zlib.error as error:
            half.inflater = None
            return f"{frame} (compressed, cannot inflate: {error})"
        if half.inflater.unconsumed_tail:
            half.inflater = None  # Too big to show; stop inflating this direction.
            return f"{frame} (compressed, too large to inflate)"
        shown = Frame(frame.opcode, data, fin=frame.fin)
        wire = len(frame.payload)
        return f"{shown} (compressed to {wire} byte{'' if wire == 1 else 's'})"

    def _break(self, half: _Half, records: list[Record], text: str) -> None:
        data = bytes(half.buffer)
        half.buffer.clear()
        half.mode = _Mode.BROKEN
        records.append(self._record(half.direction, Kind.ERROR, data, text))

    def _record(
        self,
        direction: Direction,
        kind: Kind,
        data: bytes = b"",
        text: str = "",
        frame: Frame | None = None,
        header: Header | None = None,
    ) -> Record:
        return Record(self.clock(), self.connection, direction, kind, data, frame, header, text)


def _too_big(what: str) -> str:
    """The ERROR record's text when the tap stops decoding a direction for its size."""
    return (
        f"too big for the tap to decode ({what}; it holds at most {_MAX_DECODE:,} bytes): "
        "forwarded unchanged, no longer decoded in this direction"
    )


def redact_head(head: bytes) -> bytes:
    """Hide credentials in an HTTP head: cookie and authorization values, tokens.

    >>> redact_head(b"GET /chat?wslab_token=s3cret HTTP/1.1\\r\\nCookie: a=1\\r\\n\\r\\n")
    b'GET /chat?wslab_token=[redacted] HTTP/1.1\\r\\nCookie: [redacted]\\r\\n\\r\\n'
    """
    hidden = rules.REDACTED.encode()
    head = _CREDENTIAL_LINE.sub(rb"\1\2" + hidden, head)
    return rules.redact(head.decode("latin-1")).encode("latin-1", "replace")


class Tap:
    """A recording proxy in front of a WebSocket server.

    Args:
        upstream: The server to watch: a wslab ``Server`` (anything with
            ``.host``, ``.port`` and ``.path``, and ``.token`` if it has one)
            or a URL like ``ws://127.0.0.1:8080/chat?wslab_token=...``.
        host: Where the tap listens; 127.0.0.1 keeps it on this machine.
        port: The tap's port; 0 (the default) picks a free one.
        token: ``True`` (the default): the upstream's token, or a new one for
            a public upstream; a ``str``: that token; ``None``: a public tap.
        show_credentials: Show cookies, authorization headers and tokens in
            the records (hidden by default; the bytes are forwarded as they are).

    Raises:
        ServerStartError: The port is invalid or already in use.
        ValueError: ``upstream`` is not a ``ws://`` URL or server.

    Example::

        tap = Tap(server)        # or server.tap()
        client = Client(tap)     # talk through the tap
        tap.diagram()            # the sequence diagram of what went over the wire
    """

    def __init__(
        self,
        upstream: _Upstream | str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | bool | None = True,
        show_credentials: bool = False,
    ):
        upstream_token: str | None
        if isinstance(upstream, str):
            uri = parse_uri(upstream)
            if uri.secure:
                raise ValueError(
                    f"{upstream!r} is wss://: the tap reads plain bytes, so tap a ws:// server"
                )
            target = urllib.parse.urlsplit(uri.path)
            tokens = urllib.parse.parse_qs(target.query).get(rules.TOKEN_PARAM)
            self.upstream_host, self.upstream_port, self.path = uri.host, uri.port, target.path
            upstream_token = tokens[0] if tokens else None
        elif all(hasattr(upstream, name) for name in ("host", "port", "path")):
            self.upstream_host = str(upstream.host)
            self.upstream_port = int(upstream.port)
            self.path = str(upstream.path)
            upstream_token = getattr(upstream, "token", None)
        else:
            raise ValueError(
                f"Tap() takes a server or a URL like ws://127.0.0.1:8080/chat, got {upstream!r}"
            )
        # A server that listens on every interface is reached on loopback.
        self.upstream_host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(
            self.upstream_host, self.upstream_host
        )
        rules.check_port(port)
        # The upstream's own secret passes through unchanged; a public upstream
        # still gets a private tap, with a secret of its own.
        self.token = rules.choose_token((upstream_token or True) if token is True else token)
        self.show_credentials = show_credentials
        self.host = rules.check_bind(host)
        self.recorder = Recorder()
        self._start_time = time.monotonic()
        self._ids = itertools.count(1)
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = run_sync(self._open(port), timeout=_CONNECT_TIMEOUT)
        _running.append(self)

    # Public API

    @property
    def url(self) -> str:
        """The WebSocket URL through the tap, with the upstream's path and the token."""
        return rules.ws_url(self.host, self.port, self.path, self.token)

    @property
    def page_url(self) -> str:
        """The link to the server's page through the tap (hub-aware, like ``Server.page_url``)."""
        return rules.page_url(self.host, self.port, self.token, rules.hub_prefix(os.environ))

    @property
    def records(self) -> list[Record]:
        """A copy of everything recorded so far, oldest first."""
        return list(self.recorder.records)

    @property
    def running(self) -> bool:
        """Whether the tap still accepts connections."""
        return self._server is not None

    def frames(self, connection: int | None = None) -> list[tuple[Direction, Frame]]:
        """The decoded frames so far, as ``(direction, frame)`` pairs.

        Args:
            connection: Only this connection's frames; None for all of them.
        """
        return [
            (r.direction, r.frame)
            for r in self.records
            if r.frame is not None and connection in (None, r.connection)
        ]

    def wait_closed(self, timeout: float = 5.0) -> None:
        """Wait until both directions of every connection through the tap are closed.

        Closing happens on the background thread, after the client's call
        returns; wait for it before drawing a diagram that should end with
        both TCP FINs (section 7.1.1).

        Raises:
            TimeoutError: A connection is still open after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while not self._all_closed():
            if time.monotonic() > deadline:
                raise TimeoutError(f"a connection through the tap is still open after {timeout} s")
            time.sleep(0.01)

    def _all_closed(self) -> bool:
        records = self.records
        closes = [r.connection for r in records if r.kind is Kind.TCP_CLOSE]
        return all(closes.count(c) == 2 for c in {r.connection for r in records})

    def clear(self) -> None:
        """Forget the records so far (connections stay open)."""
        self.recorder.clear()

    def stop(self) -> None:
        """Stop listening and close every connection through the tap."""
        server, self._server = self._server, None
        if server is None:
            return
        if self in _running:
            _running.remove(self)
        if in_loop_thread():
            # From a callback on the loop itself: it cannot wait for itself.
            task = get_loop().create_task(self._close(server))
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
            return
        run_sync(self._close(server), timeout=_CONNECT_TIMEOUT)

    def hex_view(self, connection: int | None = None, *, limit: int = 64) -> Any:
        """The recorded bytes as annotated, colour-coded hex (HTML in a notebook).

        Args:
            connection: Only this connection; None for all.
            limit: Show at most this many bytes of each frame's payload.
        """
        from .display import hex_view

        return hex_view(self._select(connection), limit=limit)

    def diagram(self, connection: int | None = None, *, times: bool = False) -> Any:
        """The sequence diagram of the recorded traffic (SVG in a notebook).

        Args:
            connection: Only this connection; None for all.
            times: Label each arrow with its time; off by default so that a
                lesson's stored output stays the same from run to run.
        """
        from .display import sequence_diagram

        return sequence_diagram(self._select(connection), times=times)

    def __enter__(self) -> Tap:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        upstream = f"{self.upstream_host}:{self.upstream_port}"
        url = self.url if self.show_credentials else rules.redact(self.url)
        return f"<Tap {url} -> {upstream}, {len(self.recorder.records)} records, {state}>"

    def _repr_html_(self) -> str:
        html: str = self.diagram()._repr_html_()
        return html

    # The proxy itself, on the background loop

    def _select(self, connection: int | None) -> list[Record]:
        return [r for r in self.records if connection in (None, r.connection)]

    def _clock(self) -> float:
        return time.monotonic() - self._start_time

    async def _open(self, port: int) -> int:
        try:
            self._server = await asyncio.start_server(self._handle, self.host, port)
        except OSError as error:
            raise rules.bind_error(self.host, port, error) from None
        sockname = self._server.sockets[0].getsockname()
        return int(sockname[1])

    async def _close(self, server: asyncio.Server) -> None:
        server.close()
        for writer in list(self._writers):
            writer.close()
        for task in list(self._handlers):
            task.cancel()
        if self._handlers:
            await asyncio.wait(list(self._handlers), timeout=_CONNECT_TIMEOUT)
        await server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._server is None:  # stop() has begun: take no new connection
            writer.close()
            return
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._writers.add(writer)
        decoder = ConnectionDecoder(
            next(self._ids), self._clock, show_credentials=self.show_credentials
        )
        upstream_writer: asyncio.StreamWriter | None = None
        try:
            first = await self._admit(reader, writer, decoder)
            if first is None:
                return
            try:
                upstream_reader, upstream = await asyncio.wait_for(
                    asyncio.open_connection(self.upstream_host, self.upstream_port),
                    _CONNECT_TIMEOUT,
                )
            except (OSError, TimeoutError) as error:
                where = f"{self.upstream_host}:{self.upstream_port}"
                self.recorder.add(
                    decoder._record(
                        Direction.NONE,
                        Kind.ERROR,
                        text=f"cannot reach the server at {where} ({error}): is it running?",
                    )
                )
                return
            upstream_writer = upstream
            self._writers.add(upstream)
            peer = writer.get_extra_info("peername")
            client = f"{peer[0]}:{peer[1]}" if peer else "client"
            self.recorder.add(decoder.connect(f"{client} connected through the tap"))
            if first:
                upstream.write(first)
                for record in decoder.data(Direction.TO_SERVER, first):
                    self.recorder.add(record)
            await asyncio.gather(
                self._pump(reader, upstream, Direction.TO_SERVER, decoder),
                self._pump(upstream_reader, writer, Direction.TO_CLIENT, decoder),
            )
        except asyncio.CancelledError:
            # stop() cancels us; end normally, since asyncio's streams log a
            # cancelled connection handler as an error (Python 3.11).
            pass
        finally:
            for each in (writer, upstream_writer):
                if each is not None:
                    each.close()
                    self._writers.discard(each)
            self._handlers.discard(task)

    async def _admit(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        decoder: ConnectionDecoder,
    ) -> bytes | None:
        """Read the first request head and apply the access rules (:func:`wslab.rules.refusal`).

        The head is held back until it is whole, so that nothing reaches the
        server, nor the records, before the request passed: a refused request
        gets its 403 from the tap and leaves one ERROR record, without its
        headers (cookies included).

        Returns:
            The bytes to forward, or None when the request was refused.
        """
        # Only the access rules apply: the path is the upstream's business.
        policy = rules.Policy(token=self.token, port=self.port, owner_uid=os.getuid())
        buffer = b""
        answer: rules.Reply | None = None
        try:
            async with asyncio.timeout(rules.Limits().handshake_timeout):
                while (parsed := _parse_first(buffer)) is None:
                    data = await reader.read(_CHUNK)
                    if not data:
                        return buffer if self.token is None else None
                    buffer += data
        except TimeoutError:
            parsed = None
        if isinstance(parsed, tuple):
            peer = writer.get_extra_info("peername"), writer.get_extra_info("sockname")
            answer = rules.refusal(
                parsed[0], policy, "tap link", peer_uid=peercred.peer_uid(*peer)
            )
        elif self.token is not None:  # not HTTP, or too slow: a private tap says no
            answer = parsed if parsed is not None else _too_slow()
        if answer is None:
            return buffer
        self.recorder.add(
            decoder._record(Direction.NONE, Kind.ERROR, text=f"refused: {answer.text}")
        )
        writer.write(answer.response.serialize())
        with contextlib.suppress(OSError):
            await writer.drain()
        return None

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        direction: Direction,
        decoder: ConnectionDecoder,
    ) -> None:
        """Copy one direction until EOF: forward first, then decode the copy."""
        while True:
            reset = False
            try:
                data = await reader.read(_CHUNK)
            except OSError:
                data, reset = b"", True  # A reset ends this direction like a FIN does.
            if not data:
                for record in decoder.eof(direction, reset=reset):
                    self.recorder.add(record)
                # Pass the FIN on (a half-close), so each end sees what the
                # other really did; closing the closing handshake is in 7.1.1.
                try:
                    if writer.can_write_eof() and not writer.is_closing():
                        writer.write_eof()
                except OSError:
                    pass
                return
            try:
                writer.write(data)
                await writer.drain()
            except OSError:
                pass  # The other side is gone; its reader reports that.
            for record in decoder.data(direction, data):
                self.recorder.add(record)


def _parse_first(buffer: bytes) -> tuple[Request, bytes] | rules.Reply | None:
    """The first request of a connection, a Reply if it is not HTTP, None for more."""
    method = buffer[:8].split(b" ", 1)[0]
    if method and not (method.isalpha() and method.isupper()):
        return rules.read_request(b"not HTTP\r\n\r\n")  # a 400 that says so
    return rules.read_request(buffer)


def _too_slow() -> rules.Reply:
    return rules.Reply(
        error_response(HandshakeError("no whole request in time", 408)),
        "no whole request in time",
    )


def _stop_taps() -> None:
    for tap in list(_running):
        tap.stop()


loop.on_stop(_stop_taps)


def taps() -> list[Tap]:
    """The taps that are running in this kernel."""
    return list(_running)
