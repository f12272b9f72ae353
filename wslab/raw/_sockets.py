"""Socket plumbing for :mod:`wslab.raw`, kept out of the reading path.

Nothing here knows WebSocket. These are the few things that make plain
sockets behave when a client misbehaves, so that ``server.py`` and
``client.py`` can read like the RFC:

* :class:`Outbox`: the bytes waiting to go to one socket. Writing to it never
  blocks, whichever thread writes, so no client can make another client's
  thread wait (a chat broadcast, a join, a stop).
* :class:`Flusher`: one thread per server that writes what outboxes hold as
  their sockets make room, cuts the connections that read nothing for too
  long, hold too much, or pass a deadline, and runs small timed jobs
  (keepalive pings), so that a client's own thread only reads.
* :class:`WakeUp`: a socket pair that wakes a thread waiting in ``poll()``.
* small helpers: :func:`no_delay`, :func:`shutdown`, :func:`send_before`,
  :func:`close_gracefully`, :func:`out_of_descriptors`.

One rule keeps it safe: only the thread that owns a connection closes its
socket. Other threads may only shut it down, which wakes the owner up; so a
file descriptor is never reused while another thread still writes to it.
"""

from __future__ import annotations

import errno
import heapq
import itertools
import select
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable

__all__ = [
    "CHUNK",
    "Flusher",
    "Outbox",
    "WakeUp",
    "close_gracefully",
    "no_delay",
    "out_of_descriptors",
    "send_before",
    "shutdown",
]

#: How much to read from a socket at once: 256 KiB, as asyncio reads, so that
#: a 64 KiB message and its frame header come in one ``recv()``, not two.
#: ``recv()`` keeps only what arrived: 1,000 idle clients take no more memory
#: than with 64 KiB (measured).
CHUNK = 256 * 1024

_READ = select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP
_WRITE = select.POLLOUT | select.POLLERR | select.POLLHUP


def no_delay(sock: socket.socket) -> None:
    """Send each frame at once (TCP_NODELAY), as WebSocket libraries do.

    Otherwise Nagle's algorithm may hold a small frame (a pong, a short
    message) until the previous one is acknowledged, which the peer may delay
    by up to 40 ms: slow, and confusing in a lesson about latency.
    """
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def shutdown(sock: socket.socket) -> None:
    """Wake the thread that waits on ``sock``: it reads end of file.

    Unlike ``close()``, this is safe from any thread: the file descriptor
    stays allocated until its owner closes it.
    """
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # Already shut down, or never connected.


def send_before(sock: socket.socket, data: bytes, deadline: float) -> None:
    """Like ``sock.sendall(data)``, but give up at ``deadline`` (``time.monotonic()``).

    For a connection that no other thread writes to (an HTTP answer before any
    WebSocket exists): it waits for room, but never past the deadline.

    Raises:
        TimeoutError: The peer did not read enough to make room in time.
    """
    view = memoryview(data)
    while view:
        try:
            view = view[sock.send(view, socket.MSG_DONTWAIT) :]
            continue
        except BlockingIOError:
            pass  # The peer's buffers are full: wait for room, up to the deadline.
        poller = select.poll()
        poller.register(sock, _WRITE)
        left = deadline - time.monotonic()
        if left <= 0 or not poller.poll(left * 1000):
            raise TimeoutError("the peer did not read what we sent")


def close_gracefully(sock: socket.socket, linger: float) -> None:
    """Close TCP as a server should (RFC 6455 section 7.1.1): first, then wait.

    ``shutdown(SHUT_WR)`` sends our FIN after the last bytes. Reading until the
    peer's FIN (for at most ``linger`` seconds) matters: closing a socket with
    unread bytes makes the kernel send a reset, which can destroy our close
    frame before the peer reads it.
    """
    try:
        sock.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + linger
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            if not sock.recv(CHUNK):
                break
    except OSError:
        pass  # Reset by the peer, or the deadline passed.
    finally:
        sock.close()


def out_of_descriptors(error: OSError) -> bool:
    """Whether ``accept()`` failed for lack of resources rather than because of a client.

    The listening socket stays readable then, so accepting again at once
    would spin; the caller should wait a little first.
    """
    return error.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


class WakeUp:
    """A socket pair: :meth:`wake` from any thread wakes a thread in ``poll()``.

    Register :meth:`fileno` with the poller along with the sockets it waits on.
    """

    def __init__(self) -> None:
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)

    def fileno(self) -> int:
        return self._reader.fileno()

    def wake(self) -> None:
        try:
            self._writer.send(b"\0")
        except OSError:
            pass  # Already woken (its buffer is full), or closed.

    def clear(self) -> None:
        """Consume the wake-ups, so that the next ``poll()`` waits again."""
        try:
            while self._reader.recv(4096):
                pass
        except OSError:
            pass  # Nothing left to read.

    def close(self) -> None:
        self._reader.close()
        self._writer.close()


