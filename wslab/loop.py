"""One background event loop per kernel, on its own daemon thread.

The in-kernel server, the sync client, the wire tap and the widgets run their
asyncio code here, not on the kernel's own loop. That is what lets a server
keep answering while a cell blocks (for example in a synchronous client call
to that same server), and it leaves the kernel's loop untouched: nothing is
patched.

One loop serves everything, so one handler that blocks it (``time.sleep``, a
loop without ``await``) freezes every server and client of the kernel. A
watchdog thread notices: :func:`blocked` says since when and which task, and
:func:`run_sync` raises :class:`~wslab.errors.LoopBlockedError` with that
instead of waiting in silence.

Clean-up: :func:`stop_all` stops every server, tap and whatever else was
registered with :func:`on_stop`; it also runs when the interpreter exits
(the kernel shuts down or restarts).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

from .errors import LoopBlockedError

__all__ = [
    "Blocked",
    "blocked",
    "get_loop",
    "in_loop_thread",
    "on_stop",
    "run_sync",
    "stop_all",
    "submit",
    "wait",
]

T = TypeVar("T")

#: Seconds between the watchdog's heartbeats.
HEARTBEAT = 0.25
#: The loop counts as blocked when a heartbeat is this many seconds late.
BLOCKED_AFTER = 1.0
#: A caller waiting on a blocked loop gives up after this many blocked seconds.
PATIENCE = 2.0

_LOGGER = logging.getLogger("wslab.loop")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None
# When the loop last ran a heartbeat callback (time.monotonic()).
_last_beat = 0.0
_stop_callbacks: list[Callable[[], object]] = []
# The task seen running at every look since the heartbeat is late, and since when.
_suspect: tuple[asyncio.Task[Any], float] | None = None


def get_loop() -> asyncio.AbstractEventLoop:
    """Return the background loop, starting its thread (and watchdog) on first use."""
    global _loop, _thread, _last_beat
    with _lock:
        if _loop is None or _loop.is_closed() or _thread is None or not _thread.is_alive():
            _loop = asyncio.new_event_loop()
            _last_beat = time.monotonic()
            _thread = threading.Thread(target=_loop.run_forever, name="wslab-loop", daemon=True)
            _thread.start()
            watchdog = threading.Thread(
                target=_watch, args=(_loop,), name="wslab-watchdog", daemon=True
            )
            watchdog.start()
        return _loop


def in_loop_thread() -> bool:
    """Whether the caller runs on the background loop's thread."""
    return _thread is not None and threading.current_thread() is _thread


def submit(coro: Coroutine[Any, Any, T]) -> Future[T]:
    """Schedule ``coro`` on the background loop; return a concurrent Future."""
    return asyncio.run_coroutine_threadsafe(coro, get_loop())


