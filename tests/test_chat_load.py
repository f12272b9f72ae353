"""Chat under load: 50 clients x 100 messages through the in-kernel chat server.

Correctness is asserted (every client gets every message exactly once, in
each sender's order); latency is only measured and printed, never asserted.
The server runs in this process, as in a kernel; the 50 clients run in a
child process (this file run as a script), so that they do not compete with
the server for this process's GIL. They still share the machine.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest
from websockets.asyncio.client import ClientConnection, connect

import wslab

pytestmark = pytest.mark.timeout(120)

CLIENTS = 50
MESSAGES = 100


async def run_load(url: str) -> tuple[dict[int, dict[int, list[int]]], list[float], float]:
    """Connect everyone, let everyone send, and collect what each one receives.

    Returns:
        For each receiver, the sequence numbers it got from each sender; the
        delivery latencies in seconds; the wall time of the sending phase.
    """
    expected = CLIENTS * MESSAGES
    received: dict[int, dict[int, list[int]]] = {i: defaultdict(list) for i in range(CLIENTS)}
    latencies: list[float] = []
    start = asyncio.Event()

    async def reader(me: int, ws: ClientConnection) -> None:
        count = 0
        while count < expected:
            message = await ws.recv()
            assert isinstance(message, str)
            if message.startswith("* "):
                continue  # join notices
            # "c<sender>: <seq> <perf_counter at send>"
            name, _, body = message.partition(": ")
            seq, sent = body.split()
            received[me][int(name[1:])].append(int(seq))
            latencies.append(time.perf_counter() - float(sent))
            count += 1

    async def writer(me: int, ws: ClientConnection) -> None:
        await start.wait()
        for seq in range(MESSAGES):
            await ws.send(f"{seq} {time.perf_counter()!r}")
            await asyncio.sleep(0)  # let everyone take turns, as real clients would

    clients = [
        await connect(f"{url}&name=c{i}", compression=None, open_timeout=30)  # after ?wslab_token=
        for i in range(CLIENTS)
    ]
    try:
        readers = [asyncio.create_task(reader(i, ws)) for i, ws in enumerate(clients)]
        writers = [asyncio.create_task(writer(i, ws)) for i, ws in enumerate(clients)]
        began = time.perf_counter()
        start.set()
        async with asyncio.timeout(90):
            await asyncio.gather(*writers, *readers)
        elapsed = time.perf_counter() - began
    finally:
        await asyncio.gather(*(ws.close() for ws in clients), return_exceptions=True)
    return received, latencies, elapsed


def main(url: str, out: str) -> None:
    """Run as a script: play the clients, write the results as JSON to ``out``."""
    received, latencies, elapsed = asyncio.run(run_load(url))
    data = {"received": received, "latencies": latencies, "elapsed": elapsed}
    Path(out).write_text(json.dumps(data))


def test_chat_under_load_delivers_everything_in_order(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    server = wslab.serve("chat", port=0, max_clients=CLIENTS + 10)
    out = tmp_path / "load.json"
    try:
        subprocess.run([sys.executable, __file__, server.url, str(out)], check=True, timeout=100)
    finally:
        server.stop()
    data = json.loads(out.read_text())
    received = {
        int(receiver): {int(sender): seqs for sender, seqs in by_sender.items()}
        for receiver, by_sender in data["received"].items()
    }
    latencies, elapsed = data["latencies"], data["elapsed"]

    in_order = list(range(MESSAGES))
    for receiver, by_sender in received.items():
        assert sorted(by_sender) == list(range(CLIENTS)), f"client {receiver} missed senders"
        for sender, seqs in by_sender.items():
            assert seqs == in_order, f"client {receiver} got {sender}'s messages as {seqs[:10]}…"

    deliveries = len(latencies)
    assert deliveries == CLIENTS * CLIENTS * MESSAGES
    cuts = statistics.quantiles(latencies, n=100)
    with capsys.disabled():
        print(
            f"\nchat load: {CLIENTS} clients x {MESSAGES} messages, {deliveries} deliveries "
            f"in {elapsed:.2f} s ({deliveries / elapsed:,.0f}/s); delivery latency "
            f"p50 {cuts[49] * 1000:.1f} ms, p99 {cuts[98] * 1000:.1f} ms "
            "(every client sends as fast as it can, so this is mostly queueing; "
            "the machine is shared)"
        )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
