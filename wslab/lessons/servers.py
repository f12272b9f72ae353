"""The servers and handlers the lessons start, and what they have in common.

Every server here is a :class:`LessonServer`: it stops with
``wslab.stop_all()``, when the kernel shuts down or restarts, and when the
cell that started it runs again (the new run starts a fresh one); once
stopped, its :attr:`~LessonServer.port` raises :class:`ServerStopped`, whose
one line says what to re-run.

* :func:`reference_server`: the websockets library (an independent
  implementation) on a thread, echo by default (lessons 02 to 07);
* :func:`serve_frames`: lesson 11's server on the wslab core, whose
  protocol decisions the student writes in ``respond(frame)``;
* :func:`sequential_broadcast`: the chat handler that waits for every
  member in turn, which lesson 09 measures against the chat's queues.

Lessons 01 and 08 add their own (:mod:`wslab.lessons.polling`,
:mod:`wslab.lessons.push`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .. import handshake, jupyter, loop
from ..closing import serialize_close
from ..errors import ConnectError, HandshakeError, ProtocolError
from ..frames import Frame, FrameDecoder, Opcode, Side, encode

if TYPE_CHECKING:
    from websockets.asyncio.server import ServerConnection

__all__ = [
    "FrameServer",
    "LessonServer",
    "ReferenceServer",
    "ServerStopped",
    "reference_server",
    "sequential_broadcast",
    "serve_frames",
]


class ServerStopped(ConnectError):
    """A lesson's server was stopped (``wslab.stop_all()`` or a restart).

    A :class:`~wslab.errors.ConnectError`. A notebook shows its one-line
    message (what to re-run) without a traceback: the message says it all.
    """

    def _render_traceback_(self) -> list[str]:
        """How IPython shows it: the name and the message, no frames."""
        return [f"\x1b[0;31m{type(self).__name__}\x1b[0m: {self}"]


class LessonServer:
    """A lesson's server: a port while it runs, a clear error once it stopped.

    A subclass starts listening, calls :meth:`_started` with its port, and
    closes everything in :meth:`_close`.
    """

    #: What :class:`ServerStopped` calls it.
    what = "this server"
    _port: int
    _running = False

    def _started(self, port: int) -> None:
        """Note the port; stop on ``wslab.stop_all()``, at exit and when the cell re-runs."""
        self._port = port
        self._running = True
        self._forget = loop.on_stop(self.stop)  # contract 3.8
        self._forget_cell = jupyter.replace_on_rerun(self.stop)

    @property
    def running(self) -> bool:
        """Whether it still accepts connections."""
        return self._running

    @property
    def port(self) -> int:
        """Its port.

        Raises:
            ServerStopped: It was stopped; run the cell that starts it again.
        """
        if not self._running:
            raise ServerStopped(
                f"{self.what} was stopped (wslab.stop_all() or a kernel restart): "
                "run the cell that starts it again"
            )
        return self._port

    def stop(self) -> None:
        """Stop accepting connections and close the open ones; safe to call twice."""
        if not self._running:
            return
        self._running = False
        self._forget()
        self._forget_cell()
        self._close()

    def _close(self) -> None:
        raise NotImplementedError


# A reference server: the websockets library, on a thread of this kernel


def _echo(websocket: Any) -> None:
    for message in websocket:
        websocket.send(message)


class ReferenceServer(LessonServer):
    """A server of the websockets library (an independent implementation) on a thread.

    Attributes:
        server: The ``websockets.sync.server.Server``.
        host: Always 127.0.0.1.
    """

    what = "the websockets reference server"

    def __init__(self, handler: Callable[[Any], None] = _echo, **options: Any) -> None:
        from websockets.sync.server import serve

        # The library logs every refused handshake; the lessons show them instead.
        logging.getLogger("websockets").setLevel(logging.CRITICAL)
        options.setdefault("compression", None)
        if options.get("ssl") is not None:
            # websockets' sync connections read a TLS socket on one thread and
            # write it on another. TLS 1.3 session tickets, which the server
            # sends just after the TLS handshake, then cross the client's HTTP
            # request; about 1 connection in 130 hung until open_timeout
            # (400 tries here). A lesson's server needs no session resumption.
            options["ssl"].num_tickets = 0
        self.server = serve(handler, "127.0.0.1", 0, **options)
        self.host = "127.0.0.1"
        self._secure = options.get("ssl") is not None
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self._started(self.server.socket.getsockname()[1])

    @property
    def url(self) -> str:
        """``ws://127.0.0.1:PORT/`` (``wss://`` with TLS)."""
        return f"{'wss' if self._secure else 'ws'}://{self.host}:{self.port}/"

    def _close(self) -> None:
        self.server.shutdown()

    def __repr__(self) -> str:
        state = f"on {self.host}:{self._port}" if self._running else "stopped"
        return f"<websockets reference server {state}>"


def reference_server(
    handler: Callable[[Any], None] | None = None, **options: Any
) -> ReferenceServer:
    """Start a websockets server on a free port of 127.0.0.1; echo by default.

    Args:
        handler: ``def handler(websocket)`` of ``websockets.sync.server``.
        options: Passed to ``websockets.sync.server.serve`` (``compression``
            defaults to None, so frames show the payload as sent).
    """
    return ReferenceServer(handler or _echo, **options)


# Lesson 09: the broadcast that waits


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


# Lesson 11: a server whose protocol decisions the student writes


class FrameServer(LessonServer):
    """A WebSocket echo server on the core, started by :func:`serve_frames`."""

    what = "your frame server"

    def __init__(self, server: asyncio.Server) -> None:
        self._server = server
        self._started(server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        """Its ``ws://`` URL, for the conformance checker."""
        return f"ws://127.0.0.1:{self.port}/"

    def _close(self) -> None:
        running = loop.get_loop()
        if not running.is_closed():  # at exit the loop may be gone already
            running.call_soon_threadsafe(self._server.close)

    def __repr__(self) -> str:
        state = f"ws://127.0.0.1:{self._port}/" if self._running else "stopped"
        return f"<FrameServer {state}>"


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

    return FrameServer(loop.run_sync(asyncio.start_server(handle, "127.0.0.1", 0), timeout=10))


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
