"""The "check yourself" quizzes at the end of each lesson.

A lesson's quiz is two cells: the student's ``answers``, then the check::

    answers = {"q1": None, "q2": None}          # the student fills these in
    wslab.quiz.check(answers, "02")             # the key of lesson 02, kept here

A key holds short hashes of the right answers, not the answers, so that
reading the key gives nothing away; with each question comes a hint that
says why an answer is wrong and where the lesson explains it, and, for the
usual wrong answers, an explanation of that very mistake.

Equivalent spellings are the same answer (:func:`normal`): case, spaces,
hyphens and underscores do not count (``"SHA-1"``, ``"sha1"``; ``"long
polling"``, ``"long-polling"``), numbers compare by value in any base
(``"0xA"``, ``"10"``, ``10``), and yes/no answers accept ``True``/``False``.
Authors make a key with :func:`question` (or :func:`key` for bare hashes).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["LESSONS", "Question", "Result", "check", "digest", "key", "normal", "question"]

_YES = {"yes", "y", "true"}
_NO = {"no", "n", "false"}


def normal(answer: object) -> str:
    """The form an answer is compared in: equivalent spellings give the same text.

    >>> normal("SHA-1") == normal("sha1"), normal("0xA") == normal(10)
    (True, True)
    """
    text = str(answer).strip().strip("\"'`").strip().lower().rstrip(".")
    if text in _YES:
        return "yes"
    if text in _NO:
        return "no"
    try:  # 10, "10", "0xA", "0b1010" are one number
        return str(int(text.replace("_", ""), 0))
    except ValueError:
        pass
    return re.sub(r"[\s_\-]+", "", text)


def digest(answer: object) -> str:
    """The 12-hex-digit hash that a key holds for ``answer`` (after :func:`normal`)."""
    return hashlib.sha256(normal(answer).encode()).hexdigest()[:12]


def _old_digest(answer: object) -> str:
    """The hash of the first key format (trimmed, lower case), still accepted."""
    return hashlib.sha256(str(answer).strip().lower().encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Question:
    """One question of a key.

    Attributes:
        answers: Digests of the accepted answers.
        hint: Why an answer is wrong, and where the lesson explains it,
            without giving the answer away.
        wrong: Digests of usual wrong answers, each with its own explanation.
    """

    answers: tuple[str, ...]
    hint: str = "the lesson above has the answer"
    wrong: Mapping[str, str] = field(default_factory=dict)


def question(*answers: object, hint: str, wrong: Mapping[str, str] | None = None) -> Question:
    """Make a :class:`Question`, for lesson authors.

    Args:
        answers: Every accepted answer (spellings :func:`normal` does not
            merge, such as ``"none"`` and ``"no method"``).
        hint: Shown for any wrong answer.
        wrong: A usual wrong answer and why it is wrong.
    """
    wrong_digests = {digest(answer): why for answer, why in (wrong or {}).items()}
    return Question(tuple(digest(a) for a in answers), hint, wrong_digests)


def key(**answers: object) -> dict[str, str]:
    """Make a key of bare hashes: ``key(q1="GET", q2=101)``."""
    return {name: digest(answer) for name, answer in answers.items()}


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


def _verdict(name: str, answer: object, expected: str | Question) -> tuple[bool, str]:
    if answer is None:
        return False, f"{name}: not answered yet"
    if isinstance(expected, str):
        expected = Question((expected,))
    if digest(answer) in expected.answers or _old_digest(answer) in expected.answers:
        return True, f"{name}: right"
    why = expected.wrong.get(digest(answer), expected.hint)
    return False, f"{name}: not quite ({answer!r}): {why}"


def check(answers: Mapping[str, object], answer_key: Mapping[str, str | Question] | str) -> Result:
    """Check a student's ``answers`` against a key.

    Args:
        answers: Question name to answer; ``None`` means not answered yet.
        answer_key: Question name to a :class:`Question` or a bare
            :func:`digest`; or a lesson number such as ``"02"`` for the key
            kept in :data:`LESSONS`.

    Returns:
        A :class:`Result`; in a notebook it shows as one line per question.
    """
    if not isinstance(answers, Mapping):
        raise TypeError(f"answers must be a dict such as {{'q1': 'GET'}}, got {answers!r}")
    if isinstance(answer_key, str):
        if answer_key not in LESSONS:
            raise KeyError(f"no quiz for lesson {answer_key!r}; lessons: {', '.join(LESSONS)}")
        answer_key = LESSONS[answer_key]
    lines, right = [], 0
    for name, expected in answer_key.items():
        ok, line = _verdict(name, answers.get(name), expected)
        right += ok
        lines.append(line)
    unknown = sorted((str(name) for name in answers if name not in answer_key), key=str)
    if unknown:
        lines.append(
            f"(no such question: {', '.join(unknown)}; the questions are {', '.join(answer_key)})"
        )
    return Result(tuple(lines), right, len(answer_key))


def _q(answers: tuple[str, ...], hint: str, wrong: Mapping[str, str] | None = None) -> Question:
    return Question(answers, hint, {digest(a): why for a, why in (wrong or {}).items()})


#: The keys of the lessons' quizzes, by lesson number. The answers are hashed;
#: the hints and the explanations of usual wrong answers are plain text.
LESSONS: dict[str, dict[str, Question]] = {
    "00": {
        "q1": _q(("e2e22643adae",), "the number is in the first paragraph of this lesson"),
        "q2": _q(("a51146d38077",), "see 'Running the lab': which target starts JupyterLab?"),
        "q3": _q(
            ("12ca17b49af2", "49960de5880e"),
            "the servers listen on the loopback interface only (see 'Running the lab')",
            {
                "0.0.0.0": "0.0.0.0 means every interface, reachable from the network; "
                "wslab refuses it unless you pass allow_remote=True"
            },
        ),
    },
    "01": {
        "q1": _q(
            ("d4735e3a265e",),
            "a server's frame has no masking key; count the header "
            "bytes for a 7-bit length (section 5.2)",
        ),
        "q2": _q(
            ("e7f6c011776e",),
            "a client's frame adds the masking key to the server's header (sections 5.2 and 5.3)",
        ),
        "q3": _q(("9390298f3fb0",), "HTTP/1.1 is request/response: what starts every exchange?"),
    },
    "02": {
        "q1": _q(
            ("16dc368a89b4",),
            "look at the first line of the server's answer in step 2",
            {"200": "200 OK ends a normal request; an upgrade gets a 1xx status"},
        ),
        "q2": _q(
            ("b1565820a5cd",),
            "step 2 of the accept computation names the hash (section 4.2.2, item 5.4)",
        ),
        "q3": _q(
            ("9390298f3fb0",),
            "anyone can compute the accept value; what does it prove, according to section 1.3?",
        ),
        "q4": _q(
            ("9be3da431e0a",),
            "see 'Broken handshakes': the first of the three requests",
            {
                "400": "400 is for a malformed handshake; a plain GET is a valid HTTP "
                "request for a resource that needs another protocol"
            },
        ),
    },
    "03": {
        "q1": _q(
            ("38d66d9692ac",),
            "FIN set (0x80) plus the binary opcode (section 5.2)",
            {"0x81": "0x81 is a text frame: opcode 1"},
        ),
        "q2": _q(
            ("2c624232cdd2",),
            "200 needs the 16-bit length form, and a client adds the masking key (section 5.2)",
            {"6": "6 bytes would be a 7-bit length, which counts only up to 125"},
        ),
        "q3": _q(
            ("4a44dc153642",),
            "see 'Ping and pong', or the opcode table of section 5.2",
            {"9": "9 is the ping; the answer has the next opcode"},
        ),
        "q4": _q(
            ("948fe603f61d",),
            "see 'Masking: what clients must do' (sections 5.1, 5.3)",
            {
                "both": "a server must not mask its frames; a client that receives a "
                "masked frame fails the connection (section 5.1)"
            },
        ),
    },
    "04": {
        "q1": _q(
            ("613a5a5b664d",),
            "the payload is the 2-byte code, big-endian, and no reason (section 5.5.1)",
            {"e903": "the two bytes go big-endian: the most significant first"},
        ),
        "q2": _q(
            ("b3eacd33433b",),
            "see section 7.1.1: which side should close TCP first, "
            "so that the other does not hold TIME_WAIT?",
        ),
        "q3": _q(
            ("478c4ffb1cbc",),
            "no close frame at all: see the codes that report what happened (section 7.1.5)",
            {"1005": "1005 means a close frame arrived without a code; here none arrived"},
        ),
        "q4": _q(("9390298f3fb0",), "section 7.4.1: some codes MUST NOT be set in a close frame"),
    },
    "05": {
        "q1": _q(
            ("140bedbf9c3f", "1785cfc3bc6a"),
            "the constructor already connects; is there a method to call after it?",
            {
                "open": "the WebSocket API has no open() method: `new WebSocket(url)` "
                "starts connecting by itself"
            },
        ),
        "q2": _q(
            ("90adb5218834",),
            "see the table 'From the browser's API to Python'",
            {"buffertype": "bufferType does not exist; it is a common mistake in blog posts"},
        ),
        "q3": _q(("6b86b273ff34",), "CONNECTING is 0; count on from there"),
        "q4": _q(
            ("16dc368a89b4",),
            "the same status as any successful opening handshake (section 4.2.2)",
        ),
    },
    "06": {
        "q1": _q(
            ("2c34c6bb2c59",),
            "RFC 7692 section 6: one reserved bit, on the first frame of a compressed message",
        ),
        "q2": _q(
            ("9390298f3fb0",),
            "see 'Subprotocols': what does a browser do when the "
            "server does not echo one of the offered names?",
            {
                "yes": "the browser fails the connection when it offered subprotocols "
                "and the server selects none (WHATWG WebSockets standard)"
            },
        ),
        "q3": _q(
            ("9390298f3fb0",),
            "section 9.1: extensions are offered by the client, "
            "and the server may only accept offered ones",
        ),
    },
    "07": {
        "q1": _q(
            ("b281bc2c616c",),
            "see 'Protocol errors': the code for a protocol error (section 7.4.1)",
            {"1008": "1008 is a policy violation; an unmasked frame breaks the protocol itself"},
        ),
        "q2": _q(("d26eae87829a",), "see 'Origin checks': the status for a forbidden request"),
        "q3": _q(("9390298f3fb0",), "see 'Authentication': where do URLs end up?"),
    },
    "08": {
        "q1": _q(("7ce54cbababd",), "only one of the three is full duplex on one connection"),
        "q2": _q(("98619d19b912",), "see the table 'Choosing': the browser API column"),
        "q3": _q(("152786ed144d",), "which client sends a new GET after every answer?"),
    },
    "09": {
        "q1": _q(
            ("165940940a02",),
            "see 'What the close code asks': which code says the server restarts?",
            {"1001": "1001 is going away: come back, maybe elsewhere; a restart has its own code"},
        ),
        "q2": _q(
            ("478c4ffb1cbc",), "nobody sends it: section 7.1.5 names what a client reports then"
        ),
        "q3": _q(("d62d7a174637",), "see 'Backpressure': the property of the browser's WebSocket"),
        "q4": _q(("546db7cc4546",), "the section quoted under 'Reconnecting, politely'"),
    },
    "10": {
        "q1": _q(
            ("b05e244762b1", "34b06173ce6c"),
            "nginx's default to servers has no Upgrade at all; see the three lines",
        ),
        "q2": _q(
            ("478c4ffb1cbc",), "see 'The idle timeout': the proxy ends TCP without a Close frame"
        ),
        "q3": _q(
            ("a16c5b00bf16",),
            "see the last section: extended CONNECT over HTTP/2",
            {"9220": "RFC 9220 is the same for HTTP/3"},
        ),
        "q4": _q(
            ("8a798890fe93",), "see 'Authentication': what does every proxy log for each request?"
        ),
    },
    "11": {
        "q1": _q(("5d28a90f4498",), "see the table of grades: which one breaks a MUST?"),
        "q2": _q(("cd02e1e21a42",), "see the table of grades: allowed, but not preferred"),
        "q3": _q(("2c8b871e52d4",), "see 'UTF-8': section 8.1 and its close code"),
        "q4": _q(
            ("b281bc2c616c",),
            "see the your-turn step on control frames: what `parse_close` raises",
        ),
    },
}
