"""Tests of wslab.handshake: the opening handshake (RFC 6455 sections 1.3, 4.1, 4.2)."""

from __future__ import annotations

import base64

import pytest

from wslab.errors import HandshakeError
from wslab.handshake import (
    GUID,
    MAX_HEAD_SIZE,
    Headers,
    Request,
    Response,
    accept_key,
    check_host,
    check_request,
    check_response,
    client_request,
    error_response,
    new_key,
    origin_allowed,
    server_response,
    single_value,
    split_head,
)

#: The sample nonce of section 1.3 and the accept value the RFC derives from it.
RFC_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
RFC_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

#: The client's handshake of section 1.3 (1.2 shows the same one).
RFC_REQUEST = (
    b"GET /chat HTTP/1.1\r\n"
    b"Host: server.example.com\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Origin: http://example.com\r\n"
    b"Sec-WebSocket-Protocol: chat, superchat\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
    b"\r\n"
)

#: The server's handshake of sections 1.2 and 1.3.
RFC_RESPONSE = (
    b"HTTP/1.1 101 Switching Protocols\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
    b"Sec-WebSocket-Protocol: chat\r\n"
    b"\r\n"
)


def request_with(**changes: str | None) -> Request:
    """The RFC's request with some headers replaced (None removes one)."""
    request = Request.parse(RFC_REQUEST)
    items = [(n, v) for n, v in request.headers if n not in changes]
    items += [(n, v) for n, v in changes.items() if v is not None]
    return Request(request.path, Headers((n.replace("_", "-"), v) for n, v in items))


def handshake_error(request: Request, **kwargs: object) -> HandshakeError:
    with pytest.raises(HandshakeError) as info:
        check_request(request, **kwargs)  # type: ignore[arg-type]
    return info.value


class TestAcceptKey:
    """Section 1.3: Sec-WebSocket-Accept is base64(SHA-1(key + GUID))."""

    def test_rfc_example(self) -> None:
        assert accept_key(RFC_KEY) == RFC_ACCEPT

    def test_guid(self) -> None:
        assert GUID == "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    def test_new_key_is_base64_of_16_random_bytes(self) -> None:
        """Section 4.1: 'a randomly selected 16-byte value that has been base64-encoded'."""
        keys = {new_key() for _ in range(8)}
        assert len(keys) == 8  # a collision has probability about 2**-122
        for key in keys:
            assert len(key) == 24
            assert len(base64.b64decode(key, validate=True)) == 16
            assert len(accept_key(key)) == 28

    @pytest.mark.parametrize(
        "key",
        ["", "hello", "dGhlIHNhbXBsZSBub25jZQ", "dGhlIHNhbXBsZSBub25jZQ=!", "aGVsbG8=", "é" * 24],
    )
    def test_rejects_keys_that_are_not_base64_of_16_bytes(self, key: str) -> None:
        with pytest.raises(ValueError, match="key must be base64 of 16 bytes"):
            accept_key(key)

    @pytest.mark.parametrize("key", [RFC_KEY.encode(), None, 16])
    def test_rejects_non_str(self, key: object) -> None:
        with pytest.raises(TypeError, match="key must be a str such as"):
            accept_key(key)  # type: ignore[arg-type]


