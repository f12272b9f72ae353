"""``python -m wslab.lessons COURSE WORK``: copy the lessons into a working folder.

What ``make lab`` does before it opens JupyterLab (see
:func:`wslab.lessons.working_copy`), e.g. ``python -m wslab.lessons notebooks my-work``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .course import newer_in_course, working_copy


def main(argv: list[str]) -> int:
    """Copy what is new or updated; say so in a line, and name edited copies left behind."""
    if len(argv) != 2:
        print(
            "usage: python -m wslab.lessons COURSE_FOLDER WORK_FOLDER (e.g. notebooks my-work)",
            file=sys.stderr,
        )
        return 2
    course, work = Path(argv[0]), Path(argv[1])
    existing = {p for p in work.rglob("*") if p.is_file()} if work.is_dir() else set()
    copied = working_copy(course, work)
    updated = sum(path in existing for path in copied)
    print(f"{work}/: {len(copied) - updated} new and {updated} updated course files copied in")
    for path in newer_in_course(course, work):
        print(
            f"{path}: kept as you edited it, but the course has a newer version; "
            f"to get it, rename yours (e.g. to {path.stem}-mine{path.suffix}) and run this again"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
