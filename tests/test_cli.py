"""The ``wslab`` command, run as a real process: serve, echo through it, Ctrl-C."""

from __future__ import annotations

import contextlib
import re
import select
import signal
import socket
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from test_raw import flood_with_pings, masked, open_ws_at
from websockets.sync.client import connect

import wslab

IMPLS = ["raw", "websockets"]


def wslab_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "wslab", *args]


@contextmanager
def serving(
    *args: str, ignore_sigint: bool = False, max_files: int | None = None
) -> Iterator[tuple[subprocess.Popen[str], str, str]]:
    """Run ``wslab serve ARGS --port 0``; yield the process, its ws URL and page URL.

    The process is always stopped: Ctrl-C (SIGINT) if the test did not, then kill.

    Args:
        ignore_sigint: Start it with SIGINT ignored, as a shell starts a
            background job (``make test &``), which the child inherits.
        max_files: Start it with this limit on open files (``ulimit -n``).
    """
    command = wslab_command("serve", "--port", "0", *args)
    setup = ['trap "" INT'] if ignore_sigint else []
    setup += [f"ulimit -n {max_files}"] if max_files is not None else []
    if setup:
        command = ["sh", "-c", "; ".join([*setup, 'exec "$@"']), "sh", *command]
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        assert ready, "wslab serve printed nothing within 30 s"
        line = proc.stdout.readline()
        match = re.search(r"(ws://\S+) \(chat page: (http://\S+)\)", line)
        assert match, f"unexpected first line: {line!r}"
        yield proc, match.group(1), match.group(2)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def stop_with_ctrl_c(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGINT)
    return proc.wait(timeout=10)


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
    with serving("--impl", impl, "--handler", "echo", "--path", "/echo") as (proc, url, page):
        assert url.endswith("/echo")
        with connect(url, open_timeout=10) as ws:
            ws.send("Hello")
            assert ws.recv(timeout=10) == "You sent: Hello"
            ws.send(b"\x00\xff")
            assert ws.recv(timeout=10) == b"\x00\xff"
        with urllib.request.urlopen(page, timeout=10) as response:
            html = response.read().decode()
        assert "new WebSocket(" in html and '"echo"' in html
        assert stop_with_ctrl_c(proc) == 0


@pytest.mark.parametrize("impl", IMPLS)
def test_serve_chat(impl: str) -> None:
    with serving("--impl", impl, "--handler", "chat") as (_, url, _page):
        with connect(url + "?name=Ada", open_timeout=10) as ws:
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
    with serving("--impl", impl) as (proc, url, _page):
        with connect(url, open_timeout=10) as ws:
            ws.send("hi")
            assert ws.recv(timeout=10) == "You sent: hi"
            assert stop_with_ctrl_c(proc) == 0
            with pytest.raises(Exception):  # noqa: B017 - websockets' ConnectionClosedOK
                ws.recv(timeout=10)
            assert ws.close_code == 1001


@pytest.mark.parametrize("impl", IMPLS)
def test_ctrl_c_stops_a_server_whose_parent_ignores_sigint(impl: str) -> None:
    """Issue 9, 2.11: the child of ``make test &`` or nohup inherits an ignored SIGINT."""
    with serving("--impl", impl, ignore_sigint=True) as (proc, _url, _page):
        assert stop_with_ctrl_c(proc) == 0
        assert proc.stdout is not None and "Stopped." in proc.stdout.read()


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
    with serving("--impl", "raw", "--handler", "chat", max_files=40) as (proc, url, _page):
        port = urllib.parse.urlsplit(url).port
        assert port is not None
        with contextlib.ExitStack() as stack:
            ATTACKS[attack](stack, port, url)
            assert stop_with_ctrl_c(proc) == 0
