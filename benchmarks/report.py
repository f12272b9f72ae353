"""The benchmarks' report: the machine, one markdown table, and a JSON file of the figures."""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import platform
import shutil
import subprocess
from dataclasses import asdict
from pathlib import Path

from harness import RESULTS, ROOT, Results


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
        *(f"{note}." for note in results.notes),
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


def save(results: Results, info: dict[str, str], table: str, quick: bool) -> Path:
    """Write the figures and the table to ``benchmarks/results/bench-<time>.json``."""
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"bench-{stamp}.json"
    payload = {
        "machine": info,
        "quick": quick,
        "rows": [asdict(r) for r in results.rows],
        "targets": [asdict(t) for t in results.targets],
        "errors": results.errors,
        "markdown": table,
    }
    out.write_text(json.dumps(payload, indent=2))
    return out.relative_to(ROOT)
