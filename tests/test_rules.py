"""The server rules (wslab.rules), sans I/O: routing, token, Host, Origin, URLs."""

from __future__ import annotations

import errno
import hmac
import warnings
from typing import Any

import pytest

from wslab import rules
from wslab.connection import Connection
from wslab.errors import ServerStartError
from wslab.frames import Side
from wslab.handshake import Headers, Request, accept_key, new_key
from wslab.rules import Accept, Limits, Policy, Reply, route

PORT = 8080
TOKEN = rules.new_token()
HOST = f"127.0.0.1:{PORT}"


def request(
    path: str = f"/chat?wslab_token={TOKEN}",
    *,
    method: str = "GET",
    websocket: bool = True,
    host: str | None = HOST,
    extra: tuple[tuple[str, str], ...] = (),
    drop: tuple[str, ...] = (),
) -> Request:
    headers: list[tuple[str, str]] = []
    if host is not None:
        headers.append(("Host", host))
    if websocket:
        headers += [
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", new_key()),
            ("Sec-WebSocket-Version", "13"),
        ]
    headers = [(n, v) for n, v in headers if n not in drop]
    return Request(path, Headers([*headers, *extra]), method)


def reply(decision: Accept | Reply) -> Reply:
    assert isinstance(decision, Reply), decision
    assert "\n" not in decision.reason  # one line
    assert decision.response.body in (b"", (decision.reason + "\n").encode()) or (
        decision.status == 200
    )
    return decision


POLICY = Policy(token=TOKEN, port=PORT)


class TestRouting:
    """Plain HTTP next to the WebSocket (RFC 9110 sections 9.3, 15.5; RFC 6455 4.2)."""

    def test_a_valid_handshake_is_accepted_with_its_key_and_name(self) -> None:
        req = request(f"/chat?wslab_token={TOKEN}&name=*%20Admin")
        decision = route(req, POLICY)
        assert isinstance(decision, Accept)
        assert accept_key(decision.key)  # a valid key
        assert decision.name == "Admin"  # cleaned: no fake notice

    def test_get_and_head_on_the_page(self) -> None:
        get = reply(route(request(f"/?wslab_token={TOKEN}", websocket=False), POLICY))
        head = reply(
            route(request(f"/?wslab_token={TOKEN}", websocket=False, method="HEAD"), POLICY)
        )
        assert get.status == head.status == 200
        assert get.response.body.startswith(b"<!doctype html>")
        # RFC 9110 9.3.2: HEAD gets GET's headers without the content.
        assert head.response.body == b""
        assert head.response.headers.get("Content-Length") == str(len(get.response.body))
        assert get.response.headers.get("Referrer-Policy") == "no-referrer"

    @pytest.mark.parametrize("method", ["POST", "PUT", "OPTIONS", "DELETE"])
    def test_other_methods_on_the_page_are_405_without_the_page(self, method: str) -> None:
        answer = reply(
            route(request(f"/?wslab_token={TOKEN}", websocket=False, method=method), POLICY)
        )
        assert answer.status == 405
        assert answer.response.headers.get("Allow") == "GET, HEAD"
        assert b"<html" not in answer.response.body

    def test_plain_get_on_the_websocket_path_is_426_with_upgrade(self) -> None:
        answer = reply(route(request(websocket=False), POLICY))
        # RFC 9110 15.5.22: a 426 MUST send Upgrade naming the protocol.
        assert answer.status == 426
        assert answer.response.headers.get("Upgrade") == "websocket"

    def test_post_on_the_websocket_path_is_405(self) -> None:
        answer = reply(route(request(method="POST"), POLICY))
        assert answer.status == 405
        assert answer.response.headers.get("Allow") == "GET"

    @pytest.mark.parametrize("websocket", [True, False])
    def test_unknown_path_is_404(self, websocket: bool) -> None:
        answer = reply(route(request(f"/nope?wslab_token={TOKEN}", websocket=websocket), POLICY))
        assert answer.status == 404
        assert "/chat" in answer.reason

    def test_head_replies_have_no_body(self) -> None:
        answer = reply(route(request("/nope", websocket=False, method="HEAD"), POLICY))
        assert answer.status == 404
        assert answer.response.body == b""

    def test_custom_page(self) -> None:
        policy = Policy(page=b"<p>mine</p>")
        answer = reply(route(request("/", websocket=False), policy))
        assert answer.response.body == b"<p>mine</p>"

    def test_reply_text_names_status_and_reason(self) -> None:
        answer = reply(route(request("/nope", websocket=False), POLICY))
        assert answer.text.startswith("404 Not Found: ")


