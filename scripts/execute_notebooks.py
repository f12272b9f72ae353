"""Re-execute the lesson notebooks in place, so their stored outputs are fresh.

nbval compares a notebook's stored outputs with what running it produces, so
every notebook must be committed exactly as a fresh kernel leaves it. This
script runs each lesson top to bottom with nbclient in a new kernel, with
``notebooks/`` as the working directory (as ``make lab`` opens them), writes
the outputs back and prints how long each lesson took.

It also makes the *solved* copies that the tests run (``--solved DIR``): each
lesson with the worked solution of :mod:`wslab.practice` in every
``your-turn`` cell, and, after it, the feedback a right answer gets. The
other cells keep their stored outputs, so strict nbval on the copies checks
that every solution is right *and* that solving a step changes nothing else.
Widget state is never stored: a freshly opened lesson shows each widget's
"run this cell" fallback instead of a frozen copy.

Usage::

    .venv/bin/python scripts/execute_notebooks.py                 # all lessons
    .venv/bin/python scripts/execute_notebooks.py notebooks/03-frame-bytes.ipynb
    .venv/bin/python scripts/execute_notebooks.py --solved build/solved   # no kernel
    .venv/bin/python -m pytest --nbval --nbval-sanitize-with notebooks/nbval-sanitize.cfg \
        build/solved/*.ipynb
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
#: A lesson that takes longer than this is too slow for the test budget (issue 12).
BUDGET_SECONDS = 20.0
#: And the whole course.
COURSE_BUDGET_SECONDS = 60.0
#: The tag of the cells a student completes (contract 3.7).
YOUR_TURN = "your-turn"
#: The feedback call that follows a your-turn cell, and the step it names.
CHECK = re.compile(r'wslab\.practice\.check\("([\w-]+)"\)')


def lessons() -> list[Path]:
    """Return the lesson notebooks, ``notebooks/NN-*.ipynb``, in order."""
    return sorted(NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"))


def execute(path: Path, *, timeout: int = 60, kernel: str = "python3") -> float:
    """Run one notebook in a fresh kernel, save it, and return the seconds it took.

    Raises:
        CellExecutionError: A cell raised; the notebook is not saved.
    """
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name=kernel,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    start = time.perf_counter()
    client.execute()
    elapsed = time.perf_counter() - start
    # Drop the per-run timing metadata nbclient adds, so that diffs stay small,
    # and the widget state: stored, it would show frozen widgets that look live.
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)
    notebook.metadata.pop("widgets", None)
    nbformat.validate(notebook)
    nbformat.write(notebook, path)
    return elapsed


def your_turn_steps(notebook: Any) -> list[tuple[int, str]]:
    """The your-turn cells of a notebook: (index, the step its feedback cell names).

    Raises:
        ValueError: A your-turn cell is not followed by a feedback cell.
    """
    steps = []
    for i, cell in enumerate(notebook.cells):
        if YOUR_TURN in cell.metadata.get("tags", []):
            following = notebook.cells[i + 1].source if i + 1 < len(notebook.cells) else ""
            match = CHECK.search(following)
            if match is None:
                raise ValueError(
                    f"cell {i}: a your-turn cell without wslab.practice.check after it"
                )
            steps.append((i, match.group(1)))
    return steps


def solved_copy(path: Path, out_dir: Path) -> Path:
    """Write ``path`` with every your-turn step solved, and the feedback it then gets."""
    from wslab import practice

    notebook = nbformat.read(path, as_version=4)
    for index, name in your_turn_steps(notebook):
        step = practice.step(name)
        notebook.cells[index].source = step.solution.rstrip("\n")
        right = practice.Feedback.right_answer(step)
        data = {"text/plain": repr(right), "text/html": right._repr_html_()}
        feedback = notebook.cells[index + 1]
        feedback.outputs = [
            nbformat.v4.new_output(
                "execute_result", data=data, execution_count=feedback.execution_count
            )
        ]
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / path.name
    nbformat.write(notebook, target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, help="notebooks (default: all lessons)")
    parser.add_argument("--timeout", type=int, default=60, help="seconds per cell")
    parser.add_argument(
        "--solved",
        type=Path,
        metavar="DIR",
        help="write solved copies of the lessons into DIR (runs no kernel)",
    )
    args = parser.parse_args(argv)
    paths = args.paths or lessons()
    if args.solved is not None:
        for path in paths:
            print(f"solved copy: {solved_copy(path, args.solved)}")
        return 0
    total, failed = 0.0, False
    for path in paths:
        try:
            seconds = execute(path, timeout=args.timeout)
        except CellExecutionError as error:
            print(f"FAILED {path.name}: {str(error).splitlines()[0]}", file=sys.stderr)
            print(error, file=sys.stderr)
            failed = True
            continue
        total += seconds
        slow = f"  (over the {BUDGET_SECONDS:g} s budget)" if seconds > BUDGET_SECONDS else ""
        print(f"{seconds:6.1f} s  {path.name}{slow}")
    over = (
        f"  (over the {COURSE_BUDGET_SECONDS:g} s budget)" if total > COURSE_BUDGET_SECONDS else ""
    )
    print(f"{total:6.1f} s  total{over}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
