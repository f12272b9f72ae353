"""The browser chat page that every wslab server serves on ``GET /``.

One self-contained HTML file (``wslab/static/chat.html``, no CDN assets) that
uses the browser's ``WebSocket`` API and its four events: open, message,
error and close. It computes the WebSocket URL relative to its own location,
so it also works behind jupyter-server-proxy (``/proxy/8080/``). The name box
becomes a ``?name=`` query parameter, which the chat handlers use as the
sender's name. A private server's page is opened with ``?wslab_token=...``: the page
passes the token on to its WebSocket URL.

Stable element ids for tests and lessons: ``#name``, ``#message``, ``#send``,
``#messages`` (one ``<li>`` per message), ``#status`` (``connecting``,
``open``, ``error`` or ``closed (code 1000, reason)``), ``#close``,
``#connect``.
"""

from __future__ import annotations

import functools
import json
from importlib import resources

from .chat import MAX_NAME

__all__ = ["chat_page"]

_PLACEHOLDER = "__WS_PATH__"


@functools.cache
def _template() -> str:
    return resources.files("wslab").joinpath("static/chat.html").read_text(encoding="utf-8")


def chat_page(ws_path: str = "chat", *, chat: bool = False) -> bytes:
    """Return the chat page as UTF-8 HTML bytes.

    Args:
        ws_path: The WebSocket path *relative* to the page, without a leading
            slash (``"chat"`` for a server at ``/chat`` whose page is ``/``).
            A leading slash is allowed but makes the URL absolute, which breaks
            the page behind a proxy.
        chat: Whether the server runs the chat handler, which sends each
            message back to its sender as ``name: text``: the page then shows
            a sent message once, as the room delivers it, instead of twice.
    """
    if not isinstance(ws_path, str):
        raise TypeError(f"ws_path must be a str such as 'chat', got {type(ws_path).__name__}")
    # A JSON string is a valid JavaScript string; escaping '<' keeps a path
    # such as '</script>' from ending the script element early.
    literal = json.dumps(ws_path).replace("<", "\\u003c")
    page = _template().replace(_PLACEHOLDER, literal, 1)
    page = page.replace("__CHAT__", "true" if chat else "false", 1)
    return page.replace("__MAX_NAME__", str(MAX_NAME), 1).encode()
