"""One background event loop per kernel, on its own daemon thread.

The in-kernel server, the sync client, the wire tap and the widgets run their
asyncio code here, not on the kernel's own loop. That is what lets a server
keep answering while a cell blocks (for example in a synchronous client call
to that same server), and it leaves the kernel's loop untouched: nothing is
patched.
"""

from __future__ import annotations

import asyncio
import atexit
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

__all__ = ["get_loop", "run_sync", "submit"]

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None


def get_loop() -> asyncio.AbstractEventLoop:
    """Return the background loop, starting its thread on first use."""
    global _loop, _thread
    with _lock:
        if _loop is None or _loop.is_closed() or _thread is None or not _thread.is_alive():
            _loop = asyncio.new_event_loop()
            _thread = threading.Thread(target=_loop.run_forever, name="wslab-loop", daemon=True)
            _thread.start()
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
        TimeoutError: If ``timeout`` seconds pass first; the coroutine is cancelled.
    """
    if in_loop_thread():
        coro.close()
        raise RuntimeError("run_sync() called from the wslab loop thread would deadlock")
    future = submit(coro)
    try:
        return future.result(timeout)
    except TimeoutError:
        future.cancel()
        raise


def _shutdown() -> None:
    """Stop the loop at interpreter exit so that sockets close cleanly."""
    loop = _loop
    if loop is not None and not loop.is_closed() and loop.is_running():
        loop.call_soon_threadsafe(loop.stop)
        if _thread is not None:
            _thread.join(timeout=2)


atexit.register(_shutdown)
