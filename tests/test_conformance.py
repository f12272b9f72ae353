"""The conformance checker (wslab.conformance), on real servers and on broken ones.

The grading is only worth something if a server that breaks a rule of RFC
6455 gets caught, so most tests run the checker against a small server
written here with one deliberate flaw each (it echoes invalid UTF-8, it
ignores pings, it answers a close with another code...) and assert the cases
that must catch it. The real servers (RawServer, ``wslab.serve`` and the
websockets library's own asyncio echo server) must have no FAILED case
beyond the ones listed in KNOWN_FAILURES, which the report to the lead explains.
"""

from __future__ import annotations

import asyncio
import codecs
import socket
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve as websockets_serve
from websockets.exceptions import ConnectionClosed

import wslab
from wslab import conformance
from wslab.closing import parse_close, serialize_close
from wslab.conformance import Grade, Report
from wslab.conformance.cases import CASES, CATEGORIES, Case, HandshakeCase, select
from wslab.conformance.grading import Closing, Observation, grade
from wslab.conformance.wire import deflate, forge
from wslab.errors import ConnectError, HandshakeError, ProtocolError
from wslab.frames import Frame, Header, Opcode, apply_mask, encode, new_mask_key, parse_header
from wslab.handshake import Request, check_request, error_response, server_response, split_head
from wslab.raw import RawServer

#: Cases each real server fails today, and why (see the lead's report). A case
#: leaving this list (fixed) keeps the test green; a new failure turns it red.
KNOWN_FAILURES: dict[str, set[str]] = {
    # websockets answers a close frame inside a fragmented message with 1002
    # ("incomplete fragmented message"); Autobahn's 7.1.5 expects 1000.
    "serve": {"7.1.5"},
    # The same, and the library accepts a request without a Host, or with two.
    "websockets": {"7.1.5", "10.17", "10.18"},
    "raw": set(),
}


# -- the case table ----------------------------------------------------------------


class TestCases:
    """The cases as data: enough of them, every category, unique ids, RFC sections."""

    def test_at_least_100_cases_in_every_category(self) -> None:
        assert len(CASES) >= 100
        assert {case.category for case in CASES} == set(CATEGORIES)

    def test_ids_are_unique_and_cite_a_section(self) -> None:
        ids = [case.id for case in CASES]
        assert len(ids) == len(set(ids))
        for case in CASES:
            assert case.section and case.description and case.expect, case.id

    def test_select_by_id_chapter_and_category(self) -> None:
        assert [case.id for case in select("6.4.1")] == ["6.4.1"]
        assert [case.id for case in select("6.4")] == ["6.4.1", "6.4.2", "6.4.3", "6.4.4"]
        assert all(case.id.startswith("7.") for case in select("7"))
        assert all(isinstance(case, HandshakeCase) for case in select("handshake"))
        assert len(select(["2.1", "2.1", "pings"])) == len(select("pings"))

    def test_select_refuses_an_unknown_case(self) -> None:
        with pytest.raises(ValueError, match="no case matches '99'"):
            select("99")


# -- forged frames, against the RFC's own examples ------------------------------------


class TestWire:
    """Section 5.7's example frames, and RFC 7692 section 7.2.3.1's compressed 'Hello'."""

    def test_unmasked_hello(self) -> None:
        assert forge(0x1, b"Hello", masked=False) == bytes.fromhex("810548656c6c6f")

    def test_masked_hello(self) -> None:
        key = bytes.fromhex("37fa213d")
        assert forge(0x1, b"Hello", mask_key=key) == bytes.fromhex("818537fa213d7f9f4d5158")

    def test_16_and_64_bit_lengths(self) -> None:
        assert forge(0x2, b"\x00" * 256, masked=False)[:4] == bytes.fromhex("827e0100")
        long = forge(0x2, b"\x00" * 65536, masked=False)
        assert long[:10] == bytes.fromhex("827f0000000000010000")

    def test_what_encode_refuses(self) -> None:
        """Reserved bits and opcodes, a longer length form, a 126-byte ping."""
        assert forge(0x3, rsv=5, masked=False) == bytes([0x80 | 0x50 | 0x3, 0])
        assert forge(0x1, b"Hi", length_bits=64, masked=False)[1] == 127
        header = parse_header(forge(0x9, b"x" * 126, fin=False))
        assert header is not None and (header.opcode, header.fin, header.length) == (9, False, 126)

    def test_deflate_matches_rfc_7692(self) -> None:
        assert deflate(b"Hello") == bytes.fromhex("f248cdc9c90700")
        inflater = zlib.decompressobj(wbits=-15)
        assert inflater.decompress(deflate(b"Hello") + b"\x00\x00\xff\xff") == b"Hello"


