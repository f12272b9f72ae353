"""The your-turn steps of lessons 02 to 04: the handshake, frames, closing."""

from __future__ import annotations

import base64
import hashlib

from .judging import HINT_LENGTHS, Namespace, Problem, Step, call, cases, rfc, short


def _accept_variants(key: str) -> dict[str, str]:
    """Usual wrong accept values, each with what went wrong."""
    guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
    sha1 = hashlib.sha1
    return {
        base64.b64encode(sha1(base64.b64decode(key) + guid.encode()).digest()).decode(): (
            "the key is used as the text it is, not base64-decoded first"
        ),
        base64.b64encode(hashlib.sha256((key + guid).encode()).digest()).decode(): (
            "the hash is SHA-1, not SHA-256"
        ),
        sha1((key + guid).encode()).hexdigest(): (
            "base64-encode the 20 bytes of the digest (`.digest()`), not its hex text"
        ),
        base64.b64encode(sha1(key.encode()).digest()).decode(): (
            "append the GUID to the key before hashing"
        ),
    }


def _judge_accept(ns: Namespace) -> Problem | None:
    key, accept = ns.get("KEY2", "x3JJHMbDL1EzLkh9GBhXDw=="), ns["accept"]
    if isinstance(accept, bytes):
        return Problem("`accept` is bytes", "a header value is text: `.decode('ascii')`")
    if not isinstance(accept, str):
        return Problem(
            f"`accept` is {short(accept)}", "the header's value is one str: base64 of the digest"
        )
    from ..handshake import accept_key

    try:
        right = accept_key(key)
    except (TypeError, ValueError):
        return Problem(
            f"`KEY2` is {short(key)}, not a key a client sends (base64 of 16 bytes)",
            'keep the cell\'s `KEY2 = "x3JJHMbDL1EzLkh9GBhXDw=="` as it is',
        )
    if accept == right:
        return None
    why = _accept_variants(key).get(accept, "follow the three steps above, one at a time")
    return Problem(f"`accept` is {short(accept)}", why)


def _judge_request(ns: Namespace) -> Problem | None:
    from ..errors import HandshakeError
    from ..handshake import Request, check_request

    key = "x3JJHMbDL1EzLkh9GBhXDw=="
    head = call(ns["handshake_request"], "example.com", "/chat", key)
    if head is None:
        return Problem("`handshake_request(...)` returned None", "return the bytes", True)
    if isinstance(head, str):
        return Problem("it returned a str", "return bytes: `.encode('ascii')` at the end")
    if not isinstance(head, bytes) or not head.endswith(b"\r\n\r\n"):
        return Problem(
            f"it returned {short(head)}",
            "every line ends with \\r\\n, and an empty line (one more \\r\\n) ends the head",
        )
    try:
        request = Request.parse(head)
        got_key = check_request(request)
    except HandshakeError as error:
        return Problem(f"a server refuses it: {error}", "section 4.1 lists every header")
    if request.path != "/chat" or request.headers.get("Host") != "example.com":
        return Problem(
            f"path {request.path!r}, Host {request.headers.get('Host')!r}",
            "use the arguments: the path on the request line, the host in `Host`",
        )
    if got_key != key:
        return Problem(f"the key sent is {got_key!r}", "send the `key` argument as it is")
    return None


def _xor(data: bytes, key: bytes) -> bytes:
    return bytes(byte ^ key[i % 4] for i, byte in enumerate(data))


def _judge_predict(ns: Namespace) -> Problem | None:
    table = (
        (
            "reply_code",
            1001,
            "section 5.5.1: the endpoint that answers a close usually "
            "echoes the status code it received",
        ),
        (
            "empty_code",
            1005,
            "an empty close frame has no code, so the receiver reports a "
            "code that is never sent (section 7.1.5)",
        ),
        (
            "cut_code",
            1006,
            "no close frame at all: a code that is never sent either, "
            "different from the empty close (section 7.1.5)",
        ),
    )
    for name, code, hint in table:
        if ns[name] != code:
            return Problem(f"`{name}` is {short(ns[name])}", hint)
    return None


