"""wslab's benchmarks: ``make bench`` (or ``.venv/bin/python benchmarks/run.py``).

Everything is measured side by side in one run, against references measured
the same way on the same machine, and printed as one markdown table (also
saved as JSON under ``benchmarks/results/``):

* echo round trip (16 B, 4 KiB, 64 KiB) with one client: a plain TCP echo
  (the floor), the websockets library on its own, ``wslab.serve()`` inside a
  real Jupyter kernel and in a plain process, wslab's from-scratch
  ``RawServer``, and Node's ``ws`` when node and npm are present;
* chat fan-out: 100 clients in one room, time from a send until the last
  client has the message, and messages delivered per second;
* 1,000 idle clients held by ``wslab.serve()`` in a real kernel: memory per
  connection and how long the kernel takes to run ``1+1`` meanwhile;
* the frame codec and masking (``benchmarks/bench_codec.py``);
* how long each lesson notebook takes to execute.

The targets of issue #6 are reported as pass or miss. Timings on a shared
machine are noisy: the rounds interleave the servers so that a burst of load
elsewhere hits them all alike, and p99 is more sensitive to it than p50.

Every process and kernel the runner starts is stopped when it ends, also on
Ctrl-C, SIGTERM or an error.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import json
import os
import platform
import queue
import resource
import selectors
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from wsclient import Client, TcpClient, masked

from wslab.frames import Opcode

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
NODE_DIR = HERE / "node"
PYTHON = sys.executable

SIZES = {"16 B": 16, "4 KiB": 4096, "64 KiB": 65536}

# -- results -----------------------------------------------------------------------


@dataclass
class Row:
    """One line of the results table."""

    section: str
    case: str
    impl: str
    p50: float | None = None  # milliseconds
    p99: float | None = None  # milliseconds
    rate: float | None = None  # per second
    unit: str = "msgs/s"
    note: str = ""


@dataclass
class Target:
    """One of issue #6's targets."""

    name: str
    measured: str
    passed: bool | None  # None: not measured


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        print(f"  {row.section:11} {row.case:22} {row.impl:30} {_cell(row)}", flush=True)
        return row

    def find(self, section: str, case: str, impl: str) -> Row | None:
        for row in self.rows:
            if (row.section, row.case, row.impl) == (section, case, impl):
                return row
        return None

    def target(self, name: str, measured: str, passed: bool | None) -> None:
        self.targets.append(Target(name, measured, passed))


def _cell(row: Row) -> str:
    parts = []
    if row.p50 is not None:
        parts.append(f"p50 {row.p50:.3f} ms")
    if row.p99 is not None:
        parts.append(f"p99 {row.p99:.3f} ms")
    if row.rate is not None:
        parts.append(f"{row.rate:,.0f} {row.unit}")
    if row.note:
        parts.append(row.note)
    return ", ".join(parts)


