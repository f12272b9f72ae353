"""Tests of wslab.connection: messages, control frames and closing (RFC 6455 5.4-5.5, 7)."""

from __future__ import annotations

import itertools
from typing import ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wslab.closing import Close, serialize_close
from wslab.connection import (
    DEFAULT_MAX_FRAGMENTS,
    TRANSITIONS,
    CloseReceived,
    Connection,
    Failed,
    Message,
    MessageAssembler,
    Ping,
    Pong,
    State,
    Trigger,
)
from wslab.errors import ProtocolError
from wslab.frames import Frame, FrameDecoder, Opcode, Side, encode

RFC_MASK = bytes.fromhex("37fa213d")


def from_client(*frames: Frame) -> bytes:
    """Bytes as a client sends them: masked (5.3)."""
    return b"".join(encode(f, RFC_MASK) for f in frames)


def from_server(*frames: Frame) -> bytes:
    """Bytes as a server sends them: unmasked."""
    return b"".join(encode(f) for f in frames)


def sent_frames(data: bytes, by: Side) -> list[Frame]:
    """Decode what a connection on side ``by`` wrote, as its peer would."""
    peer = Side.SERVER if by is Side.CLIENT else Side.CLIENT
    return FrameDecoder(peer).feed(data)


class TestMessages:
    """Section 6: sending and receiving data, as the RFC's 5.7 examples."""

    def test_server_receives_the_masked_hello(self) -> None:
        server = Connection(Side.SERVER)
        events = server.receive_data(bytes.fromhex("81 85 37 fa 21 3d 7f 9f 4d 51 58"))
        assert events == [Message("Hello")]
        assert server.data_to_send() == b""

    def test_client_receives_the_fragmented_hello(self) -> None:
        client = Connection(Side.CLIENT)
        assert client.receive_data(bytes.fromhex("01 03 48 65 6c")) == []
        assert client.receive_data(bytes.fromhex("80 02 6c 6f")) == [Message("Hello")]

    def test_server_sends_the_unmasked_hello(self) -> None:
        assert Connection(Side.SERVER).send_text("Hello") == bytes.fromhex("81 05 48 65 6c 6c 6f")

    def test_client_with_a_fixed_key_sends_the_masked_hello(self) -> None:
        client = Connection(Side.CLIENT, mask_key=RFC_MASK)
        assert client.send_text("Hello") == bytes.fromhex("81 85 37 fa 21 3d 7f 9f 4d 51 58")

    def test_client_masks_with_a_fresh_key_by_default(self) -> None:
        """Section 10.3: a new unpredictable key for every frame."""
        client = Connection(Side.CLIENT)
        first, second = client.send_binary(b"same"), client.send_binary(b"same")
        assert first[1] & 0x80 and second[1] & 0x80
        assert sent_frames(first + second, Side.CLIENT) == [Frame(Opcode.BINARY, b"same")] * 2
        assert first != second  # equal keys have probability 2**-32

    def test_binary(self) -> None:
        server = Connection(Side.SERVER)
        assert server.receive_data(from_client(Frame(Opcode.BINARY, b"\x00\xff"))) == [
            Message(b"\x00\xff")
        ]

    def test_message_str(self) -> None:
        assert str(Message("Hi")) == "TEXT message 'Hi'"
        assert str(Message(b"\x00")) == "BINARY message b'\\x00'"


