"""Structure checks for the lesson notebooks (notebooks/NN-*.ipynb).

nbval checks that each lesson runs and that its stored outputs are fresh;
these tests check what every lesson promises its reader: navigation links
that lead somewhere, learning goals at the top, at least one picture, a
citation of RFC 6455, and a "check yourself" quiz at the end that runs clean.
They read the notebooks as JSON and run no kernel, so they take well under a
second.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
LESSONS = [
    "00-start-here",
    "01-why-websockets",
    "02-handshake",
    "03-frame-bytes",
    "04-closing",
    "05-chat-app",
    "06-errors-and-security",
    "07-beyond-websockets",
]
LINK = re.compile(r"\]\(([^)\s]+)\)")
# Section numbers of RFC 6455 go from 1 to 11.
RFC_SECTION = re.compile(r"\b(sections?|RFC 6455) (1[01]|[1-9])(\.\d+)*\b")
PICTURE_MIME = (
    "image/png",
    "image/svg+xml",
    "text/html",
    "application/vnd.jupyter.widget-view+json",
)


def load(name: str) -> dict[str, Any]:
    return json.loads((NOTEBOOKS / f"{name}.ipynb").read_text(encoding="utf-8"))


def source(cell: dict[str, Any]) -> str:
    text = cell["source"]
    return text if isinstance(text, str) else "".join(text)


def markdown(notebook: dict[str, Any]) -> list[str]:
    return [source(c) for c in notebook["cells"] if c["cell_type"] == "markdown"]


def test_all_eight_lessons_exist() -> None:
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


def test_render_html_links_lessons_to_each_other(tmp_path: Path) -> None:
    """``make html`` renders stored outputs and rewrites .ipynb links to .html."""
    import importlib.util

    script = NOTEBOOKS.parent / "scripts" / "render_html.py"
    spec = importlib.util.spec_from_file_location("render_html", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    exporter = module.HTMLExporter(template_name="lab")
    page = module.render(NOTEBOOKS / "02-handshake.ipynb", tmp_path, exporter).read_text()
    assert 'href="03-frame-bytes.html"' in page
    assert 'href="03-frame-bytes.ipynb"' not in page
    assert "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in page  # a stored output, not re-executed
