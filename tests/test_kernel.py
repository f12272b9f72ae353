"""The in-kernel server and clients inside a REAL Jupyter kernel.

What a student does in class: serve from a cell, re-run that cell, connect
from the same kernel with blocking and async clients, paste script-style
``asyncio.run(main())``, and shut the kernel down or restart it.
"""

from __future__ import annotations

import socket
import textwrap
from collections.abc import Iterator

import pytest
from _kernel import Kernel
from _servers import port_is_free
from websockets.sync.client import connect

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def kernel() -> Iterator[Kernel]:
    """One kernel for the module: start-ups are the slow part."""
    with Kernel() as k:
        yield k


def cell(code: str) -> str:
    return textwrap.dedent(code).strip()


def test_import_does_not_patch_asyncio(kernel: Kernel) -> None:
    result = kernel.run(
        cell(
            """
            import asyncio
            run_before = asyncio.run
            import wslab
            wslab.serve(port=0).stop()  # the I/O layer too, not just the core
            print(asyncio.run is run_before, hasattr(asyncio, "_nest_patched"),
                  hasattr(asyncio.get_event_loop(), "_nest_patched"))
            """
        )
    ).raise_for_error()
    assert result.stdout.split() == ["True", "False", "False"]


SERVE_CELL = cell(
    """
    import threading, wslab
    server = wslab.serve("echo", port=globals().get("PORT", 0))
    PORT = server.port
    server
    """
)


def test_running_the_serve_cell_twice_replaces_the_server(kernel: Kernel) -> None:
    first = kernel.run(SERVE_CELL).raise_for_error()
    assert "running" in first.results[0] and "handler=echo" in first.results[0]
    threads = kernel.eval("threading.active_count()")
    port = int(kernel.eval("PORT"))
    first_url = kernel.eval("server.url")
    second = kernel.run(SERVE_CELL).raise_for_error()  # the very same cell again
    assert second.stderr == "" and f":{port}/chat" in second.results[0]
    assert kernel.eval("len(wslab.servers())") == "1"
    assert kernel.eval("threading.active_count()") == threads  # no leaked threads
    # The same port keeps its token: links handed out before still work.
    assert kernel.eval("server.url") == first_url
    with connect(kernel.eval("server.url").strip("'"), open_timeout=5) as ws:
        ws.send("from the test process")
        assert ws.recv(timeout=5) == "You sent: from the test process"


def test_rerunning_a_port_0_cell_replaces_its_servers(kernel: Kernel) -> None:
    # Lessons use port=0, so each run gets a new port: the cell, not the port,
    # tells that the earlier servers are replaced.
    two = cell(
        """
        import wslab
        room_a = wslab.serve("chat", port=0)
        room_b = wslab.serve("chat", port=0)  # the same run: both stay
        """
    )
    kernel.run("import wslab\nkeep = wslab.serve('echo', port=0)").raise_for_error()
    kernel.run(two).raise_for_error()
    first_ports = kernel.eval("(room_a.port, room_b.port)")
    kernel.run(two).raise_for_error()  # the same cell again
    running = set(eval(kernel.eval("[s.port for s in wslab.servers()]")))
    assert set(eval(kernel.eval("[keep.port, room_a.port, room_b.port]"))) <= running
    for port in eval(first_ports):  # the first run's two servers were stopped
        assert port not in running and port_is_free(port)
    kernel.run("for s in (keep, room_a, room_b): s.stop()").raise_for_error()


def test_replace_on_rerun_is_one_mechanism_for_everything_a_cell_starts(kernel: Kernel) -> None:
    """What servers, clients, lesson servers and processes use: a re-run cell calls
    its earlier run's stop functions, all of them even if one fails, and a
    forgotten one is not called."""
    kernel.run("import wslab\nstopped = []").raise_for_error()
    start = cell(
        """
        from wslab.jupyter import replace_on_rerun
        def broken():
            raise RuntimeError("cannot stop")
        replace_on_rerun(broken)
        replace_on_rerun(lambda: stopped.append("kept"))
        forget = replace_on_rerun(lambda: stopped.append("forgotten"))
        forget()
        """
    )
    kernel.run(start).raise_for_error()
    assert kernel.eval("stopped") == "[]"  # the same run: nothing stops
    again = kernel.run(start).raise_for_error()
    assert kernel.eval("stopped") == "['kept']"
    assert "stopping what this cell started before failed: cannot stop" in again.stderr
    kernel.run(start).raise_for_error()  # and again: only the latest run is stopped
    assert kernel.eval("stopped") == "['kept', 'kept']"


def test_clients_in_the_same_kernel_as_the_server(kernel: Kernel) -> None:
    kernel.run(SERVE_CELL).raise_for_error()
    result = kernel.run(
        cell(
            """
            ws = wslab.Client(server)
            ws.send("sync")
            print(ws.recv(timeout=5))
            ws.close()
            from websockets.sync.client import connect
            with connect(server.url) as c:
                c.send("websockets")
                print(c.recv(timeout=5))
            """
        ),
        timeout=30,
    ).raise_for_error()
    assert result.stdout.splitlines() == ["You sent: sync", "You sent: websockets"]
    result = kernel.run(
        cell(
            """
            async with wslab.AsyncClient(server) as aws:
                await aws.send("top-level await")
                print(await aws.recv(timeout=5))
            """
        )
    ).raise_for_error()
    assert result.stdout.strip() == "You sent: top-level await"