class TestFragmentation:
    """Section 5.4: fragments form a message; control frames may come in between."""

    def test_control_frames_between_fragments(self) -> None:
        server = Connection(Side.SERVER)
        events = server.receive_data(
            from_client(
                Frame(Opcode.TEXT, b"Hel", fin=False),
                Frame(Opcode.PING, b"1"),
                Frame(Opcode.CONT, b"l", fin=False),
                Frame(Opcode.PONG, b"2"),
                Frame(Opcode.CONT, b"o"),
            )
        )
        assert events == [Ping(b"1"), Pong(b"2"), Message("Hello")]
        assert sent_frames(server.data_to_send(), Side.SERVER) == [Frame(Opcode.PONG, b"1")]

    def test_code_point_split_across_fragments_is_accepted(self) -> None:
        """'€' is e2 82 ac: a fragment may end in the middle of it (5.6, 8.1)."""
        assembler = MessageAssembler()
        assert assembler.add(Frame(Opcode.TEXT, b"1 \xe2", fin=False)) is None
        assert assembler.add(Frame(Opcode.CONT, b"\x82", fin=False)) is None
        assert assembler.add(Frame(Opcode.CONT, b"\xac")) == Message("1 €")
        assert not assembler.in_progress

    def test_invalid_utf8_split_across_fragments(self) -> None:
        assembler = MessageAssembler()
        assembler.add(Frame(Opcode.TEXT, b"\xe2", fin=False))
        with pytest.raises(ProtocolError, match="not valid UTF-8") as info:
            assembler.add(Frame(Opcode.CONT, b"\x28\xa1"))
        assert info.value.code == 1007

    def test_invalid_utf8_fails_before_the_message_ends(self) -> None:
        """'When an endpoint is to interpret a byte stream as UTF-8 but finds that
        the byte stream is not, in fact, a valid UTF-8 stream, ... _Fail_' (8.1)."""
        with pytest.raises(ProtocolError) as info:
            MessageAssembler().add(Frame(Opcode.TEXT, b"ok \xff", fin=False))
        assert info.value.code == 1007

    def test_message_ending_mid_code_point(self) -> None:
        with pytest.raises(ProtocolError, match="not valid UTF-8") as info:
            MessageAssembler().add(Frame(Opcode.TEXT, b"\xe2\x82"))
        assert info.value.code == 1007

    def test_binary_is_not_checked_as_utf8(self) -> None:
        assert MessageAssembler().add(Frame(Opcode.BINARY, b"\xff")) == Message(b"\xff")

    def test_continuation_without_a_start(self) -> None:
        with pytest.raises(ProtocolError, match="continuation frame without a message") as info:
            MessageAssembler().add(Frame(Opcode.CONT, b"lo"))
        assert info.value.code == 1002

    @pytest.mark.parametrize("opcode", [Opcode.TEXT, Opcode.BINARY])
    def test_new_message_while_one_is_open(self, opcode: Opcode) -> None:
        assembler = MessageAssembler()
        assembler.add(Frame(Opcode.TEXT, b"Hel", fin=False))
        with pytest.raises(ProtocolError, match="while a fragmented message is open") as info:
            assembler.add(Frame(opcode, b"lo"))
        assert info.value.code == 1002

    def test_message_over_the_limit_across_fragments(self) -> None:
        """Each fragment fits, the message does not: 1009 (7.4.1)."""
        assembler = MessageAssembler(max_size=10)
        assembler.add(Frame(Opcode.BINARY, b"x" * 6, fin=False))
        with pytest.raises(ProtocolError, match="over the limit of 10 bytes") as info:
            assembler.add(Frame(Opcode.CONT, b"x" * 5))
        assert info.value.code == 1009

    def test_assembler_is_reusable(self) -> None:
        assembler = MessageAssembler(max_size=10)
        for _ in range(3):
            assembler.add(Frame(Opcode.TEXT, b"x" * 5, fin=False))
            assert assembler.add(Frame(Opcode.CONT, b"y" * 5)) == Message("xxxxxyyyyy")

    def test_control_frames_are_not_part_of_messages(self) -> None:
        with pytest.raises(ValueError, match=r"add\(\) takes data frames \(TEXT, BINARY, CONT\)"):
            MessageAssembler().add(Frame(Opcode.PING))


class TestPingPong:
    """Section 5.5.2-5.5.3: a ping is answered by a pong with the same payload."""

    def test_ping_queues_a_pong(self) -> None:
        server = Connection(Side.SERVER)
        assert server.receive_data(from_client(Frame(Opcode.PING, b"Hello"))) == [Ping(b"Hello")]
        assert server.data_to_send() == bytes.fromhex("8a 05 48 65 6c 6c 6f")
        assert server.data_to_send() == b""  # it is sent once

    def test_client_pong_is_masked(self) -> None:
        """The RFC's masked pong is the client's answer to the RFC's unmasked ping (5.7)."""
        client = Connection(Side.CLIENT, mask_key=RFC_MASK)
        client.receive_data(bytes.fromhex("89 05 48 65 6c 6c 6f"))
        assert client.data_to_send() == bytes.fromhex("8a 85 37 fa 21 3d 7f 9f 4d 51 58")

    def test_pong_needs_no_answer(self) -> None:
        client = Connection(Side.CLIENT)
        assert client.receive_data(from_server(Frame(Opcode.PONG, b"x"))) == [Pong(b"x")]
        assert client.data_to_send() == b""

    def test_send_ping(self) -> None:
        assert Connection(Side.SERVER).send_ping(b"hi") == bytes.fromhex("89 02 68 69")


