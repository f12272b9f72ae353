"""Ready-made connection handlers for :func:`wslab.serve`: ``echo`` and ``chat``.

A handler is an ``async def handler(ws)`` that receives one WebSocket
connection (a ``websockets`` ``ServerConnection``) and returns when it is done
with it; the server then runs the closing handshake (RFC 6455 section 7).
Students write their own handlers the same way.

Echo
    Answers every text message with ``You sent: <message>`` and sends every
    binary message back unchanged (the same echo as ``wslab serve``).

Chat
    A single chat room. The naming convention, shared by the browser page and
    the ``ChatClient`` widget:

    * a client picks its name with the query parameter of the WebSocket URL,
      ``ws://127.0.0.1:8080/chat?name=Alice``, or at any time by sending the
      text message ``/name Alice``; without either it is called ``guest-N``;
    * every text message is broadcast to everyone, the sender included, as
      ``Alice: <message>``;
    * notices start with ``* ``: ``* Alice joined``, ``* Alice left``,
      ``* guest-3 is now Alice``;
    * binary messages are relayed unchanged to everyone else.

The chat's rules (names, notices, the ``/name`` command) live in
:mod:`wslab.chat`, shared with the raw server's chat; this module only
delivers what :class:`wslab.chat.Room` decides.

Delivery, as websockets' own ``broadcast()``: a message goes straight into
each member's write buffer, in one loop, without a task per member. The
write buffer is the member's queue (what a browser calls ``bufferedAmount``):
``websockets`` empties it into the socket as fast as the client reads.

Backpressure policy (what happens to a client that never reads): the chat
never waits for one slow client while delivering to the others. When a
message would make more than ``max_pending`` bytes (``Limits.max_write_buffer``,
4 MiB) wait for one client, that client gets no more messages and is closed
with code 1008 (policy violation, RFC 6455 section 7.4.1) and the reason
``too slow: not reading messages``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeAlias, cast

from websockets.asyncio.server import ServerConnection, broadcast
from websockets.protocol import State

from . import chat
from .closing import CloseCode
from .rules import Limits

__all__ = ["AsyncHandler", "Chat", "close_or_abort", "echo", "resolve", "send_now"]

#: What ``wslab.serve(handler=...)`` accepts once names are resolved: an
#: ``async def handler(ws)`` (the raw server's handlers are classes instead).
AsyncHandler: TypeAlias = Callable[[ServerConnection], Awaitable[None]]


async def echo(ws: ServerConnection) -> None:
    """Answer text with ``You sent: <message>``; return binary unchanged."""
    async for message in ws:
        if isinstance(message, str):
            await ws.send(f"You sent: {message}")
        else:
            await ws.send(message)


@dataclass(eq=False)
class _Member:
    """One chat participant."""

    ws: ServerConnection
    dropped: bool = False

    @property
    def pending(self) -> int:
        """Bytes waiting for this member: its write buffer, not yet in the socket."""
        return self.ws.transport.get_write_buffer_size()


class Chat:
    """A chat room: one instance per server, so rooms never mix.

    Args:
        max_pending: The most bytes that may wait for one client before it is
            closed with 1008 (see the module docstring); by default the
            server rules' ``max_write_buffer``.
    """

    def __init__(self, max_pending: int | None = None) -> None:
        self.max_pending = Limits().max_write_buffer if max_pending is None else max_pending
        self.room = chat.Room()
        self.members: dict[ServerConnection, _Member] = {}
        # Keep references to background close tasks so they are not garbage collected.
        self._tasks: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        return f"<Chat room with {len(self.members)} member(s)>"

    @property
    def names(self) -> list[str]:
        """The names of everyone in the room."""
        return list(self.room.names.values())

    async def __call__(self, ws: ServerConnection) -> None:
        self.members[ws] = _Member(ws)
        joined = self.room.join(ws, ws.request.path if ws.request is not None else "")
        # Names first: the members may look at server.clients as soon as they hear.
        _set_client_name(ws, self.room.names[ws])
        self._deliver(joined)
        try:
            async for message in ws:
                delivery = self.room.receive(ws, message)
                if isinstance(message, str) and message.startswith(chat.NAME_COMMAND):
                    _set_client_name(ws, self.room.names[ws])
                self._deliver(delivery)
        finally:
            del self.members[ws]
            self._deliver(self.room.leave(ws))

    def _deliver(self, delivery: chat.Delivery | None) -> None:
        if delivery is not None:
            # The room's members are this handler's connections.
            skip = self.members.get(cast(ServerConnection, delivery.skip))
            self.broadcast(delivery.message, skip)

    def broadcast(self, message: str | bytes, skip: _Member | None = None) -> None:
        """Send ``message`` to every member (but ``skip``) now; never waits."""
        data = message.encode() if isinstance(message, str) else message
        recipients = [
            member.ws
            for member in self.members.values()
            if member is not skip and self._can_send(member, len(data))
        ]
        send_now(recipients, data, text=isinstance(message, str))

    def send_to(self, member: _Member, message: str) -> None:
        """Send ``message`` to one member now, under the same policy."""
        data = message.encode()
        if self._can_send(member, len(data)):
            send_now([member.ws], data, text=True)

    def _can_send(self, member: _Member, size: int) -> bool:
        """Whether ``size`` more bytes may go to ``member`` now.

        Not to a member that is leaving. A member for which more than
        ``max_pending`` bytes would wait is closed with 1008 instead.
        """
        if member.dropped or member.ws.protocol.state is not State.OPEN:
            return False
        if member.pending + size <= self.max_pending:
            return True
        # Why close instead of waiting: one client that never reads must not
        # stall the room, nor grow the server's memory.
        member.dropped = True
        task = asyncio.create_task(_drop(member.ws))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return False


def send_now(connections: list[ServerConnection], data: bytes, *, text: bool) -> None:
    """Write a message to every connection at once: websockets' own ``broadcast()``.

    It writes without waiting (no backpressure: :class:`Chat` checks each
    member's write buffer first). A wslab server records each delivery, as it
    does what ``ws.send()`` sends, so the traffic log misses nothing.
    """
    broadcast(connections, data, text=text)
    server = getattr(connections[0], "wslab_server", None) if connections else None
    if server is not None:
        server.record_sent(connections, data, text=text)


async def close_or_abort(
    ws: ServerConnection, code: int = CloseCode.NORMAL_CLOSURE, reason: str = ""
) -> None:
    """Close with ``code``, but never wait on an unresponsive client forever.

    The Close frame queues behind everything a client did not read, so with a
    client that never reads the closing handshake cannot finish: after the
    server's ``close_timeout`` (``Limits.close_timeout``) the TCP connection
    is simply dropped (RFC 6455 section 7.1.1 lets a server do that).
    """
    timeout = ws.close_timeout if ws.close_timeout is not None else Limits().close_timeout
    try:
        async with asyncio.timeout(timeout):
            await ws.close(code, reason)
    except TimeoutError:
        ws.transport.abort()


async def _drop(ws: ServerConnection) -> None:
    """Apply the backpressure policy: close a client that does not read with 1008."""
    await close_or_abort(ws, CloseCode.POLICY_VIOLATION, "too slow: not reading messages")


def _set_client_name(ws: Any, name: str) -> None:
    """Show the chat name in ``server.clients`` when the server tracks it."""
    info = getattr(ws, "wslab_client", None)
    if info is not None:
        info.name = name


def resolve(handler: str | AsyncHandler) -> AsyncHandler:
    """Turn ``"echo"``, ``"chat"`` or an ``async def handler(ws)`` into a handler.

    ``"chat"`` gives a fresh :class:`Chat` room each time, so two servers never
    share a room.

    Raises:
        ValueError: For an unknown name or something that is not an async function.
    """
    if handler == "echo":
        return echo
    if handler == "chat":
        return Chat()
    if isinstance(handler, str):
        raise ValueError(
            f"unknown handler {handler!r}: use 'echo', 'chat' or your own async def handler(ws)"
        )
    if not callable(handler):
        raise ValueError(
            f"handler must be 'echo', 'chat' or an async def handler(ws), got {handler!r}"
        )
    if not (asyncio.iscoroutinefunction(handler) or isinstance(handler, Chat)):
        call = getattr(handler, "__call__", None)  # noqa: B004 - an async __call__ counts
        if not asyncio.iscoroutinefunction(call):
            name = getattr(handler, "__name__", repr(handler))
            raise ValueError(
                f"handler {name} must be defined with 'async def {name}(ws):' "
                "(a plain def cannot await ws.recv())"
            )
    return handler
