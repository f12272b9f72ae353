"""Tests of wslab.frames: encoding, decoding and checking frames (RFC 6455 section 5)."""

from __future__ import annotations

import itertools
from typing import ClassVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.utils import apply_mask as websockets_apply_mask

from wslab import utils
from wslab.errors import ProtocolError
from wslab.frames import (
    Frame,
    FrameDecoder,
    Opcode,
    Side,
    apply_mask,
    encode,
    new_mask_key,
    parse_header,
)

#: The masking key of every masked example in section 5.7.
RFC_MASK = bytes.fromhex("37fa213d")

# (name, wire bytes, frame, mask key): the examples of section 5.7.
RFC_VECTORS = [
    ("unmasked text", "81 05 48 65 6c 6c 6f", Frame(Opcode.TEXT, b"Hello"), None),
    ("masked text", "81 85 37 fa 21 3d 7f 9f 4d 51 58", Frame(Opcode.TEXT, b"Hello"), RFC_MASK),
    ("first fragment", "01 03 48 65 6c", Frame(Opcode.TEXT, b"Hel", fin=False), None),
    ("last fragment", "80 02 6c 6f", Frame(Opcode.CONT, b"lo"), None),
    ("unmasked ping", "89 05 48 65 6c 6c 6f", Frame(Opcode.PING, b"Hello"), None),
    ("masked pong", "8a 85 37 fa 21 3d 7f 9f 4d 51 58", Frame(Opcode.PONG, b"Hello"), RFC_MASK),
]


def side_for(mask_key: bytes | None) -> Side:
    """The side that receives such a frame: servers get masked frames (5.1)."""
    return Side.SERVER if mask_key is not None else Side.CLIENT


def decode_one(data: bytes, side: Side | None, **kwargs: object) -> Frame:
    frames = FrameDecoder(side, **kwargs).feed(data)  # type: ignore[arg-type]
    assert len(frames) == 1
    return frames[0]


