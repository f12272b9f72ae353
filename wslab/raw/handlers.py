"""What a :class:`~wslab.raw.RawServer` does with its clients: handlers.

A handler gets three calls for each client, from that client's thread:
:meth:`Handler.on_open` once the handshake is done, :meth:`Handler.on_message`
for each whole message, :meth:`Handler.on_close` when it is gone.
:meth:`Peer.send <wslab.raw.Peer.send>` never blocks, so a handler may send to
any client, however slowly that one reads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from .. import chat
from ..errors import ConnectionClosed
from .peer import Peer

__all__ = ["ChatHandler", "EchoHandler", "Handler", "HandlerSpec", "make_handler"]


class Handler:
    """What a :class:`~wslab.raw.RawServer` does with its clients; override what you need."""

    def on_open(self, peer: Peer) -> None:
        """A client completed the opening handshake."""

    def on_message(self, peer: Peer, message: str | bytes) -> None:
        """A client sent a whole message (fragments are already joined)."""

    def on_close(self, peer: Peer) -> None:
        """A client left, after a closing handshake or not."""


class EchoHandler(Handler):
    """Answer text with ``You sent: <message>``; send binary back unchanged."""

    def on_message(self, peer: Peer, message: str | bytes) -> None:
        peer.send(f"You sent: {message}" if isinstance(message, str) else message)


class ChatHandler(Handler):
    """One chat room, with the rules of :mod:`wslab.chat` (as ``wslab.handlers.Chat``).

    * A client's name is the ``?name=`` query parameter of the WebSocket URL
      (``ws://127.0.0.1:8080/chat?name=Ada``), else ``guest-<n>``; sending
      ``/name Ada`` renames it.
    * Every text message goes to everyone, the sender included, as ``Ada: text``.
    * Notices start with ``* ``: ``* Ada joined``, ``* Ada left``,
      ``* guest-3 is now Ada``; no name can start with ``*``.
    * Binary messages go unchanged to everyone else.

    Attributes:
        room: The :class:`wslab.chat.Room`: who is here, under which name.
    """

    def __init__(self) -> None:
        self.room = chat.Room()
        # One lock for the room and its deliveries: every member gets the
        # messages in the same order. Sending never blocks, so holding it is cheap.
        self._lock = threading.Lock()

    @property
    def peers(self) -> set[Peer]:
        """The clients in the room."""
        with self._lock:
            return {peer for peer in self.room.names if isinstance(peer, Peer)}

    def on_open(self, peer: Peer) -> None:
        with self._lock:
            self._deliver(self.room.join(peer, peer.request.path))
            peer.name = self.room.names[peer]

    def on_message(self, peer: Peer, message: str | bytes) -> None:
        with self._lock:
            self._deliver(self.room.receive(peer, message))
            peer.name = self.room.names[peer]

    def on_close(self, peer: Peer) -> None:
        with self._lock:
            delivery = self.room.leave(peer)
            if delivery is not None:
                self._deliver(delivery)

    def broadcast(self, message: str | bytes, exclude: Peer | None = None) -> None:
        """Send ``message`` to every client in the room but ``exclude``."""
        with self._lock:
            self._deliver(chat.Delivery(message, exclude))

    def _deliver(self, delivery: chat.Delivery) -> None:
        for member in self.room.names:
            if member is not delivery.skip and isinstance(member, Peer):
                try:
                    member.send(delivery.message)
                except ConnectionClosed:
                    pass  # That client is closing or was dropped; its own thread cleans up.


class _FunctionHandler(Handler):
    """Wrap a plain ``fn(peer, message)`` as a handler."""

    def __init__(self, function: Callable[[Peer, str | bytes], None]) -> None:
        self.function = function

    def on_message(self, peer: Peer, message: str | bytes) -> None:
        self.function(peer, message)


#: What :class:`~wslab.raw.RawServer` accepts as its handler.
HandlerSpec = str | Handler | Callable[[Peer, str | bytes], None]


def make_handler(handler: HandlerSpec) -> Handler:
    """Turn ``"echo"``, ``"chat"``, a :class:`Handler` or ``fn(peer, message)`` into a handler.

    Raises:
        ValueError: For anything else, naming what is accepted.
    """
    if isinstance(handler, Handler):
        return handler
    if handler == "echo":
        return EchoHandler()
    if handler == "chat":
        return ChatHandler()
    if callable(handler):
        return _FunctionHandler(handler)
    raise ValueError(
        f"unknown handler {handler!r}: use 'echo', 'chat', a Handler, or fn(peer, message)"
    )
