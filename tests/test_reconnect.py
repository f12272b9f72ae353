"""Tests for wslab.reconnect: backoff, close-code advice, resume, and the client."""

from __future__ import annotations

import random
import statistics
import urllib.parse

import pytest
from _util import wait_until

import wslab
from wslab import reconnect
from wslab.reconnect import Outbox, ReconnectingClient, Resume, advice, backoff_delay
from wslab.scale import ResumableChat


class TestBackoff:
    """RFC 6455 section 7.2.3: a random first delay, then truncated exponential backoff."""

    def test_every_delay_is_within_its_exponential_bound(self) -> None:
        rng = random.Random(7)
        for failures in range(1, 30):
            bound = min(8.0, 0.5 * 2 ** (failures - 1))
            for _ in range(50):
                delay = backoff_delay(failures, base=0.5, cap=8.0, rng=rng)
                assert 0.0 <= delay <= bound

    def test_the_first_retry_is_random_already(self) -> None:
        # 7.2.3: "The first reconnect attempt SHOULD be delayed by a random amount of time."
        delays = {backoff_delay(1, base=5.0, rng=random.Random(seed)) for seed in range(20)}
        assert len(delays) == 20
        assert all(0.0 <= delay <= 5.0 for delay in delays)

    def test_full_jitter_is_uniform_over_the_bound(self) -> None:
        rng = random.Random(12345)
        delays = [backoff_delay(4, base=1.0, cap=30.0, rng=rng) for _ in range(4000)]
        bound = 8.0  # 1.0 * 2**3
        assert statistics.fmean(delays) == pytest.approx(bound / 2, rel=0.05)
        quartiles = statistics.quantiles(delays, n=4)
        assert quartiles == pytest.approx([bound / 4, bound / 2, 3 * bound / 4], rel=0.08)

    def test_the_bound_doubles_then_stops_at_the_cap(self) -> None:
        rng = random.Random(3)
        largest = [
            max(backoff_delay(n, base=1.0, cap=10.0, rng=rng) for _ in range(400))
            for n in range(1, 8)
        ]
        # Growth by two up to the cap (1, 2, 4, 8, then 10, 10, 10).
        assert largest[0] <= 1.0 < largest[1] <= 2.0 < largest[2] <= 4.0 < largest[3] <= 8.0
        assert all(8.0 < value <= 10.0 for value in largest[4:])

    def test_huge_failure_counts_do_not_overflow(self) -> None:
        assert 0.0 <= backoff_delay(10_000, base=1.0, cap=3.0) <= 3.0

    def test_a_schedule_is_reproducible_with_a_seed(self) -> None:
        one = reconnect.backoff_schedule(6, base=0.1, cap=1.0, seed=42)
        assert one == reconnect.backoff_schedule(6, base=0.1, cap=1.0, seed=42)
        assert one != reconnect.backoff_schedule(6, base=0.1, cap=1.0, seed=43)

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"failures": 0},
            {"failures": 1, "base": 0},
            {"failures": 1, "cap": -1},
            {"failures": 1, "factor": 0.5},
        ],
    )
    def test_bad_parameters_are_refused(self, kwargs: dict[str, float]) -> None:
        failures = int(kwargs.pop("failures"))
        with pytest.raises(ValueError):
            backoff_delay(failures, **kwargs)


class TestAdvice:
    """RFC 6455 7.4.1 codes and the IANA registry's 1012 and 1013 (section 11.7)."""

    def test_normal_closure_means_do_not_come_back(self) -> None:
        assert not advice(1000).reconnect

    @pytest.mark.parametrize("code", [1001, 1006, 1011, 1012, 1013, None])
    def test_leaving_restarting_and_breaking_mean_come_back(self, code: int | None) -> None:
        assert advice(code).reconnect

    @pytest.mark.parametrize("code", [1002, 1003, 1007, 1008, 1009, 1010])
    def test_errors_that_would_repeat_mean_stop(self, code: int) -> None:
        assert not advice(code).reconnect

    def test_try_again_later_waits_longer_than_a_restart(self) -> None:
        assert advice(1013).failures > advice(1012).failures >= 1
        assert advice(1001).failures == advice(1012).failures

    def test_private_and_unknown_codes(self) -> None:
        assert not advice(4001).reconnect  # the application's own rule (7.4.2)
        assert advice(2999).reconnect and "not one a client knows" in advice(2999).why


class TestResume:
    """Ids make a resumed stream exact: new ids pass once, known ids are dropped."""

    def test_increasing_ids_pass_and_repeats_are_dropped(self) -> None:
        resume = Resume()
        ids = [1, 2, 3, 2, 3, 4, 4, 6]
        accepted = [i for i in ids if resume.accept({"type": "message", "id": i})]
        assert accepted == [1, 2, 3, 4, 6]  # 5 missing is a gap, not a duplicate
        assert resume.duplicates == 3
        assert resume.last_id == 6

    def test_a_welcome_sets_the_start_but_is_no_event(self) -> None:
        resume = Resume()
        assert not resume.accept({"type": "welcome", "last_id": 7})
        assert resume.last_id == 7
        assert not resume.accept({"type": "welcome", "last_id": 3})  # already started
        assert resume.last_id == 7 and resume.duplicates == 0

    def test_events_without_ids_always_pass(self) -> None:
        resume = Resume(last_id=10)
        assert resume.accept({"type": "ack", "ref": "x-1"})
        assert resume.last_id == 10

    def test_the_url_asks_for_what_came_after_the_last_id(self) -> None:
        resume = Resume()
        url = "ws://127.0.0.1:8080/chat?wslab_token=abc&name=ada"
        assert resume.url(url) == url  # nothing seen yet: nothing to resume
        resume.accept({"id": 41})
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(resume.url(url)).query)
        assert query == {"wslab_token": ["abc"], "name": ["ada"], "last_id": ["41"]}
        resume.accept({"id": 42})
        again = urllib.parse.urlsplit(resume.url(resume.url(url))).query
        assert urllib.parse.parse_qs(again)["last_id"] == ["42"]


