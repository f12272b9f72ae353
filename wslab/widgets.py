"""ipywidgets for the lessons: a chat client, a live traffic log, a frame explorer.

* :class:`ChatClient`: talk to a wslab server from a notebook, like the
  browser page does; several ChatClients in one notebook chat with each other.
* :class:`TrafficLog`: a live table of what a server (messages) or a tap
  (frames) recorded.
* :class:`FrameExplorer`: set FIN, RSV1-3, the opcode, the mask and the
  payload, and see the frame's bytes (RFC 6455 section 5.2) change live.

Every widget is an ``ipywidgets.VBox`` and keeps its parts as attributes
(``chat.text``, ``chat.close_button``, ...), so lessons and tests can drive it
from Python: ``chat.send_text("hi")``, or ``chat.text.value = "hi";
chat.text.submit()``.

Enter sends exactly what is in the box. With ipywidgets' ``Text``, the box's
value travels as state updates, which the front end holds back while the
kernel is busy with the previous one, but Enter's "submit" message goes at
once, so after fast typing the kernel could see Enter before the last
letters (ipywidgets issue #1843, PR #4034). :class:`ChatInput` is a small
anywidget whose front end sends the box's text *with* the submit message
and clears the box itself, so the order of the updates does not matter.

Before a cell runs (a freshly opened lesson, or the static site), a widget
shows a short "run this cell" text instead of its repr: each widget's
mimebundle carries a ``text/html`` fallback, which JupyterLab uses when it
cannot render the widget. After a kernel restart, the front end marks every
old widget view as disconnected; a chat window then says that the kernel
went away and no longer takes input.

Messages arrive on wslab's background thread. The widgets only ever *set
trait values* from there (never print, never an Output widget): ipykernel
sends such updates as comm messages, which the front end applies to the
widget wherever it is shown, so nothing lands in the output of whatever cell
happens to be running. Updates are batched (at most one every 50 ms) so that
a burst of messages costs one redraw, not hundreds.
"""

from __future__ import annotations

import html
import sys
import threading
import urllib.parse
from collections.abc import Callable
from typing import Any

import anywidget
import ipywidgets as widgets
import traitlets

from .closing import CloseCode
from .display import fields_table, frame_diagram, frame_hex, legend
from .errors import ProtocolError, WSLabError
from .frames import Frame, Opcode, encode
from .loop import get_loop
from .rules import redact
from .traffic import Direction, Kind, Record

__all__ = ["ChatClient", "ChatInput", "FrameExplorer", "TrafficLog", "page_link", "side_by_side"]

#: Seconds between two redraws of a widget that receives a burst of updates.
_BATCH_SECONDS = 0.05

_MONO = "font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace"


class _Batcher:
    """Call ``flush`` once, shortly after the first of a burst of ``poke()`` calls.

    ``poke`` may be called from any thread; ``flush`` runs on wslab's loop.
    """

    def __init__(self, flush: Callable[[], None], delay: float = _BATCH_SECONDS) -> None:
        self._flush = flush
        self._delay = delay
        self._scheduled = False
        self._lock = threading.Lock()

    def poke(self) -> None:
        with self._lock:
            if self._scheduled:
                return
            self._scheduled = True
        loop = get_loop()
        loop.call_soon_threadsafe(loop.call_later, self._delay, self._run)

    def _run(self) -> None:
        with self._lock:
            self._scheduled = False
        try:
            self._flush()
        except Exception:  # a closed widget must not break the loop
            pass


def _scrolled_to_end(content: str, height: str) -> str:
    """Wrap ``content`` in a box that scrolls and shows its end, the newest lines.

    A ``column-reverse`` flex box starts scrolled to its bottom, so new lines
    stay in view without any JavaScript.
    """
    return (
        f'<div style="max-height: {height}; overflow-y: auto; display: flex; '
        f'flex-direction: column-reverse">{content}</div>'
    )


def _close_text(code: int | None, reason: str | None) -> str:
    """Describe a close like ``1000 (normal closure), reason 'bye'``."""
    if code is None:
        return "no close code"
    try:
        text = f"{code} ({CloseCode(code).meaning})"
    except ValueError:
        text = str(code)
    return text + (f", reason {reason!r}" if reason else "")