class TestClosingHandshake:
    """Section 7: both ends send a close frame; the states say who started."""

    def test_we_close_first(self) -> None:
        """OPEN -> LOCAL_CLOSING -> CLOSED (7.1.2, 7.1.3)."""
        server = Connection(Side.SERVER)
        assert server.send_close(1001, "bye") == from_server(
            Frame(Opcode.CLOSE, serialize_close(1001, "bye"))
        )
        assert server.state is State.LOCAL_CLOSING
        assert server.close_sent == Close(1001, "bye")
        events = server.receive_data(from_client(Frame(Opcode.CLOSE, serialize_close(1001))))
        assert events == [CloseReceived(1001, "")]
        assert server.state is State.CLOSED
        assert server.data_to_send() == b""  # our close frame is already sent
        assert server.server_closes_tcp_first
        with pytest.raises(RuntimeError, match="cannot send PING: the connection is closed"):
            server.send_ping()

    def test_data_still_arrives_while_closing(self) -> None:
        """After sending a close, 'the endpoint ... MAY' still receive data (7.1.2)."""
        client = Connection(Side.CLIENT)
        client.send_close()
        events = client.receive_data(
            from_server(Frame(Opcode.TEXT, b"late"), Frame(Opcode.CLOSE, b"\x03\xe8"))
        )
        assert events == [Message("late"), CloseReceived(1000, "")]
        assert client.state is State.CLOSED
        assert not client.server_closes_tcp_first

    def test_no_data_after_our_close(self) -> None:
        """'The application MUST NOT send any more data frames after sending a Close' (5.5.1)."""
        client = Connection(Side.CLIENT)
        client.send_close()
        with pytest.raises(
            RuntimeError,
            match="cannot send TEXT: the connection is local closing and no data may follow",
        ):
            client.send_text("more")
        with pytest.raises(
            RuntimeError, match="cannot start closing: the connection is local closing and a close"
        ):
            client.send_close()

    def test_peer_closes_first(self) -> None:
        """OPEN -> CLOSED: our echo is queued as the peer's close arrives (5.5.1)."""
        server = Connection(Side.SERVER)
        events = server.receive_data(
            from_client(Frame(Opcode.CLOSE, serialize_close(1001, "bye")))
        )
        assert events == [CloseReceived(1001, "bye")]
        assert str(events[0]) == "close received: 1001 (going away) bye"
        assert server.state is State.CLOSED
        assert server.close_received == Close(1001, "bye")
        assert server.close_sent == Close(1001, "")
        with pytest.raises(RuntimeError, match=r"our reply is already queued: send data_to_send"):
            server.send_close()
        # 'It SHOULD do so ... typically echoing the status code it received'.
        assert server.data_to_send() == from_server(Frame(Opcode.CLOSE, serialize_close(1001)))
        assert server.state is State.CLOSED

    def test_empty_close_is_echoed_empty(self) -> None:
        """An empty close frame means 1005, which is never sent: echo an empty one (7.4.1)."""
        client = Connection(Side.CLIENT, mask_key=RFC_MASK)
        assert client.receive_data(b"\x88\x00") == [CloseReceived(1005, "")]
        assert client.data_to_send() == b"\x88\x80" + RFC_MASK
        assert client.state is State.CLOSED

    def test_nothing_is_processed_after_a_close_frame(self) -> None:
        """'after receiving a Close frame, the endpoint ... MUST NOT' act on more data (5.5.1)."""
        server = Connection(Side.SERVER)
        events = server.receive_data(
            from_client(
                Frame(Opcode.CLOSE, b"\x03\xe8"),
                Frame(Opcode.TEXT, b"ignored"),
                Frame(Opcode.PING, b"ignored"),
            )
        )
        assert events == [CloseReceived(1000, "")]
        assert server.receive_data(from_client(Frame(Opcode.TEXT, b"later"))) == []
        # Only the echo of the close frame is queued, no pong.
        assert sent_frames(server.data_to_send(), Side.SERVER) == [
            Frame(Opcode.CLOSE, b"\x03\xe8")
        ]

    def test_send_close_without_a_code(self) -> None:
        server = Connection(Side.SERVER)
        assert server.send_close(1005) == b"\x88\x00"
        assert server.close_sent == Close(1005, "")

    def test_repr(self) -> None:
        client = Connection(Side.CLIENT)
        assert repr(client) == "<Connection client open>"
        client.send_close()
        assert repr(client) == "<Connection client local closing>"