# -- the grading engine alone ---------------------------------------------------------


class TestGrading:
    """Autobahn's rules (case.py, onConnectionLost), on made-up observations."""

    protocol_error = select("3.1")[0]  # The server must fail the connection with 1002.
    echo = select("1.1.2")[0]  # The server echoes; the checker closes with 1000.
    close_code = select("7.3.3")[0]  # The checker closes; a wrong code is fatal.

    def seen(self, **fields: object) -> Observation:
        defaults: dict[str, object] = {"opened": True, "waited": 1.0}
        return Observation(**{**defaults, **fields})  # type: ignore[arg-type]

    def test_server_fails_the_connection_with_1002(self) -> None:
        seen = self.seen(first_close="server", close_received=True, remote_code=1002)
        assert grade(self.protocol_error, seen).result is Grade.OK  # type: ignore[arg-type]

    def test_server_just_closes_tcp(self) -> None:
        seen = self.seen(first_close="server TCP", server_closed_tcp=True)
        assert grade(self.protocol_error, seen).result is Grade.OK  # type: ignore[arg-type]

    def test_server_that_never_notices(self) -> None:
        verdict = grade(self.protocol_error, self.seen(first_close="checker TCP"))  # type: ignore[arg-type]
        assert (verdict.result, verdict.closing) == (Grade.FAILED, Closing.FAILED)
        assert "did not fail the connection" in verdict.reason

    def test_wrong_code_is_non_strict(self) -> None:
        seen = self.seen(first_close="server", close_received=True, remote_code=1011)
        verdict = grade(self.protocol_error, seen)  # type: ignore[arg-type]
        assert (verdict.result, verdict.closing) == (Grade.NON_STRICT, Closing.WRONG_CODE)

    def test_wrong_code_in_a_closing_case_is_failed(self) -> None:
        seen = self.seen(
            first_close="checker", close_sent=True, close_received=True, remote_code=1001
        )
        assert grade(self.close_code, seen).result is Grade.FAILED  # type: ignore[arg-type]

    def test_server_left_tcp_open(self) -> None:
        events = list(self.echo.expect.ok)  # type: ignore[union-attr]
        seen = self.seen(
            events=events,
            first_close="checker",
            close_sent=True,
            close_received=True,
            remote_code=1000,
            dropped_by_me=True,
        )
        verdict = grade(self.echo, seen)  # type: ignore[arg-type]
        assert (verdict.result, verdict.closing) == (Grade.NON_STRICT, Closing.FAILED_BY_CLIENT)

    def test_a_violation_fails_even_with_the_right_events(self) -> None:
        events = list(self.echo.expect.ok)  # type: ignore[union-attr]
        seen = self.seen(events=events, violations=["the server sent a masked frame"])
        assert grade(self.echo, seen).result is Grade.FAILED  # type: ignore[arg-type]


# -- a server with one flaw at a time ---------------------------------------------------


@dataclass(frozen=True)
class Flaws:
    """What the flawed echo server gets wrong; the defaults make a correct server."""

    utf8: str = "fail fast"  # or "at the end" (valid, NON-STRICT), or "never" (wrong)
    pings: bool = True  # answer pings (5.5.2)
    close_code: int | None = None  # answer every close with this code, not the peer's
    rsv: bool = True  # refuse reserved bits (5.2)
    close_tcp: bool = True  # close TCP after the closing handshake (7.1.1)
    mask: bool = False  # mask its own frames, which a server must not (5.1)
    any_handshake: bool = False  # answer 101 to any request (4.2.1)
    read: bool = True  # read anything at all after the handshake


