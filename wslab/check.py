"""Friendly checks for the exercise notebooks (nbgrader test cells).

A failed check raises :class:`CheckFailed`, an ``AssertionError`` (so nbgrader,
pytest and plain ``assert`` habits all count it as a failed test) whose message
explains the failure to a student: what was checked, what was expected, what
came out, a hint, and the section of the RFC that says why::

    from wslab import check

    with check.part("accept_key"):
        check.equal(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
                    what="Sec-WebSocket-Accept for the sample key of RFC 6455 1.3",
                    rfc="4.2.2")

:func:`part` turns the ``NotImplementedError`` of an unfinished exercise into
a one-line "not written yet" message, stops code that runs for too long (an
endless loop) at the line it was on, and names the earlier parts a failure may
come from (``uses=``). :func:`case` names the input a check feeds to the
student's code, so that an exception raised by that code says which input,
which rule and which section; its traceback starts at the student's own line,
never in the test cell or in wslab.

For the server exercises, :func:`serving` runs a student's handler on a
private grading server (its own event loop on its own thread, a free port),
so that a handler that blocks its loop, raises or leaves stale connections in
a module-level dictionary cannot spoil the parts graded after it, and
:func:`connect` opens a real WebSocket client (the websockets library) whose
every wait has a timeout, so that an unfinished handler fails fast instead of
hanging the grader.
"""

from __future__ import annotations

import asyncio
import contextvars
import ctypes
import dis
import http
import inspect
import linecache
import logging
import os
import socket
import sys
import sysconfig
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import CodeType, FrameType, ModuleType, TracebackType
from typing import TYPE_CHECKING, Any

from . import jupyter

if TYPE_CHECKING:
    from websockets.asyncio.server import Server as WSServer
    from websockets.asyncio.server import ServerConnection
    from websockets.http11 import Request, Response
    from websockets.sync.client import ClientConnection

__all__ = [
    "CheckFailed",
    "GradingServer",
    "NotImplementedYet",
    "Peer",
    "Stalled",
    "case",
    "conformance",
    "connect",
    "equal",
    "fail",
    "handshake_status",
    "hex_diff",
    "own_work",
    "part",
    "raises",
    "rfc_link",
    "serving",
    "soon",
    "stalled",
    "true",
    "uses_name",
]

#: Where a section number of RFC 6455 points to.
RFC_URL = "https://www.rfc-editor.org/rfc/rfc6455#section-{}"
#: Sections of other standards that the exercises cite, by the name a test uses.
SPECS: dict[str, tuple[str, str]] = {
    "HTML 9.2.4": (
        "the HTML standard, section 9.2.4 (the last event ID)",
        "https://html.spec.whatwg.org/multipage/server-sent-events.html#the-last-event-id-string",
    ),
    "HTML 9.2.5": (
        "the HTML standard, section 9.2.5 (parsing an event stream)",
        "https://html.spec.whatwg.org/multipage/server-sent-events.html#parsing-an-event-stream",
    ),
    "HTML 9.2.6": (
        "the HTML standard, section 9.2.6 (interpreting an event stream)",
        "https://html.spec.whatwg.org/multipage/server-sent-events.html"
        "#event-stream-interpretation",
    ),
    "RFC 6454 5": (
        "RFC 6454 (the Web Origin Concept), section 5",
        "https://www.rfc-editor.org/rfc/rfc6454#section-5",
    ),
    "RFC 6454 6": (
        "RFC 6454 (the Web Origin Concept), section 6",
        "https://www.rfc-editor.org/rfc/rfc6454#section-6",
    ),
    "RFC 9110 11.6.2": (
        "RFC 9110 (HTTP semantics), section 11.6.2",
        "https://www.rfc-editor.org/rfc/rfc9110#section-11.6.2",
    ),
}


