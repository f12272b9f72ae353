"""Lesson 05 in a real JupyterLab, driven by a real Chromium (issue #4).

The test starts JupyterLab headless on a copy of ``notebooks/``, opens
``05-chat-app.ipynb`` in Chromium, runs its cells, types into Alice's and
Bob's ``ChatClient`` widgets and waits for the broadcast to show up in both
widgets' message lists. That is the whole round trip a student relies on:
browser widget -> comm message -> kernel -> in-kernel WebSocket server
(RFC 6455 messages, section 6) -> widget state update -> browser DOM.

The lesson's "Clean up" cell closes the widgets and stops the chat server, so
the test runs every cell *above* it first, chats, and only then runs the rest
of the notebook (which must also finish without an error).
"""

from __future__ import annotations

import json
import os
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
from _util import launch_chromium

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.browser, pytest.mark.kernel, pytest.mark.timeout(180)]

LESSON = "05-chat-app.ipynb"
#: The ChatClient text box's placeholder (wslab/widgets.py); it finds the widgets.
PLACEHOLDER = "Type a message, press Enter to send"
#: The first line of the lesson's "Clean up" cell.
CLEANUP = "alice.close()"


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


# JavaScript run in the page. ``app`` is window.jupyterapp; the notebook panel
# is the shell's current widget once the notebook is open.
_PANEL = "window.jupyterapp && window.jupyterapp.shell.currentWidget"

_KERNEL_IDLE = f"""() => {{
    const panel = {_PANEL};
    const kernel = panel && panel.sessionContext && panel.sessionContext.session
        && panel.sessionContext.session.kernel;
    return Boolean(panel && panel.content && panel.content.widgets.length
        && kernel && kernel.status === "idle");
}}"""

_CELL_INDEX = f"""(start) => {{
    const cells = {_PANEL}.content.widgets;
    return cells.findIndex(cell => cell.model.sharedModel.getSource().startsWith(start));
}}"""

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


# The text of a cell's stream and text/plain outputs.
_OUTPUT_TEXT = f"""(index) => {{
    const cell = {_PANEL}.content.widgets[index];
    return cell.model.outputs.toJSON().map(output => {{
        const text = output.text || (output.data && output.data["text/plain"]) || "";
        return Array.isArray(text) ? text.join("") : text;
    }}).join("");
}}"""


def _chat_widget(page: Any, name: str) -> Any:
    """The ChatClient VBox of ``name``: it holds the text box and 'Chat as <name>'."""
    return page.locator(
        ".widget-vbox", has=page.locator(f'input[placeholder="{PLACEHOLDER}"]')
    ).filter(has_text=f"Chat as {name}")


def _run_lesson(page: Any, lab: Lab, shots: Path) -> None:
    from playwright.sync_api import expect

    page.goto(f"{lab.url}/lab/tree/{LESSON}?token={lab.token}")
    page.wait_for_function(_KERNEL_IDLE, timeout=90_000)

    cleanup = page.evaluate(_CELL_INDEX, CLEANUP)
    total = page.evaluate(f"() => {_PANEL}.content.widgets.length")
    assert cleanup > 0, f"no cell starting with {CLEANUP!r} in {LESSON}"

    # Every cell above the clean-up: the servers start and the widgets show.
    page.evaluate(_RUN, [cleanup, "notebook:run-all-above"])
    page.wait_for_function(_DONE, arg=[0, cleanup], timeout=90_000)
    assert page.evaluate(_ERRORS, [0, cleanup]) == []

    alice, bob = _chat_widget(page, "alice"), _chat_widget(page, "bob")
    expect(alice).to_have_count(1)
    expect(bob).to_have_count(1)
    alice.scroll_into_view_if_needed()
    # The widgets rendered and connected: the status line says "open" and the
    # text box is enabled (ChatClient disables it unless the connection is open).
    expect(alice).to_contain_text("● open")
    expect(bob).to_contain_text("● open")
    alice_box = alice.get_by_placeholder(PLACEHOLDER)
    bob_box = bob.get_by_placeholder(PLACEHOLDER)
    expect(alice_box).to_be_enabled()

    # Alice types and presses Enter, as a student would: the chat handler
    # broadcasts "alice: <text>" to everyone in the room, Bob included.
    said = f"hello from Chromium {secrets.token_hex(3)}"
    # fill() puts the text in as one input event, like a paste, so the value
    # reaches the kernel before the Enter "submit" message. Typed key by key,
    # it may not: ipywidgets holds back value updates while the kernel is busy
    # with the previous one, but sends "submit" at once (ipywidgets PR #4034).
    alice_box.fill(said)
    alice_box.press("Enter")
    expect(alice).to_contain_text(f"alice: {said}")
    expect(bob).to_contain_text(f"alice: {said}")
    expect(alice_box).to_have_value("")  # send_text() clears the box

    # Bob answers with the Send button.
    answer = f"hi alice {secrets.token_hex(3)}"
    bob_box.fill(answer)
    bob.get_by_role("button", name="Send").click()
    expect(alice).to_contain_text(f"bob: {answer}")
    expect(bob).to_contain_text(f"bob: {answer}")
    alice.scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "05-chat-widgets.png"))

    # The rest of the lesson: clean up and the check-yourself cells.
    page.evaluate(_RUN, [cleanup, "notebook:run-all-below"])
    page.wait_for_function(_DONE, arg=[cleanup, total], timeout=60_000)
    assert page.evaluate(_ERRORS, [cleanup, total]) == []
    # ChatClient.close() closes the widget too, so the front end removes it;
    # the last line of the clean-up cell lists the running servers: none.
    expect(alice).to_have_count(0)
    expect(bob).to_have_count(0)
    servers = page.evaluate(_OUTPUT_TEXT, cleanup)
    assert servers.strip().endswith("[]"), f"servers left after the clean-up cell: {servers!r}"


def test_lesson_05_chat_widgets_round_trip_in_jupyterlab(lab: Lab, page: Any) -> None:
    shots = lab.root.parent
    try:
        _run_lesson(page, lab, shots)
    except Exception as error:
        shot = shots / "failure.png"
        try:
            page.screenshot(path=str(shot), full_page=True)
        except Exception as shot_error:  # the page itself may be gone
            shot = Path(f"(no screenshot: {shot_error})")
        pytest.fail(
            f"lesson 05 in JupyterLab failed: {error}\nscreenshot: {shot}\n"
            f"jupyter log (last 2,000 chars):\n{lab.log_tail()}",
            pytrace=False,
        )