class TestRFCExample:
    """The handshake texts of sections 1.2 and 1.3, both ways: build them and parse them."""

    def test_build_the_request(self) -> None:
        request = client_request(
            "server.example.com",
            "/chat",
            key=RFC_KEY,
            origin="http://example.com",
            headers=[("Sec-WebSocket-Protocol", "chat, superchat")],
        )
        assert request.serialize() == RFC_REQUEST

    def test_parse_the_request(self) -> None:
        request = Request.parse(RFC_REQUEST)
        assert (request.method, request.path, request.version) == ("GET", "/chat", "HTTP/1.1")
        assert request.headers.get("host") == "server.example.com"
        assert request.headers.tokens("Sec-WebSocket-Protocol") == ["chat", "superchat"]
        assert request.serialize() == RFC_REQUEST
        assert check_request(request) == RFC_KEY

    def test_build_the_response(self) -> None:
        response = server_response(RFC_KEY, [("Sec-WebSocket-Protocol", "chat")])
        assert response.serialize() == RFC_RESPONSE

    def test_parse_the_response(self) -> None:
        response = Response.parse(RFC_RESPONSE)
        assert (response.status, response.reason) == (101, "Switching Protocols")
        assert response.headers.get("Sec-WebSocket-Accept") == RFC_ACCEPT
        assert response.serialize() == RFC_RESPONSE
        check_response(response, RFC_KEY, protocols=["chat", "superchat"])

    def test_readable_forms(self) -> None:
        assert str(Request.parse(RFC_REQUEST)).splitlines()[0] == "GET /chat HTTP/1.1"
        assert str(Response.parse(RFC_RESPONSE)) == RFC_RESPONSE.decode().strip().replace(
            "\r\n", "\n"
        )

    def test_round_trip_with_a_fresh_key(self) -> None:
        request = client_request("localhost:8080", "/chat")
        key = check_request(Request.parse(request.serialize()))
        assert key == request.headers.get("Sec-WebSocket-Key")
        check_response(Response.parse(server_response(key).serialize()), key)


