"""Re-execute the lesson notebooks in place, so their stored outputs are fresh.

nbval compares a notebook's stored outputs with what running it produces, so
every notebook must be committed exactly as a fresh kernel leaves it. This
script runs each lesson top to bottom with nbclient in a new kernel, with
``notebooks/`` as the working directory (as ``make lab`` opens them), writes
the outputs back and prints how long each lesson took.

Usage::

    .venv/bin/python scripts/execute_notebooks.py                 # all lessons
    .venv/bin/python scripts/execute_notebooks.py notebooks/03-frame-bytes.ipynb
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
#: A lesson that takes longer than this is too slow for the test budget.
BUDGET_SECONDS = 15.0


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
    # Drop the per-run timing metadata nbclient adds, so that diffs stay small.
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)
    nbformat.validate(notebook)
    nbformat.write(notebook, path)
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, help="notebooks (default: all lessons)")
    parser.add_argument("--timeout", type=int, default=60, help="seconds per cell")
    args = parser.parse_args(argv)
    paths = args.paths or lessons()
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
        slow = "  (over the 15 s budget)" if seconds > BUDGET_SECONDS else ""
        print(f"{seconds:6.1f} s  {path.name}{slow}")
    print(f"{total:6.1f} s  total")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
