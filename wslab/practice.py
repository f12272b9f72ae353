"""Your-turn steps: instant feedback on the code a student writes in a lesson.

A your-turn step is two cells. The first, tagged ``your-turn``, is the
student's: it comes with a blank to fill, ``...`` (Python's ``Ellipsis``)::

    # Your turn: compute Sec-WebSocket-Accept for KEY2 with hashlib and base64.
    accept = ...

The second gives feedback the moment it runs::

    wslab.practice.check("02-accept")

:func:`check` reads the names the step asks for from the notebook (the
caller's globals) and answers in one of four ways: *not yet* (a blank is
still ``...``), *not quite* (what came out, a hint that does not give the
answer away, and the section of the RFC that has the rule), *your code
raised* (the exception in one line), or *right* (and why). A worked
solution is one click away under the feedback, and
``wslab.practice.solution("02-accept")`` prints it. A blank step gives
feedback, never a traceback, so Run All and the tests pass on an untouched
lesson.

The solutions live here, in :data:`EXERCISES`, and nowhere else: the tests
(``scripts/execute_notebooks.py --solved``) put each solution into its
your-turn cell and run the lesson again, so every solution is checked by the
same feedback the student gets.
"""

from __future__ import annotations

import base64
import hashlib
import html
import sys
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = [
    "EXERCISES",
    "PROVIDERS",
    "Exercise",
    "Feedback",
    "Problem",
    "add",
    "check",
    "exercise",
    "solution",
]

#: Where the sources the feedback cites live.
_RFC_URL = "https://www.rfc-editor.org/rfc/rfc{}#section-{}"
_WHATWG_WS = "https://websockets.spec.whatwg.org/"
_WHATWG_SSE = "https://html.spec.whatwg.org/multipage/server-sent-events.html"


@dataclass(frozen=True)
class Problem:
    """What is wrong with a student's answer.

    Attributes:
        message: What came out, or what is missing.
        hint: A nudge towards the fix that does not give the answer away.
        blank: True when the student has not written the answer yet.
    """

    message: str
    hint: str = ""
    blank: bool = False


class _Raised(Exception):
    """The student's code raised; ``str()`` says which call and what."""


Namespace = Mapping[str, Any]
Judge = Callable[[Namespace], Problem | None]


@dataclass(frozen=True)
class Exercise:
    """One your-turn step.

    Attributes:
        name: Its id, ``"<lesson>-<topic>"``, as passed to :func:`check`.
        task: One line: what the student writes.
        source: The rule's home, e.g. ``"RFC 6455 section 4.2.2"``.
        url: A link to that section.
        names: The names the your-turn cell defines.
        solution: A worked solution: the whole your-turn cell, solved.
        judge: Returns None when the answer is right, else a :class:`Problem`.
        why: Shown with a right answer: what it shows about the protocol.
    """

    name: str
    task: str
    source: str
    url: str
    names: tuple[str, ...]
    solution: str
    judge: Judge
    why: str


def rfc(section: str, number: int = 6455) -> tuple[str, str]:
    """The label and the link of an RFC section: ``rfc("5.2")``."""
    return f"RFC {number} section {section}", _RFC_URL.format(number, section)


