"""The your-turn steps of lessons 09 to 11: staying connected, deploying and scaling, checking
a server.
"""

from __future__ import annotations

from .judging import Namespace, Problem, Step, StudentCodeRaised, call, cases, rfc, short


def _judge_full_jitter(ns: Namespace) -> Problem | None:
    import random

    function = ns["full_jitter"]
    rng = random.Random(5)
    for failures in range(1, 13):
        bound = min(5.0, 0.5 * 2 ** (failures - 1))
        delays = [call(function, failures, 0.5, 5.0, rng) for _ in range(200)]
        if any(not isinstance(d, int | float) for d in delays):
            return Problem(
                f"`full_jitter({failures}, 0.5, 5.0, rng)` returned {short(delays[0])}",
                "return a number of seconds",
            )
        if max(delays) > bound + 1e-9 or min(delays) < 0:
            worst = max(delays) if max(delays) > bound else min(delays)
            return Problem(
                f"`full_jitter({failures}, 0.5, 5.0, rng)` returned {worst:.3f}, outside 0 to "
                f"{bound:g}",
                "the bound starts at `base` after one failure, doubles with each failure, "
                "and never goes above `cap`",
            )
        if max(delays) - min(delays) < 0.5 * bound:
            return Problem(
                f"after {failures} failure(s) the delays range only from {min(delays):.3f} to "
                f"{max(delays):.3f}",
                "full jitter spreads the delay over the whole range, from 0 up to the bound: "
                "use `rng.uniform`",
            )
    return None


def _judge_new_events(ns: Namespace) -> Problem | None:
    def ids(*numbers: int) -> list[dict[str, int]]:
        return [{"id": n} for n in numbers]

    hint_overlap = "skip every event whose id is not above the last id shown"
    hint_repeat = "the same id can come twice (history, then live): remember the last one you kept"
    hint_none = "`last_id` is None before the first event: then every event is new"
    table = [
        ((ids(4, 5), 3), ids(4, 5), hint_overlap),
        ((ids(2, 3, 4), 3), ids(4), hint_overlap),
        ((ids(4, 4, 5, 5, 6), 3), ids(4, 5, 6), hint_repeat),
        ((ids(1, 2), None), ids(1, 2), hint_none),
        (([], 7), [], "no events: nothing new"),
    ]
    return cases("new_events", table)(ns)


def _judge_location(ns: Namespace) -> Problem | None:
    block = ns["location_block"]
    if not isinstance(block, str):
        return Problem(f"`location_block` is {short(block)}", "write the block as a str")
    lines = [" ".join(line.split()) for line in block.splitlines()]
    if "proxy_http_version 1.1;" not in lines:
        return Problem(
            "nginx still speaks HTTP/1.0 to the server",
            "an Upgrade needs HTTP/1.1 between nginx and the server (RFC 6455 section 4.1)",
        )
    if "proxy_set_header Upgrade $http_upgrade;" not in lines:
        return Problem(
            "the client's `Upgrade` header does not reach the server",
            "Upgrade is hop-by-hop (RFC 9110 section 7.6.1): set it again from `$http_upgrade`",
        )
    connection = [line for line in lines if line.startswith("proxy_set_header Connection ")]
    if not connection or not any(
        value in connection[0] for value in ('"upgrade"', "upgrade;", "$connection_upgrade")
    ):
        return Problem(
            "the server does not see `Connection: Upgrade`",
            "Connection is hop-by-hop too: set it to upgrade (or `$connection_upgrade`)",
        )
    return None


def _judge_token(ns: Namespace) -> Problem | None:
    import hmac

    secret = b"lesson-10-secret"

    def make(name: str, expires: int, key: bytes = secret) -> str:
        body = f"{name}.{expires}"
        signature = hmac.new(key, body.encode(), "sha256").hexdigest()
        return f"{body}.{signature}"

    table = [
        ((make("ada", 2000), secret, 1000), True, "a fresh, correctly signed token is valid"),
        ((make("ada", 2000), secret, 2500), False, "compare `now` with the expiry in the token"),
        (
            (make("ada", 2000, b"another key"), secret, 1000),
            False,
            "recompute the signature with `secret` and compare it with the one in the token",
        ),
        (
            (make("ada", 2000).replace("ada.", "eve.", 1), secret, 1000),
            False,
            "sign the name and the expiry both: a changed name must fail",
        ),
        (("not a token", secret, 1000), False, "a token without three parts is not valid"),
    ]
    return cases("token_valid", table)(ns)


