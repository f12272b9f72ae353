"""IPython integration: ``asyncio.run()`` in a cell, short errors, cell tracking.

``asyncio.run()`` in a notebook cell is handled in layers.

Script-style examples end with ``asyncio.run(main())``. In a Jupyter cell
that fails with ``RuntimeError: asyncio.run() cannot be called from a running
event loop``, because the kernel itself runs on an event loop. wslab deals
with it in layers:

1. The lessons teach top-level ``await main()``, which cells support.
2. Importing wslab never patches asyncio: Jupyter's maintainers warn that a
   global patch can hang kernels, so that must be the student's choice.
3. :func:`enable_asyncio_run` is that choice, one explicit call that makes
   the kernel's loop re-entrant so ``asyncio.run()`` works.
4. When the error does happen, :func:`install_asyncio_hint` (called when
   wslab is imported inside IPython) adds a short hint naming both fixes
   below the normal traceback. It is a display hook
   (``InteractiveShell.set_custom_exc``), not a patch.

The same hook shows the errors a student causes by a setting, not by a bug
(:class:`~wslab.errors.ServerStartError`, :class:`~wslab.errors.LoopBlockedError`,
:class:`~wslab.errors.ConnectError`)
as their one-line message, without a traceback through wslab's internals.

Cell tracking: two event callbacks (``pre_run_cell``, ``post_run_cell``) note
which cell is running (:func:`current_cell`). Re-running a cell replaces what
its earlier run started, as reloading a page closes its WebSockets: servers,
clients, the lessons' servers and child processes all register how to stop
with :func:`replace_on_rerun`. The cell, not the port, tells them apart:
lessons use ``port=0``, a new port on every run.

Time limits: :func:`time_limit` stops a student's code that runs too long (an
endless loop) in the cell's own thread, for the practice steps and the
graded checks alike.
"""

from __future__ import annotations

import itertools
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any, NoReturn

from .errors import ConnectError, ServerStartError, WSLabError

__all__ = [
    "ASYNCIO_RUN_HINT",
    "current_cell",
    "enable_asyncio_run",
    "install_asyncio_hint",
    "install_ipython_hooks",
    "replace_on_rerun",
    "time_limit",
]

ASYNCIO_RUN_HINT = (
    "wslab hint: a notebook cell already runs inside an event loop, so asyncio.run() "
    "cannot start another one. Either write `await main()` instead of "
    "`asyncio.run(main())` (top-level await works in cells), or run "
    "`wslab.enable_asyncio_run()` once to allow asyncio.run() in this kernel."
)

# asyncio.run(main()) and loop.run_until_complete(main()) fail with these.
_MESSAGES = ("cannot be called from a running event loop", "This event loop is already running")
_enabled = False


def enable_asyncio_run() -> None:
    """Let ``asyncio.run()`` work in this kernel's cells (opt-in, once per kernel).

    This applies the nested-event-loop patch of ``nest_asyncio2``: the
    maintained fork of the archived ``nest_asyncio``, with the same API, and
    already a dependency of ipykernel 7. It patches asyncio for this whole
    process, which is why wslab never does it on import. Prefer top-level
    ``await`` when you can.
    """
    global _enabled
    if _enabled:
        return
    import nest_asyncio2

    nest_asyncio2.apply()
    _enabled = True


def _is_brief(value: BaseException) -> bool:
    """Whether an error's message says it all (a bad port, a refused URL, a blocked loop)."""
    return isinstance(value, ServerStartError | ConnectError)


def _hint_handler(
    shell: Any, etype: type[BaseException], value: BaseException, tb: Any, tb_offset: Any = None
) -> Any:
    """IPython custom-exception hook: the normal traceback, then our hint."""
    if _is_brief(value):
        # "ServerStartError: port 8080 is already in use by another program; ..."
        return shell.showtraceback((etype, value, tb), exception_only=True)
    structured = shell.showtraceback((etype, value, tb), tb_offset=tb_offset)
    if any(message in str(value) for message in _MESSAGES):
        print(ASYNCIO_RUN_HINT, file=sys.stderr)
    return structured


# The exceptions our hook sees; all others keep IPython's own display.
_HOOKED = (RuntimeError, WSLabError)
# The shell our hook is installed on (IPython wraps the handler, so we cannot
# recognise it by identity later).
_hint_shell: Any = None


def _shell() -> Any:
    """The running IPython shell, or None (without importing IPython)."""
    ipython_module = sys.modules.get("IPython")
    if ipython_module is None:
        return None  # not inside IPython: importing it just to look would be slow
    get_ipython = getattr(ipython_module, "get_ipython", None)
    return get_ipython() if get_ipython is not None else None


