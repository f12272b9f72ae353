"""Play the cases against a server: a raw client loop on a plain socket.

:class:`wslab.raw.RawClient` refuses to send a broken frame and fails the
connection on a broken answer, as a client should. The checker must do
neither: it sends whatever a case says, and *records* what the server does,
so it has its own small loop here. It still uses the sans-I/O core for
everything that is not deliberately broken: the handshake
(:mod:`wslab.handshake`), decoding the server's frames
(:class:`wslab.frames.FrameDecoder`), joining and checking its messages
(:class:`wslab.connection.MessageAssembler`) and close payloads
(:mod:`wslab.closing`).

Every case has its own connection, so independent cases run at the same time
on a pool of threads; every wait has a deadline, so a server that hangs only
costs its own cases a timeout.
"""

from __future__ import annotations

import itertools
import selectors
import socket
import time
import traceback
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ..closing import is_valid_wire_code, parse_close
from ..connection import MessageAssembler
from ..errors import ConnectError, HandshakeError, ProtocolError
from ..frames import Frame, FrameDecoder, Opcode, Side
from ..handshake import Headers, Request, Response, check_response, client_request, split_head
from ..uri import WebSocketURI, parse_uri
from .cases import (
    AnyCase,
    Case,
    Event,
    Expect,
    FrameSpec,
    HandshakeCase,
    Pause,
    Send,
    Step,
    Trickle,
    select,
)
from .grading import Grade, HandshakeObservation, Observation, Verdict, grade, grade_handshake
from .report import CaseResult, Report
from .wire import DEFLATE_TAIL, forge, inflater

__all__ = ["Settings", "run", "run_case"]

#: How much to read at once.
_CHUNK = 65536
#: Lines of wire log kept per case; a case of 10000 fragments would not be read.
_MAX_LOG = 80
#: The longest pause: long enough for a server on this machine to react.
_PAUSE = 0.5
#: The message that finds out what an echo server adds in front of text.
_PROBE = "wslab conformance probe"


@dataclass(frozen=True)
class Settings:
    """How to run the cases.

    Attributes:
        uri: Where the server is.
        timeout: Seconds the server gets to react (to close, to echo).
        pause: Seconds of a :class:`~wslab.conformance.cases.Pause`.
        echo_prefix: What the server puts in front of echoed text.
    """

    uri: WebSocketURI
    timeout: float = 1.0
    pause: float = 0.5
    echo_prefix: str = ""


def run(
    url: str,
    cases: Iterable[str | AnyCase] | str | None = None,
    *,
    timeout: float = 1.0,
    workers: int = 16,
    echo_prefix: str | None = None,
) -> Report:
    """Run conformance cases against the echo server at ``url``; return a :class:`Report`.

    Blocking, and safe in a notebook cell, even against a server in the same
    kernel (wslab.serve and RawServer run on threads of their own).

    Args:
        url: The server's ``ws://`` URL, with its path and any ``?wslab_token=``.
        cases: None for every case; or ids, chapters (``"6"``, ``"6.4"``),
            categories (``"utf-8"``) or Case objects.
        timeout: Seconds the server gets to react: to echo, or to close after
            a protocol error. A failing case waits this long, a passing one
            not at all. Pauses last half of it, at most 0.5 s.
        workers: How many cases run at the same time, each on its own connection.
        echo_prefix: What the server adds in front of echoed text; None finds
            out by sending a first message (wslab's echo adds ``You sent: ``).

    Raises:
        ValueError: ``url`` is not a ``ws://`` URL, or a case is unknown.
        ConnectError: No WebSocket connection can be opened at all.
    """
    uri = parse_uri(url)
    if uri.secure:
        raise ValueError(f"{url!r} is wss://: the checker speaks ws:// only")
    if not timeout > 0:
        raise ValueError(f"timeout must be a number of seconds > 0, got {timeout!r}")
    chosen = select(cases)
    started = time.monotonic()
    pause = min(timeout / 2, _PAUSE)
    settings = Settings(uri, timeout, pause, "")
    notes: list[str] = []
    if echo_prefix is None:
        echo_prefix, note = _find_echo_prefix(settings)
        if note:
            notes.append(note)
    settings = Settings(uri, timeout, pause, echo_prefix)
    # The slow cases start first, so that they overlap with the many quick ones.
    order = sorted(range(len(chosen)), key=lambda i: -getattr(chosen[i], "patience", 1.0))
    results: list[CaseResult | None] = [None] * len(chosen)
    with ThreadPoolExecutor(max(1, workers), thread_name_prefix="wslab-conformance") as pool:
        played = pool.map(lambda i: run_case(chosen[i], settings), order)
        for i, result in zip(order, played, strict=True):
            results[i] = result
    done = [result for result in results if result is not None]
    return Report(url, done, time.monotonic() - started, echo_prefix, notes)