class TestHandshakeChecks:
    """RFC 6455 4.2.1 and RFC 9112 3.2: what a server must refuse."""

    def test_missing_host_is_400(self) -> None:
        answer = reply(route(request(host=None), POLICY))
        assert answer.status == 400
        assert "Host" in answer.reason

    @pytest.mark.parametrize(
        "header", [("Host", "127.0.0.1:8080"), ("Origin", "http://127.0.0.1:8080")]
    )
    def test_duplicate_headers_are_400(self, header: tuple[str, str]) -> None:
        extra = (header, header) if header[0] != "Host" else (header,)
        answer = reply(route(request(extra=extra), POLICY))
        assert answer.status == 400
        assert header[0] in answer.reason

    @pytest.mark.parametrize(
        "extra",
        [(("Transfer-Encoding", "chunked"),), (("Content-Length", "5"),)],
    )
    def test_a_body_on_a_handshake_is_400(self, extra: tuple[tuple[str, str], ...]) -> None:
        assert reply(route(request(extra=extra), POLICY)).status == 400

    def test_a_bad_handshake_gets_the_core_checks_answer(self) -> None:
        answer = reply(route(request(drop=("Sec-WebSocket-Key",)), POLICY))
        assert answer.status == 400
        assert "Sec-WebSocket-Key" in answer.reason

    def test_a_wrong_version_is_426_naming_13(self) -> None:
        req = request(drop=("Sec-WebSocket-Version",), extra=(("Sec-WebSocket-Version", "8"),))
        answer = reply(route(req, POLICY))
        assert answer.status == 426
        assert answer.response.headers.get("Sec-WebSocket-Version") == "13"

    def test_too_many_clients_is_503(self) -> None:
        policy = Policy(limits=Limits(max_clients=2))
        assert isinstance(route(request("/chat"), policy, clients=1), Accept)
        assert reply(route(request("/chat"), policy, clients=2)).status == 503


class TestToken:
    """Private by default (issue #10): the token on the page and the handshake."""

    def test_missing_token_is_403_before_the_handler(self) -> None:
        answer = reply(route(request("/chat"), POLICY))
        assert answer.status == 403
        assert "private" in answer.reason and "server.url" in answer.reason

    def test_wrong_token_says_it_is_another_server(self) -> None:
        answer = reply(route(request(f"/chat?wslab_token={rules.new_token()}"), POLICY))
        assert answer.status == 403
        assert "wrong token" in answer.reason and "somebody else" in answer.reason

    def test_page_needs_the_token_too(self) -> None:
        assert reply(route(request("/", websocket=False), POLICY)).status == 403

    def test_two_tokens_are_refused(self) -> None:
        req = request(f"/chat?wslab_token={TOKEN}&wslab_token={TOKEN}")
        assert reply(route(req, POLICY)).status == 403

    def test_no_token_needed_when_public(self) -> None:
        assert isinstance(route(request("/chat"), Policy(port=PORT)), Accept)

    def test_the_format(self) -> None:
        token = rules.new_token()
        assert len(token) == 22
        assert set(token) <= set(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        )
        assert token != rules.new_token()

    def test_the_comparison_is_constant_time(self, monkeypatch: pytest.MonkeyPatch) -> None:
        calls: list[tuple[Any, Any]] = []
        real = hmac.compare_digest

        def spy(a: Any, b: Any) -> bool:
            calls.append((a, b))
            return real(a, b)

        monkeypatch.setattr(rules.hmac, "compare_digest", spy)
        assert rules.token_matches(f"wslab_token={TOKEN}", TOKEN)
        assert not rules.token_matches("wslab_token=x", TOKEN)
        assert calls == [(TOKEN.encode(), TOKEN.encode()), (b"x", TOKEN.encode())]

    def test_a_non_ascii_token_is_just_wrong(self) -> None:
        assert not rules.token_matches("wslab_token=%C3%A9", TOKEN)


