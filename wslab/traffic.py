"""Traffic records: what the server, the tap and the traffic log share.

A :class:`Record` is one thing seen on a connection: an HTTP request or
response of the handshake, a frame, a whole message, or the TCP connection
opening or closing. It is plain data, so tests and exercises can inspect it.
"""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from .frames import Frame, Header, Opcode

__all__ = ["Direction", "Kind", "Record", "Recorder"]

logger = logging.getLogger(__name__)


class Direction(enum.Enum):
    """Which way the bytes travelled."""

    TO_SERVER = "client → server"
    TO_CLIENT = "server → client"
    NONE = "-"


class Kind(enum.Enum):
    """What a record describes."""

    CONNECT = "tcp connect"
    HTTP_REQUEST = "http request"
    HTTP_RESPONSE = "http response"
    FRAME = "frame"
    MESSAGE = "message"
    TCP_CLOSE = "tcp close"
    ERROR = "error"


@dataclass(frozen=True)
class Record:
    """One event on one connection.

    Attributes:
        time: Seconds since the recorder started (``time.monotonic`` based).
        connection: A small number that tells connections apart.
        direction: Which way it went.
        kind: What it is.
        data: The raw bytes as seen on the wire (masked, for client frames).
        frame: The decoded, unmasked frame, for ``Kind.FRAME``.
        header: The decoded frame header, for ``Kind.FRAME``.
        text: A short human summary (the HTTP start line, a message preview,
            an error message).
    """

    time: float
    connection: int
    direction: Direction
    kind: Kind
    data: bytes = b""
    frame: Frame | None = None
    header: Header | None = None
    text: str = ""

    @property
    def opcode(self) -> Opcode | None:
        return self.frame.opcode if self.frame is not None else None

    def __str__(self) -> str:
        what = str(self.frame) if self.frame is not None else self.text
        return f"{self.time:8.3f}s #{self.connection} {self.direction.value:15} {what}"

    def copies(self, connections: Iterable[int]) -> list[Record]:
        """This record once for each of ``connections``: one message sent to many.

        Why not ``Record(...)`` in a loop: a frozen dataclass sets each field
        through ``object.__setattr__``, about 1 us a record, and a chat records
        each message once per member. Copying the fields is four times faster.
        """
        fields = self.__dict__
        copies = []
        for connection in connections:
            record = object.__new__(Record)
            record.__dict__.update(fields, connection=connection)
            copies.append(record)
        return copies


@dataclass
class Recorder:
    """A thread-safe list of records with live subscribers.

    Args:
        limit: Keep at most this many records (the oldest are dropped), so a
            long-running class does not grow memory without bound.
        max_bytes: Keep at most this many bytes of record data (raw bytes
            plus decoded payloads); the oldest records are dropped first.
            The count alone does not bound memory: 10,000 records of 1 MiB
            frames would be 10 GiB.
    """

    limit: int = 10_000
    records: list[Record] = field(default_factory=list)
    _subscribers: list[Callable[[Record], None]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    max_bytes: int = 16 * 2**20
    _bytes: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.limit, int) or isinstance(self.limit, bool) or self.limit < 1:
            raise ValueError(
                f"limit must be a number of records (an int >= 1), got {self.limit!r}"
            )

    def add(self, record: Record) -> None:
        """Keep ``record`` (dropping the oldest beyond ``limit``) and tell subscribers."""
        self.add_all((record,))

    def add_all(self, records: Sequence[Record]) -> None:
        """Keep ``records``, in order, as :meth:`add` keeps one (a chat's delivery to
        a hundred clients is a hundred records, taken under one lock)."""
        with self._lock:
            if not self.records:
                self._bytes = 0  # the list may have been emptied directly
            self.records.extend(records)
            self._bytes += sum(map(_size, records))
            if len(self.records) > self.limit or self._bytes > self.max_bytes:
                self._drop_oldest()
            subscribers = self._subscribers
        for record in records:
            for callback in subscribers:
                try:
                    callback(record)
                except Exception:
                    # One broken subscriber (say, a closed widget) must not stop the
                    # recording or the other subscribers; log it so it is not hidden.
                    logger.exception("traffic subscriber %r failed", callback)

    def _drop_oldest(self) -> None:
        """Drop the oldest records beyond ``limit`` and ``max_bytes`` (with the lock held)."""
        # Deleting from the front of a list moves every other item, so drop a
        # tenth at once rather than one record per add (profiled: 7% of a
        # 100-client chat server's time went to the moves).
        drop = max(len(self.records) - self.limit, 0)
        if drop:
            drop = max(drop, self.limit // 10)
        dropped = sum(map(_size, self.records[:drop]))
        if self._bytes - dropped > self.max_bytes:
            # Then by size, down to nine tenths, but always keep the newest record.
            fits = self.max_bytes - self.max_bytes // 10
            while self._bytes - dropped > fits and drop < len(self.records) - 1:
                dropped += _size(self.records[drop])
                drop += 1
        del self.records[:drop]
        self._bytes -= dropped

    def subscribe(self, callback: Callable[[Record], None]) -> Callable[[], None]:
        """Call ``callback`` for every new record; return a function that unsubscribes."""
        with self._lock:
            # A new list each time: add_all() reads the list without copying it.
            self._subscribers = [*self._subscribers, callback]

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers = [s for s in self._subscribers if s is not callback]

        return unsubscribe

    def clear(self) -> None:
        """Forget every record; subscribers stay subscribed."""
        with self._lock:
            self.records.clear()
            self._bytes = 0


def _size(record: Record) -> int:
    """The bytes a record holds on to: its raw data and its decoded payload."""
    return len(record.data) + (len(record.frame.payload) if record.frame is not None else 0)
