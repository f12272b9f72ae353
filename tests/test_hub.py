"""Lesson 05 on a real JupyterHub that two students share (issue #10).

The classroom set-up that does not isolate students: one host, JupyterHub with
configurable-http-proxy in front, ``SimpleLocalProcessSpawner`` (every
single-user server on this machine, as in The Littlest JupyterHub), and
jupyter-server-proxy inside each single-user server (``/user/<name>/proxy/<port>/``).
``tests/_hub.py`` starts it once for the module.

Two students, stu1 and stu2, each run lesson 05's server and widget cells in a
kernel of their own server (driven through the Jupyter REST API and the
kernel's WebSocket, with their own API tokens), and each is logged in to the
hub in Chromium. The browser knows the hub as ``http://hub.test:<port>``
(Chromium maps the name to 127.0.0.1), so, as on a real hub, the ``Host`` and
``Origin`` the proxied requests carry are not a loopback name.

What is proven:

* each student's lesson runs in her own server, and her chat page works
  through her own ``/user/<name>/proxy/<port>/`` link;
* what the hub's proxy really does to WebSocket traffic, which lessons 04, 05
  and 07 teach (close codes, its own handshake, forwarded headers, refusals),
  measured with an independent WebSocket server (the websockets library).
"""

from __future__ import annotations

import base64
import html
import json
import re
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from _hub import Hub, HubUser, RemoteKernel, running_hub
from _util import launch_chromium, wait_until
from websockets.datastructures import Headers
from websockets.http11 import Request, Response
from websockets.sync.server import ServerConnection, serve

ROOT = Path(__file__).resolve().parent.parent
LESSON = ROOT / "notebooks" / "05-chat-app.ipynb"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.kernel,
    pytest.mark.node,
    pytest.mark.timeout(180),
]

#: The hub's public name in the browser; Chromium resolves it to 127.0.0.1.
HUB_HOST = "hub.test"
STUDENTS = ("stu1", "stu2")


# -- fixtures: the hub, the students, their lessons and browsers ---------------------


@dataclass
class Student:
    """One student: her hub account, her kernel with lesson 05 run, her browser."""

    user: HubUser
    kernel: RemoteKernel
    #: The lesson's chat server's port (``chat.port`` in her kernel).
    port: int
    #: The link lesson 05 shows her for the chat page (the ``href`` it prints).
    link: str
    #: Her logged-in Playwright browser context (set by the ``students`` fixture).
    browser: Any = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.user.name

    def public_url(self, path: str) -> str:
        """``path`` (absolute, e.g. ``/user/stu1/...``) on the hub, as her browser sees it."""
        return f"http://{HUB_HOST}:{self.user.hub.url.rsplit(':', 1)[1]}{path}"

    def own_proxy_link(self, port: int) -> str:
        """The path of ``port`` through her own proxy, with the lesson link's query.

        The query carries whatever the lesson's link carries (the server's
        secret, once wslab has one), so this is the link a student builds
        from the lesson's when she opens it where she is.
        """
        query = urllib.parse.urlsplit(self.link).query
        return f"{self.user.prefix}proxy/{port}/" + (f"?{query}" if query else "")


