"""Grading, as the Autobahn|Testsuite does it: what happened, against what should.

Autobahn grades every case twice:

* its **behaviour**: did the server send back the expected events (echoed
  messages, pongs, nothing)? ``OK`` if they match the expectation,
  ``NON-STRICT`` if they match a weaker one the RFC allows, ``FAILED``
  otherwise; ``INFORMATIONAL`` when the RFC leaves the outcome open, and
  ``UNIMPLEMENTED`` for an optional feature the server does not offer;
* its **closing behaviour**: did the right end close, with the right code?
  ``OK``; ``WRONG CODE`` (a close code the case did not expect); ``UNCLEAN``
  (the closing handshake was required but did not complete); ``FAILED BY
  CLIENT`` (the server did not close TCP after the closing handshake, so the
  checker had to: section 7.1.1 asks the server to); ``FAILED`` (the wrong
  end closed: usually, a server that never noticed a protocol error).

The checker's overall **result** is the worse of the two, reading WRONG CODE
and FAILED BY CLIENT as NON-STRICT and UNCLEAN as FAILED. Everything here is
pure: an :class:`Observation` in, a :class:`Verdict` out.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field

from ..closing import Close
from ..handshake import Response, accept_key
from .cases import Case, Event, Expect, HandshakeCase

__all__ = [
    "CHECKS",
    "Closing",
    "Grade",
    "HandshakeObservation",
    "Observation",
    "Verdict",
    "grade",
    "grade_handshake",
]


class Grade(enum.StrEnum):
    """A case's result, in Autobahn's words."""

    #: The server did what the RFC asks.
    OK = "OK"
    #: Acceptable, but not what the RFC prefers (a SHOULD, a close code...).
    NON_STRICT = "NON-STRICT"
    #: The server broke a rule of the RFC.
    FAILED = "FAILED"
    #: The RFC leaves this open: the report only says what happened.
    INFORMATIONAL = "INFORMATIONAL"
    #: An optional feature (permessage-deflate) the server does not offer.
    UNIMPLEMENTED = "UNIMPLEMENTED"

    def __str__(self) -> str:
        return self.value


class Closing(enum.StrEnum):
    """How the connection ended, in Autobahn's words (see the module docstring)."""

    OK = "OK"
    WRONG_CODE = "WRONG CODE"
    UNCLEAN = "UNCLEAN"
    FAILED_BY_CLIENT = "FAILED BY CLIENT"
    FAILED = "FAILED"
    INFORMATIONAL = "INFORMATIONAL"

    def __str__(self) -> str:
        return self.value


#: How each closing grade counts in the overall result.
CLOSING_WEIGHT = {
    Closing.OK: Grade.OK,
    Closing.WRONG_CODE: Grade.NON_STRICT,
    Closing.FAILED_BY_CLIENT: Grade.NON_STRICT,
    Closing.UNCLEAN: Grade.FAILED,
    Closing.FAILED: Grade.FAILED,
    Closing.INFORMATIONAL: Grade.OK,
}
_ORDER = (Grade.OK, Grade.NON_STRICT, Grade.FAILED)


@dataclass
class Observation:
    """What the server did during one case, as the runner saw it.

    Attributes:
        opened: Whether the opening handshake succeeded.
        error: Why it did not, or what went wrong in the checker itself.
        deflate: Whether permessage-deflate was negotiated.
        events: Messages, pongs and passed pauses, in order.
        violations: Rules the server broke in what it sent (a masked frame,
            text that is not UTF-8, an invalid close frame...).
        first_close: Who ended the connection first: ``"checker"`` (a close
            frame), ``"server"`` (a close frame), ``"server TCP"`` (TCP
            closed without a close frame) or ``"checker TCP"`` (the checker
            gave up waiting and dropped TCP).
        close_sent: Whether the checker sent a close frame.
        close_received: Whether the server sent a close frame.
        remote_code: The server's close code; None if it sent none.
        remote_reason: The server's close reason.
        server_closed_tcp: Whether the server closed TCP (we read its FIN or a reset).
        dropped_by_me: Whether the checker closed TCP because the server
            did not, after the closing handshake.
        waited: The timeout, in seconds, to quote in the report.
        log: The frames both ways, for the details.
        duration: How long the case took, in seconds.
    """

    opened: bool = False
    error: str = ""
    deflate: bool = False
    events: list[Event] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    first_close: str | None = None
    close_sent: bool = False
    close_received: bool = False
    remote_code: int | None = None
    remote_reason: str = ""
    server_closed_tcp: bool = False
    dropped_by_me: bool = False
    waited: float = 0.0
    log: list[str] = field(default_factory=list)
    duration: float = 0.0

    @property
    def closed_by_me(self) -> bool:
        """Autobahn's "closedByMe": the checker, not the server, ended the connection."""
        return self.first_close in ("checker", "checker TCP")

    @property
    def clean(self) -> bool:
        """Whether the closing handshake completed: a close frame each way."""
        return self.close_sent and self.close_received

    def story(self) -> str:
        """What happened, in one line."""
        if not self.opened:
            return f"no connection: {self.error}"
        shown = ", ".join(str(event) for event in self.events[:3])
        if len(self.events) > 3:
            shown += f" and {len(self.events) - 3} more"
        received = f"received {shown}" if shown else "received nothing"
        return f"{received}; {self._closing_story()}"

    def _closing_story(self) -> str:
        code = _code_text(self.remote_code, self.remote_reason)
        if self.violations and self.first_close == "checker":
            return "the checker failed the connection because of it"
        if self.first_close == "server":
            text = f"the server closed with {code}"
        elif self.first_close == "server TCP":
            text = "the server closed TCP without a close frame"
        elif self.first_close == "checker TCP":
            text = f"nothing from the server for {self.waited:g} s: the checker dropped TCP"
        elif self.close_received:
            text = f"the checker closed, the server answered {code}"
        else:
            text = "the checker closed, the server never answered with a close frame"
        if self.dropped_by_me and self.first_close != "checker TCP":
            text += "; the server left TCP open, the checker closed it"
        return text