def _fallback(bundle: Any, text: str, extra_html: str = "") -> Any:
    """Give a widget's mimebundle a plain-text and an HTML fallback.

    JupyterLab shows the widget itself when it can; otherwise (no kernel yet,
    an untrusted notebook, a static page) the HTML, and last the text.
    """
    if isinstance(bundle, tuple):  # (data, metadata), as anywidget returns it
        return (_fallback(bundle[0], text, extra_html), bundle[1])
    data = dict(bundle or {})
    data["text/plain"] = text
    data["text/html"] = (
        '<div class="wslab-fallback" style="color: #555; border: 1px dashed #bbb; '
        f'padding: 4px 8px; max-width: 640px">{html.escape(text)}{extra_html}</div>'
    )
    return data


#: Styles of the chat window. ipywidgets adds ``jupyter-widgets-disconnected``
#: to every view whose kernel went away (a restart), which these rules use.
_CHAT_CSS = """<style>
.wslab-chat .wslab-gone { display: none; }
.wslab-chat .jupyter-widgets-disconnected .wslab-gone { display: inline; color: #b3261e; }
.wslab-chat .jupyter-widgets-disconnected .wslab-live { display: none; }
.wslab-chat .jupyter-widgets-disconnected input,
.wslab-chat .jupyter-widgets-disconnected button { pointer-events: none; opacity: 0.5; }
</style>"""

_GONE = "● the kernel went away (restarted or shut down): run the cell that makes this chat again"


class ChatInput(anywidget.AnyWidget):  # type: ignore[misc]
    """A text box and a Send button; Enter or Send sends exactly what is in the box.

    The front end sends ``{"event": "submit", "value": <the box's text>}``
    and clears the box itself; :meth:`on_submit` callbacks get that text.

    Attributes:
        value: The box's text (synced both ways, for driving it from Python).
        placeholder: The grey text of an empty box.
        disabled: Whether typing and sending are off.
    """

    _esm = """
    function render({ model, el }) {
      const input = document.createElement("input");
      input.type = "text";
      input.className = "widget-input wslab-chat-input";
      input.style.flex = "1 1 auto";
      input.style.minWidth = "0";
      const button = document.createElement("button");
      button.className = "jupyter-widgets jupyter-button widget-button";
      button.textContent = "Send";
      button.style.flex = "0 0 auto";
      button.style.width = "auto";
      button.style.padding = "0 12px";
      const row = document.createElement("div");  // the row: the box grows, Send does not
      row.style.display = "flex";
      row.style.gap = "4px";
      row.append(input, button);
      el.append(row);
      function update() {
        if (input.value !== model.get("value")) input.value = model.get("value");
        input.placeholder = model.get("placeholder");
        input.disabled = button.disabled = model.get("disabled");
      }
      function submit() {
        const value = input.value;
        if (!value || model.get("disabled")) return;
        model.send({ event: "submit", value });  // the text travels with Enter
        input.value = "";
        model.set("value", "");
        model.save_changes();
      }
      input.addEventListener("input", () => {
        model.set("value", input.value);
        model.save_changes();
      });
      input.addEventListener("keydown", (event) => {
        event.stopPropagation();  // keep JupyterLab's shortcuts out of the box
        if (event.key === "Enter" && !event.isComposing) {
          event.preventDefault();
          submit();
        }
      });
      button.addEventListener("click", submit);
      model.on("change:value", update);
      model.on("change:placeholder", update);
      model.on("change:disabled", update);
      update();
    }
    export default { render };
    """
    value = traitlets.Unicode("").tag(sync=True)
    placeholder = traitlets.Unicode("").tag(sync=True)
    disabled = traitlets.Bool(False).tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._callbacks: list[Callable[[str], None]] = []
        self.on_msg(self._on_front_end_msg)

    def on_submit(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(text)`` when the student presses Enter or Send."""
        self._callbacks.append(callback)

    def submit(self) -> None:
        """Send the box's text, as Enter does (for driving it from Python)."""
        value, self.value = self.value, ""
        self._submitted(value)

    def _on_front_end_msg(self, _: Any, content: Any, buffers: Any) -> None:
        if isinstance(content, dict) and content.get("event") == "submit":
            self._submitted(str(content.get("value", "")))

    def _submitted(self, value: str) -> None:
        if value and not self.disabled:
            for callback in self._callbacks:
                callback(value)

    def __repr__(self) -> str:
        return "<wslab.ChatInput>"


def _url_of(server_or_url: Any) -> str:
    url = server_or_url if isinstance(server_or_url, str) else getattr(server_or_url, "url", None)
    if not isinstance(url, str):
        raise WSLabError(
            f"expected a server or a ws:// URL, got {server_or_url!r}; "
            "for example ChatClient(wslab.serve('chat'))"
        )
    return url


def _with_name(url: str, name: str | None) -> str:
    """Add ``?name=...``, the chat handler's naming convention (wslab.handlers)."""
    if not name:
        return url
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query)
    query = [(k, v) for k, v in query if k != "name"] + [("name", name)]
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


