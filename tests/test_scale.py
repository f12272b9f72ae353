"""Tests for wslab.scale: ids, history and resume, in one process and across processes."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Iterator

import pytest
import websockets.asyncio.client
from _util import wait_until

import wslab
import wslab.server
from wslab import deploy, lessons, scale
from wslab.handlers import Chat
from wslab.reconnect import ReconnectingClient
from wslab.scale import LocalBus, ResumableChat, ValkeyBus
from wslab.traffic import Kind


@pytest.fixture
def valkey() -> Iterator[deploy.PubSub]:
    server = deploy.pubsub()
    yield server
    server.stop()


class TestLocalBus:
    def test_ids_increase_history_keeps_and_refs_are_published_once(self) -> None:
        bus = LocalBus(history=3)
        delivered: list[tuple[str, int]] = []

        async def run() -> list[int]:
            await bus.start(lambda text, i: delivered.append((text, i)))
            ids = [await bus.publish({"type": "notice", "text": f"n{n}"}) for n in range(4)]
            ids.append(await bus.publish({"type": "message", "text": "m"}, ref="c-1"))
            ids.append(await bus.publish({"type": "message", "text": "m"}, ref="c-1"))
            return ids

        assert asyncio.run(run()) == [1, 2, 3, 4, 5, 5]
        assert [i for _, i in delivered] == [1, 2, 3, 4, 5]
        history = asyncio.run(bus.history(after=2))
        assert [json.loads(text)["id"] for text in history] == [3, 4, 5]  # 3 kept
        assert json.loads(history[-1]) == {"id": 5, "type": "message", "text": "m"}

    def test_refs_are_remembered_up_to_a_limit(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A client that sends a fresh ref with every message cannot grow memory without end."""
        monkeypatch.setattr(scale, "MAX_REFS", 3)
        bus = LocalBus()

        async def run() -> list[int]:
            ids = [await bus.publish({"type": "message"}, ref=f"r{n}") for n in range(4)]
            ids.append(await bus.publish({"type": "message"}, ref="r3"))  # still known
            ids.append(await bus.publish({"type": "message"}, ref="r0"))  # forgotten
            return ids

        assert asyncio.run(run()) == [1, 2, 3, 4, 4, 5]
        assert len(bus._refs) == 3


class TestValkeyBus:
    """Two processes' buses on one Valkey: one sequence of ids, one history."""

    def test_two_buses_share_ids_history_and_delivery(self, valkey: deploy.PubSub) -> None:
        async def run() -> tuple[list[int], list[list[int]], list[str]]:
            buses = [ValkeyBus(valkey.url, room="t1") for _ in range(2)]
            seen: list[list[int]] = [[], []]
            for bus, got in zip(buses, seen, strict=True):
                await bus.start(lambda text, i, got=got: got.append(i))
            ids = []
            for n in range(6):
                ids.append(await buses[n % 2].publish({"type": "notice", "text": str(n)}))
            ids.append(await buses[1].publish({"type": "message", "text": "x"}, ref="r-1"))
            ids.append(await buses[0].publish({"type": "message", "text": "x"}, ref="r-1"))
            for _ in range(100):
                if all(len(got) == 7 for got in seen):
                    break
                await asyncio.sleep(0.02)
            history = await buses[0].history(after=5)
            for bus in buses:
                await bus.close()
            return ids, seen, history

        ids, seen, history = asyncio.run(run())
        assert ids == [1, 2, 3, 4, 5, 6, 7, 7]  # the resent ref keeps its id
        assert seen == [[1, 2, 3, 4, 5, 6, 7]] * 2  # every process, in order, once
        assert [json.loads(text)["id"] for text in history] == [6, 7]

    def test_ids_stay_in_order_under_concurrent_publishers(self, valkey: deploy.PubSub) -> None:
        async def run() -> list[int]:
            buses = [ValkeyBus(valkey.url, room="t2") for _ in range(3)]
            seen: list[int] = []
            await buses[0].start(lambda text, i: seen.append(i))
            await asyncio.gather(
                *(bus.publish({"type": "notice", "text": "x"}) for bus in buses for _ in range(20))
            )
            for _ in range(100):
                if len(seen) == 60:
                    break
                await asyncio.sleep(0.02)
            for bus in buses:
                await bus.close()
            return seen

        assert asyncio.run(run()) == list(range(1, 61))  # published in id order