class TestRFCExamples:
    """Section 5.7 examples, in both directions: bytes -> frame -> the same bytes."""

    @pytest.mark.parametrize(("name", "wire", "frame", "mask_key"), RFC_VECTORS)
    def test_decode(self, name: str, wire: str, frame: Frame, mask_key: bytes | None) -> None:
        assert decode_one(bytes.fromhex(wire), side_for(mask_key)) == frame

    @pytest.mark.parametrize(("name", "wire", "frame", "mask_key"), RFC_VECTORS)
    def test_encode(self, name: str, wire: str, frame: Frame, mask_key: bytes | None) -> None:
        assert encode(frame, mask_key) == bytes.fromhex(wire)

    def test_fragmented_hello_in_one_stream(self) -> None:
        """'A fragmented unmasked text message': 'Hel' then 'lo' (5.7)."""
        stream = bytes.fromhex("01 03 48 65 6c 80 02 6c 6f")
        assert FrameDecoder(Side.CLIENT).feed(stream) == [
            Frame(Opcode.TEXT, b"Hel", fin=False),
            Frame(Opcode.CONT, b"lo", fin=True),
        ]

    @pytest.mark.parametrize(
        ("size", "header"),
        [(256, "82 7e 01 00"), (65536, "82 7f 00 00 00 00 00 01 00 00")],
        ids=["256 bytes, 16-bit length", "64 KiB, 64-bit length"],
    )
    def test_binary_length_forms(self, size: int, header: str) -> None:
        """'256 bytes binary message in a single unmasked frame' and its 64 KiB sibling."""
        payload = bytes(range(256)) * (size // 256)
        wire = bytes.fromhex(header) + payload
        assert encode(Frame(Opcode.BINARY, payload)) == wire
        assert decode_one(wire, Side.CLIENT) == Frame(Opcode.BINARY, payload)

    def test_masked_hello_unmasks_to_the_rfc_payload(self) -> None:
        """Masking is its own inverse: 7f 9f 4d 51 58 XOR 37 fa 21 3d gives 'Hello' (5.3)."""
        assert apply_mask(bytes.fromhex("7f 9f 4d 51 58"), RFC_MASK) == b"Hello"
        assert apply_mask(b"Hello", RFC_MASK) == bytes.fromhex("7f 9f 4d 51 58")


class TestChunking:
    """A TCP stream has no frame boundaries: the decoder must accept any split (5.2)."""

    @pytest.mark.parametrize(("name", "wire", "frame", "mask_key"), RFC_VECTORS)
    def test_one_byte_at_a_time(
        self, name: str, wire: str, frame: Frame, mask_key: bytes | None
    ) -> None:
        decoder = FrameDecoder(side_for(mask_key))
        data = bytes.fromhex(wire)
        received: list[Frame] = []
        for i in range(len(data)):
            received += decoder.feed(data[i : i + 1])
            # Nothing comes out before the last byte, and nothing is lost.
            assert received == ([] if i < len(data) - 1 else [frame])
        assert decoder.buffered == 0

    def test_several_frames_in_one_chunk_and_a_partial_tail(self) -> None:
        decoder = FrameDecoder(Side.CLIENT)
        data = bytes.fromhex("81 05 48 65 6c 6c 6f 89 05 48 65 6c 6c 6f 82 7e 01")
        assert decoder.feed(data) == [Frame(Opcode.TEXT, b"Hello"), Frame(Opcode.PING, b"Hello")]
        assert decoder.buffered == 3
        assert decoder.feed(b"\x00" + b"x" * 256) == [Frame(Opcode.BINARY, b"x" * 256)]

    def test_feed_raw_keeps_the_exact_bytes_and_header(self) -> None:
        wire = bytes.fromhex("81 85 37 fa 21 3d 7f 9f 4d 51 58")
        (raw,) = FrameDecoder(Side.SERVER).feed_raw(wire)
        assert raw.data == wire
        assert raw.frame == Frame(Opcode.TEXT, b"Hello")
        assert raw.header.mask_key == RFC_MASK
        assert (raw.header.size, raw.header.length, raw.header.length_bits) == (6, 5, 7)

    def test_iter_raw_yields_frames_before_a_broken_one(self) -> None:
        """Frames that arrived intact before a protocol error are still delivered."""
        decoder = FrameDecoder(Side.CLIENT)
        frames = decoder.iter_raw(bytes.fromhex("81 02 48 69 83 00"))
        assert next(frames).frame == Frame(Opcode.TEXT, b"Hi")
        with pytest.raises(ProtocolError, match="reserved opcode 0x3"):
            next(frames)

    def test_feed_raw_fails_on_a_broken_frame_after_good_ones(self) -> None:
        with pytest.raises(ProtocolError):
            FrameDecoder(Side.CLIENT).feed_raw(bytes.fromhex("81 02 48 69 83 00"))


class TestParseHeader:
    """The header of section 5.2: 2 to 14 bytes, read before the payload."""

    @pytest.mark.parametrize(
        ("wire", "length", "length_bits", "size"),
        [
            ("81 05", 5, 7, 2),
            ("82 7d", 125, 7, 2),
            ("82 7e 00 7e", 126, 16, 4),
            ("82 7e ff ff", 65535, 16, 4),
            ("82 7f 00 00 00 00 00 01 00 00", 65536, 64, 10),
            ("82 ff 00 00 00 00 00 01 00 00 37 fa 21 3d", 65536, 64, 14),
        ],
    )
    def test_lengths(self, wire: str, length: int, length_bits: int, size: int) -> None:
        header = parse_header(bytes.fromhex(wire))
        assert header is not None
        assert (header.length, header.length_bits, header.size) == (length, length_bits, size)

    @pytest.mark.parametrize(
        "wire", ["", "81", "82 7e 00", "82 7f 00 00 00 00 00 00 01", "81 85 37 fa 21"]
    )
    def test_incomplete_header_is_none(self, wire: str) -> None:
        assert parse_header(bytes.fromhex(wire)) is None

    def test_flags_and_raw_opcode(self) -> None:
        header = parse_header(bytes.fromhex("7b 00"))  # every RSV bit, reserved opcode 0xB
        assert header is not None
        assert (header.fin, header.rsv1, header.rsv2, header.rsv3) == (False, True, True, True)
        assert header.opcode == 0xB
        assert header.masked is False and header.mask_key is None


class TestProtocolViolations:
    """Each rule of section 5 a peer can break, with the close code of section 7.4.1."""

    def fails(self, wire: str, side: Side | None = Side.CLIENT, **kwargs: object) -> ProtocolError:
        with pytest.raises(ProtocolError) as info:
            FrameDecoder(side, **kwargs).feed(bytes.fromhex(wire))  # type: ignore[arg-type]
        return info.value

    @pytest.mark.parametrize("first_byte", ["c1", "a1", "91", "f1"])
    def test_reserved_bits_without_extension(self, first_byte: str) -> None:
        """'MUST be 0 unless an extension is negotiated that defines meanings' (5.2)."""
        error = self.fails(first_byte + " 00")
        assert error.code == 1002
        assert "reserved bit" in error.reason

    def test_rsv1_is_accepted_when_an_extension_allows_it(self) -> None:
        frame = decode_one(bytes.fromhex("c1 00"), Side.CLIENT, allow_rsv1=True)
        assert frame.rsv1 is True
        error = self.fails("a1 00", allow_rsv1=True)  # RSV2 is still not allowed
        assert error.code == 1002

    @pytest.mark.parametrize("opcode", ["88", "89", "8a"])
    def test_rsv1_never_on_control_frames(self, opcode: str) -> None:
        """permessage-deflate sets RSV1 on data frames only (RFC 7692 section 6)."""
        error = self.fails(f"{int(opcode, 16) | 0x40:02x} 00", allow_rsv1=True)
        assert error.code == 1002
        assert "RSV1 set on a" in error.reason

    @pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF])
    def test_reserved_opcode(self, opcode: int) -> None:
        """'If an unknown opcode is received, the receiving endpoint MUST _Fail_' (5.2)."""
        error = self.fails(f"{0x80 | opcode:02x} 00")
        assert error.code == 1002
        assert f"reserved opcode {opcode:#x}" in error.reason

    @pytest.mark.parametrize("opcode", ["88", "89", "8a"])
    def test_control_frame_over_125_bytes_fails_on_its_header(self, opcode: str) -> None:
        """'All control frames MUST have a payload length of 125 bytes or less' (5.5).

        Only the header is fed: the decoder refuses before buffering the payload.
        """
        error = self.fails(opcode + " 7e 00 7e")
        assert error.code == 1002
        assert "at most 125" in error.reason

    @pytest.mark.parametrize("opcode", ["08", "09", "0a"])
    def test_fragmented_control_frame(self, opcode: str) -> None:
        """'All control frames ... MUST NOT be fragmented' (5.5)."""
        error = self.fails(opcode + " 00")
        assert error.code == 1002
        assert "fragmented" in error.reason

    def test_unmasked_frame_from_a_client(self) -> None:
        """'The server MUST close the connection upon receiving a frame that is not
        masked' (5.1)."""
        error = self.fails("81 05 48 65 6c 6c 6f", Side.SERVER)
        assert error.code == 1002
        assert "not masked" in error.reason

    def test_masked_frame_from_a_server(self) -> None:
        """'A client MUST close a connection if it detects a masked frame' (5.1)."""
        error = self.fails("81 85 37 fa 21 3d 7f 9f 4d 51 58", Side.CLIENT)
        assert error.code == 1002
        assert "masked" in error.reason

    def test_a_watcher_accepts_both_masked_and_unmasked(self) -> None:
        decoder = FrameDecoder(None)
        assert decoder.feed(bytes.fromhex("81 05 48 65 6c 6c 6f 81 85 37 fa 21 3d 7f 9f 4d 51 58"))
        assert decoder.buffered == 0

    def test_64_bit_length_with_top_bit_set(self) -> None:
        """'the most significant bit MUST be 0' (5.2)."""
        error = self.fails("82 7f 80 00 00 00 00 00 00 00")
        assert error.code == 1002
        assert "top bit" in error.reason

    def test_frame_over_the_size_limit_fails_on_its_header(self) -> None:
        """1009 'message that is too big for it to process' (7.4.1), before buffering."""
        error = self.fails("82 7f 00 00 00 01 00 00 00 00", max_size=2**20)
        assert error.code == 1009
        assert "limit of 1048576" in error.reason

    def test_frame_at_the_size_limit_is_accepted(self) -> None:
        assert decode_one(b"\x82\x0a" + b"x" * 10, Side.CLIENT, max_size=10).payload == b"x" * 10
        assert self.fails("82 0b", max_size=10).code == 1009

    def test_no_limit(self) -> None:
        decoder = FrameDecoder(Side.CLIENT, max_size=None)
        assert decoder.feed(bytes.fromhex("82 7f 00 00 00 01 00 00 00 00")) == []


