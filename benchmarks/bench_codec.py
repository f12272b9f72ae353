"""Micro-benchmark of wslab's frame codec next to the websockets library's.

Run it from the project root::

    .venv/bin/python benchmarks/bench_codec.py [--json results.json] [--quick]

It measures, in one run and on the same masked frames (a client's frames,
RFC 6455 section 5.3), the throughput of:

* wslab: ``encode(frame, new_mask_key())`` and ``FrameDecoder(Side.SERVER).feed``;
* websockets: ``Frame.serialize(mask=True)`` and ``Frame.parse`` driven by its
  ``StreamReader``, once with its C ``speedups`` module for masking (what it
  uses when installed) and once forced onto its pure-Python ``apply_mask``;

and the time to mask 1 MiB. Every number is the median of several repeats,
and the implementations take turns within each repeat so that load from other
processes hits them alike. On a shared machine the numbers are still noisy:
compare ratios, not absolutes, and prefer the default run to ``--quick``.

Targets: wslab's codec at least 0.5x websockets' pure-Python path, and
masking 1 MiB in under 5 ms.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import websockets
import websockets.frames as ws_frames
import websockets.utils as ws_utils
from websockets.streams import StreamReader

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from wslab.frames import Frame, FrameDecoder, Opcode, Side, encode, new_mask_key

# The masking encode() and the decoder use (frames.apply_mask is the RFC's formula, one
# octet at a time, for reading; wslab.utils has the fast path).
from wslab.utils import apply_mask

MB = 10**6  # throughput is in MB/s of payload
SIZES = {"125 B": 125, "64 KiB": 64 * 1024, "1 MiB": 1024 * 1024}
CODEC_TARGET = 0.5  # wslab / websockets (pure Python), at least
MASK_TARGET_MS = 5.0  # masking 1 MiB, at most

c_apply_mask: Callable[[bytes, bytes], bytes] | None
try:
    from websockets.speedups import apply_mask as c_apply_mask
except ImportError:  # websockets built without its C extension
    c_apply_mask = None


def compare(
    entries: dict[str, tuple[Callable[[], object], str | None]], repeat: int, budget: float
) -> dict[str, float]:
    """Median seconds per call of each entry, measured in turns.

    Each entry is a function and the websockets masking it runs with (see
    :func:`websockets_masking`). Taking turns within every repeat means that a
    burst of load from other processes hits all entries alike, which keeps
    the ratios meaningful on a shared machine.
    """
    numbers = {name: calibrate(func, masking, budget) for name, (func, masking) in entries.items()}
    times: dict[str, list[float]] = {name: [] for name in entries}
    for _ in range(repeat):
        for name, (func, masking) in entries.items():
            times[name].append(batch(func, masking, numbers[name]) / numbers[name])
    return {name: statistics.median(values) for name, values in times.items()}


def calibrate(func: Callable[[], object], masking: str | None, budget: float) -> int:
    """How many calls take about ``budget`` seconds, so timer resolution does not matter."""
    number = 1
    while (elapsed := batch(func, masking, number)) < budget / 4:
        number *= 4
    return max(1, round(number * budget / elapsed))


def batch(func: Callable[[], object], masking: str | None, number: int) -> float:
    """Seconds taken by ``number`` calls of ``func``."""
    with websockets_masking(masking):
        start = time.perf_counter()
        for _ in range(number):
            func()
        return time.perf_counter() - start


@contextmanager
def websockets_masking(implementation: str | None) -> Iterator[None]:
    """Make websockets' frame code use its C (``"c"``) or pure-Python ``apply_mask``."""
    # websockets.frames imports apply_mask without re-exporting it: patch it by name.
    saved = vars(ws_frames)["apply_mask"]
    if implementation == "python":
        vars(ws_frames)["apply_mask"] = ws_utils.apply_mask
    elif implementation == "c" and c_apply_mask is not None:
        vars(ws_frames)["apply_mask"] = c_apply_mask
    try:
        yield
    finally:
        vars(ws_frames)["apply_mask"] = saved


def websockets_parse(data: bytes) -> ws_frames.Frame:
    """Parse one masked frame the way websockets' server does."""
    reader = StreamReader()
    reader.feed_data(data)
    parser = ws_frames.Frame.parse(reader.read_exact, mask=True, max_size=None, extensions=[])
    try:
        next(parser)
    except StopIteration as done:
        frame: ws_frames.Frame = done.value
        return frame
    raise AssertionError("incomplete frame")


def codec_functions(payload: bytes) -> dict[str, dict[str, Callable[[], object]]]:
    """The encode and decode calls to time, for each implementation."""
    frame = Frame(Opcode.BINARY, payload)
    data = encode(frame, new_mask_key())
    decoder = FrameDecoder(Side.SERVER, max_size=None)
    ws_frame = ws_frames.Frame(ws_frames.Opcode.BINARY, payload)

    # Check that all of them do the same work before timing them.
    assert decoder.feed(data) == [frame]
    assert websockets_parse(data).data == payload
    assert FrameDecoder(Side.SERVER, max_size=None).feed(ws_frame.serialize(mask=True)) == [frame]

    return {
        "wslab": {
            "encode": lambda: encode(frame, new_mask_key()),
            "decode": lambda: decoder.feed(data),
        },
        "websockets": {
            "encode": lambda: ws_frame.serialize(mask=True, extensions=[]),
            "decode": lambda: websockets_parse(data),
        },
    }


