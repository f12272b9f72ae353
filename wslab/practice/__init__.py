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

Where the steps are: as data (:class:`~wslab.practice.judging.Step`), one
module per part of the course, as the course map of lesson 00 shows them:

* :mod:`wslab.practice.intro`: lessons 00 and 01;
* :mod:`wslab.practice.core`: lessons 02 to 04 (handshake, frames, closing);
* :mod:`wslab.practice.apps`: lessons 05 to 07 (chat, extensions, security);
* :mod:`wslab.practice.beyond`: lesson 08 (Server-Sent Events, polling);
* :mod:`wslab.practice.production`: lessons 09 to 11 (reconnecting,
  deploying, checking a server).

:mod:`wslab.practice.judging` has what a step is made of and the tools the
judges share. The worked solutions live in the steps and nowhere else: the
tests (``scripts/execute_notebooks.py --solved``) put each solution into its
your-turn cell and run the lesson again, so every solution is checked by the
same feedback the student gets.
"""

from __future__ import annotations

import html
import sys
from typing import Any, ClassVar

from . import apps, beyond, core, intro, production
from .judging import Namespace, Problem, Step, StudentCodeRaised

__all__ = ["STEPS", "Feedback", "Problem", "Step", "check", "solution", "step"]

#: Every your-turn step of the course, by name, in the order of the lessons.
STEPS: dict[str, Step] = {
    each.name: each for part in (intro, core, apps, beyond, production) for each in part.STEPS
}


class Feedback:
    """The feedback of :func:`check`; a notebook shows it as HTML, or as text.

    Attributes:
        step: The step it is about.
        status: ``"blank"``, ``"wrong"``, ``"error"`` or ``"right"``.
        message: What came out (or why it is right).
        hint: A hint, or "".
    """

    _ICONS: ClassVar[dict[str, str]] = {"blank": "✎", "wrong": "✖", "error": "✖", "right": "✔"}
    _TITLES: ClassVar[dict[str, str]] = {
        "blank": "Not yet",
        "wrong": "Not quite",
        "error": "Your code could not be checked",  # it raised, ran too long, or is no function
        "right": "Right",
    }
    _COLOURS: ClassVar[dict[str, str]] = {
        "blank": "#777777",
        "wrong": "#b26a00",
        "error": "#b3261e",
        "right": "#2e7d32",
    }

    def __init__(self, step: Step, status: str, message: str, hint: str = "") -> None:
        self.step = step
        self.status = status
        self.message = message
        self.hint = hint

    @classmethod
    def right_answer(cls, step: Step) -> Feedback:
        """The feedback a right answer to ``step`` gets."""
        return cls(step, "right", step.why)

    @property
    def right(self) -> bool:
        """Whether the answer is right."""
        return self.status == "right"

    def __repr__(self) -> str:
        lines = [f"{self._ICONS[self.status]} {self._TITLES[self.status]}: {self.message}"]
        if self.hint:
            lines.append(f"Hint: {self.hint}")
        lines.append(f"See {self.step.source}: {self.step.url}")
        lines.append(f'Worked solution: wslab.practice.solution("{self.step.name}")')
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        colour = self._COLOURS[self.status]
        hint = f"<div><b>Hint:</b> {_inline(self.hint)}</div>" if self.hint else ""
        return (
            f'<div class="wslab-feedback wslab-{self.status}" style="border-left: 4px solid '
            f'{colour}; padding: 4px 10px; margin: 2px 0">'
            f'<div style="color: {colour}"><b>{self._ICONS[self.status]} '
            f"{self._TITLES[self.status]}:</b> {_inline(self.message)}</div>{hint}"
            f'<div>See <a href="{html.escape(self.step.url)}" target="_blank">'
            f"{html.escape(self.step.source)}</a>.</div>"
            "<details><summary>Show a worked solution</summary>"
            f"<pre><code>{html.escape(self.step.solution)}</code></pre></details></div>"
        )


class Solution:
    """A worked solution, shown as code (what :func:`solution` returns)."""

    def __init__(self, step: Step) -> None:
        self.step = step

    def __repr__(self) -> str:
        return f"# A worked solution of {self.step.name}\n{self.step.solution}"

    def _repr_html_(self) -> str:
        return f"<pre><code>{html.escape(repr(self))}</code></pre>"


def _inline(text: str) -> str:
    """Escape text for HTML, showing `backquoted` parts as code."""
    parts = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def step(name: str) -> Step:
    """The your-turn step ``name``.

    Raises:
        KeyError: No such step; the message lists the steps there are.
    """
    try:
        return STEPS[name]
    except KeyError:
        raise KeyError(f"no your-turn step {name!r}; the steps are: {', '.join(STEPS)}") from None


def check(name: str, namespace: Namespace | None = None) -> Feedback:
    """Give feedback on the your-turn step ``name``.

    Args:
        name: The step's id, e.g. ``"02-accept"``.
        namespace: Where the student's names live; by default the caller's
            globals, which in a notebook are the notebook's variables.

    Returns:
        A :class:`Feedback`, shown as HTML in a notebook.
    """
    this = step(name)
    if namespace is None:
        namespace = sys._getframe(1).f_globals
    for each in this.names:
        if each not in namespace:
            return Feedback(
                this, "blank", f"`{each}` is not defined: run your cell above first", this.task
            )
        if namespace[each] is ...:
            return Feedback(this, "blank", f"`{each}` is still `...`", this.task)
        if _blank_function(namespace[each]):
            return Feedback(this, "blank", f"the body of `{each}` is still `...`", this.task)
    try:
        problem = this.judge(namespace)
    except StudentCodeRaised as error:
        return Feedback(this, "error", str(error), "fix it in your cell, run it, then this one")
    if problem is None:
        return Feedback.right_answer(this)
    return Feedback(this, "blank" if problem.blank else "wrong", problem.message, problem.hint)


def solution(name: str) -> Solution:
    """Show the worked solution of the your-turn step ``name``."""
    return Solution(step(name))


def _blank() -> None: ...


async def _async_blank() -> None: ...


def _blank_function(value: Any) -> bool:
    """Whether ``value`` is a function whose body is only ``...`` (or ``pass``)."""
    code = getattr(value, "__code__", None)
    blanks = (_blank.__code__.co_code, _async_blank.__code__.co_code)
    return code is not None and code.co_code in blanks
