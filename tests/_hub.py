"""A real JupyterHub for tests: the hub, its proxy, users, their kernels.

The set-up a small course uses: one host, JupyterHub with
``configurable-http-proxy`` (CHP, from npm, ``tests/hub/package.json``) in
front, a dummy authenticator (any password) and ``SimpleLocalProcessSpawner``,
so every student's single-user server runs on this machine as this machine's
user, with ``jupyter-server-proxy`` inside. That is the shared host of issue
#10, where students can reach each other's loopback ports::

    from _hub import running_hub   # pytest puts tests/ on sys.path

    with running_hub(tmp_path) as hub:
        stu1, stu2 = hub.add_users("stu1", "stu2")   # started single-user servers
        with stu1.kernel() as kernel:        # a kernel in that server
            kernel.run("import wslab").raise_for_error()

Kernels are driven as JupyterLab drives them: the Jupyter REST API and the
kernel's WebSocket (``/api/kernels/<id>/channels``), through the hub's
proxy, with the user's own API token. No JupyterLab page is loaded.

Everything :func:`running_hub` starts (the hub, CHP, the single-user servers
and their kernels) is stopped when the ``with`` block ends, even when the
hub itself died: the processes are remembered as they appear and killed if
the polite shutdown leaves any behind.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import psutil
from _kernel import Result
from websockets.sync.client import ClientConnection, connect

__all__ = ["Hub", "HubUser", "RemoteKernel", "RemoteResult", "install_proxy", "running_hub"]

ROOT = Path(__file__).resolve().parent.parent
#: package.json and package-lock.json for configurable-http-proxy.
PROXY_DIR = Path(__file__).resolve().parent / "hub"
PROXY_BIN = PROXY_DIR / "node_modules" / ".bin" / "configurable-http-proxy"


def install_proxy() -> Path:
    """Install configurable-http-proxy with ``npm ci`` unless already installed.

    The installed tree is the cache: ``npm ci`` runs again only when
    ``package-lock.json`` is newer than the last install.

    Returns:
        The path of the ``configurable-http-proxy`` command.

    Raises:
        RuntimeError: ``npm ci`` failed (its last lines are in the message).
    """
    marker = PROXY_DIR / "node_modules" / ".package-lock.json"  # npm writes it last
    lock = PROXY_DIR / "package-lock.json"
    if PROXY_BIN.exists() and marker.exists() and marker.stat().st_mtime >= lock.stat().st_mtime:
        return PROXY_BIN
    result = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=PROXY_DIR,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0 or not PROXY_BIN.exists():
        raise RuntimeError(f"npm ci failed in {PROXY_DIR}:\n{result.stderr.strip()[-800:]}")
    return PROXY_BIN


def free_port() -> int:
    """A free loopback port (JupyterHub and CHP take no port 0)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# The hub's configuration, filled in by running_hub(). Every port is given,
# so two test runs (or two engineers) never collide.
_CONFIG = """\
c = get_config()  # noqa: F821
c.JupyterHub.bind_url = "http://127.0.0.1:{port}"
c.JupyterHub.hub_bind_url = "http://127.0.0.1:{hub_port}"
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api_port}"
c.ConfigurableHTTPProxy.command = [{proxy!r}]
c.ConfigurableHTTPProxy.pid_file = {base!r} + "/proxy.pid"
c.JupyterHub.db_url = "sqlite:///" + {base!r} + "/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = {base!r} + "/cookie_secret"
c.JupyterHub.pid_file = {base!r} + "/jupyterhub.pid"

# Any password logs in; only these users exist.
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allowed_users = set({users!r})

# Every user's server on this host as this machine's user: the shared host of
# issue #10 (The Littlest JupyterHub and LocalProcessSpawner are the same
# thing with one Unix account per student).
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = {base!r} + "/home/{{username}}"
c.Spawner.cmd = [{python!r}, "-m", "jupyterhub.singleuser"]
c.Spawner.args = {args!r}
# This checkout's wslab in every kernel.
c.Spawner.environment = {{"PYTHONPATH": {root!r}}}
c.Spawner.start_timeout = 60
c.Spawner.http_timeout = 60

# The test's own admin token: create users, start servers, make tokens.
c.JupyterHub.services = [{{"name": "wslab-test", "api_token": {api_token!r}}}]
c.JupyterHub.load_roles = [
    {{
        "name": "wslab-test",
        "scopes": ["admin:users", "admin:servers", "tokens"],
        "services": ["wslab-test"],
    }}
]
# POST /users/<name>/server answers at once (202), so both servers start together.
c.JupyterHub.tornado_settings = {{"slow_spawn_timeout": 0}}
c.JupyterHub.cleanup_servers = True
c.JupyterHub.cleanup_proxy = True
"""


