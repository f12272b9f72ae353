"""The your-turn steps of lessons 00 (start here) and 01 (why WebSockets)."""

from __future__ import annotations

from .judging import HINT_LENGTHS, HINT_MASK, Namespace, Problem, Step, cases, rfc, short


def _judge_echo(ns: Namespace) -> Problem | None:
    reply = ns["reply"]
    if reply == "You sent: Hello, RFC 6455":
        return None
    if isinstance(reply, str) and reply.startswith("You sent:"):
        return Problem(
            f"the server answered {reply!r}",
            "send exactly `Hello, RFC 6455`: the echo server puts `You sent: ` in front",
        )
    return Problem(
        f"`reply` is {short(reply)}",
        "keep what `client.recv(timeout=5)` returns: the server's answer, a str",
    )


def _judge_push(ns: Namespace) -> Problem | None:
    results = ns.get("results")
    if not isinstance(results, dict) or "WebSocket" not in results:
        return Problem("`results` is missing", "run the measurement cells above first", True)
    polling = 3600 * results["keep-alive polling"]["bytes per update"]
    pushed = 60 * results["WebSocket"]["to client"]
    for name, expected, hint in (
        (
            "polling_bytes",
            polling,
            "3600 polls an hour, each costing the bytes per update "
            "of keep-alive polling, both ways (its row of the table)",
        ),
        (
            "websocket_bytes",
            pushed,
            "60 messages an hour, server to client only: the "
            "WebSocket's `to client` bytes per update; the client sends nothing",
        ),
    ):
        got = ns[name]
        if not isinstance(got, int | float) or abs(got - expected) > 0.01 * expected:
            return Problem(f"`{name}` is {short(got)}", hint)
    return None


STEPS: tuple[Step, ...] = (
    Step(
        name="00-echo",
        task=(
            "send `Hello, RFC 6455` to `echo` with `wslab.Client`, and keep the answer in `reply`"
        ),
        where=rfc("1.2"),
        names=("reply",),
        solution="""
        with wslab.Client(echo) as client:
            client.send("Hello, RFC 6455")
            reply = client.recv(timeout=5)
        """,
        judge=_judge_echo,
        why="one handshake, then a message each way on the same connection (section 1.2)",
    ),
    Step(
        name="01-header-bytes",
        task="return the number of header bytes of one frame with a payload of `size` bytes",
        where=rfc("5.2"),
        names=("ws_overhead",),
        solution="""
        def ws_overhead(size, from_client):
            if size <= 125:
                header = 2
            elif size <= 65535:
                header = 2 + 2
            else:
                header = 2 + 8
            return header + (4 if from_client else 0)
        """,
        judge=cases(
            "ws_overhead",
            [
                ((32, False), 2, HINT_LENGTHS),
                ((32, True), 6, HINT_MASK),
                ((125, False), 2, HINT_LENGTHS),
                ((126, False), 4, HINT_LENGTHS),
                ((65535, True), 8, HINT_LENGTHS + "; and " + HINT_MASK),
                ((65536, False), 10, HINT_LENGTHS),
                ((2**20, True), 14, HINT_LENGTHS + "; and " + HINT_MASK),
            ],
        ),
        why="2 to 14 bytes per frame: a fragmented message pays them once per fragment",
    ),
    Step(
        name="01-push",
        task=(
            "bytes per hour: `polling_bytes` (a poll every second) and `websocket_bytes` "
            "(60 pushes)"
        ),
        where=rfc("1.1"),
        names=("polling_bytes", "websocket_bytes"),
        solution="""
        polling_bytes = 3600 * results["keep-alive polling"]["bytes per update"]
        websocket_bytes = 60 * results["WebSocket"]["to client"]
        """,
        judge=_judge_push,
        why="polling pays for every question, news or not; a push pays only for news",
    ),
)
