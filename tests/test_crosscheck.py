"""Cross-checks of the core against two independent implementations of RFC 6455.

The websockets library and wsproto were written by other people from the same
RFC. Whatever wslab writes, they must read identically, and the other way round:
frames, close payloads, the handshake and whole connections.
"""

from __future__ import annotations

import base64
from typing import ClassVar
from unittest import mock

import pytest
import websockets.frames as ws_frames
import wsproto.frame_protocol as wp_frames
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.client import ClientProtocol
from websockets.http11 import Request as WSRequest
from websockets.protocol import Protocol as WSProtocol
from websockets.protocol import Side as WSSide
from websockets.protocol import State as WSState
from websockets.server import ServerProtocol
from websockets.streams import StreamReader
from websockets.uri import parse_uri as ws_parse_uri
from websockets.utils import accept_key as ws_accept_key
from wsproto import ConnectionType, WSConnection
from wsproto import events as wp_events
from wsproto.connection import Connection as WPConnection
from wsproto.utilities import RemoteProtocolError as WPRemoteProtocolError
from wsproto.utilities import generate_accept_token

from wslab.closing import Close, parse_close, serialize_close
from wslab.connection import CloseReceived, Connection, Failed, Message, Ping, Pong, State
from wslab.errors import HandshakeError, ProtocolError
from wslab.frames import Frame, FrameDecoder, Opcode, Side, encode
from wslab.handshake import (
    Headers,
    Request,
    Response,
    accept_key,
    check_request,
    check_response,
    client_request,
    server_response,
    split_head,
)

RFC_MASK = bytes.fromhex("37fa213d")

RFC_FRAMES = [
    ("81 05 48 65 6c 6c 6f", None),
    ("81 85 37 fa 21 3d 7f 9f 4d 51 58", RFC_MASK),
    ("01 03 48 65 6c", None),
    ("80 02 6c 6f", None),
    ("89 05 48 65 6c 6c 6f", None),
    ("8a 85 37 fa 21 3d 7f 9f 4d 51 58", RFC_MASK),
]


# -- helpers that drive the other implementations -------------------------------


def websockets_parse(data: bytes, *, masked: bool) -> ws_frames.Frame:
    """Parse one frame with websockets' generator-based parser; all bytes must be used."""
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    parser = ws_frames.Frame.parse(reader.read_exact, mask=masked, max_size=None)
    try:
        next(parser)
    except StopIteration as done:
        assert reader.buffer == b""
        frame: ws_frames.Frame = done.value
        return frame
    raise AssertionError("websockets wanted more bytes than one frame")


def websockets_serialize(frame: Frame, mask_key: bytes | None) -> bytes:
    """Serialize with websockets, forcing its random mask to ``mask_key``."""
    ws_frame = ws_frames.Frame(ws_frames.Opcode(frame.opcode), frame.payload, fin=frame.fin)
    with mock.patch.object(ws_frames.secrets, "token_bytes", return_value=mask_key):
        return ws_frame.serialize(mask=mask_key is not None, extensions=[])


def wsproto_parse(data: bytes, *, masked: bool) -> wp_frames.Frame:
    """Parse one frame with wsproto's frame decoder (client=True expects unmasked)."""
    decoder = wp_frames.FrameDecoder(client=not masked)
    decoder.receive_bytes(data)
    frame = decoder.process_buffer()
    assert frame is not None and frame.frame_finished
    assert len(decoder.buffer) == 0
    return frame


def wsproto_serialize(frame: Frame, mask_key: bytes | None) -> bytes:
    """Serialize with wsproto's FrameProtocol, forcing its random mask to ``mask_key``."""
    protocol = wp_frames.FrameProtocol(client=mask_key is not None, extensions=[])
    with mock.patch.object(wp_frames.os, "urandom", return_value=mask_key):
        if frame.opcode is Opcode.PING:
            return bytes(protocol.ping(frame.payload))
        if frame.opcode is Opcode.PONG:
            return bytes(protocol.pong(frame.payload))
        if frame.opcode is Opcode.CLOSE:
            close = parse_close(frame.payload)
            code = None if close.code == 1005 else close.code
            return bytes(protocol.close(code, close.reason or None))
        # wsproto writes CONT by itself after a first fragment: send one first.
        if frame.opcode is Opcode.CONT:
            protocol.send_data(b"", fin=False)
        payload = frame.payload.decode() if frame.opcode is Opcode.TEXT else frame.payload
        return bytes(protocol.send_data(payload, fin=frame.fin))


