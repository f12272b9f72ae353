"""The your-turn steps of lessons 05 to 07: a chat, extensions and subprotocols, errors and
security.
"""

from __future__ import annotations

from .judging import WHATWG_WS, Namespace, Problem, Step, call, cases, fill_in, rfc, short


def _judge_shout(ns: Namespace) -> Problem | None:
    import inspect

    from ..client import Client
    from ..errors import WSLabError
    from ..server import serve

    shout = ns["shout"]
    if not inspect.iscoroutinefunction(shout):
        return Problem(
            "`shout` is not an `async def` function",
            "a wslab handler is `async def shout(ws):`, with `await` on every send and receive",
        )
    with serve(shout, port=0) as server:
        try:
            with Client(server) as client:
                for message in ("hello", "Grüße"):
                    client.send(message)
                    got = client.recv(timeout=3)
                    if got != message.upper():
                        return Problem(
                            f"sent {message!r}, got back {short(got)}",
                            "answer each message with `message.upper()`",
                        )
        except TimeoutError:
            return Problem(
                "no answer within 3 seconds",
                "loop over messages with `async for message in ws:` and "
                "`await ws.send(...)` each answer",
            )
        except WSLabError as error:
            return Problem(
                f"the connection ended: {error}", "look for an exception in your handler"
            )
    return None


def _judge_js(ns: Namespace) -> Problem | None:
    script = ns["MY_CLIENT"]
    if not isinstance(script, str):
        return Problem(f"`MY_CLIENT` is {short(script)}", "keep your JavaScript in a string")
    code = "\n".join(line.split("//")[0] for line in script.splitlines())
    if "new WebSocket(" not in code:
        return Problem(
            "your script opens no WebSocket",
            "one `new WebSocket(url)` connects; the page gives you the URL in `WS_URL`",
            blank=not code.strip(),
        )
    if ".open(" in code:
        return Problem(
            "your script calls `.open(...)`",
            "the WebSocket API has no open(): the constructor connects by itself",
        )
    if "onmessage" not in code and "message" not in code.split("addEventListener", 1)[-1]:
        return Problem(
            "nothing listens for messages",
            "show each message when the `message` event fires: its text is `event.data`",
        )
    if ".send(" not in code:
        return Problem("your script sends nothing", "call `send(text)` on your WebSocket")
    return None


def _judge_subprotocol(ns: Namespace) -> Problem | None:
    function = ns["select_subprotocol"]
    table: list[tuple[list[str], list[str], set[str | None], str]] = [
        (
            ["chat.v1"],
            ["chat.v2", "chat.v1"],
            {"chat.v1"},
            "the value MUST be one of those the client sent (section 4.2.2), and one the "
            "server supports",
        ),
        (
            ["chat.v1", "chat.v2"],
            ["chat.v2", "chat.v1"],
            {"chat.v1", "chat.v2"},
            "either common value will do",
        ),
        (
            ["mqtt"],
            ["chat.v1"],
            {None},
            "nothing in common: select none (return None); the server then MUST NOT "
            "send the header at all (section 4.2.2)",
        ),
        ([], ["chat.v1"], {None}, "the client offered nothing: select none"),
    ]
    for offered, supported, right, hint in table:
        got = call(function, offered, supported)
        if not isinstance(got, str | None):
            return Problem(
                f"`select_subprotocol({offered!r}, {supported!r})` returned {short(got)}",
                "a server selects one subprotocol: return one name (a str), or None",
            )
        if got not in right:
            return Problem(
                f"`select_subprotocol({offered!r}, {supported!r})` returned {short(got)}", hint
            )
    return None


def _judge_codes(ns: Namespace) -> Problem | None:
    expected = {
        "unmasked frame from a client": (
            1002,
            "a frame that breaks the framing rules of section 5 is a protocol error",
        ),
        "message bigger than the limit": (
            1009,
            "there is a code for a message too big to process",
        ),
        "invalid UTF-8 in a text message": (
            1007,
            "there is a code for data inconsistent with the message type (section 8.1)",
        ),
        "a token the server rejects": (
            1008,
            "a valid frame the server's rules refuse: a policy violation",
        ),
    }
    return fill_in(ns, "codes", expected, lambda got, code: got == code)


def _judge_origin(ns: Namespace) -> Problem | None:
    table = [
        (
            (None, "127.0.0.1:8888"),
            True,
            "no Origin: not a browser, so the Origin check cannot protect anyone (section 10.2)",
        ),
        (
            ("http://127.0.0.1:8888", "127.0.0.1:8888"),
            True,
            "the page came from the same host and port as the WebSocket: accept it",
        ),
        (("https://evil.example", "127.0.0.1:8888"), False, "another site's page: refuse it"),
        (
            ("http://127.0.0.1:9999", "127.0.0.1:8888"),
            False,
            "another port is another origin: compare host and port",
        ),
        (
            ("http://127.0.0.1:8888.evil.example", "127.0.0.1:8888"),
            False,
            "compare the whole host and port, not a prefix: parse the Origin with "
            "urllib.parse.urlsplit",
        ),
        (
            ("null", "127.0.0.1:8888"),
            False,
            "`null` is the Origin of sandboxed pages and files: not your page",
        ),
    ]
    return cases("origin_ok", table)(ns)