def lesson_code_cells() -> list[str]:
    """The sources of lesson 05's code cells, in order."""
    notebook = json.loads(LESSON.read_text())
    return ["".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code"]


def run_lesson(kernel: RemoteKernel) -> tuple[int, str]:
    """Run lesson 05's server and widget cells in ``kernel``, as a student does.

    The cells run in order, from the top to the one that shows the link to
    the chat server's page: the echo server, the chat server (``chat``) with
    Alice's and Bob's ``ChatClient`` widgets, and the link.

    Returns:
        The chat server's port and the ``href`` of the link the lesson shows.
    """
    port = None
    for source in lesson_code_cells():
        result = kernel.run(source).raise_for_error()
        if port is None and re.search(r"^chat\s*=", source, re.MULTILINE):
            port = int(kernel.eval("chat.port"))
        if port is None:
            continue
        # The link is HTML output, or an HTML widget (its value, in the widget state).
        shown = [output.get("data", {}).get("text/html", "") for output in result.outputs]
        shown += [str(state.get("value", "")) for state in result.widgets]
        for link in re.findall(r'href="([^"]+)"', "\n".join(shown)):
            if re.search(rf"[:/]{port}/", link):
                return port, html.unescape(link)
    raise AssertionError(f"{LESSON.name} showed no link to its chat server's page")


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """A JupyterHub with two allowed students; stopped with all it started."""
    with running_hub(tmp_path_factory.mktemp("hub"), users=STUDENTS) as hub:
        yield hub


@pytest.fixture(scope="module")
def browser(hub: Hub) -> Iterator[Any]:
    """Chromium, which knows the hub as ``hub.test``."""
    with launch_chromium(f"--host-resolver-rules=MAP {HUB_HOST} 127.0.0.1") as browser:
        yield browser


@pytest.fixture(scope="module")
def students(hub: Hub, browser: Any) -> Iterator[dict[str, Student]]:
    """Both students, each with lesson 05 run in her own kernel and logged in."""
    users = hub.add_users(*STUDENTS)
    students: dict[str, Student] = {}
    kernels: list[RemoteKernel] = []
    try:
        for user in users:
            kernel = user.kernel()
            kernels.append(kernel)
            port, link = run_lesson(kernel)
            students[user.name] = Student(user=user, kernel=kernel, port=port, link=link)
        for student in students.values():
            student.browser = student.user.login(browser, base=student.public_url(""))
        yield students
    finally:
        for kernel in kernels:
            kernel.shutdown()


def open_page(student: Student, path: str) -> Any:
    """A new tab of ``student``'s browser on ``path`` of the hub."""
    page = student.browser.new_page()
    page.set_default_timeout(15_000)
    page.goto(student.public_url(path))
    return page


# -- each student's lesson, in her own server --------------------------------------


def test_each_student_runs_lesson_05_in_her_own_server(students: dict[str, Student]) -> None:
    """The lesson's cells ran in each student's own single-user server.

    Her kernel knows its hub prefix (``JUPYTERHUB_SERVICE_PREFIX``), and in
    it Bob's widget shows what Alice said: the in-kernel server and the
    widgets work on the hub as on a laptop.
    """
    ports = set()
    for student in students.values():
        prefix = student.kernel.eval("__import__('os').environ['JUPYTERHUB_SERVICE_PREFIX']")
        assert prefix == repr(student.user.prefix)
        bob_saw = student.kernel.eval("any('can you see' in line for line in bob.lines)")
        assert bob_saw == "True"
        ports.add(student.port)
    assert len(ports) == len(students), "two students' chat servers on one port"


def test_each_students_chat_page_works_through_her_own_proxy_link(
    students: dict[str, Student],
) -> None:
    """A student's browser chats in her own room through ``/user/<her name>/proxy/<port>/``.

    The page's WebSocket goes browser -> CHP -> her single-user server ->
    jupyter-server-proxy -> the chat server in her kernel; a message typed in
    the page reaches Bob's widget, and Alice's widget reaches the page.
    """
    for student in students.values():
        page = open_page(student, student.own_proxy_link(student.port))
        try:
            page.wait_for_function("document.getElementById('status').textContent === 'open'")
            text = f"hello from {student.name}'s browser"
            page.fill("#message", text)
            page.click("#send")
            student.kernel.run(
                f"wait_for(lambda: any({text!r} in line for line in bob.lines))"
            ).raise_for_error()
            student.kernel.run("alice.send_text('hello, page')").raise_for_error()
            page.wait_for_function(
                "[...document.querySelectorAll('#messages li.in')]"
                ".some(li => li.textContent.includes('alice: hello, page'))"
            )
        finally:
            page.close()


# -- private by default: a classmate cannot get in (issue #10) -----------------------
#
# On a shared host every student reaches every loopback port, from her kernel
# and through her own /user/<her name>/proxy/<port>/ route. These prove that
# lesson 05's servers and taps let in only whoever holds their link.

#: ``?wslab_token=`` and the 22 URL-safe base64 characters of a server's secret.
TOKEN_QUERY = r"\?wslab_token=[A-Za-z0-9_-]{22}"

# Opens a WebSocket to ``path`` (relative to the page) and records its events.
OPEN_WS = """(path) => {
    window.events = [];
    const url = new URL(path, location.href);
    url.protocol = "ws:";
    const ws = new WebSocket(url.href);
    ws.onopen = () => { events.push("open"); ws.send("mallory was here"); };
    ws.onmessage = (event) => events.push("message " + event.data);
    ws.onclose = (event) => events.push("close " + event.code);
}"""


def kernel_json(student: Student, expression: str) -> Any:
    """Evaluate ``expression`` in her kernel and bring its value back as JSON."""
    result = student.kernel.run(f"import json; print(json.dumps({expression}))")
    return json.loads(result.raise_for_error().stdout)


def room_lines(student: Student) -> list[str]:
    """Everything Bob's widget showed in her room so far."""
    lines: list[str] = kernel_json(student, "bob.lines")
    return lines


def test_lessons_link_is_her_proxy_route_with_the_secret(students: dict[str, Student]) -> None:
    """Lesson 05's link is where her browser should go: her proxy route, with the secret.

    Under JupyterHub ``server.page_url`` is
    ``<JUPYTERHUB_SERVICE_PREFIX>proxy/<port>/?wslab_token=...`` (issue #10): a path
    on the hub, whatever its public name, carrying the server's secret.
    """
    for student in students.values():
        route = re.escape(f"{student.user.prefix}proxy/{student.port}/")
        assert re.fullmatch(route + TOKEN_QUERY, student.link), student.link
        assert student.link == student.own_proxy_link(student.port)


def test_classmate_cannot_open_the_page_through_her_own_proxy(
    students: dict[str, Student],
) -> None:
    """stu2 opens stu1's port through her own route, ``/user/stu2/proxy/<port>/``: 403.

    The hub lets her in (it is her route) and jupyter-server-proxy forwards
    the request to stu1's server on the shared host, which refuses it with a
    one-line reason instead of the chat page.
    """
    stu1, stu2 = students["stu1"], students["stu2"]
    page = stu2.browser.new_page()
    try:
        response = page.goto(stu2.public_url(f"{stu2.user.prefix}proxy/{stu1.port}/"))
        assert response.status == 403
        assert "<title>wslab chat" not in page.content()
    finally:
        page.close()


def test_classmate_cannot_join_or_read_through_her_own_proxy(
    students: dict[str, Student],
) -> None:
    """A WebSocket from stu2's browser to stu1's chat, through stu2's route, gets nothing.

    The proxy says 101 to the browser before it asks stu1's server, so the
    page sees ``open``, then a close; what she sends never reaches stu1's
    room, and what is said in the room never reaches her.
    """
    stu1, stu2 = students["stu1"], students["stu2"]
    page = open_page(stu2, f"{stu2.user.prefix}proxy/{stu1.port}/")
    try:
        page.evaluate(OPEN_WS, "chat?name=mallory")
        stu1.kernel.run("alice.send_text('secret plans')").raise_for_error()
        page.wait_for_function("window.events.some(e => e.startsWith('close'))")
        events: list[str] = page.evaluate("window.events")
    finally:
        page.close()
    assert not [event for event in events if event.startswith("message")], events
    assert not [line for line in room_lines(stu1) if "mallory" in line]


def test_classmate_cannot_join_or_read_from_her_kernel(students: dict[str, Student]) -> None:
    """From stu2's kernel, stu1's loopback port refuses her with a 403 that says why.

    ``wslab.Client("ws://127.0.0.1:<stu1's port>/chat?name=eve")``, the
    impersonation of issue #10, raises; a plain ``GET /`` gets a 403, not
    the page; nobody new joined stu1's room.
    """
    stu1, stu2 = students["stu1"], students["stu2"]
    before = room_lines(stu1)
    url = f"ws://127.0.0.1:{stu1.port}/chat?name=eve"
    result = stu2.kernel.run(f"wslab.Client({url!r})")
    assert result.error is not None, "stu2's kernel joined stu1's chat"
    assert "403" in result.error[1] and "token" in result.error[1], result.error[:2]
    status = stu2.kernel.run(
        "import urllib.error, urllib.request\n"
        "try:\n"
        f"    urllib.request.urlopen('http://127.0.0.1:{stu1.port}/', timeout=5)\n"
        "except urllib.error.HTTPError as error:\n"
        "    print(error.code)\n"
    )
    assert status.raise_for_error().stdout.strip() == "403"
    assert not [line for line in room_lines(stu1)[len(before) :] if "eve" in line]


def test_no_cookie_value_in_any_tap_record(students: dict[str, Student]) -> None:
    """stu1 chats through her tap in her browser; no cookie value is in any record.

    Through the hub, the proxy forwards every cookie of ``/user/stu1/``
    (her ``jupyterhub-user-stu1`` login among them) to the tap. The tap
    forwards the bytes unchanged but hides them in ``tap.records`` (raw data,
    text, ``str`` and ``repr``), in its repr, hex view and diagram. stu2
    opening the tap through her own route (the session hijack of issue #10) is
    refused, and leaves no cookie in the records either.
    """
    stu1, stu2 = students["stu1"], students["stu2"]
    stu1.kernel.run("hub_tap = chat.tap()").raise_for_error()
    tap_port = kernel_json(stu1, "hub_tap.port")
    tap_link: str = kernel_json(stu1, "hub_tap.page_url")
    assert re.fullmatch(re.escape(f"{stu1.user.prefix}proxy/{tap_port}/") + TOKEN_QUERY, tap_link)
    page = open_page(stu1, tap_link + "&name=tapped")
    try:
        page.wait_for_function("document.getElementById('status').textContent === 'open'")
        page.fill("#message", "through the tap")
        page.click("#send")
        stu1.kernel.run(
            "wait_for(lambda: any('tapped: through the tap' in line for line in bob.lines))"
        ).raise_for_error()
    finally:
        page.close()
    hijack = stu2.browser.new_page()
    try:
        response = hijack.goto(stu2.public_url(f"{stu2.user.prefix}proxy/{tap_port}/"))
        assert response.status == 403
    finally:
        hijack.close()
    records = kernel_json(
        stu1,
        "[[__import__('base64').b64encode(bytes(r.data)).decode(), r.text, str(r), repr(r)]"
        " for r in hub_tap.records]",
    )
    assert any("through the tap" in text for _, text, _, _ in records), "the tap saw no chat"
    views: list[str] = kernel_json(
        stu1,
        "[repr(hub_tap), hub_tap.hex_view(limit=2**20)._repr_html_(),"
        " hub_tap.diagram()._repr_html_()]",
    )
    recorded = "\n".join(
        "\n".join([base64.b64decode(data).decode("latin-1"), text, string, representation])
        for data, text, string, representation in records
    ) + "\n".join(views)
    cookies = [
        cookie["value"]
        for student in (stu1, stu2)
        for cookie in student.browser.cookies()
        if len(cookie["value"]) >= 16
    ]
    assert cookies, "the browsers have no cookies to look for"
    leaked = [value for value in cookies if value in recorded]
    assert not leaked, f"{len(leaked)} cookie values in stu1's tap records"


def test_classmate_joins_on_purpose_with_the_shared_link(students: dict[str, Student]) -> None:
    """With stu1's ``chat.url`` (token included), stu2's kernel joins stu1's room.

    Sharing on purpose still works, over loopback, with no browser and no
    cookie involved. This is also the control of the refusals above: the same port, from the
    same kernel, is refused only for lack of the secret.
    """
    stu1, stu2 = students["stu1"], students["stu2"]
    shared: str = kernel_json(stu1, "chat.url")
    stu2.kernel.run(
        f"friend = wslab.Client({shared + '&name=stu2'!r})\n"
        "friend.send('hello from stu2, on purpose')"
    ).raise_for_error()
    try:
        said = "stu2: hello from stu2, on purpose"
        stu1.kernel.run(
            f"wait_for(lambda: any({said!r} in line for line in bob.lines))"
        ).raise_for_error()
    finally:
        stu2.kernel.run("friend.close()").raise_for_error()


# -- what the hub's proxy does to WebSocket traffic ---------------------------------
#
# If one of these fails, jupyter-server-proxy (or CHP) changed, and the lessons
# that describe the proxy (05 and the closing/security lessons) must change too.

#: A page that opens a WebSocket next to itself and records its events.
WITNESS_PAGE = b"""<!doctype html><title>witness</title><script>
window.events = [];
window.open_ws = (path) => {
  const url = new URL(path, location.href);
  url.protocol = "ws:";
  const ws = new WebSocket(url.href);
  ws.onopen = () => events.push("open");
  ws.onmessage = (event) => events.push("message " + event.data);
  ws.onerror = () => events.push("error");
  ws.onclose = (event) => events.push(`close ${event.code} ${event.reason} ${event.wasClean}`);
  window.ws = ws;
};
</script>"""


@dataclass
class Witness:
    """An independent WebSocket server (websockets) that records what reaches it."""

    port: int
    requests: list[Request] = field(default_factory=list)
    #: ``(code, reason)`` of each close frame it received.
    closes: list[tuple[int | None, str | None]] = field(default_factory=list)


@pytest.fixture(scope="module")
def witness() -> Iterator[Witness]:
    """The witness server on a free loopback port; stopped at the end.

    ``GET /`` is :data:`WITNESS_PAGE`; a WebSocket on a path with ``refuse``
    gets a 403; otherwise it echoes, and on the message ``close 4001`` it
    closes with code 4001.
    """
    state = Witness(port=0)

    def process_request(connection: ServerConnection, request: Request) -> Response | None:
        state.requests.append(request)
        if "refuse" in request.path:
            return connection.respond(403, "Refused by the witness\n")
        if request.headers.get("Upgrade", "").lower() != "websocket":
            length = str(len(WITNESS_PAGE))
            headers = Headers({"Content-Type": "text/html", "Content-Length": length})
            return Response(200, "OK", headers, WITNESS_PAGE)
        return None

    def handler(ws: ServerConnection) -> None:
        for message in ws:
            if message == "close 4001":
                ws.close(4001, "bye from the server")
                break
            ws.send(f"echo {message}")
        state.closes.append((ws.close_code, ws.close_reason))

    with serve(handler, "127.0.0.1", 0, process_request=process_request) as server:
        state.port = server.socket.getsockname()[1]
        thread = threading.Thread(target=server.serve_forever)
        thread.start()
        try:
            yield state
        finally:
            server.shutdown()
            thread.join(10)


def witness_page(student: Student, witness: Witness) -> Any:
    """The witness page through the student's own proxy."""
    page = open_page(student, f"{student.user.prefix}proxy/{witness.port}/")
    page.wait_for_function("typeof window.open_ws === 'function'")
    return page


def page_events(page: Any, count: int) -> list[str]:
    """Wait until the page recorded ``count`` WebSocket events; return them."""
    page.wait_for_function(f"window.events.length >= {count}")
    events: list[str] = page.evaluate("window.events")
    return events


def test_proxy_sends_1005_when_the_browser_closes_with_1000(
    students: dict[str, Student], witness: Witness
) -> None:
    """A browser's ``close(1000, "closed by the user")`` reaches the server as 1005.

    jupyter-server-proxy closes its own upstream connection without a status
    code (``self.ws.close()``), so the server receives an empty close frame:
    1005, "no status received" (RFC 6455 section 7.1.5). The browser is
    answered by the proxy with its code and no reason.
    """
    page = witness_page(students["stu1"], witness)
    try:
        page.evaluate("open_ws('close-from-browser')")
        assert page_events(page, 1) == ["open"]
        before = len(witness.closes)
        page.evaluate("ws.close(1000, 'closed by the user')")
        wait_until(lambda: len(witness.closes) > before, 10, what="the server saw the close")
        assert witness.closes[before] == (1005, "")
        assert page_events(page, 2)[1] == "close 1000  true"
    finally:
        page.close()


def test_proxy_sends_1005_when_the_server_closes_with_4001(
    students: dict[str, Student], witness: Witness
) -> None:
    """A server's close code 4001 reaches the page as 1005 (no status received).

    The proxy relays messages, but when its upstream connection closes it
    closes the browser's connection without a code (``self.close()``).
    """
    page = witness_page(students["stu1"], witness)
    try:
        page.evaluate("open_ws('close-from-server')")
        assert page_events(page, 1) == ["open"]
        page.evaluate("ws.send('close 4001')")
        assert page_events(page, 2)[1] == "close 1005  true"
    finally:
        page.close()


def test_proxy_makes_its_own_handshake(students: dict[str, Student], witness: Witness) -> None:
    """The server sees the proxy's opening handshake, not the browser's.

    The ``Sec-WebSocket-Key`` differs from the one Chromium sent (captured
    with the DevTools protocol), so the ``Sec-WebSocket-Accept`` the page
    checks comes from the proxy. The proxy forwards the browser's ``Host``
    and ``Origin`` (the hub's public name, not a loopback address) and every
    cookie the browser sends to ``/user/<name>/``, including her
    ``jupyterhub-user-<name>`` login cookie; CHP adds ``X-Forwarded-For``,
    ``-Port`` and ``-Proto``.
    """
    student = students["stu1"]
    page = witness_page(student, witness)
    try:
        cdp = student.browser.new_cdp_session(page)
        sent: list[dict[str, str]] = []
        cdp.on(
            "Network.webSocketWillSendHandshakeRequest",
            lambda event: sent.append(event["request"]["headers"]),
        )
        cdp.send("Network.enable")
        before = len(witness.requests)
        page.evaluate("open_ws('handshake')")
        assert page_events(page, 1) == ["open"]
        wait_until(lambda: sent, 10, what="Chromium reported its handshake")

        def received_handshakes() -> list[Request]:
            return [r for r in witness.requests[before:] if r.path == "/handshake"]

        # The page's open event comes first: the proxy accepts the browser's
        # handshake before it opens its own to the server.
        wait_until(received_handshakes, 10, what="the server received the handshake")
        received = received_handshakes()[0]
        browser_key = sent[0]["Sec-WebSocket-Key"]
        assert received.headers["Sec-WebSocket-Key"] != browser_key
        hub_origin = student.public_url("")
        assert received.headers["Host"] == hub_origin.removeprefix("http://")
        assert received.headers["Origin"] == hub_origin
        assert sent[0]["Origin"] == hub_origin
        cookies = {
            c["name"]: c["value"]
            for c in student.browser.cookies(student.public_url(student.user.prefix))
        }
        login_cookie = cookies[f"jupyterhub-user-{student.name}"]
        assert login_cookie in received.headers["Cookie"]
        assert received.headers["X-Forwarded-For"] == "127.0.0.1"
        assert received.headers["X-Forwarded-Proto"] == "ws"
        assert received.headers["X-Forwarded-Port"] == hub_origin.rsplit(":", 1)[1]
    finally:
        page.close()


def test_proxy_turns_a_refused_handshake_into_open_then_1006(
    students: dict[str, Student], witness: Witness
) -> None:
    """A WebSocket the server refuses (403) looks opened, then dropped, to the page.

    The proxy accepts the browser's handshake (101) before it connects
    upstream; when the server answers 403 it drops the connection: the page
    sees ``open``, then ``close`` with 1006 and ``wasClean`` false (no
    ``error``), and never the status or its reason. (Straight to a server, a
    refused handshake gives ``error`` and ``close`` 1006, never ``open``.) A
    plain ``GET`` of a refused page does show the 403.
    """
    student = students["stu1"]
    page = witness_page(student, witness)
    try:
        page.evaluate("open_ws('refuse-me')")
        assert page_events(page, 2) == ["open", "close 1006  false"]
        response = page.goto(
            student.public_url(f"{student.user.prefix}proxy/{witness.port}/refuse")
        )
        assert response.status == 403
        assert "Refused by the witness" in page.content()
    finally:
        page.close()