async def _collect(url: str, count: int) -> list[dict[str, object]]:
    async with websockets.asyncio.client.connect(url, compression=None) as ws:
        return [json.loads(await asyncio.wait_for(ws.recv(), 5)) for _ in range(count)]


class TestResumableChat:
    def test_last_id_replays_exactly_what_was_missed(self) -> None:
        chat = ResumableChat()
        server = wslab.serve(chat, port=0)
        try:
            with wslab.Client(server.url + "&name=ada") as ada:
                for n in range(5):
                    ada.send(f"m{n}")
                wait_until(lambda: sum('"m4"' in m for m in ada.messages) == 1)
            welcome, *events = asyncio.run(_collect(server.url + "&last_id=3", 5))
            assert welcome == {"type": "welcome", "last_id": 3}
            assert [e["id"] for e in events] == [4, 5, 6, 7]
            assert [e.get("text") for e in events] == ["m2", "m3", "m4", "* ada left"]
        finally:
            server.stop()

    def test_a_last_id_that_is_not_a_whole_number_is_ignored(self) -> None:
        # "%C2%B2" is "²": str.isdigit() says yes, int() says no (a 1011 and a traceback).
        server = wslab.serve(ResumableChat(), port=0)
        try:
            (welcome,) = asyncio.run(_collect(server.url + "&last_id=%C2%B2", 1))
            assert welcome == {"type": "welcome", "last_id": 0}  # as a new client
            assert not [r for r in server.recorder.records if r.kind is Kind.ERROR]
        finally:
            server.stop()

    def test_a_ref_too_long_to_remember_is_not_kept(self) -> None:
        server = wslab.serve(ResumableChat(), port=0)
        long_ref = "r" * (scale.MAX_REF_LENGTH + 1)
        try:
            with wslab.Client(server.url + "&name=ada") as ada:
                for text in ("one", "two"):  # the same ref twice: both published
                    ada.send(json.dumps({"type": "message", "text": text, "ref": long_ref}))
                wait_until(lambda: sum('"two"' in m for m in ada.messages) == 1)
                events = [json.loads(m) for m in ada.messages]
            assert [e["text"] for e in events if e.get("type") == "message"] == ["one", "two"]
            assert not any(e.get("type") == "ack" or "ref" in e for e in events)
        finally:
            server.stop()

    def test_plain_text_envelopes_acks_and_renames(self) -> None:
        chat = ResumableChat()
        server = wslab.serve(chat, port=0)
        try:
            with wslab.Client(server.url + "&name=ada") as ada:
                ada.send("plain")
                ada.send(json.dumps({"type": "message", "text": "wrapped", "ref": "a-1"}))
                ada.send("/name Ada L.")
                wait_until(lambda: len(ada.messages) >= 6)
                events = [json.loads(m) for m in ada.messages]
            assert events[0] == {"type": "welcome", "last_id": 0}
            assert events[1] == {"id": 1, "type": "notice", "text": "* ada joined"}
            assert events[2] == {"id": 2, "type": "message", "name": "ada", "text": "plain"}
            assert {"type": "ack", "ref": "a-1", "id": 3} in events
            assert {"id": 4, "type": "notice", "text": "* ada is now Ada L."} in events
        finally:
            server.stop()


class TestSlowConsumer:
    """Backpressure (RFC 6455 7.4.1, 1008): a slow reader must not stall the others."""

    def test_the_chat_drops_the_slow_reader_and_serves_the_fast_one(self) -> None:
        server = wslab.serve(Chat(max_pending=256 * 1024), port=0)
        try:
            result = scale.measure_slow_consumer(server, messages=120, size=64 * 1024)
            assert result.delivered == result.sent == 120
            assert result.dropped_at is not None
            assert max(size for _, size in result.queue) <= 256 * 1024
        finally:
            server.stop()

    def test_a_sequential_broadcast_stalls_everyone_and_still_stops_at_once(self) -> None:
        """Lesson 09's stuck room. Its stop() must not wait out close_timeout for
        the sender, whose handler failed on the slow member while websockets had
        stopped reading its socket (so its reset is never seen)."""
        # A close_timeout longer than stop()'s own patience: waiting it out
        # would leave a connection open when stop() returns.
        close_timeout = wslab.server.START_TIMEOUT * 3
        server = wslab.serve(lessons.sequential_broadcast(), port=0, close_timeout=close_timeout)
        try:
            result = scale.measure_slow_consumer(server, messages=120, size=64 * 1024)
            assert result.delivered < result.sent and result.dropped_at is None
            assert result.queue == []  # no per-member queue to sample
        finally:
            server.stop()
        connects, closes = (
            {r.connection for r in server.recorder.records if r.kind is kind}
            for kind in (Kind.CONNECT, Kind.TCP_CLOSE)
        )
        assert len(connects) == 3 and closes == connects  # the slow, the fast, the sender


