"""The course site (``make html``) works with no network at all.

The site is built once (scripts/render_html.py, about 15 s: two lessons are
executed for their widgets' state), then every page is opened in Chromium from
``file://`` with every other request aborted: no request may fail, no script
may raise, every saved widget must show content, and every link between pages
must lead to a page of the site.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from _util import launch_chromium

pytestmark = [pytest.mark.browser, pytest.mark.kernel]

ROOT = Path(__file__).resolve().parent.parent
RENDER = ROOT / "scripts" / "render_html.py"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, RENDER, "--out", out], capture_output=True, text=True, timeout=300
    )
    if done.returncode != 0 and "npm" in done.stderr:
        pytest.skip(done.stderr.strip())  # no npm, or no network for its first download
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def pages(site: Path) -> list[Path]:
    return sorted(site.rglob("*.html"))


@dataclass
class Visit:
    """What one page did when opened offline."""

    failed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    #: Saved widget views on the page, and how many of them show text.
    widgets: int = 0
    shown: int = 0
    #: The text the widgets show, one string per view.
    widget_texts: list[str] = field(default_factory=list)
    hrefs: list[str] = field(default_factory=list)


#: Wait until the manager has replaced every view's <script> with a rendered widget.
RENDERED = """n => [...document.querySelectorAll('div.jupyter-widgets.jp-OutputArea-output')]
    .filter(area => area.querySelector('.jupyter-widgets')).length >= n"""


@pytest.fixture(scope="module")
def visits(site: Path) -> dict[str, Visit]:
    """Open every page once, in one Chromium page, with every request outside file:// aborted."""
    found: dict[str, Visit] = {}
    current = Visit()

    def only_files(route: Any) -> None:
        if route.request.url.startswith(("file://", "data:", "blob:")):
            route.continue_()
        else:
            current.failed.append(f"{route.request.url}: outside file://")
            route.abort()

    with launch_chromium() as browser:
        context = browser.new_context()
        context.route("**/*", only_files)
        page = context.new_page()
        page.on("requestfailed", lambda r: current.failed.append(f"{r.url}: {r.failure}"))
        page.on("pageerror", lambda e: current.errors.append(str(e)))
        page.on("console", lambda m: current.errors.append(m.text) if m.type == "error" else None)
        for path in pages(site):
            current = found[path.relative_to(site).as_posix()] = Visit()
            page.goto(path.as_uri(), wait_until="load")
            areas = page.locator("div.jupyter-widgets.jp-OutputArea-output")
            current.widgets = areas.count()
            if current.widgets:
                page.wait_for_function(RENDERED, arg=current.widgets, timeout=20_000)
                current.widget_texts = [
                    areas.nth(i).inner_text().strip() for i in range(current.widgets)
                ]
                current.shown = sum(1 for text in current.widget_texts if text)
            current.hrefs = page.eval_on_selector_all("a[href]", "as => as.map(a => a.href)")
        context.close()
    return found


def test_every_page_is_there(site: Path) -> None:
    names = {p.relative_to(site).as_posix() for p in pages(site)}
    lessons = {f"{p.stem}.html" for p in (ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb")}
    release = ROOT / "notebooks" / "exercises" / "release"
    exercises = {
        p.relative_to(release.parent.parent).with_suffix(".html").as_posix()
        for p in release.glob("*/*.ipynb")
    }
    assert lessons and exercises
    assert {"index.html", *lessons, *exercises} <= names


def test_no_request_leaves_the_disk_and_nothing_fails(visits: dict[str, Visit]) -> None:
    problems = [f"{name}: request {f}" for name, v in visits.items() for f in v.failed]
    problems += [f"{name}: error {e}" for name, v in visits.items() for e in v.errors]
    assert not problems, "\n".join(problems)


def test_every_saved_widget_shows_content(visits: dict[str, Visit]) -> None:
    with_widgets = {name: v for name, v in visits.items() if v.widgets}
    assert with_widgets, "no page has a saved widget (are lessons 03 and 05 executed?)"
    empty = [f"{name}: {v.widgets - v.shown} of {v.widgets}" for name, v in with_widgets.items()]
    assert all(v.shown == v.widgets for v in with_widgets.values()), empty


def test_frame_explorer_and_chat_show_their_state(visits: dict[str, Visit]) -> None:
    explorer = "\n".join(visits["03-frame-bytes.html"].widget_texts)
    assert "FIN" in explorer and "masking key" in explorer
    # The chat windows show what Run All said in them: alice's line, in both windows.
    chat = "\n".join(visits["05-chat-app.html"].widget_texts)
    assert chat.count("alice: hi Bob, can you see this?") >= 2


def test_links_between_pages_resolve(visits: dict[str, Visit]) -> None:
    broken = []
    for name, visit in visits.items():
        for href in visit.hrefs:
            url = urlsplit(href)
            if url.scheme == "file" and not Path(unquote(url.path)).exists():
                broken.append(f"{name} -> {href}")
            elif url.scheme == "http" and url.hostname in ("127.0.0.1", "localhost"):
                broken.append(f"{name} -> {href} (a lesson's server, gone)")
    assert not broken, "\n".join(broken)
