"""The exercise course, graded by the real nbgrader (generate, autograde, feedback).

One module-scoped fixture copies the course to a temporary directory (the
repository is never touched), generates the release there, plants four kinds
of submission and autogrades them all in a single ``nbgrader autograde`` run:

* ``solver``: the release with every solution cell filled in from the source;
* ``blank``: the release untouched (every solution still raises NotImplementedError);
* ``partial``: the solver's notebooks with planted mistakes: a hard-coded accept
  key (passes the visible test, fails the hidden one), a close payload that is
  not UTF-8, and a chat handler that never answers (its tests must time out
  cleanly, not hang the grader).
"""

from __future__ import annotations

import importlib.util
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import nbformat
import pytest
from nbgrader.api import Gradebook
from traitlets.config import Config

ROOT = Path(__file__).resolve().parent.parent
COURSE = ROOT / "notebooks" / "exercises"
ASSIGNMENTS = {
    "01_handshake": "handshake",
    "02_frames": "frames",
    "03_closing": "closing",
    "04_server": "server",
}
#: Points of each assignment, as the instructions in the notebooks state them.
POINTS = {"01_handshake": 9, "02_frames": 10, "03_closing": 9, "04_server": 8}

# The first test also pays for the module fixture: generating the release and
# autograding 11 notebooks takes about a minute on 2 busy cores.
pytestmark = [pytest.mark.kernel, pytest.mark.timeout(300)]


def _load_release_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "release_exercises", ROOT / "scripts" / "release_exercises.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


release_script = _load_release_script()


def source_notebook(assignment: str) -> Any:
    return nbformat.read(COURSE / "source" / assignment / f"{ASSIGNMENTS[assignment]}.ipynb", 4)


def nbgrader_meta(cell: Any) -> dict[str, Any]:
    meta: dict[str, Any] = cell.metadata.get("nbgrader", {})
    return meta


# Planted mistakes: (assignment, solution cell id, replacement source).
MISTAKES = {
    ("01_handshake", "accept-key"): '''
def accept_key(key: str) -> str:
    """Copied from the RFC instead of computed."""
    return "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
''',
    ("03_closing", "build-close"): '''
def close_payload(code: int, reason: str = "") -> bytes:
    """Latin-1 instead of UTF-8: fine for ASCII, wrong for 'é'."""
    return struct.pack("!H", code) + reason.encode("latin-1", "replace")
''',
    ("04_server", "chat"): '''
clients = {}


async def chat(ws):
    """Listens, but never says anything."""
    async for message in ws:
        pass
''',
}
PARTIAL_ASSIGNMENTS = sorted({assignment for assignment, _ in MISTAKES})


@dataclass
class GradedCourse:
    """A course directory after generate_assignment, autograde and generate_feedback."""

    root: Path

    def gradebook(self) -> Gradebook:
        return Gradebook(f"sqlite:///{self.root / 'gradebook.db'}", course_id="wslab")

    def scores(self, student: str, assignment: str) -> dict[str, float]:
        """Score of every graded cell of one submission, by grade_id."""
        with self.gradebook() as gb:
            notebook = gb.find_submission_notebook(ASSIGNMENTS[assignment], assignment, student)
            return {grade.name: grade.score for grade in notebook.grades}

    def autograded(self, student: str, assignment: str) -> Any:
        path = self.root / "autograded" / student / assignment / f"{ASSIGNMENTS[assignment]}.ipynb"
        return nbformat.read(path, 4)

    def feedback(self, student: str, assignment: str) -> str:
        path = self.root / "feedback" / student / assignment / f"{ASSIGNMENTS[assignment]}.html"
        return path.read_text()


def fill_in(release: Any, source: Any, replacements: dict[str, str]) -> Any:
    """What a student hands in: the release with its solution cells written."""
    solutions = {cell.id: cell.source for cell in source.cells}
    for cell in release.cells:
        if nbgrader_meta(cell).get("solution"):
            cell.source = replacements.get(cell.id, solutions[cell.id]).strip("\n")
    return release


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> GradedCourse:
    root = release_script.copy_course(tmp_path_factory.mktemp("course"))
    release = release_script.generate(root)
    for assignment, name in ASSIGNMENTS.items():
        released = release / assignment / f"{name}.ipynb"
        submissions = {"blank": nbformat.read(released, 4)}
        submissions["solver"] = fill_in(
            nbformat.read(released, 4), source_notebook(assignment), {}
        )
        if assignment in PARTIAL_ASSIGNMENTS:
            mistakes = {cell: text for (a, cell), text in MISTAKES.items() if a == assignment}
            submissions["partial"] = fill_in(
                nbformat.read(released, 4), source_notebook(assignment), mistakes
            )
        for student, notebook in submissions.items():
            path = root / "submitted" / student / assignment / f"{name}.ipynb"
            path.parent.mkdir(parents=True)
            nbformat.write(notebook, path)
    release_script.nbgrader(root, "autograde", "*", "--create", "--force")
    release_script.nbgrader(root, "generate_feedback", "*", "--force")
    # pytest keeps the last three temporary directories for inspection, then removes them.
    return GradedCourse(root)


# -- the committed release ---------------------------------------------------


