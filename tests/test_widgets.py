"""Widgets driven from Python (no browser), and once in a real kernel.

The servers are wslab's own (``wslab.serve``) on free ports; every test waits
for a condition with a deadline instead of sleeping for a fixed time.
"""

from __future__ import annotations

import socket
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _util import wait_until

import wslab
from wslab.errors import WSLabError
from wslab.widgets import ChatClient, FrameExplorer, TrafficLog

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def echo() -> Iterator[Any]:
    server = wslab.serve("echo", port=0)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def chat_server() -> Iterator[Any]:
    server = wslab.serve("chat", port=0)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def chats() -> Iterator[list[ChatClient]]:
    """ChatClients made in a test, closed at the end of it."""
    made: list[ChatClient] = []
    try:
        yield made
    finally:
        for chat in made:
            chat.close()


def open_chat(chats: list[ChatClient], target: Any, name: str | None = None) -> ChatClient:
    chat = ChatClient(target, name=name)
    chats.append(chat)
    wait_until(lambda: "open" in chat.status.value)
    return chat


# ChatClient


def test_chat_client_repr_hides_the_servers_token(echo: Any, chats: list[ChatClient]) -> None:
    """A private server's token is a password: a repr saved in a notebook must not show it."""
    chat = open_chat(chats, echo, name="ada")
    assert echo.token and echo.token in chat.url
    assert echo.token not in repr(chat)
    assert "ada" in repr(chat)


def test_chat_client_sends_with_the_button_and_shows_the_echo(
    echo: Any, chats: list[ChatClient]
) -> None:
    chat = open_chat(chats, echo)
    assert not chat.text.disabled
    chat.text.value = "Hello"
    chat.text.submit()
    wait_until(lambda: "You sent: Hello" in chat.messages.value)
    assert chat.text.value == ""
    assert chat.lines == ["You sent: Hello"]


def test_enter_sends_the_text_that_comes_with_it(echo: Any, chats: list[ChatClient]) -> None:
    """Enter sends what the front end says is in the box, whatever the synced value.

    After fast typing, the last value updates may still be on their way when
    Enter's message arrives (ipywidgets #1843); the text travels with it.
    """
    chat = open_chat(chats, echo)
    chat.text.value = "<b>bo"  # a stale value: the last keys are still in flight
    # What the front end sends when Enter is pressed (or Send clicked).
    chat.text._handle_custom_msg({"event": "submit", "value": "<b>bold?</b>"}, [])
    wait_until(lambda: "You sent: &lt;b&gt;bold?&lt;/b&gt;" in chat.messages.value)
    assert "<b>bold?</b>" not in chat.messages.value  # escaped: payloads are untrusted
    assert chat.lines == ["You sent: <b>bold?</b>"]


def test_fallbacks_before_the_cell_runs(echo: Any, chats: list[ChatClient]) -> None:
    """A saved notebook shows a sentence, not a raw repr, where the widget was."""
    from wslab.widgets import side_by_side

    chat = open_chat(chats, echo)
    for widget in (chat, side_by_side(chat, chat), FrameExplorer(), TrafficLog(echo)):
        bundle = widget._repr_mimebundle_()
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        assert "application/vnd.jupyter.widget-view+json" in data
        assert "run this cell" in data["text/plain"] and "run this cell" in data["text/html"]
        assert "<wslab." not in data["text/plain"] and "HBox(" not in data["text/plain"]


def test_stale_window_says_the_kernel_went_away(echo: Any, chats: list[ChatClient]) -> None:
    """ipywidgets marks views of a restarted kernel; the status has a rule for it."""
    chat = open_chat(chats, echo)
    status = chat.status.value
    assert ".jupyter-widgets-disconnected .wslab-gone { display: inline" in status
    assert "the kernel went away" in status
    assert "wslab-chat" in chat._dom_classes


def test_close_button_shows_the_closing_handshake(echo: Any, chats: list[ChatClient]) -> None:
    chat = open_chat(chats, echo)
    chat.close_button.click()
    wait_until(lambda: "closed: 1000 (normal closure)" in chat.status.value)
    assert chat.state == "closed"
    assert chat.text.disabled and chat.close_button.disabled
    chat.send_text("too late")
    wait_until(lambda: any("not sent" in line for line in chat.lines))