class TestDNSRebinding:
    """Issue #10: a page whose name resolves to 127.0.0.1 must not get in."""

    @pytest.mark.parametrize(
        "host",
        [
            "127.0.0.1:8080",
            "localhost:8080",
            "LOCALHOST:8080",
            "a.localhost:8080",
            "[::1]:8080",
            "10.0.0.5:8080",
        ],
    )
    def test_local_names_and_addresses_are_accepted(self, host: str) -> None:
        assert rules.host_allowed(host, PORT)

    @pytest.mark.parametrize(
        "host", ["evil.example:8080", "evil.example.:8080", "127.0.0.1.nip.io:8080"]
    )
    def test_a_foreign_name_on_our_port_is_refused(self, host: str) -> None:
        assert not rules.host_allowed(host, PORT)
        answer = reply(route(request(host=host, extra=(("Origin", f"http://{host}"),)), POLICY))
        assert answer.status == 403
        assert "DNS rebinding" in answer.reason

    def test_evil_host_is_refused_on_a_public_server_too(self) -> None:
        req = request("/chat", host="evil.example:8080")
        assert reply(route(req, Policy(port=PORT))).status == 403

    @pytest.mark.parametrize("host", ["hub.example.org", "hub.example.org:443", "127.0.0.1:8888"])
    def test_the_proxy_route_is_accepted(self, host: str) -> None:
        # jupyter-server-proxy keeps the browser's Host: the hub's name and port.
        origin = f"https://{host}"
        decision = route(request(host=host, extra=(("Origin", origin),)), POLICY)
        assert isinstance(decision, Accept)

    def test_allowed_hosts(self) -> None:
        assert rules.host_allowed("lab.lan:8080", PORT, ("lab.lan",))

    def test_another_users_proxy_route_is_refused(self) -> None:
        policy = Policy(token=None, port=PORT, hub_prefix="/user/stu1/")
        mine = (("X-ProxyContextPath", "/user/stu1/proxy/8080"),)
        theirs = (("X-ProxyContextPath", "/user/stu2/proxy/8080"),)
        page = request("/", websocket=False, host="hub.example.org")
        assert (
            reply(route(Request(page.path, Headers([*page.headers, *mine])), policy)).status == 200
        )
        answer = reply(route(Request(page.path, Headers([*page.headers, *theirs])), policy))
        assert answer.status == 403
        assert "another Jupyter user" in answer.reason


class TestOrigin:
    """RFC 6455 10.2 and RFC 6454: the Origin names scheme, host and port."""

    def test_own_page_and_no_origin(self) -> None:
        assert rules.origin_allowed(None, HOST, PORT)
        assert rules.origin_allowed(f"http://{HOST}", HOST, PORT)

    def test_the_scheme_counts(self) -> None:
        assert not rules.origin_allowed(f"https://{HOST}", HOST, PORT)

    def test_foreign_origin(self) -> None:
        answer = reply(route(request(extra=(("Origin", "http://evil.example"),)), POLICY))
        assert answer.status == 403
        assert "Origin http://evil.example" in answer.reason

    def test_extra_origins(self) -> None:
        assert rules.origin_allowed(
            "http://localhost:3000", HOST, PORT, ("http://localhost:3000",)
        )


class TestBindAndURLs:
    """One rule and one wording for both servers (issue #9 section 1)."""

    def test_check_bind(self) -> None:
        assert rules.check_bind("localhost") == "127.0.0.1"
        assert rules.check_bind("::1") == "::1"
        with pytest.raises(ServerStartError, match="allow_remote=True"):
            rules.check_bind("0.0.0.0")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert rules.check_bind("0.0.0.0", allow_remote=True) == "0.0.0.0"
        assert "other machines" in str(caught[0].message)
        with pytest.raises(ServerStartError, match="must be a str"):
            rules.check_bind(8080)

    @pytest.mark.parametrize("port", [-1, 65536, "80", 1.5, True])
    def test_check_port(self, port: object) -> None:
        with pytest.raises(ServerStartError, match="port must be"):
            rules.check_port(port)

    def test_bind_error(self) -> None:
        error = rules.bind_error("127.0.0.1", 8080, OSError(errno.EADDRINUSE, "in use"))
        assert str(error).startswith("port 8080 is already in use")
        assert "port=0" in str(error)

    @pytest.mark.parametrize(
        ("host", "expected"),
        [
            ("127.0.0.1", "ws://127.0.0.1:8080/chat"),
            ("0.0.0.0", "ws://127.0.0.1:8080/chat"),
            ("::", "ws://[::1]:8080/chat"),
            ("::1", "ws://[::1]:8080/chat"),
        ],
    )
    def test_ws_url(self, host: str, expected: str) -> None:
        assert rules.ws_url(host, 8080, "/chat") == expected

    def test_ws_url_with_token_and_name(self) -> None:
        url = rules.ws_url("127.0.0.1", 8080, "/chat", token="abc", name="Ada L")
        assert url == "ws://127.0.0.1:8080/chat?wslab_token=abc&name=Ada+L"

    def test_page_url_on_a_laptop_and_under_jupyterhub(self) -> None:
        assert rules.page_url("127.0.0.1", 8080, "abc") == "http://127.0.0.1:8080/?wslab_token=abc"
        prefix = rules.hub_prefix({"JUPYTERHUB_SERVICE_PREFIX": "/user/stu1/"})
        assert prefix == "/user/stu1/"
        assert (
            rules.page_url("127.0.0.1", 8080, "abc", prefix)
            == "/user/stu1/proxy/8080/?wslab_token=abc"
        )
        assert rules.hub_prefix({}) is None

    def test_redact(self) -> None:
        text = f"GET /chat?name=a&wslab_token={TOKEN} HTTP/1.1"
        assert TOKEN not in rules.redact(text)
        assert "name=a" in rules.redact(text)
        assert rules.redact(f"secret {TOKEN}", TOKEN) == f"secret {rules.REDACTED}"