@dataclass
class Hub:
    """A running JupyterHub.

    Attributes:
        url: The public URL (CHP), e.g. ``http://127.0.0.1:41234``; the
            browser and the API go through it, as on a real hub.
        api_token: The test service's admin token.
        base: The hub's working directory (database, logs, home dirs).
    """

    url: str
    api_token: str
    base: Path
    process: subprocess.Popen[bytes]
    log: Path
    users: dict[str, HubUser] = field(default_factory=dict)
    #: Every process seen under the hub: stopped at the end, whatever happens.
    processes: set[psutil.Process] = field(default_factory=set)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError as error:
            return f"(no log: {error})"

    def track(self) -> None:
        """Remember every process below the hub (CHP, servers, kernels) by now."""
        with suppress(psutil.Error):
            self.processes.update(psutil.Process(self.process.pid).children(recursive=True))

    def api(self, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
        """Call the hub's REST API (``/hub/api`` + ``path``) and decode its JSON."""
        return request_json(f"{self.url}/hub/api{path}", token or self.api_token, method, body)

    def add_users(self, *names: str) -> list[HubUser]:
        """Start these (allowed) users' servers at once; give each an API token.

        Returns:
            The users, in the order of ``names``, each with a ready server.
        """
        for name in names:
            self.api("POST", f"/users/{name}/server")
        deadline = time.monotonic() + 60
        for name in names:
            while not self.api("GET", f"/users/{name}")["servers"].get("", {}).get("ready"):
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"{name}'s server did not start:\n{self.log_tail()}")
                time.sleep(0.1)
            # A token with her own permissions: her server, nobody else's.
            token = self.api("POST", f"/users/{name}/tokens", {"note": "wslab test"})["token"]
            self.users[name] = HubUser(hub=self, name=name, token=token)
        self.track()
        return [self.users[name] for name in names]


@dataclass
class HubUser:
    """A student with a running single-user server."""

    hub: Hub
    name: str
    token: str

    @property
    def prefix(self) -> str:
        """Her server's path: JUPYTERHUB_SERVICE_PREFIX, e.g. ``/user/stu1/``."""
        return f"/user/{self.name}/"

    @property
    def server_url(self) -> str:
        return f"{self.hub.url}{self.prefix}"

    def api(self, method: str, path: str, body: Any = None) -> Any:
        """Call her Jupyter server's REST API (``/api`` + ``path``) with her token."""
        return request_json(f"{self.server_url}api{path}", self.token, method, body)

    def kernel(self) -> RemoteKernel:
        """Start a python3 kernel in her server (shut down on ``__exit__``)."""
        kernel = RemoteKernel(self)
        self.hub.track()
        return kernel

    def login(self, browser: Any, base: str | None = None) -> Any:
        """A new browser context logged in to the hub as her (the hub's login form).

        Args:
            browser: A Playwright browser.
            base: The hub's URL as the browser knows it (``hub.url`` by default).

        Returns:
            A Playwright ``BrowserContext``; its first page is on the hub's home.
        """
        base = base or self.hub.url
        context = browser.new_context()
        try:
            page = context.new_page()
            page.set_default_timeout(30_000)
            page.goto(f"{base}/hub/login?next=/hub/home")
            page.fill("input[name=username]", self.name)
            page.fill("input[name=password]", "any password")
            with page.expect_navigation():
                page.click("input[type=submit], button[type=submit]")
            if "/hub/home" not in page.url:
                raise AssertionError(
                    f"{self.name} not logged in: {page.url}\n{self.hub.log_tail()}"
                )
            page.close()
        except BaseException:
            context.close()
            raise
        return context


@dataclass
class RemoteResult(Result):
    """What one cell produced, plus the state of the widgets it created or changed."""

    #: The ``state`` of every widget the cell opened or updated (comm messages),
    #: e.g. ``{"value": "<a href=...>"}`` for an HTML widget.
    widgets: list[dict[str, Any]] = field(default_factory=list)


