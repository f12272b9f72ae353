"""Run code in a real Jupyter kernel from a test.

A thin layer over ``jupyter_client`` that other test modules may import::

    from _kernel import Kernel   # pytest puts tests/ on sys.path

    with Kernel() as kernel:
        result = kernel.run("import wslab; server = wslab.serve(port=0)")
        result.raise_for_error()
        port = int(kernel.eval("server.port"))

Kernels are slow to start (about a second), so share one per test module
with a module-scoped fixture. ``shutdown()`` always stops the kernel process,
even if it hangs.
"""

from __future__ import annotations

import os
import queue
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from jupyter_client.manager import KernelManager

__all__ = ["Kernel", "Result"]

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Result:
    """What one cell produced."""

    status: str = ""
    stdout: str = ""
    stderr: str = ""
    #: ``text/plain`` of execute_result and display_data outputs, in order.
    results: list[str] = field(default_factory=list)
    #: ``(ename, evalue, traceback lines)`` when the cell raised.
    error: tuple[str, str, list[str]] | None = None
    outputs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def text(self) -> str:
        """Everything a student would see, as plain text (ANSI codes kept)."""
        parts = [self.stdout, self.stderr, *self.results]
        if self.error is not None:
            parts.append("\n".join(self.error[2]))
        return "\n".join(parts)

    def add(self, kind: str, content: dict[str, Any]) -> None:
        """Record one IOPub message of the cell: its output, as a notebook shows it."""
        if kind == "stream":
            if content["name"] == "stdout":
                self.stdout += content["text"]
            else:
                self.stderr += content["text"]
            self.outputs.append(content)
        elif kind in ("execute_result", "display_data"):
            self.results.append(content["data"].get("text/plain", ""))
            self.outputs.append(content)
        elif kind == "error":
            self.error = (content["ename"], content["evalue"], content["traceback"])
            self.outputs.append(content)

    def raise_for_error(self) -> Result:
        if self.error is not None:
            ename, evalue, traceback = self.error
            raise AssertionError(f"cell raised {ename}: {evalue}\n" + "\n".join(traceback))
        return self


class Kernel:
    """A real IPython kernel (the python3 kernelspec of this environment).

    Args:
        cwd: The kernel's working directory (the repository root by default,
            so that ``import wslab`` finds this checkout).
        startup_timeout: Seconds to wait for the kernel to answer.
    """

    def __init__(self, cwd: Path | str = ROOT, startup_timeout: float = 60) -> None:
        self.manager = KernelManager(kernel_name="python3")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(
            os.pathsep
        )
        self.manager.start_kernel(cwd=str(cwd), env=env)
        self.client = self.manager.client()
        self.client.start_channels()
        try:
            self.client.wait_for_ready(timeout=startup_timeout)
        except BaseException:
            self.shutdown()
            raise

    @property
    def pid(self) -> int | None:
        provisioner = self.manager.provisioner
        process = getattr(provisioner, "process", None)
        return getattr(process, "pid", None)

    def run(
        self, code: str, timeout: float = 30, *, interrupt_after: float | None = None
    ) -> Result:
        """Execute ``code`` as one cell and collect its outputs.

        Args:
            code: The cell's source.
            timeout: Seconds the whole cell may take.
            interrupt_after: Press the Stop button (interrupt the kernel) after
                this many seconds, then collect what the cell shows.

        Raises:
            TimeoutError: If the cell does not finish within ``timeout`` s
                (the kernel is interrupted first, so the next cell can run).
        """
        msg_id = self.client.execute(code, store_history=True)
        result = Result()
        started = time.monotonic()
        deadline = started + timeout
        interrupt_at = None if interrupt_after is None else started + interrupt_after
        while True:
            now = time.monotonic()
            if interrupt_at is not None and now >= interrupt_at:
                self.manager.interrupt_kernel()
                interrupt_at = None
            wait = min(deadline, interrupt_at or deadline) - now
            try:
                msg = self.client.get_iopub_msg(timeout=max(wait, 0.01))
            except queue.Empty:
                if interrupt_at is not None or time.monotonic() < deadline:
                    continue
                self.manager.interrupt_kernel()
                raise TimeoutError(f"cell did not finish within {timeout} s:\n{code}") from None
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "status" and content["execution_state"] == "idle":
                break
            result.add(kind, content)
        # The reply to this cell (skipping replies to cells that timed out earlier).
        while True:
            reply = self.client.get_shell_msg(timeout=max(deadline - time.monotonic(), 1))
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        result.status = reply["content"]["status"]
        return result

    def eval(self, expression: str, timeout: float = 30) -> str:
        """Return the ``repr`` of an expression evaluated in the kernel."""
        result = self.run(f"print(repr({expression}))", timeout).raise_for_error()
        return result.stdout.strip()

    def shutdown(self) -> None:
        """Stop the kernel as Jupyter does (shutdown request), killing it if needed."""
        try:
            self.client.stop_channels()
        finally:
            if self.manager.has_kernel:
                self.manager.shutdown_kernel(now=False)

    def __enter__(self) -> Kernel:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown()