def run_sync(coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
    """Run ``coro`` on the background loop and wait for its result.

    Raises:
        RuntimeError: If called from the loop's own thread (it would deadlock).
        LoopBlockedError: The loop is blocked (see :func:`blocked`); the
            message names the task that blocks it and the fix.
        TimeoutError: If ``timeout`` seconds pass first; the coroutine is cancelled.
    """
    if in_loop_thread():
        coro.close()
        raise RuntimeError("run_sync() called from the wslab loop thread would deadlock")
    get_loop()
    now = blocked()
    if now is not None and now.seconds >= PATIENCE:
        coro.close()
        raise now.error()
    return wait(submit(coro), timeout)


def wait(future: Future[T], timeout: float | None = None) -> T:
    """Wait for a future of the background loop; give up early if the loop is blocked.

    Raises:
        LoopBlockedError: The loop stayed blocked for :data:`PATIENCE` seconds.
        TimeoutError: ``timeout`` seconds passed; the future is cancelled.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        step = HEARTBEAT if deadline is None else min(HEARTBEAT, deadline - time.monotonic())
        try:
            return future.result(max(step, 0.0))
        except TimeoutError:
            pass
        now = blocked()
        if now is not None and now.seconds >= PATIENCE:
            future.cancel()
            raise now.error() from None
        if deadline is not None and time.monotonic() >= deadline:
            future.cancel()
            raise TimeoutError(f"no result within {timeout:g} s") from None


@dataclass(frozen=True)
class Blocked:
    """The background loop is blocked: since how long, and by what.

    Attributes:
        seconds: How long the loop has not run anything.
        culprit: The running task's name: wslab names a handler's task after
            the handler, the server and the client (see :mod:`wslab.server`).
    """

    seconds: float
    culprit: str

    def error(self) -> LoopBlockedError:
        """The exception that explains it, with the fix."""
        return LoopBlockedError(
            f"the wslab loop has been blocked for {self.seconds:.0f} s by {self.culprit}, so "
            "no wslab server, tap or client of this kernel can answer: an async handler must "
            "not block (time.sleep, a loop without await); use `await asyncio.sleep(...)`, or "
            "`await asyncio.to_thread(blocking_function)`; if it never returns, restart the kernel"
        )


def blocked() -> Blocked | None:
    """Say whether the background loop is blocked, or None if it runs normally.

    Blocked means: no heartbeat for :data:`BLOCKED_AFTER` seconds, and the
    same task was running at every look during that time. A loop that is
    merely busy (a chat fanning out thousands of messages) runs many tasks
    between two looks, so it does not count.
    """
    loop, suspect = _loop, _suspect
    late = time.monotonic() - _last_beat
    if loop is None or loop.is_closed() or not loop.is_running() or late < BLOCKED_AFTER:
        return None
    if suspect is None or time.monotonic() - suspect[1] < BLOCKED_AFTER:
        return None
    return Blocked(late, _culprit(suspect[0]))


def _culprit(task: asyncio.Task[Any]) -> str:
    """Name a task: wslab names a handler's task after the handler and the client."""
    name = task.get_name()
    if name.startswith("wslab "):
        return name[len("wslab ") :]
    coro = task.get_coro()
    return f"the task {name} ({getattr(coro, '__qualname__', coro)})"


def _watch(loop: asyncio.AbstractEventLoop) -> None:
    """Post a heartbeat to ``loop`` every HEARTBEAT seconds, and watch a late one."""
    global _suspect
    while not loop.is_closed():
        with contextlib.suppress(RuntimeError):  # closed meanwhile
            loop.call_soon_threadsafe(_beat)
        time.sleep(HEARTBEAT)
        if time.monotonic() - _last_beat < BLOCKED_AFTER / 2:
            _suspect = None
            continue
        # Late: which task runs now? (current_task reads a dict: safe from here.)
        try:
            task = asyncio.current_task(loop)
        except RuntimeError:
            task = None
        if task is None:
            _suspect = None
        elif _suspect is None or _suspect[0] is not task:
            _suspect = (task, time.monotonic())


def _beat() -> None:
    global _last_beat
    _last_beat = time.monotonic()


def on_stop(callback: Callable[[], object]) -> Callable[[], None]:
    """Run ``callback`` in :func:`stop_all` and when the interpreter exits.

    Use it for anything a lesson starts that must not outlive the kernel: a
    process, a proxy. The callback stays registered (it may run more than
    once, so make it safe to repeat); call the returned function to remove it.
    """
    if not callable(callback):
        raise TypeError(f"on_stop() takes a function with no arguments, got {callback!r}")
    with _lock:
        _stop_callbacks.append(callback)

    def remove() -> None:
        with _lock:
            if callback in _stop_callbacks:
                _stop_callbacks.remove(callback)

    return remove


def stop_all() -> None:
    """Stop every server and tap of this kernel, and run the :func:`on_stop` callbacks.

    Newest first, so that something registered later (a tap) stops before
    what it depends on (its server). An error in one callback is logged and
    the others still run.
    """
    with _lock:
        callbacks = list(reversed(_stop_callbacks))
    for callback in callbacks:
        try:
            callback()
        except Exception:
            _LOGGER.exception("wslab.stop_all: %r failed", callback)


def _shutdown() -> None:
    """At interpreter exit: stop everything, then the loop, so sockets close cleanly."""
    stop_all()
    loop = _loop
    if loop is not None and not loop.is_closed() and loop.is_running():
        loop.call_soon_threadsafe(loop.stop)
        if _thread is not None:
            _thread.join(timeout=2)


atexit.register(_shutdown)
