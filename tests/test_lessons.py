"""The machinery of the lessons (wslab.lessons): servers, measurements, tokens, the working copy.

What the lessons' cells call must behave the way students use notebooks: a
step re-run after its server stopped says in one line what to re-run, a
measurement can run again and again, a re-run cell replaces its servers, and
the working copy never overwrites a student's work.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from _util import wait_until

import wslab
from wslab import conformance, lessons, practice
from wslab.frames import Frame

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
LESSONS = [stem for _, stem, _, _ in lessons.COURSE]
SECRET = b"test-secret"


def load(name: str) -> dict[str, Any]:
    notebook: dict[str, Any] = json.loads((NOTEBOOKS / f"{name}.ipynb").read_text())
    return notebook


def source(cell: dict[str, Any]) -> str:
    text = cell["source"]
    return text if isinstance(text, str) else "".join(text)


class TestStoppedServers:
    """Every lesson server stops cleanly, and says what to re-run once stopped."""

    def test_a_stopped_reference_server_says_what_to_rerun(self) -> None:
        server = lessons.reference_server()
        port = server.port
        server.stop()
        server.stop()  # twice is fine
        assert not server.running and "stopped" in repr(server)
        with pytest.raises(lessons.ServerStopped, match="run the cell that starts it again"):
            server.port  # noqa: B018
        with pytest.raises(lessons.ServerStopped, match=f"nothing listens on 127.0.0.1:{port}"):
            lessons.CountingSocket("127.0.0.1", port)

    @pytest.mark.parametrize(
        "start",
        [
            lessons.reference_server,
            lessons.UpdateServer,
            lessons.PushServer,
            lambda: lessons.serve_frames({}),
        ],
        ids=["reference", "update", "push", "frames"],
    )
    def test_stop_all_stops_every_kind(self, start: Any) -> None:
        server = start()
        assert server.running
        wslab.stop_all()
        assert not server.running
        with pytest.raises(lessons.ServerStopped, match=server.what):
            server.port  # noqa: B018


class TestReferenceServer:
    def test_tls_connections_never_hang(self) -> None:
        """Lesson 07's wss:// server: 400 connections in a row, none hangs (7.4, TLS).

        websockets' sync client and server each read and write one TLS socket
        from two threads; with TLS 1.3 session tickets about 1 connection in
        130 hung until its open timeout (3 of 400 here before the fix).
        """
        import ssl

        import trustme
        from websockets.sync.client import connect

        ca = trustme.CA()
        server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1").configure_cert(server_context)
        client_context = ssl.create_default_context()
        ca.configure_trust(client_context)
        server = lessons.reference_server(ssl=server_context)
        hung = []
        try:
            for attempt in range(400):
                try:
                    with connect(server.url, ssl=client_context, open_timeout=3) as ws:
                        ws.send("over TLS")
                        assert ws.recv(timeout=3) == "over TLS"
                except TimeoutError:
                    hung.append(attempt)
        finally:
            server.stop()
        assert hung == [], f"connections {hung} of 400 hung"


class TestMeasurements:
    """Lessons 01 and 08 measure real traffic; the byte counts follow RFC 6455 section 5.2."""

    def test_polling_against_a_websocket(self) -> None:
        http, ws = lessons.UpdateServer(), lessons.reference_server()
        try:
            rows = lessons.measure_polling(http.port, ws.port, 3)
        finally:
            http.stop()
            ws.stop()
        size = len(lessons.UPDATE)
        assert rows["WebSocket"]["to client"] == 2 + size  # 2-byte header, no mask
        assert rows["WebSocket"]["to server"] == 2 + 4 + size  # and a client's masking key
        assert rows["WebSocket"]["once"] > 0  # the handshake, paid once
        assert rows["keep-alive polling"]["to client"] > size  # a status line and headers

    def test_push_comparison_runs_again_and_again(self) -> None:
        """Lesson 08's measurement cell re-run: fresh events each time, no thread traceback."""
        push = lessons.PushServer()
        try:
            for _ in range(2):
                results = lessons.compare_push(push, 5)
                assert [len(r["latencies"]) for r in results.values()] == [5, 5, 5]
        finally:
            push.stop()
        with pytest.raises(lessons.ServerStopped, match="run the cell that starts it again"):
            lessons.compare_push(push, 5)

    def test_a_last_event_id_that_is_not_a_whole_number_is_ignored(self) -> None:
        """'²' passes str.isdigit() but not int(): the stream starts afresh, no 500."""
        push = lessons.PushServer()
        try:
            with socket.create_connection(("127.0.0.1", push.port), timeout=5) as conn:
                # b"\xb2" is "²" in Latin-1, the charset HTTP servers decode headers with.
                conn.sendall(
                    b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nLast-Event-ID: \xb2\r\n\r\n"
                )
                answer = b""
                while b"subscribed" not in answer and len(answer) < 4096:
                    if not (chunk := conn.recv(4096)):
                        break
                    answer += chunk
            assert answer.startswith(b"HTTP/1.1 200"), answer[:80]
            assert b"retry:" in answer
        finally:
            push.stop()


