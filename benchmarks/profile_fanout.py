"""Profile a chat server under the fan-out benchmark with py-spy.

Usage (py-spy comes with ``pip install -e '.[bench]'``)::

    .venv/bin/python benchmarks/profile_fanout.py [wslab|raw|websockets]

It starts ``benchmarks/servers.py KIND chat`` under ``py-spy record``, drives
100 clients as ``run.py`` does, then prints where the server's threads spent
their time: self time and inclusive time per function. py-spy samples from
outside, so the server runs unmodified; its own overhead is small.
"""

from __future__ import annotations

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
from pathlib import Path

import run

HERE = Path(__file__).resolve().parent


def main() -> int:
    kind = sys.argv[1] if len(sys.argv) > 1 else "wslab"
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(py_spy).exists():
        print("py-spy is missing: pip install -e '.[bench]'", file=sys.stderr)
        return 2
    out = Path(tempfile.mkdtemp()) / "profile.txt"
    cmd = [py_spy, "record", "-r", "200", "-f", "raw", "-o", str(out), "--"]
    cmd += [sys.executable, str(HERE / "servers.py"), kind, "chat"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        lines: queue.Queue[str] = queue.Queue()
        assert proc.stdout is not None
        stdout = proc.stdout
        threading.Thread(target=lambda: [lines.put(x) for x in stdout], daemon=True).start()
        while not (line := lines.get(timeout=60)).startswith("PORT "):
            pass  # py-spy's own messages
        port = int(line.split()[1])
        clients = run._connect_many(port, 100)
        try:
            run._fanout_one(run.Results(), f"{kind} (under py-spy)", clients, 600, 3000)
        finally:
            for client in clients:
                client.close()
        # SIGINT to py-spy's group: the server exits and py-spy writes its report.
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    summarize(out)
    return 0


def summarize(path: Path, top: int = 25) -> None:
    """Print self and inclusive time per function from py-spy's collapsed stacks."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if not any("run_forever" in f or "_serve_client" in f for f in frames):
            continue  # only the threads that serve clients
        total += int(count)
        own[frames[-1]] += int(count)
        for frame in set(frames):
            inclusive[frame] += int(count)
    if not total:
        print("no samples of the serving threads")
        return
    print(f"\n{total} samples of the serving threads\n\nself time:")
    for frame, count in own.most_common(top):
        print(f"{count / total:6.1%}  {frame[:140]}")
    print("\ninclusive time:")
    for frame, count in inclusive.most_common(top * 2):
        print(f"{count / total:6.1%}  {frame[:140]}")


if __name__ == "__main__":
    sys.exit(main())