def percentile(samples: list[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation, as numpy does it."""
    ordered = sorted(samples)
    if len(ordered) == 1:
        return ordered[0]
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary(seconds: list[float]) -> tuple[float, float]:
    """p50 and p99 in milliseconds."""
    return percentile(seconds, 50) * 1e3, percentile(seconds, 99) * 1e3


# -- processes and kernels ---------------------------------------------------------


def raise_fd_limit() -> int:
    """Raise the soft limit on open files to the hard limit; return the new limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


#: Set by Ctrl-C or SIGTERM. Libraries (nbclient, jupyter_client) may swallow the
#: KeyboardInterrupt they receive, so every loop also checks this flag.
INTERRUPTED = threading.Event()


def _on_signal(signum: int, frame: Any) -> None:
    INTERRUPTED.set()
    raise KeyboardInterrupt


def check_interrupted() -> None:
    """Unwind (stopping every server and kernel) once Ctrl-C was pressed."""
    if INTERRUPTED.is_set():
        raise KeyboardInterrupt


def stop_process(proc: subprocess.Popen[str]) -> None:
    """Stop a server and everything it started (its own process group)."""
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


#: Whether to pin the client and the servers to CPUs (see cpu_plan).
PIN = True
#: The process id of each server started by start_process, by name.
PIDS: dict[str, int] = {}


def start_process(stack: contextlib.ExitStack, name: str, cmd: list[str], cwd: Path) -> int:
    """Start a server that prints ``PORT <n>``; return the port. Stopped by ``stack``."""
    RESULTS.mkdir(exist_ok=True)
    log = open(RESULTS / f"{name}.log", "w")  # closed by the stack
    stack.callback(log.close)
    proc = subprocess.Popen(
        cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=log, text=True, start_new_session=True
    )
    stack.callback(stop_process, proc)
    PIDS[name] = proc.pid
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    stdout = proc.stdout
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        line = lines.get(timeout=60)
    except queue.Empty:
        raise RuntimeError(f"{name}: no PORT line within 60 s (see {log.name})") from None
    if not line.startswith("PORT "):
        raise RuntimeError(f"{name} did not start: {line.strip()!r} (see {log.name})")
    return int(line.split()[1])


class Kernel:
    """A real Jupyter kernel (the one the lessons use), shut down by ``stack``."""

    def __init__(self, stack: contextlib.ExitStack) -> None:
        from jupyter_client.manager import KernelManager

        self.km = KernelManager(kernel_name="python3")
        RESULTS.mkdir(exist_ok=True)
        log = open(RESULTS / "kernel.log", "a")  # closed by the stack
        stack.callback(log.close)
        self.km.start_kernel(cwd=str(ROOT), stdout=log, stderr=log)
        stack.callback(self.shutdown)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)
        self.pid = int(self.run("import os; print(os.getpid())"))
        # The kernel holds a socket per client: give it the same file limit as us.
        self.run(
            "import resource\n"
            "_s, _h = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
            "resource.setrlimit(resource.RLIMIT_NOFILE, (_h, _h))"
        )

    def run(self, code: str, timeout: float = 60) -> str:
        """Execute a cell; return its stdout; raise if it fails."""
        out: list[str] = []
        errors: list[str] = []

        def hook(msg: dict[str, Any]) -> None:
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])
            elif msg["msg_type"] == "error":
                errors.append(f"{msg['content']['ename']}: {msg['content']['evalue']}")

        reply = self.kc.execute_interactive(
            code, timeout=timeout, output_hook=hook, store_history=False
        )
        if reply["content"]["status"] != "ok" or errors:
            raise RuntimeError(f"kernel cell failed: {'; '.join(errors) or reply['content']}")
        return "".join(out).strip()

    def cell_time(self) -> float:
        """Seconds from sending ``1+1`` to its reply: what a student waits for."""
        start = time.perf_counter()
        self.run("1+1", timeout=30)
        return time.perf_counter() - start

    def rss(self) -> int:
        """The kernel's resident memory in bytes (from /proc)."""
        return rss_of(self.pid)

    def shutdown(self) -> None:
        with contextlib.suppress(Exception):
            self.kc.stop_channels()
        with contextlib.suppress(Exception):
            self.km.shutdown_kernel(now=True)


def rss_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def cpu_plan() -> tuple[set[int], set[int]] | None:
    """One CPU for the measuring client, another for the servers, if there are two.

    Where the scheduler puts a client and its server changes a loopback round
    trip by about 40% on a 2-core VM (same core: no cross-core wake-up), and it
    decides differently for different processes. Pinning every row the same
    way makes the rows comparable.
    """
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cpus) < 2 or not PIN:
        return None
    return {cpus[0]}, {cpus[1]}


def pin_process(pid: int, cpus: set[int]) -> None:
    """Set the CPU affinity of every thread of ``pid``; threads it starts later inherit it."""
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                os.sched_setaffinity(int(task.name), cpus)


@contextlib.contextmanager
def pinned(server_pids: list[int]) -> Iterator[str]:
    """Pin this thread and the servers for one section; yield a note saying how."""
    plan = cpu_plan()
    if plan is None:
        yield "not pinned"
        return
    mine, theirs = plan
    saved = os.sched_getaffinity(0)
    for pid in server_pids:
        pin_process(pid, theirs)
    os.sched_setaffinity(0, mine)
    try:
        yield f"client on CPU {min(mine)}, servers on CPU {min(theirs)}"
    finally:
        os.sched_setaffinity(0, saved)


def node_available() -> bool:
    if not (shutil.which("node") and shutil.which("npm")):
        return False
    if not (NODE_DIR / "node_modules" / "ws").is_dir():
        print("  npm install ws (benchmarks/node) ...", flush=True)
        done = subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--silent"],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            print(f"  npm install failed, skipping Node: {done.stderr.strip()[:200]}")
            return False
    return True


# Implementations under test, by label. Each starts a server with the given
# handler inside ``stack`` and returns its port.
Starter = Callable[[contextlib.ExitStack, str], int]
IN_KERNEL = "wslab.serve in a kernel"
WEBSOCKETS = "websockets (own process)"


def _own_process(kind: str) -> Starter:
    def start(stack: contextlib.ExitStack, handler: str) -> int:
        cmd = [PYTHON, str(HERE / "servers.py"), kind, handler]
        return start_process(stack, f"{kind}-{handler}", cmd, ROOT)

    return start