def test_server_going_away_is_shown(chats: list[ChatClient]) -> None:
    server = wslab.serve("echo", port=0)
    try:
        chat = open_chat(chats, server)
    finally:
        server.stop()
    wait_until(lambda: "closed: 1001 (going away)" in chat.status.value)


def test_chat_clients_talk_to_each_other(chat_server: Any, chats: list[ChatClient]) -> None:
    alice = open_chat(chats, chat_server, name="Alice")
    bob = open_chat(chats, chat_server, name="Bob")
    wait_until(lambda: "* Bob joined" in alice.lines)
    alice.send_text("hi Bob")
    wait_until(lambda: "Alice: hi Bob" in bob.lines)
    wait_until(lambda: "Alice: hi Bob" in bob.messages.value)
    assert "Alice: hi Bob" in alice.lines  # the chat echoes to the sender too
    assert "Chat</b> as <b>Alice" in alice.children[0].children[0].value
    assert repr(alice).startswith("<wslab.ChatClient 'Alice' on ws://127.0.0.1:")
    assert repr(alice).endswith("name=Alice>")


def test_connection_errors_appear_in_the_widget(chats: list[ChatClient]) -> None:
    with socket.create_server(("127.0.0.1", 0)) as placeholder:
        port = placeholder.getsockname()[1]
    chat = ChatClient(f"ws://127.0.0.1:{port}/chat")  # nothing listens there: no exception
    chats.append(chat)
    wait_until(lambda: "error" in chat.status.value)
    assert "refused" in chat.status.value
    assert chat.text.disabled
    bad = ChatClient("http://127.0.0.1:8080/chat")  # a bad URL, also shown in the widget
    chats.append(bad)
    assert bad.state == "error" and bad.client is None
    wait_until(lambda: "is an HTTP URL; WebSocket URLs start with ws://" in bad.status.value)
    bad.send_text("hello?")
    wait_until(lambda: any("not sent" in line for line in bad.lines))
    with pytest.raises(WSLabError, match="server or a ws:// URL"):
        ChatClient(42)


# TrafficLog


def test_traffic_log_of_a_tap_shows_frames_as_they_flow(echo: Any) -> None:
    tap = echo.tap()
    log = TrafficLog(tap, max_rows=10)
    try:
        with wslab.Client(tap) as client:
            client.send("<i>one</i>")
            assert client.recv(timeout=5) == "You sent: <i>one</i>"
            wait_until(lambda: any(row[3] == "TEXT" for row in log.rows))
            kinds = [row[3] for row in log.rows]
            assert kinds[:3] == ["tcp connect", "http request", "http response"]
            text = next(row for row in log.rows if row[3] == "TEXT")
            assert text[2] == "client → server" and text[4] == len("<i>one</i>")
            wait_until(lambda: "You sent: &lt;i&gt;one&lt;/i&gt;" in log.table.value)
            assert "<i>one</i>" not in log.table.value
            for n in range(20):
                client.send(f"message {n}")
                client.recv(timeout=5)
            wait_until(lambda: "message 19" in log.table.value)
        assert len(log.rows) == 10  # capped
        wait_until(lambda: "showing the last 10" in log.summary.value)
        assert log.total >= 3 + 2 * 21
    finally:
        log.close()


def test_traffic_log_of_a_server_shows_messages(echo: Any) -> None:
    with wslab.Client(echo) as client:
        client.send("before")
        client.recv(timeout=5)
        log = TrafficLog(echo, times=False)  # existing records are shown too
        try:
            wait_until(lambda: any("before" in row[5] for row in log.rows))
            assert "time" not in log.table.value
            log.clear()
            assert log.rows == [] and log.total == 0
            client.send("after")
            client.recv(timeout=5)
            wait_until(lambda: [row[3] for row in log.rows] == ["message", "message"])
            log.stop()
            client.send("unseen")
            client.recv(timeout=5)
        finally:
            log.close()
    assert not any("unseen" in row[5] for row in log.rows)
    with pytest.raises(WSLabError, match="recorder"):
        TrafficLog(object())


# FrameExplorer