class TestCheckRequest:
    """Section 4.2.1: what a server must find in the client's handshake."""

    def test_header_names_and_tokens_are_case_insensitive(self) -> None:
        request = request_with(Upgrade=None, Connection=None)
        request.headers.add("upgrade", "WebSocket")
        request.headers.add("connection", "keep-alive, Upgrade")  # as Firefox sends it
        assert check_request(request) == RFC_KEY

    def test_method_must_be_get(self) -> None:
        request = Request.parse(RFC_REQUEST.replace(b"GET", b"POST"))
        error = handshake_error(request)
        assert error.status == 400
        assert "must be a GET" in str(error)

    def test_http_1_0_is_too_old(self) -> None:
        request = Request.parse(RFC_REQUEST.replace(b"HTTP/1.1", b"HTTP/1.0"))
        error = handshake_error(request)
        assert error.status == 400
        assert str(error) == (
            "HTTP/1.0 is too old: the handshake needs HTTP/1.1 or higher (4.2.1 item 1)"
        )

    @pytest.mark.parametrize("version", ["HTTP/1.1", "HTTP/1.2", "HTTP/2.0"])
    def test_http_1_1_or_higher(self, version: str) -> None:
        """Item 1: "An HTTP/1.1 or higher GET request", not exactly HTTP/1.1."""
        request = Request.parse(RFC_REQUEST.replace(b"HTTP/1.1", version.encode()))
        assert check_request(request) == RFC_KEY

    @pytest.mark.parametrize("version", ["HTTP/1", "HTTP/x.y", "HTTP/11.1", "HTTP/1.1 "])
    def test_malformed_http_version(self, version: str) -> None:
        request = Request("/chat", Request.parse(RFC_REQUEST).headers, version=version)
        error = handshake_error(request)
        assert error.status == 400
        assert str(error).startswith(f"malformed HTTP version {version!r}")

    @pytest.mark.parametrize(
        ("header", "value", "message"),
        [
            ("Upgrade", None, "Upgrade header is missing: expected 'websocket'"),
            ("Upgrade", "h2c", "Upgrade header is 'h2c': expected 'websocket'"),
            ("Connection", None, "Connection header is missing: expected 'Upgrade'"),
            ("Connection", "keep-alive", "Connection header is 'keep-alive': expected 'Upgrade'"),
            ("Sec-WebSocket-Key", None, "Sec-WebSocket-Key header is missing"),
            ("Sec-WebSocket-Key", "aGVsbG8=", "Sec-WebSocket-Key header is 'aGVsbG8='"),
            ("Sec-WebSocket-Key", "not base64!", "expected base64 of 16 random bytes"),
            ("Host", None, "Host header is missing: expected the server's host and port"),
            ("Host", "", "Host header is '': expected the server's host and port"),
        ],
    )
    def test_bad_header_is_400(self, header: str, value: str | None, message: str) -> None:
        error = handshake_error(request_with(**{header: value}))
        assert error.status == 400
        assert message in str(error)
        assert error.headers == []

    def test_missing_host(self) -> None:
        """Item 2: 'A |Host| header field containing the server's authority'."""
        error = handshake_error(request_with(Host=None))
        assert (error.status, error.headers) == (400, [])
        assert str(error) == (
            "Host header is missing: expected the server's host and port (4.2.1 item 2)"
        )

    @pytest.mark.parametrize(
        ("header", "item"),
        [
            ("Host", "4.2.1 item 2"),
            ("Upgrade", "4.2.1 item 3"),
            ("Sec-WebSocket-Key", "4.2.1 item 5"),
            ("Origin", "4.2.1 item 7"),
        ],
    )
    def test_repeated_header_is_400(self, header: str, item: str) -> None:
        """A header that names one thing may appear once: two Hosts can name two servers."""
        request = Request.parse(RFC_REQUEST)
        value = request.headers.get(header)
        request.headers.add(header, value or "")
        error = handshake_error(request)
        assert (error.status, error.headers) == (400, [])
        assert str(error) == f"2 {header} headers {[value, value]!r}: send exactly one ({item})"

    @pytest.mark.parametrize("version", [None, "13", "8"])
    def test_missing_or_repeated_version_is_400_with_the_version(
        self, version: str | None
    ) -> None:
        """Sections 4.2.2 /version/ and 4.4: every version refusal names version 13."""
        request = request_with(**{"Sec-WebSocket-Version": None})
        if version is not None:
            request.headers.add("Sec-WebSocket-Version", "13")
            request.headers.add("Sec-WebSocket-Version", version)
        error = handshake_error(request)
        assert error.status == 400
        assert error.headers == [("Sec-WebSocket-Version", "13")]
        assert "send exactly one, with the value 13 (4.2.1 item 6)" in str(error)

    @pytest.mark.parametrize("version", ["8", "14", "13, 8", "", "thirteen"])
    def test_other_version_is_426_with_the_version_we_speak(self, version: str) -> None:
        """Section 4.4: answer 426 and list the versions the server supports."""
        error = handshake_error(request_with(**{"Sec-WebSocket-Version": version}))
        assert error.status == 426
        assert error.headers == [("Sec-WebSocket-Version", "13")]
        assert "Sec-WebSocket-Version" in str(error)

    def test_foreign_origin_is_403(self) -> None:
        """Section 10.2: a server may refuse a browser page from another origin."""
        error = handshake_error(Request.parse(RFC_REQUEST), origins=["http://localhost:8888"])
        assert error.status == 403
        assert "Origin 'http://example.com' is not allowed" in str(error)

    def test_allowed_origin_and_no_origin(self) -> None:
        assert check_request(Request.parse(RFC_REQUEST), origins=["http://example.com"])
        assert check_request(request_with(Origin=None), origins=["http://localhost:8888"])

    @pytest.mark.parametrize(
        ("origin", "host", "allowed"),
        [
            ("http://server.example.com", "server.example.com", True),  # same host
            ("http://server.example.com:80", "server.example.com", True),  # default port
            ("https://server.example.com", "server.example.com:443", False),  # https page
            ("http://127.0.0.1:8080", "127.0.0.1:8080", True),
            ("http://127.0.0.1:8081", "127.0.0.1:8080", False),  # another port
            ("http://evil.example", "127.0.0.1:8080", False),  # cross-site hijacking
            ("null", "127.0.0.1:8080", False),  # sandboxed pages and file:// send "null"
        ],
    )
    def test_same_host_rule(self, origin: str, host: str, allowed: bool) -> None:
        """Section 10.2: a page from the place the WebSocket goes to is the server's own."""
        request = request_with(Origin=origin, Host=host)
        if allowed:
            assert check_request(request, origins=[]) == RFC_KEY
        else:
            assert handshake_error(request, origins=[]).status == 403
        # Without an origins argument there is no Origin check at all.
        assert check_request(request) == RFC_KEY

    def test_rejects_non_request(self) -> None:
        with pytest.raises(TypeError, match=r"check_request\(\) takes a Request"):
            check_request(RFC_REQUEST)  # type: ignore[arg-type]

    def test_secure_is_passed_to_the_origin_check(self) -> None:
        request = request_with(Origin="https://server.example.com")
        assert handshake_error(request, origins=[]).status == 403
        assert check_request(request, origins=[], secure=True) == RFC_KEY


