"""Tests of wslab.explain: a frame's bytes, field by field (RFC 6455 section 5.2)."""

from __future__ import annotations

import pytest

from wslab.explain import Explanation, Field, explain


def fields(data: str | bytes) -> dict[str, Field]:
    raw = bytes.fromhex(data) if isinstance(data, str) else data
    return {f.name: f for f in explain(raw)}


class TestRFCExamples:
    """The section 5.7 examples, read against the diagram of section 5.2."""

    def test_masked_hello(self) -> None:
        explanation = explain(bytes.fromhex("81 85 37 fa 21 3d 7f 9f 4d 51 58"))
        assert [f.name for f in explanation] == [
            "FIN",
            "RSV1",
            "RSV2",
            "RSV3",
            "opcode",
            "MASK",
            "payload len",
            "masking key",
            "payload",
        ]
        by_name = {f.name: f for f in explanation}
        assert (by_name["FIN"].raw, by_name["FIN"].value) == ("1", True)
        assert (by_name["opcode"].bits, by_name["opcode"].raw) == ("4-7", "0001")
        assert by_name["opcode"].meaning.startswith("TEXT")
        assert (by_name["MASK"].bits, by_name["MASK"].value) == ("8", True)
        assert (by_name["payload len"].raw, by_name["payload len"].value) == ("0000101", 5)
        assert by_name["masking key"].bits == "16-47"
        assert by_name["masking key"].raw == "37 fa 21 3d"
        payload = by_name["payload"]
        assert (payload.bits, payload.raw, payload.value) == ("48-87", "7f 9f 4d 51 58", "Hello")

    def test_unmasked_ping(self) -> None:
        by_name = fields("89 05 48 65 6c 6c 6f")
        assert "masking key" not in by_name
        assert by_name["opcode"].value == 9
        assert by_name["opcode"].meaning == "PING: ping"
        assert by_name["payload"].value == b"Hello"  # control payloads are bytes
        assert by_name["payload"].bits == "16-55"

    def test_first_fragment(self) -> None:
        by_name = fields("01 03 48 65 6c")
        assert by_name["FIN"].value is False
        assert by_name["FIN"].meaning == "more fragments follow"

    def test_16_bit_length(self) -> None:
        by_name = fields(bytes.fromhex("82 7e 01 00") + bytes(256))
        assert by_name["payload len"].value == 126
        assert "next 16 bits" in by_name["payload len"].meaning
        extended = by_name["extended payload len"]
        assert (extended.bits, extended.raw, extended.value) == ("16-31", "0000000100000000", 256)
        assert by_name["payload"].bits == "32-2079"

    def test_64_bit_length(self) -> None:
        by_name = fields(bytes.fromhex("82 7f 00 00 00 00 00 01 00 00") + bytes(65536))
        assert by_name["payload len"].value == 127
        extended = by_name["extended payload len"]
        assert (extended.bits, extended.value) == ("16-79", 65536)
        assert extended.meaning == "64-bit extended length"


class TestMeanings:
    def test_close_payload_is_decoded(self) -> None:
        assert fields("88 05 03 e8 62 79 65")["payload"].value == "1000 (normal closure) bye"

    def test_invalid_close_payload_is_explained(self) -> None:
        assert "invalid" in fields("88 01 03")["payload"].meaning

    def test_invalid_utf8_is_explained(self) -> None:
        payload = fields("81 01 ff")["payload"]
        assert payload.value == b"\xff"
        assert "not valid UTF-8" in payload.meaning

    def test_reserved_bits_and_opcodes_are_shown_not_refused(self) -> None:
        """explain() shows what is on the wire, even frames a peer must refuse."""
        by_name = fields("f3 00")
        assert by_name["RSV1"].value is True
        assert by_name["RSV1"].meaning == "set: needs a negotiated extension"
        assert by_name["opcode"].meaning == "reserved opcode (a protocol error)"

    def test_empty_payload(self) -> None:
        assert fields("8a 00")["payload"].bits == "-"


class TestRendering:
    def test_str_is_a_table(self) -> None:
        text = str(explain(bytes.fromhex("81 85 37 fa 21 3d 7f 9f 4d 51 58")))
        lines = text.splitlines()
        assert lines[0].split() == ["field", "bits", "raw", "value", "meaning"]
        assert len(lines) == 10
        assert lines[-1].startswith("payload ")
        assert "'Hello'" in lines[-1]

    def test_html(self) -> None:
        explanation = explain(bytes.fromhex("81 05 3c 62 3e 21 3f"))  # "<b>!?"
        html = explanation._repr_html_()
        assert html.startswith("<table>")
        assert html.count("<tr") == 1 + len(explanation)
        assert 'class="wslab-payload"' in html
        assert "&lt;b&gt;" in html and "<b>" not in html

    def test_long_values_are_cut(self) -> None:
        text = str(explain(b"\x82\x7e\x01\x00" + bytes(256)))
        assert max(len(line) for line in text.splitlines()) < 200

    def test_is_a_list_of_fields(self) -> None:
        explanation = explain(b"\x81\x00")
        assert isinstance(explanation, Explanation) and isinstance(explanation, list)


class TestInputValidation:
    """explain() takes exactly one whole frame, as bytes."""

    def test_str(self) -> None:
        with pytest.raises(TypeError, match=r"explain\(\) takes the frame's bytes, not a str"):
            explain("\x81\x00")  # type: ignore[arg-type]

    def test_other_type(self) -> None:
        with pytest.raises(TypeError, match=r"explain\(\) takes bytes, got int"):
            explain(129)  # type: ignore[arg-type]

    @pytest.mark.parametrize("data", ["", "81", "82 7e 01"])
    def test_partial_header(self, data: str) -> None:
        with pytest.raises(ValueError, match=r"is not a whole frame header \(2 to 14 bytes\)"):
            explain(bytes.fromhex(data))

    def test_missing_payload(self) -> None:
        with pytest.raises(ValueError, match="announces 5 payload bytes, so the frame is 7 bytes"):
            explain(bytes.fromhex("81 05 48 65"))

    def test_two_frames(self) -> None:
        with pytest.raises(ValueError, match="but 4 were given"):
            explain(bytes.fromhex("81 00 81 00"))

    def test_top_bit_of_64_bit_length(self) -> None:
        with pytest.raises(ValueError, match="not a valid frame header: 64-bit payload length"):
            explain(bytes.fromhex("82 7f 80 00 00 00 00 00 00 00"))

    def test_bytes_like(self) -> None:
        assert explain(bytearray(b"\x81\x00")) == explain(memoryview(b"\x81\x00"))
