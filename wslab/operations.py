"""The machinery of lessons 09 to 11, out of their cells: charts and demo servers.

Lessons keep their steps short; what a step calls lives here, to read with
``??`` in a notebook:

* charts: :func:`plot_backoff` (full jitter, RFC 6455 section 7.2.3),
  :func:`plot_attempts` (a client's reconnection attempts),
  :func:`plot_slow_consumer` (backpressure), :func:`plot_fanout` (latency
  across processes);
* :func:`sequential_broadcast`: the broadcast that waits for every member in
  turn, as exercise 04 starts it, to measure against the chat's queues;
* expiring tokens for lesson 10: :func:`make_token`, :func:`verify_token`
  and :func:`token_guard`, a server that checks the token in the first
  message and closes with 4001 when it expires;
* :func:`serve_frames`: lesson 11's forty-line server on the sans-I/O core,
  whose protocol decisions the student writes in ``respond(frame)``.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from websockets.asyncio.server import ServerConnection

from . import handshake, loop
from .closing import serialize_close
from .errors import HandshakeError, ProtocolError
from .frames import Frame, FrameDecoder, Opcode, Side, encode
from .reconnect import ReconnectingClient, backoff_schedule

if TYPE_CHECKING:
    from .scale import Fanout, SlowConsumer

__all__ = [
    "FrameServer",
    "make_token",
    "plot_attempts",
    "plot_backoff",
    "plot_fanout",
    "plot_slow_consumer",
    "sequential_broadcast",
    "serve_frames",
    "token_guard",
    "verify_token",
]


def _pyplot() -> Any:
    import matplotlib.pyplot as plt  # only when a chart is drawn: it is slow to import

    return plt


# -- charts --------------------------------------------------------------------------


def plot_backoff(base: float = 0.5, cap: float = 5.0, clients: int = 200, tries: int = 8) -> Any:
    """Each client's delay before its n-th retry (dots) under the bound (line)."""
    plt = _pyplot()
    failures = range(1, tries + 1)
    fig, ax = plt.subplots(figsize=(7, 3))
    xs = [n for _ in range(clients) for n in failures]  # one scatter: one artist, fast
    ys = [
        d
        for seed in range(clients)
        for d in backoff_schedule(tries, base=base, cap=cap, seed=seed)
    ]
    ax.scatter(xs, ys, s=5, alpha=0.15, color="tab:blue")
    ax.plot(failures, [min(cap, base * 2 ** (n - 1)) for n in failures], "k-", label="bound")
    ax.set(xlabel="failures so far", ylabel="delay before next try (s)", title="full jitter")
    ax.legend()
    return fig


def plot_attempts(client: ReconnectingClient) -> Any:
    """A client's attempts: red refused, green connected (a bar while open)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 2.5))
    for attempt in client.attempts:
        colour = "tab:green" if attempt.outcome == "open" else "tab:red"
        ax.scatter(attempt.at, attempt.number, color=colour, zorder=3)
        if attempt.outcome == "open":
            end = attempt.closed_at if attempt.closed_at is not None else attempt.at + 0.3
            ax.plot([attempt.at, end], [attempt.number] * 2, color=colour, lw=4)
    ax.set(
        xlabel="seconds since the client started",
        ylabel="attempt",
        title="reconnecting: red refused, green connected (bar: connection open)",
    )
    return fig


def plot_slow_consumer(fair: SlowConsumer, naive: SlowConsumer, limit: int) -> Any:
    """The slow member's queue under the chat's limit, and what the fast client got."""
    plt = _pyplot()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 5), sharex=True)
    top.plot([t for t, _ in fair.queue], [b / 2**20 for _, b in fair.queue], label="queue")
    top.axhline(limit / 2**20, color="tab:red", ls="--", label="max_pending: then 1008")
    top.set(ylabel="MiB waiting", title="the slow member's queue, in a chat with queues")
    top.legend()
    for run, label in ((fair, "per-member queues"), (naive, "sequential broadcast")):
        times = [t for t, _ in run.latency]
        bottom.step(times, range(1, len(times) + 1), where="post", label=label)
    bottom.axhline(fair.sent, color="grey", ls=":", label="sent")
    bottom.set(xlabel="seconds", ylabel="messages", title="what the fast client received")
    bottom.legend()
    fig.tight_layout()
    return fig


def plot_fanout(runs: Mapping[str, Fanout]) -> Any:
    """Fan-out latencies of several set-ups, as box plots (no outliers)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 2.8))
    ax.boxplot(
        [[t * 1000 for t in run.latencies] for run in runs.values()],
        orientation="horizontal",
        showfliers=False,
    )
    ax.set_yticks(range(1, len(runs) + 1), list(runs))
    ax.set(xlabel="fan-out latency (ms)", title="one process vs three joined by Valkey")
    fig.tight_layout()
    return fig