class FlawedServer:
    """An echo server written with the raw parts of the core, flaws on request."""

    def __init__(self, flaws: Flaws) -> None:
        self.flaws = flaws
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"ws://127.0.0.1:{self.listener.getsockname()[1]}/"
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return  # Stopped.
            self.sockets.append(sock)
            threading.Thread(target=self.serve, args=(sock,), daemon=True).start()

    def stop(self) -> None:
        self.listener.close()
        for sock in self.sockets:
            sock.close()

    def serve(self, sock: socket.socket) -> None:
        try:
            rest = self.handshake(sock)
            if rest is not None and self.flaws.read:
                Echo(sock, self.flaws).run(rest)
        except OSError:
            pass  # The checker dropped the connection.
        finally:
            sock.close()

    def handshake(self, sock: socket.socket) -> bytes | None:
        buffer = b""
        while (parts := split_head(buffer)) is None:
            data = sock.recv(65536)
            if not data:
                return None
            buffer += data
        head, rest = parts
        request = Request.parse(head)
        try:
            key = check_request(request)
        except HandshakeError as error:
            if not self.flaws.any_handshake:
                sock.sendall(error_response(error).serialize())
                return None
            key = "dGhlIHNhbXBsZSBub25jZQ=="
        sock.sendall(server_response(key).serialize())
        return rest


class Echo:
    """One connection of the flawed server: frames parsed by hand, rules by flag."""

    def __init__(self, sock: socket.socket, flaws: Flaws) -> None:
        self.sock, self.flaws = sock, flaws
        self.opcode: Opcode | None = None  # of the message being received
        self.parts: list[bytes] = []

    def send(self, opcode: Opcode, payload: bytes) -> None:
        key = new_mask_key() if self.flaws.mask else None
        self.sock.sendall(encode(Frame(opcode, payload), key))

    def fail(self, code: int) -> None:
        self.send(Opcode.CLOSE, serialize_close(code))
        raise OSError("failed the connection")

    def run(self, buffer: bytes) -> None:
        while True:
            while (header := parse_header(buffer)) is not None:
                if len(buffer) < header.size + header.length:
                    break
                payload = buffer[header.size : header.size + header.length]
                buffer = buffer[header.size + header.length :]
                if header.mask_key is not None:
                    payload = apply_mask(payload, header.mask_key)
                if self.frame(header, payload):
                    return
            data = self.sock.recv(65536)
            if not data:
                return
            buffer += data

    def frame(self, header: Header, payload: bytes) -> bool:
        """Handle one frame; return True once the connection is over."""
        opcode, fin = header.opcode, header.fin
        if opcode not in set(Opcode) or not header.masked:
            self.fail(1002)
        rsv = header.rsv1 or header.rsv2 or header.rsv3
        if rsv and self.flaws.rsv:
            self.fail(1002)
        if opcode >= 8 and (len(payload) > 125 or not fin):
            self.fail(1002)
        if opcode == Opcode.PING:
            if self.flaws.pings:
                self.send(Opcode.PONG, payload)
        elif opcode == Opcode.CLOSE:
            return self.close(payload)
        elif opcode != Opcode.PONG:
            self.data(Opcode(opcode), fin, payload)
        return False

    def close(self, payload: bytes) -> bool:
        try:
            code = parse_close(payload).code
        except ProtocolError:
            self.fail(1002)
        answer = self.flaws.close_code or code
        self.send(Opcode.CLOSE, b"" if answer == 1005 else serialize_close(answer))
        if not self.flaws.close_tcp:
            while self.sock.recv(65536):
                pass  # Wait for the checker to give up.
        return True

    def data(self, opcode: Opcode, fin: bool, payload: bytes) -> None:
        if (opcode is Opcode.CONT) != (self.opcode is not None):
            self.fail(1002)
        self.opcode = self.opcode or opcode
        self.parts.append(payload)
        text = b"".join(self.parts)
        if self.opcode is Opcode.TEXT and self.flaws.utf8 != "never":
            if fin or self.flaws.utf8 == "fail fast":
                try:
                    # A message in progress may end inside a code point; a whole one may not.
                    codecs.getincrementaldecoder("utf-8")().decode(text, final=fin)
                except UnicodeDecodeError:
                    self.fail(1007)
        if fin:
            self.send(self.opcode, text)
            self.opcode, self.parts = None, []


@pytest.fixture
def flawed() -> Iterator[type[FlawedServer]]:
    servers: list[FlawedServer] = []

    class Started(FlawedServer):
        def __init__(self, flaws: Flaws) -> None:
            super().__init__(flaws)
            servers.append(self)

    yield Started
    for server in servers:
        server.stop()


def results(report: Report) -> dict[str, Grade]:
    return {result.id: result.result for result in report}


