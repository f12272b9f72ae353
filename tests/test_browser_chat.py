"""The served chat page in a real headless Chromium, against the chat handler.

The browser's own WebSocket implementation talks to the in-kernel server,
and a ``wslab.Client`` in this process takes part in the same chat room.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from _util import launch_chromium, wait_until

import wslab
from wslab.client import Client
from wslab.server import Server
from wslab.traffic import Kind

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with launch_chromium() as browser:
        yield browser


@pytest.fixture
def chat() -> Iterator[Server]:
    server = wslab.serve("chat", port=0)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_default_timeout(10_000)
        yield page
    finally:
        context.close()


def recv_until(client: Client, expected: str) -> list[str | bytes]:
    """Read messages until ``expected`` arrives (notices may come first)."""
    seen: list[str | bytes] = []
    while expected not in seen:
        seen.append(client.recv(timeout=10))
    return seen


def test_browser_and_python_client_chat_both_ways(chat: Server, page: Any) -> None:
    page.goto(chat.page_url + "&name=Browser")
    page.wait_for_function("document.getElementById('status').textContent === 'open'")
    # The page passes the token on, and never shows it.
    assert chat.token is not None
    assert chat.token not in (page.locator("#url").text_content() or "")

    with Client(chat.url + "&name=Python") as python:
        page.locator("#messages li", has_text="* Python joined").wait_for()

        page.fill("#message", "hello from the browser")
        page.click("#send")
        recv_until(python, "Browser: hello from the browser")
        # The room sends it back to its sender too: the page shows it once.
        page.locator("#messages li", has_text="Browser: hello from the browser").wait_for()
        assert page.locator("#messages li", has_text="hello from the browser").count() == 1

        python.send("hello from Python")
        page.locator("#messages li", has_text="Python: hello from Python").wait_for()
        assert sorted(c.name or "" for c in chat.clients) == ["Browser", "Python"]

    page.locator("#messages li", has_text="* Python left").wait_for()
    # The server saw the browser's Origin (its own page) and accepted it.
    origins = {c.origin for c in chat.clients}
    assert origins == {f"http://127.0.0.1:{chat.port}"}


def test_the_page_without_its_token_is_refused(chat: Server, page: Any) -> None:
    response = page.goto(f"http://127.0.0.1:{chat.port}/")
    assert response is not None and response.status == 403
    assert "private" in page.content()


def test_a_foreign_page_cannot_open_the_socket(chat: Server, page: Any) -> None:
    # Another server's page is another origin (another port): the browser sends
    # that Origin, and the chat server answers 403 (cross-site WebSocket hijacking).
    other = wslab.serve("echo", port=0)
    try:
        page.goto(other.page_url)
        outcome = page.evaluate(
            """(url) => new Promise((resolve) => {
                const ws = new WebSocket(url);
                ws.onopen = () => resolve("open");
                ws.onclose = (event) => resolve(`closed ${event.code}`);
            })""",
            chat.url,
        )
    finally:
        other.stop()
    assert outcome == "closed 1006"  # a browser hides the 403 from the page
    rejected = [r for r in chat.recorder.records if r.kind is Kind.ERROR]
    assert rejected and "403" in rejected[0].text
    assert f"Origin http://127.0.0.1:{other.port} " in rejected[0].text


# -- through jupyter-server-proxy, as on JupyterHub or Binder -------------------

TOKEN = "wslab-test-token"
# Only the proxy: the other installed server extensions just slow the start.
EXTENSIONS_OFF = {
    name: False
    for name in (
        "jupyterlab",
        "notebook",
        "jupyter_lsp",
        "nbgrader.server_extensions.formgrader",
        "nbgrader.server_extensions.assignment_list",
        "nbgrader.server_extensions.course_list",
        "nbgrader.server_extensions.validate_assignment",
    )
}


@pytest.fixture(scope="module")
def jupyter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Jupyter server with jupyter-server-proxy on a free port; its base URL."""
    tmp = tmp_path_factory.mktemp("jupyter")
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp))
    command = [
        sys.executable,
        "-m",
        "jupyter_server",
        "--no-browser",
        "--allow-root",
        "--ServerApp.ip=127.0.0.1",
        "--ServerApp.port=0",
        f"--IdentityProvider.token={TOKEN}",
        f"--ServerApp.root_dir={tmp}",
        f"--ServerApp.jpserver_extensions={EXTENSIONS_OFF!r}",
    ]
    with open(tmp / "server.log", "wb") as log:
        process = subprocess.Popen(command, cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not (found := list(tmp.glob("jpserver-*.json"))):
            assert process.poll() is None, (tmp / "server.log").read_text()
            assert time.monotonic() < deadline, "jupyter server did not start"
            time.sleep(0.05)
        time.sleep(0.1)  # the file is written in one go, but let it land
        port = json.loads(found[0].read_text())["port"]
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_chat_page_through_jupyter_server_proxy(chat: Server, page: Any, jupyter: str) -> None:
    # The browser's Origin is the Jupyter server's; the proxy forwards Host and
    # Origin unchanged, so the same-host rule accepts it without any setting.
    # One link carries both secrets: Jupyter's own ?token= logs the browser in,
    # and ?wslab_token= is the chat's (a different name, so neither is mistaken
    # for the other).
    page.goto(f"{jupyter}/proxy/{chat.port}/?token={TOKEN}&wslab_token={chat.token}&name=Proxied")
    page.wait_for_function("document.getElementById('status').textContent === 'open'")
    assert page.locator("#url").text_content() == (
        f"{jupyter.replace('http', 'ws')}/proxy/{chat.port}/chat?wslab_token=…&name=Proxied"
    )
    # The proxy answers the browser before it connects to the server, so the
    # page says 'open' first: wait until the server has the page as a member.
    wait_until(
        lambda: any(c.name == "Proxied" for c in chat.clients),
        timeout=10,
        what="the proxied page joined the chat",
    )
    with Client(chat.url + "&name=Python") as python:
        page.locator("#messages li", has_text="* Python joined").wait_for()
        page.fill("#message", "through the proxy")
        page.click("#send")
        recv_until(python, "Proxied: through the proxy")
        python.send("and back")
        page.locator("#messages li", has_text="Python: and back").wait_for()
        proxied = [c for c in chat.clients if c.name == "Proxied"]
        assert [c.origin for c in proxied] == [jupyter]
