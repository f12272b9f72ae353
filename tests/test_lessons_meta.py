"""Structure checks for the lesson notebooks (notebooks/NN-*.ipynb).

nbval checks that each lesson runs and that its stored outputs are fresh;
these tests check what every lesson promises its reader: navigation links
that lead somewhere, learning goals at the top, at least one picture, a
citation of RFC 6455, short steps, a "check yourself" quiz at the end that
runs clean, no clean-up cell that would undo Run All (contract 3.8), and
committed outputs that look intentional before anything runs: no raw reprs,
no dead links, pictures an untrusted notebook shows. They read the notebooks
as JSON and run nothing; the machinery the lessons call (wslab.lessons) has
its own tests in tests/test_lessons.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from wslab.lessons import COURSE

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
#: The twelve lessons, in order.
LESSONS = [stem for _, stem, _, _ in COURSE]
LINK = re.compile(r"\]\(([^)\s]+)\)")
# Section numbers of RFC 6455 go from 1 to 11.
RFC_SECTION = re.compile(r"\b(sections?|RFC 6455) (1[01]|[1-9])(\.\d+)*\b")
PICTURE_MIME = (
    "image/png",
    "image/svg+xml",
    "text/html",
    "application/vnd.jupyter.widget-view+json",
)
WIDGET = "application/vnd.jupyter.widget-view+json"
#: What a raw repr looks like in a saved output.
RAW_REPR = re.compile(
    r"^<[\w.]+ object at 0x|^<wslab\.|^(HBox|VBox|HTML)\(|<IPython\.core\.display"
)
#: The most non-blank lines a lesson's code cell may have ("about ten").
MAX_LINES = 12


def load(name: str) -> dict[str, Any]:
    return json.loads((NOTEBOOKS / f"{name}.ipynb").read_text(encoding="utf-8"))


def source(cell: dict[str, Any]) -> str:
    text = cell["source"]
    return text if isinstance(text, str) else "".join(text)


def markdown(notebook: dict[str, Any]) -> list[str]:
    return [source(c) for c in notebook["cells"] if c["cell_type"] == "markdown"]


def test_the_lessons_are_the_course() -> None:
    """The notebooks are the twelve lessons of wslab.lessons.COURSE, no more, no less."""
    found = sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"))
    assert found == LESSONS


@pytest.mark.parametrize("name", LESSONS)
def test_navigation_links_at_top_and_bottom(name: str) -> None:
    cells = markdown(load(name))
    index = LESSONS.index(name)
    for where, cell in (("top", cells[0]), ("bottom", cells[-1])):
        targets = LINK.findall(cell)
        if index > 0:
            assert f"{LESSONS[index - 1]}.ipynb" in targets, f"{where}: no link to previous"
            assert "00-start-here.ipynb" in targets, f"{where}: no link to the index"
        if index < len(LESSONS) - 1:
            assert f"{LESSONS[index + 1]}.ipynb" in targets, f"{where}: no link to next"


def test_the_start_page_links_every_lesson() -> None:
    targets = {t for cell in markdown(load("00-start-here")) for t in LINK.findall(cell)}
    assert {f"{stem}.ipynb" for stem in LESSONS[1:]} <= targets


@pytest.mark.parametrize("name", LESSONS)
def test_relative_links_point_to_existing_files(name: str) -> None:
    for cell in markdown(load(name)):
        for target in LINK.findall(cell):
            if "://" in target or target.startswith("#"):
                continue
            path = NOTEBOOKS / target.split("#")[0]
            assert path.exists(), f"{name}: broken link to {target}"


@pytest.mark.parametrize("name", LESSONS)
def test_learning_goals_at_the_top(name: str) -> None:
    assert "**Learning goals.**" in markdown(load(name))[0]


@pytest.mark.parametrize("name", LESSONS)
def test_cites_rfc_sections(name: str) -> None:
    text = "\n".join(source(c) for c in load(name)["cells"])
    assert "RFC 6455" in text
    assert RFC_SECTION.search(text), f"{name} cites no section of RFC 6455"


@pytest.mark.parametrize("name", LESSONS)
def test_has_a_picture(name: str) -> None:
    outputs = [o for c in load(name)["cells"] if c["cell_type"] == "code" for o in c["outputs"]]
    assert any(any(m in o.get("data", {}) for m in PICTURE_MIME) for o in outputs)


@pytest.mark.parametrize("name", LESSONS)
def test_ends_with_a_clean_check_yourself_quiz(name: str) -> None:
    cells = load(name)["cells"]
    headings = [i for i, c in enumerate(cells) if source(c).startswith("## Check yourself")]
    assert headings, f"{name} has no '## Check yourself' section"
    code = [c for c in cells[headings[-1] :] if c["cell_type"] == "code"]
    assert len(code) == 2, "the quiz is two code cells: the answers, then the check"
    assert "answers = {" in source(code[0])
    assert "wslab.quiz.check(answers" in source(code[1])
    # The lesson ends with a markdown cell that says how to stop everything.
    assert cells[-1]["cell_type"] == "markdown"
    printed = "".join(
        "".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
        for o in code[1]["outputs"]
    )
    # Committed unanswered: the check must report that, for every question.
    questions = source(code[0]).count(": None,")
    assert questions >= 3
    assert printed.count("not answered yet") == questions
    assert f"0 of {questions} right" in printed


@pytest.mark.parametrize("name", LESSONS)
def test_committed_without_errors(name: str) -> None:
    for cell in load(name)["cells"]:
        if cell["cell_type"] == "code":
            assert cell["execution_count"] is not None, f"{name}: a cell was never run"
            for output in cell["outputs"]:
                assert output["output_type"] != "error", f"{name}: stored error output"
                if output["output_type"] == "stream":
                    assert output["name"] == "stdout", f"{name}: stderr in stored outputs"


@pytest.mark.parametrize("name", LESSONS)
def test_run_all_leaves_everything_running(name: str) -> None:
    """Contract 3.8: no code cell stops the lesson's servers; the last cell says how."""
    cells = load(name)["cells"]
    for cell in cells:
        if cell["cell_type"] == "code":
            assert "stop_all()" not in source(cell), f"{name}: a clean-up cell"
    last = source(cells[-1])
    assert "wslab.stop_all()" in last and "Shut Down Kernel" in last