class TestSingleHeaders:
    """Section 4.2.1 items 2 and 7 (and RFC 9112 3.2): headers that appear once.

    check_request() uses these helpers; they are public so that a server's
    own rules (wslab.rules) reuse them.
    """

    def test_check_host(self) -> None:
        assert check_host(Headers([("Host", " example.com:8080 ")])) == "example.com:8080"
        for headers in ([], [("Host", " ")], [("Host", "a"), ("host", "b")]):
            with pytest.raises(HandshakeError, match=r"4\.2\.1 item 2") as info:
                check_host(Headers(headers))
            assert info.value.status == 400

    def test_single_value(self) -> None:
        headers = Headers([("Origin", "http://a"), ("X", "1"), ("origin", "http://b")])
        assert single_value(headers, "X", "rule") == "1"
        assert single_value(headers, "Y", "rule") is None
        with pytest.raises(HandshakeError, match=r"2 Origin headers .*: send exactly one \(7\)"):
            single_value(headers, "Origin", "7")


class TestOriginScheme:
    """Section 10.2 and RFC 6454 4: an origin is scheme, host and port, not host and port."""

    @pytest.mark.parametrize(
        ("origin", "secure", "allowed"),
        [
            ("http://127.0.0.1:8080", False, True),
            ("https://127.0.0.1:8080", False, False),  # an https page is another origin
            ("https://127.0.0.1:8080", True, True),
            ("http://127.0.0.1:8080", True, False),
            ("https://127.0.0.1:8080", None, True),  # behind a proxy: scheme unknown
            ("http://127.0.0.1:8080", None, True),
            ("http://127.0.0.1:8081", None, False),  # the port still counts
        ],
    )
    def test_scheme(self, origin: str, secure: bool | None, allowed: bool) -> None:
        assert origin_allowed(origin, "127.0.0.1:8080", secure=secure) is allowed

    def test_default_is_an_http_page(self) -> None:
        """The old call, without ``secure``, compares the scheme too."""
        assert origin_allowed("http://127.0.0.1:8080", "127.0.0.1:8080")
        assert not origin_allowed("https://127.0.0.1:8080", "127.0.0.1:8080")
        assert not origin_allowed("ws://127.0.0.1:8080", "127.0.0.1:8080")

    def test_default_ports(self) -> None:
        assert origin_allowed("https://example.com", "example.com:443", secure=True)
        assert origin_allowed("http://example.com:80", "example.com", secure=False)
        assert not origin_allowed("https://example.com", "example.com:80", secure=True)

    def test_listed_origins_are_accepted_whatever_the_scheme(self) -> None:
        assert origin_allowed("https://hub.example", "127.0.0.1:8080", ["https://hub.example"])


class TestNoBody:
    """Sections 4.2.1 and 4.2.2: the bytes after the request's head are frames, not a body."""

    @pytest.mark.parametrize(
        ("header", "value", "message"),
        [
            ("Content-Length", "5", "Content-Length is '5': a handshake has no body"),
            ("Content-Length", "0, 5", "Content-Length is '0, 5'"),
            ("Transfer-Encoding", "chunked", "Transfer-Encoding header is 'chunked'"),
            ("Transfer-Encoding", "identity", "a handshake has no body, frames follow it"),
        ],
    )
    def test_body_is_400(self, header: str, value: str, message: str) -> None:
        error = handshake_error(request_with(**{header: value}))
        assert error.status == 400
        assert message in str(error)
        assert str(error).endswith("(4.2.1)")

    def test_content_length_0_is_fine(self) -> None:
        assert check_request(request_with(**{"Content-Length": "0"})) == RFC_KEY


