"""wslab.check: the messages students read when an exercise test fails."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest

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


# -- part --------------------------------------------------------------------


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
    def close_payload(code: int, reason: str) -> bytes:
        return code.to_bytes(2, "big") + reason  # type: ignore[operator]

    def run() -> None:
        with check.part("close_payload"):
            close_payload(1000, "bye")

    error = failure(run)
    assert str(error).startswith("✗ close_payload: TypeError: can't concat str to bytes")
    assert isinstance(error.__cause__, TypeError)
    # What IPython shows: the student's traceback, then the explanation, no check.py frames.
    rendered = "\n".join(error._render_traceback_())
    assert 'return code.to_bytes(2, "big") + reason' in rendered
    assert "wslab/check.py" not in rendered
    assert rendered.endswith(str(error).split("\n", 1)[1])


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


def stdlib_only(key: str) -> str:
    import base64

    return base64.b64encode(hashlib.sha1(key.encode()).digest()).decode()


def test_own_work_accepts_the_standard_library() -> None:
    check.own_work(stdlib_only)


@pytest.mark.parametrize("function", [own_accept_key, borrowed_accept_key, indirect_accept_key])
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


async def echo(ws: object) -> None:
    async for message in ws:  # type: ignore[attr-defined]
        await ws.send(message)  # type: ignore[attr-defined]


async def unfinished(ws: object) -> None:
    raise NotImplementedError()


async def broken(ws: object) -> None:
    async for message in ws:  # type: ignore[attr-defined]
        await ws.send({"oops": message}[message.upper()])  # type: ignore[attr-defined]


async def silent(ws: object) -> None:
    async for _message in ws:  # type: ignore[attr-defined]
        pass


async def to_bytes(ws: object) -> None:
    async for message in ws:  # type: ignore[attr-defined]
        await ws.send(message.encode())  # type: ignore[attr-defined]


@pytest.fixture
def peer_of() -> Iterator[object]:
    """Serve a handler with check.serving and connect one Peer; clean up both."""
    stack: list[object] = []

    def start(handler: object, timeout: float = 2.0) -> check.Peer:
        serving = check.serving(handler)  # type: ignore[arg-type]
        server = serving.__enter__()
        stack.append(serving)
        peer = check.connect(server, name="alice", timeout=timeout)
        stack.append(peer)
        return peer

    yield start
    for item in reversed(stack):
        item.__exit__(None, None, None)  # type: ignore[attr-defined]


def test_a_working_handler_passes(peer_of: object) -> None:
    peer = peer_of(echo)  # type: ignore[operator]
    peer.send("Hello")
    peer.expect("Hello", what="echo of Hello")
    peer.send(b"\x00\xff")
    peer.expect(b"\x00\xff", what="echo of binary")


def test_an_unfinished_handler_is_not_written_yet(peer_of: object) -> None:
    peer = peer_of(unfinished)  # type: ignore[operator]
    error = failure(peer.expect, "Hello", what="echo of Hello")
    assert isinstance(error, check.NotImplementedYet)
    assert str(error).splitlines()[0] == "✗ unfinished: not written yet"


def test_a_crashing_handler_is_reported_with_its_exception(peer_of: object) -> None:
    peer = peer_of(broken)  # type: ignore[operator]
    peer.send("hi")
    error = failure(peer.expect, "hi", what="echo of hi")
    lines = str(error).splitlines()
    assert (
        lines[0]
        == "✗ echo of hi: the server closed alice's connection (code 1011 "
        + repr("handler error: KeyError")
        + ")"
    )
    assert lines[1] == "  your handler raised KeyError: 'HI'"


def test_a_silent_handler_times_out_with_a_hint(peer_of: object) -> None:
    peer = peer_of(silent, timeout=0.2)  # type: ignore[operator]
    peer.send("hi")
    error = failure(peer.expect, "hi", what="echo of hi")
    assert str(error).startswith("✗ echo of hi: alice got no message within 0.2 s")
    assert "await ws.send" in (error.hint or "")


def test_text_and_binary_are_different_messages(peer_of: object) -> None:
    peer = peer_of(to_bytes)  # type: ignore[operator]
    peer.send("hi")
    error = failure(peer.expect, "hi", what="echo of hi", rfc="5.6")
    assert str(error).startswith("✗ echo of hi: expected a str, got bytes")


def test_serving_refuses_a_plain_function() -> None:
    def not_async(ws: object) -> None:
        pass

    def run() -> None:
        with check.serving(not_async):
            pass

    assert "async def handler(ws)" in str(failure(run))


def test_connect_to_nothing_fails_clearly() -> None:
    with check.serving(echo) as server:
        url = server.url
    error = failure(check.connect, url, name="bob", timeout=1.0)
    assert str(error).startswith(f"✗ connecting bob to {url}: ")
