"""Tests of wslab.uri: WebSocket URLs (RFC 6455 section 3)."""

from __future__ import annotations

import pytest

from wslab.uri import WebSocketURI, parse_uri


class TestGoodURLs:
    """Section 3: ws-URI = "ws:" "//" host [ ":" port ] path [ "?" query ]."""

    @pytest.mark.parametrize(
        ("url", "secure", "host", "port", "path"),
        [
            ("ws://127.0.0.1:8080/chat", False, "127.0.0.1", 8080, "/chat"),
            ("ws://localhost/chat", False, "localhost", 80, "/chat"),
            ("wss://example.com/chat", True, "example.com", 443, "/chat"),
            ("ws://example.com", False, "example.com", 80, "/"),
            (
                "ws://example.com:9000/a/b?room=1&x=2",
                False,
                "example.com",
                9000,
                "/a/b?room=1&x=2",
            ),
            ("ws://[::1]:8080/", False, "::1", 8080, "/"),
            ("WS://Example.COM/Chat", False, "example.com", 80, "/Chat"),
            ("  ws://127.0.0.1:8080/chat\n", False, "127.0.0.1", 8080, "/chat"),
        ],
    )
    def test_parts(self, url: str, secure: bool, host: str, port: int, path: str) -> None:
        assert parse_uri(url) == WebSocketURI(secure, host, port, path)

    @pytest.mark.parametrize(
        ("url", "host_header", "text"),
        [
            ("ws://localhost/chat", "localhost", "ws://localhost/chat"),
            ("ws://localhost:80/chat", "localhost", "ws://localhost/chat"),
            ("ws://localhost:8080/chat", "localhost:8080", "ws://localhost:8080/chat"),
            ("wss://h:443/", "h", "wss://h/"),
            ("wss://h:80/", "h:80", "wss://h:80/"),
            ("ws://[::1]:8080/x", "[::1]:8080", "ws://[::1]:8080/x"),
        ],
    )
    def test_host_header_leaves_out_the_default_port(
        self, url: str, host_header: str, text: str
    ) -> None:
        """Section 4.1 item 4: the Host header has the port only when it is not the default."""
        uri = parse_uri(url)
        assert uri.host_header == host_header
        assert str(uri) == text
        assert parse_uri(str(uri)) == uri


class TestBadURLs:
    """Every mistake gets a message that says what a valid URL looks like."""

    @pytest.mark.parametrize(
        ("url", "fixed"),
        [
            ("http://127.0.0.1:8080/chat", "ws://127.0.0.1:8080/chat"),
            ("https://example.com/chat", "wss://example.com/chat"),
            ("HTTP://localhost/", "ws://localhost/"),
        ],
    )
    def test_http_url_hint(self, url: str, fixed: str) -> None:
        with pytest.raises(
            ValueError, match="is an HTTP URL; WebSocket URLs start with ws://"
        ) as info:
            parse_uri(url)
        assert f"({fixed})" in str(info.value)

    @pytest.mark.parametrize("url", ["ftp://host/", "127.0.0.1:8080/chat", "localhost", ""])
    def test_not_a_websocket_url(self, url: str) -> None:
        with pytest.raises(ValueError, match="is not a WebSocket URL; expected a URL like ws://"):
            parse_uri(url)

    @pytest.mark.parametrize("url", ["ws:///chat", "ws://:8080/chat", "ws://"])
    def test_no_host(self, url: str) -> None:
        with pytest.raises(
            ValueError, match=r"has no host; expected a URL like ws://127\.0\.0\.1:8080/chat"
        ):
            parse_uri(url)

    @pytest.mark.parametrize("url", ["ws://host:99999/", "ws://host:port/", "ws://host:-1/"])
    def test_bad_port(self, url: str) -> None:
        with pytest.raises(ValueError, match="has an invalid port; expected a URL like"):
            parse_uri(url)

    def test_port_zero(self) -> None:
        with pytest.raises(ValueError, match="has port 0, which no server listens on"):
            parse_uri("ws://127.0.0.1:0/chat")

    @pytest.mark.parametrize("url", ["ws://host/chat#top", "ws://host/#"])
    def test_fragment(self, url: str) -> None:
        """'Fragment identifiers ... MUST NOT be used on these URIs' (3)."""
        with pytest.raises(ValueError, match=r"has a fragment \(#...\), which section 3 forbids"):
            parse_uri(url)

    @pytest.mark.parametrize("url", [b"ws://host/", None, 8080])
    def test_not_a_str(self, url: object) -> None:
        with pytest.raises(TypeError, match="URL must be a str, got"):
            parse_uri(url)  # type: ignore[arg-type]
