"""wslab: learn the WebSocket protocol (RFC 6455) by doing, in Jupyter.

The package is layered, and its file names show the layers:

* core, sans-I/O, for students to read: :mod:`wslab.handshake`,
  :mod:`wslab.frames`, :mod:`wslab.closing`, :mod:`wslab.connection`,
  :mod:`wslab.explain`;
* I/O: :mod:`wslab.raw` (a from-scratch server and client on the standard
  library), the in-kernel server, notebook clients and the wire tap;
* presentation: widgets and display helpers.

Importing wslab never patches asyncio; see ``wslab.enable_asyncio_run()``.
"""

from __future__ import annotations

import importlib
from typing import Any

from . import quiz
from .closing import Close, CloseCode, parse_close, serialize_close
from .connection import Connection, State
from .errors import (
    ConnectError,
    ConnectionClosed,
    HandshakeError,
    LoopBlockedError,
    ProtocolError,
    ServerStartError,
    WSLabError,
)
from .explain import explain
from .frames import Frame, FrameDecoder, Opcode, Side, apply_mask, encode, new_mask_key
from .handshake import GUID, accept_key, new_key
from .jupyter import install_ipython_hooks

__version__ = "0.1.0"

__all__ = [
    "GUID",
    "AsyncClient",
    "ChatClient",
    "Client",
    "Close",
    "CloseCode",
    "ConnectError",
    "Connection",
    "ConnectionClosed",
    "Frame",
    "FrameDecoder",
    "FrameExplorer",
    "HandshakeError",
    "LoopBlockedError",
    "Opcode",
    "ProtocolError",
    "RawClient",
    "RawServer",
    "Server",
    "ServerStartError",
    "Side",
    "State",
    "Tap",
    "TrafficLog",
    "WSLabError",
    "__version__",
    "accept_key",
    "apply_mask",
    "conformance",
    "enable_asyncio_run",
    "encode",
    "explain",
    "lessons",
    "new_key",
    "new_mask_key",
    "parse_close",
    "practice",
    "quiz",
    "serialize_close",
    "serve",
    "servers",
    "stop_all",
]

# The I/O and presentation layers import asyncio, websockets and ipywidgets;
# load them on first use so that the core stays light to import.
_LAZY: dict[str, str] = {
    "AsyncClient": ".client",
    "Client": ".client",
    "RawClient": ".raw",
    "RawServer": ".raw",
    "Server": ".server",
    "enable_asyncio_run": ".jupyter",
    "serve": ".server",
    "servers": ".server",
    "stop_all": ".server",
    "Tap": ".tap",
    "ChatClient": ".widgets",
    "TrafficLog": ".widgets",
    "FrameExplorer": ".widgets",
}


# Modules the lessons reach as attributes of the package, loaded on first use.
_SUBMODULES = ("conformance", "lessons", "practice")


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:  # e.g. wslab.conformance.run(url) after a bare `import wslab`
        return importlib.import_module(f".{name}", __name__)
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'wslab' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


# Hooks, not patches: in IPython, the asyncio.run() RuntimeError gets a hint
# naming the two fixes, and re-running a cell replaces its servers (wslab.jupyter).
install_ipython_hooks()
