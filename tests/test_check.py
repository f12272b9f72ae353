"""wslab.check: the messages students read when an exercise test fails."""

from __future__ import annotations

import hashlib
import linecache
import re
import time
from collections.abc import Iterator

import pytest
from _util import wait_until

import wslab.handlers
import wslab.handshake
from wslab import check
from wslab.closing import parse_close
from wslab.errors import ProtocolError
from wslab.frames import Frame, Opcode, encode

RFC_KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def failure(function: object, *args: object, **kwargs: object) -> check.CheckFailed:
    """Call a check that must fail; return its exception."""
    assert callable(function)
    with pytest.raises(check.CheckFailed) as info:
        function(*args, **kwargs)
    return info.value


# -- equal -------------------------------------------------------------------


def test_equal_passes_silently_on_equal_values() -> None:
    check.equal(wslab.handshake.accept_key(RFC_KEY), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", what="x")
    check.equal([1, "a"], (1, "a"), what="a list where a tuple is expected")
    check.equal(bytearray(b"ab"), b"ab", what="a bytearray where bytes are expected")


def test_a_failed_check_is_an_assertion_error_with_a_full_explanation() -> None:
    error = failure(
        check.equal,
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo",
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
        what="Sec-WebSocket-Accept for the RFC 1.3 key",
        rfc="4.2.2",
        hint="keep the base64 padding",
    )
    assert isinstance(error, AssertionError)
    assert str(error).splitlines() == [
        "✗ Sec-WebSocket-Accept for the RFC 1.3 key: got a different value",
        "  expected: 's3pPLMBiTxaQ9kYGzzhZRbK+xOo='",
        "  got:      's3pPLMBiTxaQ9kYGzzhZRbK+xOo'",
        "  hint: keep the base64 padding",
        "  see RFC 6455 section 4.2.2: https://www.rfc-editor.org/rfc/rfc6455#section-4.2.2",
    ]
    assert (error.what, error.rfc, error.hint) == (
        "Sec-WebSocket-Accept for the RFC 1.3 key",
        "4.2.2",
        "keep the base64 padding",
    )


def test_bytes_get_a_hex_diff_that_points_at_the_first_difference() -> None:
    # RFC 6455 5.7: the unmasked "Hello"; the student set the MASK bit by mistake.
    expected = encode(Frame(Opcode.TEXT, b"Hello"))
    error = failure(check.equal, b"\x81\x85Hello", expected, what="frame", rfc="5.7")
    lines = str(error).splitlines()
    assert lines[:4] == [
        "✗ frame: the bytes differ",
        "  expected: 81 05 48 65 6c 6c 6f  (7 bytes)",
        "  got:      81 85 48 65 6c 6c 6f  (7 bytes)",
        "               ^^ first difference at byte 1 (bits 10000000 differ)",
    ]
    # The caret sits under the differing byte.
    assert lines[3].index("^^") == lines[2].index("85")


def test_hex_diff_of_long_values_shows_a_window_around_the_difference() -> None:
    expected = bytes(70_000)
    actual = bytes(69_999) + b"\x01"
    lines = check.hex_diff(actual, expected).splitlines()
    assert lines[0].startswith("expected: … 00") and lines[0].endswith("(70000 bytes)")
    assert "01" in lines[1]
    assert "first difference at byte 69999" in lines[2]
    assert lines[2].index("^^") == lines[1].index("01")


def test_hex_diff_of_different_lengths() -> None:
    assert "yours ends at byte 2: 2 bytes missing" in check.hex_diff(b"\x81\x05", b"\x81\x05He")
    assert "2 bytes too many, from byte 1 on" in check.hex_diff(b"\x88\x00\x00", b"\x88")


def test_tuples_are_compared_item_by_item_with_a_hex_view_for_bytes() -> None:
    """Issue 13: decode_frame's (fin, opcode, payload) shows the payload's bytes in hex."""
    error = failure(
        check.equal,
        (True, 1, bytes(200) + b"\x01"),
        (False, 1, bytes(201)),
        what="decode_frame()",
        names=("fin", "opcode", "payload"),
    )
    assert str(error).splitlines()[:6] == [
        "✗ decode_frame(): got a different value",
        "  item 0 (fin): expected False",
        "                     got True",
        "  item 2 (payload): the bytes differ",
        "    expected: … 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00  (201 bytes)",
        "    got:      … 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 01  (201 bytes)",
    ]


@pytest.mark.parametrize(
    ("actual", "expected", "problem", "hint"),
    [
        ("Hello", b"Hello", "expected bytes, got a str", ".encode()"),
        (b"bye", "bye", "expected a str, got bytes", ".decode()"),
        ("1000", 1000, "expected an int, got a str", "int(...)"),
        (None, b"\x03\xe8", "got None", "forget to `return`"),
        (1, True, "expected a bool, got an int", None),
    ],
)
def test_wrong_types_are_named_with_a_hint(
    actual: object, expected: object, problem: str, hint: str | None
) -> None:
    error = failure(check.equal, actual, expected, what="value")
    assert str(error).startswith(f"✗ value: {problem}")
    if hint:
        assert hint in (error.hint or "")


def test_true_states_the_rule() -> None:
    check.true(True, what="anything")
    error = failure(check.true, b"x".endswith(b"\r\n\r\n"), what="ends with CRLF CRLF", rfc="4.1")
    assert str(error).startswith("✗ ends with CRLF CRLF: not the case")
    assert "section 4.1" in str(error)


# -- raises ------------------------------------------------------------------


def test_raises_accepts_the_expected_exception_and_close_code() -> None:
    with check.raises(ProtocolError, code=1002, what="a 1-byte close payload", rfc="5.5.1"):
        parse_close(b"\x03")


def test_raises_explains_a_wrong_close_code() -> None:
    def parse() -> None:
        with check.raises(ProtocolError, code=1002, what="non-UTF-8 reason", rfc="5.5.1"):
            parse_close(b"\x03\xe8\xff")  # RFC 6455 7.1.7 / 8.1: that is 1007

    error = failure(parse)
    assert str(error).splitlines()[:2] == [
        "✗ non-UTF-8 reason: raised ProtocolError with close code 1007",
        "  expected: ProtocolError with close code 1002",
    ]


def test_raises_explains_a_missing_exception() -> None:
    def parse() -> None:
        with check.raises(ValueError, what="parse of 1 byte"):
            pass

    assert str(failure(parse)).splitlines()[:2] == [
        "✗ parse of 1 byte: returned normally",
        "  expected it to raise ValueError",
    ]


def test_raises_explains_another_exception_and_keeps_it_as_the_cause() -> None:
    def parse() -> None:
        with check.raises(ValueError, what="parse"):
            raise KeyError("x")

    error = failure(parse)
    assert str(error).startswith("✗ parse: raised KeyError: 'x'")
    assert isinstance(error.__cause__, KeyError)


# -- part and case -----------------------------------------------------------

_cells = iter(range(1, 1000))


def cell(source: str, **names: object) -> dict[str, object]:
    """Run ``source`` as a notebook cell would (its own file name); return its names.

    Student code in a notebook lives in cell files of its own, apart from the
    test cell and from wslab: that is how check finds "your line".
    """
    namespace: dict[str, object] = {"__name__": "__main__", **names}
    filename = f"<cell-{next(_cells)}>"
    lines = [line + "\n" for line in source.splitlines()]
    linecache.cache[filename] = (len(source), None, lines, filename)
    exec(compile(source, filename, "exec"), namespace)
    return namespace


def not_written(key: str) -> str:
    raise NotImplementedError()


def test_part_turns_not_implemented_into_one_clear_message() -> None:
    def run() -> None:
        with check.part("accept_key"):
            not_written(RFC_KEY)

    error = failure(run)
    assert isinstance(error, check.NotImplementedYet)
    assert str(error).splitlines()[0] == "✗ accept_key: not written yet"
    assert "raise NotImplementedError()" in str(error)
    assert error.__cause__ is None and error.__suppress_context__


def test_raises_treats_not_implemented_the_same_way() -> None:
    def run() -> None:
        with check.raises(ValueError, what="validate_request() of a POST"):
            not_written("")

    assert isinstance(failure(run), check.NotImplementedYet)


def test_part_names_a_crash_in_student_code_and_keeps_its_traceback() -> None:
    student = cell(
        "def close_payload(code, reason):\n    return code.to_bytes(2, 'big') + reason\n"
    )

    def run() -> None:
        with check.part("close_payload"):
            student["close_payload"](1000, "bye")  # type: ignore[operator]

    error = failure(run)
    assert str(error).startswith(
        "✗ close_payload: your code raised TypeError: can't concat str to bytes"
    )
    assert isinstance(error.__cause__, TypeError)
    # What IPython shows: the student's traceback, then the explanation; no frames
    # of check.py, nor of the test cell (this file) that called the student's code.
    rendered = "\n".join(error._render_traceback_())
    assert "return code.to_bytes(2, 'big') + reason" in rendered
    assert "wslab/check.py" not in rendered
    assert "test_check.py" not in rendered
    assert rendered.endswith(str(error).split("\n", 1)[1])


def test_a_case_names_the_input_the_rule_and_the_students_line() -> None:
    """Issue 13: an exception in a hidden test says which input, which rule, where."""
    student = cell(
        "def validate_request(raw):\n"
        "    if b'Upgrade: websocket' not in raw:\n"
        "        raise ValueError('not a websocket upgrade')\n"
        "    return 'key'\n"
    )

    def run() -> None:
        with check.part("validate_request"):
            with check.case(
                "validate_request() of a request with lower-case header names",
                rfc="4.2.1",
                hint="header names are case-insensitive",
            ):
                check.equal(student["validate_request"](b"upgrade: websocket"), "key")

    error = failure(run)
    assert str(error).splitlines() == [
        "✗ validate_request() of a request with lower-case header names: your code raised "
        "ValueError: not a websocket upgrade",
        "  The traceback above ends at the line of your code that raised it.",
        "  hint: header names are case-insensitive",
        "  see RFC 6455 section 4.2.1: https://www.rfc-editor.org/rfc/rfc6455#section-4.2.1",
    ]
    rendered = "\n".join(error._render_traceback_())
    assert "raise ValueError('not a websocket upgrade')" in rendered
    assert "with check.case" not in rendered and "check.equal" not in rendered


def test_checks_inside_a_case_use_its_description() -> None:
    def run() -> None:
        with check.case("accept_key() of the key 'x'", rfc="4.2.2", hint="SHA-1, then base64"):
            check.equal("a", "b")

    lines = str(failure(run)).splitlines()
    assert lines[0] == "✗ accept_key() of the key 'x': got a different value"
    assert lines[-2:] == [
        "  hint: SHA-1, then base64",
        "  see RFC 6455 section 4.2.2: https://www.rfc-editor.org/rfc/rfc6455#section-4.2.2",
    ]


def test_an_exception_from_reading_the_result_shows_no_traceback_into_wslab() -> None:
    """A response that does not parse is the student's problem, but not the student's line."""
    from wslab.handshake import Response

    def run() -> None:
        with check.case("the response build_response() returned", rfc="4.2.2"):
            Response.parse(b"HTTP/1.1 101\r\nUpgrade websocket\r\n\r\n")

    error = failure(run)
    assert "checking what your code returned failed: HandshakeError" in str(error)
    assert error.student_tb is None
    assert not any("handshake.py" in line for line in error._render_traceback_())


def test_a_part_that_relies_on_a_failed_part_says_so() -> None:
    def failing(name: str) -> None:
        with check.part(name):
            check.equal(1, 2, what="x")

    failure(failing, "accept_key")
    error = failure(failing_uses, "build_response", ("accept_key", "never_run"))
    assert str(error).splitlines()[-1] == (
        "  note: build_response relies on your accept_key, which failed its own test above: "
        "fix that first; this part may then pass as it is."
    )
    assert check.results()["build_response"] is False


def failing_uses(name: str, uses: tuple[str, ...]) -> None:
    with check.part(name, uses=uses):
        check.equal(1, 2, what="x")


def test_an_endless_loop_is_stopped_at_the_students_line() -> None:
    student = cell("def mask(data, key):\n    i = 0\n    while i < len(data):\n        pass\n")

    def run() -> None:
        with check.part("mask", time_limit=0.3):
            student["mask"](b"abc", b"1234")  # type: ignore[operator]

    error = failure(run)
    assert (
        str(error).splitlines()[0] == "✗ mask: still running after 0.3 s, so the check stopped it"
    )
    rendered = "\n".join(error._render_traceback_())
    assert "while i < len(data)" in rendered or "pass" in rendered


def test_a_loop_stopped_inside_a_case_names_the_input_and_section() -> None:
    student = cell("def mask(data, key):\n    while data:\n        key = key[::-1]\n")

    def run() -> None:
        with check.part("mask", time_limit=0.3):
            with check.case("mask() of 9 bytes", rfc="5.3"):
                student["mask"](bytes(9), b"1234")  # type: ignore[operator]

    lines = str(failure(run)).splitlines()
    assert lines[0] == "✗ mask() of 9 bytes: still running after 0.3 s, so the check stopped it"
    assert lines[-1].startswith("  see RFC 6455 section 5.3")


def test_the_time_limit_does_not_hide_a_failure_it_interrupts() -> None:
    """A failed check whose clean-up outlasts the limit still reports that failure."""

    def run() -> None:
        with check.part("echo", time_limit=0.3):
            try:
                check.equal("a", "b", what="the echo of 'b'")
            finally:
                time.sleep(1)  # a server that takes long to stop

    assert str(failure(run)).startswith("✗ the echo of 'b': got a different value")


def test_part_explains_a_function_that_is_not_defined() -> None:
    def run() -> None:
        with check.part("accept_key"):
            exec("accept_key('x')", {})  # as in a kernel where its cell never ran

    error = failure(run)
    assert str(error).splitlines() == [
        "✗ accept_key: NameError: name 'accept_key' is not defined",
        "  If that is the name of your function, run the cell that defines it",
        "  (fix any error it shows), then this one again. Otherwise the",
        "  traceback above shows the line with the misspelt name.",
    ]
    assert isinstance(error.__cause__, NameError)


def test_part_lets_failed_checks_through_and_prints_a_tick_on_success(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with check.part("accept_key"):
        check.equal(wslab.handshake.accept_key(RFC_KEY), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", what="x")
    assert capsys.readouterr().out == "✓ accept_key: all checks passed\n"

    def run() -> None:
        with check.part("accept_key"):
            check.equal("wrong", "right", what="the accept value")

    error = failure(run)
    assert str(error).startswith("✗ the accept value: got a different value")
    assert capsys.readouterr().out == ""


def test_rendered_failure_has_only_the_message() -> None:
    error = failure(check.equal, 1, 2, what="x", rfc="7.4")
    lines = error._render_traceback_()
    assert lines[0] == "\x1b[0;31mCheckFailed\x1b[0m: ✗ x: got a different value"
    assert lines[1:] == str(error).splitlines()[1:]


def test_other_standards_are_cited_with_their_own_links() -> None:
    error = failure(check.equal, "a", "b", what="the event's data", rfc="HTML 9.2.6")
    assert str(error).splitlines()[-1] == (
        "  see the HTML standard, section 9.2.6 (interpreting an event stream): "
        "https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation"
    )


# -- own_work ----------------------------------------------------------------


def own_accept_key(key: str) -> str:
    import base64

    return base64.b64encode(hashlib.sha1((key + wslab.handshake.GUID).encode()).digest()).decode()


def borrowed_accept_key(key: str) -> str:
    from wslab.handshake import accept_key

    return accept_key(key)


def helper(key: str) -> str:
    return wslab.handshake.accept_key(key)


def indirect_accept_key(key: str) -> str:
    return helper(key)


def imported_by_name(key: str) -> str:
    import importlib

    return str(importlib.import_module("wslab.handshake").accept_key(key))


def through_sys_modules(key: str) -> str:
    import sys

    return str(sys.modules["wslab.handshake"].accept_key(key))


def through_a_default(key: str, compute: object = wslab.handshake.accept_key) -> str:
    return str(compute(key))  # type: ignore[operator]


def stdlib_only(key: str) -> str:
    import base64

    return base64.b64encode(hashlib.sha1(key.encode()).digest()).decode()


def test_own_work_accepts_the_standard_library() -> None:
    check.own_work(stdlib_only)


@pytest.mark.parametrize(
    "function",
    [
        own_accept_key,
        borrowed_accept_key,
        indirect_accept_key,
        imported_by_name,
        through_sys_modules,
        through_a_default,
    ],
)
def test_own_work_rejects_code_that_calls_wslab(function: object) -> None:
    # own_accept_key only reads wslab's GUID, but that still counts as using wslab.
    assert callable(function)
    error = failure(check.own_work, function)
    assert str(error).startswith(f"✗ {function.__name__}: uses ")  # type: ignore[attr-defined]
    assert "wslab" in str(error).splitlines()[0]


ROOM = wslab.handlers.Chat()


async def delegating_chat(ws: object) -> None:
    await ROOM(ws)  # type: ignore[arg-type]


def test_own_work_rejects_a_handler_that_delegates_to_wslab() -> None:
    error = failure(check.own_work, delegating_chat)
    assert str(error).splitlines()[0] == "✗ delegating_chat: uses ROOM (from wslab.handlers)"


# -- serving and connect -----------------------------------------------------
# The handlers are "student code": cells compiled apart from this file.

HANDLERS = cell(
    """
import asyncio
import time

from websockets.exceptions import ConnectionClosed

clients = {}


async def echo(ws):
    async for message in ws:
        await ws.send(message)


async def unfinished(ws):
    raise NotImplementedError()


async def broken(ws):
    async for message in ws:
        await ws.send({"oops": message}[message.upper()])


async def silent(ws):
    async for message in ws:
        pass


async def to_bytes(ws):
    async for message in ws:
        await ws.send(message.encode())


async def sleepy(ws):
    async for message in ws:
        time.sleep(0.5)  # blocks the loop, then answers
        await ws.send(message)


async def spinning(ws):
    async for message in ws:
        while True:  # blocks the loop for good
            pass


async def room(ws):
    # A chat that never removes anyone: its clients dict keeps closed connections.
    clients[ws] = "x"
    async for message in ws:
        for other in clients:
            await other.send(message)
"""
)


@pytest.fixture
def peer_of() -> Iterator[object]:
    """Serve a handler with check.serving and connect one Peer; clean up both."""
    stack: list[object] = []

    def start(handler: object, timeout: float = 2.0) -> check.Peer:
        serving = check.serving(HANDLERS[handler])  # type: ignore[arg-type, index]
        server = serving.__enter__()
        stack.append(serving)
        peer = check.connect(server, name="alice", timeout=timeout)
        stack.append(peer)
        return peer

    yield start
    for item in reversed(stack):
        item.__exit__(None, None, None)  # type: ignore[attr-defined]


def test_a_working_handler_passes(peer_of: object) -> None:
    peer = peer_of("echo")  # type: ignore[operator]
    peer.send("Hello")
    peer.expect("Hello", what="echo of Hello")
    peer.send(b"\x00\xff")
    peer.expect(b"\x00\xff", what="echo of binary")


def test_an_unfinished_handler_is_not_written_yet(peer_of: object) -> None:
    peer = peer_of("unfinished")  # type: ignore[operator]
    error = failure(peer.expect, "Hello", what="echo of Hello")
    assert isinstance(error, check.NotImplementedYet)
    assert str(error).splitlines()[0] == "✗ unfinished: not written yet"


def test_a_crashing_handler_is_reported_with_its_exception_and_line(peer_of: object) -> None:
    peer = peer_of("broken")  # type: ignore[operator]
    peer.send("hi")
    error = failure(peer.expect, "hi", what="echo of hi")
    lines = str(error).splitlines()
    assert lines[0] == (
        "✗ echo of hi: the server closed alice's connection (code 1011 "
        + repr("handler error: KeyError")
        + ")"
    )
    assert lines[1] == "  your handler raised KeyError: 'HI' (alice's connection)"
    assert 'in broken: await ws.send({"oops": message}[message.upper()])' in lines[2]


def test_a_silent_handler_times_out_with_a_hint(peer_of: object) -> None:
    peer = peer_of("silent", timeout=0.2)  # type: ignore[operator]
    peer.send("hi")
    error = failure(peer.expect, "hi", what="echo of hi")
    assert str(error).startswith("✗ echo of hi: alice got no message within 0.2 s")
    assert "await ws.send" in (error.hint or "")


def test_text_and_binary_are_different_messages(peer_of: object) -> None:
    peer = peer_of("to_bytes")  # type: ignore[operator]
    peer.send("hi")
    error = failure(peer.expect, "hi", what="echo of hi", rfc="5.6")
    assert str(error).startswith("✗ echo of hi: expected a str, got bytes")


def test_a_handler_that_blocks_its_loop_spoils_only_its_own_server() -> None:
    """Issue 13: a blocking echo must not zero the chat parts graded after it."""
    with check.serving(HANDLERS["spinning"]) as server:  # type: ignore[arg-type]
        with check.connect(server, name="alice", timeout=0.5) as alice:
            alice.send("hi")
            error = failure(alice.expect, "hi", what="echo of hi")
    assert "your handler blocks the server's event loop" in str(error).splitlines()[0]
    assert "time.sleep()" in (error.hint or "")
    assert server.blocked
    # The next part gets a fresh server on a fresh loop, and grades normally.
    with check.serving(HANDLERS["echo"]) as server, check.connect(server) as bob:  # type: ignore[arg-type]
        bob.send("still fine")
        bob.expect("still fine", what="echo after a blocked server")


def test_a_blocked_server_is_named_even_when_the_time_limit_comes_first() -> None:
    def run() -> None:
        with check.part("echo", time_limit=0.5), check.serving(HANDLERS["spinning"]) as server:  # type: ignore[arg-type]
            with check.connect(server, name="alice", timeout=5) as alice:
                alice.send("hi")
                alice.expect("hi", what="echo of hi", rfc="5.6")

    error = failure(run)
    assert str(error).splitlines()[0] == (
        "✗ echo: still waiting after 0.5 s: your handler blocks the server's event loop"
    )


def test_a_slow_but_finite_block_is_not_reported_as_blocking(peer_of: object) -> None:
    peer = peer_of("sleepy")  # type: ignore[operator]
    peer.send("hi")
    peer.expect("hi", what="echo of hi")


def test_stale_connections_in_module_state_do_not_leak_into_the_next_server() -> None:
    """Issue 13: a clients dict left by one part must not break the next part's server."""
    room = HANDLERS["room"]
    with check.serving(room) as server:  # type: ignore[arg-type]
        with check.connect(server, name="alice") as alice:
            alice.send("one")
            alice.expect("one", what="the room's echo")
    assert HANDLERS["clients"] == {}
    with check.serving(room) as server, check.connect(server, name="bob") as bob:  # type: ignore[arg-type]
        bob.send("two")
        bob.expect("two", what="the room's echo in a fresh server")


def test_connection_closed_raised_by_a_handler_is_shown_as_it_is() -> None:
    """Issue 13: sending to a departed client: show the student's real exception."""
    room = HANDLERS["room"]
    with check.serving(room) as server:  # type: ignore[arg-type]
        alice = check.connect(server, name="alice", timeout=2)
        bob = check.connect(server, name="bob", timeout=2)
        bob.close()
        alice.send("anyone?")
        # The room sends to bob, who left: ConnectionClosedOK in alice's handler.
        error = failure(lambda: [alice.recv(what="alice's own message") for _ in range(2)])
        alice.close()
    text = str(error)
    assert "your handler raised ConnectionClosedOK" in text
    assert "await other.send(message)" in text
    assert "catch it around that send" in (error.hint or "")


def test_handshake_status_reports_refusals() -> None:
    from http import HTTPStatus

    def only_with_token(ws: object, request: object) -> object:
        if "token=s3cret" in request.path:  # type: ignore[attr-defined]
            return None
        return ws.respond(HTTPStatus.FORBIDDEN, "no\n")  # type: ignore[attr-defined]

    echo = HANDLERS["echo"]
    with check.serving(echo, process_request=only_with_token) as server:  # type: ignore[arg-type]
        assert check.handshake_status(server) == 403
        assert check.handshake_status(server, query="token=s3cret") == 101


def test_expect_close_checks_the_code() -> None:
    closer = cell(
        "async def closer(ws):\n    await ws.send('bye')\n    await ws.close(1008, 'too slow')\n"
    )
    with check.serving(closer["closer"]) as server, check.connect(server) as peer:  # type: ignore[arg-type]
        peer.expect_close(code=1008, what="the close of a slow client", rfc="7.4.1")
    with check.serving(closer["closer"]) as server, check.connect(server) as peer:  # type: ignore[arg-type]
        error = failure(peer.expect_close, code=1000, what="the close")
    assert str(error).startswith("✗ the close: closed with code 1008, expected 1000")


def test_serving_refuses_a_plain_function() -> None:
    def not_async(ws: object) -> None:
        pass

    def run() -> None:
        with check.serving(not_async):
            pass

    assert "async def handler(ws)" in str(failure(run))


def test_connect_to_nothing_fails_clearly() -> None:
    with check.serving(HANDLERS["echo"]) as server:  # type: ignore[arg-type]
        url = server.url
    error = failure(check.connect, url, name="bob", timeout=1.0)
    assert str(error).startswith(f"✗ connecting bob to {url}: ")


# -- helpers of the later exercises ------------------------------------------


def test_uses_name_finds_globals_attributes_and_helpers() -> None:
    student = cell(
        "import hmac\n"
        "def same(a, b):\n    return hmac.compare_digest(a, b)\n"
        "def token_ok(path, secret):\n    return same(path, secret)\n"
        "def naive(path, secret):\n    return path == secret\n"
    )
    assert check.uses_name(student["token_ok"], "compare_digest")  # type: ignore[arg-type]
    assert not check.uses_name(student["naive"], "compare_digest")  # type: ignore[arg-type]


def test_a_stalled_client_backs_up_the_server_and_sees_the_close() -> None:
    """The slow consumer of the broadcast exercise: it reads nothing, then its close."""
    flood = cell(
        "import asyncio\n"
        "gave_up = []\n"
        "async def flood(ws):\n"
        "    try:\n"
        "        for _ in range(1000):\n"
        "            await asyncio.wait_for(ws.send(bytes(8192)), 1)\n"
        "    except TimeoutError:\n"
        "        gave_up.append(True)\n"
        "        await ws.close(1008, 'too slow')\n"
    )
    with check.serving(flood["flood"], send_buffer=16384) as server:  # type: ignore[arg-type]
        with check.stalled(server, name="slow") as slow:
            # Reading would unblock the server: wait until it gives up first.
            wait_until(lambda: flood["gave_up"], 20, what="the server gives up on a slow client")
            assert slow.close_code(timeout=10) == 1008


def test_the_conformance_checker_fails_only_what_a_correct_echo_passes() -> None:
    echoes = cell(
        "async def echo(ws):\n"
        "    async for message in ws:\n"
        "        await ws.send(message)\n"
        "async def text_only(ws):\n"
        "    async for message in ws:\n"
        "        if isinstance(message, bytes):\n"
        "            message = message.decode('latin-1')\n"
        "        await ws.send(message)\n"
    )
    with check.serving(echoes["echo"]) as server:  # type: ignore[arg-type]
        check.conformance(
            server, reference=wslab.handlers.echo, cases="framing", what="the checker"
        )
    with check.serving(echoes["text_only"]) as server:  # type: ignore[arg-type]
        error = failure(
            check.conformance,
            server,
            reference=wslab.handlers.echo,
            cases="framing",
            what="the checker",
        )
    lines = str(error).splitlines()
    assert re.match(r"✗ the checker: \d+ of \d+ cases fail that a correct echo passes", lines[0])
    assert lines[1].startswith("  case 1.")
    assert "see RFC 6455 section 5." in lines[-1]