class TestCatchesFlaws:
    """Each flaw makes exactly the cases that test its rule fail (or NON-STRICT)."""

    def test_a_correct_server_passes(self, flawed: type[FlawedServer]) -> None:
        cases = ["1.1.1", "2.1", "3.1", "5.6", "6.3.1", "6.4.1", "7.3.3", "7.7.1", "10.9"]
        report = conformance.run(flawed(Flaws()).url, cases, timeout=3)
        assert not report.failed, str(report)
        assert results(report)["6.3.1"] is Grade.OK

    def test_echoing_invalid_utf8(self, flawed: type[FlawedServer]) -> None:
        report = conformance.run(flawed(Flaws(utf8="never")).url, ["6.3", "6.6.1", "6.4.1"])
        assert set(results(report).values()) == {Grade.FAILED}
        assert "not valid UTF-8" in report["6.3.1"].verdict.reason

    def test_checking_utf8_only_at_the_end_is_non_strict(self, flawed: type[FlawedServer]) -> None:
        server = flawed(Flaws(utf8="at the end"))
        report = conformance.run(server.url, ["6.3.1", "6.4"], timeout=3)
        assert results(report) == {
            "6.3.1": Grade.OK,
            **dict.fromkeys(["6.4.1", "6.4.2", "6.4.3", "6.4.4"], Grade.NON_STRICT),
        }

    def test_ignoring_pings(self, flawed: type[FlawedServer]) -> None:
        server = flawed(Flaws(pings=False))
        report = conformance.run(server.url, ["2.1", "2.4", "5.6", "1.1.1"], timeout=3)
        assert results(report) == {
            "2.1": Grade.FAILED,
            "2.4": Grade.FAILED,
            "5.6": Grade.FAILED,
            "1.1.1": Grade.OK,
        }

    def test_answering_close_with_another_code(self, flawed: type[FlawedServer]) -> None:
        report = conformance.run(flawed(Flaws(close_code=1001)).url, ["7.3.3", "7.7.1"])
        assert results(report) == {"7.3.3": Grade.FAILED, "7.7.1": Grade.FAILED}
        assert "1001" in report["7.3.3"].verdict.reason

    def test_ignoring_reserved_bits(self, flawed: type[FlawedServer]) -> None:
        report = conformance.run(flawed(Flaws(rsv=False)).url, ["3.1", "3.5"])
        assert results(report) == {"3.1": Grade.FAILED, "3.5": Grade.FAILED}

    def test_leaving_tcp_open(self, flawed: type[FlawedServer]) -> None:
        report = conformance.run(flawed(Flaws(close_tcp=False)).url, ["7.3.3"], timeout=1.5)
        assert report["7.3.3"].result is Grade.NON_STRICT
        assert report["7.3.3"].verdict.closing is Closing.FAILED_BY_CLIENT

    def test_masking_server_frames(self, flawed: type[FlawedServer]) -> None:
        report = conformance.run(flawed(Flaws(mask=True)).url, ["1.1.2"])
        assert report["1.1.2"].result is Grade.FAILED
        assert "masked" in report["1.1.2"].verdict.reason

    def test_accepting_any_handshake(self, flawed: type[FlawedServer]) -> None:
        report = conformance.run(flawed(Flaws(any_handshake=True)).url, ["10.9", "10.13", "10.1"])
        assert results(report) == {"10.9": Grade.FAILED, "10.13": Grade.FAILED, "10.1": Grade.OK}

    def test_a_deaf_server_does_not_wedge_the_run(self, flawed: type[FlawedServer]) -> None:
        """After its handshake it reads nothing: every case ends on its own deadline."""
        server = flawed(Flaws(read=False))
        report = conformance.run(server.url, ["1.1.1", "2.1", "6.4.1", "10.1"], timeout=1)
        assert results(report) == {
            "1.1.1": Grade.FAILED,
            "2.1": Grade.FAILED,
            "6.4.1": Grade.FAILED,
            "10.1": Grade.OK,
        }
        assert report.notes  # The probe message was not echoed either.