def test_frame_explorer_defaults_to_the_rfc_example() -> None:
    explorer = FrameExplorer()
    assert explorer.data == bytes.fromhex("818537fa213d7f9f4d5158")  # RFC 6455 5.7
    assert explorer.error == ""
    assert "11 bytes" in explorer.output.value
    assert "masking key" in explorer.output.value
    assert repr(explorer) == "<wslab.FrameExplorer: 81 85 37 fa 21 3d 7f 9f 4d 51 58>"
    assert "81 85 37 fa" not in explorer._repr_mimebundle_()["text/plain"]  # no raw repr


def test_frame_explorer_follows_the_fields() -> None:
    explorer = FrameExplorer()
    explorer.mask.value = False
    assert explorer.data == bytes.fromhex("810548656c6c6f")  # RFC 6455 5.7, unmasked
    assert explorer.mask_key.disabled
    explorer.payload.value = "x" * 200
    assert explorer.data is not None and explorer.data[:4] == bytes.fromhex("817e00c8")
    assert "extended payload len" in explorer.output.value
    explorer.payload.value = "Hel"
    explorer.fin.value = False
    assert explorer.data == bytes.fromhex("010348656c")


def test_frame_explorer_builds_a_close_frame_from_hex() -> None:
    explorer = FrameExplorer()
    explorer.mask.value = False
    explorer.opcode.value = 0x8
    explorer.payload_as.value = "hex"
    explorer.payload.value = "03 e8 62 79 65"  # 1000, "bye" (5.5.1)
    assert explorer.data == bytes.fromhex("880503e8627965")
    assert "1000 (normal closure)" in explorer.output.value
    explorer.payload.value = "03 e"
    assert explorer.data is None and "not hex bytes" in explorer.error


def test_frame_explorer_explains_invalid_frames() -> None:
    explorer = FrameExplorer()
    explorer.opcode.value = 0x9  # PING
    explorer.fin.value = False
    assert explorer.data is None
    assert "fragmented PING frame (5.5)" in explorer.error
    assert "Not a valid frame" in explorer.output.value
    explorer.fin.value = True
    explorer.payload.value = "x" * 126
    assert "at most 125" in explorer.error
    explorer.payload.value = "ok"
    assert explorer.data is not None and explorer.data[0] == 0x89
    explorer.opcode.value = 0x3
    assert "reserved" in explorer.error
    explorer.opcode.value = 0x1
    explorer.mask_key.value = "37 fa 21"
    assert "masking key must be 4 bytes" in explorer.error
    explorer.mask_key.value = "37 fa 21 3d"
    explorer.rsv2.value = True
    assert "reserved bit" in explorer.error


# A real kernel: updates from the background thread while another cell runs


@pytest.mark.kernel
def test_widget_updates_arrive_while_another_cell_runs() -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    from _kernel import Kernel

    with Kernel() as kernel:
        setup = kernel.run(
            textwrap.dedent(
                """
                import time, wslab
                from wslab.widgets import ChatClient
                server = wslab.serve("echo", port=0)
                chat = ChatClient(server)
                deadline = time.monotonic() + 10
                while chat.state != "open" and time.monotonic() < deadline:
                    time.sleep(0.01)
                print(chat.state)
                """
            )
        ).raise_for_error()
        assert setup.stdout == "open\n"

        # A cell that sleeps while the echo arrives on wslab's background thread.
        # Collect every iopub message (whatever its parent) until the cell is idle.
        code = 'chat.send_text("while you sleep")\ntime.sleep(1.5)'
        msg_id = kernel.client.execute(code)
        during: list[dict[str, Any]] = []
        while True:
            msg = kernel.client.get_iopub_msg(timeout=30)
            during.append(msg)
            if (
                msg["msg_type"] == "status"
                and msg["content"]["execution_state"] == "idle"
                and msg["parent_header"].get("msg_id") == msg_id
            ):
                break
        assert kernel.client.get_shell_msg(timeout=30)["content"]["status"] == "ok"

        outputs = ("stream", "display_data", "execute_result", "error")
        assert [m for m in during if m["msg_type"] in outputs] == []  # nothing leaked
        # The widget's update went out as a comm message while the cell slept.
        updates = [
            m
            for m in during
            if m["msg_type"] == "comm_msg"
            and "You sent: while you sleep" in str(m["content"]["data"].get("state", {}))
        ]
        assert updates

        after = kernel.run("print(chat.lines); chat.close(); server.stop()").raise_for_error()
        assert after.stdout == "['You sent: while you sleep']\n"