class TestFailing:
    """Section 7.1.7: on a protocol error, send a close frame with the code and stop."""

    CASES: ClassVar[list[tuple[bytes, int, str]]] = [
        # (what the client sends, the close code, words from the reason)
        (b"\x81\x05Hello", 1002, "not masked"),
        (from_client(Frame(Opcode.TEXT, b"\xff")), 1007, "not valid UTF-8"),
        (from_client(Frame(Opcode.CONT, b"lo")), 1002, "continuation frame without"),
        (
            from_client(Frame(Opcode.TEXT, b"a", fin=False), Frame(Opcode.BINARY, b"b")),
            1002,
            "while a fragmented message is open",
        ),
        (from_client(Frame(Opcode.BINARY, b"x" * 11)), 1009, "over the limit of 10"),
        (
            from_client(Frame(Opcode.BINARY, b"x" * 6, fin=False), Frame(Opcode.CONT, b"x" * 6)),
            1009,
            "message is over the limit of 10 bytes",
        ),
        (from_client(Frame(Opcode.CLOSE, b"\x03")), 1002, "payload of 1 byte"),
        (from_client(Frame(Opcode.CLOSE, b"\x03\xee")), 1002, "close code 1006 is not valid"),
        (
            from_client(Frame(Opcode.CLOSE, b"\x03\xe8\xff")),
            1007,
            "close reason is not valid UTF-8",
        ),
        (b"\x83\x80" + RFC_MASK, 1002, "reserved opcode 0x3"),
        (b"\xc1\x80" + RFC_MASK, 1002, "reserved bit"),
        (b"\x09\x80" + RFC_MASK, 1002, "fragmented PING"),
        (b"\x89\xfe\x00\x7e" + RFC_MASK, 1002, "control frames carry at most 125"),
    ]

    @pytest.mark.parametrize(("data", "code", "words"), CASES)
    def test_failure(self, data: bytes, code: int, words: str) -> None:
        server = Connection(Side.SERVER, max_size=10)
        (event,) = server.receive_data(data)
        assert isinstance(event, Failed)
        assert event.code == code
        assert words in event.reason
        assert server.state is State.CLOSED
        (close,) = sent_frames(server.data_to_send(), Side.SERVER)
        assert close.opcode is Opcode.CLOSE
        assert close.payload[:2] == code.to_bytes(2, "big")
        assert words in close.payload[2:].decode()
        # A failed connection reads nothing more.
        assert server.receive_data(from_client(Frame(Opcode.TEXT, b"more"))) == []

    def test_failure_byte_by_byte(self) -> None:
        """A frame over the limit fails once its header (with the mask key) is in,
        before any of its payload is buffered."""
        server = Connection(Side.SERVER, max_size=10)
        data = from_client(Frame(Opcode.BINARY, b"x" * 11))
        for i in range(5):
            assert server.receive_data(data[i : i + 1]) == []
        assert server.receive_data(data[5:6]) == [
            Failed(1009, "frame of 11 bytes is over the limit of 10")
        ]

    def test_frames_before_the_error_are_delivered(self) -> None:
        server = Connection(Side.SERVER)
        data = (
            from_client(Frame(Opcode.TEXT, b"ok"), Frame(Opcode.PING, b"p"))
            + b"\x83\x80"
            + RFC_MASK
        )
        events = server.receive_data(data)
        assert events[:2] == [Message("ok"), Ping(b"p")]
        assert isinstance(events[2], Failed) and events[2].code == 1002
        # The pong was queued before the failure, the close frame after it.
        assert [f.opcode for f in sent_frames(server.data_to_send(), Side.SERVER)] == [
            Opcode.PONG,
            Opcode.CLOSE,
        ]

    def test_client_fails_on_a_masked_frame(self) -> None:
        client = Connection(Side.CLIENT, mask_key=RFC_MASK)
        (event,) = client.receive_data(bytes.fromhex("81 85 37 fa 21 3d 7f 9f 4d 51 58"))
        assert event == Failed(1002, "server frame is masked (5.1)")
        (close,) = FrameDecoder(Side.SERVER).feed(client.data_to_send())
        assert close.payload == serialize_close(1002, "server frame is masked (5.1)")

    def test_failure_while_closing_sends_nothing_more(self) -> None:
        """We already sent our close frame: only TCP is left to close (7.1.7)."""
        server = Connection(Side.SERVER)
        server.send_close()
        (event,) = server.receive_data(b"\x81\x00")
        assert isinstance(event, Failed)
        assert server.data_to_send() == b""
        assert server.state is State.CLOSED

    def test_long_reason_is_cut_to_fit_a_close_frame(self) -> None:
        server = Connection(Side.SERVER)
        server._fail(ProtocolError("é" * 100))
        (close,) = sent_frames(server.data_to_send(), Side.SERVER)
        assert len(close.payload) <= 125
        assert close.payload[2:].decode() == "é" * 61  # 122 bytes: never half a character


