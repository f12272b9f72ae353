"""What a your-turn step is made of, and the tools its judge uses.

A :class:`Step` is data: the task, the rule's source, the names the
student's cell defines, a worked solution, and a *judge*: a function of the
notebook's namespace that returns None when the answer is right, or a
:class:`Problem` (what came out, and a hint) when it is not. The steps of
the lessons live in the modules next to this one, one per part of the course.

The tools here make judges short and keep them from raising: :func:`call`
runs the student's function and turns what it raises into one line (a
:class:`StudentCodeRaised`, which :func:`wslab.practice.check` shows as
feedback), and stops it after :data:`TIME_LIMIT` seconds (an endless loop);
:func:`cases` judges a function by a table of arguments and expected
results, :func:`fill_in` judges a dict of blanks.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..jupyter import time_limit

__all__ = [
    "HINT_LENGTHS",
    "HINT_MASK",
    "TIME_LIMIT",
    "WHATWG_SSE",
    "WHATWG_WS",
    "Judge",
    "Namespace",
    "Problem",
    "Step",
    "StudentCodeRaised",
    "call",
    "cases",
    "fill_in",
    "rfc",
    "short",
]

#: Where the sources the feedback cites live.
_RFC_URL = "https://www.rfc-editor.org/rfc/rfc{}#section-{}"
WHATWG_WS = "https://websockets.spec.whatwg.org/"
WHATWG_SSE = "https://html.spec.whatwg.org/multipage/server-sent-events.html"


def rfc(section: str, number: int = 6455) -> tuple[str, str]:
    """The label and the link of an RFC section: ``rfc("5.2")``."""
    return f"RFC {number} section {section}", _RFC_URL.format(number, section)


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


#: The notebook's variables, as a judge sees them.
Namespace = Mapping[str, Any]
#: A judge: None when the answer is right, else what is wrong.
Judge = Callable[[Namespace], Problem | None]


@dataclass(frozen=True)
class Step:
    """One your-turn step.

    Attributes:
        name: Its id, ``"<lesson>-<topic>"``, as passed to
            :func:`wslab.practice.check`.
        task: One line: what the student writes (the hint of a blank step).
        where: ``(label, url)`` of the rule's source, e.g. ``rfc("4.2.2")``.
        names: The names the your-turn cell defines, each ``...`` when blank.
        solution: A worked solution: the whole your-turn cell, solved.
        judge: Returns None when the answer is right, else a :class:`Problem`;
            it raises nothing but :class:`StudentCodeRaised` (use :func:`call`).
        why: Shown with a right answer: what it shows about the protocol.
    """

    name: str
    task: str
    where: tuple[str, str]
    names: tuple[str, ...]
    solution: str
    judge: Judge
    why: str

    def __post_init__(self) -> None:
        # Written indented in the steps' modules; kept as the cell shows it.
        object.__setattr__(self, "solution", textwrap.dedent(self.solution).strip() + "\n")

    @property
    def source(self) -> str:
        """The rule's home, e.g. ``"RFC 6455 section 4.2.2"``."""
        return self.where[0]

    @property
    def url(self) -> str:
        """A link to that section."""
        return self.where[1]


class StudentCodeRaised(Exception):
    """The student's code raised; ``str()`` says which call and what."""


def short(value: Any, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters for a line of feedback."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


#: Seconds one call of the student's function may run before :func:`call` stops it.
TIME_LIMIT = 5.0


class _StillRunning(BaseException):
    """Raised in the student's code when its time is up.

    A BaseException, like KeyboardInterrupt, so that a student's
    ``except Exception:`` cannot swallow it.
    """


def call(function: Any, *args: Any) -> Any:
    """Call the student's function and return what it returns.

    Raises:
        StudentCodeRaised: It is not a function, it raised, or it was still
            running after :data:`TIME_LIMIT` seconds; the message names the
            call and what happened in one line.
    """
    shown = ", ".join(short(a) for a in args)
    name = getattr(function, "__name__", "your function")
    if not callable(function):
        raise StudentCodeRaised(f"`{name}` is {short(function)}, not a function")
    try:
        with time_limit(TIME_LIMIT, _StillRunning):
            return function(*args)
    except _StillRunning:
        raise StudentCodeRaised(
            f"`{name}({shown})` was still running after {TIME_LIMIT:g} s, so the check "
            "stopped it: an endless loop? Check that every loop moves towards its end"
        ) from None
    except Exception as error:
        raise StudentCodeRaised(
            f"`{name}({shown})` raised {type(error).__name__}: {error}"
        ) from error


def cases(function_name: str, table: list[tuple[tuple[Any, ...], Any, str]]) -> Judge:
    """A judge that calls ``function_name`` on each case of ``table``: (args, expected, hint).

    A function that returns None where a value is expected is taken for one
    whose body the student has not written yet.
    """

    def judge(ns: Namespace) -> Problem | None:
        function = ns[function_name]
        for args, expected, hint in table:
            got = call(function, *args)
            shown = ", ".join(short(a) for a in args)
            if got is None and expected is not None:
                return Problem(
                    f"`{function_name}({shown})` returned None",
                    "write the function's body (it is still `...`) and return the result",
                    blank=True,
                )
            if got != expected:
                return Problem(f"`{function_name}({shown})` returned {short(got)}", hint)
        return None

    return judge


def fill_in(
    ns: Namespace,
    name: str,
    expected: Mapping[str, tuple[Any, str]],
    same: Callable[[Any, Any], bool],
) -> Problem | None:
    """Judge the dict ``name`` of blanks: each key's value against (answer, hint)."""
    given = ns[name]
    if not isinstance(given, dict):
        return Problem(f"`{name}` is {short(given)}", "keep the dict and fill in its values")
    for key, (answer, hint) in expected.items():
        got = given.get(key, ...)
        if got is ...:
            return Problem(f"nothing yet for {key!r}", "fill in every `...`", True)
        if not same(got, answer):
            return Problem(f"{key!r}: {got!r}", hint)
    return None


# Hints that the steps of more than one lesson give (01 and 03: section 5.2).

HINT_MASK = "a client adds a 4-byte masking key to every frame (sections 5.2 and 5.3)"
HINT_LENGTHS = (
    "0 to 125 fit in the 7 bits; 126 to 65535 take 2 more bytes, larger sizes 8 more, "
    "big-endian (section 5.2)"
)
