"""A real course, end to end, run with the commands of docs/instructors.md (issue 13).

One module fixture plays a term of the course in a temporary directory (the
repository is never touched):

* the instructor generates every assignment and releases ``01_handshake``
  through a file-system exchange (``Exchange.root`` in a shared configuration,
  as on a hub);
* three students fetch it, answer, ``validate`` and ``submit``: ``ada`` with the
  solutions, ``bo`` with the typical mistakes of a weak student, ``cy`` with
  nothing (and a test cell edited, to look for a way round it);
* the other assignments are handed in the guide's other way, straight into
  ``submitted/``: ``ada`` and ``cy`` all of them, ``bo`` those with planted
  mistakes, among them an endless loop at the top of a cell (nbgrader's cell
  timeout stops it) and one inside a function (the check's time limit stops it);
* the instructor collects, autogrades the whole class in one ``nbgrader
  autograde`` call, generates feedback and exports the grades.

The scores are the planted ones, the weak student's feedback names a section
of a standard for every part that failed, and the formgrader lists the class.
This module is also the round trip of the exercises: every assignment's
solutions get full marks and its untouched release gets zero.

``WSLAB_TIME_COURSE=1 pytest -s tests/test_course.py`` prints how long each
command takes.
"""

from __future__ import annotations

import csv
import html
import json
import os
import re
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbgrader.api import Gradebook
from test_exercises import release_script  # scripts/release_exercises.py

ROOT = Path(__file__).resolve().parent.parent
COURSE = ROOT / "notebooks" / "exercises"

#: How long a looping solution cell runs before nbgrader interrupts it, in this
#: test (the course's own configuration says 60 s for every cell).
CELL_TIMEOUT = 6
#: The environment of every command: short waits for silent servers and for
#: loops inside a graded part (the course's defaults are 5 s and 30 s).
CHECK_ENV = {"WSLAB_CHECK_TIMEOUT": "2", "WSLAB_CHECK_TIME_LIMIT": "5"}
#: The assignment that goes through the exchange (the others go to submitted/).
EXCHANGED = "01_handshake"
#: Full marks, a weak student's typical mistakes, nothing at all.
STUDENTS = ("ada", "bo", "cy")

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(600)]


def assignments() -> dict[str, str]:
    """Every assignment of the course and the name of its notebook."""
    found = {}
    for folder in sorted((COURSE / "source").iterdir()):
        (notebook,) = folder.glob("*.ipynb")
        found[folder.name] = notebook.stem
    return found


ASSIGNMENTS = assignments()


def nbgrader_meta(cell: Any) -> dict[str, Any]:
    meta: dict[str, Any] = cell.metadata.get("nbgrader", {})
    return meta


def points(assignment: str) -> float:
    notebook = nbformat.read(
        COURSE / "source" / assignment / f"{ASSIGNMENTS[assignment]}.ipynb", 4
    )
    return sum(
        nbgrader_meta(c).get("points", 0) for c in notebook.cells if nbgrader_meta(c).get("grade")
    )


# -- the weak student's answers: (assignment, solution cell id) -> source ---------