def run(repeat: int, budget: float) -> dict[str, Any]:
    results: dict[str, Any] = {
        "python": platform.python_version(),
        "websockets": websockets.version.version,
        "websockets_speedups": c_apply_mask is not None,
        # Which apply_mask websockets' frame code picked at import time.
        "websockets_default_masking": (
            "C speedups" if vars(ws_frames)["apply_mask"] is c_apply_mask else "pure Python"
        ),
        "cpus": os.cpu_count(),
        "repeat": repeat,
        "codec": [],
        "mask_1mib_ms": {},
    }
    for label, size in SIZES.items():
        functions = codec_functions(os.urandom(size))
        for operation in ("encode", "decode"):
            entries: dict[str, tuple[Callable[[], object], str | None]] = {
                "wslab": (functions["wslab"][operation], None),
                "websockets_python": (functions["websockets"][operation], "python"),
            }
            if c_apply_mask is not None:
                entries["websockets_c"] = (functions["websockets"][operation], "c")
            seconds = compare(entries, repeat, budget)
            row: dict[str, Any] = {"operation": operation, "size": label, "bytes": size}
            row.update({name: size / s / MB for name, s in seconds.items()})
            results["codec"].append(row)
            print(f"  {operation} {label}: done", file=sys.stderr)

    data, key = os.urandom(2**20), new_mask_key()
    maskers: dict[str, Callable[[bytes, bytes], bytes]] = {
        "wslab": apply_mask,
        "websockets_python": ws_utils.apply_mask,
    }
    if c_apply_mask is not None:
        maskers["websockets_c"] = c_apply_mask
    for masker in maskers.values():
        assert masker(data, key) == apply_mask(data, key)
    seconds = compare(
        {name: (functools.partial(m, data, key), None) for name, m in maskers.items()},
        repeat,
        budget,
    )
    results["mask_1mib_ms"] = {name: s * 1000 for name, s in seconds.items()}
    return results


def mark(ok: bool) -> str:
    return "pass" if ok else "MISS"


def report(results: dict[str, Any]) -> str:
    """The results as a markdown table (MB/s are 10**6 bytes of payload per second)."""
    has_c = results["websockets_speedups"]
    lines = [
        f"Python {results['python']}, websockets {results['websockets']} "
        f"(C speedups {'available' if has_c else 'not installed'}; by default its frame code "
        f"masks with {results['websockets_default_masking']}), {results['cpus']} CPUs, "
        f"median of {results['repeat']} repeats. Masked (client) frames; MB/s of payload.",
        "",
        "| operation | frame | wslab MB/s | websockets pure-Python MB/s | ratio | "
        + ("websockets C MB/s | ratio | " if has_c else "")
        + f"target >= {CODEC_TARGET}x pure-Python |",
        "|---|---|--:|--:|--:|" + ("--:|--:|" if has_c else "") + ":-:|",
    ]
    for row in results["codec"]:
        ratio = row["wslab"] / row["websockets_python"]
        row["ratio_python"] = ratio
        cells = [
            row["operation"],
            row["size"],
            f"{row['wslab']:,.0f}",
            f"{row['websockets_python']:,.0f}",
            f"{ratio:.2f}x",
        ]
        if has_c:
            row["ratio_c"] = row["wslab"] / row["websockets_c"]
            cells += [f"{row['websockets_c']:,.0f}", f"{row['ratio_c']:.2f}x"]
        cells.append(mark(ratio >= CODEC_TARGET))
        lines.append("| " + " | ".join(cells) + " |")
    mask = results["mask_1mib_ms"]
    lines += [
        "",
        "| mask 1 MiB | wslab | websockets pure-Python | "
        + ("websockets C | " if has_c else "")
        + f"target < {MASK_TARGET_MS:g} ms |",
        "|---|--:|--:|" + ("--:|" if has_c else "") + ":-:|",
        f"| median time | {mask['wslab']:.2f} ms | {mask['websockets_python']:.2f} ms | "
        + (f"{mask['websockets_c']:.3f} ms | " if has_c else "")
        + f"{mark(mask['wslab'] < MASK_TARGET_MS)} |",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, metavar="PATH", help="also save the results here")
    parser.add_argument("--repeat", type=int, default=7, help="repeats per measurement")
    parser.add_argument(
        "--quick", action="store_true", help="shorter runs (3 repeats of ~20 ms), for a smoke test"
    )
    args = parser.parse_args(argv)
    repeat, budget = (3, 0.02) if args.quick else (args.repeat, 0.1)
    results = run(repeat, budget)
    print(report(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"\nSaved to {args.json}")
    codec_ok = all(row["ratio_python"] >= CODEC_TARGET for row in results["codec"])
    mask_ok = results["mask_1mib_ms"]["wslab"] < MASK_TARGET_MS
    return 0 if codec_ok and mask_ok else 1


if __name__ == "__main__":
    sys.exit(main())