def run_case(case: AnyCase, settings: Settings) -> CaseResult:
    """Play one case on its own connection and grade it; never raises."""
    try:
        return _run_case(case, settings)
    except Exception as error:  # A bug in the checker must not stop the other cases.
        reason = f"checker error: {type(error).__name__}: {error}"
        verdict = Verdict(Grade.FAILED, Grade.FAILED, None, reason)
        return CaseResult(case, verdict, reason, traceback.format_exc(limit=4).splitlines(), 0.0)


def _run_case(case: AnyCase, settings: Settings) -> CaseResult:
    if isinstance(case, HandshakeCase):
        seen_handshake = _play_handshake(case, settings)
        verdict = grade_handshake(case, seen_handshake)
        return CaseResult(
            case, verdict, seen_handshake.story(), seen_handshake.log, seen_handshake.duration
        )
    seen = _play(case, settings)
    return CaseResult(case, grade(case, seen), seen.story(), seen.log, seen.duration)


def _play(case: Case, settings: Settings) -> Observation:
    started = time.monotonic()
    session = _Session(settings, patience=case.patience)
    try:
        session.open(offer_deflate=case.deflate)
    except (OSError, HandshakeError, ProtocolError) as error:
        session.seen.error = str(error) or type(error).__name__
        session.drop()
        session.seen.duration = time.monotonic() - started
        return session.seen
    try:
        if case.deflate and not session.seen.deflate:
            session.goodbye()
        else:
            for step in case.steps:
                if not session.play(step):
                    break
            session.finish(case.expect)
    except Exception as error:  # A bug in the checker must not stop the other cases.
        session.seen.error = f"{type(error).__name__}: {error}"
        session.log("checker error:\n" + traceback.format_exc(limit=4))
    finally:
        session.drop()
    session.seen.duration = time.monotonic() - started
    return session.seen


