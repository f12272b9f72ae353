"""The your-turn steps of all twelve lessons (wslab.practice) and their place in the notebooks.

Every worked solution must pass its own feedback; a blank step, a missing
name, a wrong answer and code that raises each get feedback instead of a
traceback; every ``your-turn`` cell of a lesson is followed by the feedback
cell of a step that exists, and every step is used by its lesson.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import signal
from pathlib import Path
from typing import Any

import pytest

import wslab
from wslab import practice
from wslab.closing import parse_close, serialize_close
from wslab.frames import Frame, Opcode
from wslab.lessons import COURSE
from wslab.practice import apps, beyond, core, intro, judging, production

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
CHECK = re.compile(r'wslab\.practice\.check\("([\w-]+)"\)')
#: Every step of the course.
ALL = list(practice.STEPS)


def context(name: str) -> dict[str, Any]:
    """What the lesson has defined by the time the step runs (its imports)."""
    namespace: dict[str, Any] = {"wslab": wslab, "base64": base64, "hashlib": hashlib}
    namespace["GUID"] = wslab.GUID
    if name.startswith("11-"):
        namespace |= {"Frame": Frame, "Opcode": Opcode}
        namespace |= {"parse_close": parse_close, "serialize_close": serialize_close}
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


@pytest.mark.parametrize("name", ALL)
def test_the_worked_solution_is_right(name: str, echo: Any) -> None:
    namespace = context(name) | {"echo": echo}
    feedback = run(name, practice.step(name).solution, namespace)
    assert feedback.status == "right", repr(feedback)
    assert repr(feedback) == repr(practice.Feedback.right_answer(practice.step(name)))


@pytest.mark.parametrize("name", ALL)
def test_blank_and_missing_give_feedback_not_a_traceback(name: str) -> None:
    step = practice.step(name)
    blank = {each: ... for each in step.names}
    for namespace in ({}, context(name) | blank):
        feedback = practice.check(name, namespace)
        assert feedback.status == "blank"
        assert step.source in repr(feedback) and step.url in feedback._repr_html_()
        assert "Hint:" in repr(feedback)


@pytest.mark.parametrize("name", ALL)
def test_feedback_offers_the_solution_without_showing_it(name: str) -> None:
    feedback = practice.check(name, {})
    assert f'wslab.practice.solution("{name}")' in repr(feedback)
    assert "<details><summary>Show a worked solution</summary>" in feedback._repr_html_()
    assert practice.step(name).solution.splitlines()[0] not in repr(feedback)
    assert practice.step(name).solution in repr(practice.solution(name))


def test_one_registry_grouped_by_the_parts_of_the_course() -> None:
    """Each step is data in the module of its lesson's part (wslab.lessons.COURSE)."""
    modules = {"intro": intro, "core": core, "apps": apps, "beyond": beyond}
    modules["production"] = production
    part_of = {number: part for number, _, _, part in COURSE}
    listed = [step.name for module in modules.values() for step in module.STEPS]
    assert len(listed) == len(set(listed)) == len(practice.STEPS)
    for part, module in modules.items():
        for step in module.STEPS:
            assert part_of[step.name[:2]] == part, f"{step.name} is not in lesson's part"


#: Usual mistakes, lesson by lesson: (step, the student's cell, status, what the feedback says).
MISTAKES = [
    (
        "02-accept",
        'KEY2 = "x3JJHMbDL1EzLkh9GBhXDw=="\n'
        "accept = base64.b64encode(hashlib.sha1(base64.b64decode(KEY2)"
        " + GUID.encode()).digest()).decode()",
        "wrong",
        "not base64-decoded",
    ),
    (
        "03-header",
        "def frame_header(opcode, length):\n"
        "    if length <= 125:\n"
        "        return bytes([0x80 | opcode, length])\n"
        "    return bytes([0x80 | opcode, 126]) + length.to_bytes(2, 'little')\n",
        "wrong",
        "`frame_header(2, 126)` returned ... big-endian",
    ),
    (
        "03-unmask",
        "def unmask(payload, key):\n    return payload ^ key\n",
        "error",
        "raised TypeError",
    ),
    ("04-close-payload", "def close_payload(code, reason=''):\n    ...\n", "blank", "still `...`"),
    (
        "05-js-client",
        "MY_CLIENT = 'const ws = new WebSocket(WS_URL); ws.open(); ws.send(1)'",
        "wrong",
        "no open()",
    ),
    ("05-js-client", "MY_CLIENT = '''\n// 1. connect\n'''", "blank", "opens no WebSocket"),
    (
        "06-subprotocol",
        "def select_subprotocol(offered, supported):\n    return supported[0]\n",
        "wrong",
        "MUST be one of",
    ),
    (
        "07-origin",
        "def origin_ok(origin, host):\n"
        "    return origin is None or origin.split('//')[1].startswith(host)\n",
        "wrong",
        "urlsplit",
    ),
    (
        "08-parse-sse",
        "def parse_sse(text):\n"
        "    return [{'event': 'message', 'data': b.split(': ', 1)[1], 'id': ''}\n"
        "            for b in text.split('\\n\\n') if b]\n",
        "wrong",
        "is a comment",
    ),
    (
        "09-backoff",
        "def full_jitter(failures, base, cap, rng):\n"
        "    return min(cap, base * 2 ** (failures - 1))\n",
        "wrong",
        "rng.uniform",
    ),
    (
        "09-dedup",
        "def new_events(events, last_id):\n"
        "    return [e for e in events if last_id is None or e['id'] > last_id]\n",
        "wrong",
        "the same id can come twice",
    ),
    (
        "10-upgrade",
        'location_block = """\nlocation /chat {\n    proxy_pass http://websocket_servers;\n'
        "    proxy_set_header Upgrade $http_upgrade;\n"
        '    proxy_set_header Connection "upgrade";\n}\n"""\n',
        "wrong",
        "HTTP/1.1",
    ),
    (
        "10-token",
        "import hmac\n"
        "def token_valid(token, secret, now):\n"
        "    name, expires, signature = token.split('.')\n"
        "    body = f'{name}.{expires}'.encode()\n"
        "    return signature == hmac.new(secret, body, 'sha256').hexdigest()\n",
        "wrong",
        "expiry",
    ),
    (
        "11-respond",
        "def respond(frame):\n"
        "    if frame.opcode is Opcode.PING:\n"
        "        return [Frame(Opcode.PONG, b'')]\n"
        "    return [frame]\n",
        "wrong",
        "section 5.5.3",
    ),
    ("11-utf8", "def text_ok(payload):\n    return True\n", "wrong", "UTF-8"),
    # Odd types and edits: feedback, not a TypeError from the judge.
    ("02-accept", "accept = ['s3pPLMBiTxaQ9kYGzzhZRbK+xOo=']", "wrong", "one str"),
    ("02-accept", "KEY2 = 'x3JJHMbDL1EzLkh9GBhXDw'\naccept = 'x'", "wrong", "keep the cell's"),
    (
        "06-subprotocol",
        "def select_subprotocol(offered, supported):\n"
        "    return [name for name in supported if name in offered]\n",
        "wrong",
        "return one name (a str), or None",
    ),
    (
        "11-respond",
        "def respond(frame):\n"
        "    if frame.opcode is Opcode.PING:\n"
        "        return [Frame(Opcode.PONG, frame.payload)]\n"
        "    if frame.opcode is Opcode.CLOSE:\n"
        "        code = int.from_bytes(frame.payload[:2], 'big')\n"
        "        if code == 1005:\n"
        "            raise ValueError('no 1005')\n"
        "        return [Frame(Opcode.CLOSE, frame.payload[:2])]\n"
        "    return [frame]\n",
        "error",
        "raised ValueError: no 1005",
    ),
]