class Outbox:
    """The bytes waiting to be written to one socket; writing never blocks.

    Any thread may :meth:`write`. What the socket does not take at once
    waits here, in order, and the :class:`Flusher` writes it as the peer reads.
    The connection is cut (shut down, see :meth:`cut`) when:

    * more than ``limit`` bytes would wait: the peer reads far less than it
      gets (one write may be bigger, if nothing else waits);
    * bytes wait and none went out for ``stall_timeout`` seconds;
    * the :attr:`deadline` set with :meth:`cut_at` passes.

    Args:
        sock: The connected socket.
        flusher: The server's flusher.
        limit: Most bytes that may wait.
        stall_timeout: Seconds without progress before the connection is cut.
        held: Keep everything written until :meth:`release`, e.g. the
            bytes that must not reach the peer before it is fully set up.
    """

    def __init__(
        self,
        sock: socket.socket,
        flusher: Flusher,
        *,
        limit: int,
        stall_timeout: float,
        held: bool = False,
    ) -> None:
        self.sock = sock
        self.limit = limit
        self.stall_timeout = stall_timeout
        #: Why the connection was cut, once it was.
        self.cut_reason: str | None = None
        #: When to cut the connection whatever happens (``time.monotonic()``).
        self.deadline: float | None = None
        self._flusher = flusher
        self._buffer = bytearray()
        self._closed = False
        self._held = held
        self._progress = time.monotonic()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)

    def __repr__(self) -> str:
        return f"<Outbox {len(self._buffer)} bytes waiting>"

    @property
    def unsent(self) -> int:
        """How many bytes wait to be written."""
        return len(self._buffer)

    @property
    def closed(self) -> bool:
        """Whether nothing more can be written: cut, or closed by its owner."""
        return self._closed

    def write(self, data: bytes) -> None:
        """Write ``data`` after what already waits, without blocking.

        Raises:
            ConnectionResetError: The connection is cut (perhaps just now,
                because ``data`` would pass the limit).
        """
        with self._lock:
            if self._closed:
                raise ConnectionResetError(f"the connection is closed: {self.cut_reason}")
            if not self._buffer and not self._held:
                sent = self._send(data)
                if sent == len(data):
                    return  # The usual case: the socket took it all.
                data = data[sent:]
                self._progress = time.monotonic()  # The wait for the peer starts.
            # One message may be as big as the application likes; a peer that
            # falls behind by more than the limit is not reading.
            if self._buffer and len(self._buffer) + len(data) > self.limit:
                self._cut(f"more than {self.limit} bytes wait for a peer that does not read")
                raise ConnectionResetError(self.cut_reason)
            self._buffer += data
            if self._held:
                return
        self._flusher.watch(self)

    def release(self) -> None:
        """Start writing what was held (see ``held``)."""
        with self._lock:
            self._held = False
            self._progress = time.monotonic()
        self.flush()
        if self._buffer:
            self._flusher.watch(self)

    def wait_until_below(self, level: int) -> bool:
        """Block until at most ``level`` bytes wait (backpressure for a reader).

        Returns:
            False if the connection was cut meanwhile.
        """
        if len(self._buffer) <= level and not self._closed:
            return True  # The usual case, without taking the lock.
        with self._changed:
            while len(self._buffer) > level and not self._closed:
                self._changed.wait()
            return not self._closed

    def cut_at(self, deadline: float) -> None:
        """Cut the connection at ``deadline`` unless it is closed before."""
        with self._lock:
            if self.deadline is None or deadline < self.deadline:
                self.deadline = deadline
        self._flusher.watch(self)

    def cut(self, reason: str) -> None:
        """Give up on the peer: drop what waits and wake the socket's owner."""
        with self._lock:
            self._cut(reason)

    def close(self) -> None:
        """Stop writing: the owner is about to close the socket."""
        with self._lock:
            self._closed = True
            self._changed.notify_all()
        self._flusher.forget(self)

    # -- for the flusher ---------------------------------------------------------

    def flush(self) -> None:
        """Write as much as the socket takes now."""
        with self._lock:
            if self._closed or self._held or not self._buffer:
                return
            try:
                sent = self._send(self._buffer)
            except ConnectionResetError:
                return  # Cut: its owner finds out.
            if sent:
                del self._buffer[:sent]
                self._progress = time.monotonic()
                self._changed.notify_all()

    def next_check(self) -> float | None:
        """When the flusher must look at this outbox again, if no bytes move."""
        times = [self.deadline] if self.deadline is not None else []
        if self._buffer and not self._held:
            times.append(self._progress + self.stall_timeout)
        return min(times, default=None)

    def check(self, now: float) -> None:
        """Cut the connection if its deadline passed or its peer stalled."""
        with self._lock:
            if self._closed:
                return
            if self.deadline is not None and now >= self.deadline:
                self._cut("its deadline passed")
            elif self._buffer and not self._held and now - self._progress >= self.stall_timeout:
                self._cut(f"the peer read nothing for {self.stall_timeout:g} s")

    # -- under the lock ------------------------------------------------------------

    def _send(self, data: bytes | bytearray) -> int:
        """One non-blocking send: how many bytes the socket took."""
        try:
            # MSG_DONTWAIT makes this one call non-blocking without changing the
            # socket, on which its owner thread may be blocked in recv().
            return self.sock.send(data, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return 0
        except OSError as error:
            self._cut(f"the connection failed: {error.strerror or error}")
            raise ConnectionResetError(self.cut_reason) from None

    def _cut(self, reason: str) -> None:
        if self._closed:
            return
        self._closed = True
        self.cut_reason = reason
        self._buffer.clear()
        self._changed.notify_all()
        shutdown(self.sock)


class Flusher:
    """One thread that writes every :class:`Outbox` as its socket makes room.

    It waits in ``poll()`` for the sockets that have bytes waiting, for the
    next deadline and for the next timed job; writes what each socket takes;
    cuts the outboxes whose peer stalled or whose deadline passed; and runs
    the jobs that are due (:meth:`call_at`). It never blocks on one peer, so a
    peer that does not read holds up nobody else.
    """

    def __init__(self, name: str = "wslab-raw-flusher") -> None:
        self._name = name
        self._watched: set[Outbox] = set()
        # Timed jobs: a heap of (when, tie-breaker, job).
        self._jobs: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._lock = threading.Lock()
        self._wakeup = WakeUp()
        self._thread: threading.Thread | None = None
        self._stopping = False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread, and cut the connections whose bytes still wait."""
        with self._lock:
            self._stopping = True
            self._jobs.clear()
        self._wakeup.wake()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self._wakeup.close()
        with self._lock:
            outboxes, self._watched = list(self._watched), set()
        for outbox in outboxes:
            outbox.cut("the server stopped")

    def watch(self, outbox: Outbox) -> None:
        """Look after ``outbox``: it has bytes waiting, or a deadline."""
        with self._lock:
            stopped = self._stopping
            if not stopped:
                self._watched.add(outbox)
        if stopped:
            outbox.cut("the server stopped")  # Nobody would ever write its bytes.
        else:
            self._wakeup.wake()

    def forget(self, outbox: Outbox) -> None:
        with self._lock:
            self._watched.discard(outbox)

    def call_at(self, when: float, job: Callable[[], None]) -> None:
        """Run ``job()`` on this thread at ``when`` (``time.monotonic()``).

        Jobs must be quick and must not block: writing to an outbox is fine.
        """
        with self._lock:
            if self._stopping:
                return
            heapq.heappush(self._jobs, (when, next(self._order), job))
        self._wakeup.wake()

    def _run(self) -> None:
        while not self._stopping:
            with self._lock:
                outboxes = list(self._watched)
                next_job = self._jobs[0][0] if self._jobs else None
            for outbox in self._wait(outboxes, next_job):
                outbox.flush()
            now = time.monotonic()
            for outbox in outboxes:
                outbox.check(now)
            self._run_jobs(now)
            with self._lock:
                for outbox in outboxes:
                    if outbox.closed or (not outbox.unsent and outbox.deadline is None):
                        self._watched.discard(outbox)

    def _wait(self, outboxes: list[Outbox], next_job: float | None) -> list[Outbox]:
        """Wait for room in a socket, a wake-up, the next deadline or job."""
        poller = select.poll()
        poller.register(self._wakeup, select.POLLIN)
        waiting: dict[int, Outbox] = {}
        for outbox in outboxes:
            fd = outbox.sock.fileno()
            if outbox.unsent and fd != -1 and not outbox.closed:
                waiting[fd] = outbox
                poller.register(fd, _WRITE)
        times = [t for t in (o.next_check() for o in outboxes) if t is not None]
        if next_job is not None:
            times.append(next_job)
        timeout = None if not times else max(min(times) - time.monotonic(), 0.0) * 1000
        ready: list[Outbox] = []
        for fd, _ in poller.poll(timeout):
            if fd == self._wakeup.fileno():
                self._wakeup.clear()
            elif fd in waiting:
                ready.append(waiting[fd])
        return ready

    def _run_jobs(self, now: float) -> None:
        while True:
            with self._lock:
                if not self._jobs or self._jobs[0][0] > now:
                    return
                _, _, job = heapq.heappop(self._jobs)
            try:
                job()
            except Exception:  # A bug in a job must not stop every connection's writes.
                traceback.print_exc(file=sys.stderr)