class ChatClient(widgets.VBox):  # type: ignore[misc]
    """A chat window: a message list, a text box, a Send and a Close button.

    Args:
        server_or_url: A wslab server (or tap), or a ``ws://`` URL.
        name: Your name in the chat room (sent as ``?name=`` in the URL, as
            the chat handler expects); None to get ``guest-N``.
        max_lines: Show at most this many messages (the newest).

    Attributes:
        client: The underlying :class:`wslab.Client`.
        lines: Every line shown so far (messages, and notices in brackets).
        messages: The HTML widget that shows the lines.
        text: The text box and its Send button (a :class:`ChatInput`); Enter
            or Send sends exactly what is in the box.
        close_button: Closes the connection (code 1000).
        status: Shows the connection's state: connecting, open, closing,
            closed (with the code and reason), or the error.
    """

    def __init__(self, server_or_url: Any, name: str | None = None, *, max_lines: int = 200):
        from .client import Client  # the I/O layer, imported on use

        self.url = _with_name(_url_of(server_or_url), name)
        self.name = name
        self.max_lines = max_lines
        self.lines: list[str] = []  # the newest 10,000 lines, to bound memory
        self._lock = threading.Lock()
        self._batcher = _Batcher(self._redraw)
        self._state = "connecting"
        self._detail = ""
        self.status = widgets.HTML()
        self.messages = widgets.HTML(layout=widgets.Layout(border="1px solid #ccc"))
        self.text = ChatInput(
            placeholder="Type a message, press Enter to send",
            disabled=True,
            layout=widgets.Layout(flex="1 1 auto"),
        )
        self.close_button = widgets.Button(description="Close", disabled=True)
        self.close_button.on_click(lambda _: self.close_connection())
        # Enter or Send in the box: the front end sends the text with the event.
        self.text.on_submit(self._send_submitted)
        title = widgets.HTML(f"<b>Chat</b> as <b>{html.escape(name or 'guest')}</b>")
        super().__init__(
            [
                widgets.HBox([title, self.status]),
                self.messages,
                widgets.HBox([self.text, self.close_button]),
            ],
            layout=widgets.Layout(width="100%", max_width="640px"),
        )
        self.add_class("wslab-chat")
        self._redraw()
        self.client: Client | None = None
        try:
            self.client = Client(
                self.url,
                on_open=self._on_open,
                on_message=self._on_message,
                on_error=self._on_error,
                on_close=self._on_close,
                block=False,
            )
        except WSLabError as error:  # a bad URL: say so in the widget
            self._on_error(error)

    # Driving it from Python

    def send_text(self, text: str | None = None) -> None:
        """Send ``text``, or the text box's content (then clear the box)."""
        if text is None:
            text, self.text.value = self.text.value, ""
        self._send_submitted(text)

    def _send_submitted(self, text: str) -> None:
        """Send what the student submitted; say so in the window if it fails."""
        if not text:
            return
        if self.client is None:
            self._notice(f"not sent: not connected ({self._detail})")
            return
        try:
            self.client.send(text)
        except (WSLabError, TimeoutError, OSError) as error:
            self._notice(f"not sent: {error}")

    def close_connection(self, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake (section 7.1.2); the status follows it."""
        if self.client is None or self._state in ("closed", "error"):
            return
        self._set_state("closing", "")
        # Client.close() waits for the closing handshake; a button click (or a
        # widget being garbage collected) must not wait for a slow server.
        threading.Thread(
            target=self.client.close, args=(code, reason), name="wslab-chat-close", daemon=True
        ).start()

    def close(self) -> None:
        """Close the connection and the widget."""
        # close() also runs from __del__, even when __init__ failed half way,
        # and at interpreter exit, when no new thread may start.
        if (
            getattr(self, "client", None) is not None
            and self._state not in ("closed", "error")
            and not sys.is_finalizing()
        ):
            try:
                self.close_connection()
            except Exception:  # closing the widget must always work
                pass
        super().close()

    @property
    def state(self) -> str:
        """``"connecting"``, ``"open"``, ``"closing"``, ``"closed"`` or ``"error"``."""
        return self._state

    def __repr__(self) -> str:
        # The URL's token is a password: never print it into a saved notebook.
        return f"<wslab.ChatClient {self.name or 'guest'!r} on {redact(self.url)}>"

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return _fallback(super()._repr_mimebundle_(**kwargs), self.fallback_text())

    def fallback_text(self) -> str:
        """What shows in place of the widget before its cell runs."""
        return f"Chat as {self.name or 'guest'}: run this cell to start the chat window."

    # Callbacks: these run on wslab's background thread.

    def _on_open(self) -> None:
        self._set_state("open", "")

    def _on_message(self, message: str | bytes) -> None:
        if isinstance(message, bytes):
            head = message[:16].hex(" ") + (" …" if len(message) > 16 else "")
            message = f"[binary, {len(message)} bytes: {head}]"
        self._add_line(message)

    def _on_error(self, error: Exception) -> None:
        self._set_state("error", str(error))

    def _on_close(self, code: int, reason: str) -> None:
        if self._state != "error":
            self._set_state("closed", _close_text(code, reason))

    def _notice(self, text: str) -> None:
        self._add_line(f"[{text}]")

    def _add_line(self, line: str) -> None:
        with self._lock:
            self.lines.append(line)
            del self.lines[:-10_000]
        self._batcher.poke()

    def _set_state(self, state: str, detail: str) -> None:
        with self._lock:
            self._state, self._detail = state, detail
        self._batcher.poke()

    def _redraw(self) -> None:
        with self._lock:
            state, detail = self._state, self._detail
            lines = self.lines[-self.max_lines :]
        colours = {"open": "#2e7d32", "error": "#b3261e", "closed": "#777"}
        colour = colours.get(state, "#b26a00")
        shown = html.escape(state + (f": {detail}" if detail else ""))
        self.status.value = (
            f'{_CHAT_CSS}<span class="wslab-live" style="color: {colour}">● {shown}</span>'
            f'<span class="wslab-gone">{html.escape(_GONE)}</span>'
        )
        rows = "".join(
            f'<div style="color: #777"><i>{html.escape(line)}</i></div>'
            if line.startswith("[") or line.startswith("* ")
            else f"<div>{html.escape(line)}</div>"
            for line in lines
        )
        self.messages.value = _scrolled_to_end(
            f'<div style="{_MONO}; font-size: 90%; padding: 2px 6px">{rows}</div>', "180px"
        )
        self.text.disabled = state != "open"
        self.close_button.disabled = state not in ("open", "connecting")


_ARROWS = {Direction.TO_SERVER: "client → server", Direction.TO_CLIENT: "server → client"}


class TrafficLog(widgets.VBox):  # type: ignore[misc]
    """A live table of recorded traffic, newest last.

    Args:
        source: Anything with a ``recorder``: a server (whole messages) or a
            tap (every frame and the handshake).
        max_rows: Show at most this many rows (the newest).
        times: Show each record's time.

    Attributes:
        rows: The rows shown, as tuples
            ``(connection, time, direction, type, length, preview)``.
        table: The HTML widget that shows them.
        summary: How many records arrived and how many are shown.
        clear_button: Empties the table (not the recorder).
    """

    def __init__(self, source: Any, *, max_rows: int = 100, times: bool = True) -> None:
        recorder = getattr(source, "recorder", None)
        if recorder is None or not hasattr(recorder, "subscribe"):
            raise WSLabError(
                f"TrafficLog() needs a server or a tap (something with .recorder), got {source!r}"
            )
        self.max_rows = max_rows
        self.times = times
        self.rows: list[tuple[int, float, str, str, int, str]] = []
        self.total = 0
        self._lock = threading.Lock()
        self._batcher = _Batcher(self._redraw)
        self.table = widgets.HTML(layout=widgets.Layout(border="1px solid #ccc"))
        self.summary = widgets.HTML()
        self.clear_button = widgets.Button(description="Clear", layout={"width": "80px"})
        self.clear_button.on_click(lambda _: self.clear())
        super().__init__([widgets.HBox([self.summary, self.clear_button]), self.table])
        # Subscribe first, then copy what is already there, so nothing is missed.
        self._unsubscribe = recorder.subscribe(self._add)
        for record in list(recorder.records):
            self._add(record, redraw=False)
        self._redraw()

    @staticmethod
    def row_of(record: Record) -> tuple[int, float, str, str, int, str]:
        """One record as ``(connection, time, direction, type, length, preview)``."""
        direction = _ARROWS.get(record.direction, "")
        if record.frame is not None:
            kind = record.frame.opcode.name + ("" if record.frame.fin else " (more)")
            length = len(record.frame.payload)
            preview = record.text or str(record.frame)
        else:
            kind = record.kind.value
            length = len(record.data)
            preview = record.text
        if record.kind is Kind.MESSAGE:
            kind = "message"
        return record.connection, record.time, direction, kind, length, preview

    def _add(self, record: Record, redraw: bool = True) -> None:
        row = self.row_of(record)
        with self._lock:
            self.total += 1
            self.rows.append(row)
            del self.rows[: -self.max_rows]
        if redraw:
            self._batcher.poke()

    def __repr__(self) -> str:
        return "<wslab.TrafficLog: a live table of recorded traffic>"

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        text = "A live table of the recorded traffic: run this cell to start it."
        return _fallback(super()._repr_mimebundle_(**kwargs), text)

    def clear(self) -> None:
        """Empty the table; new records keep arriving."""
        with self._lock:
            self.rows.clear()
            self.total = 0
        self._redraw()

    def stop(self) -> None:
        """Stop following the recorder (the table stays as it is)."""
        unsubscribe = getattr(self, "_unsubscribe", None)  # None if __init__ failed
        if unsubscribe is not None:
            unsubscribe()

    def close(self) -> None:
        self.stop()
        super().close()

    def _redraw(self) -> None:
        with self._lock:
            rows = list(self.rows)
            total = self.total
        heads = ["#", "time", "direction", "type", "length", "preview"]
        if not self.times:
            heads.remove("time")
        head = "".join(f'<th style="text-align: left; padding: 0 6px">{h}</th>' for h in heads)
        body = []
        for connection, time, direction, kind, length, preview in rows:
            cells = [str(connection), f"{time:.3f}s", direction, kind, str(length), preview]
            if not self.times:
                del cells[1]
            body.append(
                "<tr>"
                + "".join(
                    f'<td style="padding: 0 6px; white-space: nowrap">{html.escape(c)}</td>'
                    for c in cells
                )
                + "</tr>"
            )
        self.table.value = _scrolled_to_end(
            f'<table style="{_MONO}; font-size: 85%"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>",
            "300px",
        )
        shown = f", showing the last {len(rows)}" if total > len(rows) else ""
        self.summary.value = f"{total} record{'' if total == 1 else 's'}{shown}"


_OPCODE_CHOICES = [(f"{o.name} ({o.value:#x})", int(o)) for o in Opcode] + [
    (f"reserved ({value:#x})", value) for value in (0x3, 0xB)
]


class FrameExplorer(widgets.VBox):  # type: ignore[misc]
    """Build one frame from its fields and see its bytes, live (section 5.2).

    The defaults give the RFC's own example (section 5.7): a masked text frame
    with ``Hello`` and the masking key ``37 fa 21 3d``.

    Attributes:
        fin, rsv1, rsv2, rsv3, mask: Checkboxes for those bits.
        opcode: The opcode (including two reserved values, to see them refused).
        mask_key: The 4-byte masking key, in hex.
        payload: The payload, as text (encoded as UTF-8) or as hex.
        payload_as: ``"text"`` or ``"hex"``: how to read ``payload``. Hex
            builds any payload, e.g. ``03 e8`` for a close frame with 1000.
        output: An HTML widget: the bytes, the bit grid and the field table,
            or what is wrong with the frame.
        data: The frame's bytes, or None when the fields make no valid frame.
        error: What is wrong, or "".
    """

    def __init__(self) -> None:
        self.fin = widgets.Checkbox(value=True, description="FIN", indent=False)
        self.rsv1 = widgets.Checkbox(value=False, description="RSV1", indent=False)
        self.rsv2 = widgets.Checkbox(value=False, description="RSV2", indent=False)
        self.rsv3 = widgets.Checkbox(value=False, description="RSV3", indent=False)
        self.opcode = widgets.Dropdown(
            options=_OPCODE_CHOICES, value=int(Opcode.TEXT), description="opcode"
        )
        self.mask = widgets.Checkbox(value=True, description="MASK", indent=False)
        self.mask_key = widgets.Text(value="37 fa 21 3d", description="masking key")
        self.payload = widgets.Text(value="Hello", description="payload")
        self.payload_as = widgets.ToggleButtons(
            options=["text", "hex"], value="text", style={"button_width": "50px"}
        )
        self.output = widgets.HTML()
        self.data: bytes | None = None
        self.error = ""
        small = {"width": "90px"}
        for box in (self.fin, self.rsv1, self.rsv2, self.rsv3, self.mask):
            box.layout = widgets.Layout(**small)
        controls = [self.fin, self.rsv1, self.rsv2, self.rsv3, self.opcode, self.mask]
        for control in [*controls, self.mask_key, self.payload, self.payload_as]:
            control.observe(lambda _: self.update(), names="value")
        super().__init__(
            [
                widgets.HBox(controls),
                widgets.HBox([self.mask_key, self.payload, self.payload_as]),
                self.output,
            ]
        )
        self.update()

    def frame(self) -> Frame:
        """The frame the fields describe.

        Raises:
            ValueError: A reserved opcode, or a payload that is not valid hex.
        """
        return Frame(
            self.opcode.value,  # an int: Frame refuses the reserved ones
            self._payload(),
            fin=self.fin.value,
            rsv1=self.rsv1.value,
            rsv2=self.rsv2.value,
            rsv3=self.rsv3.value,
        )

    def __repr__(self) -> str:
        shown = self.data.hex(" ") if self.data is not None else f"invalid: {self.error}"
        return f"<wslab.FrameExplorer: {shown}>"

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        text = "The frame explorer: run this cell to change the fields and watch the bytes."
        picture = "" if self.data is None else frame_hex(self.data).html
        return _fallback(super()._repr_mimebundle_(**kwargs), text, picture)

    def _payload(self) -> bytes:
        text: str = self.payload.value
        if self.payload_as.value == "text":
            return text.encode()
        try:
            return bytes.fromhex(text)
        except ValueError:
            raise ValueError(
                f"the payload is not hex bytes like 03 e8 62 79 65; got {text!r}"
            ) from None

    def _mask_key(self) -> bytes | None:
        if not self.mask.value:
            return None
        try:
            key = bytes.fromhex(self.mask_key.value)
        except ValueError:
            key = b""
        if len(key) != 4:
            raise ValueError(
                f"the masking key must be 4 bytes in hex, like 37 fa 21 3d; "
                f"got {self.mask_key.value!r} (5.3)"
            )
        return key

    def update(self) -> None:
        """Encode the frame again and redraw (called whenever a field changes)."""
        self.mask_key.disabled = not self.mask.value
        try:
            data = encode(self.frame(), self._mask_key())
        except (ProtocolError, ValueError) as error:
            self.data, self.error = None, str(error)
            self.output.value = (
                '<div style="color: #b3261e; padding: 6px">✖ Not a valid frame: '
                f"{html.escape(self.error)}</div>"
            )
            return
        self.data, self.error = data, ""
        self.output.value = (
            f"<div>{len(data)} bytes:</div>"
            + frame_hex(data).html
            + legend().html
            + frame_diagram(data).html
            + fields_table(data).html
        )


class _Row(widgets.HBox):  # type: ignore[misc]
    """Widgets side by side, with the fallbacks of its children."""

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        texts = [
            child.fallback_text() if hasattr(child, "fallback_text") else repr(child)
            for child in self.children
        ]
        return _fallback(super()._repr_mimebundle_(**kwargs), " ".join(texts))

    def __repr__(self) -> str:
        return f"<wslab side by side: {len(self.children)} widgets>"


def side_by_side(*children: Any) -> widgets.HBox:
    """Show widgets next to each other, e.g. two chat windows."""
    return _Row(list(children))


class _Link(widgets.HTML):  # type: ignore[misc]
    """A link that exists only while its server runs."""

    def __init__(self, url: str, text: str) -> None:
        self.text = text
        link = f'<a href="{html.escape(url)}" target="_blank">{html.escape(text)}</a>'
        super().__init__(f"Open {link} in a new tab.")

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        text = f"Run this cell to get the link to {self.text} (it works while its server runs)."
        return _fallback(super()._repr_mimebundle_(**kwargs), text)

    def __repr__(self) -> str:
        return f"<wslab link to {self.text}>"


def page_link(target: Any, text: str = "the chat page") -> widgets.HTML:
    """A link to a server's page, shown as a widget.

    A saved notebook keeps no dead link: before the cell runs (or once the
    kernel is gone) it shows "run this cell to get the link" instead.

    Args:
        target: A server or tap (its ``page_url``), or a URL.
        text: The link's text.
    """
    url = target if isinstance(target, str) else getattr(target, "page_url", None)
    if not isinstance(url, str):
        raise WSLabError(f"page_link() needs a server or a URL, got {target!r}")
    return _Link(url, text)