# -- strategies -----------------------------------------------------------------

SIZES = [0, 1, 125, 126, 127, 65535, 65536]


@st.composite
def payloads(draw: st.DrawFn) -> bytes:
    size = draw(st.sampled_from(SIZES) | st.integers(0, 200))
    pattern = draw(st.binary(min_size=1, max_size=32))
    return (pattern * (size // len(pattern) + 1))[:size]


@st.composite
def close_payloads(draw: st.DrawFn) -> bytes:
    if draw(st.booleans()):
        return b""
    code = draw(st.sampled_from([1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011]))
    reason = draw(st.text(max_size=20))
    return serialize_close(code, reason)


@st.composite
def frames(draw: st.DrawFn) -> Frame:
    """Frames both libraries can write: no RSV bits (no extension negotiated)."""
    opcode = draw(
        st.sampled_from([Opcode.CONT, Opcode.BINARY, Opcode.PING, Opcode.PONG, Opcode.CLOSE])
    )
    if opcode is Opcode.CLOSE:
        return Frame(opcode, draw(close_payloads()))
    if opcode in (Opcode.PING, Opcode.PONG):
        return Frame(opcode, draw(st.binary(max_size=125)))
    return Frame(opcode, draw(payloads()), fin=draw(st.booleans()))


@st.composite
def text_frames(draw: st.DrawFn) -> Frame:
    """A TEXT frame: wsproto only writes them for str, so the payload is valid UTF-8."""
    return Frame(Opcode.TEXT, draw(st.text(max_size=200)).encode(), fin=draw(st.booleans()))


mask_keys = st.none() | st.binary(min_size=4, max_size=4)
any_frame = frames() | text_frames()


def same(ours: Frame, opcode: int, payload: object, fin: bool) -> None:
    assert (int(ours.opcode), ours.payload, ours.fin) == (int(opcode), bytes(payload), fin)  # type: ignore[call-overload]


class TestFramesAgainstWebsockets:
    """Section 5.2 framing, checked against websockets.frames."""

    @pytest.mark.parametrize(("wire", "mask_key"), RFC_FRAMES)
    def test_rfc_examples(self, wire: str, mask_key: bytes | None) -> None:
        data = bytes.fromhex(wire)
        theirs = websockets_parse(data, masked=mask_key is not None)
        (ours,) = FrameDecoder(None).feed(data)
        same(ours, theirs.opcode, theirs.data, theirs.fin)
        assert websockets_serialize(ours, mask_key) == data

    @settings(max_examples=80, deadline=None)
    @given(frame=any_frame, mask_key=mask_keys)
    def test_they_read_what_we_write(self, frame: Frame, mask_key: bytes | None) -> None:
        theirs = websockets_parse(encode(frame, mask_key), masked=mask_key is not None)
        same(frame, theirs.opcode, theirs.data, theirs.fin)

    @settings(max_examples=80, deadline=None)
    @given(frame=any_frame, mask_key=mask_keys)
    def test_we_read_what_they_write(self, frame: Frame, mask_key: bytes | None) -> None:
        data = websockets_serialize(frame, mask_key)
        side = Side.SERVER if mask_key is not None else Side.CLIENT
        assert FrameDecoder(side, max_size=None).feed(data) == [frame]
        # Same frame, same key: the very same bytes.
        assert data == encode(frame, mask_key)


class TestFramesAgainstWsproto:
    """Section 5.2 framing, checked against wsproto.frame_protocol."""

    @pytest.mark.parametrize(("wire", "mask_key"), RFC_FRAMES)
    def test_rfc_examples(self, wire: str, mask_key: bytes | None) -> None:
        data = bytes.fromhex(wire)
        theirs = wsproto_parse(data, masked=mask_key is not None)
        (ours,) = FrameDecoder(None).feed(data)
        same(ours, theirs.opcode, theirs.payload, theirs.message_finished)

    @settings(max_examples=80, deadline=None)
    @given(frame=any_frame, mask_key=mask_keys)
    def test_they_read_what_we_write(self, frame: Frame, mask_key: bytes | None) -> None:
        theirs = wsproto_parse(encode(frame, mask_key), masked=mask_key is not None)
        same(frame, theirs.opcode, theirs.payload, theirs.message_finished)

    @settings(max_examples=80, deadline=None)
    @given(frame=any_frame, mask_key=mask_keys)
    def test_we_read_what_they_write(self, frame: Frame, mask_key: bytes | None) -> None:
        data = wsproto_serialize(frame, mask_key)
        side = Side.SERVER if mask_key is not None else Side.CLIENT
        assert FrameDecoder(side, max_size=None).feed(data) == [frame]
        assert data == encode(frame, mask_key)


class TestViolationsAgainstOthers:
    """All three implementations refuse the same broken frames (sections 5.1, 5.2, 5.5)."""

    # (bytes a client receives from a server: unmasked unless the case is about masks)
    CASES: ClassVar[list[tuple[str, str]]] = [
        ("reserved opcode 0x3", "83 00"),
        ("reserved opcode 0xb", "8b 00"),
        ("reserved bit", "c1 00"),
        ("reserved bit", "a1 00"),
        ("reserved bit", "91 00"),
        ("fragmented PING", "09 00"),
        ("fragmented CLOSE", "08 00"),
        ("at most 125", "89 7e 00 7e" + " 00" * 126),
        ("server frame is masked", "81 80 37 fa 21 3d"),
    ]

    @pytest.mark.parametrize(("words", "wire"), CASES)
    def test_refused_by_all(self, words: str, wire: str) -> None:
        data = bytes.fromhex(wire)
        with pytest.raises(ProtocolError, match=words):
            FrameDecoder(Side.CLIENT).feed(data)
        with pytest.raises(ws_frames.ProtocolError):
            websockets_parse(data, masked=False)
        with pytest.raises(wp_frames.ParseFailed):
            wsproto_parse(data, masked=False)

    def test_unmasked_frame_to_a_server(self) -> None:
        data = bytes.fromhex("81 05 48 65 6c 6c 6f")
        with pytest.raises(ProtocolError, match="not masked"):
            FrameDecoder(Side.SERVER).feed(data)
        with pytest.raises(ws_frames.ProtocolError):
            websockets_parse(data, masked=True)
        with pytest.raises(wp_frames.ParseFailed):
            wsproto_parse(data, masked=True)


class TestCloseAgainstWebsockets:
    """Close payloads (section 5.5.1) against websockets.frames.Close."""

    @settings(max_examples=60, deadline=None)
    @given(payload=close_payloads())
    def test_both_ways(self, payload: bytes) -> None:
        theirs = ws_frames.Close.parse(payload)
        assert parse_close(payload) == Close(theirs.code, theirs.reason)
        assert serialize_close(theirs.code, theirs.reason) == payload

    @pytest.mark.parametrize("code", [999, 1004, 1005, 1006, 1015, 1016, 2999, 5000])
    def test_both_refuse_the_same_codes(self, code: int) -> None:
        payload = code.to_bytes(2, "big")
        with pytest.raises(ws_frames.ProtocolError):
            ws_frames.Close.parse(payload)
        with pytest.raises(ProtocolError, match="not valid on the wire"):
            parse_close(payload)


keys = st.binary(min_size=16, max_size=16).map(lambda b: base64.b64encode(b).decode())


class TestHandshakeAgainstOthers:
    """The opening handshake (section 4) against websockets and wsproto."""

    @settings(max_examples=50, deadline=None)
    @given(key=keys)
    def test_accept_key(self, key: str) -> None:
        expected = accept_key(key)
        assert expected == ws_accept_key(key)
        assert expected.encode() == generate_accept_token(key.encode())

    def test_websockets_client_with_our_server_code(self) -> None:
        client = ClientProtocol(ws_parse_uri("ws://127.0.0.1:8080/chat"))
        client.send_request(client.connect())
        (request_bytes,) = client.data_to_send()
        head, rest = split_head(request_bytes)  # type: ignore[misc]
        assert rest == b""
        request = Request.parse(head)
        key = check_request(request, origins=["http://127.0.0.1:8080"])
        assert request.path == "/chat"
        client.receive_data(server_response(key).serialize())
        assert client.state is WSState.OPEN
        assert client.handshake_exc is None

    def test_our_client_code_with_a_websockets_server(self) -> None:
        server = ServerProtocol()
        request = client_request("127.0.0.1:8080", "/chat", origin="http://127.0.0.1:8080")
        server.receive_data(request.serialize())
        (theirs,) = server.events_received()
        assert isinstance(theirs, WSRequest) and theirs.path == "/chat"
        server.send_response(server.accept(theirs))
        (response_bytes,) = server.data_to_send()
        head, _ = split_head(response_bytes)  # type: ignore[misc]
        check_response(Response.parse(head), request.headers.get("Sec-WebSocket-Key") or "")
        assert server.state is WSState.OPEN

    def test_websockets_server_refuses_what_we_refuse(self) -> None:
        """A request without Sec-WebSocket-Key: both say 400 and name the header."""
        request = client_request("127.0.0.1:8080", "/chat")
        request.headers = Headers((n, v) for n, v in request.headers if n != "Sec-WebSocket-Key")
        server = ServerProtocol()
        server.receive_data(request.serialize())
        (theirs,) = server.events_received()
        response = server.accept(theirs)
        assert response.status_code == 400
        assert b"Sec-WebSocket-Key" in response.body
        with pytest.raises(HandshakeError, match="Sec-WebSocket-Key header is missing") as info:
            check_request(request)
        assert info.value.status == 400

    def test_wsproto_client_with_our_server_code(self) -> None:
        client = WSConnection(ConnectionType.CLIENT)
        data = client.send(wp_events.Request(host="127.0.0.1:8080", target="/chat"))
        head, _ = split_head(data)  # type: ignore[misc]
        key = check_request(Request.parse(head))
        client.receive_data(server_response(key).serialize())
        assert [type(e) for e in client.events()] == [wp_events.AcceptConnection]

    def test_our_client_code_with_a_wsproto_server(self) -> None:
        server = WSConnection(ConnectionType.SERVER)
        request = client_request("127.0.0.1:8080", "/chat")
        server.receive_data(request.serialize())
        (theirs,) = server.events()
        assert isinstance(theirs, wp_events.Request) and theirs.target == "/chat"
        head, _ = split_head(server.send(wp_events.AcceptConnection()))  # type: ignore[misc]
        check_response(Response.parse(head), request.headers.get("Sec-WebSocket-Key") or "")


def websockets_refuses_request(data: bytes) -> bool:
    """Whether a websockets server refuses this request (parse error or non-101)."""
    server = ServerProtocol()
    server.receive_data(data)
    received = server.events_received()
    if not received:
        return server.handshake_exc is not None
    request = received[0]
    assert isinstance(request, WSRequest)
    return server.accept(request).status_code != 101


def wsproto_refuses_request(data: bytes) -> bool:
    """Whether wsproto (on h11) refuses to read this request."""
    try:
        WSConnection(ConnectionType.SERVER).receive_data(data)
    except WPRemoteProtocolError:
        return True
    return False


def request_bytes(change: bytes = b"", *, remove: bytes = b"") -> bytes:
    """Our client's request for /chat on 127.0.0.1:8080, with a change to its headers."""
    head = client_request("127.0.0.1:8080", "/chat").serialize().replace(remove, b"")
    return head[:-2] + change + b"\r\n"


class TestRequestRefusalsAgainstOthers:
    """Section 4.2.1 and RFC 9110/9112: requests wslab refuses, and who agrees.

    websockets leaves ``Host`` to "the HTTP stack" and wsproto leaves the
    other headers to its caller, so each case names the libraries that have
    an opinion; every one of them must refuse too.
    """

    KEY = b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    CASES: ClassVar[list[tuple[str, bytes, bytes, tuple[str, ...]]]] = [
        # (what, header lines added, header removed, who else refuses)
        ("no Host", b"", b"Host: 127.0.0.1:8080\r\n", ("wsproto",)),
        ("two Hosts", b"Host: evil.example\r\n", b"", ("wsproto",)),
        ("two Upgrades", b"Upgrade: websocket\r\n", b"", ("websockets",)),
        ("two Origins", b"Origin: http://a\r\nOrigin: http://b\r\n", b"", ("websockets",)),
        ("two keys", KEY, b"", ("websockets",)),
        ("two versions", b"Sec-WebSocket-Version: 13\r\n", b"", ("websockets",)),
        ("no version", b"", b"Sec-WebSocket-Version: 13\r\n", ("websockets", "wsproto")),
        ("NUL", b"X-Note: a\x00b\r\n", b"", ("websockets", "wsproto")),
        ("control byte", b"X-Note: a\x01b\r\n", b"", ("websockets",)),
        ("Content-Length", b"Content-Length: 5\r\n", b"", ("websockets",)),
        ("Transfer-Encoding", b"Transfer-Encoding: chunked\r\n", b"", ("websockets",)),
    ]

    @pytest.mark.parametrize(
        ("what", "change", "remove", "others"), CASES, ids=[c[0] for c in CASES]
    )
    def test_refused(
        self, what: str, change: bytes, remove: bytes, others: tuple[str, ...]
    ) -> None:
        data = request_bytes(change, remove=remove)
        with pytest.raises(HandshakeError) as info:
            head, _ = split_head(data)  # type: ignore[misc]
            check_request(Request.parse(head))
        assert info.value.status == 400
        if "websockets" in others:
            assert websockets_refuses_request(data)
        if "wsproto" in others:
            assert wsproto_refuses_request(data)

    def test_the_unchanged_request_is_accepted_by_all(self) -> None:
        data = request_bytes()
        assert check_request(Request.parse(data))
        assert not websockets_refuses_request(data)
        assert not wsproto_refuses_request(data)


class TestResponseRefusalsAgainstOthers:
    """Section 4.1 steps 5 and 6: all three clients fail on what they never offered."""

    @pytest.mark.parametrize(
        "header",
        [("Sec-WebSocket-Protocol", "chat"), ("Sec-WebSocket-Extensions", "permessage-deflate")],
    )
    def test_not_offered(self, header: tuple[str, str]) -> None:
        key = base64.b64encode(b"0123456789abcdef").decode()
        with pytest.raises(HandshakeError, match=r"which the client did not offer"):
            check_response(server_response(key, [header]), key)
        # websockets: a client that offered nothing.
        client = ClientProtocol(ws_parse_uri("ws://127.0.0.1:8080/chat"))
        request = client.connect()
        client.send_request(request)
        client.receive_data(
            server_response(request.headers["Sec-WebSocket-Key"], [header]).serialize()
        )
        assert client.state is not WSState.OPEN
        assert client.handshake_exc is not None
        # wsproto: the same.
        connection = WSConnection(ConnectionType.CLIENT)
        head, _ = split_head(
            connection.send(wp_events.Request(host="127.0.0.1:8080", target="/chat"))
        )  # type: ignore[misc]
        theirs = Request.parse(head).headers.get("Sec-WebSocket-Key") or ""
        with pytest.raises(WPRemoteProtocolError):
            connection.receive_data(server_response(theirs, [header]).serialize())


messages = st.lists(st.text(max_size=30) | st.binary(max_size=30), max_size=6)


class TestConnectionsAgainstOthers:
    """Whole conversations after the handshake: messages, pings, the closing handshake."""

    @settings(max_examples=30, deadline=None)
    @given(messages=messages)
    def test_our_client_with_a_websockets_server(self, messages: list[str | bytes]) -> None:
        ours = Connection(Side.CLIENT)
        theirs = WSProtocol(WSSide.SERVER, state=WSState.OPEN)
        for message in messages:
            data = (
                ours.send_text(message) if isinstance(message, str) else ours.send_binary(message)
            )
            theirs.receive_data(data)
        theirs.receive_data(ours.send_ping(b"are you there"))
        received = theirs.events_received()
        assert [
            f.data.decode() if f.opcode is ws_frames.Opcode.TEXT else f.data for f in received[:-1]
        ] == messages
        # websockets answers the ping; then it echoes our close (section 5.5.1).
        theirs.receive_data(ours.send_close(1000, "bye"))
        events = ours.receive_data(b"".join(theirs.data_to_send()))
        assert events == [Pong(b"are you there"), CloseReceived(1000, "bye")]
        assert ours.state is State.CLOSED
        assert theirs.close_rcvd == ws_frames.Close(1000, "bye")

    @settings(max_examples=30, deadline=None)
    @given(messages=messages)
    def test_a_websockets_client_with_our_server(self, messages: list[str | bytes]) -> None:
        ours = Connection(Side.SERVER)
        theirs = WSProtocol(WSSide.CLIENT, state=WSState.OPEN)
        for message in messages:
            if isinstance(message, str):
                theirs.send_text(message.encode())
            else:
                theirs.send_binary(message)
        theirs.send_ping(b"p")
        theirs.send_close(1001, "going")
        events = ours.receive_data(b"".join(theirs.data_to_send()))
        assert events == [
            *(Message(m) for m in messages),
            Ping(b"p"),
            CloseReceived(1001, "going"),
        ]
        theirs.receive_data(ours.data_to_send())
        assert ours.state is State.CLOSED
        assert theirs.state is WSState.CLOSING  # it now waits for TCP to close (7.1.1)
        assert theirs.close_rcvd == ws_frames.Close(1001, "")

    @settings(max_examples=30, deadline=None)
    @given(messages=messages)
    def test_our_server_with_a_wsproto_client(self, messages: list[str | bytes]) -> None:
        ours = Connection(Side.SERVER)
        theirs = WPConnection(ConnectionType.CLIENT)
        data = b"".join(theirs.send(wp_events.Message(data=m)) for m in messages)  # type: ignore[arg-type]
        data += theirs.send(wp_events.Ping(b"p"))
        data += theirs.send(wp_events.CloseConnection(1000, "done"))
        events = ours.receive_data(data)
        assert events == [*(Message(m) for m in messages), Ping(b"p"), CloseReceived(1000, "done")]
        theirs.receive_data(ours.data_to_send())
        received = list(theirs.events())
        assert received == [wp_events.Pong(b"p"), wp_events.CloseConnection(1000, "")]

    @settings(max_examples=30, deadline=None)
    @given(messages=messages)
    def test_a_wsproto_server_with_our_client(self, messages: list[str | bytes]) -> None:
        ours = Connection(Side.CLIENT)
        theirs = WPConnection(ConnectionType.SERVER)
        for message in messages:
            theirs.receive_data(
                ours.send_text(message) if isinstance(message, str) else ours.send_binary(message)
            )
        received = list(theirs.events())
        assert [e.data for e in received] == messages  # type: ignore[attr-defined]
        data = b"".join(theirs.send(wp_events.Message(data=m)) for m in messages)  # type: ignore[arg-type]
        data += theirs.send(wp_events.CloseConnection(1001))
        events = ours.receive_data(data)
        assert events == [*(Message(m) for m in messages), CloseReceived(1001, "")]
        theirs.receive_data(ours.data_to_send())
        assert [type(e) for e in theirs.events()] == [wp_events.CloseConnection]
        assert ours.state is State.CLOSED


class TestIncompleteTextAgainstWsproto:
    """Section 8.1: wsproto also fails on invalid UTF-8 before the text frame is complete.

    (websockets reads whole frames, so it has no opinion until the frame ends.)
    """

    @pytest.mark.parametrize("valid", [b"", "κόσμε".encode(), b"ok " * 50])
    def test_both_fail_with_1007_on_the_first_bad_bytes(self, valid: bytes) -> None:
        payload = valid + b"\xf4\x90\x80\x80" + b"edited" * 40
        data = encode(Frame(Opcode.TEXT, payload), RFC_MASK)
        cut = len(data) - len(payload) + len(valid) + 2  # up to the second bad byte
        ours = Connection(Side.SERVER)
        (event,) = ours.receive_data(data[:cut])
        assert isinstance(event, Failed) and event.code == 1007
        theirs = WPConnection(ConnectionType.SERVER)
        theirs.receive_data(data[:cut])
        (closing,) = theirs.events()
        assert isinstance(closing, wp_events.CloseConnection) and closing.code == 1007

    def test_both_accept_the_valid_start(self) -> None:
        payload = "κόσμε".encode() * 30
        data = encode(Frame(Opcode.TEXT, payload), RFC_MASK)
        ours = Connection(Side.SERVER)
        theirs = WPConnection(ConnectionType.SERVER)
        for i in range(0, len(data), 7):
            assert ours.receive_data(data[i : i + 7]) in ([], [Message("κόσμε" * 30)])
            theirs.receive_data(data[i : i + 7])
        received = list(theirs.events())
        assert all(isinstance(e, wp_events.TextMessage) for e in received)
        assert "".join(e.data for e in received) == "κόσμε" * 30  # type: ignore[attr-defined]
