"""The benchmarks' harness: results, processes, kernels, CPU placement, implementations.

``sections.py`` measures with these; ``report.py`` prints and saves what they
measured; ``run.py`` is the command line. Every process and kernel started
here is registered on a :class:`contextlib.ExitStack` and stopped with it,
also on Ctrl-C or SIGTERM (``INTERRUPTED``).
"""

from __future__ import annotations

import contextlib
import os
import queue
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
NODE_DIR = HERE / "node"
PYTHON = sys.executable

# The tests' kernel driver (tests/_kernel.py): one way to run cells in a real kernel.
sys.path.insert(0, str(ROOT / "tests"))
from _kernel import Kernel as _TestKernel  # noqa: E402

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


# -- processes ---------------------------------------------------------------------


def raise_fd_limit() -> int:
    """Raise the soft limit on open files to the hard limit; return the new limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


#: Set by Ctrl-C or SIGTERM. Libraries (nbclient, jupyter_client) may swallow the
#: KeyboardInterrupt they receive, so every loop also checks this flag.
INTERRUPTED = threading.Event()


def on_signal(signum: int, frame: Any) -> None:
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
    """A real Jupyter kernel (tests/_kernel.py's), shut down by ``stack``."""

    def __init__(self, stack: contextlib.ExitStack) -> None:
        self.kernel = _TestKernel(ROOT)
        stack.callback(self.kernel.shutdown)
        self.pid = int(self.run("import os; print(os.getpid())"))
        # The kernel holds a socket per client: give it the same file limit as us.
        self.run(
            "import resource\n"
            "_s, _h = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
            "resource.setrlimit(resource.RLIMIT_NOFILE, (_h, _h))"
        )

    def run(self, code: str, timeout: float = 60) -> str:
        """Execute a cell; return its stdout; raise if it fails."""
        result = self.kernel.run(code, timeout)
        if result.error is not None or result.status != "ok":
            ename, evalue = result.error[:2] if result.error else ("status", result.status)
            raise RuntimeError(f"kernel cell failed: {ename}: {evalue}")
        return result.stdout.strip()

    def cell_time(self) -> float:
        """Seconds from sending ``1+1`` to its reply: what a student waits for."""
        start = time.perf_counter()
        self.run("1+1", timeout=30)
        return time.perf_counter() - start

    def rss(self) -> int:
        """The kernel's resident memory in bytes (from /proc)."""
        return rss_of(self.pid)


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


def own_process(kind: str) -> Starter:
    def start(stack: contextlib.ExitStack, handler: str) -> int:
        cmd = [PYTHON, str(HERE / "servers.py"), kind, handler]
        return start_process(stack, f"{kind}-{handler}", cmd, ROOT)

    return start


def in_kernel(stack: contextlib.ExitStack, handler: str) -> int:
    kernel = Kernel(stack)
    PIDS[f"kernel-{handler}"] = kernel.pid
    return int(
        kernel.run(
            "import wslab.server\n"
            f"_bench = wslab.server.serve({handler!r}, port=0, max_clients=2000, token=None)\n"
            "print(_bench.port)"
        )
    )


def _node(stack: contextlib.ExitStack, handler: str) -> int:
    return start_process(stack, f"node-{handler}", ["node", "server.js", handler], NODE_DIR)


def implementations(use_node: bool) -> dict[str, Starter]:
    impls: dict[str, Starter] = {
        WEBSOCKETS: own_process("websockets"),
        IN_KERNEL: in_kernel,
        "wslab.serve (own process)": own_process("wslab"),
        "wslab.raw RawServer": own_process("raw"),
    }
    if use_node:
        impls["Node ws (own process)"] = _node
    return impls