def test_committed_release_is_what_nbgrader_generates(course: GradedCourse) -> None:
    """No drift: nbgrader's output is byte-for-byte the committed release (no normalizing)."""
    assert release_script.differences(COURSE / "release", course.root / "release") == []


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_has_no_solutions_or_hidden_tests(assignment: str) -> None:
    text = (COURSE / "release" / assignment / f"{ASSIGNMENTS[assignment]}.ipynb").read_text()
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "import reference"):
        assert marker not in text
    assert "raise NotImplementedError()" in text


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_source_cells_carry_nbgrader_metadata(assignment: str) -> None:
    notebook = source_notebook(assignment)
    grade_ids = [nbgrader_meta(cell).get("grade_id") for cell in notebook.cells]
    graded = [cell for cell in notebook.cells if nbgrader_meta(cell).get("grade")]
    for cell in notebook.cells:
        meta = nbgrader_meta(cell)
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, "clear the outputs"
        if not meta:
            continue  # a free cell for the student
        if meta["solution"]:
            assert not meta["locked"] and "### BEGIN SOLUTION" in cell.source
            assert "### END SOLUTION" in cell.source
        else:
            assert meta["locked"], f"{meta['grade_id']} should be read-only"
        if meta["grade"]:
            assert cell.cell_type == "code" and meta["points"] > 0
            assert "### BEGIN HIDDEN TESTS" in cell.source, f"{meta['grade_id']}: hidden tests"
    assert len(grade_ids) == len(set(grade_ids))
    assert sum(nbgrader_meta(cell)["points"] for cell in graded) == POINTS[assignment]


def test_at_least_twelve_graded_parts() -> None:
    parts = [
        cell
        for assignment in ASSIGNMENTS
        for cell in source_notebook(assignment).cells
        if nbgrader_meta(cell).get("grade")
    ]
    assert len(parts) >= 12


# -- autograding -------------------------------------------------------------


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solutions_get_full_marks(course: GradedCourse, assignment: str) -> None:
    with course.gradebook() as gb:
        submission = gb.find_submission(assignment, "solver")
        assert submission.max_score == POINTS[assignment]
        assert submission.score == POINTS[assignment]


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_untouched_release_gets_zero_and_fails_cleanly(
    course: GradedCourse, assignment: str
) -> None:
    with course.gradebook() as gb:
        assert gb.find_submission(assignment, "blank").score == 0
    for cell in course.autograded("blank", assignment).cells:
        if nbgrader_meta(cell).get("grade"):
            errors = [out for out in cell.outputs if out.output_type == "error"]
            # One clean "not written yet" per test cell: no timeout, no crash.
            assert [error.ename for error in errors] == ["NotImplementedYet"], cell.id
            assert "not written yet" in errors[0].evalue


def test_hard_coded_answer_fails_only_the_hidden_test(course: GradedCourse) -> None:
    scores = course.scores("partial", "01_handshake")
    assert scores == {
        "test-accept-key": 0,
        "test-build-request": 2,
        "test-validate-request": 3,
        "test-build-response": 0,  # it uses accept_key, so random keys fail there too
    }
    feedback = course.feedback("partial", "01_handshake")
    assert "accept_key: all checks passed" not in feedback
    assert re.search(r"accept_key\(\) of the random key", feedback)


def test_partial_submission_gets_partial_marks_and_feedback(course: GradedCourse) -> None:
    with course.gradebook() as gb:
        assert gb.find_submission("03_closing", "partial").score == POINTS["03_closing"] - 2
    assert course.scores("partial", "03_closing")["test-build-close"] == 0
    feedback = course.feedback("partial", "03_closing")
    # The feedback names the failing part and explains it.
    assert 'close_payload(4000, "é"): the reason is UTF-8: the bytes differ' in feedback
    assert "hint: encode the reason with .encode('utf-8')" in feedback
    assert "close_reply: all checks passed" in feedback


def test_silent_handler_times_out_cleanly(course: GradedCourse) -> None:
    """A chat handler that never answers loses the chat points; the grader goes on."""
    assert course.scores("partial", "04_server") == {
        "test-echo": 3,
        "test-chat": 0,
        "test-chat-leave": 0,
    }
    cells = {cell.id: cell for cell in course.autograded("partial", "04_server").cells}
    for grade_id in ("test-chat", "test-chat-leave"):
        (error,) = [out for out in cells[grade_id].outputs if out.output_type == "error"]
        assert error.ename == "CheckFailed"
        assert "got no message within" in error.evalue


def test_gradebook_totals(course: GradedCourse) -> None:
    with course.gradebook() as gb:
        totals = {student.id: student.score for student in gb.students}
    assert totals["solver"] == sum(POINTS.values())
    assert totals["blank"] == 0
    assert 0 < totals["partial"] < sum(POINTS[a] for a in PARTIAL_ASSIGNMENTS)


def test_nbgrader_config() -> None:
    config = Config()
    exec((COURSE / "nbgrader_config.py").read_text(), {"get_config": lambda: config})
    assert config.CourseDirectory.course_id == "wslab"
    assert config.Execute.timeout == 60


def test_drift_is_detected(tmp_path: Path) -> None:
    """The drift check can fail: one changed byte in a copy of the release shows."""
    copy = tmp_path / "release"
    shutil.copytree(COURSE / "release", copy)
    notebook = copy / "03_closing" / "closing.ipynb"
    notebook.write_text(notebook.read_text().replace("1005", "1006", 1))
    (copy / "01_handshake" / "extra.txt").write_text("")
    assert sorted(release_script.differences(COURSE / "release", copy)) == [
        "differs: 03_closing/closing.ipynb",
        f"only in {copy / '01_handshake'}: 01_handshake/extra.txt",
    ]
