"""The exercise course: its release, its metadata and its configuration.

The release committed in ``notebooks/exercises/release`` must be exactly what
nbgrader generates from ``source/`` (scripts/release_exercises.py rewrites it),
and every source notebook must carry the nbgrader metadata a course needs.
Grading itself, a whole class end to end with the round trip of every
assignment (solutions to full marks, blanks to zero), is tests/test_course.py.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path
from types import ModuleType
from typing import Any

import nbformat
import pytest
from traitlets.config import Config

ROOT = Path(__file__).resolve().parent.parent
COURSE = ROOT / "notebooks" / "exercises"


def _assignments() -> dict[str, str]:
    found = {}
    for folder in sorted((COURSE / "source").iterdir()):
        (notebook,) = folder.glob("*.ipynb")
        found[folder.name] = notebook.stem
    return found


ASSIGNMENTS = _assignments()


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


def graded(assignment: str) -> list[Any]:
    return [c for c in source_notebook(assignment).cells if nbgrader_meta(c).get("grade")]


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The release as nbgrader generates it now, in a copy of the course."""
    root = release_script.copy_course(tmp_path_factory.mktemp("course"))
    return Path(release_script.generate(root))


# -- the committed release ---------------------------------------------------


@pytest.mark.kernel
def test_committed_release_is_what_nbgrader_generates(generated: Path) -> None:
    """No drift: nbgrader's output is byte-for-byte the committed release (no normalizing)."""
    assert release_script.differences(COURSE / "release", generated) == []


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


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_introduction_states_the_parts_and_points(assignment: str) -> None:
    intro = source_notebook(assignment).cells[0].source
    stated = re.search(r"(\d+) graded parts, (\d+) points", intro)
    assert stated, "the introduction says how many parts and points there are"
    cells = graded(assignment)
    assert (int(stated[1]), int(stated[2])) == (
        len(cells),
        sum(nbgrader_meta(cell)["points"] for cell in cells),
    )


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_test_cell_has_visible_tests_before_its_hidden_ones(assignment: str) -> None:
    """A student sees an example of every kind of check before the grader runs the rest."""
    for cell in graded(assignment):
        visible = cell.source.split("### BEGIN HIDDEN TESTS")[0]
        checks = r"check\.(equal|true|raises|case|connect|handshake_status|conformance)|\.expect\("
        assert re.search(checks, visible), cell.id


def test_the_size_of_the_course() -> None:
    """Issue 12: at least 8 assignments and 27 graded parts."""
    assert len(ASSIGNMENTS) >= 8
    assert sum(len(graded(assignment)) for assignment in ASSIGNMENTS) >= 27


# -- configuration ------------------------------------------------------------


def test_nbgrader_config() -> None:
    config = Config()
    exec((COURSE / "nbgrader_config.py").read_text(), {"get_config": lambda: config})
    assert config.CourseDirectory.course_id == "wslab"
    assert config.Execute.timeout == 60
    # Restoring hidden tests is not reported as tampering (issue 13).
    names = [p.__name__ for p in config.Autograde.sanitize_preprocessors]
    assert names == [
        "ClearOutput",
        "DeduplicateIds",
        "OverwriteKernelspec",
        "RestoreHiddenTests",
        "CheckCellMetadata",
    ]


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