class Feedback:
    """The feedback of :func:`check`; a notebook shows it as HTML, or as text.

    Attributes:
        exercise: The step it is about.
        status: ``"blank"``, ``"wrong"``, ``"error"`` or ``"right"``.
        message: What came out (or why it is right).
        hint: A hint, or "".
    """

    _ICONS: ClassVar[dict[str, str]] = {"blank": "✎", "wrong": "✖", "error": "✖", "right": "✔"}
    _TITLES: ClassVar[dict[str, str]] = {
        "blank": "Not yet",
        "wrong": "Not quite",
        "error": "Your code raised an exception",
        "right": "Right",
    }
    _COLOURS: ClassVar[dict[str, str]] = {
        "blank": "#777777",
        "wrong": "#b26a00",
        "error": "#b3261e",
        "right": "#2e7d32",
    }

    def __init__(self, exercise: Exercise, status: str, message: str, hint: str = "") -> None:
        self.exercise = exercise
        self.status = status
        self.message = message
        self.hint = hint

    @property
    def right(self) -> bool:
        """Whether the answer is right."""
        return self.status == "right"

    def __repr__(self) -> str:
        ex = self.exercise
        lines = [f"{self._ICONS[self.status]} {self._TITLES[self.status]}: {self.message}"]
        if self.hint:
            lines.append(f"Hint: {self.hint}")
        lines.append(f"See {ex.source}: {ex.url}")
        lines.append(f'Worked solution: wslab.practice.solution("{ex.name}")')
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        ex = self.exercise
        colour = self._COLOURS[self.status]
        hint = f"<div><b>Hint:</b> {_inline(self.hint)}</div>" if self.hint else ""
        return (
            f'<div class="wslab-feedback wslab-{self.status}" style="border-left: 4px solid '
            f'{colour}; padding: 4px 10px; margin: 2px 0">'
            f'<div style="color: {colour}"><b>{self._ICONS[self.status]} '
            f"{self._TITLES[self.status]}:</b> {_inline(self.message)}</div>{hint}"
            f'<div>See <a href="{html.escape(ex.url)}" target="_blank">'
            f"{html.escape(ex.source)}</a>.</div>"
            "<details><summary>Show a worked solution</summary>"
            f"<pre><code>{html.escape(ex.solution)}</code></pre></details></div>"
        )


class _Solution:
    """A worked solution, shown as code."""

    def __init__(self, exercise: Exercise) -> None:
        self.exercise = exercise

    def __repr__(self) -> str:
        return f"# A worked solution of {self.exercise.name}\n{self.exercise.solution}"

    def _repr_html_(self) -> str:
        return f"<pre><code>{html.escape(repr(self))}</code></pre>"


def _inline(text: str) -> str:
    """Escape text for HTML, showing `backquoted` parts as code."""
    parts = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


#: Modules that register the your-turn steps of a lesson with :func:`add`, by
#: lesson number; :func:`exercise` imports one the first time a step of its
#: lesson is asked for. Lessons 00 to 08 have theirs in this module.
PROVIDERS: dict[str, str] = {
    "09": "wslab.practice_09_11",
    "10": "wslab.practice_09_11",
    "11": "wslab.practice_09_11",
}


def load_provider(lesson: str) -> None:
    """Import the module that registers lesson ``lesson``'s steps and quiz, if any."""
    if lesson in PROVIDERS:
        import importlib

        try:
            importlib.import_module(PROVIDERS[lesson])
        except ImportError:
            pass


def exercise(name: str) -> Exercise:
    """The your-turn step ``name``, importing the module that registers it if needed.

    Raises:
        KeyError: No such step.
    """
    if name not in EXERCISES:
        load_provider(name[:2])
    try:
        return EXERCISES[name]
    except KeyError:
        raise KeyError(
            f"no your-turn step {name!r}; the steps are: {', '.join(EXERCISES)}"
        ) from None


def check(name: str, namespace: Namespace | None = None) -> Feedback:
    """Give feedback on the your-turn step ``name``.

    Args:
        name: The step's id, e.g. ``"02-accept"``.
        namespace: Where the student's names live; by default the caller's
            globals, which in a notebook are the notebook's variables.

    Returns:
        A :class:`Feedback`, shown as HTML in a notebook.
    """
    step = exercise(name)
    if namespace is None:
        namespace = sys._getframe(1).f_globals
    for each in step.names:
        if each not in namespace:
            return Feedback(
                step,
                "blank",
                f"`{each}` is not defined: run your cell above first",
                step.task,
            )
        if namespace[each] is ...:
            return Feedback(step, "blank", f"`{each}` is still `...`", step.task)
        if _blank_function(namespace[each]):
            return Feedback(step, "blank", f"the body of `{each}` is still `...`", step.task)
    try:
        problem = step.judge(namespace)
    except _Raised as error:
        return Feedback(step, "error", str(error), "fix it in your cell, run it, then this one")
    if problem is None:
        return Feedback(step, "right", step.why)
    return Feedback(step, "blank" if problem.blank else "wrong", problem.message, problem.hint)