class TestTransitions:
    """Section 7: every change of state is one line of TRANSITIONS."""

    def test_the_table(self) -> None:
        assert TRANSITIONS == {
            (State.OPEN, Trigger.CLOSE_SENT): State.LOCAL_CLOSING,
            (State.OPEN, Trigger.CLOSE_RECEIVED): State.CLOSED,
            (State.LOCAL_CLOSING, Trigger.CLOSE_RECEIVED): State.CLOSED,
            (State.OPEN, Trigger.FAILED): State.CLOSED,
            (State.LOCAL_CLOSING, Trigger.FAILED): State.CLOSED,
            (State.OPEN, Trigger.EOF): State.CLOSED,
            (State.LOCAL_CLOSING, Trigger.EOF): State.CLOSED,
            (State.CLOSED, Trigger.EOF): State.CLOSED,
        }

    @pytest.mark.parametrize(
        ("steps", "states"),
        [
            (["send_close", "peer_close"], [State.LOCAL_CLOSING, State.CLOSED]),
            (["peer_close"], [State.CLOSED]),
            (["bad_frame"], [State.CLOSED]),
            (["send_close", "bad_frame"], [State.LOCAL_CLOSING, State.CLOSED]),
            (["eof"], [State.CLOSED]),
            (["send_close", "eof"], [State.LOCAL_CLOSING, State.CLOSED]),
            (["peer_close", "eof"], [State.CLOSED, State.CLOSED]),
        ],
    )
    def test_paths_follow_the_table(self, steps: list[str], states: list[State]) -> None:
        server = Connection(Side.SERVER)
        actions = {
            "send_close": lambda: server.send_close(),
            "peer_close": lambda: server.receive_data(from_client(Frame(Opcode.CLOSE, b""))),
            "bad_frame": lambda: server.receive_data(b"\x83\x80" + RFC_MASK),
            "eof": server.receive_eof,
        }
        seen = []
        for step in steps:
            actions[step]()
            seen.append(server.state)
        assert seen == states

    def test_data_to_send_changes_no_state(self) -> None:
        """Taking the queued bytes is all data_to_send() does."""
        server = Connection(Side.SERVER)
        server.receive_data(from_client(Frame(Opcode.PING, b"1"), Frame(Opcode.CLOSE, b"")))
        before = (server.state, server.close_sent, server.close_received)
        replies = server.data_to_send()
        assert (server.state, server.close_sent, server.close_received) == before
        assert [f.opcode for f in sent_frames(replies, Side.SERVER)] == [Opcode.PONG, Opcode.CLOSE]
        assert server.data_to_send() == b""

    def test_eof_without_a_closing_handshake(self) -> None:
        """7.1.5: TCP ended without close frames; nothing more is read or sent."""
        client = Connection(Side.CLIENT)
        client.receive_eof()
        assert client.state is State.CLOSED
        assert (client.close_sent, client.close_received) == (None, None)
        assert client.receive_data(from_server(Frame(Opcode.TEXT, b"late"))) == []
        with pytest.raises(RuntimeError, match="the TCP connection is already closed"):
            client.send_close()
        with pytest.raises(RuntimeError, match="cannot send TEXT: the connection is closed"):
            client.send_text("x")


class TestControlFramesWhileClosing:
    """Sections 5.5.1 and 5.5.2: after our close, no data frames, but pings are answered."""

    def test_ping_is_answered_in_local_closing(self) -> None:
        """5.5.2: 'MUST send a Pong frame in response, unless it already received a Close'."""
        server = Connection(Side.SERVER)
        server.send_close(1001)
        assert server.receive_data(from_client(Frame(Opcode.PING, b"still there?"))) == [
            Ping(b"still there?")
        ]
        assert sent_frames(server.data_to_send(), Side.SERVER) == [
            Frame(Opcode.PONG, b"still there?")
        ]
        assert server.state is State.LOCAL_CLOSING

    def test_no_pong_after_the_peers_close(self) -> None:
        client = Connection(Side.CLIENT)
        client.send_close()
        events = client.receive_data(
            from_server(Frame(Opcode.CLOSE, b"\x03\xe8"), Frame(Opcode.PING, b"x"))
        )
        assert events == [CloseReceived(1000, "")]
        assert client.data_to_send() == b""

    def test_we_may_ping_in_local_closing(self) -> None:
        client = Connection(Side.CLIENT, mask_key=RFC_MASK)
        client.send_close()
        assert sent_frames(client.send_ping(b"p"), Side.CLIENT) == [Frame(Opcode.PING, b"p")]

    def test_close_frames_go_through_send_close(self) -> None:
        with pytest.raises(ValueError, match=r"send_close\(code, reason\)"):
            Connection(Side.SERVER).send_frame(Frame(Opcode.CLOSE, b"\x03\xe8"))