def _env_seconds(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


#: How long a grading client waits for the student's server, in seconds
#: (the environment variable ``WSLAB_CHECK_TIMEOUT`` overrides it).
DEFAULT_TIMEOUT = _env_seconds("WSLAB_CHECK_TIMEOUT", 5.0)
#: How long one graded part may run before it is stopped as an endless loop,
#: in seconds (``WSLAB_CHECK_TIME_LIMIT`` overrides it; nbgrader's cell
#: timeout, 60 s in this course, stays the last resort).
TIME_LIMIT = _env_seconds("WSLAB_CHECK_TIME_LIMIT", 30.0)
#: How many bytes of a long bytes value a failure message shows.
HEX_WINDOW = 16


#: What to do about a function that still raises NotImplementedError.
_NOT_WRITTEN = (
    "The cell that defines it still raises NotImplementedError.",
    "Replace `raise NotImplementedError()` with your code, run that cell,",
    "then run this test cell again.",
)


class CheckFailed(AssertionError):
    """A check of an exercise failed; the message explains what and why.

    Attributes:
        what: What was checked, e.g. ``"the close payload for code 1000"``.
        rfc: The section that explains the rule, e.g. ``"5.5.1"`` (RFC 6455).
        hint: A suggestion for the fix, or None.
    """

    def __init__(
        self, message: str, *, what: str = "", rfc: str | None = None, hint: str | None = None
    ) -> None:
        super().__init__(message)
        self.what = what
        self.rfc = rfc
        self.hint = hint
        # Where the student's own code starts in the traceback of __cause__ (None:
        # the exception did not come from the student's code, show no traceback).
        self.student_tb: TracebackType | None = None

    def _render_traceback_(self) -> list[str]:
        """How IPython shows a failed check: the explanation, not check.py's frames.

        IPython calls this instead of formatting the traceback. The frames of
        this module and of the test cell would only distract a student. If the
        student's own code raised (the ``__cause__``), the traceback from the
        student's first line on comes first, because it points at the line to fix.
        """
        lines: list[str] = []
        if self.__cause__ is not None and self.student_tb is not None:
            lines += _format_exception(self.__cause__, self.student_tb)
            lines.append("\nThe above exception, in your code, made this check fail:\n")
        first, *rest = str(self).splitlines() or [""]
        lines.append(f"\x1b[0;31m{type(self).__name__}\x1b[0m: {first}")
        return lines + rest

    def with_note(self, note: str) -> CheckFailed:
        """A copy of this failure with one more line at the end of its message."""
        copy = type(self)(f"{self}\n  note: {note}", what=self.what, rfc=self.rfc, hint=self.hint)
        copy.student_tb = self.student_tb
        copy.__cause__ = self.__cause__
        copy.__suppress_context__ = True
        return copy


class NotImplementedYet(CheckFailed):
    """The student's function still raises ``NotImplementedError``."""


class StillRunning(BaseException):
    """Raised in the main thread when a part runs past its time limit.

    A BaseException, like KeyboardInterrupt, so that a student's
    ``except Exception:`` cannot swallow it.
    """

    def __init__(self, seconds: float) -> None:
        super().__init__(seconds)
        #: The innermost :func:`case` the code was stopped in, if any.
        self.case: _Case | None = None

    def __str__(self) -> str:
        return f"the check stopped your code after {self.args[0]:g} s"


class _LoopBlocked(Exception):
    """Raised inside a handler that kept a grading server's loop busy."""

    def __str__(self) -> str:
        return "stopped by the grader: the handler kept the event loop busy"


def rfc_link(section: str) -> str:
    """Return the URL of a section of RFC 6455 (``"5.2"``) or of a name in :data:`SPECS`."""
    if section in SPECS:
        return SPECS[section][1]
    return RFC_URL.format(section)


def _see(section: str) -> str:
    if section in SPECS:
        title, url = SPECS[section]
        return f"see {title}: {url}"
    return f"see RFC 6455 section {section}: {rfc_link(section)}"


def fail(
    what: str,
    problem: str,
    *,
    lines: tuple[str, ...] = (),
    rfc: str | None = None,
    hint: str | None = None,
    cls: type[CheckFailed] = CheckFailed,
) -> CheckFailed:
    """Build (not raise) the exception of a failed check, message and all.

    The message reads::

        ✗ <what>: <problem>
          <line>
          ...
          hint: <hint>
          see RFC 6455 section <rfc>: <url>

    Returns:
        The exception, for the caller to ``raise`` (so that the traceback
        ends at the check in the test cell, not in here).
    """
    parts = [f"✗ {what}: {problem}" if what else f"✗ {problem}"]
    parts += [f"  {line}" for line in lines]
    if hint:
        parts.append(f"  hint: {hint}")
    if rfc:
        parts.append(f"  {_see(rfc)}")
    return cls("\n".join(parts), what=what, rfc=rfc, hint=hint)


# -- parts and cases -------------------------------------------------------------


@dataclass(frozen=True)
class _Case:
    what: str
    rfc: str | None
    hint: str | None


_case: contextvars.ContextVar[_Case | None] = contextvars.ContextVar("wslab_check_case")
#: The outcome of every part run so far in this kernel: name -> passed.
_results: dict[str, bool] = {}
#: The grading servers started so far in this kernel, in order.
_servers: list[GradingServer] = []


def results() -> dict[str, bool]:
    """The parts graded so far in this kernel and whether each passed."""
    return dict(_results)


@contextmanager
def part(
    name: str, *, uses: tuple[str, ...] = (), time_limit: float | None = None
) -> Iterator[None]:
    """Run the checks of one graded part, explaining exceptions from student code.

    Inside the block, a ``NotImplementedError`` becomes :class:`NotImplementedYet`
    ("``name`` is not written yet"), code that runs longer than ``time_limit``
    is stopped where it is (an endless loop), and any other exception that is
    not a failed check becomes a :class:`CheckFailed` that names the part and
    keeps the student's traceback as its cause. When the block finishes, it
    prints a ✓ line.

    Args:
        name: The function or part being graded, as the student knows it.
        uses: Earlier parts whose functions this one calls. If one of them
            failed, a failure here says that it may come from there (a wrong
            ``accept_key`` breaks ``build_response``; a looping ``mask`` hangs
            ``decode_frame``).
        time_limit: Seconds before the part is stopped; :data:`TIME_LIMIT` if None.
            A part that takes seconds when it passes (servers, the conformance
            checker) sets its own, which ``WSLAB_CHECK_TIME_LIMIT`` does not change.
    """
    __tracebackhide__ = True  # IPython and pytest hide this frame in tracebacks.
    test_file = _entry_file()
    limit = TIME_LIMIT if time_limit is None else time_limit
    first_server = len(_servers)
    try:
        with jupyter.time_limit(limit, lambda: StillRunning(limit)):
            yield
    except CheckFailed as failed:
        _results[name] = False
        raise _cascade(failed, name, uses) from failed.__cause__
    except AssertionError:
        _results[name] = False
        raise  # A student's own assert explains itself.
    except NotImplementedError:
        _results[name] = False
        raise fail(name, "not written yet", lines=_NOT_WRITTEN, cls=NotImplementedYet) from None
    except StillRunning as stopped:
        _results[name] = False
        earlier = _failure_in_context(stopped)
        if earlier is not None:
            # The limit expired while cleaning up after a failed check (a server
            # that does not stop): that failure is the one to report.
            raise _cascade(earlier, name, uses) from earlier.__cause__
        where = stopped.case
        if any(server.blocked for server in _servers[first_server:]):
            # Stopped while waiting for a server whose handler blocks its loop.
            problem = f"still waiting after {limit:g} s"
            raise _cascade(
                _blocked(name, problem, where.rfc if where else None), name, uses
            ) from None
        error = fail(
            where.what if where else name,
            f"still running after {limit:g} s, so the check stopped it",
            lines=("The traceback above shows the line your code was on: an endless loop?",),
            rfc=where.rfc if where else None,
            hint="check that every loop moves towards its end (an index that grows, "
            "data that gets shorter).",
        )
        error.student_tb = _student_tb(stopped, test_file)
        raise _cascade(error, name, uses) from stopped
    except NameError as exc:
        _results[name] = False
        # Often the cell that defines the function was not run, or failed;
        # otherwise a typo in the student's code, which the traceback shows.
        error = fail(
            name,
            f"NameError: {exc}",
            lines=(
                "If that is the name of your function, run the cell that defines it",
                "(fix any error it shows), then this one again. Otherwise the",
                "traceback above shows the line with the misspelt name.",
            ),
        )
        error.student_tb = _student_tb(exc, test_file)
        raise error from exc
    except Exception as exc:
        _results[name] = False
        error = _raised(name, exc, test_file, rfc=None, hint=None)
        raise _cascade(error, name, uses) from exc
    _results[name] = True
    print(f"✓ {name}: all checks passed")


@contextmanager
def case(what: str, *, rfc: str | None = None, hint: str | None = None) -> Iterator[None]:
    """Name one input of a part: what is fed to the student's code, and the rule.

    An exception that the student's code raises inside the block becomes a
    failure that names the input (``what``), the rule's section and the hint,
    with a traceback that starts at the student's own line. Checks inside the
    block use ``what``, ``rfc`` and ``hint`` when they are not given their own::

        for why, raw in cases:
            with check.case(f"validate_request() of {why}", rfc="4.2.1"):
                check.equal(validate_request(raw), key)

    Args:
        what: The input, in words a student recognizes.
        rfc: The section with the rule (RFC 6455, or a name in :data:`SPECS`).
        hint: A suggestion for the fix, shown on failure.
    """
    __tracebackhide__ = True
    test_file = _entry_file()
    token = _case.set(_Case(what, rfc, hint))
    try:
        yield
    except AssertionError:
        raise
    except NotImplementedError:
        raise
    except Exception as exc:
        raise _raised(what, exc, test_file, rfc=rfc, hint=hint) from exc
    except StillRunning as stopped:
        # The part reports it; tell it which input the code was stopped on.
        stopped.case = stopped.case or _Case(what, rfc, hint)
        raise
    finally:
        _case.reset(token)


def _raised(
    what: str, exc: BaseException, test_file: str | None, *, rfc: str | None, hint: str | None
) -> CheckFailed:
    """The failure for an exception raised while checking ``what``."""
    student = _student_tb(exc, test_file)
    if student is not None:
        problem = f"your code raised {type(exc).__name__}: {exc}"
        lines: tuple[str, ...] = (
            "The traceback above ends at the line of your code that raised it.",
        )
    else:
        # Raised by the test reading the student's result (e.g. a response that
        # does not parse), not by the student's code: no traceback to show.
        problem = f"checking what your code returned failed: {type(exc).__name__}: {exc}"
        lines = ()
    error = fail(what, problem, lines=lines, rfc=rfc, hint=hint)
    error.student_tb = student
    return error


def _failure_in_context(exc: BaseException) -> CheckFailed | None:
    """The failed check that was being handled when ``exc`` was raised, if any."""
    context = exc.__context__
    while context is not None:
        if isinstance(context, CheckFailed):
            return context
        context = context.__context__
    return None


def _cascade(error: CheckFailed, name: str, uses: tuple[str, ...]) -> CheckFailed:
    """Add a note when a part this one relies on failed (or never ran) before."""
    failed = [used for used in uses if _results.get(used) is False]
    if failed and not isinstance(error, NotImplementedYet):
        names = " and ".join(failed)
        return error.with_note(
            f"{name} relies on your {names}, which failed its own test above: "
            "fix that first; this part may then pass as it is."
        )
    return error


# -- comparisons -----------------------------------------------------------------


def _context(
    what: str | None, rfc: str | None, hint: str | None
) -> tuple[str, str | None, str | None]:
    """Fill in what, rfc and hint from the enclosing :func:`case`."""
    current = _case.get(None)
    if current is None:
        return what or "the check", rfc, hint
    return what or current.what, rfc or current.rfc, hint or current.hint


def equal(
    actual: object,
    expected: object,
    *,
    what: str | None = None,
    rfc: str | None = None,
    hint: str | None = None,
    names: tuple[str, ...] = (),
) -> None:
    """Check that ``actual == expected``, explaining any difference.

    Bytes are compared with a hex view that points at the first differing
    byte; tuples are compared item by item (``names`` names the items, e.g.
    ``("fin", "opcode", "payload")``); a value of the wrong type (``str`` for
    ``bytes``, ``None`` for a missing ``return``) gets its own hint.

    Args:
        actual: What the student's code produced.
        expected: What the RFC (or the reference implementation) says.
        what: What is being compared, for the message (default: the :func:`case`'s).
        rfc: The section that explains the expected value.
        hint: A suggestion for the fix, shown on failure.
        names: Names of the items of a tuple, for the message.

    Raises:
        CheckFailed: The values differ.
    """
    __tracebackhide__ = True
    what, rfc, hint = _context(what, rfc, hint)
    if isinstance(actual, list | tuple) and isinstance(expected, list | tuple):
        # A function asked for a tuple may return a list: compare the items.
        actual, expected = tuple(actual), tuple(expected)
    if _same_type(actual, expected) and actual == expected:
        return
    if actual is None and expected is not None:
        raise fail(
            what,
            "got None",
            lines=(f"expected: {_show(expected)}",),
            rfc=rfc,
            hint=hint or "did your function forget to `return` its result?",
        )
    if not _same_type(actual, expected):
        raise fail(
            what,
            f"expected {_a(expected)}, got {_a(actual)}",
            lines=(f"expected: {_show(expected)}", f"got:      {_show(actual)}"),
            rfc=rfc,
            hint=_type_hint(actual, expected) or hint,
        )
    if isinstance(actual, bytes | bytearray) and isinstance(expected, bytes | bytearray):
        raise fail(
            what,
            "the bytes differ",
            lines=tuple(hex_diff(bytes(actual), bytes(expected)).splitlines()),
            rfc=rfc,
            hint=hint,
        )
    if isinstance(actual, tuple) and isinstance(expected, tuple) and len(actual) == len(expected):
        lines = _item_diff(actual, expected, names)
        raise fail(what, "got a different value", lines=lines, rfc=rfc, hint=hint)
    raise fail(
        what,
        "got a different value",
        lines=(f"expected: {_show(expected)}", f"got:      {_show(actual)}"),
        rfc=rfc,
        hint=hint,
    )


def _item_diff(
    actual: tuple[object, ...], expected: tuple[object, ...], names: tuple[str, ...]
) -> tuple[str, ...]:
    """One paragraph per differing item of two tuples of the same length."""
    lines: list[str] = []
    for index, (got, wanted) in enumerate(zip(actual, expected, strict=True)):
        if _same_type(got, wanted) and got == wanted:
            continue
        label = f"item {index}" + (f" ({names[index]})" if index < len(names) else "")
        if isinstance(got, bytes | bytearray) and isinstance(wanted, bytes | bytearray):
            lines.append(f"{label}: the bytes differ")
            lines += [f"  {line}" for line in hex_diff(bytes(got), bytes(wanted)).splitlines()]
        else:
            lines += [
                f"{label}: expected {_show(wanted)}",
                f"{' ' * len(label)}       got {_show(got)}",
            ]
    return tuple(lines)


def true(
    condition: object, *, what: str | None = None, rfc: str | None = None, hint: str | None = None
) -> None:
    """Check that ``condition`` holds; ``what`` states the rule it stands for.

    Raises:
        CheckFailed: ``condition`` is false.
    """
    __tracebackhide__ = True
    what, rfc, hint = _context(what, rfc, hint)
    if not condition:
        raise fail(what, "not the case", rfc=rfc, hint=hint)


@contextmanager
def raises(
    exc_type: type[BaseException] | tuple[type[BaseException], ...],
    *,
    code: int | None = None,
    what: str | None = None,
    rfc: str | None = None,
    hint: str | None = None,
) -> Iterator[None]:
    """Check that the block raises ``exc_type`` (with close code ``code``).

    Example::

        with check.raises(ValueError, what="parse_close(b'\\x03')", rfc="5.5.1"):
            parse_close(b"\\x03")

    Args:
        exc_type: The exception class (or classes) the RFC's rule calls for.
        code: If given, the ``code`` attribute the exception must carry, as
            :class:`wslab.errors.ProtocolError` does (the close code, 7.4.1).
        what: What the block does, for the message.
        rfc: The section with the rule.
        hint: A suggestion for the fix, shown on failure.

    Raises:
        CheckFailed: Nothing was raised, something else was, or the code is wrong.
    """
    __tracebackhide__ = True
    what, rfc, hint = _context(what, rfc, hint)
    test_file = _entry_file()
    expected = _exc_name(exc_type) + (f" with close code {code}" if code is not None else "")
    try:
        yield
    except exc_type as exc:
        if code is not None and getattr(exc, "code", None) != code:
            raise fail(
                what,
                f"raised {type(exc).__name__} with close code {getattr(exc, 'code', None)}",
                lines=(f"expected: {expected}",),
                rfc=rfc,
                hint=hint,
            ) from exc
        return
    except NotImplementedError:
        raise fail(
            what,
            "not written yet: your function still raises NotImplementedError",
            cls=NotImplementedYet,
        ) from None
    except AssertionError:
        raise
    except Exception as exc:
        error = fail(
            what,
            f"raised {type(exc).__name__}: {exc}",
            lines=(f"expected: {expected}",),
            rfc=rfc,
            hint=hint,
        )
        error.student_tb = _student_tb(exc, test_file)
        raise error from exc
    raise fail(
        what,
        "returned normally",
        lines=(f"expected it to raise {expected}",),
        rfc=rfc,
        hint=hint,
    )


# -- own work --------------------------------------------------------------------


def soon(
    condition: Callable[[], object],
    *,
    what: str,
    timeout: float | None = None,
    rfc: str | None = None,
    hint: str | None = None,
) -> None:
    """Check that ``condition()`` becomes true within ``timeout`` seconds (polled).

    For what a server does on its own time: a handler that returns, a slow
    client that gets dropped.

    Raises:
        CheckFailed: It did not.
    """
    __tracebackhide__ = True
    timeout = DEFAULT_TIMEOUT if timeout is None else timeout
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise fail(what, f"not the case within {timeout:g} s", rfc=rfc, hint=hint)
        time.sleep(0.01)


def own_work(fn: Callable[..., Any], *, library: str = "wslab") -> None:
    """Check that a student's function does not call the library it re-implements.

    Exercises ask students to write what wslab already does; the tests compare
    their result with wslab's as the reference, so a function that simply calls
    wslab would pass without teaching anything. This looks at the global
    names, imports, module names in strings (``importlib.import_module("wslab.x")``,
    ``sys.modules[...]``) and default arguments that the function (and the
    helper functions it calls from the same notebook) uses, and fails if one of
    them comes from ``library``.

    It is an honour-code check, not a sandbox: code determined to hide its use
    of wslab (a module name built at run time, say) gets past it.

    Raises:
        CheckFailed: The function uses ``library``.
    """
    __tracebackhide__ = True
    name = getattr(fn, "__name__", repr(fn))
    for function, code in _functions(fn):
        namespace: dict[str, Any] = getattr(function, "__globals__", {})
        # (what the student wrote, where it comes from) for every way in.
        uses: list[tuple[str, object]] = []
        for used in _global_names(code):
            uses += [(used, used), (used, _origin(namespace.get(used)))]
        defaults = [*(getattr(function, "__defaults__", None) or ())]
        defaults += (getattr(function, "__kwdefaults__", None) or {}).values()
        uses += [(repr(value), _origin(value)) for value in defaults]
        uses += [(f"the module name {text!r}", text) for text in _strings(code)]
        for used, where in uses:
            if _from_library(where, library):
                raise fail(
                    name,
                    f"uses {used}" + ("" if used == where else f" (from {where})"),
                    lines=(
                        "This exercise is about writing it yourself; the tests use",
                        f"{library} only as the reference to compare your answer with.",
                    ),
                    hint="use the standard library (hashlib, base64, struct) and, in a "
                    "handler, the connection object `ws` your handler is given.",
                )


def _functions(fn: Callable[..., Any]) -> Iterator[tuple[Any, CodeType]]:
    """``fn`` and the helper functions it calls from its own module (the notebook)."""
    seen: set[CodeType] = set()
    todo: list[Any] = [fn]
    while todo:
        function = todo.pop()
        code = getattr(function, "__code__", None)
        if not isinstance(code, CodeType) or code in seen:
            continue
        seen.add(code)
        yield function, code
        namespace: dict[str, Any] = getattr(function, "__globals__", {})
        for used in _global_names(code):
            value = namespace.get(used)
            if inspect.isfunction(value) and value.__module__ == function.__module__:
                todo.append(value)


def _origin(value: object) -> str | None:
    if isinstance(value, ModuleType):
        return value.__name__
    module = getattr(value, "__module__", None)
    if module is None and not isinstance(value, type):
        module = getattr(type(value), "__module__", None)
    return module if isinstance(module, str) else None


def _from_library(name: object, library: str) -> bool:
    return isinstance(name, str) and (name == library or name.startswith(library + "."))


# -- hex views -------------------------------------------------------------------


def hex_diff(actual: bytes, expected: bytes, *, window: int = HEX_WINDOW) -> str:
    """Show two byte strings in hex, one above the other, marking the first difference.

    Long values show ``window`` bytes around the first difference, with their
    offset, so that a 64 KiB payload still fits in a failure message.
    """
    common = min(len(actual), len(expected))
    first = next((i for i in range(common) if actual[i] != expected[i]), common)
    start = max(0, min(first - window // 2, max(len(actual), len(expected)) - window))
    end = start + window

    def row(data: bytes) -> str:
        shown = data[start:end].hex(" ")
        return ("… " if start else "") + shown + (" …" if len(data) > end else "")

    width = max(len(row(expected)), len(row(actual)))
    lines = [
        f"expected: {row(expected):<{width}}  ({_count(len(expected))})",
        f"got:      {row(actual):<{width}}  ({_count(len(actual))})",
    ]
    caret = 10 + (2 if start else 0) + 3 * (first - start)
    lines.append(" " * caret + "^^ " + _first_difference(actual, expected, first))
    return "\n".join(lines)


# -- the server exercises: a private grading server and real clients -------------


@dataclass
class HandlerError:
    """An exception a student's handler raised, for one client's connection."""

    exception: BaseException
    client: str

    def describe(self) -> tuple[str, ...]:
        """What to tell the student: the exception and the student's lines."""
        exc = self.exception
        shown = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        head = f"your handler raised {shown} ({self.client}'s connection)"
        return (head, *(f"  {line}" for line in _brief_traceback(exc)))


#: Quiet logging for grading servers: what matters reaches the student as a failure.
_SERVER_LOG = logging.getLogger("wslab.check.server")
_SERVER_LOG.addHandler(logging.NullHandler())
_SERVER_LOG.propagate = False
#: Seconds a grading server may take to start or stop.
_START_TIMEOUT = 10.0


class GradingServer:
    """A student's handler served on its own event loop, thread and free port.

    Not ``wslab.serve``: a handler that blocks this loop (``time.sleep``, a
    loop without ``await``) or never returns only spoils this server, not the
    next part's, and every exception the handler raises is kept to show the
    student. Use it through :func:`serving`.

    Attributes:
        handler_name: The handler's name, for messages.
        errors: Exceptions the handler raised, in order.
        blocked: Whether the handler was found blocking the loop.
        closes: The close code the server sent to each grading client (by its
            name), recorded when the handler returns; None if the connection
            ended without one (aborted).
    """

    def __init__(
        self,
        handler: Callable[[ServerConnection], Any],
        *,
        process_request: Callable[[ServerConnection, Request], Response | None] | None = None,
        max_size: int = 2**20,
        send_buffer: int | None = None,
    ) -> None:
        self.handler_name: str = getattr(handler, "__name__", "handler")
        self.errors: list[HandlerError] = []
        self.blocked = False
        self.closes: dict[str, int | None] = {}
        self._handler = handler
        self._process_request = process_request
        self._max_size = max_size
        self._send_buffer = send_buffer
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"wslab-check-{self.handler_name}", daemon=True
        )
        self._thread.start()
        self._server: WSServer | None = None
        self.port: int = self._run(self._start())

    @property
    def url(self) -> str:
        """The WebSocket URL of the server, ``ws://127.0.0.1:PORT/chat``."""
        return f"ws://127.0.0.1:{self.port}/chat"

    def responsive(self, timeout: float = 1.0) -> bool:
        """Whether the server's loop runs callbacks (a blocking handler stops it)."""
        answered = threading.Event()
        try:
            self._loop.call_soon_threadsafe(answered.set)
        except RuntimeError:
            return False  # The loop is closed.
        return answered.wait(timeout)

    def stop(self) -> None:
        """Close every connection and the server; interrupt a handler that blocks the loop."""
        if not self._thread.is_alive():
            return
        if self.blocked or not self.responsive():
            self.blocked = True
            # A busy loop gets an exception at its next bytecode; time.sleep()
            # only when it returns. Either way this server's thread is abandoned.
            _raise_in_thread(self._thread, _LoopBlocked)
            if not self.responsive(0.5):
                self._loop.call_soon_threadsafe(self._loop.stop)
                return
        try:
            self._run(self._close())
        except Exception:
            pass  # Closing politely failed; stopping the loop below still frees the port.
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(2.0)
        if not self._thread.is_alive():
            self._loop.close()

    def __enter__(self) -> GradingServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<GradingServer {self.handler_name} on {self.url}>"

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(_START_TIMEOUT)

    async def _start(self) -> int:
        from websockets.asyncio.server import serve

        listener = socket.create_server(("127.0.0.1", 0))
        if self._send_buffer is not None:
            # Accepted connections inherit it: a client that stops reading
            # fills a small buffer soon, whatever the system's defaults.
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self._send_buffer)
        self._server = await serve(
            self._handle,
            sock=listener,
            write_limit=self._send_buffer or 2**15,
            process_request=self._guard if self._process_request else None,
            compression=None,
            max_size=self._max_size,
            ping_interval=None,
            close_timeout=2,
            logger=_SERVER_LOG,
        )
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
            await asyncio.wait_for(self._server.wait_closed(), 5)

    async def _handle(self, ws: ServerConnection) -> None:
        try:
            await self._handler(ws)
        except Exception as exc:
            if not _ended_by_peer(exc):
                self.errors.append(HandlerError(exc, _client_name(ws)))
                code, reason = 1011, f"handler error: {type(exc).__name__}"
                try:
                    await ws.close(code, reason)
                except Exception:
                    pass  # The connection is already gone.
        finally:
            # What websockets does when a handler returns; then the close sent is known.
            await ws.close()
            sent = ws.protocol.close_sent
            self.closes[_client_name(ws)] = sent.code if sent is not None else None

    def _guard(self, ws: ServerConnection, request: Request) -> Response | None:
        assert self._process_request is not None
        try:
            return self._process_request(ws, request)
        except Exception as exc:
            self.errors.append(HandlerError(exc, _client_name(ws, request)))
            return ws.respond(http.HTTPStatus.INTERNAL_SERVER_ERROR, "the check raised\n")


@contextmanager
def serving(
    handler: Callable[..., Any],
    *,
    process_request: Callable[..., Any] | None = None,
    max_size: int = 2**20,
    send_buffer: int | None = None,
) -> Iterator[GradingServer]:
    """Serve ``handler`` on a private grading server; stop it afterwards.

    Connections that earlier parts left in the handler's module-level
    containers (a ``clients`` dictionary, a set, a list) are taken out before
    the server starts and after it stops, so that one part's mistakes do not
    fail the next.

    Args:
        handler: The student's ``async def handler(ws)``.
        process_request: Called with ``(ws, request)`` before the handshake is
            answered, as the websockets library's ``process_request``: return
            ``None`` to accept, or ``ws.respond(status, text)`` to refuse.
        max_size: The largest message accepted, in bytes.
        send_buffer: A small socket send buffer (and websockets write limit), in
            bytes, so that a client that stops reading blocks the server's
            sends soon (the slow-consumer exercise).

    Yields:
        The running :class:`GradingServer`.
    """
    __tracebackhide__ = True
    if not inspect.iscoroutinefunction(handler):
        raise fail(
            getattr(handler, "__name__", repr(handler)),
            "a handler must be a coroutine function",
            lines=("Write it as `async def handler(ws): ...`, with `await ws.send(...)`.",),
        )
    _forget_connections(handler)
    server = GradingServer(
        handler, process_request=process_request, max_size=max_size, send_buffer=send_buffer
    )
    _servers.append(server)
    try:
        yield server
    finally:
        server.stop()
        _forget_connections(handler)


class Peer:
    """A grading client: a real WebSocket client whose waits all time out.

    It is the websockets library's sync client, so it checks the student's
    server with an independent implementation of RFC 6455. Make one with
    :func:`connect`.

    Attributes:
        name: A label for messages, e.g. ``"alice"``.
        timeout: How long :meth:`expect` waits for a message, in seconds.
    """

    def __init__(
        self,
        connection: ClientConnection,
        name: str,
        timeout: float,
        server: GradingServer | None = None,
    ) -> None:
        self._connection = connection
        self.name = name
        self.timeout = timeout
        self._server = server

    def send(self, message: str | bytes) -> None:
        """Send a text (``str``) or binary (``bytes``) message to the server."""
        __tracebackhide__ = True
        from websockets.exceptions import ConnectionClosed

        try:
            self._connection.send(message)
        except ConnectionClosed as exc:
            raise self._closed(f"sending {_show(message)}", exc) from None

    def recv(
        self, *, what: str, timeout: float | None = None, rfc: str | None = None
    ) -> str | bytes:
        """Return the next message from the server.

        Raises:
            CheckFailed: Nothing arrived within ``timeout`` seconds, or the
                server closed the connection.
        """
        __tracebackhide__ = True
        from websockets.exceptions import ConnectionClosed

        timeout = self.timeout if timeout is None else timeout
        try:
            return self._connection.recv(timeout=timeout)
        except TimeoutError:
            raise self._silent(what, timeout, rfc) from None
        except ConnectionClosed as exc:
            raise self._closed(what, exc) from None

    def expect(
        self,
        expected: str | bytes,
        *,
        what: str,
        rfc: str | None = None,
        hint: str | None = None,
        timeout: float | None = None,
    ) -> None:
        """Check that the next message from the server is ``expected``.

        A text message must arrive as text and a binary one as binary
        (opcode 0x1 or 0x2, section 5.6), so ``"hi"`` and ``b"hi"`` differ.
        """
        __tracebackhide__ = True
        message = self.recv(what=what, timeout=timeout, rfc=rfc)
        equal(message, expected, what=what, rfc=rfc, hint=hint)

    def expect_close(
        self,
        *,
        code: int,
        what: str,
        rfc: str | None = None,
        hint: str | None = None,
        timeout: float | None = None,
    ) -> None:
        """Check that the server closes this connection with ``code``; skip messages before."""
        __tracebackhide__ = True
        from websockets.exceptions import ConnectionClosed

        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise fail(what, f"{self.name}'s connection is still open", rfc=rfc, hint=hint)
                self._connection.recv(timeout=left)
        except TimeoutError:
            raise fail(
                what, f"{self.name}'s connection is still open", rfc=rfc, hint=hint
            ) from None
        except ConnectionClosed as exc:
            got = getattr(exc.rcvd, "code", None)
            if got != code:
                problem = f"closed with {_code(got)}, expected {code}"
                raise fail(what, problem, lines=self._errors(), rfc=rfc, hint=hint) from None

    def close(self) -> None:
        """Close the connection (code 1000) and wait for the server's answer."""
        if self._server is not None and self._server.blocked:
            self._connection.close_timeout = 0.1  # Nobody will answer.
        self._connection.close()

    @property
    def connection(self) -> ClientConnection:
        """The websockets client connection, for checks this class does not cover."""
        return self._connection

    def __enter__(self) -> Peer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Peer {self.name}>"

    def _errors(self) -> tuple[str, ...]:
        errors = self._server.errors if self._server is not None else []
        return tuple(line for error in errors[-2:] for line in error.describe())

    def _silent(self, what: str, timeout: float, rfc: str | None) -> CheckFailed:
        if self._server is not None and not self._server.responsive():
            self._server.blocked = True
            problem = f"{self.name} got no message within {timeout:g} s"
            return _blocked(what, problem, rfc or "6.1")
        if self._errors_of(NotImplementedError):
            return self._not_written()
        problem = f"{self.name} got no message within {timeout:g} s"
        if self._errors():
            return self._handler_failed(what, problem)
        hint = "does your handler `await ws.send(...)` for every message it should send?"
        return fail(what, problem, hint=hint, rfc=rfc or "6.1")

    def _handler_failed(self, what: str, problem: str) -> CheckFailed:
        """The failure when the handler raised: its exceptions and lines, and what to do."""
        from websockets.exceptions import ConnectionClosed

        if self._errors_of(ConnectionClosed):
            hint = (
                "sending to a client that has already left raises ConnectionClosed: "
                "catch it around that send and go on with the others."
            )
            return fail(what, problem, lines=self._errors(), hint=hint, rfc="7.1.4")
        hint = "the lines above are your handler's, innermost last."
        return fail(what, problem, lines=self._errors(), hint=hint, rfc="7.4.1")

    def _errors_of(self, kind: type[BaseException]) -> list[HandlerError]:
        errors = self._server.errors if self._server is not None else []
        return [error for error in errors if isinstance(error.exception, kind)]

    def _not_written(self) -> CheckFailed:
        name = self._server.handler_name if self._server is not None else "your handler"
        for error in self._errors_of(NotImplementedError):
            frames = traceback.extract_tb(error.exception.__traceback__)
            students = [frame.name for frame in frames if _is_student_file(frame.filename)]
            name = students[-1] if students else name  # The function that is not written.
        return fail(name, "not written yet", lines=_NOT_WRITTEN, cls=NotImplementedYet)

    def _closed(self, what: str, exc: Exception) -> CheckFailed:
        rcvd = getattr(exc, "rcvd", None)
        code = getattr(rcvd, "code", None)
        shown = f"code {code} {getattr(rcvd, 'reason', '')!r}" if code else "no close frame"
        problem = f"the server closed {self.name}'s connection ({shown})"
        if self._errors_of(NotImplementedError):
            return self._not_written()
        if self._errors():
            return self._handler_failed(what, problem)
        if code is None:
            hint = "the connection dropped without a close frame: did the server stop?"
        else:
            hint = "a handler keeps the connection open until it returns: did yours return early?"
        return fail(what, problem, hint=hint, rfc="7.1.1")


def connect(
    server: GradingServer | str,
    *,
    name: str = "client",
    query: str = "",
    timeout: float | None = None,
    origin: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Peer:
    """Open a grading client to ``server`` (a :class:`GradingServer` or a ``ws://`` URL).

    Args:
        server: What :func:`serving` yielded, or a URL.
        name: A label for failure messages, e.g. ``"alice"``.
        query: A query string for the URL, e.g. ``"name=alice"`` (the chat
            naming convention of :mod:`wslab.handlers`).
        timeout: Limit for the opening handshake and for each :meth:`Peer.expect`
            (:data:`DEFAULT_TIMEOUT` if None).
        origin: An ``Origin`` header, as a browser sends (section 10.2).
        headers: More request headers.

    Raises:
        CheckFailed: The handshake failed or timed out.
    """
    __tracebackhide__ = True
    from websockets.sync.client import connect as ws_connect

    timeout = DEFAULT_TIMEOUT if timeout is None else timeout
    url = _with_query(server if isinstance(server, str) else server.url, query)
    try:
        # proxy=None: the server under test is local; a proxy from the
        # environment (HTTPS_PROXY, ...) must not capture the connection.
        connection = ws_connect(
            url,
            open_timeout=timeout,
            close_timeout=timeout,
            proxy=None,
            origin=origin,  # type: ignore[arg-type]
            additional_headers={**(headers or {}), _CLIENT_HEADER: name},
            compression=None,
            ping_interval=None,
        )
    except Exception as exc:
        raise fail(
            f"connecting {name} to {url}",
            f"{type(exc).__name__}: {exc}",
            lines=() if isinstance(server, str) else _describe_all(server.errors),
            rfc="4.1",
        ) from None
    # The Peer owns the connection and closes it (Peer is the context manager);
    # entering it tells websockets so, which 17.1 and later expect.
    connection.__enter__()
    return Peer(connection, name, timeout, None if isinstance(server, str) else server)


def handshake_status(
    server: GradingServer | str,
    *,
    query: str = "",
    origin: str | None = None,
    headers: Mapping[str, str] | None = None,
    name: str = "client",
    timeout: float | None = None,
) -> int:
    """Try an opening handshake; return the HTTP status: 101 if accepted, else the refusal's.

    The connection, if opened, is closed at once. Used to grade checks a server
    makes before it accepts (Origin, tokens: sections 4.2.2 and 10).
    """
    __tracebackhide__ = True
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect as ws_connect

    timeout = DEFAULT_TIMEOUT if timeout is None else timeout
    url = _with_query(server if isinstance(server, str) else server.url, query)
    known = [] if isinstance(server, str) else list(server.errors)
    try:
        connection = ws_connect(
            url,
            open_timeout=timeout,
            close_timeout=timeout,
            proxy=None,
            origin=origin,  # type: ignore[arg-type]
            additional_headers={**(headers or {}), _CLIENT_HEADER: name},
            compression=None,
        )
    except InvalidStatus as exc:
        if not isinstance(server, str) and len(server.errors) > len(known):
            raise _process_request_failed(server.errors[len(known) :]) from None
        return int(exc.response.status_code)
    except Exception as exc:
        raise fail(
            f"a handshake from {name} to {url}",
            f"{type(exc).__name__}: {exc}",
            lines=() if isinstance(server, str) else _describe_all(server.errors),
            rfc="4.1",
        ) from None
    with connection:  # websockets 17 wants its connections used as context managers.
        pass
    return 101


def _process_request_failed(errors: list[HandlerError]) -> CheckFailed:
    """The failure for exceptions raised by a student's ``process_request``."""
    if any(isinstance(error.exception, NotImplementedError) for error in errors):
        return fail(
            "process_request", "not written yet", lines=_NOT_WRITTEN, cls=NotImplementedYet
        )
    return fail(
        "process_request",
        "it raised an exception, so the server answered 500",
        lines=_describe_all(errors),
        hint="the lines above are your function's, innermost last.",
        rfc="4.2.2",
    )


class Stalled:
    """A client that completes the opening handshake, then reads nothing: a slow consumer.

    It is a plain socket with a small receive buffer, so the server's sends to
    it back up soon. Make one with :func:`stalled`.

    Attributes:
        name: A label for messages.
    """

    def __init__(self, sock: socket.socket, name: str, leftover: bytes) -> None:
        self._sock = sock
        self.name = name
        self._leftover = leftover

    def close_code(self, timeout: float | None = None) -> int | None:
        """Read everything the server sent, up to its close frame; return its code.

        None if the connection ended without a close frame, or nothing came
        within ``timeout`` seconds.
        """
        from .closing import parse_close
        from .frames import FrameDecoder, Opcode, Side

        decoder = FrameDecoder(Side.CLIENT)
        data = self._leftover
        self._leftover = b""
        self._sock.settimeout(DEFAULT_TIMEOUT if timeout is None else timeout)
        while True:
            for frame in decoder.feed(data):
                if frame.opcode == Opcode.CLOSE:
                    return parse_close(frame.payload).code
            try:
                data = self._sock.recv(2**16)
            except OSError:
                return None
            if not data:
                return None

    def close(self) -> None:
        """Drop the connection."""
        self._sock.close()

    def __enter__(self) -> Stalled:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Stalled {self.name}>"


def stalled(server: GradingServer, *, name: str = "slow", query: str = "") -> Stalled:
    """Connect a client that reads nothing after the handshake (see :class:`Stalled`).

    Raises:
        CheckFailed: The handshake failed.
    """
    __tracebackhide__ = True
    from urllib.parse import urlsplit

    from .handshake import Response, client_request, new_key, split_head

    url = urlsplit(_with_query(server.url, query))
    host = f"127.0.0.1:{server.port}"
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(DEFAULT_TIMEOUT)
    try:
        sock.connect(("127.0.0.1", server.port))
        request = client_request(
            host, url.path + (f"?{url.query}" if url.query else ""), key=new_key()
        )
        request.headers.add(_CLIENT_HEADER, name)
        sock.sendall(request.serialize())
        buffer = b""
        while (parts := split_head(buffer)) is None:
            chunk = sock.recv(4096)
            if not chunk:
                raise ConnectionError("the server closed the connection during the handshake")
            buffer += chunk
        head, rest = parts
        status = Response.parse(head).status
        if status != 101:
            raise ConnectionError(f"the server answered {status}")
    except Exception as exc:
        sock.close()
        raise fail(f"connecting {name} to {server.url}", f"{type(exc).__name__}: {exc}",
                   rfc="4.1") from None  # fmt: skip
    return Stalled(sock, name, rest)


def uses_name(fn: Callable[..., Any], name: str) -> bool:
    """Whether ``fn`` (or a helper it calls from its notebook) uses ``name``.

    A global, an attribute (``hmac.compare_digest``) or an import all count.
    For checks of *how* something is done, e.g. a constant-time comparison.
    """
    for _function, code in _functions(fn):
        for instruction in _instructions(code):
            if instruction.opname in _NAME_OPS and instruction.argval == name:
                return True
    return False


def conformance(
    server: GradingServer,
    *,
    reference: Callable[..., Any],
    cases: list[str] | str | None = None,
    what: str,
    hint: str | None = None,
    timeout: float = 1.0,
    shown: int = 3,
) -> None:
    """Run wslab's conformance checker on the student's echo server and on a reference.

    The handler only decides what is echoed; the framing, UTF-8 checks and
    closing are the websockets library's. So a case fails the student only if
    it passes with ``reference``, a correct echo on the same kind of server.

    Args:
        server: The student's echo server, from :func:`serving`.
        reference: A correct echo handler.
        cases: Cases, chapters or categories, as :func:`wslab.conformance.run` takes.
        what: What is checked, for the message.
        hint: A suggestion for the fix.
        timeout: Seconds the server gets to react in each case.
        shown: How many failing cases the message describes.

    Raises:
        CheckFailed: Some case fails that the reference passes.
    """
    __tracebackhide__ = True
    from . import conformance as checker

    # First one echo through a grading client: a handler that does not echo, or
    # blocks its loop, gets the usual explanation instead of a hundred timeouts.
    with connect(server, name="the checker") as probe:
        probe.send("probe")
        probe.recv(what=f"{what}: the echo of a first message", rfc="5.6")
    theirs = checker.run(server.url, cases, timeout=timeout)
    with serving(reference) as correct:
        ours = checker.run(correct.url, cases, timeout=timeout)
    passing = {result.id for result in ours if result.result != checker.Grade.FAILED}
    broken = [result for result in theirs.failed if result.id in passing]
    if not broken:
        return
    lines: list[str] = []
    for result in broken[:shown]:
        case = result.case
        lines += [
            f"case {case.id} ({case.category}): {case.description}",
            f"  expected: {case.expect}",
            f"  happened: {result.what}",
        ]
    if len(broken) > shown:
        lines.append(f"... and {len(broken) - shown} more: print(conformance.run(server.url)).")
    section = str(getattr(broken[0].case, "section", "5.6")).split(",")[0].strip()
    raise fail(
        what,
        f"{len(broken)} of {len(theirs)} cases fail that a correct echo passes",
        lines=tuple(lines),
        rfc=section if section[:1].isdigit() else "5.6",
        hint=hint,
    )


# -- helpers ---------------------------------------------------------------------

#: The request header that tells a grading server which grading client connects.
_CLIENT_HEADER = "X-Wslab-Check-Client"


def _with_query(url: str, query: str) -> str:
    if query:
        url += ("&" if "?" in url else "?") + query
    return url


def _client_name(ws: Any, request: Any = None) -> str:
    request = request if request is not None else getattr(ws, "request", None)
    headers = getattr(request, "headers", None)
    name = headers.get(_CLIENT_HEADER) if headers is not None else None
    return str(name) if name else "a client"


def _describe_all(errors: list[HandlerError]) -> tuple[str, ...]:
    return tuple(line for error in errors[-2:] for line in error.describe())


def _code(code: int | None) -> str:
    return "no close frame (1006)" if code is None else f"code {code}"


def _blocked(what: str, problem: str, rfc: str | None) -> CheckFailed:
    """The failure of a handler that blocks its server's event loop."""
    return fail(
        what,
        f"{problem}: your handler blocks the server's event loop",
        lines=(
            "While a handler runs code that does not `await` (time.sleep(), a loop",
            "without await, a slow computation), the server cannot read or send",
            "anything, for any client.",
        ),
        hint="wait with `await asyncio.sleep(...)`, never time.sleep(), in a handler.",
        rfc=rfc,
    )


def _ended_by_peer(exc: BaseException) -> bool:
    """Whether ``exc`` only says that the handler's client went away while it waited for a message.

    ``async for message in ws`` raises ConnectionClosedError when the connection
    ends without a proper closing handshake: the handler did nothing wrong. A
    ConnectionClosed from ``send`` is another matter (sending to a departed client).
    """
    from websockets.exceptions import ConnectionClosed

    if not isinstance(exc, ConnectionClosed):
        return False
    last = traceback.extract_tb(exc.__traceback__)
    return any(frame.name in ("__aiter__", "recv") for frame in last) and not any(
        frame.name == "send" for frame in last
    )


def _raise_in_thread(thread: threading.Thread, exc_type: type[BaseException]) -> None:
    """Raise ``exc_type`` in ``thread`` at its next Python instruction."""
    if thread.ident is not None:
        ctypes.pythonapi.PyThreadState_SetAsyncExc(
            ctypes.c_ulong(thread.ident), ctypes.py_object(exc_type)
        )


def _forget_connections(handler: Callable[..., Any]) -> None:
    """Remove WebSocket connections from the containers the handler's code uses."""
    from websockets.asyncio.connection import Connection

    def stale(item: object) -> bool:
        return isinstance(item, Connection)

    for value in _globals_used(handler):
        if isinstance(value, dict):
            for key in [k for k, v in value.items() if stale(k) or stale(v)]:
                del value[key]
        elif isinstance(value, set):
            value.difference_update([item for item in value if stale(item)])
        elif isinstance(value, list):
            value[:] = [item for item in value if not stale(item)]


def _globals_used(fn: Callable[..., Any]) -> Iterator[object]:
    """The global values a function and the helpers it calls from its module use."""
    for function, code in _functions(fn):
        namespace: dict[str, Any] = getattr(function, "__globals__", {})
        for used in _global_names(code):
            yield namespace.get(used)


def _library_dirs() -> tuple[str, ...]:
    """Directories of Python itself, installed packages and wslab: not the student's code."""
    paths = sysconfig.get_paths()
    dirs = {paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib") if key in paths}
    dirs.add(os.path.dirname(os.path.abspath(__file__)))
    return tuple(os.path.realpath(d) + os.sep for d in dirs)


_LIBRARY_DIRS = _library_dirs()


def _is_student_file(filename: str) -> bool:
    """Whether code from ``filename`` is the notebook's (cells, the student's modules)."""
    if filename.startswith("<frozen") or filename.startswith("<string>"):
        return False
    if filename.startswith("<"):
        return True  # Code compiled from a string, as notebook cells are outside IPython.
    return not os.path.realpath(filename).startswith(_LIBRARY_DIRS)


def _entry_file() -> str | None:
    """The file of the code that entered the check: the test cell."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__") in (__name__, "contextlib"):
        frame = frame.f_back
    return frame.f_code.co_filename if frame is not None else None


def _student_tb(exc: BaseException, test_file: str | None) -> TracebackType | None:
    """The traceback of ``exc`` from the first line of the student's own code on.

    The test cell (``test_file``) and the frames before the student's first one
    (this module, contextlib) are left out, and so are this module's frames
    after it (the time limit's signal handler). None if the student's code is
    not in the traceback: a library (wslab, Python's own modules) raised.
    """
    entries: list[TracebackType] = []
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if entries or (filename != test_file and _is_student_file(filename)):
            if tb.tb_frame.f_globals.get("__name__") != __name__:
                entries.append(tb)
        tb = tb.tb_next
    chain: TracebackType | None = None
    for entry in reversed(entries):
        chain = TracebackType(chain, entry.tb_frame, entry.tb_lasti, entry.tb_lineno)
    return chain


def _format_exception(exc: BaseException, tb: TracebackType | None) -> list[str]:
    """Format a traceback the way IPython would (``Cell In[3], line 4``), if it runs."""
    try:
        from IPython import get_ipython

        shell = get_ipython()  # type: ignore[no-untyped-call]
        if shell is not None:
            return list(shell.InteractiveTB.structured_traceback(type(exc), exc, tb))
    except Exception:
        pass  # Not in IPython, or its formatter failed: plain Python formatting will do.
    return [line.rstrip("\n") for line in traceback.format_exception(type(exc), exc, tb)]


def _brief_traceback(exc: BaseException, limit: int = 3) -> list[str]:
    """The student's lines in a traceback, innermost last, one line each."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if _is_student_file(f.filename)]
    lines = []
    for frame in frames[-limit:]:
        source = frame.line or linecache.getline(frame.filename, frame.lineno or 0).strip()
        lines.append(f"{_where(frame.filename)}, line {frame.lineno}, in {frame.name}: {source}")
    return lines


def _where(filename: str) -> str:
    """``Cell In[6]`` for a notebook cell, the file name otherwise."""
    try:
        from IPython import get_ipython

        shell = get_ipython()  # type: ignore[no-untyped-call]
        if shell is not None:
            named = shell.compile.format_code_name(filename)
            if named:
                return " ".join(named)
    except Exception:
        pass
    return filename


def _global_names(code: CodeType) -> Iterator[str]:
    """The global names and imported modules used by ``code`` and its inner functions."""
    for instruction in _instructions(code):
        if instruction.opname in ("LOAD_GLOBAL", "LOAD_NAME", "IMPORT_NAME"):
            yield str(instruction.argval)


#: The instructions that load a name: globals, attributes, methods, imports.
_NAME_OPS = frozenset(
    {"LOAD_GLOBAL", "LOAD_NAME", "LOAD_ATTR", "LOAD_METHOD", "IMPORT_NAME", "IMPORT_FROM"}
)


def _instructions(code: CodeType) -> Iterator[dis.Instruction]:
    """The instructions of ``code`` and of the functions defined in it."""
    yield from dis.get_instructions(code)
    for const in code.co_consts:
        if isinstance(const, CodeType):
            yield from _instructions(const)


def _strings(code: CodeType) -> Iterator[str]:
    """The string constants of ``code`` and its inner functions."""
    for const in code.co_consts:
        if isinstance(const, str):
            yield const
        elif isinstance(const, CodeType):
            yield from _strings(const)


def _same_type(actual: object, expected: object) -> bool:
    """Whether the types match closely enough to compare (bytes ~ bytearray)."""
    byteslike = (bytes, bytearray)
    if isinstance(actual, byteslike) and isinstance(expected, byteslike):
        return True
    if isinstance(expected, bool) or isinstance(actual, bool):
        return isinstance(actual, bool) and isinstance(expected, bool)
    if isinstance(expected, int) and isinstance(actual, int):
        return True  # An IntEnum such as CloseCode.NORMAL_CLOSURE is an int.
    if isinstance(expected, float) and isinstance(actual, int | float):
        return True
    return type(actual) is type(expected) or (
        isinstance(actual, tuple | list) and isinstance(expected, tuple | list)
    )


def _type_hint(actual: object, expected: object) -> str | None:
    if isinstance(expected, bytes) and isinstance(actual, str):
        return "the wire carries bytes: encode text with .encode() (UTF-8)."
    if isinstance(expected, str) and isinstance(actual, bytes):
        return "decode bytes to text with .decode() (UTF-8, section 5.6)."
    if isinstance(expected, int) and isinstance(actual, str):
        return "convert with int(...) or read the number with struct.unpack."
    return None


def _a(value: object) -> str:
    """Name the type of ``value`` for a sentence: "bytes", "a str", "an int"."""
    name = type(value).__name__
    if value is None or name == "bytes":
        return "None" if value is None else "bytes"
    return f"an {name}" if name[0] in "aeiou" else f"a {name}"


def _show(value: object, limit: int = 200) -> str:
    """A repr that stays short: long values are cut in the middle."""
    text = repr(value)
    if isinstance(value, bytes | bytearray):
        text += f"  ({_count(len(value))})"
    if len(text) > limit:
        text = text[: limit // 2] + " … " + text[-limit // 4 :]
    return text


def _count(n: int) -> str:
    return f"{n} byte" if n == 1 else f"{n} bytes"


def _exc_name(exc_type: type[BaseException] | tuple[type[BaseException], ...]) -> str:
    if isinstance(exc_type, tuple):
        return " or ".join(t.__name__ for t in exc_type)
    return exc_type.__name__


def _first_difference(actual: bytes, expected: bytes, first: int) -> str:
    if first < min(len(actual), len(expected)):
        bits = actual[first] ^ expected[first]
        return f"first difference at byte {first} (bits {bits:08b} differ)"
    if len(actual) < len(expected):
        return f"yours ends at byte {first}: {_count(len(expected) - first)} missing"
    return f"yours has {_count(len(actual) - first)} too many, from byte {first} on"