class _Session:
    """One connection to the server, driven by a case.

    It writes what the case says and reads at the same time (so a server
    that answers while we write cannot deadlock us), answers pings and the
    server's close frame, and records everything in an :class:`Observation`.
    """

    def __init__(self, settings: Settings, patience: float = 1.0) -> None:
        self.settings = settings
        self.patience = patience
        self.seen = Observation(waited=settings.timeout * patience)
        self.sock: socket.socket | None = None
        self.selector = selectors.DefaultSelector()
        self.decoder = FrameDecoder(Side.CLIENT, max_size=None)
        self.assembler = MessageAssembler(max_size=None)
        self.inflater = inflater()
        self.reset_inflater = False
        self.compressed = False  # whether the message being received is compressed
        self.broken = False  # the server broke a rule; read nothing more
        self.handling = False  # inside _received: a write must not read (no reentry)
        self._last_line, self._repeats, self._dropped = "", 0, 0

    # -- the log ----------------------------------------------------------------------

    def log(self, line: str) -> None:
        """Add a line to the wire log: repeats are counted, and a long log keeps
        its beginning and its end (where the server's answer is)."""
        log = self.seen.log
        if line == self._last_line:
            self._repeats += 1
            log[-1] = f"{line} (×{self._repeats})"
            return
        self._last_line, self._repeats = line, 1
        log.append(line)
        if len(log) > _MAX_LOG:
            # Keep the first half; in the second, drop the oldest line, counted
            # in a marker line between the two halves.
            middle = _MAX_LOG // 2
            if self._dropped:
                del log[middle + 1]
            self._dropped += 1
            log[middle] = f"... ({self._dropped} lines left out)"

    # -- opening ------------------------------------------------------------------------

    def open(self, offer_deflate: bool = False) -> None:
        """Connect and do a valid opening handshake (section 4.1).

        Raises:
            OSError: TCP failed or timed out.
            HandshakeError: The server refused or answered wrongly.
        """
        uri = self.settings.uri
        offered = ["permessage-deflate"] if offer_deflate else []
        extra = [("Sec-WebSocket-Extensions", name) for name in offered]
        request = client_request(uri.host_header, uri.path, headers=extra)
        key = request.headers.get("Sec-WebSocket-Key") or ""
        self.sock = _connect(uri, self.settings.timeout)
        self.selector.register(self.sock, selectors.EVENT_READ)
        self.write(request.serialize())
        response, rest = self._read_response()
        check_response(response, key, extensions=offered)
        self.seen.opened = True
        if offer_deflate:
            self._negotiate(response)
        if rest:
            self._received(rest)

    def _read_response(self) -> tuple[Response, bytes]:
        buffer = b""
        deadline = time.monotonic() + self.settings.timeout * 2
        while (parts := split_head(buffer)) is None:
            data = self._recv(deadline)
            if data is None:
                raise TimeoutError("no answer to the opening handshake")
            if not data:
                raise HandshakeError("the server closed the connection instead of answering")
            buffer += data
        head, rest = parts
        response = Response.parse(head)
        if response.status != 101:
            raise HandshakeError(
                f"the server answered {response.status} {response.reason}", response.status
            )
        return response, rest

    def _negotiate(self, response: Response) -> None:
        """Turn permessage-deflate on if the server accepted it (RFC 7692 section 5)."""
        for value in response.headers.get_all("Sec-WebSocket-Extensions"):
            name, *params = [part.strip() for part in value.split(";")]
            if name == "permessage-deflate":
                self.seen.deflate = True
                self.decoder = FrameDecoder(Side.CLIENT, max_size=None, allow_rsv1=True)
                self.reset_inflater = "server_no_context_takeover" in params

    # -- sending ------------------------------------------------------------------------

    def play(self, step: Step) -> bool:
        """Play one step; return False once the connection is over."""
        if isinstance(step, Send):
            return self._send(step)
        if isinstance(step, Pause):
            return self._pause(step.label)
        return self._trickle(step)

    def _send(self, step: Send) -> bool:
        how = " (one write per frame)" if step.frame_by_frame else ""
        if step.chop:
            how = f" (in pieces of {step.chop} byte{'s' if step.chop > 1 else ''})"
        writes: list[bytes] = []
        for spec in step.frames:
            self.log(f"→ {spec}{how}")
            self._note_close(spec)
            writes.append(spec.to_bytes())
        if not step.frame_by_frame:
            writes = [b"".join(writes)]
        return all(self.write(data, step.chop) for data in writes)

    def _trickle(self, step: Trickle) -> bool:
        data = step.frame.to_bytes()
        header = len(data) - len(step.frame.payload)
        cuts = [0, *(header + cut for cut in step.cuts), len(data)]
        self.log(f"→ {step.frame} (in {len(cuts) - 1} pieces with pauses)")
        self._note_close(step.frame)
        for number, (start, end) in enumerate(itertools.pairwise(cuts)):
            if number and not self._pause(chr(ord("A") + number - 1)):
                return False
            if not self.write(data[start:end]):
                return False
        return True

    def _note_close(self, spec: FrameSpec) -> None:
        """Count a close frame as the start of the closing handshake.

        As in Autobahn, a close frame broken at the frame level (reserved
        bits, FIN=0, not masked) does not count: the server should fail the
        connection instead, which the checker watches for. A bad payload
        (code, length, UTF-8) does count: the server answers it with 1002.
        """
        well_formed = spec.fin and not spec.rsv and spec.masked
        if spec.opcode == Opcode.CLOSE and well_formed and not self.seen.close_sent:
            self.seen.close_sent = True
            self.seen.first_close = self.seen.first_close or "checker"

    def write(self, data: bytes, chop: int | None = None) -> bool:
        """Write ``data``, in pieces of ``chop`` bytes, reading meanwhile.

        Returns:
            False if the connection ended before everything was written.
        """
        pieces = [data] if not chop else [data[i : i + chop] for i in range(0, len(data), chop)]
        deadline = time.monotonic() + self.settings.timeout * self.patience
        for piece in pieces:
            view = memoryview(piece)
            while view:
                if self.sock is None or self.seen.server_closed_tcp:
                    return False
                try:
                    view = view[self.sock.send(view) :]
                    continue
                except BlockingIOError:
                    pass  # The server is not reading: read what it sent meanwhile.
                except OSError as error:
                    self._tcp_closed(f"write failed: {error.strerror or error}")
                    return False
                if not self._wait_and_read(deadline, want_write=True):
                    self.log(f"the server read nothing for {self.seen.waited:g} s")
                    return False
        return True

    def send_close(self, code: int | None) -> None:
        """Send a close frame with ``code`` (None: an empty one)."""
        payload = b"" if code is None else code.to_bytes(2, "big")
        spec = FrameSpec(Opcode.CLOSE, payload)
        self.log(f"→ {spec}")
        self._note_close(spec)
        self.write(spec.to_bytes())

    # -- receiving ----------------------------------------------------------------------

    def _recv(self, deadline: float) -> bytes | None:
        """Wait for bytes until ``deadline``; None if none came, b"" at end of file."""
        assert self.sock is not None
        left = deadline - time.monotonic()
        if left <= 0 or not self.selector.select(left):
            return None
        try:
            return self.sock.recv(_CHUNK)
        except BlockingIOError:
            return None
        except OSError:
            return b""  # A reset ends the connection as surely as a FIN.

    def _wait_and_read(self, deadline: float, want_write: bool = False) -> bool:
        """Wait until the socket is writable (if asked) or has data; handle data.

        Returns:
            False if the deadline passed first.
        """
        assert self.sock is not None
        # While handling frames (a pong to write), reading more would handle
        # frames out of order: then wait for room to write only.
        events = 0 if self.handling else selectors.EVENT_READ
        events |= selectors.EVENT_WRITE if want_write else 0
        self.selector.modify(self.sock, events)
        try:
            left = deadline - time.monotonic()
            ready = self.selector.select(max(0.0, left)) if left > 0 else []
        finally:
            self.selector.modify(self.sock, selectors.EVENT_READ)
        if not ready:
            return False
        if ready[0][1] & selectors.EVENT_READ and not self.handling:
            self._read_once()
        return True

    def _read_once(self) -> None:
        assert self.sock is not None
        try:
            data = self.sock.recv(_CHUNK)
        except BlockingIOError:
            return
        except OSError as error:
            self._tcp_closed(f"TCP reset ({error.strerror or error})")
            return
        if not data:
            self._tcp_closed("the server closed TCP")
            return
        self._received(data)

    def _tcp_closed(self, why: str) -> None:
        if not self.seen.server_closed_tcp:
            self.log(f"← {why}")
        self.seen.server_closed_tcp = True
        self.seen.first_close = self.seen.first_close or "server TCP"

    def wait(self, until: Callable[[], bool], seconds: float) -> None:
        """Read and handle frames until ``until()`` is true, TCP ends, or time is up."""
        deadline = time.monotonic() + seconds
        while not until() and not self.seen.server_closed_tcp and self.sock is not None:
            if not self._wait_and_read(deadline):
                return

    def _received(self, data: bytes) -> None:
        if self.broken:
            return
        if self.seen.close_received:
            self._broke("the server sent bytes after its close frame (5.5.1)")
            return
        self.handling = True
        try:
            for raw in self.decoder.iter_raw(data):
                self._frame(raw.frame)
                if self.broken or self.seen.close_received:
                    break
        except ProtocolError as error:
            self._broke(f"the server sent an invalid frame: {error.reason}")
        finally:
            self.handling = False

    def _frame(self, frame: Frame) -> None:
        self.log(f"← {frame}")
        if frame.opcode is Opcode.PING:
            if not self.seen.close_sent:
                self.write(forge(Opcode.PONG, frame.payload))  # Server pings are not graded.
        elif frame.opcode is Opcode.PONG:
            self.seen.events.append(Event.pong(frame.payload))
        elif frame.opcode is Opcode.CLOSE:
            self._close_frame(frame.payload)
        else:
            self._data_frame(frame)

    def _data_frame(self, frame: Frame) -> None:
        if frame.opcode is not Opcode.CONT:
            self.compressed = frame.rsv1
        elif frame.rsv1:
            self._broke("the server set RSV1 on a continuation frame (RFC 7692 6)")
            return
        if self.compressed:
            try:
                payload = self.inflater.decompress(
                    frame.payload + (DEFLATE_TAIL if frame.fin else b"")
                )
            except Exception as error:  # zlib.error
                self._broke(f"the server's compressed message does not inflate: {error}")
                return
            if frame.fin and self.reset_inflater:
                self.inflater = inflater()
            frame = Frame(frame.opcode, payload, frame.fin)
        try:
            message = self.assembler.add(frame)
        except ProtocolError as error:
            if error.code == 1007:
                self.seen.events.append(Event("bad text"))
                self._broke("the server sent a text message that is not valid UTF-8 (8.1)", 1007)
            else:
                self._broke(f"the server broke a rule: {error.reason}", error.code)
            return
        if message is None:
            return
        if isinstance(message.data, bytes):
            self.seen.events.append(Event.binary(message.data))
        else:
            prefix = self.settings.echo_prefix
            text = message.data
            self.seen.events.append(
                Event.text(text[len(prefix) :] if text.startswith(prefix) else text)
            )

    def _close_frame(self, payload: bytes) -> None:
        self.seen.close_received = True
        self.seen.first_close = self.seen.first_close or "server"
        try:
            close = parse_close(payload)
        except ProtocolError as error:
            self.seen.violations.append(f"the server's close frame is invalid: {error.reason}")
            self.seen.remote_code = (
                int.from_bytes(payload[:2], "big") if len(payload) > 1 else None
            )
        else:
            self.seen.remote_code = None if close.code == 1005 else close.code
            self.seen.remote_reason = close.reason
        if not self.seen.close_sent:
            # Section 5.5.1: answer with a close frame, echoing the code.
            code = self.seen.remote_code
            self.send_close(code if code is not None and is_valid_wire_code(code) else None)

    def _broke(self, violation: str, code: int = 1002) -> None:
        """The server broke a rule: record it and fail the connection (7.1.7)."""
        self.log(f"!! {violation}")
        self.seen.violations.append(violation)
        self.broken = True
        if not self.seen.close_sent:
            self.send_close(code)
        self.drop()

    # -- closing ------------------------------------------------------------------------

    def _pause(self, label: str | None) -> bool:
        """Watch the connection for a pause; return False if it ended meanwhile."""
        self.log(f"… pause {label or ''}".rstrip())
        self.wait(lambda: self.seen.close_received, self.settings.pause)
        if self.seen.close_received or self.seen.server_closed_tcp or self.sock is None:
            return False
        if label is not None:
            self.seen.events.append(Event.pause(label))
        return True

    def finish(self, expect: Expect) -> None:
        """End the case as Autobahn does: wait for the server's close, or close ourselves."""
        limit = self.settings.timeout * self.patience
        ok = expect.ok
        if expect.server_closes:
            self.wait(lambda: self.seen.close_received, limit)
        elif not self.seen.close_sent:
            if ok:
                self.wait(lambda: self.seen.events == list(ok) or self.seen.close_received, limit)
            else:  # Expect nothing: give anything unexpected a moment to arrive.
                self.wait(lambda: self.seen.close_received, self.settings.pause)
            if self.sock is not None and not self.seen.close_received:
                self.send_close(expect.codes[0])
        self.close_normally(limit)

    def close_normally(self, limit: float | None = None) -> None:
        """Complete the closing handshake and wait for the server to close TCP (7.1.1)."""
        limit = self.settings.timeout if limit is None else limit
        if self.sock is None or self.seen.server_closed_tcp:
            return
        if not self.seen.close_sent and not self.seen.close_received:
            # Nothing closed yet: the server never reacted. Give up, as Autobahn's killAfter.
            self.log(f"no close from the server within {limit:g} s: the checker drops TCP")
            self.seen.first_close = self.seen.first_close or "checker TCP"
            self.drop()
            return
        self.wait(lambda: self.seen.close_received, limit)
        if self.sock is None or self.seen.server_closed_tcp:
            return
        if not self.seen.close_received:
            self.log(f"no close frame in answer within {limit:g} s: the checker drops TCP")
        else:
            self.wait(lambda: False, self.settings.timeout)  # For the server's FIN.
            if self.seen.server_closed_tcp:
                return
            self.log("the server did not close TCP: the checker does")
        self.seen.dropped_by_me = True
        self.drop()

    def goodbye(self) -> None:
        """Close normally with 1000, if nothing closed yet."""
        if self.sock is not None and not (self.seen.close_sent or self.seen.close_received):
            self.send_close(1000)
        self.close_normally()

    def drop(self) -> None:
        """Close our socket, whatever its state."""
        if self.sock is None:
            return
        try:
            self.selector.unregister(self.sock)
        except (KeyError, ValueError):
            pass  # Not registered yet.
        self.sock.close()
        self.sock = None
        self.selector.close()