class TestEncodeChecks:
    """encode() refuses frames that no endpoint may send (section 5)."""

    def test_control_frame_over_125_bytes(self) -> None:
        with pytest.raises(ProtocolError, match="at most 125"):
            encode(Frame(Opcode.PING, b"x" * 126))

    def test_fragmented_control_frame(self) -> None:
        with pytest.raises(ProtocolError, match="fragmented"):
            encode(Frame(Opcode.CLOSE, b"", fin=False))

    def test_reserved_bits_2_and_3(self) -> None:
        with pytest.raises(ProtocolError, match="reserved bit"):
            encode(Frame(Opcode.TEXT, b"", rsv2=True))

    def test_length_forms_are_minimal(self) -> None:
        """'the minimal number of bytes MUST be used to encode the length' (5.2)."""
        for size, second_byte in [(125, 125), (126, 126), (65535, 126), (65536, 127)]:
            assert encode(Frame(Opcode.BINARY, bytes(size)))[1] == second_byte


class TestMasking:
    """Section 5.3: the payload is XORed with the 4-byte key, repeated.

    ``frames.apply_mask`` is the RFC's formula written out; ``utils.apply_mask``
    is the fast one that encode() and the decoder use. Both must agree with
    the formula and with websockets' own apply_mask, whatever the length.
    """

    # Around every way utils.apply_mask cuts a payload: by 4, and by 16 KiB pieces.
    SIZES: ClassVar[list[int]] = [
        *range(10),
        1000,
        16383,
        16384,
        16385,
        16387,
        32768,
        32771,
        65537,
    ]

    @pytest.mark.parametrize("size", SIZES)
    def test_matches_the_rfc_formula(self, size: int) -> None:
        """'octet i of the transformed data is octet i XOR octet i MOD 4 of the key'."""
        data = bytes(i * 7 % 256 for i in range(size))
        expected = bytes(b ^ RFC_MASK[i % 4] for i, b in enumerate(data))
        for mask in (apply_mask, utils.apply_mask, websockets_apply_mask):
            assert mask(data, RFC_MASK) == expected
            assert mask(expected, RFC_MASK) == data

    @settings(max_examples=60, deadline=None)
    @given(data=st.binary(max_size=40000), key=st.binary(min_size=4, max_size=4))
    def test_fast_and_reference_agree(self, data: bytes, key: bytes) -> None:
        assert utils.apply_mask(data, key) == apply_mask(data, key)

    def test_one_mebibyte(self) -> None:
        data = bytes(range(256)) * 4096
        masked = utils.apply_mask(data, RFC_MASK)
        assert masked == websockets_apply_mask(data, RFC_MASK)
        assert masked[-7:] == apply_mask(data[-8:], RFC_MASK)[-7:]
        assert utils.apply_mask(masked, RFC_MASK) == data

    def test_accepts_bytes_like(self) -> None:
        hello = bytes.fromhex("7f 9f 4d 51 58")
        assert apply_mask(bytearray(b"Hello"), memoryview(RFC_MASK)) == hello  # type: ignore[arg-type]
        assert utils.apply_mask(bytearray(b"Hello"), RFC_MASK) == hello
        assert utils.apply_mask(memoryview(b"xHello")[1:], RFC_MASK) == hello

    def test_encode_masks_with_the_fast_path(self) -> None:
        payload = bytes(range(256)) * 300
        data = encode(Frame(Opcode.BINARY, payload), RFC_MASK)
        assert data[-len(payload) :] == apply_mask(payload, RFC_MASK)

    def test_new_mask_key(self) -> None:
        keys = {new_mask_key() for _ in range(8)}
        assert all(isinstance(k, bytes) and len(k) == 4 for k in keys)
        assert len(keys) > 1  # random: 8 equal draws have probability 2**-224