class TestFragmentLimit:
    """Section 10.4: a limit on the frames of one message (empty CONT frames cost nothing)."""

    def test_endless_empty_continuations_fail_with_1009(self) -> None:
        server = Connection(Side.SERVER, max_fragments=5)
        data = from_client(Frame(Opcode.TEXT, b"", fin=False))
        data += from_client(Frame(Opcode.CONT, b"", fin=False)) * 10
        events = server.receive_data(data)
        assert events == [Failed(1009, "message is over the limit of 5 frames")]
        (close,) = sent_frames(server.data_to_send(), Side.SERVER)
        assert close.payload[:2] == (1009).to_bytes(2, "big")

    def test_a_message_at_the_limit_is_fine(self) -> None:
        server = Connection(Side.SERVER, max_fragments=3)
        for _ in range(2):  # the count starts again with each message
            events = server.receive_data(
                from_client(
                    Frame(Opcode.BINARY, b"a", fin=False),
                    Frame(Opcode.PING, b"not counted"),
                    Frame(Opcode.CONT, b"b", fin=False),
                    Frame(Opcode.CONT, b"c"),
                )
            )
            assert events == [Ping(b"not counted"), Message(b"abc")]

    def test_default(self) -> None:
        assert Connection(Side.SERVER).assembler.max_fragments == DEFAULT_MAX_FRAGMENTS
        assert MessageAssembler(max_fragments=None).max_fragments is None

    @pytest.mark.parametrize("value", [0, -1, 1.5, True, "10"])
    def test_validation(self, value: object) -> None:
        with pytest.raises(ValueError, match="max_fragments must be a number of frames"):
            Connection(Side.SERVER, max_fragments=value)  # type: ignore[arg-type]


#: Autobahn case 6.4.1's text: valid UTF-8, then a code point above U+10FFFF.
KOSME = "κόσμε".encode()
INVALID = b"\xf4\x90\x80\x80"


class TestFailFastUTF8:
    """Section 8.1: invalid UTF-8 fails the connection as soon as it arrives.

    Even inside one frame that arrives in pieces (Autobahn cases 6.4.3 and
    6.4.4): the rest of the frame is not awaited.
    """

    def test_inside_one_frame(self) -> None:
        server = Connection(Side.SERVER)
        data = from_client(Frame(Opcode.TEXT, KOSME + INVALID + b"edited"))
        cut = len(data) - len(INVALID + b"edited")  # header, mask key, valid part
        assert server.receive_data(data[:cut]) == []
        events = server.receive_data(data[cut : cut + 2])  # the first impossible bytes
        assert events == [Failed(1007, "text message is not valid UTF-8 (8.1)")]
        assert server.state is State.CLOSED

    def test_inside_a_continuation_frame(self) -> None:
        client = Connection(Side.CLIENT)
        first = from_server(Frame(Opcode.TEXT, KOSME, fin=False))
        second = from_server(Frame(Opcode.CONT, b"ok " + INVALID + b"..." * 100))
        bad = 4 + len(b"ok ")  # a 16-bit length: 4 header bytes, then the payload
        assert client.receive_data(first + second[:bad]) == []
        (event,) = client.receive_data(second[bad : bad + 2])
        assert isinstance(event, Failed) and event.code == 1007

    def test_binary_frames_are_not_checked(self) -> None:
        server = Connection(Side.SERVER)
        data = from_client(Frame(Opcode.BINARY, INVALID + b"x" * 200))
        for i in range(len(data)):
            events = server.receive_data(data[i : i + 1])
        assert events == [Message(INVALID + b"x" * 200)]

    @settings(max_examples=40, deadline=None)
    @given(text=st.text(min_size=1, max_size=60), chunk=st.integers(1, 9), fin=st.booleans())
    def test_valid_text_in_any_pieces(self, text: str, chunk: int, fin: bool) -> None:
        """Code points cut between pieces (and between frames) are fine."""
        server = Connection(Side.SERVER)
        payload = text.encode()
        half = len(payload) // 2
        frames = [
            Frame(Opcode.TEXT, payload[:half], fin=False),
            Frame(Opcode.CONT, payload[half:]),
        ]
        data = from_client(*frames) if not fin else from_client(Frame(Opcode.TEXT, payload))
        events = []
        for i in range(0, len(data), chunk):
            events += server.receive_data(data[i : i + chunk])
        assert events == [Message(text)]
        assert server.receive_data(from_client(Frame(Opcode.TEXT, b"next"))) == [Message("next")]

    @settings(max_examples=40, deadline=None)
    @given(before=st.text(max_size=30), after=st.binary(max_size=30), chunk=st.integers(1, 7))
    def test_fails_in_the_piece_that_brings_the_first_bad_byte(
        self, before: str, after: bytes, chunk: int
    ) -> None:
        server = Connection(Side.SERVER)
        payload = before.encode() + b"\xff" + after
        data = from_client(Frame(Opcode.TEXT, payload))
        bad = len(data) - len(payload) + len(before.encode())  # where 0xff is on the wire
        for i in range(0, len(data), chunk):
            events = server.receive_data(data[i : i + chunk])
            if i + chunk > bad:
                assert events == [Failed(1007, "text message is not valid UTF-8 (8.1)")]
                break
            assert events == []