def _connect(uri: WebSocketURI, timeout: float) -> socket.socket:
    """Open TCP to the server, non-blocking from then on, Nagle off (each write goes at once)."""
    sock = socket.create_connection((uri.host, uri.port), timeout=max(timeout, 2.0))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setblocking(False)
    return sock


def _find_echo_prefix(settings: Settings) -> tuple[str, str]:
    """Send one text message and see what comes back, to learn the echo's prefix.

    Returns:
        The prefix, and a note for the report if the server does not echo.

    Raises:
        ConnectError: The checker cannot open a WebSocket connection at all.
    """
    session = _Session(settings, patience=2.0)
    try:
        session.open()
    except (OSError, HandshakeError) as error:
        session.drop()
        status = error.status if isinstance(error, HandshakeError) else None
        raise ConnectError(
            f"cannot check {settings.uri}: {error or type(error).__name__}", status
        ) from None
    try:
        session.write(forge(Opcode.TEXT, _PROBE.encode()))
        session.wait(lambda: bool(session.seen.events), settings.timeout * 2)
    finally:
        session.goodbye()
        session.drop()
    texts = [event.data for event in session.seen.events if isinstance(event.data, str)]
    if texts and texts[0].endswith(_PROBE):
        return texts[0][: -len(_PROBE)], ""
    return "", (
        f"the server did not echo {_PROBE!r} (it answered {texts[0]!r})"
        if texts
        else f"the server did not echo {_PROBE!r} within {settings.timeout * 2:g} s"
    ) + ": the checker needs an echo server, so the message cases will fail"