class TestFrameStr:
    """str(frame) is what lessons print."""

    @pytest.mark.parametrize(
        ("frame", "text"),
        [
            (Frame(Opcode.TEXT, b"Hello"), "TEXT 'Hello' [5 bytes]"),
            (Frame(Opcode.TEXT, b"Hel", fin=False), "TEXT 'Hel' [3 bytes, continued]"),
            (Frame(Opcode.CONT, b"!"), "CONT '!' [1 byte]"),
            (Frame(Opcode.BINARY, b"\x00\xff"), "BINARY 00 ff [2 bytes]"),
            (Frame(Opcode.PING), "PING [0 bytes]"),
            (Frame(Opcode.CLOSE, b"\x03\xe8bye"), "CLOSE 1000 (normal closure) bye [5 bytes]"),
            (Frame(Opcode.CLOSE, b"\x03"), "CLOSE 03 [1 byte]"),
        ],
    )
    def test_str(self, frame: Frame, text: str) -> None:
        assert str(frame) == text

    def test_long_payloads_are_cut(self) -> None:
        assert str(Frame(Opcode.TEXT, b"a" * 100)) == f"TEXT '{'a' * 57}...' [100 bytes]"
        assert str(Frame(Opcode.BINARY, bytes(100))).endswith("00 ... [100 bytes]")

    def test_text_split_mid_character_shows_hex(self) -> None:
        assert (
            str(Frame(Opcode.TEXT, "€".encode()[:2], fin=False))
            == "TEXT e2 82 [2 bytes, continued]"
        )

    def test_is_control(self) -> None:
        assert Frame(Opcode.PING).is_control
        assert not Frame(Opcode.CONT).is_control