def install_asyncio_hint() -> bool:
    """Show :data:`ASYNCIO_RUN_HINT` after the ``asyncio.run()`` RuntimeError in IPython.

    Does nothing outside IPython, or when another custom exception hook is
    already installed (IPython keeps only one). Returns whether the hint is on.
    """
    shell = _shell()
    if shell is None or not hasattr(shell, "set_custom_exc"):
        return False
    global _hint_shell
    installed = getattr(shell, "custom_exceptions", ())
    if _hint_shell is shell and installed == _HOOKED:
        return True
    if installed:
        return False  # someone else's hook: leave it alone
    shell.set_custom_exc(_HOOKED, _hint_handler)
    _hint_shell = shell
    return True


# (which cell, which run) while a cell executes, else None. A cell is its id
# when the front end sends one (JupyterLab, Notebook 7), else its source.
_cell: tuple[object, int] | None = None
_runs = itertools.count(1)
_tracked_shell: Any = None


def current_cell() -> tuple[object, int] | None:
    """Return ``(cell, run)`` for the cell executing now, or None.

    None outside IPython, between cells (widget callbacks) and on other
    threads. ``run`` grows with every cell execution, so two runs of one
    cell differ.
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    return _cell


# What each cell's latest run started, as the functions that stop it.
_started: dict[object, tuple[int, list[Callable[[], object]]]] = {}
_started_lock = threading.Lock()


def replace_on_rerun(stop: Callable[[], object]) -> Callable[[], None]:
    """Call ``stop`` when the cell running now runs again.

    First it calls the ``stop`` functions that an earlier run of this cell
    registered, so a re-run cell never leaves a second server, client or
    process behind. Outside a cell (a script, a widget callback, another
    thread) it does nothing.

    Returns:
        A function that forgets ``stop``: call it once the thing has stopped
        some other way, so that a cell that starts and stops many things
        does not keep them all.
    """
    cell = current_cell()
    if cell is None:
        return _nothing
    key, run = cell
    with _started_lock:
        earlier_run, stops = _started.get(key, (run, []))
        stale = [] if earlier_run == run else stops
        kept = stops if earlier_run == run else []
        _started[key] = (run, [*kept, stop])
    for each in stale:  # outside the lock: a stop may forget itself
        try:
            each()
        except Exception as error:  # one that fails must not keep the others running
            print(
                f"wslab: stopping what this cell started before failed: {error}", file=sys.stderr
            )

    def forget() -> None:
        with _started_lock:
            this_run, stops = _started.get(key, (run, []))
            if this_run == run and stop in stops:
                stops.remove(stop)
                if not stops:
                    del _started[key]

    return forget


def _nothing() -> None:
    """Forget nothing: what was started outside a cell was never remembered."""


def _pre_run_cell(info: Any) -> None:
    global _cell
    _cell = (getattr(info, "cell_id", None) or getattr(info, "raw_cell", ""), next(_runs))


def _post_run_cell(result: Any) -> None:
    global _cell
    _cell = None


def _track_cells(shell: Any) -> None:
    """Register the cell-tracking callbacks once per shell."""
    global _tracked_shell, _cell
    events = getattr(shell, "events", None)
    if _tracked_shell is shell or events is None:
        return
    events.register("pre_run_cell", _pre_run_cell)
    events.register("post_run_cell", _post_run_cell)
    _tracked_shell = shell
    # The cell that imports wslab is already running: IPython has stored its
    # source as the latest input, so use that.
    history = getattr(getattr(shell, "history_manager", None), "input_hist_raw", None)
    if history:
        _cell = (history[-1], next(_runs))


def install_ipython_hooks() -> None:
    """What ``import wslab`` does inside IPython: the error hook and cell tracking.

    Outside IPython it does nothing. Neither hook patches anything.
    """
    shell = _shell()
    if shell is None:
        return
    install_asyncio_hint()
    _track_cells(shell)


@contextmanager
def time_limit(seconds: float, stop: Callable[[], BaseException]) -> Iterator[None]:
    """Raise ``stop()`` in the code running in this block after ``seconds`` (SIGALRM).

    Make ``stop()`` a BaseException, as KeyboardInterrupt is, so that a
    student's ``except Exception:`` cannot swallow it. Works only in the main
    thread of a POSIX process, where a kernel runs cells; elsewhere the block
    runs without a limit. An alarm already set (pytest-timeout's, or an outer
    limit) is restored afterwards, less the time spent.

    Args:
        seconds: The limit; 0 or less means none.
        stop: Makes the exception to raise when the time is up.
    """
    usable = (
        seconds > 0
        and hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
    )
    if not usable:
        yield
        return

    def expired(signum: int, frame: FrameType | None) -> NoReturn:
        raise stop()

    started = time.monotonic()
    previous = signal.signal(signal.SIGALRM, expired)
    outer, _ = signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer:
            left = outer - (time.monotonic() - started)
            signal.setitimer(signal.ITIMER_REAL, max(left, 0.001))
