"""Lesson 05: the page around the JavaScript chat client a student writes.

:func:`client_page` wraps the student's script in a page that
``wslab.serve(..., page=...)`` serves at ``/``: the page gives the script
the chat's WebSocket URL, the form, the text box and ``show(text)``, and
shows an error in the script on the page instead of only in the console.
"""

from __future__ import annotations

__all__ = ["client_page"]

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>My chat client</title>
<style>
  body {{ font-family: sans-serif; max-width: 40em; margin: 2em auto; }}
  #log {{ list-style: none; padding: 0; border: 1px solid #ccc; min-height: 10em; }}
  #log li {{ padding: 2px 6px; }}
  #box {{ width: 70%; }}
</style>
</head>
<body>
<h1>My chat client</h1>
<ul id="log"></ul>
<form id="form"><input id="box" autocomplete="off" autofocus> <button>Send</button></form>
<script>
// Given to your script: the WebSocket URL of the chat (same host, port and
// token as this page), the form, the text box, and show(text) for the log.
const params = new URLSearchParams(location.search);
if (!params.has("name")) params.set("name", "me");
const WS_URL = new URL("chat?" + params, location.href).href.replace(/^http/, "ws");
const form = document.getElementById("form");
const box = document.getElementById("box");
const log = document.getElementById("log");
function show(text) {{
  const item = document.createElement("li");
  item.textContent = text;
  log.append(item);
}}
window.addEventListener("error", (event) => show("error in your script: " + event.message));
</script>
<script>
{script}
</script>
</body>
</html>
"""


def client_page(script: str) -> str:
    """The page that runs a student's chat client script.

    The page gives the script ``WS_URL``, ``form``, ``box`` and ``show(text)``;
    an error in the script is shown on the page.
    """
    if not isinstance(script, str):
        raise TypeError(f"the script must be a str of JavaScript, got {type(script).__name__}")
    # A "</script" inside the script would end the element early.
    return _PAGE.format(script=script.replace("</script", "<\\/script"))