class TestTokens:
    """Signed, expiring tokens (RFC 6455 section 10.5 leaves authentication to the server)."""

    def test_a_fresh_token_names_its_owner(self) -> None:
        who = lessons.verify_token(lessons.make_token("ada", 5, SECRET), SECRET)
        assert who is not None and who[0] == "ada" and who[1] > time.time()

    @pytest.mark.parametrize(
        "token",
        [
            lessons.make_token("ada", 5, b"another secret"),
            lessons.make_token("ada", -1, SECRET),
            lessons.make_token("ada", 5, SECRET).replace("ada.", "eve.", 1),
            "ada.notanumber.00",
            "nonsense",
            None,
        ],
        # Stable names: the tokens hold the time, and pytest-xdist's workers must
        # collect the same test ids.
        ids=["another-secret", "expired", "forged-name", "bad-time", "nonsense", "none"],
    )
    def test_forged_expired_and_malformed_tokens_are_refused(self, token: Any) -> None:
        assert lessons.verify_token(token, SECRET) is None

    def test_the_guard_closes_with_4001_when_the_token_lapses(self) -> None:
        server = wslab.serve(lessons.token_guard(SECRET), port=0)
        try:
            kept, lapsed, forged = (wslab.Client(server) for _ in range(3))
            for client, name in ((kept, "kept"), (lapsed, "lapsed")):
                token = lessons.make_token(name, 0.6, SECRET)
                client.send(json.dumps({"type": "auth", "token": token}))
            forged.send(json.dumps({"type": "auth", "token": "x.1.2"}))
            kept.send(json.dumps({"type": "message", "text": "hi"}))
            assert kept.recv(timeout=5) == "kept: hi"
            renewed = lessons.make_token("kept", 5, SECRET)
            kept.send(json.dumps({"type": "auth", "token": renewed}))
            wait_until(lambda: lapsed.ready_state == "CLOSED", 5, what="the lapsed client closed")
            assert (lapsed.close_code, lapsed.close_reason) == (4001, "token expired")
            assert forged.close_code == 1008
            kept.send(json.dumps({"type": "message", "text": "still here"}))
            assert kept.recv(timeout=5) == "kept: still here"
        finally:
            server.stop()


def close_code_after(url: str, message: str) -> int | None:
    """Send ``message`` to ``url``; the code of the close that follows."""
    client = wslab.Client(url)
    client.send(message)
    wait_until(lambda: client.ready_state == "CLOSED", 5, what="the server closed")
    return client.close_code


class TestServeFrames:
    """Lesson 11's server: the checker grades what respond() decides."""

    def test_the_worked_solution_passes_pings_and_closing(self) -> None:
        namespace: dict[str, Any] = {}
        exec("from wslab.closing import parse_close, serialize_close", namespace)
        exec("from wslab.frames import Frame, Opcode", namespace)
        exec(practice.step("11-respond").solution, namespace)
        server = lessons.serve_frames(namespace)
        try:
            report = conformance.run(server.url, cases=["pings", "closing"])
            assert not report.failed, [str(case) for case in report.failed]
        finally:
            server.stop()

    def test_a_blank_namespace_still_echoes_and_text_ok_fails_bad_text(self) -> None:
        namespace: dict[str, Any] = {}
        server = lessons.serve_frames(namespace)
        try:
            with wslab.Client(server.url) as client:
                client.send("echo me")
                assert client.recv(timeout=5) == "echo me"
            namespace["text_ok"] = lambda payload: False  # every text is "invalid" now
            assert close_code_after(server.url, "refused") == 1007
        finally:
            server.stop()

    def test_a_respond_that_raises_fails_with_1011(self) -> None:
        def respond(frame: Frame) -> list[Frame]:
            raise RuntimeError("a bug in the student's code")

        server = lessons.serve_frames({"respond": respond})
        try:
            assert close_code_after(server.url, "boom") == 1011
        finally:
            server.stop()