def _in_kernel(stack: contextlib.ExitStack, handler: str) -> int:
    kernel = Kernel(stack)
    PIDS[f"kernel-{handler}"] = kernel.pid
    return int(
        kernel.run(
            "import wslab.server\n"
            f"_bench = wslab.server.serve({handler!r}, port=0, max_clients=2000)\n"
            "print(_bench.port)"
        )
    )


def _node(stack: contextlib.ExitStack, handler: str) -> int:
    return start_process(stack, f"node-{handler}", ["node", "server.js", handler], NODE_DIR)


def implementations(use_node: bool) -> dict[str, Starter]:
    impls: dict[str, Starter] = {
        WEBSOCKETS: _own_process("websockets"),
        IN_KERNEL: _in_kernel,
        "wslab.serve (own process)": _own_process("wslab"),
        "wslab.raw RawServer": _own_process("raw"),
    }
    if use_node:
        impls["Node ws (own process)"] = _node
    return impls


# -- echo round trip ---------------------------------------------------------------


def bench_echo(results: Results, quick: bool, use_node: bool) -> None:
    """One client, one message at a time; rounds interleave the servers."""
    iterations = (
        {16: 2000, 4096: 2000, 65536: 600} if not quick else {16: 200, 4096: 200, 65536: 60}
    )
    rounds = 5 if not quick else 2
    with contextlib.ExitStack() as stack:
        floor_port = _own_process("tcp")(stack, "echo")
        floor = TcpClient(floor_port)
        stack.callback(floor.close)
        clients: dict[str, Client] = {}
        for label, start in implementations(use_node).items():
            check_interrupted()
            try:
                port = start(stack, "echo")
                clients[label] = Client(port)
            except Exception as exc:  # A server that is missing or broken is a row, not a crash.
                check_interrupted()
                results.errors.append(f"echo, {label}: {exc}")
                print(f"  echo: {label} unavailable: {exc}", flush=True)
                continue
            stack.callback(clients[label].close)

        pins = stack.enter_context(pinned([pid for n, pid in PIDS.items() if n.endswith("-echo")]))
        results.notes.append(f"echo: {pins}")
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


