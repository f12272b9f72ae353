"""The your-turn steps of the lessons (wslab.practice) and their place in the notebooks.

Every worked solution must pass its own feedback; a blank step, a missing
name, a wrong answer and code that raises each get feedback instead of a
traceback; and every ``your-turn`` cell of a lesson is followed by the
feedback cell of a step that exists.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

import wslab
from wslab import practice

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
CHECK = re.compile(r'wslab\.practice\.check\("([\w-]+)"\)')
#: The steps of lessons 00 to 08 (this module's; 09 to 11 have their own tests).
OWN = sorted(name for name in practice.EXERCISES if name[:2] <= "08")


def context(name: str) -> dict[str, Any]:
    """What the lesson has defined by the time the step runs."""
    namespace: dict[str, Any] = {"wslab": wslab, "base64": base64, "hashlib": hashlib}
    namespace["GUID"] = wslab.GUID
    if name == "01-push":
        namespace["results"] = {
            "keep-alive polling": {"bytes per update": 232.0, "to client": 159.0},
            "WebSocket": {"bytes per update": 72.0, "to client": 34.0},
        }
    return namespace


def run(name: str, code: str, namespace: dict[str, Any] | None = None) -> practice.Feedback:
    namespace = context(name) if namespace is None else namespace
    exec(compile(code, f"<{name}>", "exec"), namespace)
    return practice.check(name, namespace)


@pytest.fixture
def echo() -> Any:
    server = wslab.serve("echo", port=0)
    yield server
    server.stop()


@pytest.mark.parametrize("name", OWN)
def test_the_worked_solution_is_right(name: str, echo: Any) -> None:
    namespace = context(name) | {"echo": echo}
    feedback = run(name, practice.EXERCISES[name].solution, namespace)
    assert feedback.status == "right", repr(feedback)


@pytest.mark.parametrize("name", OWN)
def test_blank_and_missing_give_feedback_not_a_traceback(name: str) -> None:
    exercise = practice.EXERCISES[name]
    blank = {each: ... for each in exercise.names}
    for namespace in ({}, context(name) | blank):
        feedback = practice.check(name, namespace)
        assert feedback.status == "blank"
        assert exercise.source in repr(feedback) and exercise.url in feedback._repr_html_()
        assert "Hint:" in repr(feedback)


@pytest.mark.parametrize("name", OWN)
def test_feedback_offers_the_solution_without_showing_it(name: str) -> None:
    feedback = practice.check(name, {})
    assert f'wslab.practice.solution("{name}")' in repr(feedback)
    assert "<details><summary>Show a worked solution</summary>" in feedback._repr_html_()
    assert practice.EXERCISES[name].solution.splitlines()[0] not in repr(feedback)
    assert practice.EXERCISES[name].solution in repr(practice.solution(name))


class TestWrongAnswersGetHints:
    """A wrong answer names what came out and hints at the rule, with its section."""

    def test_accept_from_the_decoded_key(self) -> None:
        code = (
            'KEY2 = "x3JJHMbDL1EzLkh9GBhXDw=="\n'
            "accept = base64.b64encode(hashlib.sha1(base64.b64decode(KEY2)"
            " + GUID.encode()).digest()).decode()"
        )
        feedback = run("02-accept", code)
        assert feedback.status == "wrong"
        assert "not base64-decoded" in feedback.hint

    def test_header_little_endian(self) -> None:
        code = (
            "def frame_header(opcode, length):\n"
            "    if length <= 125:\n"
            "        return bytes([0x80 | opcode, length])\n"
            "    return bytes([0x80 | opcode, 126]) + length.to_bytes(2, 'little')\n"
        )
        feedback = run("03-header", code)
        assert feedback.status == "wrong" and "big-endian" in feedback.hint
        assert "frame_header(2, 126)` returned" in feedback.message

    def test_a_function_that_raises(self) -> None:
        feedback = run("03-unmask", "def unmask(payload, key):\n    return payload ^ key\n")
        assert feedback.status == "error"
        assert "raised TypeError" in feedback.message

    def test_a_function_left_blank(self) -> None:
        feedback = run("04-close-payload", "def close_payload(code, reason=''):\n    ...\n")
        assert feedback.status == "blank"
        assert "still `...`" in feedback.message

    def test_origin_prefix_match(self) -> None:
        code = (
            "def origin_ok(origin, host):\n"
            "    return origin is None or origin.split('//')[1].startswith(host)\n"
        )
        feedback = run("07-origin", code)
        assert feedback.status == "wrong" and "urlsplit" in feedback.hint

    def test_subprotocol_not_offered(self) -> None:
        code = "def select_subprotocol(offered, supported):\n    return supported[0]\n"
        feedback = run("06-subprotocol", code)
        assert feedback.status == "wrong" and "MUST be one of" in feedback.hint

    def test_javascript_open(self) -> None:
        code = "MY_CLIENT = 'const ws = new WebSocket(WS_URL); ws.open(); ws.send(1)'"
        feedback = run("05-js-client", code)
        assert feedback.status == "wrong" and "no open()" in feedback.hint

    def test_javascript_only_comments_is_blank(self) -> None:
        feedback = run("05-js-client", "MY_CLIENT = '''\n// 1. connect\n'''")
        assert feedback.status == "blank"

    def test_sse_without_comments(self) -> None:
        code = (
            "def parse_sse(text):\n"
            "    return [{'event': 'message', 'data': b.split(': ', 1)[1], 'id': ''}\n"
            "            for b in text.split('\\n\\n') if b]\n"
        )
        feedback = run("08-parse-sse", code)
        assert feedback.status in ("wrong", "error")

    def test_choose_accepts_spellings(self) -> None:
        situations = list(practice.EXERCISES["08-choose"].solution.split('"')[1::4])
        spellings = ["Server-Sent Events", "WebSockets", "long-polling"]
        code = f"choice = {dict(zip(situations, spellings, strict=True))!r}"
        assert run("08-choose", code).status == "right"

    def test_unknown_step_is_named(self) -> None:
        with pytest.raises(KeyError, match="no your-turn step 'nope'"):
            practice.check("nope", {})


def lessons() -> list[Path]:
    return sorted(NOTEBOOKS.glob("0[0-8]-*.ipynb"))


def cells(path: Path) -> list[dict[str, Any]]:
    cells: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return cells


def text(cell: dict[str, Any]) -> str:
    source = cell["source"]
    return source if isinstance(source, str) else "".join(source)


@pytest.mark.parametrize("path", lessons(), ids=lambda p: p.stem)
def test_each_lesson_has_your_turn_steps_with_feedback(path: Path) -> None:
    found = []
    notebook = cells(path)
    for i, cell in enumerate(notebook):
        if "your-turn" not in cell["metadata"].get("tags", []):
            continue
        assert cell["cell_type"] == "code"
        following = CHECK.search(text(notebook[i + 1]))
        assert following, f"cell {i} of {path.name}: no wslab.practice.check(...) after it"
        name = following.group(1)
        assert name in practice.EXERCISES
        assert name.startswith(path.name[:2])
        found.append(name)
        # Committed blank: run as it is, the cell gets "not yet" feedback.
        feedback = run(name, text(cell))
        assert feedback.status == "blank", f"{name}: {feedback!r}"
    assert len(found) >= (1 if path.name.startswith("00") else 2), path.name
    assert len(set(found)) == len(found)


def test_every_step_is_used_by_a_lesson() -> None:
    used = {m for path in lessons() for c in cells(path) for m in CHECK.findall(text(c))}
    assert used == set(OWN)


def test_other_lessons_steps_are_found_through_their_provider() -> None:
    """Lessons 09 to 11 register their steps in the module PROVIDERS names."""
    for path in sorted(NOTEBOOKS.glob("[0-9][0-9]-*.ipynb")):
        for name in {m for c in cells(path) for m in CHECK.findall(text(c))}:
            assert practice.exercise(name).name == name