STEPS: tuple[Step, ...] = (
    Step(
        name="02-accept",
        task="compute `Sec-WebSocket-Accept` for `KEY2` with `hashlib` and `base64`",
        where=rfc("4.2.2"),
        names=("accept",),
        solution="""
        KEY2 = "x3JJHMbDL1EzLkh9GBhXDw=="
        digest = hashlib.sha1((KEY2 + GUID).encode("ascii")).digest()
        accept = base64.b64encode(digest).decode("ascii")
        """,
        judge=_judge_accept,
        why="the server proves it read this key and speaks WebSocket; anyone could compute it",
    ),
    Step(
        name="02-request",
        task="return the bytes of a client's opening handshake for `host`, `path` and `key`",
        where=rfc("4.1"),
        names=("handshake_request",),
        solution="""
        def handshake_request(host, path, key):
            lines = [
                f"GET {path} HTTP/1.1",
                f"Host: {host}",
                "Upgrade: websocket",
                "Connection: Upgrade",
                f"Sec-WebSocket-Key: {key}",
                "Sec-WebSocket-Version: 13",
            ]
            return ("\\r\\n".join(lines) + "\\r\\n\\r\\n").encode("ascii")
        """,
        judge=_judge_request,
        why=(
            "a GET over HTTP/1.1 with Host, Upgrade, Connection, the key and version 13 "
            "(section 4.1)"
        ),
    ),
    Step(
        name="03-header",
        task="return the header of an unmasked, unfragmented frame: FIN, opcode, payload length",
        where=rfc("5.2"),
        names=("frame_header",),
        solution="""
        def frame_header(opcode, length):
            first = 0b1000_0000 | opcode  # FIN, no RSV bits, the opcode
            if length <= 125:
                return bytes([first, length])
            if length <= 65535:
                return bytes([first, 126]) + length.to_bytes(2, "big")
            return bytes([first, 127]) + length.to_bytes(8, "big")
        """,
        judge=cases(
            "frame_header",
            [
                (
                    (1, 5),
                    bytes.fromhex("81 05"),
                    "the first byte is FIN (0x80) | opcode; the second the length, MASK off",
                ),
                ((2, 0), bytes.fromhex("82 00"), "FIN (0x80) | opcode, then the length"),
                ((2, 125), bytes.fromhex("82 7d"), HINT_LENGTHS),
                ((2, 126), bytes.fromhex("82 7e 00 7e"), HINT_LENGTHS),
                (
                    (2, 256),
                    bytes.fromhex("82 7e 01 00"),
                    "the 16-bit length is big-endian (network "
                    "byte order, section 5.2): the RFC's example is 82 7E 01 00",
                ),
                (
                    (2, 65536),
                    bytes.fromhex("82 7f 00 00 00 00 00 01 00 00"),
                    "lengths over 65535 use 127 and 8 bytes, big-endian (section 5.2)",
                ),
                ((9, 4), bytes.fromhex("89 04"), "a ping's opcode is 9; the same rules apply"),
            ],
        ),
        why="the shortest length form, in network byte order: the RFC's examples of section 5.7",
    ),
    Step(
        name="03-unmask",
        task="return the payload unmasked: byte i XOR key[i % 4]",
        where=rfc("5.3"),
        names=("unmask",),
        solution="""
        def unmask(payload, key):
            return bytes(byte ^ key[i % 4] for i, byte in enumerate(payload))
        """,
        judge=cases(
            "unmask",
            [
                (
                    (bytes.fromhex("7f 9f 4d 51 58"), bytes.fromhex("37 fa 21 3d")),
                    b"Hello",
                    "XOR each byte with key[i % 4] (section 5.3); the result is bytes",
                ),
                ((b"", bytes.fromhex("37 fa 21 3d")), b"", "an empty payload stays empty"),
                (
                    (_xor(b"Tiny test", b"\x0b\xc3\x20\xbd"), b"\x0b\xc3\x20\xbd"),
                    b"Tiny test",
                    "the key repeats every 4 bytes: index it with i % 4",
                ),
            ],
        ),
        why="masking is a XOR with a key sent in the clear: not encryption, a defence for proxies "
        "(section 10.3)",
    ),
    Step(
        name="04-close-payload",
        task="return a close frame's payload: the code, then the reason",
        where=rfc("5.5.1"),
        names=("close_payload",),
        solution="""
        def close_payload(code, reason=""):
            return code.to_bytes(2, "big") + reason.encode("utf-8")
        """,
        judge=cases(
            "close_payload",
            [
                (
                    (1000, ""),
                    bytes.fromhex("03 e8"),
                    "the code is a 2-byte unsigned integer in network byte order (big-endian)",
                ),
                (
                    (1001, "going away"),
                    bytes.fromhex("03 e9") + b"going away",
                    "the reason follows the code, with no separator",
                ),
                (
                    (4000, "café"),
                    bytes.fromhex("0f a0") + "café".encode(),
                    "the reason is UTF-8 encoded (section 5.5.1)",
                ),
            ],
        ),
        why=(
            "a 2-byte code then UTF-8, at most 125 bytes in all; the reason is not necessarily "
            "human readable and is not shown to end users"
        ),
    ),
    Step(
        name="04-predict",
        task="predict the three codes before you run the cells below",
        where=rfc("7.1.5"),
        names=("reply_code", "empty_code", "cut_code"),
        solution="""
        reply_code = 1001  # a close with 1001 is answered with 1001 (echoed, 5.5.1)
        empty_code = 1005  # an empty close frame: "no status received" (7.1.5)
        cut_code = 1006    # no close frame at all: "abnormal closure" (7.1.5)
        """,
        judge=_judge_predict,
        why="1005 and 1006 report what happened; neither is ever sent in a close frame (7.4.1)",
    ),
)
