"""Every lesson in a real JupyterLab, driven by a real Chromium (issue #11).

One JupyterLab server for the module, on a copy of ``notebooks/``; the lessons
run one after the other, each in its own kernel, which is shut down before
the next one starts. For each lesson:

1. **opened as committed** (untrusted, nothing run): no raw repr
   (``HBox(children=...``, ``<wslab.FrameExplorer ...>``), no link to a server
   that is gone, every widget shows its "run this cell" fallback and every
   stored picture renders;
2. **Run All** (the menu's *Run → Run All Cells*): every cell runs, none shows
   an error or writes to stderr, and the your-turn steps, blank as committed,
   give "not yet" feedback instead of a traceback;
3. lesson 05 only, after Run All (contract 3.8: nothing stops its servers):
   the chat works. Alice's box is typed key by key with no delay and Enter
   pressed at once, which used to send cut-off text (ipywidgets #1843): Bob
   must see exactly what was typed. Bob answers with the Send button. Then
   the kernel restarts, and the old windows must say that the kernel went
   away instead of "● open".

A separate test serves the worked solution of lesson 05's JavaScript
your-turn step (``wslab.lessons.client_page``) and chats with it in Chromium.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from _util import launch_chromium, wait_until

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.browser, pytest.mark.kernel, pytest.mark.timeout(300)]

#: The lessons this module runs: all twelve.
LESSONS = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))
#: The ChatClient text box's placeholder (wslab/widgets.py); it finds the widgets.
PLACEHOLDER = "Type a message, press Enter to send"
#: Raw reprs that must never show in a saved lesson.
RAW = re.compile(
    r"HBox\(children|VBox\(children|<wslab\.(ChatClient|ChatInput|FrameExplorer|TrafficLog)"
    r"|object at 0x|<IPython\.core\.display"
)


@dataclass
class Lab:
    """A running JupyterLab server."""

    url: str
    token: str
    root: Path
    log: Path

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError as error:
            return f"(no log: {error})"


def _free_port() -> int:
    # JupyterLab has no port=0; ask the OS for a free port and hand it over.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _api(lab_url: str, token: str, path: str, method: str = "GET") -> Any:
    request = urllib.request.Request(
        f"{lab_url}{path}", method=method, headers={"Authorization": f"token {token}"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        body = response.read()
    return json.loads(body) if body else None


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """Start ``jupyter lab`` on a copy of notebooks/; always stop it and its kernels."""
    base = tmp_path_factory.mktemp("lab")
    root = base / "notebooks"
    # A copy: running cells must never write outputs into the repository.
    shutil.copytree(ROOT / "notebooks", root)
    log = base / "jupyter.log"
    token = secrets.token_hex(16)
    port = _free_port()
    env = dict(os.environ)
    # Isolate the user's settings, workspaces and runtime files; the data
    # dirs stay default so the installed lab extensions (widgets) are found.
    for name, sub in [
        ("JUPYTER_CONFIG_DIR", "config"),
        ("JUPYTER_RUNTIME_DIR", "runtime"),
        ("JUPYTERLAB_SETTINGS_DIR", "settings"),
        ("JUPYTERLAB_WORKSPACES_DIR", "workspaces"),
    ]:
        (base / sub).mkdir()
        env[name] = str(base / sub)
    # Never fetch the Jupyter news feed (no network here), and do not ask.
    notification = base / "settings" / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True)
    (notification / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    # Render every cell, not only those in view (JupyterLab 4 windows long
    # notebooks), so that the checks see every output of a lesson.
    tracker = base / "settings" / "@jupyterlab" / "notebook-extension"
    tracker.mkdir(parents=True)
    (tracker / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--port-retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        # Exposes window.jupyterapp, so the test can run JupyterLab commands.
        "--LabApp.expose_app_in_browser=True",
        # No network here: do not fetch news or check for updates.
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if os.geteuid() == 0:  # containers often run as root; JupyterLab refuses without this
        command.append("--allow-root")
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            command, cwd=base, env=env, stdout=log_file, stderr=subprocess.STDOUT
        )
    lab = Lab(url=url, token=token, root=root, log=log)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"jupyter lab exited with {process.returncode}:\n{lab.log_tail()}")
            try:
                _api(url, token, "/api/status")
                break
            except (OSError, urllib.error.URLError):
                if time.monotonic() > deadline:
                    pytest.fail(f"jupyter lab did not answer in 60 s:\n{lab.log_tail()}")
                time.sleep(0.2)
        yield lab
    finally:
        # /api/shutdown stops the kernels too; a signal is the fallback.
        try:
            _api(url, token, "/api/shutdown", method="POST")
        except (OSError, urllib.error.URLError):
            pass
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


@pytest.fixture(scope="module")
def page(lab: Lab) -> Iterator[Any]:
    """A Chromium page (Debian's chromium, headless)."""
    with launch_chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(30_000)
        yield page


# JavaScript run in the page. ``app`` is window.jupyterapp; the lesson's
# notebook panel is kept in window.wslabLesson when it is opened.
_PANEL = "window.wslabLesson"

# Runs the cells above (stop >= 0) or from (stop < 0) the cell at |stop|.
_RUN = f"""async ([index, command]) => {{
    const panel = {_PANEL};
    panel.content.activeCellIndex = index;
    await window.jupyterapp.commands.execute(command);
}}"""

# True when every code cell in [start, end) ran and the kernel is idle again.
_DONE = f"""([start, end]) => {{
    const panel = {_PANEL};
    const cells = panel.content.widgets.slice(start, end);
    const ran = cells.every(cell => cell.model.type !== "code"
        || (cell.model.executionCount !== null && !cell.node.classList.contains("jp-mod-running")
            && cell.model.executionState !== "running"));
    return ran && panel.sessionContext.session.kernel.status === "idle";
}}"""

# Every error output (and stderr stream) of the cells in [start, end).
_ERRORS = f"""([start, end]) => {{
    const cells = {_PANEL}.content.widgets.slice(start, end);
    const found = [];
    for (const cell of cells) {{
        if (cell.model.type !== "code") continue;
        for (const output of cell.model.outputs.toJSON()) {{
            if (output.output_type === "error") found.push(output.ename + ": " + output.evalue);
            const stderr = output.output_type === "stream" && output.name === "stderr";
            if (stderr) found.push(output.text);
        }}
    }}
    return found;
}}"""


# Every output area's text and links, and whether its pictures rendered.
_SHOWN = f"""() => {{
    const panel = {_PANEL};
    const areas = Array.from(panel.content.node.querySelectorAll(".jp-OutputArea-output"));
    return areas.map(area => ({{
        text: area.innerText,
        links: Array.from(area.querySelectorAll("a[href]")).map(a => a.getAttribute("href")),
        images: Array.from(area.querySelectorAll("img")).map(img => img.naturalWidth),
    }}));
}}"""

# Shut the lesson's kernel down and close its tab, so the next lesson has the CPU.
_CLOSE = f"""async () => {{
    const panel = {_PANEL};
    await panel.sessionContext.shutdown();
    panel.context.model.dirty = false;  // close without the "save changes?" dialog
    panel.dispose();
}}"""


def _chat_widget(page: Any, name: str) -> Any:
    """The ChatClient VBox of ``name``: it holds the text box and 'Chat as <name>'."""
    return page.locator(".wslab-chat").filter(has_text=f"Chat as {name}")


# The lesson is the current tab, its kernel started and idle.
_OPENED = f"""(path) => {{
    const panel = {_PANEL};
    const kernel = panel && panel.sessionContext && panel.sessionContext.session
        && panel.sessionContext.session.kernel;
    return Boolean(panel && panel.context && panel.context.path === path
        && panel.content.widgets.length && kernel && kernel.status === "idle");
}}"""


def _open(page: Any, lab: Lab, lesson: str) -> None:
    """Open a lesson in the one JupyterLab page, as a double click in the file browser does."""
    if "/lab" not in page.url:
        # ?reset: start from an empty workspace, not from the tabs of an earlier run.
        page.goto(f"{lab.url}/lab?reset&token={lab.token}")
        page.wait_for_function("() => Boolean(window.jupyterapp && window.jupyterapp.shell)")
        page.wait_for_function("() => window.jupyterapp.commands.hasCommand('docmanager:open')")
    page.evaluate(
        """async (path) => {
            const app = window.jupyterapp;
            window.wslabLesson = await app.commands.execute("docmanager:open", {path});
            app.shell.activateById(window.wslabLesson.id);
        }""",
        lesson,
    )
    page.wait_for_function(_OPENED, arg=lesson, timeout=90_000)


def _check_as_committed(page: Any, lesson: str) -> None:
    """Before anything runs: intentional outputs only."""
    page.wait_for_function(
        f"() => {_PANEL}.content.node.querySelectorAll('.jp-OutputArea-output').length > 0"
    )
    time.sleep(0.5)  # let images decode
    shown = page.evaluate(_SHOWN)
    for area in shown:
        assert not RAW.search(area["text"]), f"{lesson}: raw repr shown: {area['text'][:120]!r}"
        for href in area["links"]:
            assert not re.match(r"https?://(127\.0\.0\.1|localhost)", href), (
                f"{lesson}: a link to a server that is gone: {href}"
            )
        assert all(width > 0 for width in area["images"]), f"{lesson}: a picture did not render"
    widgets = [a for a in shown if "run this cell" in a["text"].lower()]
    if lesson.startswith(("03", "05")):
        assert widgets, f"{lesson}: no widget fallback shown"


def _run_all(page: Any, lesson: str) -> int:
    total: int = page.evaluate(f"() => {_PANEL}.content.widgets.length")
    page.evaluate(_RUN, [0, "notebook:run-all-cells"])
    page.wait_for_function(_DONE, arg=[0, total], timeout=90_000)
    assert page.evaluate(_ERRORS, [0, total]) == [], f"{lesson}: errors after Run All"
    text = " ".join(a["text"] for a in page.evaluate(_SHOWN))
    assert "Traceback" not in text
    if lesson != "00-start-here.ipynb" or "Not yet" in text:
        assert "Not yet" in text, f"{lesson}: the blank your-turn steps gave no feedback"
    return total


def _chat(page: Any) -> None:
    """Lesson 05 after Run All: type fast, press Enter; Bob sees exactly that."""
    from playwright.sync_api import expect

    alice, bob = _chat_widget(page, "alice"), _chat_widget(page, "bob")
    expect(alice).to_have_count(1)
    expect(bob).to_have_count(1)
    alice.scroll_into_view_if_needed()
    expect(alice).to_contain_text("● open")
    expect(bob).to_contain_text("● open")
    alice_box = alice.get_by_placeholder(PLACEHOLDER)
    bob_box = bob.get_by_placeholder(PLACEHOLDER)
    expect(alice_box).to_be_enabled()
    for _ in range(3):
        # Key by key, no delay, then Enter at once: the value updates are still
        # on their way when Enter fires; the text must travel with Enter.
        said = f"typed fast {secrets.token_hex(4)} and sent with enter"
        alice_box.press_sequentially(said, delay=0)
        alice_box.press("Enter")
        expect(bob).to_contain_text(f"alice: {said}")
        expect(alice_box).to_have_value("")
    lines = bob.inner_text()
    cut = [line for line in lines.splitlines() if line.startswith("alice: typed")]
    assert all(line.endswith("sent with enter") for line in cut), f"cut-off text sent: {cut}"
    answer = f"hi alice {secrets.token_hex(3)}"
    bob_box.press_sequentially(answer, delay=0)
    bob.get_by_role("button", name="Send").click()
    expect(alice).to_contain_text(f"bob: {answer}")


def _restart_shows_stale_windows(page: Any) -> None:
    """After a kernel restart, the old windows say so and take no input."""
    from playwright.sync_api import expect

    page.evaluate(f"async () => {{ await {_PANEL}.sessionContext.session.kernel.restart(); }}")
    alice = _chat_widget(page, "alice")
    expect(alice.locator(".wslab-gone")).to_be_visible()
    expect(alice).to_contain_text("the kernel went away")
    expect(alice.locator(".wslab-live")).to_be_hidden()


def test_every_lesson_in_jupyterlab(lab: Lab, page: Any) -> None:
    shots = lab.root.parent
    done = []
    seconds: dict[str, float] = {}  # per lesson, open to closed (shown with pytest -s)
    for lesson in LESSONS:
        try:
            start = time.monotonic()
            _open(page, lab, lesson)
            _check_as_committed(page, lesson)
            _run_all(page, lesson)
            if lesson.startswith("05"):
                _chat(page)
                page.screenshot(path=str(shots / "05-chat-widgets.png"))
                _restart_shows_stale_windows(page)
            page.evaluate(_CLOSE)
            seconds[lesson[:2]] = time.monotonic() - start
            done.append(lesson)
        except Exception as error:
            shot = shots / f"failure-{lesson}.png"
            try:
                page.screenshot(path=str(shot), full_page=True)
            except Exception as shot_error:  # the page itself may be gone
                shot = Path(f"(no screenshot: {shot_error})")
            pytest.fail(
                f"{lesson} in JupyterLab failed (after {done}): {error}\nscreenshot: {shot}\n"
                f"jupyter log (last 2,000 chars):\n{lab.log_tail()}",
                pytrace=False,
            )
    print(
        "seconds per lesson in JupyterLab:", ", ".join(f"{n} {s:.1f}" for n, s in seconds.items())
    )


def test_students_javascript_client_chats(page: Any) -> None:
    """Lesson 05's worked JavaScript client, served by wslab.serve(page=...), in Chromium."""
    import wslab
    from wslab import practice

    namespace: dict[str, Any] = {}
    exec(practice.step("05-js-client").solution, namespace)
    server = wslab.serve("chat", page=wslab.lessons.client_page(namespace["MY_CLIENT"]))
    try:
        with wslab.Client(server) as friend:
            page.goto(server.page_url)
            page.wait_for_selector("#log li")  # "* connected", then the join notice
            page.locator("#box").press_sequentially("hello from my own client", delay=0)
            page.locator("#box").press("Enter")
            wait_until(lambda: "me: hello from my own client" in friend.messages, timeout=10)
            friend.send("welcome")
            page.wait_for_function(
                "() => document.getElementById('log').innerText.includes('welcome')"
            )
            assert "error in your script" not in page.locator("#log").inner_text()
    finally:
        server.stop()
