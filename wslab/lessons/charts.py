"""The lessons' charts: each function draws one figure and shows it.

matplotlib is imported when a chart is drawn, not before: it takes a while
to import, and most steps draw nothing. In a notebook ``plt.show()`` puts
the figure under the cell, so a chart's cell needs no trailing ``;``.

* :func:`plot_polling` (lesson 01): latency and bytes per update;
* :func:`plot_push` (lesson 08): latency and bytes per pushed event;
* :func:`plot_backoff`, :func:`plot_attempts`, :func:`plot_slow_consumer`
  (lesson 09): full jitter, a client's reconnection attempts, backpressure;
* :func:`plot_fanout` (lesson 10): fan-out latency across processes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .polling import UPDATE

if TYPE_CHECKING:
    from ..reconnect import ReconnectingClient
    from ..scale import Fanout, SlowConsumer

__all__ = [
    "plot_attempts",
    "plot_backoff",
    "plot_fanout",
    "plot_polling",
    "plot_push",
    "plot_slow_consumer",
]


def plot_polling(results: dict[str, dict[str, Any]]) -> None:
    """Lesson 01's chart: latency per update, and bytes per update both ways."""
    import matplotlib.pyplot as plt

    names = list(results)
    labels = ["new conn.\nper request", "keep-alive\npolling", "WebSocket"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
    left.boxplot([[t * 1e6 for t in results[n]["times"]] for n in names], showfliers=False)
    left.set_xticks(range(1, 4), labels)
    left.set_ylabel("round-trip time (µs), loopback")
    left.set_title(f"Latency of {len(results[names[0]]['times'])} updates")
    up = [results[n]["to server"] for n in names]
    right.bar(range(3), up, label="client → server")
    right.bar(
        range(3), [results[n]["to client"] for n in names], bottom=up, label="server → client"
    )
    right.set_xticks(range(3), labels)
    right.set_ylabel("bytes on the wire per update")
    right.set_title(f"Bytes per update ({len(UPDATE)}-byte payload)")
    right.legend()
    fig.tight_layout()
    plt.show()


def plot_push(results: dict[str, dict[str, Any]]) -> None:
    """Lesson 08's chart: publish-to-arrival latency, and bytes received per event."""
    import matplotlib.pyplot as plt

    names = list(results)
    n = len(results[names[0]]["latencies"])
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
    left.boxplot([[t * 1e6 for t in results[k]["latencies"]] for k in names], showfliers=False)
    left.set_xticks(range(1, len(names) + 1), names)
    left.set_ylabel("publish → received (µs), loopback")
    left.set_title(f"Latency of {n} pushed events")
    right.bar(names, [results[k]["bytes"] / n for k in names], color=["#c66", "#6a6", "#36c"])
    right.set_ylabel("bytes received per event")
    right.set_title("Overhead, server → client")
    fig.tight_layout()
    plt.show()


def plot_backoff(base: float = 0.5, cap: float = 5.0, clients: int = 200, tries: int = 8) -> None:
    """Lesson 09's chart: each client's delay before its n-th retry (dots) under the bound."""
    import matplotlib.pyplot as plt

    from ..reconnect import backoff_schedule

    failures = range(1, tries + 1)
    _, ax = plt.subplots(figsize=(7, 3))
    xs = [n for _ in range(clients) for n in failures]  # one scatter: one artist, fast
    ys = [
        d
        for seed in range(clients)
        for d in backoff_schedule(tries, base=base, cap=cap, seed=seed)
    ]
    ax.scatter(xs, ys, s=5, alpha=0.15, color="tab:blue")
    ax.plot(failures, [min(cap, base * 2 ** (n - 1)) for n in failures], "k-", label="bound")
    ax.set(xlabel="failures so far", ylabel="delay before next try (s)", title="full jitter")
    ax.legend()
    plt.show()


def plot_attempts(client: ReconnectingClient) -> None:
    """Lesson 09's chart: a client's attempts, red refused, green connected (a bar while open)."""
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=(7, 2.5))
    for attempt in client.attempts:
        colour = "tab:green" if attempt.outcome == "open" else "tab:red"
        ax.scatter(attempt.at, attempt.number, color=colour, zorder=3)
        if attempt.outcome == "open":
            end = attempt.closed_at if attempt.closed_at is not None else attempt.at + 0.3
            ax.plot([attempt.at, end], [attempt.number] * 2, color=colour, lw=4)
    ax.set(
        xlabel="seconds since the client started",
        ylabel="attempt",
        title="reconnecting: red refused, green connected (bar: connection open)",
    )
    plt.show()


def plot_slow_consumer(fair: SlowConsumer, naive: SlowConsumer, limit: int) -> None:
    """Lesson 09's chart: the slow member's queue under its limit, what the fast client got."""
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 5), sharex=True)
    top.plot([t for t, _ in fair.queue], [b / 2**20 for _, b in fair.queue], label="queue")
    top.axhline(limit / 2**20, color="tab:red", ls="--", label="max_pending: then 1008")
    top.set(ylabel="MiB waiting", title="the slow member's queue, in a chat with queues")
    top.legend()
    for run, label in ((fair, "per-member queues"), (naive, "sequential broadcast")):
        times = [t for t, _ in run.latency]
        bottom.step(times, range(1, len(times) + 1), where="post", label=label)
    bottom.axhline(fair.sent, color="grey", ls=":", label="sent")
    bottom.set(xlabel="seconds", ylabel="messages", title="what the fast client received")
    bottom.legend()
    fig.tight_layout()
    plt.show()


def plot_fanout(runs: Mapping[str, Fanout]) -> None:
    """Lesson 10's chart: fan-out latencies of several set-ups, as box plots (no outliers)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 2.8))
    ax.boxplot(
        [[t * 1000 for t in run.latencies] for run in runs.values()],
        orientation="horizontal",
        showfliers=False,
    )
    ax.set_yticks(range(1, len(runs) + 1), list(runs))
    ax.set(xlabel="fan-out latency (ms)", title="one process vs three joined by Valkey")
    fig.tight_layout()
    plt.show()