STEPS: tuple[Step, ...] = (
    Step(
        name="05-shout",
        task="write a handler that answers every message in upper case",
        where=rfc("6.1"),
        names=("shout",),
        solution="""
        async def shout(ws):
            async for message in ws:
                await ws.send(message.upper())
        """,
        judge=_judge_shout,
        why="a server reads messages and sends messages, in any order it likes (section 6)",
    ),
    Step(
        name="05-close-rule",
        task="return whether a browser's `ws.close(code)` accepts `code`",
        where=("the WebSocket standard, close()", WHATWG_WS + "#dom-websocket-close"),
        names=("browser_allows",),
        solution="""
        def browser_allows(code):
            return code == 1000 or 3000 <= code <= 4999
        """,
        judge=cases(
            "browser_allows",
            [
                ((1000,), True, "1000 (normal closure) is allowed"),
                (
                    (1001,),
                    False,
                    "a page may send only 1000 and the application ranges; the "
                    "browser sends 1001 itself when the page goes away",
                ),
                ((1005,), False, "1005 is never sent on the wire (RFC 6455 section 7.4.1)"),
                ((2999,), False, "below the application ranges"),
                ((3000,), True, "3000-3999 (registered with IANA) are allowed"),
                ((4999,), True, "4000-4999 (private use) are allowed"),
                ((5000,), False, "there are no codes above 4999"),
            ],
        ),
        why="anything else throws an InvalidAccessError in the browser, before a byte is sent",
    ),
    Step(
        name="05-js-client",
        task=(
            "write the JavaScript of your own chat page: connect, show messages, "
            "send the box's text"
        ),
        where=("the WebSocket standard", WHATWG_WS + "#the-websocket-interface"),
        names=("MY_CLIENT",),
        solution="""
        MY_CLIENT = '''
        const ws = new WebSocket(WS_URL);
        ws.addEventListener("open", () => show("* connected"));
        ws.addEventListener("message", (event) => show(event.data));
        ws.addEventListener("close", (event) => show(`* closed: ${event.code}`));
        form.addEventListener("submit", (event) => {
          event.preventDefault();          // stay on the page
          ws.send(box.value);
          box.value = "";
        });
        '''
        """,
        judge=_judge_js,
        why=(
            "open your page (the link below) and chat; the page's events map to those of "
            "section 5 and 7 of RFC 6455"
        ),
    ),
    Step(
        name="06-subprotocol",
        task="return the subprotocol a server selects, or None",
        where=rfc("4.2.2"),
        names=("select_subprotocol",),
        solution="""
        def select_subprotocol(offered, supported):
            for name in supported:  # the server's preference first
                if name in offered:
                    return name
            return None
        """,
        judge=_judge_subprotocol,
        why="a server selects one of the client's values or none, and then sends no header",
    ),
    Step(
        name="06-extensions",
        task="return the names of the extensions offered in a `Sec-WebSocket-Extensions` value",
        where=rfc("9.1"),
        names=("extension_names",),
        solution="""
        def extension_names(header):
            return [offer.split(";")[0].strip() for offer in header.split(",")]
        """,
        judge=cases(
            "extension_names",
            [
                (("permessage-deflate",), ["permessage-deflate"], "one name, no parameters"),
                (
                    ("permessage-deflate; client_max_window_bits",),
                    ["permessage-deflate"],
                    "parameters follow the name after `;`: they are not names (section 9.1)",
                ),
                (
                    ("permessage-deflate; server_no_context_takeover, permessage-deflate",),
                    ["permessage-deflate", "permessage-deflate"],
                    "offers are separated by commas, in order of preference, and the same "
                    "extension may be offered twice (RFC 7692 section 5)",
                ),
                (("  x-foo ;a=1 ,  y-bar",), ["x-foo", "y-bar"], "strip the spaces around names"),
            ],
        ),
        why="offers in order, each a name and parameters: the server accepts some, adds none",
    ),
    Step(
        name="07-origin",
        task="return whether a server accepts a handshake with this `Origin` for this `Host`",
        where=rfc("10.2"),
        names=("origin_ok",),
        solution="""
        from urllib.parse import urlsplit

        def origin_ok(origin, host):
            if origin is None:  # not a browser
                return True
            return urlsplit(origin).netloc == host
        """,
        judge=_judge_origin,
        why="a same-origin rule for browsers; scripts send any Origin, so authenticate too",
    ),
    Step(
        name="07-close-codes",
        task="fill in the close code a server sends in each situation",
        where=rfc("7.4.1"),
        names=("codes",),
        solution="""
        codes = {
            "unmasked frame from a client": 1002,
            "message bigger than the limit": 1009,
            "invalid UTF-8 in a text message": 1007,
            "a token the server rejects": 1008,
        }
        """,
        judge=_judge_codes,
        why="the code says why; a peer that fails the connection SHOULD send it (section 7.1.7)",
    ),
)