def test_port_taken_by_another_process_is_a_one_line_error(kernel: Kernel) -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        result = kernel.run(f"import wslab\nwslab.serve(port={port})")
    assert result.error is not None
    ename, evalue, _ = result.error
    assert ename == "ServerStartError"
    assert f"port {port} is already in use" in evalue and "port=0" in evalue
    # Just the message: no traceback through wslab's internals.
    assert "Traceback" not in result.text and "server.py" not in result.text


def test_connect_error_is_shown_as_one_line(kernel: Kernel) -> None:
    result = kernel.run("import wslab\nwslab.Client('http://127.0.0.1:1/chat')")
    assert result.error is not None and result.error[0] == "ConnectError"
    assert "ws://" in result.error[1] and "client.py" not in result.text
    other = kernel.run("import wslab\nraise wslab.ProtocolError('a student bug')")
    assert other.error is not None and "Traceback" in other.text  # others keep theirs


def test_asyncio_run_hint_then_enable_asyncio_run() -> None:
    # Its own kernel: enable_asyncio_run() patches asyncio for the whole process.
    script = cell(
        """
        import asyncio
        async def main():
            await asyncio.sleep(0)
            return "ran"
        print(asyncio.run(main()))
        """
    )
    with Kernel() as kernel:
        kernel.run("import wslab").raise_for_error()
        failed = kernel.run(script)
        assert failed.error is not None and failed.error[0] == "RuntimeError"
        assert "cannot be called from a running event loop" in failed.error[1]
        assert "await main()" in failed.text and "wslab.enable_asyncio_run()" in failed.text
        # The normal traceback is still shown, above the hint.
        assert any("asyncio.run(main())" in line for line in failed.error[2])

        older_style = kernel.run("asyncio.get_event_loop().run_until_complete(main())")
        assert older_style.error is not None and "await main()" in older_style.text

        other = kernel.run("raise RuntimeError('unrelated')")
        assert other.error is not None and "wslab hint" not in other.text

        kernel.run("wslab.enable_asyncio_run()").raise_for_error()
        worked = kernel.run(script).raise_for_error()
        assert worked.stdout.strip() == "ran"


def test_shutdown_and_restart_free_the_port() -> None:
    kernel = Kernel()
    try:
        port = int(kernel.eval("__import__('wslab').serve(port=0).port"))
        assert not port_is_free(port)
        kernel.manager.restart_kernel(now=False)
        kernel.client.wait_for_ready(timeout=60)
        assert port_is_free(port)
        # The restarted kernel can serve on that same port right away.
        assert int(kernel.eval(f"__import__('wslab').serve(port={port}).port")) == port
    finally:
        kernel.shutdown()
    assert port_is_free(port)


def test_stop_button_frees_a_cell_blocked_in_recv(kernel: Kernel) -> None:
    kernel.run(SERVE_CELL).raise_for_error()
    kernel.run("blocked = wslab.Client(server)").raise_for_error()
    stuck = kernel.run("blocked.recv()", timeout=30, interrupt_after=0.5)
    assert stuck.error is not None and stuck.error[0] == "KeyboardInterrupt"
    # The kernel, its server and that very client keep working.
    result = kernel.run("blocked.send('after'); print(blocked.recv(timeout=5))")
    assert result.raise_for_error().stdout.strip() == "You sent: after"


def test_handler_exception_is_shown_in_the_cell(kernel: Kernel) -> None:
    result = kernel.run(
        cell(
            """
            import wslab
            async def buggy(ws):
                async for message in ws:
                    raise ValueError(f"bad message {message!r}")
            bug_server = wslab.serve(buggy, port=0)
            bug_client = wslab.Client(bug_server)
            bug_client.send("x")
            try:
                bug_client.recv(timeout=5)
            except wslab.WSLabError as error:
                print("client:", error)
            bug_server.stop()
            """
        )
    ).raise_for_error()
    assert "client: the connection is closed (code 1011)" in result.stdout
    assert "ValueError: bad message 'x'" in result.stderr  # the traceback, in this cell
    assert result.stderr.count("Traceback") == 1


def test_rerunning_a_client_cell_replaces_its_client(kernel: Kernel) -> None:
    kernel.run("import wslab\nroom = wslab.serve('chat', port=0)").raise_for_error()
    url = kernel.eval("room.url").strip("'")
    join = "alice = wslab.Client(room.url + '&name=Alice')"
    with connect(url + "&name=Watcher", open_timeout=5) as watcher:
        assert watcher.recv(timeout=5) == "* Watcher joined"
        kernel.run(join).raise_for_error()
        assert watcher.recv(timeout=5) == "* Alice joined"
        kernel.run(join).raise_for_error()  # the same cell again
        notices = {watcher.recv(timeout=5), watcher.recv(timeout=5)}
        assert notices == {"* Alice left", "* Alice joined"}
        # The server forgets the old connection just after the notice: poll a little.
        names = kernel.run(
            cell(
                """
                import time
                deadline = time.monotonic() + 5
                while len(room.clients) > 2 and time.monotonic() < deadline:
                    time.sleep(0.01)
                print(sorted(c.name for c in room.clients))
                """
            )
        )
        assert names.raise_for_error().stdout.strip() == "['Alice', 'Watcher']"
    kernel.run("room.stop()").raise_for_error()
