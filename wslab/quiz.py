"""The "check yourself" quizzes at the end of each lesson.

A lesson ships an answer *key* of short hashes rather than the answers, so the
answers are not given away by reading the notebook::

    answers = {"q1": None, "q2": None}          # the student fills these in
    wslab.quiz.check(answers, {"q1": "e2e22643adae", "q2": "a51146d38077"})

Answers are compared case-insensitively, after trimming spaces, so ``"GET"``,
``"get "`` and ``"Get"`` are the same answer; numbers compare by their text.
Authors make a key with :func:`key`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["Result", "check", "digest", "key"]


def digest(answer: object) -> str:
    """The 12-hex-digit hash that a key holds for ``answer``."""
    normal = str(answer).strip().lower()
    return hashlib.sha256(normal.encode()).hexdigest()[:12]


def key(**answers: object) -> dict[str, str]:
    """Make an answer key, for lesson authors: ``key(q1="GET", q2=101)``."""
    return {question: digest(answer) for question, answer in answers.items()}


@dataclass(frozen=True)
class Result:
    """How a quiz went: one line per question, and the score."""

    lines: tuple[str, ...]
    right: int
    total: int

    def __str__(self) -> str:
        return "\n".join([*self.lines, f"{self.right} of {self.total} right"])

    def __repr__(self) -> str:
        return str(self)


def check(answers: Mapping[str, object], answer_key: Mapping[str, str]) -> Result:
    """Check a student's ``answers`` against an answer key of hashes.

    Args:
        answers: Question name to answer; ``None`` means not answered yet.
        answer_key: Question name to :func:`digest` of the right answer.

    Returns:
        A :class:`Result`; in a notebook it shows as one line per question.
    """
    if not isinstance(answers, Mapping):
        raise TypeError(f"answers must be a dict such as {{'q1': 'GET'}}, got {answers!r}")
    lines, right = [], 0
    for question, expected in answer_key.items():
        answer = answers.get(question)
        if answer is None:
            lines.append(f"{question}: not answered yet")
        elif digest(answer) == expected:
            right += 1
            lines.append(f"{question}: right")
        else:
            lines.append(f"{question}: not quite; the lesson above has the answer")
    unknown = sorted(set(answers) - set(answer_key))
    if unknown:
        lines.append(f"(no such question: {', '.join(unknown)})")
    return Result(tuple(lines), right, len(answer_key))
