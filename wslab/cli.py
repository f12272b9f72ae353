"""The ``wslab`` command: ``wslab serve`` runs a WebSocket server in a terminal.

``wslab serve --impl raw --handler echo --port 8080 --path /chat`` is the
Python counterpart of a tutorial's ``node server.js``: it serves the echo (or
chat) handler on ``ws://127.0.0.1:8080/chat`` and the browser chat page on
``http://127.0.0.1:8080/``, until Ctrl-C.

* ``--impl raw`` runs :class:`wslab.raw.RawServer`, written on the standard
  library and the wslab core: the whole protocol, by hand;
* ``--impl websockets`` runs :func:`wslab.server.run`, on the websockets library.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence

from . import __version__
from .errors import ServerStartError

__all__ = ["main"]

_EXAMPLES = """\
examples:
  wslab serve                              echo on ws://127.0.0.1:8080/chat
  wslab serve --handler chat --port 9000   a chat room on port 9000
  wslab serve --impl websockets            the same echo, on the websockets library
  wslab serve --port 0                     any free port (the URL is printed)

Open the printed page URL in a browser to chat, or connect any WebSocket client.
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wslab",
        description="Learn the WebSocket protocol (RFC 6455) by doing.",
    )
    parser.add_argument("--version", action="version", version=f"wslab {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        help="run a WebSocket server (echo or chat) until Ctrl-C",
        description="Run a WebSocket server in the foreground until Ctrl-C.\n"
        "It also serves a browser chat page on / of the same port.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument(
        "--impl",
        choices=("raw", "websockets"),
        default="raw",
        help="raw: wslab.raw, the from-scratch server on sockets and threads (default); "
        "websockets: wslab.serve on the websockets library",
    )
    serve.add_argument(
        "--handler",
        choices=("echo", "chat"),
        default="echo",
        help="echo answers 'You sent: <message>' and returns binary unchanged (default); "
        "chat broadcasts 'name: text' to everyone (name from ?name=...)",
    )
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: 127.0.0.1, this machine only; "
        "0.0.0.0 opens it to your network)",
    )
    serve.add_argument(
        "--port", type=int, default=8080, help="TCP port (default: 8080; 0 picks a free one)"
    )
    serve.add_argument(
        "--path", default="/chat", help="WebSocket path, e.g. /chat (default: /chat)"
    )
    serve.add_argument(
        "--origin",
        action="append",
        dest="origins",
        metavar="ORIGIN",
        help="also accept browsers from this Origin, e.g. http://localhost:3000 "
        "(repeatable; the server's own page is always accepted)",
    )
    serve.add_argument(
        "--max-size",
        type=int,
        default=2**20,
        help="largest message in bytes; bigger ones close with 1009 (default: 1 MiB)",
    )
    serve.add_argument(
        "--max-clients",
        type=int,
        default=64,
        help="most clients at once; more get HTTP 503 (default: 64)",
    )
    return parser


def _serve(args: argparse.Namespace) -> None:
    options = {
        "origins": args.origins,
        "max_size": args.max_size,
        "max_clients": args.max_clients,
        # Typing --host on the command line is the explicit opt-in that both
        # servers ask for before they listen on anything but loopback.
        "allow_remote": True,
    }
    if not args.path.startswith("/"):
        raise ServerStartError(f"--path must start with '/', e.g. /chat, got {args.path!r}")
    if args.impl == "raw":
        from . import raw

        def announce(server: raw.RawServer) -> None:
            print(
                f"Serving {server.url} (chat page: {server.page_url}); press Ctrl-C to stop.",
                flush=True,
            )

        raw.run(args.handler, args.host, args.port, args.path, announce=announce, **options)
    else:
        from . import server

        server.run(args.handler, args.host, args.port, args.path, **options)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``wslab`` command; return its exit code (2 for a bad start)."""
    # Print each line as it is written, even into a pipe, so the URL shows at once.
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command != "serve":
        parser.print_help()
        return 2
    _stop_on_ctrl_c()
    try:
        _serve(args)
    except ServerStartError as error:
        print(f"wslab serve: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass  # Ctrl-C during start-up: nothing to clean up.
    print("Stopped.")
    return 0


def _stop_on_ctrl_c() -> None:
    """Make Ctrl-C (SIGINT) stop the server, even if our parent ignores it.

    A shell starts background jobs (``make test &``, ``nohup``) with SIGINT
    ignored, and a child inherits that; Python then never installs its
    handler, so Ctrl-C, or a test's SIGINT, would do nothing at all.
    """
    if threading.current_thread() is threading.main_thread():  # main() may run in a thread
        signal.signal(signal.SIGINT, signal.default_int_handler)


if __name__ == "__main__":
    sys.exit(main())