class TestEventOrder:
    """Section 7.1.7: what arrived before a protocol error is still delivered, in order."""

    def test_failed_comes_last(self) -> None:
        server = Connection(Side.SERVER)
        data = from_client(
            Frame(Opcode.TEXT, b"one"),
            Frame(Opcode.BINARY, b"two", fin=False),
            Frame(Opcode.PING, b"p"),
            Frame(Opcode.CONT, b"!"),
            Frame(Opcode.TEXT, b"three"),
        )
        events = server.receive_data(
            data + b"\x83\x80" + RFC_MASK + from_client(Frame(Opcode.TEXT))
        )
        assert events == [
            Message("one"),
            Ping(b"p"),
            Message(b"two!"),
            Message("three"),
            Failed(1002, "reserved opcode 0x3 (5.2)"),
        ]

    def test_with_an_invalid_text_frame_still_arriving(self) -> None:
        server = Connection(Side.SERVER)
        data = from_client(Frame(Opcode.TEXT, b"fine"), Frame(Opcode.TEXT, b"\xff" * 100))
        events = server.receive_data(data[:-50])
        assert events == [Message("fine"), Failed(1007, "text message is not valid UTF-8 (8.1)")]


class TestInputValidation:
    """Wrong arguments fail at once with a message that says what was expected."""

    @pytest.mark.parametrize("side", ["client", None, 1])
    def test_side(self, side: object) -> None:
        with pytest.raises(TypeError, match=r"side must be Side\.CLIENT or Side\.SERVER"):
            Connection(side)  # type: ignore[arg-type]

    def test_mask_key(self) -> None:
        with pytest.raises(ValueError, match="mask_key must be exactly 4 bytes, got 3"):
            Connection(Side.CLIENT, mask_key=b"abc")

    def test_max_size(self) -> None:
        with pytest.raises(ValueError, match="max_size must be a number of bytes"):
            Connection(Side.CLIENT, max_size=-1)

    def test_send_text_needs_str(self) -> None:
        with pytest.raises(TypeError, match=r"send_text\(\) takes a str, got bytes"):
            Connection(Side.SERVER).send_text(b"Hi")  # type: ignore[arg-type]

    def test_send_binary_needs_bytes(self) -> None:
        with pytest.raises(TypeError, match=r"send_binary\(\) takes bytes, got str"):
            Connection(Side.SERVER).send_binary("Hi")  # type: ignore[arg-type]

    def test_send_close_code(self) -> None:
        with pytest.raises(ValueError, match="close code 1006 may not be sent"):
            Connection(Side.SERVER).send_close(1006)

    def test_receive_data_needs_bytes(self) -> None:
        with pytest.raises(TypeError, match="data must be bytes, got str"):
            Connection(Side.SERVER).receive_data("\x81\x00")  # type: ignore[arg-type]


# -- property-based round trips -------------------------------------------------

messages = st.lists(st.text(max_size=40) | st.binary(max_size=40), max_size=8)


def fragment(data: bytes, sizes: list[int]) -> list[bytes]:
    """Cut ``data`` into fragments of the given sizes (the last takes the rest)."""
    parts, rest = [], data
    for size in sizes:
        parts.append(rest[:size])
        rest = rest[size:]
    return [*parts, rest]