@dataclass(frozen=True)
class Verdict:
    """A case's grades and why.

    Attributes:
        result: The overall grade.
        behavior: Autobahn's behaviour grade (what the server sent).
        closing: Autobahn's closing-behaviour grade; None for handshake cases.
        reason: Why, in one sentence, when the result is not OK.
    """

    result: Grade
    behavior: Grade
    closing: Closing | None
    reason: str = ""


def grade(case: Case, seen: Observation) -> Verdict:
    """Grade a case played after the opening handshake, as Autobahn would."""
    if not seen.opened:
        return Verdict(
            Grade.FAILED, Grade.FAILED, Closing.FAILED, f"the connection failed: {seen.error}"
        )
    if case.deflate and not seen.deflate:
        return Verdict(
            Grade.UNIMPLEMENTED,
            Grade.UNIMPLEMENTED,
            None,
            "the server did not accept permessage-deflate (optional, RFC 7692)",
        )
    expect = case.expect
    behavior, reason = _behavior(expect, seen)
    if seen.error:
        behavior, reason = Grade.FAILED, f"checker error: {seen.error}"
    if (
        expect.limit_codes
        and behavior is not Grade.OK
        and not seen.violations
        and seen.first_close == "server"
        and seen.remote_code in expect.limit_codes
    ):
        return Verdict(
            Grade.INFORMATIONAL,
            Grade.INFORMATIONAL,
            Closing.INFORMATIONAL,
            f"the server refused the message with {seen.remote_code}: its size limit is "
            "lower, which section 10.4 allows",
        )
    closing, close_reason = _closing(expect, seen)
    wrong_end = expect.server_closes == seen.closed_by_me
    if expect.wrong_endpoint_fails and wrong_end and behavior is not Grade.FAILED:
        behavior, reason = Grade.FAILED, close_reason
    if expect.wrong_code_fails and closing is Closing.WRONG_CODE:
        behavior, reason = Grade.FAILED, close_reason
    if expect.informational and not seen.violations:
        return Verdict(Grade.INFORMATIONAL, Grade.INFORMATIONAL, Closing.INFORMATIONAL)
    result = max(behavior, CLOSING_WEIGHT[closing], key=_ORDER.index)
    if result is not behavior:
        reason = close_reason
    return Verdict(result, behavior, closing, "" if result is Grade.OK else reason)


def _behavior(expect: Expect, seen: Observation) -> tuple[Grade, str]:
    if seen.violations:
        return Grade.FAILED, "; ".join(seen.violations)
    if seen.events == list(expect.ok):
        return Grade.OK, ""
    wanted = _events_text(expect.ok)
    if expect.non_strict is not None and seen.events == list(expect.non_strict):
        return Grade.NON_STRICT, (
            f"received {_events_text(expect.non_strict)}: allowed, but {wanted} is better"
        )
    return Grade.FAILED, f"expected {wanted}, received {_events_text(seen.events)}"


def _closing(expect: Expect, seen: Observation) -> tuple[Closing, str]:
    """Autobahn's closing behaviour (``Case.onConnectionLost``), with reasons."""
    codes = " or ".join(str(code) for code in expect.codes)
    if expect.server_closes and seen.closed_by_me:
        return Closing.FAILED, (
            f"the server did not fail the connection within {seen.waited:g} s "
            f"(expected a close with {codes}, or TCP closed)"
        )
    if not expect.server_closes and not seen.closed_by_me:
        how = (
            f"with {_code_text(seen.remote_code, seen.remote_reason)}"
            if seen.close_received
            else "by closing TCP"
        )
        return Closing.FAILED, f"the server ended a connection that had no error, {how}"
    if expect.clean and not seen.clean:
        return Closing.UNCLEAN, "the closing handshake did not complete (7.1.2)"
    if seen.remote_code is not None and seen.remote_code not in expect.codes:
        return Closing.WRONG_CODE, (
            f"close code {_code_text(seen.remote_code, '')}, expected {codes} (7.4.1)"
        )
    if seen.dropped_by_me:
        return Closing.FAILED_BY_CLIENT, (
            f"the server did not close TCP within {seen.waited:g} s of the closing "
            "handshake; it should close first (7.1.1)"
        )
    return Closing.OK, ""