# -- the broadcast that waits ------------------------------------------------------


def sequential_broadcast() -> Callable[[ServerConnection], Any]:
    """A chat handler that sends each message to every member in turn, waiting each time.

    One member that reads nothing makes ``send`` wait forever, and with it
    the whole room: what lesson 09 measures against the chat's queues.
    """
    members: set[ServerConnection] = set()

    async def sequential(ws: ServerConnection) -> None:
        members.add(ws)
        try:
            async for message in ws:
                for other in list(members):
                    await other.send(message)  # waits until this member can take it
        finally:
            members.discard(ws)

    return sequential


# -- tokens that expire --------------------------------------------------------------


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


# -- lesson 11: a server whose protocol decisions the student writes ---------------------


class FrameServer:
    """A WebSocket echo server on the core, started by :func:`serve_frames`.

    Attributes:
        url: Its ``ws://`` URL, for the conformance checker.
    """

    def __init__(self, server: asyncio.Server) -> None:
        self._server = server
        self._forget: Callable[[], None] = lambda: None
        self.url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/"

    def stop(self) -> None:
        """Stop listening. Safe to call twice, from any thread."""
        self._forget()
        running = loop.get_loop()
        if not running.is_closed():
            running.call_soon_threadsafe(self._server.close)

    def __repr__(self) -> str:
        return f"<FrameServer {self.url}>"


def serve_frames(namespace: Mapping[str, Any]) -> FrameServer:
    """Serve WebSocket on the core, asking ``respond(frame)`` what to send back.

    ``respond`` and ``text_ok`` are looked up in ``namespace`` (a notebook's
    ``globals()``) at every frame, so that the server always runs the latest
    version a student wrote.

    The server does the opening handshake (RFC 6455 section 4.2) with
    :mod:`wslab.handshake`, reads frames with :class:`~wslab.frames.FrameDecoder`
    (which checks masking, reserved bits and opcodes, section 5), and for each
    frame writes what ``respond`` returns. A text frame that is a whole
    message goes through ``text_ok(payload)`` first: ``False`` fails the
    connection with 1007 (section 8.1). A broken rule fails it with the
    error's code (7.1.7), and a ``respond`` that raises with 1011; after a
    Close the server closes TCP (7.1.1). ``None`` from either function (a
    blank your-turn step) means "no opinion": echo, no check.
    """

    def answers(frame: Frame) -> Sequence[Frame]:
        text_ok = namespace.get("text_ok")
        if frame.opcode is Opcode.TEXT and frame.fin and callable(text_ok):
            if text_ok(frame.payload) is False:
                raise ProtocolError("invalid UTF-8 in a text message", 1007)
        respond = namespace.get("respond")
        result = respond(frame) if callable(respond) else None
        if result is None:
            return [frame] if frame.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT) else []
        return list(result)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = handshake.Request.parse(await reader.readuntil(b"\r\n\r\n"))
            key = handshake.check_request(request)
            writer.write(handshake.server_response(key).serialize())
            decoder = FrameDecoder(side=Side.SERVER)
            while data := await reader.read(65536):
                code = await _play(decoder, data, answers, writer)
                if code is not None:
                    if code:
                        writer.write(encode(Frame(Opcode.CLOSE, serialize_close(code, ""))))
                    return
        except (HandshakeError, ValueError, ConnectionError, asyncio.IncompleteReadError):
            return  # a bad request, or the client left
        finally:
            writer.close()

    server = loop.run_sync(asyncio.start_server(handle, "127.0.0.1", 0), timeout=10)
    frames = FrameServer(server)
    from .deploy import replace_on_rerun

    replace_on_rerun(frames.stop)
    frames._forget = loop.on_stop(frames.stop)  # contract 3.8
    return frames


async def _play(
    decoder: FrameDecoder,
    data: bytes,
    answers: Callable[[Frame], Sequence[Frame]],
    writer: asyncio.StreamWriter,
) -> int | None:
    """Answer the frames in ``data``: None to go on, 0 when closed, a code to fail with."""
    try:
        for frame in decoder.feed(data):
            for answer in answers(frame):
                if writer.is_closing():  # the client has gone
                    return 0
                writer.write(encode(answer))
            if frame.opcode is Opcode.CLOSE:
                return 0
    except ProtocolError as error:  # a broken rule: fail the connection (7.1.7)
        return error.code
    except Exception:  # a bug in respond(): internal error (7.4.1)
        return 1011
    await writer.drain()
    return None
