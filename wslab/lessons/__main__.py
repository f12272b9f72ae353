"""``python -m wslab.lessons COURSE WORK``: copy the lessons into a working folder.

What ``make lab`` does before it opens JupyterLab (see
:func:`wslab.lessons.working_copy`), e.g. ``python -m wslab.lessons notebooks my-work``.
"""

from __future__ import annotations

import sys

from .course import working_copy


def main(argv: list[str]) -> int:
    """Copy what is new or updated; print one line per file copied."""
    if len(argv) != 2:
        print(
            "usage: python -m wslab.lessons COURSE_FOLDER WORK_FOLDER (e.g. notebooks my-work)",
            file=sys.stderr,
        )
        return 2
    for path in working_copy(argv[0], argv[1]):
        print(f"copied {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
