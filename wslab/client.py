"""WebSocket clients for notebooks, shaped like the browser's WebSocket API.

Two clients share one implementation (the ``websockets`` library's asyncio
client, with compression off so the wire shows plain payloads):

* :class:`Client` is synchronous. Its I/O runs on wslab's background loop
  (:mod:`wslab.loop`), so it works in a plain cell even when the server runs
  in the same kernel::

      ws = wslab.Client(server)          # or a URL: "ws://127.0.0.1:8080/chat"
      ws.send("hello")
      ws.recv(timeout=2)                 # 'You sent: hello'
      ws.close()

* :class:`AsyncClient` runs on the caller's loop, for top-level ``await``::

      async with wslab.AsyncClient(server) as ws:
          await ws.send("hello")
          await ws.recv()

Callbacks carry the browser's names, so the JavaScript API maps one to one:

==========================  ==========================================
JavaScript                  wslab
==========================  ==========================================
``ws.onopen = () => …``     ``on_open()``
``ws.onmessage = (e) => …`` ``on_message(message)`` (``e.data``)
``ws.onerror = () => …``    ``on_error(error)`` (a :class:`ConnectError`
                            or the exception that broke the connection)
``ws.onclose = (e) => …``   ``on_close(code, reason)``
``ws.readyState``           ``ready_state``: ``"CONNECTING"``, ``"OPEN"``,
                            ``"CLOSING"``, ``"CLOSED"``
==========================  ==========================================

Callbacks of :class:`Client` run on the background loop's thread: keep them
short, update state or widgets in them, and do not print (ipykernel sends a
thread's output to whichever cell ran last). ``send()`` works inside a
callback; blocking calls (``recv``, ``close``) do not.

Every message also lands in ``messages``, a list, whether or not anyone
calls ``recv()``.

Re-running a notebook cell closes the clients its earlier run opened (code
1001, going away), as reloading a page closes its WebSockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import socket
import sys
import traceback
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Future
from types import TracebackType
from typing import Any, Protocol

import websockets.asyncio.client
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed as WebSocketsClosed
from websockets.exceptions import InvalidHandshake, InvalidStatus, InvalidURI

from . import jupyter, loop
from .closing import serialize_close
from .errors import ConnectError, ConnectionClosed
from .rules import redact
from .uri import is_loopback, parse_uri

__all__ = ["AsyncClient", "Client", "ConnectError", "ConnectionClosed", "ConnectionClosedError"]

#: A message's data: ``str`` for text, ``bytes`` for binary (websockets' ``Data``).
Data = str | bytes

#: The name the lessons use; the same exception as :class:`wslab.ConnectionClosed`.
ConnectionClosedError = ConnectionClosed


class _HasURL(Protocol):
    @property
    def url(self) -> str: ...


# Marks the end of the message stream in the receive queues.
_CLOSED = object()


def _describe(url: str, exc: BaseException, timeout: float) -> str:
    """Turn a connection failure into one line that names the fix (the token hidden)."""
    url = redact(url)
    if isinstance(exc, InvalidStatus):
        response = exc.response
        body = response.body.decode(errors="replace").strip().splitlines() if response.body else []
        detail = f": {body[0]}" if body else ""
        return (
            f"the server at {url} refused the WebSocket handshake with HTTP "
            f"{response.status_code} {response.reason_phrase}{detail}"
        )
    if isinstance(exc, ConnectionRefusedError):
        return (
            f"cannot connect to {url}: connection refused; is the server running "
            "on that port? (wslab.servers() lists the servers of this kernel)"
        )
    if isinstance(exc, socket.gaierror):
        return f"cannot connect to {url}: unknown host; check the spelling of the host name"
    if isinstance(exc, TimeoutError):
        return f"no answer from {url} within {timeout:g} s; is it a WebSocket server?"
    if isinstance(exc, InvalidHandshake):
        return f"{url} did not answer like a WebSocket server ({exc})"
    if isinstance(exc, OSError):
        return f"cannot connect to {url}: {exc.strerror or exc}"
    return f"cannot connect to {url}: {type(exc).__name__}: {exc}"


def _resolve_url(url_or_server: str | _HasURL) -> str:
    """Accept a URL or anything with a ``.url`` (a Server, a Tap)."""
    url = url_or_server if isinstance(url_or_server, str) else getattr(url_or_server, "url", None)
    if not isinstance(url, str):
        raise ConnectError(
            f"expected a ws:// URL or a server, got {url_or_server!r}; "
            "for example wslab.Client('ws://127.0.0.1:8080/chat')"
        )
    try:
        parse_uri(url)
    except (TypeError, ValueError) as exc:
        raise ConnectError(str(exc)) from None
    return url


def _call(callback: Callable[..., Any] | None, *args: Any) -> None:
    """Run a student's callback; a bug in it is shown, not swallowed, not fatal."""
    if callback is None:
        return
    try:
        callback(*args)
    except Exception:
        name = getattr(callback, "__name__", "callback")
        print(f"wslab: the callback {name} raised an exception:", file=sys.stderr)
        traceback.print_exc(file=sys.stderr)


