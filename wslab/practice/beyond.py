"""The your-turn steps of lesson 08: Server-Sent Events, long polling, and choosing."""

from __future__ import annotations

from .judging import WHATWG_SSE, Namespace, Problem, Step, cases, fill_in, rfc


def _parse_sse_reference(text: str) -> list[dict[str, str]]:
    """The event stream interpretation of the WHATWG HTML standard, simplified."""
    events: list[dict[str, str]] = []
    data: list[str] = []
    event_type = last_id = ""
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")[:-1]:
        if not line:
            if data:
                events.append(
                    {"event": event_type or "message", "data": "\n".join(data), "id": last_id}
                )
            data, event_type = [], ""
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            data.append(value)
        elif name == "event":
            event_type = value
        elif name == "id" and "\0" not in value:
            last_id = value
    return events


_SSE_CASES = [
    ("data: hello\n\n", "one `data:` line and a blank line make one event"),
    (": a comment\ndata: hi\n\n", "a line that starts with `:` is a comment: skip it"),
    ("data: line 1\ndata: line 2\n\n", "several `data:` lines join with a newline"),
    ("event: price\ndata: 101.25\n\n", "`event:` sets the event's type (default `message`)"),
    ("id: 7\ndata: x\n\ndata: y\n\n", "`id:` sets the last event id, which later events keep"),
    ("data:no space\n\n", "one space after the colon is removed if there is one"),
    ("retry: 3000\ndata: z\n\n", "`retry:` is a reconnection time, not data"),
    ("data: complete\n\ndata: incomplete\n", "an event without its blank line is not dispatched"),
]


def _judge_sse(ns: Namespace) -> Problem | None:
    table = [((text,), _parse_sse_reference(text), hint) for text, hint in _SSE_CASES]
    return cases("parse_sse", table)(ns)


def _judge_choose(ns: Namespace) -> Problem | None:
    from ..quiz import normal

    same = {
        "sse": "sse",
        "serversentevents": "sse",
        "eventsource": "sse",
        "websocket": "websocket",
        "websockets": "websocket",
        "longpolling": "longpolling",
    }
    expected = {
        "live sports scores, pushed one way to thousands of browsers": (
            "sse",
            "one way, server to client, plain HTTP and reconnection built in",
        ),
        "a multiplayer game, both sides sending often": (
            "websocket",
            "both sides speak often, with low latency, on one connection",
        ),
        "rare notifications where only plain request/response gets through": (
            "longpolling",
            "only ordinary requests get through, and events are rare",
        ),
    }
    hints = {
        key: (answer, f"look for the one that fits: {hint}")
        for key, (answer, hint) in expected.items()
    }
    return fill_in(ns, "choice", hints, lambda got, answer: same.get(normal(got)) == answer)


STEPS: tuple[Step, ...] = (
    Step(
        name="08-parse-sse",
        task="return the events of a text/event-stream: event type, data and last event id",
        where=(
            "the HTML standard, event stream interpretation",
            WHATWG_SSE + "#event-stream-interpretation",
        ),
        names=("parse_sse",),
        solution="""
        def parse_sse(text):
            events, data, event_type, last_id = [], [], "", ""
            for line in text.split("\\n")[:-1]:  # the last piece has no newline yet
                if line == "":  # a blank line dispatches the event
                    if data:
                        event = {"event": event_type or "message", "data": "\\n".join(data)}
                        events.append(event | {"id": last_id})
                    data, event_type = [], ""
                elif not line.startswith(":"):  # ":" starts a comment
                    name, _, value = line.partition(":")
                    value = value[1:] if value.startswith(" ") else value
                    if name == "data":
                        data.append(value)
                    elif name == "event":
                        event_type = value
                    elif name == "id":
                        last_id = value
            return events
        """,
        judge=_judge_sse,
        why="EventSource does exactly this, and sends the last id back as `Last-Event-ID` when it "
        "reconnects",
    ),
    Step(
        name="08-choose",
        task="choose `sse`, `websocket` or `long polling` for each application",
        where=rfc("1.1"),
        names=("choice",),
        solution="""
        choice = {
            "live sports scores, pushed one way to thousands of browsers": "sse",
            "a multiplayer game, both sides sending often": "websocket",
            "rare notifications where only plain request/response gets through": "long polling",
        }
        """,
        judge=_judge_choose,
        why="one way: SSE; both ways, often: WebSocket; anything, rarely: long polling",
    ),
)
