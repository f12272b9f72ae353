"""Regenerate the student release of the exercises with the real nbgrader.

Usage (from the repository root)::

    .venv/bin/python scripts/release_exercises.py          # rewrite notebooks/exercises/release
    .venv/bin/python scripts/release_exercises.py --check  # exit 1 if the release drifted

It copies ``nbgrader_config.py`` and ``source/`` of the course to a temporary
directory and runs ``nbgrader generate_assignment "*"`` there, so the
repository never gets a gradebook, then compares (``--check``) or replaces the
committed ``release/``. ``tests/test_exercises.py`` uses the same functions.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COURSE = ROOT / "notebooks" / "exercises"


def nbgrader(course: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run ``nbgrader <args>`` on the course directory ``course``.

    nbgrader runs ``alembic`` (the gradebook's migrations) as a program, so the
    environment's ``bin`` directory goes first on PATH, whatever the caller's PATH.

    Raises:
        RuntimeError: nbgrader failed; the message holds its log.
    """
    env = dict(
        os.environ,
        PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    )
    command = [sys.executable, "-m", "nbgrader", *args, f"--CourseDirectory.root={course}"]
    result = subprocess.run(
        command, cwd=course, env=env, capture_output=True, text=True, timeout=timeout
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command[2:])} failed:\n{result.stdout}{result.stderr}")
    return result


def copy_course(destination: Path) -> Path:
    """Copy the course's config and sources (not its release or gradebook) to ``destination``."""
    destination.mkdir(parents=True, exist_ok=True)
    shutil.copy2(COURSE / "nbgrader_config.py", destination / "nbgrader_config.py")
    shutil.copytree(COURSE / "source", destination / "source", ignore=_ignored)
    return destination


def generate(course: Path) -> Path:
    """Run ``nbgrader generate_assignment`` for every assignment; return ``release/``."""
    nbgrader(course, "generate_assignment", "*", "--force")
    return course / "release"


def differences(left: Path, right: Path) -> list[str]:
    """List the files that differ between two trees, or exist in only one."""
    found: list[str] = []

    def walk(cmp: filecmp.dircmp[str], prefix: str) -> None:
        found.extend(f"only in {cmp.left}: {prefix}{name}" for name in cmp.left_only)
        found.extend(f"only in {cmp.right}: {prefix}{name}" for name in cmp.right_only)
        # shallow=False: compare contents, not just sizes and modification times.
        _, mismatch, errors = filecmp.cmpfiles(
            cmp.left, cmp.right, cmp.common_files, shallow=False
        )
        found.extend(f"differs: {prefix}{name}" for name in mismatch + errors)
        for name, sub in cmp.subdirs.items():
            walk(sub, f"{prefix}{name}/")

    walk(filecmp.dircmp(left, right, ignore=[".ipynb_checkpoints", "__pycache__"]), "")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="only compare; exit 1 if the release drifted"
    )
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="wslab-release-") as tmp:
        release = generate(copy_course(Path(tmp)))
        committed = COURSE / "release"
        if options.check:
            drift = differences(committed, release) if committed.exists() else ["no release/"]
            for line in drift:
                print(line)
            if drift:
                print("The release drifted from source/: run scripts/release_exercises.py")
            return 1 if drift else 0
        shutil.rmtree(committed, ignore_errors=True)
        shutil.copytree(release, committed)
        print(f"wrote {committed.relative_to(ROOT)}/")
    return 0


def _ignored(directory: str, names: list[str]) -> list[str]:
    return [n for n in names if n in (".ipynb_checkpoints", "__pycache__")]


if __name__ == "__main__":
    sys.exit(main())
