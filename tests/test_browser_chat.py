"""The served chat page in a real headless Chromium, against the chat handler.

The browser's own WebSocket implementation talks to the in-kernel server,
and a ``wslab.Client`` in this process takes part in the same chat room.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import wslab
from wslab.client import Client
from wslab.server import Server
from wslab.traffic import Kind

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]

ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


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
    page.goto(chat.page_url + "?name=Browser")
    page.wait_for_function("document.getElementById('status').textContent === 'open'")

    with Client(chat.url + "?name=Python") as python:
        page.locator("#messages li", has_text="* Python joined").wait_for()

        page.fill("#message", "hello from the browser")
        page.click("#send")
        recv_until(python, "Browser: hello from the browser")

        python.send("hello from Python")
        page.locator("#messages li", has_text="Python: hello from Python").wait_for()
        assert sorted(c.name or "" for c in chat.clients) == ["Browser", "Python"]

    page.locator("#messages li", has_text="* Python left").wait_for()
    # The server saw the browser's Origin (its own page) and accepted it.
    origins = {c.origin for c in chat.clients}
    assert origins == {chat.page_url.rstrip("/")}


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
    assert (
        rejected and "403" in rejected[0].text and other.page_url.rstrip("/") in rejected[0].text
    )
