"""Profile a server under the fan-out (or echo) benchmark with py-spy.

Usage (py-spy comes with ``pip install -e '.[bench]'``, or ``make bench`` once)::

    .venv/bin/python benchmarks/profile_fanout.py [kernel|wslab|raw|websockets]
    .venv/bin/python benchmarks/profile_fanout.py raw --echo 65536

``kernel`` is ``wslab.serve`` in a real Jupyter kernel (py-spy attaches to
the kernel process); the others are ``benchmarks/servers.py KIND`` run under
``py-spy record``. The clients are driven as ``run.py`` drives them: 100 chat
members (``sections.fanout_one``), or one echo client sending SIZE-byte
binary messages. Then it prints where the server's busy threads spent their
time: samples per thread, self time and inclusive time per function. py-spy
samples from outside and skips idle threads, so the server runs unmodified.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from harness import HERE, PIDS, Results, in_kernel
from sections import connect_many, fanout_one
from wsclient import Client, masked

from wslab.frames import Opcode


def py_spy() -> str:
    """The py-spy program; exits with a one-line message when it is missing."""
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        sys.exit("py-spy is missing: pip install -e '.[bench]' (or run make bench once)")
    return found


def drive(port: int, echo: int | None, label: str) -> None:
    """Load the server: the fan-out of run.py, or ``echo``-byte messages from one client."""
    if echo is None:
        clients = connect_many(port, 100)
        try:
            fanout_one(Results(), label, clients, 600, 3000)
        finally:
            for client in clients:
                client.close()
        return
    client = Client(port, "/chat")
    try:
        frame = masked(Opcode.BINARY, os.urandom(echo))
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            client.send_raw(frame)
            client.recv()
    finally:
        client.close()


def profile_process(kind: str, echo: int | None, out: Path) -> None:
    """Run ``servers.py KIND`` under ``py-spy record`` while driving it."""
    handler = "chat" if echo is None else "echo"
    cmd = [py_spy(), "record", "-r", "200", "--threads", "-f", "raw", "-o", str(out), "--"]
    cmd += [sys.executable, str(HERE / "servers.py"), kind, handler]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        lines: queue.Queue[str] = queue.Queue()
        assert proc.stdout is not None
        stdout = proc.stdout

        def read() -> None:
            for line in stdout:
                lines.put(line)

        threading.Thread(target=read, daemon=True).start()
        while not (line := lines.get(timeout=60)).startswith("PORT "):
            pass  # py-spy's own messages
        drive(int(line.split()[1]), echo, f"{kind} (under py-spy)")
        # SIGINT to py-spy's group: the server exits and py-spy writes its report.
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def profile_kernel(echo: int | None, out: Path) -> None:
    """Start ``wslab.serve`` in a real kernel, attach py-spy to the kernel, drive it."""
    handler = "chat" if echo is None else "echo"
    with contextlib.ExitStack() as stack:
        port = in_kernel(stack, handler)
        pid = PIDS[f"kernel-{handler}"]
        cmd = [py_spy(), "record", "-r", "200", "--threads", "-f", "raw", "-o", str(out)]
        spy = subprocess.Popen([*cmd, "--pid", str(pid)], stdout=subprocess.DEVNULL)
        try:
            time.sleep(1)  # py-spy attaches
            drive(port, echo, "wslab.serve in a kernel (under py-spy)")
        finally:
            spy.send_signal(signal.SIGINT)
            spy.wait(30)


def summarize(path: Path, top: int = 25) -> None:
    """Print samples per thread, then self and inclusive time per function."""
    threads: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        thread, *frames = stack.split(";")
        if not frames:
            continue
        total += count
        threads[thread] += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total:
        print("no samples of busy threads")
        return
    print(f"\n{total} samples of busy threads (200 per second)\n\nper thread:")
    for thread, count in threads.most_common(8):
        print(f"{count / total:6.1%}  {thread[:140]}")
    print("\nself time:")
    for frame, count in own.most_common(top):
        print(f"{count / total:6.1%}  {frame[:140]}")
    print("\ninclusive time:")
    for frame, count in inclusive.most_common(top * 2):
        print(f"{count / total:6.1%}  {frame[:140]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "kind", nargs="?", default="kernel", choices=("kernel", "wslab", "raw", "websockets")
    )
    parser.add_argument("--echo", type=int, metavar="SIZE", help="profile echo of SIZE bytes")
    args = parser.parse_args(argv)
    out = Path(tempfile.mkdtemp()) / "profile.txt"
    if args.kind == "kernel":
        profile_kernel(args.echo, out)
    else:
        profile_process(args.kind, args.echo, out)
    summarize(out)
    print(f"\nraw profile (collapsed stacks, for flame graphs): {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
