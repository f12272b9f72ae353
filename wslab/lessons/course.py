"""The course as a whole: its lessons in order, the map, the set-up check, a working copy.

* :data:`COURSE`: the twelve lessons, each with its part of the course
  (the your-turn steps in :mod:`wslab.practice` are grouped by these parts);
* :func:`course_map` and :func:`environment_check`: lesson 00;
* :func:`working_copy`: what ``make lab`` (or ``python -m wslab.lessons``)
  does, so that students work on copies and ``git pull`` never conflicts.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import json
import shutil
import sys
from pathlib import Path

from ..display import HTMLView, svg_view

__all__ = [
    "COURSE",
    "MANIFEST",
    "REQUIREMENTS",
    "course_map",
    "environment_check",
    "newer_in_course",
    "working_copy",
]

#: The twelve lessons: number, file stem, short name, part of the course.
COURSE: tuple[tuple[str, str, str, str], ...] = (
    ("00", "00-start-here", "start", "intro"),
    ("01", "01-why-websockets", "why", "intro"),
    ("02", "02-handshake", "handshake", "core"),
    ("03", "03-frame-bytes", "frames", "core"),
    ("04", "04-closing", "closing", "core"),
    ("05", "05-chat-app", "chat", "apps"),
    ("06", "06-extensions-and-subprotocols", "extensions", "apps"),
    ("07", "07-errors-and-security", "security", "apps"),
    ("08", "08-beyond-websockets", "beyond", "beyond"),
    ("09", "09-staying-connected", "reconnect", "production"),
    ("10", "10-deploying-and-scaling", "deploy", "production"),
    ("11", "11-check-your-server", "check", "production"),
)
_PART_COLOURS = {
    "intro": "#dddddd",
    "core": "#99ccff",
    "apps": "#99dd99",
    "beyond": "#ffcc99",
    "production": "#e0c3f0",
}


def course_map() -> HTMLView:
    """The path through the course: one box per lesson, coloured by part."""
    boxes = []
    for i, (number, _, name, part) in enumerate(COURSE):
        x, y = 10 + (i % 6) * 120, 10 + (i // 6) * 60
        boxes.append(
            f'<rect x="{x}" y="{y}" width="100" height="40" rx="6" '
            f'fill="{_PART_COLOURS[part]}" stroke="#555"/>'
            f'<text x="{x + 50}" y="{y + 17}" text-anchor="middle" font-size="12">{number}</text>'
            f'<text x="{x + 50}" y="{y + 32}" text-anchor="middle" font-size="12">{name}</text>'
        )
        if i % 6:
            boxes.append(
                f'<line x1="{x - 20}" y1="{y + 20}" x2="{x}" y2="{y + 20}" stroke="#555"/>'
            )
    boxes.append('<path d="M 660 50 L 660 60 L 60 60 L 60 70" fill="none" stroke="#555"/>')
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" width="730" height="120" '
        f'font-family="sans-serif">{"".join(boxes)}</svg>'
    )
    names = ", ".join(f"{n} {name}" for n, _, name, _ in COURSE)
    return svg_view(svg, "the course map", f"The lessons in order: {names}")


#: What the lessons import, the package that provides it, and its lowest version.
REQUIREMENTS = (
    ("wslab", "wslab", "0.1"),
    ("websockets", "websockets", "15"),
    ("ipywidgets", "ipywidgets", "8.1"),
    ("anywidget", "anywidget", "0.9"),
    ("matplotlib", "matplotlib", "3.8"),
    ("tornado", "tornado", "6"),
    ("trustme", "trustme", "1.1"),
)


def _as_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".")[:2] if part.isdigit())


def environment_check() -> None:
    """Print one line per requirement: ok, MISSING or TOO OLD, with the fix."""
    problems = 0
    python_ok = sys.version_info >= (3, 11)
    print(f"{'Python >= 3.11':22} {'ok' if python_ok else 'TOO OLD: install Python 3.11+'}")
    problems += not python_ok
    for module, package, lowest in REQUIREMENTS:
        try:
            importlib.import_module(module)
            version = importlib.metadata.version(package)
        except ImportError:
            status = f"MISSING: pip install '{package}>={lowest}'"
        else:
            too_old = _as_tuple(version) < _as_tuple(lowest)
            status = f"TOO OLD: pip install -U '{package}>={lowest}'" if too_old else "ok"
        problems += status != "ok"
        print(f"{package + ' >= ' + lowest:22} {status}")
    print("Everything is in place." if not problems else f"{problems} thing(s) to fix above.")


#: In a working folder: what each course file was when it was last copied in.
MANIFEST = ".wslab-course.json"


def working_copy(course: str | Path, work: str | Path) -> list[Path]:
    """Copy the lessons and the exercises' student version into a working folder.

    Students open the lessons from ``work``, so JupyterLab's autosave and their
    own edits never touch the course files, and ``git pull`` always updates the
    course cleanly. Run it again after an update: new course files are copied
    in, and so are updated ones whose copy the student never changed (a
    manifest in ``work`` remembers what each copy was). A file the student
    changed is never overwritten; to take a fresh copy, rename or delete it.

    Args:
        course: The course's ``notebooks/`` folder.
        work: The working folder, e.g. ``my-work/`` (created if missing).

    Returns:
        The files copied this time.
    """
    course, work = Path(course), Path(work)
    wanted = [*sorted(course.glob("[0-9][0-9]-*.ipynb")), course / "README.md"]
    release = course / "exercises" / "release"
    wanted += sorted(
        p for p in release.rglob("*") if p.is_file() and ".ipynb_checkpoints" not in p.parts
    )
    manifest_path = work / MANIFEST
    try:
        manifest: dict[str, str] = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        manifest = {}
    copied = []
    for source in wanted:
        name = source.relative_to(course).as_posix()
        target = work / name
        if not source.is_file():
            continue
        if target.exists() and _digest(target) != manifest.get(name):
            continue  # the student's own work (or a copy from before the manifest)
        if target.exists() and _digest(source) == manifest.get(name):
            continue  # already the course's current version
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
        manifest[name] = _digest(target)
        copied.append(target)
    if copied:
        manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return copied


def newer_in_course(course: str | Path, work: str | Path) -> list[Path]:
    """The student's edited copies whose course file changed since they were copied.

    :func:`working_copy` keeps them as they are; this names them, so that the
    student hears of the update instead of working on an old lesson unaware.

    Args:
        course: The course's ``notebooks/`` folder.
        work: The working folder, e.g. ``my-work/``.

    Returns:
        The copies in ``work`` (edited by the student) with a newer course version.
    """
    course, work = Path(course), Path(work)
    try:
        manifest: dict[str, str] = json.loads((work / MANIFEST).read_text())
    except (OSError, ValueError):
        return []  # no record of what was copied: nothing to compare with
    stale = []
    for name, copied in sorted(manifest.items()):
        source, target = course / name, work / name
        if not (source.is_file() and target.is_file()):
            continue
        if _digest(target) != copied and _digest(source) != copied:
            stale.append(target)
    return stale


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
