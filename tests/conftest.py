"""Shared pytest configuration.

Area-specific fixtures live in the test modules (or ``tests/_*.py`` helper
modules) of their area, so that this file stays small.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip browser tests without Debian's chromium, node tests without node.

    CI installs chromium in .ci/run, so there these tests always run.
    """
    no_browser = pytest.mark.skip(reason="needs /usr/bin/chromium (apt-get install chromium)")
    no_node = pytest.mark.skip(reason="needs node and npm on PATH")
    for item in items:
        if "browser" in item.keywords and not CHROMIUM.exists():
            item.add_marker(no_browser)
        if "node" in item.keywords and not (shutil.which("node") and shutil.which("npm")):
            item.add_marker(no_node)