def _echo_targets(results: Results) -> None:
    for label, limit, name in (
        (IN_KERNEL, 1.15, "in-kernel server round trip <= 1.15x standalone websockets"),
        ("wslab.raw RawServer", 2.0, "from-scratch server round trip <= 2x websockets"),
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
        results.target(name, f"p50 {shown}; worst {worst:.2f}x at {at}", worst <= limit)


# -- chat fan-out ------------------------------------------------------------------


def _drain(clients: list[Client], selector: selectors.BaseSelector, quiet: float) -> None:
    """Read and drop everything until no client receives anything for ``quiet`` s."""
    while events := selector.select(timeout=quiet):
        for key, _ in events:
            key.data.pump()


def _connect_many(port: int, count: int, path: str = "/chat") -> list[Client]:
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
                clients = _connect_many(port, n_clients)
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
                results.notes.append(f"fan-out: {pins}")
            try:
                _fanout_one(results, label, clients, iterations, burst)
            except Exception as exc:
                check_interrupted()
                results.errors.append(f"fan-out, {label}: {exc}")
                print(f"  fan-out: {label} failed: {exc}", flush=True)
    row = results.find("fan-out", "100 clients", IN_KERNEL)
    results.target(
        "fan-out to 100 clients p99 < 50 ms (in-kernel)",
        f"p99 {row.p99:.1f} ms" if row and row.p99 is not None else "not measured",
        None if row is None or row.p99 is None else row.p99 < 50,
    )


def _fanout_one(
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
                "    'echo', port=0, max_clients=2000, ping_interval=None\n"
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
        clients = _connect_many(port, count)
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
    _idle_in_own_process(results, count)
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


def _idle_in_own_process(results: Results, count: int) -> None:
    """The same memory figure for the servers that run in their own process."""
    for kind, label in (("websockets", WEBSOCKETS), ("raw", "wslab.raw RawServer")):
        check_interrupted()
        with contextlib.ExitStack() as stack:
            port = _own_process(kind)(stack, "echo")
            pid = PIDS[f"{kind}-echo"]
            warm = Client(port)
            stack.callback(warm.close)
            warm.send_raw(masked(Opcode.BINARY, b"warm"))
            warm.recv()
            time.sleep(0.5)
            before = rss_of(pid)
            clients = _connect_many(port, count)
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
    repeat, budget = (3, 0.02) if quick else (7, 0.1)
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


# -- lessons -----------------------------------------------------------------------


def bench_lessons(results: Results, quick: bool) -> None:
    import nbformat
    from nbclient import NotebookClient

    lessons = sorted((ROOT / "notebooks").glob("0*.ipynb"))
    total = 0.0
    failed = []
    for path in lessons:
        check_interrupted()
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
            check_interrupted()
            first_line = (str(exc).splitlines() or [""])[0]
            note = f"failed: {type(exc).__name__}: {first_line[:80]}"
            failed.append(path.name)
        elapsed = time.perf_counter() - start
        total += elapsed
        results.add(Row("lessons", path.stem, "nbclient, fresh kernel", elapsed * 1e3, note=note))
    results.add(Row("lessons", "all lessons", "nbclient, fresh kernel", total * 1e3))
    results.target(
        "all lessons together < 60 s",
        f"{total:.1f} s for {len(lessons)} notebooks"
        + (f", {len(failed)} failed" if failed else ""),
        total < 60 and not failed if lessons else None,
    )


# -- report ------------------------------------------------------------------------


def machine() -> dict[str, str]:
    import websockets

    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    node = ""
    if shutil.which("node"):
        node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "os": platform.platform(),
        "python": platform.python_version(),
        "websockets": websockets.version.version,
        "node": node or "absent",
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def markdown(results: Results, info: dict[str, str], command: str) -> str:
    def ms(value: float | None) -> str:
        return "" if value is None else f"{value:,.2f}"

    lines = [
        f"Machine: {info['cpu']}, {info['cores']} cores, {info['os']}; Python {info['python']}, "
        f"websockets {info['websockets']}, node {info['node']}; {info['date']}.",
        f"Command: `{command}`. Times in ms; ratios compare p50 with the websockets row.",
        *(f"CPU placement, {note}." for note in results.notes),
        "",
        "| Benchmark | Case | Implementation | p50 (ms) | p99 (ms) | Rate | Notes |",
        "| --- | --- | --- | ---: | ---: | ---: | --- |",
    ]
    for row in results.rows:
        rate = "" if row.rate is None else f"{row.rate:,.0f} {row.unit}"
        lines.append(
            f"| {row.section} | {row.case} | {row.impl} | {ms(row.p50)} | {ms(row.p99)} "
            f"| {rate} | {row.note} |"
        )
    lines += ["", "| Target | Measured | Result |", "| --- | --- | --- |"]
    for target in results.targets:
        verdict = {True: "pass", False: "**miss**", None: "n/a"}[target.passed]
        lines.append(f"| {target.name} | {target.measured} | {verdict} |")
    if results.errors:
        lines += ["", "Not measured:"] + [f"- {error}" for error in results.errors]
    return "\n".join(lines)


SECTIONS = ("echo", "fanout", "connections", "codec", "lessons")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations (a smoke run)")
    parser.add_argument(
        "--only", default=",".join(SECTIONS), help=f"comma-separated sections of {SECTIONS}"
    )
    parser.add_argument("--no-node", action="store_true", help="skip Node's ws")
    parser.add_argument(
        "--no-pin", action="store_true", help="let the scheduler place client and servers"
    )
    args = parser.parse_args(argv)
    global PIN
    PIN = not args.no_pin
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s) {sorted(unknown)}: choose from {', '.join(SECTIONS)}")

    # Ctrl-C and SIGTERM unwind through every ExitStack, so nothing is left running.
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    raise_fd_limit()
    info = machine()
    use_node = not args.no_node and node_available()
    results = Results()
    steps: dict[str, Callable[[], None]] = {
        "echo": lambda: bench_echo(results, args.quick, use_node),
        "fanout": lambda: bench_fanout(results, args.quick, use_node),
        "connections": lambda: bench_connections(results, args.quick),
        "codec": lambda: bench_codec(results, args.quick),
        "lessons": lambda: bench_lessons(results, args.quick),
    }
    for name in sections:
        check_interrupted()
        print(f"[{name}]", flush=True)
        gc.collect()
        try:
            steps[name]()
        except Exception as exc:
            check_interrupted()
            results.errors.append(f"{name}: {type(exc).__name__}: {exc}")
            traceback.print_exc()
        check_interrupted()
    command = "make bench" + (" (--quick)" if args.quick else "")
    table = markdown(results, info, command)
    print()
    print(table)
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"bench-{stamp}.json"
    payload = {
        "machine": info,
        "quick": args.quick,
        "rows": [asdict(r) for r in results.rows],
        "targets": [asdict(t) for t in results.targets],
        "errors": results.errors,
        "markdown": table,
    }
    out.write_text(json.dumps(payload, indent=2))
    print(f"\nSaved {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted: every server and kernel was stopped", file=sys.stderr)
        sys.exit(130)
