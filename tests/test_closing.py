"""Tests of wslab.closing: close codes and close payloads (RFC 6455 5.5.1, 7.1.5, 7.4)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wslab.closing import (
    MAX_REASON_BYTES,
    Close,
    CloseCode,
    is_valid_wire_code,
    parse_close,
    serialize_close,
)
from wslab.errors import (
    ConnectError,
    ConnectionClosed,
    LoopBlockedError,
    ProtocolError,
    ServerStartError,
    WSLabError,
    code_meaning,
)

# (payload, code, reason): close payloads both ways.
VECTORS = [
    ("", 1005, ""),
    ("03 e8", 1000, ""),
    ("03 e9 62 79 65", 1001, "bye"),
    ("03 f1 74 6f 6f 20 62 69 67", 1009, "too big"),
    ("0f a0 e2 82 ac", 4000, "€"),
    ("0b b8", 3000, ""),
    ("13 87", 4999, ""),
]


class TestCloseCode:
    """Section 7.4.1: the defined codes, and what each one means."""

    def test_values(self) -> None:
        assert [int(c) for c in CloseCode] == list(range(1000, 1016))
        assert CloseCode.NORMAL_CLOSURE == 1000
        assert CloseCode.MESSAGE_TOO_BIG == 1009
        assert CloseCode.TLS_HANDSHAKE == 1015

    @pytest.mark.parametrize("code", list(CloseCode))
    def test_each_code_quotes_its_meaning(self, code: CloseCode) -> None:
        if 1012 <= code <= 1014:
            assert code.description.startswith("IANA registry")
        elif code == 1004:
            assert (
                code.description
                == "Reserved. The specific meaning might be defined in the future."
            )
        else:
            assert code.description.startswith(f"{int(code)} ")

    def test_quotes(self) -> None:
        assert "too big for it to process" in CloseCode.MESSAGE_TOO_BIG.description
        assert "non-UTF-8" in CloseCode.INVALID_DATA.description
        assert "MUST NOT be set" in CloseCode.ABNORMAL_CLOSURE.description
        assert CloseCode.GOING_AWAY.meaning == "going away"


class TestWireCodes:
    """Section 7.4.2: which codes may appear in a close frame."""

    @pytest.mark.parametrize(
        "code",
        [
            1000,
            1001,
            1002,
            1003,
            1007,
            1008,
            1009,
            1010,
            1011,
            1012,
            1013,
            1014,
            3000,
            3999,
            4000,
            4999,
        ],
    )
    def test_valid(self, code: int) -> None:
        assert is_valid_wire_code(code)

    @pytest.mark.parametrize(
        "code", [0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]
    )
    def test_invalid(self, code: int) -> None:
        assert not is_valid_wire_code(code)

    @given(st.integers(0, 65535))
    def test_ranges(self, code: int) -> None:
        """0-999 unused, 1000-2999 protocol (defined codes only), 3000-4999 allowed."""
        allowed = code in (*range(1000, 1004), *range(1007, 1015)) or 3000 <= code <= 4999
        assert is_valid_wire_code(code) is allowed


class TestPayloads:
    """Section 5.5.1: an empty body, or a 2-byte code and a UTF-8 reason."""

    @pytest.mark.parametrize(("payload", "code", "reason"), VECTORS)
    def test_parse(self, payload: str, code: int, reason: str) -> None:
        assert parse_close(bytes.fromhex(payload)) == Close(code, reason)

    @pytest.mark.parametrize(("payload", "code", "reason"), VECTORS)
    def test_serialize(self, payload: str, code: int, reason: str) -> None:
        assert serialize_close(code, reason) == bytes.fromhex(payload)

    def test_defaults(self) -> None:
        assert serialize_close() == b"\x03\xe8"
        assert Close() == Close(1000, "")

    def test_reason_limit_counts_utf8_bytes(self) -> None:
        """A control frame carries 125 bytes, so the reason gets at most 123 (5.5)."""
        assert MAX_REASON_BYTES == 123
        assert len(serialize_close(1000, "x" * 123)) == 125
        assert len(serialize_close(1000, "€" * 41)) == 125  # 3 bytes each
        with pytest.raises(ValueError, match="close reason is 124 bytes once UTF-8 encoded"):
            serialize_close(1000, "x" * 124)
        with pytest.raises(ValueError, match=r"126 bytes.*limit is 123"):
            serialize_close(1000, "€" * 42)

    @pytest.mark.parametrize("code", [1005, 1006, 1015, 1004, 999, 2000, 5000])
    def test_codes_that_may_not_be_sent(self, code: int) -> None:
        if code == 1005:
            # 1005 stands for "no code": it builds the empty payload instead.
            assert serialize_close(code) == b""
            return
        with pytest.raises(ValueError, match=f"close code {code} may not be sent: use 1000-1003"):
            serialize_close(code)

    def test_no_code_with_a_reason(self) -> None:
        with pytest.raises(ValueError, match="without a code cannot carry a reason"):
            serialize_close(1005, "bye")

    def test_one_byte_payload(self) -> None:
        with pytest.raises(ProtocolError, match="payload of 1 byte") as info:
            parse_close(b"\x03")
        assert info.value.code == 1002

    @pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000])
    def test_invalid_code_received(self, code: int) -> None:
        with pytest.raises(ProtocolError, match=f"close code {code} is not valid") as info:
            parse_close(code.to_bytes(2, "big"))
        assert info.value.code == 1002

    def test_reason_not_utf8(self) -> None:
        with pytest.raises(ProtocolError, match="not valid UTF-8") as info:
            parse_close(b"\x03\xe8\xff")
        assert info.value.code == 1007

    @given(
        st.sampled_from([*range(1000, 1004), *range(1007, 1015)]) | st.integers(3000, 4999),
        st.text(max_size=30).filter(lambda t: len(t.encode()) <= MAX_REASON_BYTES),
    )
    def test_round_trip(self, code: int, reason: str) -> None:
        assert parse_close(serialize_close(code, reason)) == Close(code, reason)


class TestCloseStr:
    @pytest.mark.parametrize(
        ("close", "text"),
        [
            (Close(1000, ""), "1000 (normal closure)"),
            (Close(1001, "bye"), "1001 (going away) bye"),
            (Close(1005, ""), "1005 (no status rcvd)"),
            (Close(3000, ""), "3000 (registered)"),
            (Close(4321, "done"), "4321 (private) done"),
        ],
    )
    def test_str(self, close: Close, text: str) -> None:
        assert str(close) == text


class TestInputValidation:
    """Wrong arguments fail with a message that says what was expected."""

    @pytest.mark.parametrize("code", ["1000", 1000.0, None, True])
    def test_code_type(self, code: object) -> None:
        with pytest.raises(TypeError, match="code must be an int"):
            serialize_close(code)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="code must be an int"):
            is_valid_wire_code(code)  # type: ignore[arg-type]

    def test_reason_type(self) -> None:
        with pytest.raises(TypeError, match="reason must be a str, got bytes"):
            serialize_close(1000, b"bye")  # type: ignore[arg-type]

    def test_payload_type(self) -> None:
        with pytest.raises(TypeError, match="payload must be bytes, got str"):
            parse_close("\x03\xe8")  # type: ignore[arg-type]


class TestConnectionClosed:
    """Section 7.1.5 and 7.4: the exception that reports "the connection is closed"."""

    @pytest.mark.parametrize(
        ("code", "meaning"),
        [(1000, "normal closure"), (1001, "going away"), (1006, "abnormal closure")],
    )
    def test_message_names_the_meaning(self, code: int, meaning: str) -> None:
        error = ConnectionClosed(code, "bye")
        assert (error.code, error.reason) == (code, "bye")
        assert str(error) == f"connection closed with code {code} ({meaning}): bye"

    @pytest.mark.parametrize(
        ("code", "meaning"),
        [(3000, "registered code"), (4999, "private code"), (2999, "unknown code")],
    )
    def test_codes_outside_the_rfc(self, code: int, meaning: str) -> None:
        """7.4.2: 3000-3999 are registered with IANA, 4000-4999 are private."""
        assert code_meaning(code) == meaning
        assert str(ConnectionClosed(code)) == f"connection closed with code {code} ({meaning})"

    def test_default_is_abnormal_closure(self) -> None:
        """7.1.5: no close frame at all is reported as 1006."""
        assert ConnectionClosed().code == CloseCode.ABNORMAL_CLOSURE

    def test_custom_message(self) -> None:
        error = ConnectionClosed(1000, message="cannot send: the connection is CLOSED")
        assert str(error) == "cannot send: the connection is CLOSED"
        assert error.code == 1000

    def test_hierarchy(self) -> None:
        assert issubclass(ConnectionClosed, WSLabError)
        assert issubclass(ConnectError, WSLabError)
        assert issubclass(LoopBlockedError, ServerStartError)
        assert ConnectError("refused").status is None
        assert ConnectError("forbidden", 403).status == 403