@pytest.mark.parametrize("name", LESSONS)
def test_steps_are_short(name: str) -> None:
    for cell in load(name)["cells"]:
        if cell["cell_type"] == "code":
            lines = [line for line in source(cell).splitlines() if line.strip()]
            assert len(lines) <= MAX_LINES, f"{name} {cell['id']}: {len(lines)} lines"


def outputs(name: str) -> list[dict[str, Any]]:
    return [o for c in load(name)["cells"] if c["cell_type"] == "code" for o in c["outputs"]]


@pytest.mark.parametrize("name", LESSONS)
def test_saved_outputs_look_intentional(name: str) -> None:
    """Opened before anything runs (untrusted, no kernel), a lesson shows no raw repr,
    no link to a server that is gone, and every picture and widget has a fallback
    that JupyterLab renders untrusted (text/html: sanitized, but rendered)."""
    assert "widgets" not in load(name)["metadata"], f"{name}: stored widget state"
    for output in outputs(name):
        data = output.get("data", {})
        text = "".join(data.get("text/plain", ""))
        rich = {"text/html", "image/png"} & set(data)
        if WIDGET in data or "image/svg+xml" in data:
            assert "text/html" in data, f"{name}: a widget or SVG without a fallback"
        if WIDGET in data:
            assert "run this cell" in "".join(data["text/html"]).lower()
        if not rich:
            assert not RAW_REPR.search(text), f"{name}: raw repr {text[:80]!r}"
        shown = text + "".join(output.get("text", ""))  # JupyterLab links URLs in text
        assert not re.search(r"https?://(127\.0\.0\.1|localhost)", shown), (
            f"{name}: a link to a server that no longer runs: {shown[:120]!r}"
        )
        html = "".join(data.get("text/html", ""))
        assert "<svg" not in html, f"{name}: inline SVG is stripped from untrusted HTML"
        assert not re.search(r'href="https?://(127\.0\.0\.1|localhost)', html), (
            f"{name}: a link to a server that no longer runs"
        )