def _judge_respond(ns: Namespace) -> Problem | None:
    from ..closing import serialize_close
    from ..errors import ProtocolError
    from ..frames import Frame, Opcode

    respond = ns["respond"]
    ping = Frame(Opcode.PING, b"are you there?")
    got = call(respond, ping)
    if got != [Frame(Opcode.PONG, b"are you there?")]:
        return Problem(
            f"`respond(PING 'are you there?')` returned {short(got)}",
            "a Pong carries the Ping's application data back, unchanged (section 5.5.3)",
        )
    for code in (1000, 1001, 3000):
        close = Frame(Opcode.CLOSE, serialize_close(code, "bye"))
        got = call(respond, close)
        if got != [Frame(Opcode.CLOSE, serialize_close(code, ""))]:
            return Problem(
                f"`respond(CLOSE {code})` returned {short(got)}",
                "answer a Close with a Close that echoes its status code (section 5.5.1)",
            )
    got = call(respond, Frame(Opcode.CLOSE, b""))
    if got != [Frame(Opcode.CLOSE, b"")]:
        return Problem(
            f"`respond(CLOSE without a code)` returned {short(got)}",
            "no code received: answer with an empty Close (section 7.1.5 calls it 1005)",
        )
    invalid = Frame(Opcode.CLOSE, (1005).to_bytes(2, "big"))  # never on the wire (7.4.1)
    try:
        got = call(respond, invalid)
    except StudentCodeRaised as raised:
        if not isinstance(raised.__cause__, ProtocolError):
            raise
        got = [Frame(Opcode.CLOSE, serialize_close(1002, ""))]  # the server fails with 1002
    if got != [Frame(Opcode.CLOSE, serialize_close(1002, ""))]:
        return Problem(
            f"`respond(CLOSE 1005)` returned {short(got)}: 1005 may not be sent",
            "read the code with `parse_close`: it raises ProtocolError for a code that may "
            "not be sent, and the server then fails the connection with 1002 (section 7.4)",
        )
    text = Frame(Opcode.TEXT, b"hello")
    if call(respond, text) != [text]:
        return Problem("`respond(TEXT 'hello')` does not echo it", "keep the echo part as it was")
    return None


def _judge_text_ok(ns: Namespace) -> Problem | None:
    hint = "try to decode the bytes as UTF-8; a UnicodeDecodeError means invalid"
    table = [
        ((b"Hello",), True, hint),
        (("κόσμε".encode(),), True, "multi-byte characters are valid UTF-8 too"),
        ((b"",), True, "an empty text message is valid"),
        ((b"\xce\xba\xed\xa0\x80",), False, "a UTF-16 surrogate (ed a0 80) is not UTF-8: " + hint),
        ((b"\xc0\xaf",), False, "an overlong '/' (c0 af) is not UTF-8: " + hint),
        ((b"hello\xe2\x82",), False, "a character cut short at the end is not UTF-8: " + hint),
        ((b"\xff",), False, "0xff never appears in UTF-8: " + hint),
    ]
    return cases("text_ok", table)(ns)


STEPS: tuple[Step, ...] = (
    Step(
        name="09-backoff",
        task="return the full-jitter delay before the next attempt, after `failures` failed ones",
        where=rfc("7.2.3"),
        names=("full_jitter",),
        solution="""
        def full_jitter(failures, base, cap, rng):
            bound = min(cap, base * 2 ** (failures - 1))
            return rng.uniform(0, bound)
        """,
        judge=_judge_full_jitter,
        why=(
            "random from the first retry on, and growing: a crowd of clients comes back spread out"
        ),
    ),
    Step(
        name="09-dedup",
        task="return the events that are new after `last_id`, in order, each once",
        where=rfc("7.2.3"),
        names=("new_events",),
        solution="""
        def new_events(events, last_id):
            fresh = []
            for event in events:
                if last_id is None or event["id"] > last_id:
                    fresh.append(event)
                    last_id = event["id"]
            return fresh
        """,
        judge=_judge_new_events,
        why=(
            "ids make a resumed stream exact: history and live events may overlap, "
            "the client decides"
        ),
    ),
    Step(
        name="10-upgrade",
        task="complete nginx's `location` block so that the WebSocket handshake passes the proxy",
        where=rfc("4.1"),
        names=("location_block",),
        solution='''
        location_block = """
        location /chat {
            proxy_pass http://websocket_servers;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
        }
        """
        ''',
        judge=_judge_location,
        why="Upgrade and Connection are hop-by-hop: each hop must pass them on deliberately",
    ),
    Step(
        name="10-token",
        task=(
            "return whether `token` (`name.expiry.signature`) is signed with "
            "`secret` and unexpired"
        ),
        where=rfc("10.5"),
        names=("token_valid",),
        solution="""
        import hmac

        def token_valid(token, secret, now):
            parts = token.split(".")
            if len(parts) != 3:
                return False
            name, expires, signature = parts
            expected = hmac.new(secret, f"{name}.{expires}".encode(), "sha256").hexdigest()
            return hmac.compare_digest(signature, expected) and now < int(expires)
        """,
        judge=_judge_token,
        why=(
            "checked at the handshake and again at its expiry: a long-lived "
            "connection outlives tokens"
        ),
    ),
    Step(
        name="11-respond",
        task="fix `respond` so that pings get their payload back and closes get their code back",
        where=rfc("5.5"),
        names=("respond",),
        solution="""
        def respond(frame):
            if frame.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
                return [frame]
            if frame.opcode is Opcode.PING:
                return [Frame(Opcode.PONG, frame.payload)]
            if frame.opcode is Opcode.CLOSE:
                close = parse_close(frame.payload)
                payload = b"" if close is None else serialize_close(close.code, "")
                return [Frame(Opcode.CLOSE, payload)]  # parse_close raised for a bad code
            return []
        """,
        judge=_judge_respond,
        why="control frames answer in kind: the Pong and the Close echo what came in",
    ),
    Step(
        name="11-utf8",
        task="return whether the payload of a text frame is valid UTF-8",
        where=rfc("8.1"),
        names=("text_ok",),
        solution="""
        def text_ok(payload):
            try:
                payload.decode("utf-8")
            except UnicodeDecodeError:
                return False
            return True
        """,
        judge=_judge_text_ok,
        why="invalid text fails with 1007; across fragments it takes an incremental decoder",
    ),
)