def solution(name: str) -> _Solution:
    """Show the worked solution of the your-turn step ``name``."""
    return _Solution(exercise(name))


# Helpers for the judges


def _blank() -> None: ...


async def _async_blank() -> None: ...


def _blank_function(value: Any) -> bool:
    """Whether ``value`` is a function whose body is only ``...`` (or ``pass``)."""
    code = getattr(value, "__code__", None)
    blanks = (_blank.__code__.co_code, _async_blank.__code__.co_code)
    return code is not None and code.co_code in blanks


def _call(function: Any, *args: Any) -> Any:
    """Call the student's function; turn what it raises into one line."""
    shown = ", ".join(_short(a) for a in args)
    name = getattr(function, "__name__", "your function")
    if not callable(function):
        raise _Raised(f"`{name}` is {_short(function)}, not a function")
    try:
        return function(*args)
    except Exception as error:
        raise _Raised(f"`{name}({shown})` raised {type(error).__name__}: {error}") from error


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _cases(
    function_name: str, cases: list[tuple[tuple[Any, ...], Any, str]]
) -> Callable[[Namespace], Problem | None]:
    """A judge that calls ``function_name`` on each case: (args, expected, hint)."""

    def judge(ns: Namespace) -> Problem | None:
        function = ns[function_name]
        for args, expected, hint in cases:
            got = _call(function, *args)
            if got is None and expected is not None:
                shown = ", ".join(_short(a) for a in args)
                return Problem(
                    f"`{function_name}({shown})` returned None",
                    "write the function's body (it is still `...`) and return the result",
                    blank=True,
                )
            if got != expected:
                shown = ", ".join(_short(a) for a in args)
                return Problem(f"`{function_name}({shown})` returned {_short(got)}", hint)
        return None

    return judge


# The exercises, lesson by lesson


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
        f"`reply` is {_short(reply)}",
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
            return Problem(f"`{name}` is {_short(got)}", hint)
    return None


_MASK = "a client adds a 4-byte masking key to every frame (sections 5.2 and 5.3)"
_LENGTHS = (
    "0 to 125 fit in the 7 bits; 126 to 65535 take 2 more bytes, larger sizes 8 more, "
    "big-endian (section 5.2)"
)


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
    from .handshake import accept_key

    if accept == accept_key(key):
        return None
    why = _accept_variants(key).get(accept, "follow the three steps above, one at a time")
    return Problem(f"`accept` is {_short(accept)}", why)