class TestLimitsAndPolicy:
    @pytest.mark.parametrize(
        "option",
        [
            {"max_size": 0},
            {"max_clients": -1},
            {"ping_interval": "20"},
            {"max_write_buffer": True},
        ],
    )
    def test_bad_limits_are_one_line_errors(self, option: dict[str, Any]) -> None:
        with pytest.raises(ServerStartError, match="must be a positive number"):
            Limits(**option)

    def test_none_turns_pings_off(self) -> None:
        assert Limits(ping_interval=None, ping_timeout=None).ping_interval is None

    def test_the_defaults_are_the_cores(self) -> None:
        """A server and a bare sans-I/O Connection stop a message at the same
        limits (RFC 6455 section 10.4): one source for both."""
        connection = Connection(Side.SERVER)
        assert Limits().max_fragments == connection.assembler.max_fragments
        assert Limits().max_size == connection.assembler.max_size

    def test_limits_one_by_one(self) -> None:
        class Server:
            def __init__(self, host: str = "", *, allow_remote: bool = False, **limits: Any):
                pass

        limits = rules.limits_from(Limits(max_size=10), {"max_clients": 2}, server=Server)
        assert (limits.max_size, limits.max_clients) == (10, 2)
        assert rules.limits_from(None, {}, server=Server) == Limits()
        with pytest.raises(ServerStartError) as info:
            rules.limits_from(None, {"alow_remote": True}, server=Server)
        message = str(info.value)
        assert message.startswith("unknown option 'alow_remote' (did you mean 'allow_remote'?)")
        assert "Server takes host, allow_remote, and the limits one by one: " in message
        with pytest.raises(ServerStartError, match="did you mean 'max_size'"):
            rules.limits_from(None, {"max_sise": 1}, server=Server)
        with pytest.raises(ServerStartError, match=r"must be a wslab\.rules\.Limits, got 3"):
            rules.limits_from(3, {}, server=Server)  # type: ignore[arg-type]
        with pytest.raises(ServerStartError, match="max_fragments must be a positive number"):
            rules.limits_from(None, {"max_fragments": 0}, server=Server)

    @pytest.mark.parametrize("path", ["chat", "/", "/index.html", 3])
    def test_bad_paths(self, path: Any) -> None:
        with pytest.raises(ServerStartError, match="path"):
            Policy(path=path)

    def test_empty_token(self) -> None:
        with pytest.raises(ServerStartError, match="token"):
            Policy(token="")


class TestReadRequest:
    """RFC 9112 2.2 and 5: a head ends with CRLF CRLF; what cannot be parsed is 400."""

    def test_incomplete_then_whole(self) -> None:
        data = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nrest"
        assert rules.read_request(data[:10]) is None
        parsed = rules.read_request(data)
        assert isinstance(parsed, tuple)
        request, rest = parsed
        assert (request.method, request.path, rest) == ("GET", "/", b"rest")

    @pytest.mark.parametrize(
        ("data", "status"),
        [
            (b"GET /\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: a\x00b\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nX: " + b"a" * 9000 + b"\r\n\r\n", 431),
            (b"GET / HTTP/1.1\r\nX: " + b"a" * 9000, 431),
        ],
    )
    def test_bad_heads(self, data: bytes, status: int) -> None:
        answer = rules.read_request(data)
        assert isinstance(answer, Reply)
        assert answer.status == status
        assert "\n" not in answer.reason


class TestSameUser:
    """Issue #10: another user account of a shared host (Linux tells who it is)."""

    def test_a_public_server_refuses_another_user(self) -> None:
        policy = Policy(port=PORT, owner_uid=1000)
        assert isinstance(route(request("/chat"), policy, peer_uid=1000), Accept)
        answer = reply(route(request("/chat"), policy, peer_uid=1001))
        assert answer.status == 403 and "another user of this machine" in answer.reason
        assert reply(route(request("/", websocket=False), policy, peer_uid=1001)).status == 403

    def test_the_token_lets_anyone_in(self) -> None:
        policy = Policy(token=TOKEN, port=PORT, owner_uid=1000)
        assert isinstance(route(request(), policy, peer_uid=1001), Accept)  # shared on purpose
        answer = reply(route(request("/chat"), policy, peer_uid=1001))
        assert "another user of this machine" in answer.reason

    def test_unknown_means_no_rule(self) -> None:
        policy = Policy(port=PORT, owner_uid=1000)
        assert isinstance(route(request("/chat"), policy, peer_uid=None), Accept)


def test_choose_token() -> None:
    assert len(rules.choose_token(True) or "") == 22
    assert rules.choose_token(None) is None and rules.choose_token(False) is None
    assert rules.choose_token("mine") == "mine"
    for bad in ("", " ", 42):
        with pytest.raises(ServerStartError, match="token must be"):
            rules.choose_token(bad)  # type: ignore[arg-type]
