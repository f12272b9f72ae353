"""The benchmarks' sections: each measures one thing and adds rows and targets.

* ``echo``: one client, one message at a time, against every implementation;
* ``fanout``: 100 clients in one chat room;
* ``connections``: 1,000 idle clients held by a kernel;
* ``codec``: the frame codec and masking (``bench_codec.py``);
* ``course``: every lesson executed by nbclient in a fresh kernel;
* ``setup``: time to first lesson (``git clone`` to JupyterLab answering with
  ``make lab``) and ``make test``'s set-up, in a fresh clone.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import selectors
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from harness import (
    IN_KERNEL,
    PIDS,
    ROOT,
    SIZES,
    WEBSOCKETS,
    Kernel,
    Results,
    Row,
    check_interrupted,
    implementations,
    own_process,
    pinned,
    raise_fd_limit,
    rss_of,
    summary,
)
from wsclient import Client, TcpClient, masked

from wslab.frames import Opcode

# -- echo round trip ---------------------------------------------------------------


def bench_echo(results: Results, quick: bool, use_node: bool) -> None:
    """One client, one message at a time; rounds interleave the servers."""
    iterations = (
        {16: 2000, 4096: 2000, 65536: 600} if not quick else {16: 200, 4096: 200, 65536: 60}
    )
    rounds = 5 if not quick else 2
    with contextlib.ExitStack() as stack:
        floor_port = own_process("tcp")(stack, "echo")
        floor = TcpClient(floor_port)
        stack.callback(floor.close)
        clients: dict[str, Client] = {}
        starters = {**implementations(use_node), PY_FLOOR: own_process("pyfloor")}
        for label, starter in starters.items():
            check_interrupted()
            try:
                port = starter(stack, "echo")
                clients[label] = Client(port)
            except Exception as exc:  # A server that is missing or broken is a row, not a crash.
                check_interrupted()
                results.errors.append(f"echo, {label}: {exc}")
                print(f"  echo: {label} unavailable: {exc}", flush=True)
                continue
            stack.callback(clients[label].close)

        pins = stack.enter_context(pinned([pid for n, pid in PIDS.items() if n.endswith("-echo")]))
        results.notes.append(f"CPU placement, echo: {pins}")
        for size_label, size in SIZES.items():
            payload = os.urandom(size)
            frame = masked(Opcode.BINARY, payload)
            samples: dict[str, list[float]] = {label: [] for label in ["TCP floor", *clients]}
            per_round = max(iterations[size] // rounds, 1)
            for client in clients.values():  # warm up
                for _ in range(20):
                    client.send_raw(frame)
                    client.recv()
            for _ in range(20):
                floor.round_trip(payload)
            for _ in range(rounds):
                times = samples["TCP floor"]
                for _ in range(per_round):
                    start = time.perf_counter()
                    floor.round_trip(payload)
                    times.append(time.perf_counter() - start)
                for label, client in clients.items():
                    times = samples[label]
                    for _ in range(per_round):
                        start = time.perf_counter()
                        client.send_raw(frame)
                        opcode, echoed = client.recv()
                        times.append(time.perf_counter() - start)
                        if echoed != payload:
                            raise RuntimeError(f"{label} echoed wrong bytes (opcode {opcode})")
            for label, times in samples.items():
                p50, p99 = summary(times)
                results.add(
                    Row("echo", size_label, label, p50, p99, len(times) / sum(times), "msgs/s")
                )

    for size_label in SIZES:
        reference = results.find("echo", size_label, WEBSOCKETS)
        for row in results.rows:
            if row.section == "echo" and row.case == size_label and reference and row.p50:
                assert reference.p50 is not None
                row.note = f"{row.p50 / reference.p50:.2f}x websockets"
    _echo_targets(results)


#: The least any pure-Python WebSocket server can do (benchmarks/servers.py).
PY_FLOOR = "pure-Python floor (own process)"


def _echo_targets(results: Results) -> None:
    for label, limit, name in (
        (IN_KERNEL, 1.10, "in-kernel round trip <= 1.10x websockets at every size"),
        ("wslab.raw RawServer", 1.3, "RawServer round trip <= 1.3x websockets at every size"),
    ):
        ratios = []
        for size_label in SIZES:
            row = results.find("echo", size_label, label)
            reference = results.find("echo", size_label, WEBSOCKETS)
            if row and reference and row.p50 and reference.p50:
                ratios.append((row.p50 / reference.p50, size_label))
        if len(ratios) != len(SIZES):
            results.target(name, "not measured", None)
            continue
        worst, at = max(ratios)
        shown = ", ".join(f"{r:.2f}x ({s})" for r, s in ratios)
        floor = ""
        if label != IN_KERNEL:  # what no pure-Python server can beat, in the same run
            row, reference = (
                results.find("echo", at, PY_FLOOR),
                results.find("echo", at, WEBSOCKETS),
            )
            if (ratio := p50_ratio(row, reference)) is not None:
                floor = f" (pure-Python floor {ratio:.2f}x at {at})"
        results.target(name, f"p50 {shown}; worst {worst:.2f}x at {at}{floor}", worst <= limit)


def p50_ratio(row: Row | None, reference: Row | None) -> float | None:
    """``row``'s p50 over ``reference``'s, when both were measured."""
    if row is None or reference is None or not row.p50 or not reference.p50:
        return None
    return row.p50 / reference.p50


# -- chat fan-out ------------------------------------------------------------------


def _drain(clients: list[Client], selector: selectors.BaseSelector, quiet: float) -> None:
    """Read and drop everything until no client receives anything for ``quiet`` s."""
    while events := selector.select(timeout=quiet):
        for key, _ in events:
            key.data.pump()


def connect_many(port: int, count: int, path: str = "/chat") -> list[Client]:
    clients = []
    try:
        for _ in range(count):
            clients.append(Client(port, path))
    except BaseException:
        for client in clients:
            client.close()
        raise
    return clients


def bench_fanout(results: Results, quick: bool, use_node: bool) -> None:
    n_clients = 100
    iterations = 300 if not quick else 40
    burst = 500 if not quick else 100
    for label, start in implementations(use_node).items():
        if label == "wslab.serve (own process)":
            continue  # The kernel row covers wslab.serve's chat.
        check_interrupted()
        with contextlib.ExitStack() as stack:
            try:
                port = start(stack, "chat")
                clients = connect_many(port, n_clients)
            except Exception as exc:
                check_interrupted()
                results.errors.append(f"fan-out, {label}: {exc}")
                print(f"  fan-out: {label} unavailable: {exc}", flush=True)
                continue
            for client in clients:
                stack.callback(client.close)
            server = [pid for n, pid in PIDS.items() if n.endswith("-chat")][-1:]
            pins = stack.enter_context(pinned(server))
            if label == IN_KERNEL:
                results.notes.append(f"CPU placement, fan-out: {pins}")
            try:
                fanout_one(results, label, clients, iterations, burst)
            except Exception as exc:
                check_interrupted()
                results.errors.append(f"fan-out, {label}: {exc}")
                print(f"  fan-out: {label} failed: {exc}", flush=True)
    row = results.find("fan-out", "100 clients", IN_KERNEL)
    ratio = p50_ratio(row, results.find("fan-out", "100 clients", WEBSOCKETS))
    results.target(
        "in-kernel fan-out to 100 clients <= 1.5x websockets' broadcast() (p50)",
        "not measured" if ratio is None else f"{ratio:.2f}x",
        None if ratio is None else ratio <= 1.5,
    )
    results.target(
        "fan-out to 100 clients p99 < 50 ms (in-kernel)",
        f"p99 {row.p99:.1f} ms" if row and row.p99 is not None else "not measured",
        None if row is None or row.p99 is None else row.p99 < 50,
    )


def fanout_one(
    results: Results, label: str, clients: list[Client], iterations: int, burst: int
) -> None:
    selector = selectors.DefaultSelector()
    for client in clients:
        client.sock.setblocking(True)
        selector.register(client.sock, selectors.EVENT_READ, client)
    try:
        _drain(clients, selector, quiet=0.5)  # join notices
        # Latency: one message at a time, from each client in turn, to all 100
        # (the chat sends it back to its sender too).
        latencies = []
        for i in range(iterations):
            marker = f"m{i}".encode()
            ending = b": " + marker
            pending = set(range(len(clients)))
            index = {id(c): n for n, c in enumerate(clients)}
            sender = clients[i % len(clients)]
            start = time.perf_counter()
            sender.send_raw(masked(Opcode.TEXT, marker))
            last = start
            while pending:
                events = selector.select(timeout=10)
                if not events:
                    raise RuntimeError(f"{len(pending)} clients never got message {i}")
                for key, _ in events:
                    client = key.data
                    for _opcode, payload in client.pump():
                        if payload.endswith(ending):
                            pending.discard(index[id(client)])
                            last = time.perf_counter()
            latencies.append(last - start)
        p50, p99 = summary(latencies)
        # Throughput: one client sends a burst; count deliveries to all 100.
        sender = clients[0]
        frames = [masked(Opcode.TEXT, f"b{i}".encode()) for i in range(burst)]
        expected = burst * len(clients)
        received = 0
        start = time.perf_counter()
        for frame in frames:
            sender.send_raw(frame)
            for key, _ in selector.select(timeout=0):
                received += sum(1 for _o, p in key.data.pump() if b": b" in p)
        while received < expected:
            events = selector.select(timeout=10)
            if not events:
                raise RuntimeError(f"burst: {expected - received} deliveries missing")
            for key, _ in events:
                received += sum(1 for _o, p in key.data.pump() if b": b" in p)
        elapsed = time.perf_counter() - start
        results.add(
            Row("fan-out", "100 clients", label, p50, p99, received / elapsed, "deliveries/s")
        )
    finally:
        selector.close()


# -- 1,000 idle connections --------------------------------------------------------


def bench_connections(results: Results, quick: bool) -> None:
    count = 1000
    cells = 50 if not quick else 15
    limit = raise_fd_limit()
    if limit < count + 100:
        results.target("1,000 idle clients", f"file limit {limit} too low", None)
        return
    with contextlib.ExitStack() as stack:
        kernel = Kernel(stack)
        # No keepalive pings: these clients stay idle and do not read.
        port = int(
            kernel.run(
                "import gc, wslab.server\n"
                "_idle = wslab.server.serve(\n"
                "    'echo', port=0, max_clients=2000, ping_interval=None, token=None\n"
                ")\n"
                "print(_idle.port)"
            )
        )
        baseline_cells = [kernel.cell_time() for _ in range(cells)]
        # Connect one client first so that one-off imports and buffers are counted
        # in the baseline, not spread over the 1,000.
        warm = Client(port)
        stack.callback(warm.close)
        warm.send_raw(masked(Opcode.TEXT, b"warm"))
        warm.recv()
        kernel.run("gc.collect()")
        time.sleep(0.5)
        before = kernel.rss()
        start = time.perf_counter()
        clients = connect_many(port, count)
        connect_time = time.perf_counter() - start
        for client in clients:
            stack.callback(client.close)
        held = int(kernel.run("print(len(_idle.clients))")) - 1  # not the warm-up client
        kernel.run("gc.collect()")
        time.sleep(0.5)
        after = kernel.rss()
        busy_cells = [kernel.cell_time() for _ in range(cells)]
        # Still serving: a new client gets its echo.
        probe = Client(port)
        stack.callback(probe.close)
        probe.send_raw(masked(Opcode.TEXT, b"still there?"))
        still = probe.recv()[1] == b"You sent: still there?"

    per_connection = (after - before) / count
    p50, p99 = summary(baseline_cells)
    results.add(Row("kernel", "cell 1+1, idle", IN_KERNEL, p50, p99, None, ""))
    p50, p99 = summary(busy_cells)
    results.add(
        Row(
            "kernel",
            f"cell 1+1, {count} clients",
            IN_KERNEL,
            p50,
            p99,
            None,
            "",
            f"{held} held, connected in {connect_time:.1f} s, serving: {still}",
        )
    )
    results.add(
        Row(
            "memory",
            f"{count} idle clients",
            IN_KERNEL,
            note=f"{per_connection / 1024:.1f} KiB per connection "
            f"(kernel RSS {before / 2**20:.0f} -> {after / 2**20:.0f} MiB)",
        )
    )
    _idle_inown_process(results, count)
    results.target(
        "1,000 idle clients: < 100 KiB each",
        f"{per_connection / 1024:.1f} KiB",
        per_connection < 100 * 1024 and held == count,
    )
    results.target(
        "1,000 idle clients: kernel answers a cell within 100 ms",
        f"p99 {p99:.1f} ms",
        p99 < 100 and still,
    )


def _idle_inown_process(results: Results, count: int) -> None:
    """The same memory figure for the servers that run in their own process."""
    for kind, label in (("websockets", WEBSOCKETS), ("raw", "wslab.raw RawServer")):
        check_interrupted()
        with contextlib.ExitStack() as stack:
            port = own_process(kind)(stack, "echo")
            pid = PIDS[f"{kind}-echo"]
            warm = Client(port)
            stack.callback(warm.close)
            warm.send_raw(masked(Opcode.BINARY, b"warm"))
            warm.recv()
            time.sleep(0.5)
            before = rss_of(pid)
            clients = connect_many(port, count)
            for client in clients:
                stack.callback(client.close)
            time.sleep(0.5)
            after = rss_of(pid)
        note = f"{(after - before) / count / 1024:.1f} KiB per connection"
        if kind == "raw":
            note += " (one thread each)"
        results.add(Row("memory", f"{count} idle clients", label, note=note))


# -- codec -------------------------------------------------------------------------


def bench_codec(results: Results, quick: bool) -> None:
    """Run the core helper's codec benchmark and turn its figures into rows."""
    try:
        import bench_codec
    except ImportError as exc:
        results.errors.append(f"codec: benchmarks/bench_codec.py unavailable ({exc})")
        results.target("codec >= 0.5x websockets (pure Python)", "not measured", None)
        results.target("masking 1 MiB < 5 ms", "not measured", None)
        return
    _codec_rows(results, bench_codec, quick)