class TestInputValidation:
    """Wrong arguments fail at once with a message that says what was expected."""

    def test_frame_reserved_opcode(self) -> None:
        with pytest.raises(ValueError, match=r"opcode 0x3 is reserved: use one of CONT=0x0"):
            Frame(3)  # type: ignore[arg-type]

    def test_frame_int_opcode_becomes_an_opcode(self) -> None:
        assert Frame(1, b"x").opcode is Opcode.TEXT  # type: ignore[arg-type]

    @pytest.mark.parametrize("opcode", ["TEXT", True, 1.0, None])
    def test_frame_opcode_type(self, opcode: object) -> None:
        with pytest.raises(TypeError, match="opcode must be an Opcode"):
            Frame(opcode)  # type: ignore[arg-type]

    def test_frame_str_payload(self) -> None:
        with pytest.raises(TypeError, match=r"payload must be bytes: encode text first"):
            Frame(Opcode.TEXT, "Hello")  # type: ignore[arg-type]

    def test_frame_payload_type(self) -> None:
        with pytest.raises(TypeError, match="payload must be bytes, got list"):
            Frame(Opcode.BINARY, [1, 2])  # type: ignore[arg-type]

    def test_frame_bytes_like_payload_is_copied_to_bytes(self) -> None:
        assert type(Frame(Opcode.BINARY, bytearray(b"ab")).payload) is bytes

    def test_encode_needs_a_frame(self) -> None:
        with pytest.raises(TypeError, match="encode\\(\\) takes a Frame, got bytes"):
            encode(b"\x81\x00")  # type: ignore[arg-type]

    @pytest.mark.parametrize("key", [b"abc", b"abcde", b""])
    def test_mask_key_of_wrong_length(self, key: bytes) -> None:
        message = f"mask_key must be exactly 4 bytes, got {len(key)}"
        with pytest.raises(ValueError, match=message):
            encode(Frame(Opcode.TEXT, b"Hi"), key)
        with pytest.raises(ValueError, match=message):
            apply_mask(b"Hi", key)

    @pytest.mark.parametrize("key", ["abcd", 1234, [1, 2, 3, 4]])
    def test_mask_key_of_wrong_type(self, key: object) -> None:
        with pytest.raises(TypeError, match=r"mask_key must be 4 bytes.*new_mask_key"):
            encode(Frame(Opcode.TEXT, b"Hi"), key)  # type: ignore[arg-type]

    def test_apply_mask_text(self) -> None:
        with pytest.raises(TypeError, match=r"data must be bytes, got str; encode it first"):
            apply_mask("Hello", RFC_MASK)  # type: ignore[arg-type]

    def test_decoder_side(self) -> None:
        with pytest.raises(TypeError, match=r"side must be Side\.CLIENT, Side\.SERVER or None"):
            FrameDecoder("server")  # type: ignore[arg-type]

    @pytest.mark.parametrize("max_size", [-1, 1.5, "1MB", True])
    def test_decoder_max_size(self, max_size: object) -> None:
        with pytest.raises(ValueError, match="max_size must be a number of bytes"):
            FrameDecoder(Side.CLIENT, max_size=max_size)  # type: ignore[arg-type]

    def test_decoder_feed_text(self) -> None:
        with pytest.raises(TypeError, match="data must be bytes, got str"):
            FrameDecoder(Side.CLIENT).feed("\x81\x00")  # type: ignore[arg-type]

    def test_parse_header_type(self) -> None:
        with pytest.raises(TypeError, match="data must be bytes, got str"):
            parse_header("\x81\x00")  # type: ignore[arg-type]