class RemoteKernel:
    """A kernel in a user's server, driven over its WebSocket as JupyterLab does.

    ``run()`` returns a :class:`_kernel.Result`, as the local kernels of
    ``tests/_kernel.py`` do, with the cell's widget states added.
    """

    def __init__(self, user: HubUser) -> None:
        self.user = user
        self.id: str = user.api("POST", "/kernels", {"name": "python3"})["id"]
        self.session = uuid.uuid4().hex
        ws_url = user.server_url.replace("http://", "ws://", 1)
        self._closing = ExitStack()
        try:
            self.ws: ClientConnection = self._closing.enter_context(
                connect(
                    f"{ws_url}api/kernels/{self.id}/channels?session_id={self.session}",
                    additional_headers={"Authorization": f"token {user.token}"},
                    max_size=None,
                    open_timeout=30,
                )
            )
            self._wait_ready()
        except BaseException:
            self.shutdown()
            raise

    def _message(self, msg_type: str, content: dict[str, Any]) -> dict[str, Any]:
        return {
            "header": {
                "msg_id": uuid.uuid4().hex,
                "msg_type": msg_type,
                "session": self.session,
                "username": self.user.name,
                "version": "5.3",
                "date": "",
            },
            "parent_header": {},
            "metadata": {},
            "content": content,
            "channel": "shell",
            "buffers": [],
        }

    def _wait_ready(self, timeout: float = 60) -> None:
        """Send kernel_info requests until the kernel answers one."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            request = self._message("kernel_info_request", {})
            self.ws.send(json.dumps(request))
            with suppress(TimeoutError):
                while True:
                    msg = json.loads(self.ws.recv(timeout=1))
                    if msg["msg_type"] == "kernel_info_reply":
                        return
        raise AssertionError(f"{self.user.name}'s kernel did not answer in {timeout} s")

    def run(self, code: str, timeout: float = 30) -> RemoteResult:
        """Execute ``code`` as one cell; collect what a notebook would show."""
        request = self._message(
            "execute_request",
            {
                "code": code,
                "silent": False,
                "store_history": True,
                "user_expressions": {},
                "allow_stdin": False,
                "stop_on_error": True,
            },
        )
        msg_id = request["header"]["msg_id"]
        self.ws.send(json.dumps(request))
        result = RemoteResult()
        deadline = time.monotonic() + timeout
        idle = replied = False
        while not (idle and replied):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"cell did not finish within {timeout} s:\n{code}")
            msg = json.loads(self.ws.recv(timeout=remaining))
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "execute_reply":
                result.status = content["status"]
                replied = True
            elif kind == "status":
                idle = content["execution_state"] == "idle"
            elif kind in ("comm_open", "comm_msg") and "state" in content.get("data", {}):
                result.widgets.append(content["data"]["state"])
            else:
                result.add(kind, content)
        return result

    def eval(self, expression: str) -> str:
        """The ``repr`` of an expression evaluated in the kernel."""
        return self.run(f"print(repr({expression}))").raise_for_error().stdout.strip()

    def shutdown(self) -> None:
        """Close the WebSocket and shut the kernel down (DELETE /api/kernels/<id>)."""
        with suppress(Exception):
            self._closing.close()
        with suppress(OSError, urllib.error.URLError):
            self.user.api("DELETE", f"/kernels/{self.id}")

    def __enter__(self) -> RemoteKernel:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown()


def request_json(url: str, token: str, method: str = "GET", body: Any = None) -> Any:
    """One HTTP request with ``Authorization: token ...``; the JSON answer or None."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Authorization": f"token {token}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = response.read()
    return json.loads(answer) if answer else None


@contextmanager
def running_hub(base: Path, users: tuple[str, ...] = ("stu1", "stu2")) -> Iterator[Hub]:
    """Start JupyterHub in ``base``; stop it and everything below it on exit.

    Args:
        base: An empty directory for the hub's files and the users' homes.
        users: The only user names the hub accepts.
    """
    proxy = install_proxy()
    port, hub_port, proxy_api_port = free_port(), free_port(), free_port()
    api_token = secrets.token_hex(32)
    # The single-user servers run as root here; Jupyter refuses that without the flag.
    args = ["--allow-root"] if os.geteuid() == 0 else []
    config = base / "jupyterhub_config.py"
    config.write_text(
        _CONFIG.format(
            port=port,
            hub_port=hub_port,
            proxy_api_port=proxy_api_port,
            proxy=str(proxy),
            base=str(base),
            users=sorted(users),
            python=sys.executable,
            args=args,
            root=str(ROOT),
            api_token=api_token,
        )
    )
    (base / "home").mkdir()
    log = base / "jupyterhub.log"
    env = dict(os.environ)
    # CHP is found by its path; node must be on PATH (it is a node script).
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(config)],
            cwd=base,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    hub = Hub(
        url=f"http://127.0.0.1:{port}", api_token=api_token, base=base, process=process, log=log
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise AssertionError(
                    f"jupyterhub exited ({process.returncode}):\n{hub.log_tail()}"
                )
            try:
                hub.api("GET", "/")
                break
            except (OSError, urllib.error.URLError):
                if time.monotonic() > deadline:
                    raise AssertionError(f"jupyterhub not up in 60 s:\n{hub.log_tail()}") from None
                time.sleep(0.1)
        hub.track()
        yield hub
    finally:
        _stop(hub)


def _stop(hub: Hub) -> None:
    """Stop the hub politely (it stops the servers), then kill whatever is left."""
    hub.track()
    if hub.process.poll() is None:
        # SIGTERM: the hub stops every server at once (cleanup_servers), their
        # kernels with them, and CHP (cleanup_proxy).
        hub.process.send_signal(signal.SIGTERM)
        try:
            hub.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            hub.process.kill()
            hub.process.wait(timeout=10)
    leftovers = [process for process in hub.processes if process.is_running()]
    for process in leftovers:
        with suppress(psutil.Error):
            process.terminate()
    _, alive = psutil.wait_procs(leftovers, timeout=5)
    for process in alive:
        with suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(alive, timeout=5)


def proxy_available() -> bool:
    """node and npm exist (CHP is a node program)."""
    return bool(shutil.which("node") and shutil.which("npm"))


if __name__ == "__main__":  # a manual check: start the hub, print its URL, wait
    import tempfile

    with tempfile.TemporaryDirectory() as tmp, running_hub(Path(tmp)) as hub:
        print(textwrap.dedent(f"hub: {hub.url}  (Ctrl-C stops it)"), flush=True)
        with suppress(KeyboardInterrupt):
            while hub.process.poll() is None:
                time.sleep(1)