class TestWorkingCopy:
    """`make lab` opens my-work/, a copy that course updates reach without conflicts."""

    def test_never_overwrites(self, tmp_path: Path) -> None:
        """make lab opens my-work/: course files are copied once, never over the student's."""
        work = tmp_path / "my-work"
        copied = lessons.working_copy(NOTEBOOKS, work)
        names = {p.relative_to(work).as_posix() for p in copied}
        assert {f"{stem}.ipynb" for stem in LESSONS} <= names
        assert "exercises/release/01_handshake/handshake.ipynb" in names
        assert not any(n.startswith("exercises/source") for n in names)
        mine = work / "02-handshake.ipynb"
        mine.write_text("my notes")
        (work / "03-frame-bytes.ipynb").unlink()
        again = lessons.working_copy(NOTEBOOKS, work)
        assert [p.name for p in again] == ["03-frame-bytes.ipynb"]
        assert mine.read_text() == "my notes"
        assert lessons.working_copy(NOTEBOOKS, work) == []

    def test_takes_course_updates_the_student_did_not_touch(self, tmp_path: Path) -> None:
        """After a `git pull`, an untouched copy is updated; an edited one is kept as it is."""
        course = tmp_path / "course"
        course.mkdir()
        for stem in ("00-start-here", "01-why-websockets"):
            (course / f"{stem}.ipynb").write_text(f"{stem} v1")
        (course / "README.md").write_text("readme v1")
        work = tmp_path / "my-work"
        lessons.working_copy(course, work)
        (work / "01-why-websockets.ipynb").write_text("my answers")
        for path in course.iterdir():  # the course is updated
            path.write_text(path.read_text().replace("v1", "v2"))
        copied = lessons.working_copy(course, work)
        assert sorted(p.name for p in copied) == ["00-start-here.ipynb", "README.md"]
        assert (work / "00-start-here.ipynb").read_text() == "00-start-here v2"
        assert (work / "01-why-websockets.ipynb").read_text() == "my answers"

    def test_an_edited_copy_left_behind_is_named(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """make lab's line: new and updated copies counted apart, edited ones named."""
        from wslab.lessons.__main__ import main

        course, work = tmp_path / "course", tmp_path / "my-work"
        course.mkdir()
        for stem in ("00-start-here", "01-why-websockets", "02-handshake"):
            (course / f"{stem}.ipynb").write_text(f"{stem} v1")
        assert main([str(course), str(work)]) == 0
        assert "3 new and 0 updated course files copied in" in capsys.readouterr().out
        (work / "01-why-websockets.ipynb").write_text("my answers")
        (work / "02-handshake.ipynb").write_text("my notes")
        (course / "00-start-here.ipynb").write_text("00-start-here v2")
        (course / "01-why-websockets.ipynb").write_text("01-why-websockets v2")
        assert lessons.newer_in_course(course, work) == [work / "01-why-websockets.ipynb"]
        assert main([str(course), str(work)]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines[0].endswith("0 new and 1 updated course files copied in")
        assert len(lines) == 2 and "01-why-websockets.ipynb: kept as you edited it" in lines[1]
        assert "01-why-websockets-mine.ipynb" in lines[1]  # how to get the new version


@pytest.mark.kernel
@pytest.mark.timeout(120)
def test_rerun_and_restart_in_a_kernel() -> None:
    """Lesson 02 in a kernel: a re-run cell replaces its server; a step re-run after the
    server stopped gives one line saying what to re-run, no traceback."""
    from _kernel import Kernel

    cells = [c for c in load("02-handshake")["cells"] if c["cell_type"] == "code"]
    by_id = {c["id"]: source(c) for c in cells}
    with Kernel(cwd=NOTEBOOKS) as kernel:
        kernel.run(by_id["02-02"]).raise_for_error()
        kernel.run("first = server").raise_for_error()
        for cid in ("02-02", "02-04", "02-06"):
            kernel.run(by_id[cid]).raise_for_error()
        assert kernel.eval("(first.running, server.running)") == "(False, True)"
        kernel.run("server.stop()").raise_for_error()
        again = kernel.run(by_id["02-06"])
    assert again.error is not None and again.error[0] == "ServerStopped"
    assert "run the cell that starts it again" in again.error[1]
    assert "Traceback" not in again.text and "wslab/lessons" not in again.text