# -- property-based round trips -------------------------------------------------

#: Payload sizes on both sides of each length form (125/126, 65535/65536).
BOUNDARY_SIZES = [0, 1, 125, 126, 127, 65535, 65536, 65537]


@st.composite
def payloads(draw: st.DrawFn, max_control: bool = False) -> bytes:
    """Random bytes, sometimes exactly at a length-form boundary.

    Long payloads repeat a short random pattern, which keeps generation fast.
    """
    if max_control:
        return draw(st.binary(max_size=125))
    size = draw(st.sampled_from(BOUNDARY_SIZES) | st.integers(0, 300))
    pattern = draw(st.binary(min_size=1, max_size=64))
    return (pattern * (size // len(pattern) + 1))[:size]


@st.composite
def frames(draw: st.DrawFn) -> Frame:
    """Any frame an endpoint may send: any opcode, FIN free for data frames."""
    opcode = draw(st.sampled_from(list(Opcode)))
    if opcode in (Opcode.CLOSE, Opcode.PING, Opcode.PONG):
        return Frame(opcode, draw(payloads(max_control=True)))
    return Frame(opcode, draw(payloads()), fin=draw(st.booleans()))


mask_keys = st.none() | st.binary(min_size=4, max_size=4)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    """Cut ``data`` at the given offsets (any order, duplicates allowed)."""
    points = [0, *sorted(c % (len(data) + 1) for c in cuts), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(points)]


class TestRoundTrip:
    """encode() then FrameDecoder gives back any valid frame (sections 5.2 and 5.3)."""

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(frame=frames(), mask_key=mask_keys, cuts=st.lists(st.integers(0, 2**17), max_size=12))
    def test_any_frame_any_chunking(
        self, frame: Frame, mask_key: bytes | None, cuts: list[int]
    ) -> None:
        data = encode(frame, mask_key)
        for side in (side_for(mask_key), None):
            decoder = FrameDecoder(side, max_size=None)
            received: list[Frame] = []
            for chunk in split(data, cuts):
                received += decoder.feed(chunk)
            assert received == [frame]
            assert decoder.buffered == 0

    @settings(max_examples=60, deadline=None)
    @given(
        frame=frames().filter(lambda f: len(f.payload) <= 300),
        mask_key=mask_keys,
    )
    def test_one_byte_at_a_time(self, frame: Frame, mask_key: bytes | None) -> None:
        data = encode(frame, mask_key)
        decoder = FrameDecoder(side_for(mask_key))
        received = [f for i in range(len(data)) for f in decoder.feed(data[i : i + 1])]
        assert received == [frame]

    @settings(max_examples=40, deadline=None)
    @given(
        frame_list=st.lists(frames(), max_size=6), mask_key=mask_keys, cuts=st.lists(st.integers())
    )
    def test_a_stream_of_frames(
        self, frame_list: list[Frame], mask_key: bytes | None, cuts: list[int]
    ) -> None:
        data = b"".join(encode(f, mask_key) for f in frame_list)
        decoder = FrameDecoder(side_for(mask_key), max_size=None)
        assert [f for chunk in split(data, cuts) for f in decoder.feed(chunk)] == frame_list

    @settings(max_examples=60, deadline=None)
    @given(data=st.binary(max_size=300), key=st.binary(min_size=4, max_size=4))
    def test_mask_twice_is_identity(self, data: bytes, key: bytes) -> None:
        assert apply_mask(apply_mask(data, key), key) == data


class TestPartialPayload:
    """Sections 5.3 and 8.1: the start of a frame's payload, before the frame is complete."""

    def test_pieces_of_the_masked_hello(self) -> None:
        data = bytes.fromhex("81 85 37 fa 21 3d 7f 9f 4d 51 58")
        decoder = FrameDecoder(Side.SERVER)
        assert decoder.feed(data[:5]) == [] and decoder.peek_header() is None
        assert decoder.read_partial() == b""
        assert decoder.feed(data[5:7]) == []
        header = decoder.peek_header()
        assert header is not None and (header.opcode, header.length) == (Opcode.TEXT, 5)
        assert decoder.read_partial() == b"H"
        assert decoder.read_partial() == b""  # each byte once
        assert decoder.feed(data[7:9]) == []
        assert decoder.read_partial() == b"el"  # the key lines up: it starts at octet 1
        assert decoder.feed(data[9:]) == [Frame(Opcode.TEXT, b"Hello")]  # the whole payload
        assert decoder.peek_header() is None

    def test_header_errors_show_at_once(self) -> None:
        decoder = FrameDecoder(Side.SERVER)
        with pytest.raises(ProtocolError, match="not masked"):
            decoder.feed(b"\x81\x7e\x01\x00" + b"x" * 10)
        with pytest.raises(ProtocolError, match="not masked"):
            decoder.peek_header()

    @settings(max_examples=80, deadline=None)
    @given(frame=frames(), mask_key=mask_keys, cuts=st.lists(st.integers(0, 2**17), max_size=8))
    def test_reading_partial_payloads_changes_no_frame(
        self, frame: Frame, mask_key: bytes | None, cuts: list[int]
    ) -> None:
        data = encode(frame, mask_key) + encode(Frame(Opcode.PING, b"next"), mask_key)
        decoder = FrameDecoder(side_for(mask_key), max_size=None)
        received: list[Frame] = []
        seen = b""
        for chunk in split(data, cuts):
            received += decoder.feed(chunk)
            if not received:
                seen += decoder.read_partial()
        assert received == [frame, Frame(Opcode.PING, b"next")]
        assert frame.payload.startswith(seen)