class TestRoundTrips:
    """A client and a server built on Connection understand each other (sections 5-7)."""

    @settings(max_examples=60, deadline=None)
    @given(
        messages=messages, chunk=st.integers(1, 64), sizes=st.lists(st.integers(0, 10), max_size=4)
    )
    def test_client_to_server_and_back(
        self, messages: list[str | bytes], chunk: int, sizes: list[int]
    ) -> None:
        client, server = Connection(Side.CLIENT), Connection(Side.SERVER)
        wire = b""
        for message in messages:
            # Send each message fragmented, with a ping in between (5.4).
            opcode = Opcode.TEXT if isinstance(message, str) else Opcode.BINARY
            data = message.encode() if isinstance(message, str) else message
            parts = fragment(data, sizes)
            for i, part in enumerate(parts):
                fin = i == len(parts) - 1
                wire += client.send_frame(Frame(opcode if i == 0 else Opcode.CONT, part, fin=fin))
                if i == 0:
                    wire += client.send_ping(b"p")
        wire += client.send_close(1000, "done")
        events = []
        for i in range(0, len(wire), chunk):
            events += server.receive_data(wire[i : i + chunk])
        assert [e.data for e in events if isinstance(e, Message)] == messages
        assert events.count(Ping(b"p")) == len(messages)
        assert events[-1] == CloseReceived(1000, "done")
        assert server.state is State.CLOSED

        # The server's replies (pongs, then the echoed close) complete the handshake.
        replies = client.receive_data(server.data_to_send())
        assert replies == [Pong(b"p")] * len(messages) + [CloseReceived(1000, "")]
        assert (client.state, server.state) == (State.CLOSED, State.CLOSED)

    @settings(max_examples=40, deadline=None)
    @given(messages=messages, chunk=st.integers(1, 64))
    def test_server_to_client(self, messages: list[str | bytes], chunk: int) -> None:
        client, server = Connection(Side.CLIENT), Connection(Side.SERVER)
        wire = b"".join(
            server.send_text(m) if isinstance(m, str) else server.send_binary(m) for m in messages
        )
        chunks = (wire[i : i + chunk] for i in range(0, len(wire), chunk))
        events = list(itertools.chain.from_iterable(client.receive_data(c) for c in chunks))
        assert events == [Message(m) for m in messages]


class TestOneFrameAtATime:
    """Section 7.1.7 with a server that answers each message before reading on.

    ``receive_events`` decodes the next frame only when the next event is
    asked for: a message that came before a broken frame can be answered
    before the close frame the broken one causes.
    """

    BROKEN = b"\x83\x80" + RFC_MASK  # a reserved opcode (5.2)

    def test_a_message_before_a_broken_frame_is_answered_first(self) -> None:
        server = Connection(Side.SERVER)
        events = server.receive_events(from_client(Frame(Opcode.TEXT, b"ok")) + self.BROKEN)
        assert next(events) == Message("ok")
        # The broken frame is not even looked at yet: no close frame, still open.
        assert server.state is State.OPEN and server.data_to_send() == b""
        answer = server.send_text("You sent: ok")
        (failed,) = events
        assert isinstance(failed, Failed) and failed.code == 1002
        close = server.data_to_send()
        assert [f.opcode for f in sent_frames(answer + close, Side.SERVER)] == [
            Opcode.TEXT,
            Opcode.CLOSE,
        ]

    def test_the_same_events_as_receive_data(self) -> None:
        data = from_client(
            Frame(Opcode.TEXT, b"He", fin=False),
            Frame(Opcode.PING, b"p"),
            Frame(Opcode.CONT, b"llo"),
            Frame(Opcode.CLOSE, serialize_close(1000)),
            Frame(Opcode.TEXT, b"after the close"),
        )
        one, other = Connection(Side.SERVER), Connection(Side.SERVER)
        assert list(one.receive_events(data)) == other.receive_data(data)
        assert one.data_to_send() == other.data_to_send()
        assert one.state is other.state is State.CLOSED

    def test_frames_not_iterated_wait_for_the_next_call(self) -> None:
        server = Connection(Side.SERVER)
        events = server.receive_events(
            from_client(Frame(Opcode.TEXT, b"one"), Frame(Opcode.TEXT, b"two"))
        )
        assert next(events) == Message("one")
        del events  # the caller stops here; "two" stays buffered, not lost
        assert server.receive_data(b"") == [Message("two")]

    def test_the_bytes_are_buffered_even_if_never_iterated(self) -> None:
        server = Connection(Side.SERVER)
        server.receive_events(from_client(Frame(Opcode.TEXT, b"kept")))
        assert server.receive_data(b"") == [Message("kept")]

    def test_nothing_once_closed(self) -> None:
        server = Connection(Side.SERVER)
        server.receive_eof()
        assert list(server.receive_events(from_client(Frame(Opcode.TEXT, b"late")))) == []