@pytest.mark.parametrize(("name", "code", "status", "says"), MISTAKES)
def test_a_usual_mistake_gets_its_hint(name: str, code: str, status: str, says: str) -> None:
    """A wrong answer names what came out and hints at the rule, with its section."""
    feedback = run(name, code)
    assert feedback.status == status, repr(feedback)
    for part in says.split(" ... "):
        assert part in repr(feedback), repr(feedback)


#: The steps whose answer is a function the judge calls (05-shout's handler runs on a server).
FUNCTION_STEPS = [
    name
    for name, step in practice.STEPS.items()
    if f"def {step.names[0]}(" in step.solution and "async def" not in step.solution
]


@pytest.mark.parametrize("name", FUNCTION_STEPS)
def test_an_endless_loop_is_stopped_with_feedback(name: str, monkeypatch: Any) -> None:
    """A function that never returns gets feedback, not a kernel that hangs until interrupted,
    even if it catches Exception."""
    monkeypatch.setattr(judging, "TIME_LIMIT", 0.2)
    code = (
        f"def {practice.step(name).names[0]}(*args):\n"
        "    while True:\n"
        "        try:\n"
        "            pass\n"
        "        except Exception:\n"
        "            pass\n"
    )
    handler = signal.getsignal(signal.SIGALRM)
    feedback = run(name, code)
    assert feedback.status == "error", repr(feedback)
    assert "still running after 0.2 s" in repr(feedback), repr(feedback)
    assert "endless loop" in repr(feedback)
    assert "raised" not in repr(feedback)  # nothing was raised: it was stopped
    assert signal.getsignal(signal.SIGALRM) is handler  # pytest-timeout's alarm is back


def test_equivalent_answers_are_right() -> None:
    situations = list(practice.step("08-choose").solution.split('"')[1::4])
    spellings = ["Server-Sent Events", "WebSockets", "long-polling"]
    code = f"choice = {dict(zip(situations, spellings, strict=True))!r}"
    assert run("08-choose", code).status == "right"


def test_unknown_step_is_named() -> None:
    with pytest.raises(KeyError, match="no your-turn step 'nope'"):
        practice.check("nope", {})


def lessons() -> list[Path]:
    return sorted(NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"))


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
        assert name in practice.STEPS
        assert name.startswith(path.name[:2])
        found.append(name)
        # Committed blank: run as it is, the cell gets "not yet" feedback.
        feedback = run(name, text(cell))
        assert feedback.status == "blank", f"{name}: {feedback!r}"
    assert len(found) >= (1 if path.name.startswith("00") else 2), path.name
    assert len(set(found)) == len(found)


def test_every_lesson_is_covered() -> None:
    assert [p.stem for p in lessons()] == [stem for _, stem, _, _ in COURSE]


def test_every_step_is_used_by_a_lesson() -> None:
    used = {m for path in lessons() for c in cells(path) for m in CHECK.findall(text(c))}
    assert used == set(ALL)


def test_the_lessons_need_no_import_for_their_steps() -> None:
    """`import wslab` is enough: no lesson imports a module to register its steps or quiz."""
    for path in lessons():
        for cell in cells(path):
            assert "wslab.practice_" not in text(cell), path.name