def _codec_rows(results: Results, module: Any, quick: bool) -> None:
    repeat, budget = (3, 0.02) if quick else (5, 0.05)
    data = module.run(repeat, budget)
    ratios = []
    for row in data["codec"]:
        ratio = row["wslab"] / row["websockets_python"]
        ratios.append((ratio, f"{row['operation']} {row['size']}"))
        note = f"{ratio:.2f}x websockets pure-Python"
        if "websockets_c" in row:
            note += f", {row['wslab'] / row['websockets_c']:.2f}x websockets with C masking"
        case = f"{row['operation']} {row['size']}"
        results.add(Row("codec", case, "wslab", rate=row["wslab"], unit="MB/s", note=note))
    for name, ms in data["mask_1mib_ms"].items():
        results.add(Row("codec", "mask 1 MiB", name.replace("_", " "), p50=ms, note="median"))
    worst, at = min(ratios)
    results.target(
        f"codec >= {module.CODEC_TARGET}x websockets (pure Python)",
        f"worst {worst:.2f}x ({at})",
        worst >= module.CODEC_TARGET,
    )
    mask = data["mask_1mib_ms"]["wslab"]
    results.target(
        f"masking 1 MiB < {module.MASK_TARGET_MS:g} ms",
        f"{mask:.2f} ms",
        mask < module.MASK_TARGET_MS,
    )