class TestControlCharacters:
    """RFC 9110 5.5: NUL and other control characters make a head invalid (400)."""

    @pytest.mark.parametrize(
        ("char", "name"),
        [(b"\x00", "NUL"), (b"\x01", "0x01"), (b"\x1b", "0x1b"), (b"\x7f", "0x7f")],
    )
    def test_in_a_header_value(self, char: bytes, name: str) -> None:
        head = RFC_REQUEST.replace(
            b"Origin: http://example.com", b"Origin: http://a" + char + b"b"
        )
        with pytest.raises(HandshakeError) as info:
            Request.parse(head)
        assert info.value.status == 400
        assert str(info.value) == (
            f"HTTP head has the control character {name} in line 6 (RFC 9110 5.5)"
        )

    def test_in_the_request_line(self) -> None:
        with pytest.raises(HandshakeError, match="control character NUL in line 1"):
            Request.parse(RFC_REQUEST.replace(b"/chat", b"/ch\x00at"))

    def test_in_a_response(self) -> None:
        with pytest.raises(HandshakeError, match="control character NUL in line 2"):
            Response.parse(RFC_RESPONSE.replace(b"websocket", b"web\x00socket"))

    def test_bare_cr_or_lf(self) -> None:
        """RFC 9112 2.2: a lone CR or LF is not a line end."""
        for bare in (b"\r", b"\n"):
            with pytest.raises(HandshakeError, match="bare CR or LF in line 3"):
                Request.parse(RFC_REQUEST.replace(b"Upgrade: websocket", b"Upgrade: web" + bare))

    def test_tab_is_allowed(self) -> None:
        """HTAB is the one control character a field value may hold (RFC 9110 5.5)."""
        request = Request.parse(RFC_REQUEST.replace(b"Origin: http://example.com", b"X: a\tb"))
        assert request.headers.get("X") == "a\tb"

    @pytest.mark.parametrize("value", ["a\x00b", "a\x7fb", "a\rb"])
    def test_headers_refuse_them_too(self, value: str) -> None:
        with pytest.raises(ValueError, match="invalid header"):
            Headers().add("X", value)


class TestCheckResponse:
    """Section 4.1: what a client must find in the server's answer."""

    def check(self, data: bytes, key: str = RFC_KEY) -> HandshakeError:
        with pytest.raises(HandshakeError) as info:
            check_response(Response.parse(data), key)
        return info.value

    @pytest.mark.parametrize("status", [200, 403, 404, 426])
    def test_status_other_than_101(self, status: int) -> None:
        data = error_response(HandshakeError("no", status)).serialize()
        error = self.check(data)
        assert error.status == status
        assert f"server answered {status}" in str(error)
        assert "not 101 Switching Protocols" in str(error)

    def test_wrong_accept(self) -> None:
        error = self.check(RFC_RESPONSE, new_key())
        assert f"Sec-WebSocket-Accept header is {RFC_ACCEPT!r}: expected" in str(error)

    def test_missing_accept(self) -> None:
        error = self.check(RFC_RESPONSE.replace(b"Sec-WebSocket-Accept", b"X-Accept"))
        assert "Sec-WebSocket-Accept header is missing" in str(error)

    @pytest.mark.parametrize(
        ("old", "new", "message"),
        [
            (b"Upgrade: websocket\r\n", b"", "Upgrade header is missing"),
            (b"Upgrade: websocket", b"Upgrade: h2c", "Upgrade header is 'h2c'"),
            (b"Connection: Upgrade", b"Connection: close", "Connection header is 'close'"),
        ],
    )
    def test_wrong_upgrade_or_connection(self, old: bytes, new: bytes, message: str) -> None:
        assert message in str(self.check(RFC_RESPONSE.replace(old, new)))

    def test_rejects_non_response(self) -> None:
        with pytest.raises(TypeError, match=r"check_response\(\) takes a Response"):
            check_response(RFC_RESPONSE, RFC_KEY)  # type: ignore[arg-type]

    def test_two_accept_headers(self) -> None:
        data = RFC_RESPONSE.replace(
            b"\r\n\r\n", f"\r\nSec-WebSocket-Accept: {RFC_ACCEPT}\r\n\r\n".encode()
        )
        assert "(4.1 step 4)" in str(self.check(data))


