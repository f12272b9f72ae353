"""The ``wslab`` command, run as a real process: serve, echo through it, Ctrl-C."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Callable

import pytest
from _servers import cli_server
from test_raw import flood_with_pings, masked, open_ws_at
from websockets.sync.client import connect

import wslab

IMPLS = ["raw", "websockets"]


def wslab_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "wslab", *args]


def test_version() -> None:
    result = subprocess.run(
        wslab_command("--version"), capture_output=True, text=True, timeout=30, check=True
    )
    assert result.stdout.strip() == f"wslab {wslab.__version__}"


def test_help_lists_the_options() -> None:
    result = subprocess.run(
        wslab_command("serve", "--help"), capture_output=True, text=True, timeout=30, check=True
    )
    for option in ("--impl", "--handler", "--host", "--port", "--path", "raw", "websockets"):
        assert option in result.stdout


@pytest.mark.parametrize("impl", IMPLS)
def test_serve_echo_then_ctrl_c_exits_0(impl: str) -> None:
    with cli_server(impl, "--handler", "echo", "--path", "/echo", ignore_sigint=False) as server:
        assert server.url.endswith("/echo")
        with connect(server.url, open_timeout=10) as ws:
            ws.send("Hello")
            assert ws.recv(timeout=10) == "You sent: Hello"
            ws.send(b"\x00\xff")
            assert ws.recv(timeout=10) == b"\x00\xff"
        with urllib.request.urlopen(server.page, timeout=10) as response:
            html = response.read().decode()
        assert "new WebSocket(" in html and '"echo"' in html
        assert server.interrupt() == 0


@pytest.mark.parametrize("impl", IMPLS)
def test_serve_chat(impl: str) -> None:
    with cli_server(impl, "--handler", "chat", ignore_sigint=False) as server:
        with connect(server.url + "?name=Ada", open_timeout=10) as ws:
            assert ws.recv(timeout=10) == "* Ada joined"
            ws.send("hi")
            assert ws.recv(timeout=10) == "Ada: hi"


@pytest.mark.parametrize("impl", IMPLS)
def test_port_in_use_exits_2_with_one_line(impl: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            wslab_command("serve", "--impl", impl, "--port", str(port)),
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert str(port) in result.stderr and "in use" in result.stderr


@pytest.mark.parametrize("impl", IMPLS)
def test_bad_port_exits_2_with_one_line(impl: str) -> None:
    result = subprocess.run(
        wslab_command("serve", "--impl", impl, "--port", "70000"),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "70000" in result.stderr


def test_main_in_process_reports_bad_path(capsys: pytest.CaptureFixture[str]) -> None:
    from wslab.cli import main

    assert main(["serve", "--path", "chat", "--port", "0"]) == 2
    assert "--path must start with '/'" in capsys.readouterr().err


@pytest.mark.parametrize("impl", IMPLS)
def test_ctrl_c_closes_connected_clients_with_1001(impl: str) -> None:
    with cli_server(impl, ignore_sigint=False) as server:
        with connect(server.url, open_timeout=10) as ws:
            ws.send("hi")
            assert ws.recv(timeout=10) == "You sent: hi"
            assert server.interrupt() == 0
            with pytest.raises(Exception):  # noqa: B017 - websockets' ConnectionClosedOK
                ws.recv(timeout=10)
            assert ws.close_code == 1001


@pytest.mark.parametrize("impl", IMPLS)
def test_ctrl_c_stops_a_server_whose_parent_ignores_sigint(impl: str) -> None:
    """Issue 9, 2.11: the child of ``make test &`` or nohup inherits an ignored SIGINT."""
    with cli_server(impl, ignore_sigint=True) as server:
        assert server.interrupt() == 0
        assert server.process is not None and server.process.stdout is not None
        assert "Stopped." in server.process.stdout.read()


# -- Ctrl-C stops the raw server, whatever its clients do (issue 9) ---------------------


def ping_flood(stack: contextlib.ExitStack, port: int, url: str) -> None:
    """2.1: pings whose pongs are never read, so the server's writes to it block."""
    flooder, _ = open_ws_at(port, "/chat?name=flooder", rcvbuf=4096)
    stack.enter_context(flooder)
    flood_with_pings(flooder)


def slow_handshakes(stack: contextlib.ExitStack, port: int, url: str) -> None:
    """2.3: connections that never finish their request (slowloris)."""
    for _ in range(50):
        sock = stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=5))
        sock.sendall(b"GET /chat HTTP/1.1\r\n")


def chat_sleeper(stack: contextlib.ExitStack, port: int, url: str) -> None:
    """2.8: a chat member that never reads while another talks a lot."""
    sleeper, _ = open_ws_at(port, "/chat?name=sleeper", rcvbuf=4096)
    stack.enter_context(sleeper)
    talker = stack.enter_context(connect(url + "?name=talker", open_timeout=10, max_queue=None))
    for i in range(100):
        talker.send(f"{i} {'x' * 65536}")


def silent_client(stack: contextlib.ExitStack, port: int, url: str) -> None:
    """A client that reads nothing, so it never answers the server's close frame."""
    sock, _ = open_ws_at(port, "/chat?name=silent")
    stack.enter_context(sock)


def endless_message(stack: contextlib.ExitStack, port: int, url: str) -> None:
    """2.6: a message of empty continuation frames that never ends (then 1009)."""
    sock, _ = open_ws_at(port, "/chat?name=endless")
    stack.enter_context(sock)
    with contextlib.suppress(ConnectionError):
        sock.sendall(masked(0x01, b"a") + masked(0x00, b"") * 100_000)


def too_many_connections(stack: contextlib.ExitStack, port: int, url: str) -> None:
    """2.8: more connections than the server has file descriptors (EMFILE)."""
    for _ in range(60):
        stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=5))


ATTACKS: dict[str, Callable[[contextlib.ExitStack, int, str], None]] = {
    "ping flood": ping_flood,
    "slow handshakes": slow_handshakes,
    "chat member that never reads": chat_sleeper,
    "client that never answers the close": silent_client,
    "endless message": endless_message,
    "out of file descriptors": too_many_connections,
}


@pytest.mark.parametrize("attack", ATTACKS)
def test_ctrl_c_stops_the_raw_server_whatever_its_clients_do(attack: str) -> None:
    # Room for a few clients only, so that the last attack runs out of descriptors.
    with cli_server("raw", "--handler", "chat", ignore_sigint=False, max_files=40) as server:
        with contextlib.ExitStack() as stack:
            ATTACKS[attack](stack, server.port, server.url)
            assert server.interrupt() == 0