class TestRunErrors:
    """A bad URL or no server: one clear error, no hang."""

    def test_no_server(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        with pytest.raises(ConnectError, match="cannot check"):
            conformance.run(f"ws://127.0.0.1:{port}/", timeout=0.3)

    def test_a_server_that_never_answers_the_handshake(self) -> None:
        with socket.create_server(("127.0.0.1", 0)) as listener:
            url = f"ws://127.0.0.1:{listener.getsockname()[1]}/"
            with pytest.raises(ConnectError, match="no answer"):
                conformance.run(url, timeout=0.2)

    def test_not_a_websocket_url(self) -> None:
        with pytest.raises(ValueError, match="HTTP URL"):
            conformance.run("http://127.0.0.1:8080/")


# -- the three real servers ---------------------------------------------------------------


@pytest.fixture(scope="module")
def raw_report() -> Iterator[Report]:
    with RawServer("echo", port=0) as server:
        yield conformance.run(server.url, timeout=2)


@pytest.fixture(scope="module")
def serve_report() -> Iterator[Report]:
    server = wslab.serve("echo", port=0)
    try:
        yield conformance.run(server.url, timeout=2)
    finally:
        server.stop()


async def _echo(ws: ServerConnection) -> None:
    try:
        async for message in ws:
            await ws.send(message)
    except ConnectionClosed:
        pass  # The checker broke the protocol on purpose.


@pytest.fixture(scope="module")
def websockets_report() -> Iterator[Report]:
    """websockets' own asyncio echo server (compression on, its default)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def start() -> object:
        # close_timeout: after failing a 10000-fragment message with "too many
        # fragments" (case 9.4.2), websockets 17.4 keeps that handler until
        # close_timeout (10 s by default) although the checker closed at once.
        return await websockets_serve(_echo, "127.0.0.1", 0, close_timeout=1)

    server = asyncio.run_coroutine_threadsafe(start(), loop).result()
    port = next(iter(server.sockets)).getsockname()[1]  # type: ignore[attr-defined]
    try:
        yield conformance.run(f"ws://127.0.0.1:{port}/", timeout=2)
    finally:

        async def stop() -> None:
            server.close()  # type: ignore[attr-defined]
            await server.wait_closed()  # type: ignore[attr-defined]

        asyncio.run_coroutine_threadsafe(stop(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


class TestRealServers:
    """No FAILED case beyond the known ones; the results are printed for the record."""

    @pytest.mark.parametrize("name", ["raw", "serve", "websockets"])
    def test_no_failures_beyond_the_known_ones(
        self, name: str, request: pytest.FixtureRequest
    ) -> None:
        report: Report = request.getfixturevalue(f"{name}_report")
        print(f"\n{name}: {report.summary}")
        for result in report.failed + report.non_strict:
            print(f"  {result.id} {result.result}: {result.verdict.reason}")
        assert {result.id for result in report.failed} <= KNOWN_FAILURES[name], str(report)
        assert len(report) == len(CASES)

    def test_wslab_echo_prefix_is_found(self, raw_report: Report) -> None:
        assert raw_report.echo_prefix == "You sent: "
        assert raw_report["1.1.2"].result is Grade.OK

    def test_compression_is_graded_where_negotiated(
        self, serve_report: Report, websockets_report: Report
    ) -> None:
        """wslab.serve turns permessage-deflate off; websockets has it on."""
        compression = [case.id for case in select("compression")]
        assert {serve_report[i].result for i in compression} == {Grade.UNIMPLEMENTED}
        assert {websockets_report[i].result for i in compression} == {Grade.OK}


class TestReport:
    """The report: a table in a notebook, text in a terminal, details per case."""

    def test_html_table(self, raw_report: Report) -> None:
        page = raw_report._repr_html_()
        assert page.count("<tr>") == len(raw_report) + 1
        assert raw_report.summary in page
        assert "6.4.1" in page and "8.1" in page

    def test_text_and_details(self, raw_report: Report) -> None:
        text = str(raw_report)
        assert text.splitlines()[0] == raw_report.summary
        details = str(raw_report["5.6"])
        assert "RFC 6455 section 5.4, 5.5.2" in details
        assert "→ PING 'ping payload'" in details and "← PONG" in details

    def test_lists_and_counts(self, raw_report: Report) -> None:
        assert sum(raw_report.counts.values()) == len(raw_report)
        assert raw_report.ok and all(r.result is Grade.OK for r in raw_report.ok)
        assert all(r.result is Grade.NON_STRICT for r in raw_report.non_strict)
        with pytest.raises(KeyError):
            raw_report["99.1"]

    def test_every_case_kind_is_a_case(self) -> None:
        assert all(isinstance(case, Case | HandshakeCase) for case in CASES)


def test_a_private_servers_token_never_shows_in_a_report() -> None:
    """The report and each case's details hide the token of the URL they were given."""
    from wslab.raw import RawServer

    with RawServer("echo", port=0).start() as server:
        assert server.token and server.token in server.url
        report = conformance.run(server.url, cases=["1.1.1", "10.1"])
    shown = [str(report), repr(report), report._repr_html_()]
    shown += [str(result) + result._repr_html_() for result in report.results]
    assert report.ok and not any(server.token in text for text in shown)