class _Connection(ClientConnection):
    """websockets' client connection, which drops TCP at its close deadline by itself."""

    _close_timer: asyncio.TimerHandle | None = None

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.close_deadline is not None and self._close_timer is None:
            # The server's Close frame, or a frame that failed the connection,
            # set the deadline; but only a send() or close() waits for it, not
            # recv(), so a server that kept TCP open (and kept sending) made
            # recv() wait for the next keepalive ping, 20 s, not ``timeout``.
            self._close_timer = self.loop.call_at(self.close_deadline, self.transport.abort)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._close_timer is not None:
            self._close_timer.cancel()
        super().connection_lost(exc)


class _Session:
    """One connection's state and I/O, on one event loop (the Client's or the caller's)."""

    def __init__(
        self,
        url: str,
        *,
        on_open: Callable[[], Any] | None,
        on_message: Callable[[Data], Any] | None,
        on_error: Callable[[Exception], Any] | None,
        on_close: Callable[[int, str], Any] | None,
        origin: str | None,
        timeout: float,
        deliver: Callable[[object], None],
    ) -> None:
        self.url = url
        self.on_open = on_open
        self.on_message = on_message
        self.on_error = on_error
        self.on_close = on_close
        self.origin = origin
        self.timeout = timeout
        self.deliver = deliver
        self.ready_state = "CONNECTING"
        self.messages: list[Data] = []
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self.ws: ClientConnection | None = None
        self.reader: asyncio.Task[None] | None = None

    async def open(self) -> None:
        """Connect (RFC 6455 section 4.1), then start reading in a task."""
        host = parse_uri(self.url).host
        try:
            self.ws = await websockets.asyncio.client.connect(
                self.url,
                origin=self.origin,  # type: ignore[arg-type]
                open_timeout=self.timeout,
                close_timeout=self.timeout,
                compression=None,
                create_connection=_Connection,
                # A proxy from the environment must not capture local servers.
                proxy=None if is_loopback(host) else True,
            )
        except asyncio.CancelledError:
            self.ready_state = "CLOSED"  # given up on (a blocking constructor timed out)
            self.deliver(_CLOSED)
            raise
        except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as exc:
            status = exc.response.status_code if isinstance(exc, InvalidStatus) else None
            error = ConnectError(_describe(self.url, exc, self.timeout), status)
            self.ready_state = "CLOSED"
            self.close_code = 1006  # closed abnormally, as a browser reports it (7.1.5)
            self.close_reason = ""
            self.deliver(_CLOSED)
            _call(self.on_error, error)
            _call(self.on_close, 1006, "")
            raise error from None
        self.ready_state = "OPEN"
        _call(self.on_open)
        # Named, so that the watchdog can say whose callback blocks the loop.
        self.reader = asyncio.get_running_loop().create_task(
            self._read(self.ws), name=f"wslab the callbacks of the client of {redact(self.url)}"
        )

    async def _read(self, ws: ClientConnection) -> None:
        error: Exception | None = None
        try:
            async for message in ws:
                self.messages.append(message)
                self.deliver(message)
                _call(self.on_message, message)
        except WebSocketsClosed as exc:
            error = exc
        finally:
            self.ready_state = "CLOSED"
            self.close_code = ws.protocol.close_code
            self.close_reason = ws.protocol.close_reason or ""
            self.deliver(_CLOSED)
            # Like a browser: a connection that ends without a closing
            # handshake (1006, RFC 6455 7.1.5) fires error, then close. A clean
            # close fires only close, whatever its code.
            if error is not None and ws.protocol.close_rcvd is None:
                _call(self.on_error, error)
            _call(self.on_close, self.close_code, self.close_reason)

    def _open_ws(self) -> ClientConnection:
        if self.ws is None or self.ready_state != "OPEN":
            state = self.ready_state
            raise self.closed(
                f"cannot send: the connection is {state}"
                + (f" (close code {self.close_code})" if self.close_code else "")
                + "; open a new client"
            )
        return self.ws

    def closed(self, message: str) -> ConnectionClosed:
        """The exception for "closed": the close code and reason, and ``message``."""
        return ConnectionClosed(
            self.close_code if self.close_code is not None else 1006,
            self.close_reason or "",
            message=message,
        )

    async def send(self, message: Data) -> None:
        if not isinstance(message, str | bytes | bytearray | memoryview):
            raise TypeError(
                f"send() takes str (text) or bytes (binary), got {type(message).__name__}"
            )
        ws = self._open_ws()
        try:
            await ws.send(message)
        except WebSocketsClosed:
            self.close_code = ws.protocol.close_code
            raise self.closed(
                f"cannot send: the connection closed (code {ws.protocol.close_code})"
            ) from None

    async def close(self, code: int, reason: str) -> None:
        """Start the closing handshake (7.1.2) and wait for it to finish.

        Raises:
            ValueError: A code that may not be sent, or a reason over 123 bytes.
        """
        serialize_close(code, reason)  # the core's check, with its clear message
        if self.ws is None or self.ready_state == "CLOSED":
            return
        self.ready_state = "CLOSING"
        await self.ws.close(code, reason)
        if self.reader is not None:
            with contextlib.suppress(Exception):
                await self.reader

    def describe(self, name: str) -> str:
        url = redact(self.url)  # a repr may end up in a notebook: keep the token out
        return f"<wslab.{name} {url} {self.ready_state}, {len(self.messages)} message(s)>"