WEAK: dict[tuple[str, str], str] = {
    # hexdigest() instead of digest(): wrong on every key, and build_response with it.
    ("01_handshake", "accept-key"): """
def accept_key(key: str) -> str:
    digest = hashlib.sha1((key + GUID).encode()).hexdigest()
    return base64.b64encode(digest.encode()).decode()
""",
    # Header names compared as written: lower-case names are refused.
    ("01_handshake", "validate-request"): """
def validate_request(raw: bytes) -> str:
    request_line, *lines = raw.decode().split("\\r\\n")
    method, path, version = request_line.split(" ")
    if method != "GET" or version not in ("HTTP/1.1", "HTTP/1.2"):
        raise ValueError("not a GET over HTTP/1.1")
    headers = dict(line.split(":", 1) for line in lines if line)
    headers = {name: value.strip() for name, value in headers.items()}
    if "websocket" not in headers.get("Upgrade", "").lower():
        raise ValueError("not a websocket upgrade")
    if "upgrade" not in headers.get("Connection", "").lower():
        raise ValueError("no Connection: Upgrade")
    if not headers.get("Host"):
        raise ValueError("no Host")
    key = headers.get("Sec-WebSocket-Key", "")
    if len(base64.b64decode(key, validate=True)) != 16:
        raise ValueError("the key is not 16 bytes")
    if headers.get("Sec-WebSocket-Version") != "13":
        raise ValueError("not version 13")
    return key
""",
    # The 7-bit form up to 255: "a byte holds 255".
    ("02_frames", "encode"): """
def encode_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    first = (0x80 if fin else 0) | opcode
    n = len(payload)
    if n < 256:
        return bytes([first, n]) + payload
    if n < 65536:
        return struct.pack("!BBH", first, 126, n) + payload
    return struct.pack("!BBQ", first, 127, n) + payload
""",
    # An index that never grows, and a try-out at the top of the cell that runs it.
    ("02_frames", "mask"): """
def mask(data: bytes, key: bytes) -> bytes:
    out = bytearray()
    i = 0
    while i < len(data):
        out.append(data[i] ^ key[i % 4])
    return bytes(out)


print(mask(b"Hello", bytes.fromhex("37 fa 21 3d")))
""",
    # time.sleep() in a handler blocks the server's loop.
    ("04_server", "echo"): """
import time


async def echo(ws):
    async for message in ws:
        time.sleep(30)
        await ws.send(message)
""",
    # Nobody leaves the room: the departed get messages, and sending to them raises.
    ("04_server", "chat"): """
clients = {}


async def chat(ws):
    name = name_of(ws)
    clients[ws] = name
    for other in clients:
        await other.send(f"* {name} joined")
    async for message in ws:
        for other in clients:
            await other.send(f"{name}: {message}")
    for other in clients:
        await other.send(f"* {name} left")
""",
    # == instead of hmac.compare_digest: right answers, but a timing leak.
    ("05_security", "token"): """
def token_ok(path: str, secret: str) -> bool:
    tokens = parse_qs(urlsplit(path).query).get("token", [])
    return tokens == [secret]
""",
    # No room for a slow client: a full outbox raises QueueFull in the talker's handler.
    ("07_broadcast", "broadcast"): """
def broadcast(message):
    for ws, outbox in outboxes.items():
        outbox.put_nowait(message)
""",
}

#: What the weak student scores, part by part.
WEAK_SCORES = {
    "01_handshake": {
        "test-accept-key": 0,
        "test-build-request": 2,
        "test-validate-accepts": 0,
        "test-validate-rejects": 2,
        "test-build-response": 0,
    },
    "02_frames": {
        "test-encode": 0,
        "test-mask": 0,
        "test-length": 2,
        "test-decode-unmasked": 1,
        "test-decode-masked": 0,
    },
    "04_server": {
        "test-echo": 0,
        "test-echo-conformance": 0,
        "test-chat": 3,
        "test-chat-leave": 0,
    },
    "05_security": {
        "test-origin": 2,
        "test-token": 0,
        "test-guard-origin": 2,
        "test-guard-token": 2,
    },
    "07_broadcast": {"test-writer": 2, "test-broadcast": 0, "test-chat": 0},
}


# -- the course --------------------------------------------------------------------


@dataclass
class Term:
    """A course directory after a term: graded, with feedback and exported grades."""

    root: Path
    homes: Path
    logs: dict[str, str]

    def gradebook(self) -> Gradebook:
        return Gradebook(f"sqlite:///{self.root / 'gradebook.db'}", course_id="wslab")

    def scores(self, student: str, assignment: str) -> dict[str, float]:
        with self.gradebook() as gb:
            notebook = gb.find_submission_notebook(ASSIGNMENTS[assignment], assignment, student)
            return {grade.name: grade.score for grade in notebook.grades}

    def autograded(self, student: str, assignment: str) -> Any:
        path = self.root / "autograded" / student / assignment / f"{ASSIGNMENTS[assignment]}.ipynb"
        return nbformat.read(path, 4)

    def feedback(self, student: str, assignment: str) -> str:
        path = self.root / "feedback" / student / assignment / f"{ASSIGNMENTS[assignment]}.html"
        return path.read_text()