# -- the opening handshake --------------------------------------------------------------


def _play_handshake(case: HandshakeCase, settings: Settings) -> HandshakeObservation:
    started = time.monotonic()
    uri = settings.uri
    request = _changed_request(case, uri)
    seen = HandshakeObservation(key=request.headers.get("Sec-WebSocket-Key") or "")
    seen.offered = {name: value for name, value in request.headers}
    seen.log.append("→ " + str(request).replace("\n", "\n  "))
    session = _Session(settings)
    try:
        session.sock = _connect(uri, settings.timeout)
        session.selector.register(session.sock, selectors.EVENT_READ)
        if not session.write(request.serialize(), case.chop):
            raise ConnectionResetError("the server closed the connection during the request")
        seen.response, _ = _read_any_response(session, settings.timeout * 2)
        seen.log.append("← " + str(seen.response).replace("\n", "\n  "))
        if seen.response.status == 101:
            session.goodbye()
    except (OSError, HandshakeError) as error:
        seen.error = str(error) or type(error).__name__
        seen.log.append(f"← {seen.error}")
    except Exception as error:  # A bug in the checker must not stop the other cases.
        seen.error = f"checker error: {type(error).__name__}: {error}"
        seen.log.append(traceback.format_exc(limit=4))
    finally:
        session.drop()
    seen.duration = time.monotonic() - started
    return seen