def response_with(header: str, value: str) -> Response:
    """A valid 101 for RFC_KEY, with one more header."""
    response = server_response(RFC_KEY)
    response.headers.add(header, value)
    return response


class TestSelectedSubprotocol:
    """Section 4.1 step 6: the server may only select a subprotocol the client offered."""

    def test_offered(self) -> None:
        response = response_with("Sec-WebSocket-Protocol", "superchat")
        check_response(response, RFC_KEY, protocols=["chat", "superchat"])

    def test_none_selected(self) -> None:
        check_response(server_response(RFC_KEY), RFC_KEY, protocols=["chat"])

    @pytest.mark.parametrize(
        ("offered", "shown"), [((), "(it offered none)"), (["chat"], "(it offered ['chat'])")]
    )
    def test_not_offered(self, offered: list[str], shown: str) -> None:
        with pytest.raises(HandshakeError) as info:
            check_response(
                response_with("Sec-WebSocket-Protocol", "superchat"), RFC_KEY, protocols=offered
            )
        assert str(info.value) == (
            f"server selected the subprotocol 'superchat', which the client did not offer "
            f"{shown} (4.1 step 6)"
        )

    def test_case_counts(self) -> None:
        """Compared exactly as sent, as websockets and browsers compare them."""
        with pytest.raises(HandshakeError, match=r"4\.1 step 6"):
            check_response(
                response_with("Sec-WebSocket-Protocol", "CHAT"), RFC_KEY, protocols=["chat"]
            )

    def test_two_selected(self) -> None:
        """Section 4.2.2 /subprotocol/: 'Either a single value ... or null'."""
        with pytest.raises(
            HandshakeError, match=r"selected 2 subprotocols \['chat', 'superchat'\]"
        ):
            check_response(
                response_with("Sec-WebSocket-Protocol", "chat, superchat"),
                RFC_KEY,
                protocols=["chat", "superchat"],
            )


class TestSelectedExtensions:
    """Section 4.1 step 5: the server may only use extensions the client offered."""

    OFFER = "permessage-deflate; client_max_window_bits"

    @pytest.mark.parametrize("offer", [OFFER, "permessage-deflate", "PerMessage-Deflate"])
    def test_offered(self, offer: str) -> None:
        response = response_with(
            "Sec-WebSocket-Extensions", "permessage-deflate; server_no_context_takeover"
        )
        check_response(response, RFC_KEY, extensions=[offer])

    def test_not_offered(self) -> None:
        response = response_with("Sec-WebSocket-Extensions", "permessage-deflate")
        with pytest.raises(HandshakeError) as info:
            check_response(response, RFC_KEY)
        assert str(info.value) == (
            "server selected the extension 'permessage-deflate', which the client did not "
            "offer (it offered none) (4.1 step 5)"
        )

    def test_one_of_two_not_offered(self) -> None:
        response = response_with(
            "Sec-WebSocket-Extensions", "permessage-deflate, x-webkit-deflate-frame"
        )
        with pytest.raises(
            HandshakeError, match="'x-webkit-deflate-frame', which the client did not"
        ):
            check_response(response, RFC_KEY, extensions=[self.OFFER])