def _judge_request(ns: Namespace) -> Problem | None:
    from .errors import HandshakeError
    from .handshake import Request, check_request

    key = "x3JJHMbDL1EzLkh9GBhXDw=="
    head = _call(ns["handshake_request"], "example.com", "/chat", key)
    if head is None:
        return Problem("`handshake_request(...)` returned None", "return the bytes", True)
    if isinstance(head, str):
        return Problem("it returned a str", "return bytes: `.encode('ascii')` at the end")
    if not isinstance(head, bytes) or not head.endswith(b"\r\n\r\n"):
        return Problem(
            f"it returned {_short(head)}",
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


def _judge_js(ns: Namespace) -> Problem | None:
    script = ns["MY_CLIENT"]
    if not isinstance(script, str):
        return Problem(f"`MY_CLIENT` is {_short(script)}", "keep your JavaScript in a string")
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


def _judge_shout(ns: Namespace) -> Problem | None:
    import inspect

    from .client import Client
    from .errors import WSLabError
    from .server import serve

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
                            f"sent {message!r}, got back {_short(got)}",
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


def _fill_in(
    ns: Namespace,
    name: str,
    expected: Mapping[str, tuple[Any, str]],
    same: Callable[[Any, Any], bool],
) -> Problem | None:
    """Judge a dict of blanks: each key's value against (answer, hint)."""
    given = ns[name]
    if not isinstance(given, dict):
        return Problem(f"`{name}` is {_short(given)}", "keep the dict and fill in its values")
    for key, (answer, hint) in expected.items():
        got = given.get(key, ...)
        if got is ...:
            return Problem(f"nothing yet for {key!r}", "fill in every `...`", True)
        if not same(got, answer):
            return Problem(f"{key!r}: {got!r}", hint)
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
    return _fill_in(ns, "codes", expected, lambda got, code: got == code)


def _judge_predict(ns: Namespace) -> Problem | None:
    cases = (
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
    for name, code, hint in cases:
        if ns[name] != code:
            return Problem(f"`{name}` is {_short(ns[name])}", hint)
    return None


def _judge_choose(ns: Namespace) -> Problem | None:
    from .quiz import normal

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
    return _fill_in(ns, "choice", hints, lambda got, answer: same.get(normal(got)) == answer)


def _judge_origin(ns: Namespace) -> Problem | None:
    cases = [
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
            "compare the "
            "whole host and port, not a prefix: parse the Origin with urllib.parse.urlsplit",
        ),
        (
            ("null", "127.0.0.1:8888"),
            False,
            "`null` is the Origin of sandboxed pages and files: not your page",
        ),
    ]
    judge = _cases("origin_ok", cases)
    return judge(ns)


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
    cases = [((text,), _parse_sse_reference(text), hint) for text, hint in _SSE_CASES]
    return _cases("parse_sse", cases)(ns)


def _judge_subprotocol(ns: Namespace) -> Problem | None:
    function = ns["select_subprotocol"]
    cases: list[tuple[list[str], list[str], set[str | None], str]] = [
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
    for offered, supported, right, hint in cases:
        got = _call(function, offered, supported)
        if got not in right:
            return Problem(
                f"`select_subprotocol({offered!r}, {supported!r})` returned {_short(got)}", hint
            )
    return None


def _xor(data: bytes, key: bytes) -> bytes:
    return bytes(byte ^ key[i % 4] for i, byte in enumerate(data))


EXERCISES: dict[str, Exercise] = {}


def add(
    name: str,
    task: str,
    where: tuple[str, str],
    names: tuple[str, ...],
    solution: str,
    judge: Judge,
    why: str,
) -> Exercise:
    """Register a your-turn step, for lesson authors.

    Args:
        name: ``"<lesson>-<topic>"``, e.g. ``"09-backoff"``; the lesson's
            number picks the module in :data:`PROVIDERS` that registers it.
        task: One line: what the student writes (the hint of a blank step).
        where: ``(label, url)`` of the rule's source, e.g. ``rfc("7.2.3")``.
        names: The names the your-turn cell defines, each ``...`` when blank.
        solution: The whole your-turn cell, solved (dedented here).
        judge: ``judge(namespace)`` returns None when right, else a
            :class:`Problem`; raise nothing (wrap calls of the student's code
            so that what it raises becomes feedback).
        why: What a right answer shows, one line.

    Returns:
        The registered :class:`Exercise`.
    """
    EXERCISES[name] = Exercise(
        name,
        task,
        where[0],
        where[1],
        names,
        textwrap.dedent(solution).strip() + "\n",
        judge,
        why,
    )
    return EXERCISES[name]


add(
    "00-echo",
    "send `Hello, RFC 6455` to `echo` with `wslab.Client`, and keep the answer in `reply`",
    rfc("1.2"),
    ("reply",),
    """
    with wslab.Client(echo) as client:
        client.send("Hello, RFC 6455")
        reply = client.recv(timeout=5)
    """,
    _judge_echo,
    "one handshake, then a message each way on the same connection (section 1.2)",
)
add(
    "01-header-bytes",
    "return the bytes of frame header for a message of `size` bytes",
    rfc("5.2"),
    ("ws_overhead",),
    """
    def ws_overhead(size, from_client):
        if size <= 125:
            header = 2
        elif size <= 65535:
            header = 2 + 2
        else:
            header = 2 + 8
        return header + (4 if from_client else 0)
    """,
    _cases(
        "ws_overhead",
        [
            ((32, False), 2, _LENGTHS),
            ((32, True), 6, _MASK),
            ((125, False), 2, _LENGTHS),
            ((126, False), 4, _LENGTHS),
            ((65535, True), 8, _LENGTHS + "; and " + _MASK),
            ((65536, False), 10, _LENGTHS),
            ((2**20, True), 14, _LENGTHS + "; and " + _MASK),
        ],
    ),
    "2 to 14 bytes per frame: a fragmented message pays them once per fragment",
)
add(
    "01-push",
    "bytes per hour: `polling_bytes` (a poll every second) and `websocket_bytes` (60 pushes)",
    rfc("1.1"),
    ("polling_bytes", "websocket_bytes"),
    """
    polling_bytes = 3600 * results["keep-alive polling"]["bytes per update"]
    websocket_bytes = 60 * results["WebSocket"]["to client"]
    """,
    _judge_push,
    "polling pays for every question, news or not; a push pays only for news",
)
add(
    "02-accept",
    "compute `Sec-WebSocket-Accept` for `KEY2` with `hashlib` and `base64`",
    rfc("4.2.2"),
    ("accept",),
    """
    KEY2 = "x3JJHMbDL1EzLkh9GBhXDw=="
    accept = base64.b64encode(hashlib.sha1((KEY2 + GUID).encode("ascii")).digest()).decode("ascii")
    """,
    _judge_accept,
    "the server proves it read this key and speaks WebSocket; anyone could compute it",
)
add(
    "02-request",
    "return the bytes of a client's opening handshake for `host`, `path` and `key`",
    rfc("4.1"),
    ("handshake_request",),
    """
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
    _judge_request,
    "a GET over HTTP/1.1 with Host, Upgrade, Connection, the key and version 13 (section 4.1)",
)
add(
    "03-header",
    "return the header of an unmasked, unfragmented frame: FIN, opcode, payload length",
    rfc("5.2"),
    ("frame_header",),
    """
    def frame_header(opcode, length):
        first = 0b1000_0000 | opcode  # FIN, no RSV bits, the opcode
        if length <= 125:
            return bytes([first, length])
        if length <= 65535:
            return bytes([first, 126]) + length.to_bytes(2, "big")
        return bytes([first, 127]) + length.to_bytes(8, "big")
    """,
    _cases(
        "frame_header",
        [
            (
                (1, 5),
                bytes.fromhex("81 05"),
                "the first byte is FIN (0x80) | opcode; the second the length, MASK off",
            ),
            ((2, 0), bytes.fromhex("82 00"), "FIN (0x80) | opcode, then the length"),
            ((2, 125), bytes.fromhex("82 7d"), _LENGTHS),
            ((2, 126), bytes.fromhex("82 7e 00 7e"), _LENGTHS),
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
    "the shortest length form, in network byte order: the RFC's examples of section 5.7",
)
add(
    "03-unmask",
    "return the payload unmasked: byte i XOR key[i % 4]",
    rfc("5.3"),
    ("unmask",),
    """
    def unmask(payload, key):
        return bytes(byte ^ key[i % 4] for i, byte in enumerate(payload))
    """,
    _cases(
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
    "masking is a XOR with a key sent in the clear: not encryption, a defence for proxies "
    "(section 10.3)",
)
add(
    "04-close-payload",
    "return a close frame's payload: the code, then the reason",
    rfc("5.5.1"),
    ("close_payload",),
    """
    def close_payload(code, reason=""):
        return code.to_bytes(2, "big") + reason.encode("utf-8")
    """,
    _cases(
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
    "a 2-byte code then UTF-8, at most 125 bytes in all; the reason is not necessarily human "
    "readable and is not shown to end users",
)
add(
    "04-predict",
    "predict the three codes before you run the cells below",
    rfc("7.1.5"),
    ("reply_code", "empty_code", "cut_code"),
    """
    reply_code = 1001  # a close with 1001 is answered with 1001 (echoed, 5.5.1)
    empty_code = 1005  # an empty close frame: "no status received" (7.1.5)
    cut_code = 1006    # no close frame at all: "abnormal closure" (7.1.5)
    """,
    _judge_predict,
    "1005 and 1006 report what happened; neither is ever sent in a close frame (7.4.1)",
)
add(
    "05-shout",
    "write a handler that answers every message in upper case",
    rfc("6.1"),
    ("shout",),
    """
    async def shout(ws):
        async for message in ws:
            await ws.send(message.upper())
    """,
    _judge_shout,
    "a server reads messages and sends messages, in any order it likes (section 6)",
)
add(
    "05-close-rule",
    "return whether a browser's `ws.close(code)` accepts `code`",
    ("the WebSocket standard, close()", _WHATWG_WS + "#dom-websocket-close"),
    ("browser_allows",),
    """
    def browser_allows(code):
        return code == 1000 or 3000 <= code <= 4999
    """,
    _cases(
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
    "anything else throws an InvalidAccessError in the browser, before a byte is sent",
)
add(
    "05-js-client",
    "write the JavaScript of your own chat page: connect, show messages, send the box's text",
    ("the WebSocket standard", _WHATWG_WS + "#the-websocket-interface"),
    ("MY_CLIENT",),
    """
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
    _judge_js,
    "open your page (the link below) and chat; the page's events map to those of section 5 "
    "and 7 of RFC 6455",
)
add(
    "06-subprotocol",
    "return the subprotocol a server selects, or None",
    rfc("4.2.2"),
    ("select_subprotocol",),
    """
    def select_subprotocol(offered, supported):
        for name in supported:  # the server's preference first
            if name in offered:
                return name
        return None
    """,
    _judge_subprotocol,
    "a server selects one of the client's values or none, and then sends no header",
)
add(
    "06-extensions",
    "return the names of the extensions offered in a `Sec-WebSocket-Extensions` value",
    rfc("9.1"),
    ("extension_names",),
    """
    def extension_names(header):
        return [offer.split(";")[0].strip() for offer in header.split(",")]
    """,
    _cases(
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
                "offers are separated by commas, "
                "in order of preference, and the same extension may be offered twice (RFC 7692 "
                "section 5)",
            ),
            (("  x-foo ;a=1 ,  y-bar",), ["x-foo", "y-bar"], "strip the spaces around names"),
        ],
    ),
    "offers in order, each a name and parameters: the server accepts some, adds none",
)
add(
    "07-origin",
    "return whether a server accepts a handshake with this `Origin` for this `Host`",
    rfc("10.2"),
    ("origin_ok",),
    """
    from urllib.parse import urlsplit

    def origin_ok(origin, host):
        if origin is None:  # not a browser
            return True
        return urlsplit(origin).netloc == host
    """,
    _judge_origin,
    "a same-origin rule for browsers; scripts send any Origin, so authenticate too",
)
add(
    "07-close-codes",
    "fill in the close code a server sends in each situation",
    rfc("7.4.1"),
    ("codes",),
    """
    codes = {
        "unmasked frame from a client": 1002,
        "message bigger than the limit": 1009,
        "invalid UTF-8 in a text message": 1007,
        "a token the server rejects": 1008,
    }
    """,
    _judge_codes,
    "the code says why; a peer that fails the connection SHOULD send it (section 7.1.7)",
)
add(
    "08-parse-sse",
    "return the events of a text/event-stream: event type, data and last event id",
    (
        "the HTML standard, event stream interpretation",
        _WHATWG_SSE + "#event-stream-interpretation",
    ),
    ("parse_sse",),
    """
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
    _judge_sse,
    "EventSource does exactly this, and sends the last id back as `Last-Event-ID` when it "
    "reconnects",
)
add(
    "08-choose",
    "choose `sse`, `websocket` or `long polling` for each application",
    rfc("1.1"),
    ("choice",),
    """
    choice = {
        "live sports scores, pushed one way to thousands of browsers": "sse",
        "a multiplayer game, both sides sending often": "websocket",
        "rare notifications where only plain request/response gets through": "long polling",
    }
    """,
    _judge_choose,
    "one way: SSE; both ways, often: WebSocket; anything, rarely: long polling",
)
