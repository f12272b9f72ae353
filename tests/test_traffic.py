"""Tests of wslab.traffic: the records that servers, taps and traffic logs share."""

from __future__ import annotations

import logging
import threading
from dataclasses import replace

import pytest

from wslab.frames import Frame, Opcode, parse_header
from wslab.traffic import Direction, Kind, Record, Recorder


def record(n: int, kind: Kind = Kind.MESSAGE) -> Record:
    return Record(
        time=n / 10, connection=1, direction=Direction.TO_SERVER, kind=kind, text=f"#{n}"
    )


class TestRecord:
    def test_frame_record(self) -> None:
        data = bytes.fromhex("81 85 37 fa 21 3d 7f 9f 4d 51 58")
        rec = Record(
            time=1.5,
            connection=3,
            direction=Direction.TO_SERVER,
            kind=Kind.FRAME,
            data=data,
            frame=Frame(Opcode.TEXT, b"Hello"),
            header=parse_header(data),
        )
        assert rec.opcode is Opcode.TEXT
        assert str(rec) == "   1.500s #3 client → server TEXT 'Hello' [5 bytes]"

    def test_other_records_show_their_text(self) -> None:
        rec = Record(0.25, 2, Direction.NONE, Kind.TCP_CLOSE, text="closed by the client")
        assert rec.opcode is None
        assert str(rec) == "   0.250s #2 -               closed by the client"

    def test_records_are_immutable(self) -> None:
        with pytest.raises(AttributeError):
            record(1).text = "changed"  # type: ignore[misc]

    def test_copies_for_one_message_sent_to_many(self) -> None:
        original = record(1)
        copies = original.copies([4, 5])
        assert copies == [replace(original, connection=4), replace(original, connection=5)]
        assert original.connection == 1  # unchanged
        with pytest.raises(AttributeError):
            copies[0].text = "changed"  # type: ignore[misc]


class TestRecorder:
    def test_keeps_records_in_order(self) -> None:
        recorder = Recorder()
        for n in range(5):
            recorder.add(record(n))
        assert [r.text for r in recorder.records] == ["#0", "#1", "#2", "#3", "#4"]

    def test_add_all_is_add_for_each(self) -> None:
        recorder = Recorder(limit=3)
        seen: list[str] = []
        recorder.subscribe(lambda r: seen.append(r.text))
        recorder.add_all([record(n) for n in range(5)])
        assert seen == ["#0", "#1", "#2", "#3", "#4"]
        assert [r.text for r in recorder.records] == ["#2", "#3", "#4"]

    def test_limit_drops_the_oldest(self) -> None:
        recorder = Recorder(limit=3)
        for n in range(10):
            recorder.add(record(n))
        assert [r.text for r in recorder.records] == ["#7", "#8", "#9"]

    @pytest.mark.parametrize("limit", [0, -1, 2.5, None])
    def test_limit_must_be_a_positive_int(self, limit: object) -> None:
        with pytest.raises(ValueError, match="limit must be a number of records"):
            Recorder(limit=limit)  # type: ignore[arg-type]

    def test_subscribe_and_unsubscribe(self) -> None:
        recorder = Recorder()
        seen: list[str] = []
        unsubscribe = recorder.subscribe(lambda r: seen.append(r.text))
        recorder.add(record(1))
        unsubscribe()
        unsubscribe()  # a second call is harmless
        recorder.add(record(2))
        assert seen == ["#1"]
        assert len(recorder.records) == 2

    def test_a_raising_subscriber_does_not_break_add(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        recorder = Recorder()
        seen: list[str] = []

        def broken(rec: Record) -> None:
            raise RuntimeError("widget is gone")

        recorder.subscribe(broken)
        recorder.subscribe(lambda r: seen.append(r.text))
        with caplog.at_level(logging.ERROR, logger="wslab.traffic"):
            recorder.add(record(1))
        assert seen == ["#1"]
        assert [r.text for r in recorder.records] == ["#1"]
        # The failure is logged, not hidden.
        assert "traffic subscriber" in caplog.text and "widget is gone" in caplog.text

    def test_a_subscriber_may_unsubscribe_itself(self) -> None:
        recorder = Recorder()
        calls: list[str] = []

        def once(rec: Record) -> None:
            calls.append(rec.text)
            unsubscribe()

        unsubscribe = recorder.subscribe(once)
        recorder.add(record(1))
        recorder.add(record(2))
        assert calls == ["#1"]

    def test_clear(self) -> None:
        recorder = Recorder()
        seen: list[Record] = []
        recorder.subscribe(seen.append)
        recorder.add(record(1))
        recorder.clear()
        assert recorder.records == []
        recorder.add(record(2))
        assert len(seen) == 2

    def test_threads_lose_no_records(self) -> None:
        recorder = Recorder(limit=100_000)

        def add_many() -> None:
            for n in range(500):
                recorder.add(record(n))

        threads = [threading.Thread(target=add_many) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
        assert len(recorder.records) == 2000