class TestErrorResponse:
    """The HTTP answer to a refused handshake (section 4.2.2 item 4, section 4.4)."""

    @staticmethod
    def answer(error: HandshakeError) -> Response:
        head, _ = split_head(error_response(error).serialize())  # type: ignore[misc]
        return Response.parse(head)

    @pytest.mark.parametrize("version", [None, "8"])
    def test_version_refusals_name_13(self, version: str | None) -> None:
        """Section 4.2.2 /version/ and 4.4: the answer lists the versions the server speaks."""
        request = request_with(**{"Sec-WebSocket-Version": version})
        response = self.answer(handshake_error(request))
        assert response.status == (400 if version is None else 426)
        assert response.headers.get_all("Sec-WebSocket-Version") == ["13"]

    @pytest.mark.parametrize(
        "error",
        [
            HandshakeError("plain GET on a WebSocket path", 426),
            HandshakeError("version 8", 426, [("Sec-WebSocket-Version", "13")]),
        ],
    )
    def test_every_426_names_the_upgrade(self, error: HandshakeError) -> None:
        """RFC 9110 15.5.22: a 426 MUST carry Upgrade; 7.8: Connection then lists it."""
        response = self.answer(error)
        assert response.headers.get_all("Upgrade") == ["websocket"]
        assert response.headers.tokens("Connection") == ["upgrade", "close"]

    #: The answer to 'Sec-WebSocket-Version: 8', byte for byte.
    VERSION_426 = (
        b"HTTP/1.1 426 Upgrade Required\r\n"
        b"Sec-WebSocket-Version: 13\r\n"
        b"Upgrade: websocket\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Length: 58\r\n"
        b"Connection: Upgrade, close\r\n"
        b"\r\n"
        b"Sec-WebSocket-Version is '8': this server speaks 13 (4.4)\n"
    )

    def test_version_426_both_ways(self) -> None:
        error = handshake_error(request_with(**{"Sec-WebSocket-Version": "8"}))
        assert error_response(error).serialize() == self.VERSION_426
        response = Response.parse(self.VERSION_426)
        assert (response.status, response.reason) == (426, "Upgrade Required")
        assert response.body == b"Sec-WebSocket-Version is '8': this server speaks 13 (4.4)\n"
        assert response.serialize() == self.VERSION_426

    def test_426_keeps_its_own_upgrade(self) -> None:
        response = self.answer(HandshakeError("h2c", 426, [("Upgrade", "h2c")]))
        assert response.headers.get_all("Upgrade") == ["h2c"]

    @pytest.mark.parametrize("status", [400, 403, 404, 431, 503])
    def test_other_statuses_do_not_upgrade(self, status: int) -> None:
        response = self.answer(HandshakeError("no", status))
        assert "Upgrade" not in response.headers
        assert response.headers.get("Connection") == "close"

    def test_426_carries_the_version(self) -> None:
        error = HandshakeError(
            "Sec-WebSocket-Version is '8'", 426, [("Sec-WebSocket-Version", "13")]
        )
        response = Response.parse(split_head(error_response(error).serialize())[0])  # type: ignore[index]
        assert (response.status, response.reason) == (426, "Upgrade Required")
        assert response.headers.get("Sec-WebSocket-Version") == "13"

    def test_body_is_the_message(self) -> None:
        data = error_response(HandshakeError("Origin 'x' is not allowed (10.2)", 403)).serialize()
        head, body = split_head(data)  # type: ignore[misc]
        assert head.startswith(b"HTTP/1.1 403 Forbidden\r\n")
        assert body == b"Origin 'x' is not allowed (10.2)\n"
        assert Response.parse(head).headers.get("Content-Length") == str(len(body))
        assert Response.parse(head).headers.get("Connection") == "close"

    def test_rejects_non_error(self) -> None:
        with pytest.raises(TypeError, match=r"error_response\(\) takes a HandshakeError"):
            error_response(ValueError("x"))  # type: ignore[arg-type]


