"""Render the lessons to static HTML in build/html/ (``make html``).

The lessons are rendered with their stored outputs, exactly as committed (run
``scripts/execute_notebooks.py`` first to refresh them); nothing is executed,
so no server starts. Links between lessons are rewritten from ``.ipynb`` to
``.html`` so that the pages link to each other, and ``index.html`` is the
start page (lesson 00). Widgets show as their saved state, and only when the
page can load the Jupyter widgets library from unpkg.com (offline they are
blank), so a short note follows each one; they are live only in a running
notebook.

Usage::

    .venv/bin/python scripts/render_html.py [--out build/html]
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
# A markdown link to another lesson, e.g. "](03-frame-bytes.ipynb)" or "...ipynb#section)".
LESSON_LINK = re.compile(r"\]\(([0-9]{2}-[\w-]+)\.ipynb(#[^)]*)?\)")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
# Shown under every widget: without the widgets library (from a CDN) the widget
# area is empty, and even with it the widget is a picture, not a live one.
WIDGET_NOTE = (
    '<p style="color: #666; font-style: italic">A live widget: run this lesson in Jupyter '
    "to use it. Here it shows its saved state, if your browser can load the Jupyter "
    "widgets library from unpkg.com.</p>"
)


def render(path: Path, out: Path, exporter: HTMLExporter) -> Path:
    """Render one notebook to ``out/<name>.html`` and return that path."""
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            cell.source = LESSON_LINK.sub(r"](\1.html\2)", cell.source)
        elif cell.cell_type == "code":
            outputs = []
            for output in cell.outputs:
                outputs.append(output)
                if WIDGET_VIEW in output.get("data", {}):
                    note = nbformat.v4.new_output("display_data", data={"text/html": WIDGET_NOTE})
                    outputs.append(note)
            cell.outputs = outputs
    body, _ = exporter.from_notebook_node(notebook, resources={"metadata": {"name": path.stem}})
    target = out / f"{path.stem}.html"
    target.write_text(body, encoding="utf-8")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "html")
    args = parser.parse_args(argv)
    lessons = sorted(NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"))
    if not lessons:
        print(f"no lessons found in {NOTEBOOKS}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    exporter = HTMLExporter(template_name="lab")
    for path in lessons:
        print(render(path, args.out, exporter))
    shutil.copyfile(args.out / f"{lessons[0].stem}.html", args.out / "index.html")
    print(args.out / "index.html")
    return 0


if __name__ == "__main__":
    sys.exit(main())