def run(
    *args: str, cwd: Path, env: dict[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run a command of the guide (``nbgrader ...``) as a program; fail with its output."""
    started = time.monotonic()
    result = subprocess.run(
        [str(Path(sys.executable).parent / args[0]), *args[1:]],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, f"{' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    if os.environ.get("WSLAB_TIME_COURSE"):
        print(f"{time.monotonic() - started:6.1f} s  {' '.join(args[:3])}", file=sys.stderr)
    return result


def answer(notebook: Any, assignment: str, replacements: dict[str, str]) -> Any:
    """Fill in the solution cells of a released notebook: the source's, or a replacement."""
    source = nbformat.read(COURSE / "source" / assignment / f"{ASSIGNMENTS[assignment]}.ipynb", 4)
    solutions = {cell.id: cell.source for cell in source.cells}
    for cell in notebook.cells:
        if nbgrader_meta(cell).get("solution"):
            cell.source = replacements.get(cell.id, solutions[cell.id]).strip("\n")
    return notebook


def tamper(notebook: Any) -> Any:
    """A student who empties the first test cell, hoping for its points."""
    test = next(cell for cell in notebook.cells if nbgrader_meta(cell).get("grade"))
    test.source = "pass"
    return notebook


def handed_in(student: str, assignment: str, released: Path) -> Any | None:
    """What a student hands in for an assignment, or None."""
    notebook = nbformat.read(released, 4)
    if student == "ada":
        return answer(notebook, assignment, {})
    if student == "cy":
        return tamper(notebook) if assignment == "03_closing" else notebook
    weak = {cell: text for (a, cell), text in WEAK.items() if a == assignment}
    return answer(notebook, assignment, weak) if weak else None


@pytest.fixture(scope="module")
def term(tmp_path_factory: pytest.TempPathFactory) -> Term:
    tmp = tmp_path_factory.mktemp("term")
    root = release_script.copy_course(tmp / "course")
    with (root / "nbgrader_config.py").open("a") as config:
        # The students' cells only define functions: a loop there costs CELL_TIMEOUT,
        # while the test cells keep the course's 60 s, however loaded the machine is.
        config.write(
            "\n\ndef _timeout(cell):  # tests/test_course.py\n"
            "    solution = cell.metadata.get('nbgrader', {}).get('solution')\n"
            f"    return {CELL_TIMEOUT} if solution else 60\n"
            "\n\nc.Execute.timeout_func = _timeout\n"
        )
    # What /etc/jupyter/nbgrader_config.py holds on a hub, shared by everyone.
    shared = tmp / "etc-jupyter"
    shared.mkdir()
    (shared / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        'c.CourseDirectory.course_id = "wslab"\n'
        f'c.Exchange.root = "{tmp / "exchange"}"\n'
        "c.Execute.timeout = 60\n"
    )
    (tmp / "exchange").mkdir()
    (tmp / "exchange").chmod(0o777)
    env = dict(os.environ, **CHECK_ENV, JUPYTER_CONFIG_PATH=str(shared))
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    logs: dict[str, str] = {}

    # The instructor: generate every assignment, release one through the exchange.
    run("nbgrader", "generate_assignment", "*", "--force", cwd=root, env=env)
    run("nbgrader", "release_assignment", EXCHANGED, cwd=root, env=env)

    # The students, each in a home of their own, working at the same time.
    def student_works(student: str) -> str:
        home = tmp / "home" / student
        home.mkdir(parents=True)
        run("nbgrader", "fetch_assignment", EXCHANGED, cwd=home, env=env)
        path = home / EXCHANGED / f"{ASSIGNMENTS[EXCHANGED]}.ipynb"
        notebook = handed_in(student, EXCHANGED, path)
        assert notebook is not None
        nbformat.write(notebook, path)
        validated = run("nbgrader", "validate", str(path), cwd=home, env=env).stdout
        run("nbgrader", "submit", EXCHANGED, f"--student={student}", cwd=home, env=env)
        return validated

    with ThreadPoolExecutor(3) as pool:
        for student, validated in zip(STUDENTS, pool.map(student_works, STUDENTS), strict=True):
            logs[f"validate {student}"] = validated

    # The other assignments, handed in straight into submitted/.
    for assignment, name in ASSIGNMENTS.items():
        if assignment == EXCHANGED:
            continue
        for student in STUDENTS:
            notebook = handed_in(
                student, assignment, root / "release" / assignment / f"{name}.ipynb"
            )
            if notebook is not None:
                path = root / "submitted" / student / assignment / f"{name}.ipynb"
                path.parent.mkdir(parents=True)
                nbformat.write(notebook, path)

    # The instructor again: collect, grade the class at once, feedback, grades.
    run("nbgrader", "collect", EXCHANGED, cwd=root, env=env)
    started = time.monotonic()
    logs["autograde"] = run("nbgrader", "autograde", "*", cwd=root, env=env).stderr
    logs["autograde seconds"] = f"{time.monotonic() - started:.1f}"
    run("nbgrader", "generate_feedback", "*", cwd=root, env=env)
    run("nbgrader", "export", cwd=root, env=env)
    return Term(root, tmp / "home", logs)


# -- scores ------------------------------------------------------------------------


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solutions_get_full_marks(term: Term, assignment: str) -> None:
    with term.gradebook() as gb:
        submission = gb.find_submission(assignment, "ada")
        assert submission.max_score == points(assignment)
        assert submission.score == points(assignment), term.scores("ada", assignment)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_an_untouched_release_gets_zero_and_fails_cleanly(term: Term, assignment: str) -> None:
    with term.gradebook() as gb:
        assert gb.find_submission(assignment, "cy").score == 0
    for cell in term.autograded("cy", assignment).cells:
        if nbgrader_meta(cell).get("grade"):
            errors = [out for out in cell.outputs if out.output_type == "error"]
            # One clean "not written yet" per test cell: no timeout, no crash.
            assert [error.ename for error in errors] == ["NotImplementedYet"], cell.id
            assert "not written yet" in errors[0].evalue


@pytest.mark.parametrize("assignment", sorted(WEAK_SCORES))
def test_the_weak_student_scores_what_was_planted(term: Term, assignment: str) -> None:
    assert term.scores("bo", assignment) == WEAK_SCORES[assignment]


def test_exported_grades(term: Term) -> None:
    with (term.root / "grades.csv").open() as file:
        rows = list(csv.DictReader(file))
    totals: dict[str, float] = {}
    for row in rows:
        totals[row["student_id"]] = totals.get(row["student_id"], 0) + float(row["score"])
    full = sum(points(a) for a in ASSIGNMENTS)
    weak = sum(sum(scores.values()) for scores in WEAK_SCORES.values())
    assert totals == {"ada": full, "bo": weak, "cy": 0}


# -- feedback that teaches ---------------------------------------------------------

ANSI = re.compile(r"\x1b\[[0-9;]*m")
#: How check names a section: "see RFC 6455 section 5.2", "see the HTML standard, section 9.2.6".
SECTION = re.compile(
    r"see (RFC \d+ section|RFC \d+ \(.*?\), section|the HTML standard, section) \d"
)


def error_text(cell: Any) -> str:
    return "\n".join(
        ANSI.sub("", "\n".join(out.traceback))
        for out in cell.outputs
        if out.output_type == "error"
    )


def test_the_weak_students_feedback_names_a_section_for_every_failed_part(term: Term) -> None:
    for assignment, scores in WEAK_SCORES.items():
        failed = {grade_id for grade_id, score in scores.items() if score == 0}
        page = html.unescape(re.sub(r"<[^>]+>", "", term.feedback("bo", assignment)))
        for cell in term.autograded("bo", assignment).cells:
            if cell.id not in failed:
                continue
            found = SECTION.search(error_text(cell))
            assert found, f"{assignment} {cell.id}: no section in\n{error_text(cell)}"
            assert found.group(0) in page, f"{assignment} {cell.id}: not in the feedback page"


def cells_of(term: Term, student: str, assignment: str) -> dict[str, Any]:
    return {cell.id: cell for cell in term.autograded(student, assignment).cells}


def test_an_exception_in_a_hidden_case_names_the_input_and_the_students_line(term: Term) -> None:
    text = error_text(cells_of(term, "bo", "01_handshake")["test-validate-accepts"])
    assert (
        "validate_request() of a request with lower-case header names: "
        "your code raised ValueError: not a websocket upgrade"
    ) in text
    # The traceback starts in the student's cell, at the line that raised, not in the test cell.
    assert 'raise ValueError("not a websocket upgrade")' in text
    assert "check.part" not in text and "check.case" not in text


def test_a_cascade_names_its_cause(term: Term) -> None:
    text = error_text(cells_of(term, "bo", "01_handshake")["test-build-response"])
    assert (
        "note: build_response relies on your accept_key, which failed its own test above" in text
    )


def test_endless_loops_do_not_stall_the_class(term: Term) -> None:
    """The cell timeout stops a loop at the top of a cell; the check stops one in a part."""
    cells = cells_of(term, "bo", "02_frames")
    assert "CellTimeoutError" in error_text(cells["mask"]) or "KeyboardInterrupt" in error_text(
        cells["mask"]
    )
    assert "still running after 5 s, so the check stopped it" in error_text(cells["test-mask"])
    masked = error_text(cells["test-decode-masked"])
    assert "relies on your mask, which failed its own test above" in masked
    assert "while i < len(data):" in masked  # the line it was stopped on


def test_a_blocking_handler_loses_its_own_part_only(term: Term) -> None:
    cells = cells_of(term, "bo", "04_server")
    assert "your handler blocks the server's event loop" in error_text(cells["test-echo"])
    assert term.scores("bo", "04_server")["test-chat"] == 3


def test_a_handler_that_sends_to_a_departed_client_sees_its_own_exception(term: Term) -> None:
    text = error_text(cells_of(term, "bo", "04_server")["test-chat-leave"])
    assert "your handler raised ConnectionClosedOK" in text
    assert 'await other.send(f"* {name} left")' in text
    assert "catch it around that send" in text


def test_a_student_cannot_edit_a_test_cell_away(term: Term) -> None:
    """cy emptied a test cell: the source version is graded, and the log says so once."""
    with term.gradebook() as gb:
        assert gb.find_submission("03_closing", "cy").score == 0
    log = term.logs["autograde"]
    warnings = [line for line in log.splitlines() if "differs from the released version" in line]
    assert len(warnings) == 1 and "test-build-close" in warnings[0]
    # Restoring hidden tests is not reported as a change any more: no noise per cell.
    assert "Attribute 'checksum'" not in log


# -- the exchange, validate and the formgrader ---------------------------------------


def test_students_validate_their_work(term: Term) -> None:
    assert "Success! Your notebook passes all the tests." in term.logs["validate ada"]
    assert "not written yet" in term.logs["validate cy"]
    assert "lower-case header names" in term.logs["validate bo"]


def test_the_exchange_delivered_every_submission(term: Term) -> None:
    for student in ("ada", "bo", "cy"):
        assert (term.root / "submitted" / student / EXCHANGED / "timestamp.txt").exists()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def guide_block(containing: str) -> str:
    """The shell block of docs/instructors.md that contains ``containing``, dedented."""
    guide = (ROOT / "docs" / "instructors.md").read_text()
    for block in re.findall(r"```bash\n(.*?)```", guide, flags=re.S):
        if containing in block:
            return textwrap.dedent(block)
    raise AssertionError(f"no bash block with {containing!r} in docs/instructors.md")


#: The instructor tools students must not see (docs/instructors.md, JupyterHub step 3).
INSTRUCTOR_PLUGINS = (
    "@jupyter/nbgrader:formgrader",
    "@jupyter/nbgrader:course-list",
    "@jupyter/nbgrader:create-assignment",
)


@dataclass
class Lab:
    """A running JupyterLab: where, and its token."""

    base: str
    token: str

    def get(self, path: str) -> tuple[int, bytes]:
        request = urllib.request.Request(
            self.base + path, headers={"Authorization": f"token {self.token}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def json(self, path: str) -> Any:
        status, body = self.get(path)
        assert status == 200, f"{path}: {status}"
        return json.loads(body)

    def page_config(self) -> dict[str, Any]:
        """The configuration JupyterLab hands its page: disabled and locked extensions."""
        status, body = self.get("/lab")
        assert status == 200
        found = re.search(rb'id="jupyter-config-data"[^>]*>(.*?)</script>', body, flags=re.S)
        assert found, "no page configuration in /lab"
        config: dict[str, Any] = json.loads(found.group(1))
        return config


def start_lab(cwd: Path, config_path: str, home: Path) -> tuple[subprocess.Popen[bytes], Lab]:
    """Start ``jupyter lab`` in ``cwd`` with ``JUPYTER_CONFIG_PATH``, as a hub would."""
    token, port = "wslab-test-token", free_port()
    home.mkdir(exist_ok=True)
    env = dict(os.environ, JUPYTER_CONFIG_PATH=config_path, HOME=str(home))
    env["JUPYTER_CONFIG_DIR"] = str(home / ".jupyter")
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "jupyter"),
            "lab",
            "--no-browser",
            f"--ServerApp.port={port}",
            "--ServerApp.ip=127.0.0.1",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={cwd}",
            *(["--allow-root"] if os.getuid() == 0 else []),
        ],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return process, Lab(f"http://127.0.0.1:{port}", token)


def wait_for_lab(process: subprocess.Popen[bytes], lab: Lab) -> None:
    deadline = time.monotonic() + 90
    while True:
        try:
            lab.get("/api/status")
            return
        except OSError:
            assert process.poll() is None, "jupyter lab exited"
            assert time.monotonic() < deadline, "jupyter lab did not start"
            time.sleep(0.2)


@pytest.fixture(scope="module")
def labs(term: Term) -> Iterator[dict[str, Lab]]:
    """The instructor's and a student's JupyterLab, set up as the guide's hub section says."""
    students = term.root.parent / "etc-students"
    script = guide_block("JUPYTER_CONFIG_DIR=/etc/jupyter/wslab-students").replace(
        "/etc/jupyter/wslab-students", str(students)
    )
    env = dict(os.environ, HOME=str(term.root.parent))
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    result = subprocess.run(["bash", "-e", "-c", script], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    shared = str(term.root.parent / "etc-jupyter")
    started = {
        "instructor": start_lab(term.root, shared, term.root.parent / "instructor"),
        "student": start_lab(
            term.homes / "bo", os.pathsep.join([str(students), shared]), term.homes / "bo"
        ),
    }
    try:
        for process, lab in started.values():
            wait_for_lab(process, lab)
        yield {who: lab for who, (_, lab) in started.items()}
    finally:
        for process, _ in started.values():
            process.terminate()
        for process, _ in started.values():
            process.wait(20)


def test_the_formgrader_lists_the_class(labs: dict[str, Lab]) -> None:
    instructor = labs["instructor"]
    listed = {a["name"]: a for a in instructor.json("/formgrader/api/assignments")}
    assert set(listed) == set(ASSIGNMENTS)
    assert listed[EXCHANGED]["num_submissions"] == 3
    assert listed[EXCHANGED]["status"] == "released"
    students = {s["id"]: s for s in instructor.json("/formgrader/api/students")}
    assert set(students) == set(STUDENTS)
    assert students["ada"]["score"] == students["ada"]["max_score"] > 0
    disabled = instructor.page_config().get("disabledExtensions", [])
    assert not set(INSTRUCTOR_PLUGINS) & set(disabled)


def test_students_do_not_get_the_instructor_tools(labs: dict[str, Lab]) -> None:
    """The guide's students' configuration: no formgrader, no course list, locked in the UI."""
    student = labs["student"]
    assert student.get("/formgrader")[0] == 404
    assert student.get("/formgrader/api/assignments")[0] == 404
    config = student.page_config()
    assert set(INSTRUCTOR_PLUGINS) <= set(config["disabledExtensions"])
    assert set(INSTRUCTOR_PLUGINS) <= set(config["lockedExtensions"])
    # What students need still works: the assignment list sees the released assignment.
    listed = student.json("/assignments?course_id=wslab")
    assert listed["success"], listed
    assert EXCHANGED in {a["assignment_id"] for a in listed["value"]}


def test_validate_waits_as_long_as_the_course(term: Term) -> None:
    """Students' validate reads the shared configuration: 60 s per cell, not nbgrader's 30."""
    code = (
        "from nbgrader.apps.validateapp import ValidateApp\n"
        "from nbgrader.preprocessors import Execute\n"
        "from nbgrader.validator import Validator\n"
        "app = ValidateApp()\n"
        "app.initialize([])\n"
        "print(Execute(parent=Validator(config=app.config)).timeout)\n"
    )
    env = dict(os.environ, JUPYTER_CONFIG_PATH=str(term.root.parent / "etc-jupyter"))
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=term.homes / "ada",
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.stdout.split() == ["60"], result.stderr
