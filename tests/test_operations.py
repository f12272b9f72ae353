"""Tests for wslab.operations: the machinery of lessons 09 to 11."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from _util import wait_until

import wslab
from wslab import conformance, operations
from wslab.closing import parse_close, serialize_close
from wslab.frames import Frame, Opcode

SECRET = b"test-secret"


class TestTokens:
    """Signed, expiring tokens (RFC 6455 section 10.5 leaves authentication to the server)."""

    def test_a_fresh_token_names_its_owner(self) -> None:
        who = operations.verify_token(operations.make_token("ada", 5, SECRET), SECRET)
        assert who is not None and who[0] == "ada" and who[1] > time.time()

    @pytest.mark.parametrize(
        "token",
        [
            operations.make_token("ada", 5, b"another secret"),
            operations.make_token("ada", -1, SECRET),
            operations.make_token("ada", 5, SECRET).replace("ada.", "eve.", 1),
            "ada.notanumber.00",
            "nonsense",
            None,
        ],
    )
    def test_forged_expired_and_malformed_tokens_are_refused(self, token: Any) -> None:
        assert operations.verify_token(token, SECRET) is None

    def test_the_guard_closes_with_4001_when_the_token_lapses(self) -> None:
        server = wslab.serve(operations.token_guard(SECRET), port=0)
        try:
            kept, lapsed, forged = (wslab.Client(server) for _ in range(3))
            for client, name in ((kept, "kept"), (lapsed, "lapsed")):
                token = operations.make_token(name, 0.6, SECRET)
                client.send(json.dumps({"type": "auth", "token": token}))
            forged.send(json.dumps({"type": "auth", "token": "x.1.2"}))
            kept.send(json.dumps({"type": "message", "text": "hi"}))
            assert kept.recv(timeout=5) == "kept: hi"
            renewed = operations.make_token("kept", 5, SECRET)
            kept.send(json.dumps({"type": "auth", "token": renewed}))
            wait_until(lambda: lapsed.ready_state == "CLOSED", 5, what="the lapsed client closed")
            assert (lapsed.close_code, lapsed.close_reason) == (4001, "token expired")
            assert forged.close_code == 1008
            kept.send(json.dumps({"type": "message", "text": "still here"}))
            assert kept.recv(timeout=5) == "kept: still here"
        finally:
            server.stop()


def respond(frame: Frame) -> list[Frame]:
    """The worked solution of lesson 11's step."""
    if frame.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
        return [frame]
    if frame.opcode is Opcode.PING:
        return [Frame(Opcode.PONG, frame.payload)]
    if frame.opcode is Opcode.CLOSE:
        close = parse_close(frame.payload)
        return [Frame(Opcode.CLOSE, b"" if close is None else serialize_close(close.code, ""))]
    return []


class TestServeFrames:
    """Lesson 11's server: the checker grades what respond() decides."""

    def test_a_right_respond_passes_pings_and_closing(self) -> None:
        server = operations.serve_frames({"respond": respond})
        try:
            report = conformance.run(server.url, cases=["pings", "closing"])
            assert not report.failed, [str(case) for case in report.failed]
        finally:
            server.stop()

    def test_a_blank_namespace_still_echoes_and_text_ok_fails_bad_text(self) -> None:
        namespace: dict[str, Any] = {}
        server = operations.serve_frames(namespace)
        try:
            with wslab.Client(server.url) as client:
                client.send("echo me")
                assert client.recv(timeout=5) == "echo me"
            namespace["text_ok"] = lambda payload: False  # every text is "invalid" now
            client = wslab.Client(server.url)
            client.send("refused")
            wait_until(lambda: client.ready_state == "CLOSED", 5, what="closed with 1007")
            assert client.close_code == 1007
        finally:
            server.stop()
