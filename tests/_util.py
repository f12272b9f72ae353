"""Small helpers every test module shares: polling, and the one Chromium launch.

Import them from here instead of writing another copy::

    from _util import launch_chromium, wait_until   # pytest puts tests/ on sys.path
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

#: Debian's chromium; ``playwright install`` cannot download browsers here.
CHROMIUM_PATH = "/usr/bin/chromium"

#: The one set of launch arguments for headless Chromium on this machine.
#: Without the background-networking flags, Chromium's own connections are
#: refused by the closed network, many at a time, and slow every test.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def wait_until(
    condition: Callable[[], object], timeout: float = 5.0, *, what: str | None = None
) -> None:
    """Poll ``condition`` every 10 ms until it is true.

    Raises:
        AssertionError: ``timeout`` seconds passed first; the message names
            ``what`` (or the condition's docstring or repr).
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            described = what or condition.__doc__ or repr(condition)
            raise AssertionError(f"not true within {timeout} s: {described}")
        time.sleep(0.01)


@contextmanager
def launch_chromium(*extra_args: str) -> Iterator[Any]:
    """Start headless Chromium through Playwright; close it on exit.

    Args:
        extra_args: Arguments beyond :data:`CHROMIUM_ARGS`, for example
            ``--disable-features=LocalNetworkAccessChecks``.
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM_PATH, args=[*CHROMIUM_ARGS, *extra_args]
        )
        try:
            yield browser
        finally:
            browser.close()