# -- the course --------------------------------------------------------------------


def run_lesson(path: Path) -> tuple[float, str]:
    """Execute one lesson in a fresh kernel; its seconds, and a note if it failed."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    start = time.perf_counter()
    try:
        client.execute()
        note = ""
    except Exception as exc:
        first_line = (str(exc).splitlines() or [""])[0]
        note = f"failed: {type(exc).__name__}: {first_line[:80]}"
    return time.perf_counter() - start, note


def bench_course(results: Results, quick: bool) -> None:
    """Execute every lesson in a fresh kernel, as Run All does; the whole course's time.

    Two lessons run at a time: lessons 09 to 11 spend most of their seconds
    waiting (reconnect back-offs, timeouts), so the section takes about half
    as long, and each lesson's own time stays what a student waits for. The
    course's time is the sum of the lessons' times, as if run one after another.
    """
    lessons = sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        timings = list(pool.map(run_lesson, lessons))
    check_interrupted()
    failed = [path.name for path, (_, note) in zip(lessons, timings, strict=True) if note]
    for path, (elapsed, note) in zip(lessons, timings, strict=True):
        results.add(Row("course", path.stem, "nbclient, fresh kernel", elapsed * 1e3, note=note))
    total = sum(elapsed for elapsed, _ in timings)
    results.add(
        Row(
            "course", "all lessons", "nbclient, fresh kernel", total * 1e3, note="sum of the above"
        )
    )
    results.target(
        "the whole course executes in < 60 s",
        f"{total:.1f} s for {len(lessons)} lessons"
        + (f", {len(failed)} failed" if failed else ""),
        total < 60 and not failed if lessons else None,
    )


# -- set-up ------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def time_to_first_lesson(clone: Path, timeout: float = 180) -> tuple[float, float]:
    """``git clone`` then ``make lab``: seconds until JupyterLab answers, and the clone's share.

    JupyterLab answers when ``/api`` does (the page itself is static files);
    ``make lab`` runs with ``--no-browser`` on a free port and is stopped after.
    """
    port = _free_port()
    start = time.perf_counter()
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    cloned = time.perf_counter() - start
    log = open(clone.parent / "make-lab.log", "w")
    lab = subprocess.Popen(
        ["make", "lab", f"ARGS=--no-browser --ServerApp.port={port}"],
        cwd=clone,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        while not _answers(f"http://127.0.0.1:{port}/api"):
            check_interrupted()
            if lab.poll() is not None or time.perf_counter() - start > timeout:
                raise RuntimeError(f"make lab did not answer (see {log.name})")
            time.sleep(0.05)
        return time.perf_counter() - start, cloned
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(lab.pid, signal.SIGTERM)
        lab.wait(30)
        log.close()


def make_test_setup(clone: Path) -> float:
    """Seconds ``make test`` spends before its first check: the venv with the test extras."""
    start = time.perf_counter()
    subprocess.run(
        ["make", ".venv/.stamp-test"], cwd=clone, check=True, capture_output=True, text=True
    )
    return time.perf_counter() - start


def bench_setup(results: Results, quick: bool) -> None:
    """Time to first lesson and make test's set-up, in fresh clones (uv's cache as it is)."""
    if shutil.which("make") is None or shutil.which("git") is None:
        results.target("clone to JupyterLab answering < 10 s", "needs git and make", None)
        return
    runs = 1
    firsts, setups = [], []
    for _ in range(runs):
        check_interrupted()
        with tempfile.TemporaryDirectory(prefix="wslab-setup-") as tmp:
            seconds, cloned = time_to_first_lesson(Path(tmp) / "wslab")
            firsts.append(seconds)
            results.add(
                Row(
                    "set-up",
                    "clone to JupyterLab answering",
                    "make lab",
                    seconds * 1e3,
                    note=f"clone {cloned:.1f} s; {_installer()}",
                )
            )
            setups.append(make_test_setup(Path(tmp) / "wslab"))
            results.add(
                Row(
                    "set-up",
                    "make test before its first check",
                    "make .venv/.stamp-test",
                    setups[-1] * 1e3,
                    note="venv and test extras, after make lab",
                )
            )
    results.target(
        "clone to JupyterLab answering < 10 s",
        ", ".join(f"{s:.1f} s" for s in firsts),
        max(firsts) < 10,
    )
    results.target(
        "make test set-up < 10 s", ", ".join(f"{s:.1f} s" for s in setups), max(setups) < 10
    )


def _installer() -> str:
    """Which installer a fresh clone's make uses here."""
    if shutil.which("uv") is not None:
        return "uv on PATH"
    return "uv installed into the venv by pip"