def _events_text(events: tuple[Event, ...] | list[Event]) -> str:
    if not events:
        return "nothing"
    shown = ", ".join(str(event) for event in events[:4])
    return shown + (f" and {len(events) - 4} more" if len(events) > 4 else "")


def _code_text(code: int | None, reason: str) -> str:
    """``1002 (protocol error) 'bad frame'``, as :class:`wslab.closing.Close` reads."""
    return "no close code" if code is None else str(Close(code, repr(reason) if reason else ""))


# -- the opening handshake --------------------------------------------------------


@dataclass
class HandshakeObservation:
    """What the server answered to one handshake case.

    Attributes:
        response: The parsed answer, or None.
        error: Why there is none (closed, timed out, not HTTP).
        key: The Sec-WebSocket-Key sent, to check the accept value.
        offered: Request headers worth checking the answer against.
        log: The request and answer heads, for the details.
        duration: How long the case took, in seconds.
    """

    response: Response | None = None
    error: str = ""
    key: str = ""
    offered: dict[str, str] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)
    duration: float = 0.0

    def story(self) -> str:
        """What happened, in one line."""
        if self.response is None:
            return f"no HTTP answer: {self.error}"
        answer = f"answered {self.response.status} {self.response.reason}".rstrip()
        if self.response.status == 101:
            extras = [
                f"{name}: {self.response.headers.get(name)}"
                for name in ("Sec-WebSocket-Protocol", "Sec-WebSocket-Extensions")
                if name in self.response.headers
            ]
            answer += "".join(f", {extra}" for extra in extras)
        return answer


Check = Callable[[HandshakeObservation], tuple[Grade, str]]


def _version_header(seen: HandshakeObservation) -> tuple[Grade, str]:
    assert seen.response is not None
    if "13" in seen.response.headers.tokens("Sec-WebSocket-Version"):
        return Grade.OK, ""
    return Grade.NON_STRICT, (
        "refused, but without a Sec-WebSocket-Version header naming 13, which 4.4 asks for"
    )


def _subprotocol(seen: HandshakeObservation) -> tuple[Grade, str]:
    assert seen.response is not None
    chosen = seen.response.headers.get("Sec-WebSocket-Protocol")
    if chosen is None or chosen == seen.offered.get("Sec-WebSocket-Protocol"):
        return Grade.OK, ""
    return Grade.FAILED, f"chose subprotocol {chosen!r}, which the client did not offer (4.2.2)"


def _extension(seen: HandshakeObservation) -> tuple[Grade, str]:
    assert seen.response is not None
    accepted = seen.response.headers.get("Sec-WebSocket-Extensions")
    if accepted is None:
        return Grade.OK, ""
    return Grade.FAILED, (
        f"accepted the extension {accepted!r}, which it cannot implement: a server "
        "must not echo extensions it does not support (9.1)"
    )


#: Extra checks a :class:`HandshakeCase` can name in its ``check`` field.
CHECKS: dict[str, Check] = {
    "version header": _version_header,
    "subprotocol": _subprotocol,
    "extension": _extension,
}


def grade_handshake(case: HandshakeCase, seen: HandshakeObservation) -> Verdict:
    """Grade the server's answer to a changed opening handshake."""
    response = seen.response
    status = None if response is None else response.status
    if case.informational:
        return Verdict(Grade.INFORMATIONAL, Grade.INFORMATIONAL, None)
    if case.accept:
        if response is None or status != 101:
            return _verdict(Grade.FAILED, f"expected 101, {seen.story()}")
        got = response.headers.get("Sec-WebSocket-Accept")
        if got != accept_key(seen.key):
            return _verdict(
                Grade.FAILED, f"Sec-WebSocket-Accept is {got!r}, not {accept_key(seen.key)!r}"
            )
    elif status == 101:
        return _verdict(Grade.FAILED, "accepted a handshake it must refuse")
    elif response is None:
        return _verdict(
            Grade.NON_STRICT, f"closed without an HTTP answer ({seen.error}); a 400 explains why"
        )
    elif status not in case.statuses:
        wanted = " or ".join(map(str, case.statuses))
        return _verdict(Grade.NON_STRICT, f"refused with {status}; {wanted} says it better")
    if case.check is not None:
        return _verdict(*CHECKS[case.check](seen))
    return _verdict(Grade.OK, "")


def _verdict(result: Grade, reason: str) -> Verdict:
    return Verdict(result, result, None, reason)
