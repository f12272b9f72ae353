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
* how long each lesson notebook takes to execute, and the whole course;
* time to first lesson: ``git clone`` to JupyterLab answering (``make lab``),
  and ``make test``'s set-up, in a fresh clone.

The code: ``harness.py`` (results, processes, kernels through the tests'
driver ``tests/_kernel.py``, CPU placement, the implementations compared),
``sections.py`` (one function per section), ``report.py`` (the table and the
JSON file), and this command line.

The targets (issues #6 and #14) are reported as pass or miss. Timings on a shared
machine are noisy: the rounds interleave the servers so that a burst of load
elsewhere hits them all alike, and p99 is more sensitive to it than p50.

Every process and kernel the runner starts is stopped when it ends, also on
Ctrl-C, SIGTERM or an error.
"""

from __future__ import annotations

import argparse
import gc
import signal
import sys
import time
import traceback
from collections.abc import Callable

import harness
import report
import sections
from harness import Results, check_interrupted, node_available, on_signal, raise_fd_limit

SECTIONS = ("echo", "fanout", "connections", "codec", "course", "setup")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations (a smoke run)")
    parser.add_argument(
        "--only", default=",".join(SECTIONS), help=f"comma-separated sections of {SECTIONS}"
    )
    parser.add_argument("--no-node", action="store_true", help="skip Node's ws")
    parser.add_argument(
        "--no-pin", action="store_true", help="let the scheduler place client and servers"
    )
    args = parser.parse_args(argv)
    harness.PIN = not args.no_pin
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(chosen) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s) {sorted(unknown)}: choose from {', '.join(SECTIONS)}")

    # Ctrl-C and SIGTERM unwind through every ExitStack, so nothing is left running.
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    raise_fd_limit()
    info = report.machine()
    use_node = not args.no_node and node_available()
    results = Results()
    steps: dict[str, Callable[[], None]] = {
        "echo": lambda: sections.bench_echo(results, args.quick, use_node),
        "fanout": lambda: sections.bench_fanout(results, args.quick, use_node),
        "connections": lambda: sections.bench_connections(results, args.quick),
        "codec": lambda: sections.bench_codec(results, args.quick),
        "course": lambda: sections.bench_course(results, args.quick),
        "setup": lambda: sections.bench_setup(results, args.quick),
    }
    for name in chosen:
        check_interrupted()
        print(f"[{name}]", flush=True)
        gc.collect()
        started = time.monotonic()
        try:
            steps[name]()
        except Exception as exc:
            check_interrupted()
            results.errors.append(f"{name}: {type(exc).__name__}: {exc}")
            traceback.print_exc()
        check_interrupted()
        results.notes.append(f"{name} took {time.monotonic() - started:.0f} s")
    command = "make bench" + (" (--quick)" if args.quick else "")
    table = report.markdown(results, info, command)
    print()
    print(table)
    print(f"\nSaved {report.save(results, info, table, args.quick)}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted: every server and kernel was stopped", file=sys.stderr)
        sys.exit(130)