class _Browserlike:
    """What both clients show of their connection, with the browser's names."""

    _session: _Session

    @property
    def url(self) -> str:
        return self._session.url

    @property
    def ready_state(self) -> str:
        """``"CONNECTING"``, ``"OPEN"``, ``"CLOSING"`` or ``"CLOSED"``."""
        return self._session.ready_state

    @property
    def messages(self) -> list[Data]:
        """Every message received so far, in order."""
        return self._session.messages

    @property
    def close_code(self) -> int | None:
        """The close code the server sent (1006 if the connection just broke)."""
        return self._session.close_code

    @property
    def close_reason(self) -> str | None:
        return self._session.close_reason


class Client(_Browserlike):
    """A synchronous WebSocket client whose I/O runs on wslab's background loop.

    Args:
        url_or_server: A ``ws://`` URL, or a server or tap (anything with ``.url``).
        on_open: Called with no arguments once the handshake succeeded.
        on_message: Called with each message (``str`` or ``bytes``).
        on_error: Called with the error when connecting fails or the
            connection is lost without a closing handshake (then ``on_close``
            follows with 1006); a clean close with any code fires only
            ``on_close``, as in a browser.
        on_close: Called with ``(code, reason)`` when the connection is closed.
        origin: An ``Origin`` header to send, as a browser would.
        timeout: Seconds for the handshake and for each blocking call.
        block: With ``False`` the constructor returns at once; ``on_open`` or
            ``on_error`` tell how connecting went.

    Raises:
        ConnectError: A malformed URL, at once and without ``on_error`` (as
            ``new WebSocket(url)`` throws in a browser); with ``block=True``
            also a refused connection or a rejected handshake, after
            ``on_error`` has fired.
    """

    def __init__(
        self,
        url_or_server: str | _HasURL,
        *,
        on_open: Callable[[], Any] | None = None,
        on_message: Callable[[Data], Any] | None = None,
        on_error: Callable[[Exception], Any] | None = None,
        on_close: Callable[[int, str], Any] | None = None,
        origin: str | None = None,
        timeout: float = 5.0,
        block: bool = True,
    ) -> None:
        if block and loop.in_loop_thread():
            # Inside a handler or callback: waiting here would stop the very
            # loop that must do the connecting.
            raise RuntimeError(
                "wslab.Client(..., block=True) cannot run on the wslab loop (in a handler "
                "or callback); pass block=False, or use wslab.AsyncClient"
            )
        self._received: queue.Queue[object] = queue.Queue()
        self._session = _Session(
            _resolve_url(url_or_server),
            on_open=on_open,
            on_message=on_message,
            on_error=on_error,
            on_close=on_close,
            origin=origin,
            timeout=timeout,
            deliver=self._deliver,
        )
        # When the cell runs again, this client closes (1001, going away), as a
        # browser closes a page's WebSockets when the page reloads. Otherwise a
        # re-run chat cell would leave a second, invisible "Alice" in the room.
        self._forget_cell = jupyter.replace_on_rerun(self._replaced)
        self._opening: Future[None] = loop.submit(self._session.open())
        if block:
            try:
                # The handshake has its own timeout; the margin covers a busy loop.
                loop.wait(self._opening, timeout + 5)
            except ConnectError as exc:
                raise ConnectError(str(exc), exc.status) from None  # a short traceback
            except TimeoutError:
                self._opening.cancel()
                raise ConnectError(
                    f"no answer from {redact(self.url)} within {timeout:g} s"
                ) from None
            except BaseException:
                # Interrupted (the kernel's stop button): no variable holds this
                # client, so close it once it opens rather than leave it connected.
                self._close_soon(1001, "interrupted")
                raise
        else:
            # The error reaches on_error; retrieving it keeps asyncio quiet.
            self._opening.add_done_callback(lambda f: f.cancelled() or f.exception())

    def _deliver(self, item: object) -> None:
        self._received.put(item)
        if item is _CLOSED:
            self._forget_cell()  # closed: nothing left for a re-run to close

    def _replaced(self) -> None:
        self._close_soon(1001, "its notebook cell ran again")

    def send(self, message: Data) -> None:
        """Send a text (``str``) or binary (``bytes``) message.

        Raises:
            ConnectionClosedError: If the connection is not open.
        """
        if loop.in_loop_thread():
            # Inside a callback: the loop cannot wait for itself, so queue the send.
            self._session._open_ws()
            task = asyncio.get_running_loop().create_task(self._session.send(message))
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
            return
        self._wait_open()
        loop.run_sync(self._session.send(message), timeout=self._session.timeout)

    def recv(self, timeout: float | None = None) -> Data:
        """Return the next message, waiting up to ``timeout`` seconds (``None``: no limit).

        Raises:
            TimeoutError: If no message arrives in time.
            ConnectionClosedError: If the connection closed and no message is left.
        """
        if loop.in_loop_thread():
            raise RuntimeError("recv() would block the wslab loop; use on_message in callbacks")
        try:
            item = self._received.get(timeout=timeout)
        except queue.Empty:
            blocked = loop.blocked()
            if blocked is not None:  # the reason no message came: say it
                raise blocked.error() from None
            raise TimeoutError(
                f"no message from {redact(self.url)} within {timeout:g} s"
            ) from None
        if item is _CLOSED:
            self._received.put(_CLOSED)  # later calls see the end too
            raise self._session.closed(
                f"the connection is closed (code {self.close_code}); no more messages"
            )
        assert isinstance(item, str | bytes)
        return item

    def __iter__(self) -> Iterator[Data]:
        """Iterate over incoming messages until the connection closes."""
        while True:
            try:
                yield self.recv()
            except ConnectionClosed:
                return

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Close with ``code`` and ``reason`` (RFC 6455 section 7.1.2) and wait."""
        if loop.in_loop_thread():
            task = asyncio.get_running_loop().create_task(self._session.close(code, reason))
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
            return
        if not self._opening.done():
            with contextlib.suppress(Exception):
                self._opening.result(self._session.timeout + 5)
        with contextlib.suppress(TimeoutError):
            loop.run_sync(self._session.close(code, reason), timeout=self._session.timeout + 5)

    def _close_soon(self, code: int, reason: str) -> None:
        """Start closing without waiting (the kernel's cell need not wait)."""
        future = loop.submit(self._close_after_open(code, reason))
        future.add_done_callback(lambda f: f.cancelled() or f.exception())

    async def _close_after_open(self, code: int, reason: str) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wrap_future(self._opening)  # a client may still be connecting
        await self._session.close(code, reason)

    def _wait_open(self) -> None:
        if not self._opening.done():
            with contextlib.suppress(Exception):
                self._opening.result(self._session.timeout + 5)

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return self._session.describe("Client")


class AsyncClient(_Browserlike):
    """An asyncio WebSocket client on the caller's loop, for top-level ``await``.

    Takes the same arguments as :class:`Client` (without ``block``). Use it as
    ``async with wslab.AsyncClient(url) as ws:``, or ``ws = await
    wslab.AsyncClient(url).open()``.
    """

    def __init__(
        self,
        url_or_server: str | _HasURL,
        *,
        on_open: Callable[[], Any] | None = None,
        on_message: Callable[[Data], Any] | None = None,
        on_error: Callable[[Exception], Any] | None = None,
        on_close: Callable[[int, str], Any] | None = None,
        origin: str | None = None,
        timeout: float = 5.0,
    ) -> None:
        # Created lazily, on the loop that opens the connection.
        self._received: asyncio.Queue[object] | None = None
        self._session = _Session(
            _resolve_url(url_or_server),
            on_open=on_open,
            on_message=on_message,
            on_error=on_error,
            on_close=on_close,
            origin=origin,
            timeout=timeout,
            deliver=self._deliver,
        )

    def _deliver(self, item: object) -> None:
        if self._received is not None:
            self._received.put_nowait(item)

    async def open(self) -> AsyncClient:
        """Connect; return ``self``.

        Raises:
            ConnectError: Bad URL, refused, or rejected.
        """
        self._received = asyncio.Queue()
        await self._session.open()
        return self

    async def send(self, message: Data) -> None:
        """Send a text (``str``) or binary (``bytes``) message."""
        await self._session.send(message)

    async def recv(self, timeout: float | None = None) -> Data:
        """Return the next message; see :meth:`Client.recv`."""
        if self._received is None:
            raise self._session.closed("not connected yet: use 'async with' or await open()")
        try:
            async with asyncio.timeout(timeout):
                item = await self._received.get()
        except TimeoutError:
            raise TimeoutError(
                f"no message from {redact(self.url)} within {timeout:g} s"
            ) from None
        if item is _CLOSED:
            self._received.put_nowait(_CLOSED)
            raise self._session.closed(
                f"the connection is closed (code {self.close_code}); no more messages"
            )
        assert isinstance(item, str | bytes)
        return item

    async def __aiter__(self) -> AsyncIterator[Data]:
        while True:
            try:
                yield await self.recv()
            except ConnectionClosed:
                return

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close with ``code`` and ``reason`` (RFC 6455 section 7.1.2) and wait."""
        await self._session.close(code, reason)

    async def __aenter__(self) -> AsyncClient:
        return await self.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return self._session.describe("AsyncClient")