class TestOutbox:
    """Refs and acks: a message stays until the server has numbered it."""

    def test_refs_are_unique_and_acks_remove_them(self) -> None:
        outbox = Outbox("c1")
        first, second = outbox.add("a"), outbox.add("b")
        assert '"ref": "c1-1"' in first and '"ref": "c1-2"' in second
        assert outbox.unacked() == [first, second]
        assert outbox.ack("c1-1")
        assert not outbox.ack("c1-1")
        assert outbox.unacked() == [second]

    def test_two_clients_never_share_a_ref(self) -> None:
        assert Outbox().add("x") != Outbox().add("x")


@pytest.fixture
def chat_server() -> object:
    chat = ResumableChat()
    server = wslab.serve(chat, port=0)
    yield server
    server.stop()


class TestReconnectingClient:
    """The client against a real server that leaves and comes back."""

    def test_it_reconnects_and_resumes_without_loss_or_duplicates(self) -> None:
        chat = ResumableChat()
        server = wslab.serve(chat, port=0)
        alice = ReconnectingClient(server, name="alice", base=0.05, cap=0.2, seed=1)
        bob = ReconnectingClient(server, name="bob", base=0.05, cap=0.2, seed=2)
        try:
            wait_until(lambda: alice.state == bob.state == "OPEN", what="both open")
            alice.send("before")
            bob.wait(lambda: "alice: before" in bob.texts())
            port = server.port
            server.stop()  # 1001 going away: both come back
            wait_until(
                lambda: len(bob.attempts) >= 3, what="bob retried while the server was away"
            )
            alice.send("while away")  # kept in the outbox
            server = wslab.serve(chat, port=port, token=server.token)
            bob.wait(lambda: "alice: while away" in bob.texts(), timeout=10)
            alice.send("after")
            bob.wait(lambda: "alice: after" in bob.texts())
            messages = bob.texts("message")
            assert messages == ["alice: before", "alice: while away", "alice: after"]
            ids = [event["id"] for event in bob.events]
            assert ids == sorted(set(ids))
            assert not alice.outbox.pending
            outcomes = [attempt.outcome for attempt in bob.attempts]
            assert outcomes[0] == "open" and outcomes[-1] == "open" and "refused" in outcomes
            assert bob.attempts[0].close_code == 1001
        finally:
            alice.close()
            bob.close()
            server.stop()

    def test_a_refused_handshake_is_final(self, chat_server: wslab.Server) -> None:
        url = chat_server.url.replace("token=", "token=wrong")
        client = ReconnectingClient(url, base=0.01)
        client.wait(lambda: client.state == "CLOSED")
        assert [a.outcome for a in client.attempts] == ["HTTP 403"]

    def test_a_normal_close_by_the_server_is_final(self, chat_server: wslab.Server) -> None:
        async def bye(ws: object) -> None:
            await ws.close(1000, "done")  # type: ignore[attr-defined]

        server = wslab.serve(bye, port=0)
        client = ReconnectingClient(server, base=0.01)
        try:
            client.wait(lambda: client.state == "CLOSED")
            assert len(client.attempts) == 1 and client.close_code == 1000
            with pytest.raises(ConnectionError):
                client.send("too late")
        finally:
            client.close()
            server.stop()

    def test_max_attempts_gives_up_on_a_server_that_never_comes(
        self, chat_server: wslab.Server
    ) -> None:
        port = chat_server.port
        chat_server.stop()
        client = ReconnectingClient(
            f"ws://127.0.0.1:{port}/chat", base=0.01, cap=0.02, max_attempts=3
        )
        client.wait(lambda: client.state == "CLOSED")
        assert [a.outcome for a in client.attempts] == ["refused"] * 3

    def test_close_stops_reconnecting_and_stop_all_finds_none(
        self, chat_server: wslab.Server
    ) -> None:
        client = ReconnectingClient(chat_server, name="cleo")
        client.wait(lambda: client.state == "OPEN")
        reconnect.stop_all()
        assert client.state == "CLOSED"
        assert client not in reconnect.clients()

    def test_a_url_list_is_tried_in_turn(self, chat_server: wslab.Server) -> None:
        client = ReconnectingClient(["ws://127.0.0.1:1/chat", chat_server], base=0.01)
        try:
            client.wait(lambda: client.state == "OPEN")
            assert [a.outcome for a in client.attempts] == ["refused", "open"]
        finally:
            client.close()

    def test_bad_targets_fail_at_once(self) -> None:
        with pytest.raises(wslab.WSLabError):
            ReconnectingClient("http://example.com/")
        with pytest.raises(wslab.WSLabError):
            ReconnectingClient([])