class TestParsing:
    """HTTP/1.1 heads as the handshake uses them (RFC 7230 framing)."""

    def test_split_head_waits_for_the_blank_line(self) -> None:
        assert split_head(RFC_REQUEST[:-2]) is None
        assert split_head(RFC_REQUEST + b"\x81\x00") == (RFC_REQUEST, b"\x81\x00")

    def test_split_head_limit_is_431(self) -> None:
        with pytest.raises(HandshakeError, match="over 8192 bytes") as info:
            split_head(b"GET / HTTP/1.1\r\nX: " + b"a" * MAX_HEAD_SIZE)
        assert info.value.status == 431
        with pytest.raises(HandshakeError) as info:
            split_head(b"GET / HTTP/1.1\r\nX: " + b"a" * MAX_HEAD_SIZE + b"\r\n\r\n")
        assert info.value.status == 431

    @pytest.mark.parametrize(
        ("head", "message"),
        [
            (b"GET /chat\r\n\r\n", "malformed request line 'GET /chat'"),
            (b"GET /chat HTTP/1.1\r\nHost server\r\n\r\n", "malformed header line 'Host server'"),
            (b"GET /chat HTTP/1.1\r\n Host: x\r\n\r\n", "malformed header line"),
            (b"GET /caf\xc3\xa9 HTTP/1.1\r\n\r\n", "non-ASCII"),
        ],
    )
    def test_malformed_request(self, head: bytes, message: str) -> None:
        with pytest.raises(HandshakeError, match=message) as info:
            Request.parse(head)
        assert info.value.status == 400

    @pytest.mark.parametrize(
        "head", [b"HTTP/1.1\r\n\r\n", b"HTTP/1.1 OK 200\r\n\r\n", b"ICY 200\r\n\r\n"]
    )
    def test_malformed_status_line(self, head: bytes) -> None:
        with pytest.raises(HandshakeError, match="malformed status line"):
            Response.parse(head)

    def test_response_body_after_the_head(self) -> None:
        response = Response.parse(b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nno\n")
        assert (response.status, response.reason, response.body) == (404, "Not Found", b"no\n")

    def test_request_with_bytes_after_the_head(self) -> None:
        with pytest.raises(HandshakeError, match="2 bytes follow the request head"):
            Request.parse(RFC_REQUEST + b"\x81\x00")

    def test_status_line_without_reason(self) -> None:
        assert Response.parse(b"HTTP/1.1 101\r\n\r\n").status == 101

    def test_parse_needs_bytes(self) -> None:
        with pytest.raises(TypeError, match="head must be bytes, got str"):
            Request.parse(RFC_REQUEST.decode())  # type: ignore[arg-type]


class TestHeaders:
    """Header names are case-insensitive; values cannot smuggle a new line."""

    def test_lookup(self) -> None:
        headers = Headers([("Connection", "keep-alive"), ("connection", "Upgrade")])
        assert headers.get("CONNECTION") == "keep-alive, Upgrade"
        assert headers.get_all("Connection") == ["keep-alive", "Upgrade"]
        assert headers.tokens("Connection") == ["keep-alive", "upgrade"]
        assert "connection" in headers and "Host" not in headers
        assert headers.get("Host", "none") == "none"
        assert len(headers) == 2

    @pytest.mark.parametrize(("name", "value"), [("X", "a\r\nEvil: 1"), ("X\n", "a"), ("X", 1)])
    def test_rejects_line_breaks_and_non_str(self, name: str, value: object) -> None:
        with pytest.raises(ValueError, match="invalid header"):
            Headers().add(name, value)  # type: ignore[arg-type]


class TestClientRequestValidation:
    """client_request() refuses arguments that would build a broken request."""

    @pytest.mark.parametrize("key", ["short", "aGVsbG8=", b"dGhlIHNhbXBsZSBub25jZQ=="])
    def test_key(self, key: object) -> None:
        with pytest.raises(ValueError, match=r"key must be base64 of 16 bytes \(24 characters\)"):
            client_request("localhost", "/", key=key)  # type: ignore[arg-type]

    @pytest.mark.parametrize("path", ["chat", "", b"/chat"])
    def test_path(self, path: object) -> None:
        with pytest.raises(ValueError, match="path must start with '/'"):
            client_request("localhost", path)  # type: ignore[arg-type]

    @pytest.mark.parametrize("host", ["", None, 8080])
    def test_host(self, host: object) -> None:
        with pytest.raises(ValueError, match="host must be a str such as 'localhost:8080'"):
            client_request(host)  # type: ignore[arg-type]

    def test_server_response_key(self) -> None:
        with pytest.raises(ValueError, match="key must be base64 of 16 bytes"):
            server_response("nonsense")