class TestAcrossProcesses:
    """The chat in several real processes joined by a real Valkey server."""

    def test_a_killed_process_loses_nothing_and_duplicates_nothing(
        self, valkey: deploy.PubSub
    ) -> None:
        group = scale.cluster(2, pubsub=valkey)
        one, two = group.urls
        # Bob starts on process 1 and knows process 2 as the fallback.
        bob = ReconnectingClient([one, two], name="bob", base=0.02, cap=0.1, seed=1)
        # Open is the handshake; in the room is seeing one's own notice.
        bob.wait(lambda: "* bob joined" in bob.texts())
        alice = ReconnectingClient(two, name="alice", base=0.02, cap=0.1, seed=2)
        sent: list[str] = []
        try:
            bob.wait(lambda: "* alice joined" in bob.texts())
            stop = threading.Event()

            def chatter() -> None:  # alice keeps talking while bob's process dies
                for n in range(60):
                    if stop.is_set():
                        return
                    sent.append(f"m{n}")
                    alice.send(f"m{n}")
                    stop.wait(0.01)

            talker = threading.Thread(target=chatter)
            talker.start()
            wait_until(lambda: len(sent) >= 20, what="alice is mid-chat")
            group.servers[0].kill()  # SIGKILL: no Close frame, bob sees 1006
            bob.send("bob is back")  # sent from the outbox once bob reconnects
            talker.join(10)
            bob.wait(lambda: f"alice: {sent[-1]}" in bob.texts(), timeout=10)
            alice.wait(lambda: "bob: bob is back" in alice.texts(), timeout=10)

            received = [line for line in bob.texts("message") if line.startswith("alice: ")]
            assert received == [f"alice: {text}" for text in sent]  # all, in order, once
            assert alice.texts("message").count("bob: bob is back") == 1
            ids = [event["id"] for event in bob.events]
            assert ids == list(range(ids[0], ids[0] + len(ids)))  # no gap, no repeat
            assert bob.attempts[0].close_code == 1006
            assert bob.attempts[-1].outcome == "open" and bob.attempts[-1].url == two
        finally:
            bob.close()
            alice.close()
            group.stop()

    def test_a_drained_process_sends_its_clients_to_a_sibling_behind_nginx(
        self, valkey: deploy.PubSub
    ) -> None:
        group = scale.cluster(3, pubsub=valkey)
        front = deploy.proxy(group.servers)
        clients = [
            ReconnectingClient(front, name=f"c{n}", base=0.02, cap=0.1, seed=n) for n in range(6)
        ]
        try:
            for client in clients:
                client.wait(lambda client=client: client.state == "OPEN")
            clients[0].send("before")
            clients[0].wait(lambda: not clients[0].outbox.pending)  # acknowledged
            group.drain(0, 1012)
            clients[1].send("after")
            for client in clients:
                client.wait(lambda client=client: "c1: after" in client.texts(), timeout=10)
                assert client.texts("message") == ["c0: before", "c1: after"]
            codes = {a.close_code for c in clients for a in c.attempts if a.close_code}
            assert codes == {1012}, "two of six clients were on the drained process"
            assert not group.servers[0].running
        finally:
            for client in clients:
                client.close()
            front.stop()
            group.stop()

    def test_fanout_is_measured_across_processes(self, valkey: deploy.PubSub) -> None:
        group = scale.cluster(2, pubsub=valkey)
        try:
            result = scale.measure_fanout(group.urls, receivers=4, messages=5, gap=0.001)
            assert len(result.latencies) == 20 and all(t > 0 for t in result.latencies)
            assert "5 messages to 4 receivers" in str(result)
        finally:
            group.stop()

    def test_a_cluster_leaves_no_process(self) -> None:
        group = scale.cluster(2)
        pids = [group.pubsub.pid, *(server.pid for server in group.servers)]
        wslab.loop.stop_all()
        assert deploy.processes() == []
        for pid in pids:
            assert pid is not None
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