def _read_any_response(session: _Session, seconds: float) -> tuple[Response, bytes]:
    """Read an HTTP answer head, whatever its status."""
    buffer = b""
    deadline = time.monotonic() + seconds
    while (parts := split_head(buffer, limit=65536)) is None:
        data = session._recv(deadline)
        if data is None:
            raise TimeoutError(f"no answer within {seconds:g} s")
        if not data:
            raise ConnectionResetError("the server closed the connection without answering")
        buffer += data
    head, rest = parts
    return Response.parse(head), rest


def _changed_request(case: HandshakeCase, uri: WebSocketURI) -> Request:
    """A valid request for ``uri``, changed as ``case`` says."""
    valid = client_request(uri.host_header, uri.path)
    dropped = {name.lower() for name in case.drop}
    replaced = {name.lower(): value for name, value in case.replace}
    headers = Headers()
    for name, value in valid.headers:
        if name.lower() in dropped:
            continue
        headers.add(name, replaced.pop(name.lower(), value))
    for name, value in case.replace:
        if name.lower() in replaced:
            headers.add(name, value)
    for name, value in case.add:
        headers.add(name, value)
    path = uri.path
    if case.path is not None:
        _, _, query = uri.path.partition("?")
        path = case.path + (f"?{query}" if query else "")
    return Request(path, headers, case.method, case.version)
