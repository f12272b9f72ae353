"""The chat rules, sans I/O: names, notices and commands of the chat room.

Both chat handlers (``wslab.handlers.Chat`` on asyncio and the raw server's
``ChatHandler`` on threads) follow these rules, and the browser page and the
``ChatClient`` widget rely on them:

* a client picks its name with the ``?name=`` query parameter of the
  WebSocket URL, or at any time by sending ``/name Alice``; without either it
  is ``guest-N``;
* every text message goes to everyone, the sender included, as
  ``Alice: <message>``;
* notices start with ``* ``: ``* Alice joined``, ``* Alice left``,
  ``* guest-3 is now Alice``; a name never starts with ``*`` and never spans
  two lines, so nobody can fake a notice;
* binary messages go unchanged to everyone else.

:class:`Room` applies them: feed it what happened (a join, a message, a
leave) and it says what to send, and to whom; the handler does the sending.
"""

from __future__ import annotations

import itertools
import unicodedata
import urllib.parse
from collections.abc import Hashable
from dataclasses import dataclass

__all__ = [
    "MAX_NAME",
    "NAME_COMMAND",
    "Delivery",
    "Room",
    "clean_name",
    "format_message",
    "joined",
    "left",
    "name_from_path",
    "parse_rename",
    "renamed",
]

#: The longest chat name, in characters; longer names are cut.
MAX_NAME = 32
#: The text command that renames the sender.
NAME_COMMAND = "/name "
#: What every notice starts with; no name can.
NOTICE = "* "
#: Stars a name may not start with: "*" and the look-alikes that Unicode's
#: NFKC normalisation leaves as they are (asterisk operator, low asterisk,
#: heavy asterisk). Fullwidth and small asterisks become "*" under NFKC.
_STARS = "*\u2217\u204e\u2731"


def clean_name(name: str, fallback: str = "guest") -> str:
    """Make a name safe to show: one line, no leading ``*``, at most MAX_NAME characters.

    Invisible characters go too: control characters, and format characters
    such as zero-width spaces and bidi overrides (Unicode categories Cc and
    Cf). Otherwise ``"\\u200b* Admin"`` would keep its star behind a
    zero-width space, and a name that starts with U+202E would reverse the
    whole chat line: either could show a fake notice. Look-alike stars
    (``"\uff0a Admin"``, fullwidth) are compatibility-normalised (NFKC) or
    stripped like ``*``.

    >>> clean_name("  * Admin\\nsays ")
    'Admin says'
    >>> clean_name("***")
    'guest'
    >>> clean_name("\\u200b* Admin")
    'Admin'
    """
    words = (
        "".join(c for c in word if unicodedata.category(c) not in ("Cc", "Cf"))
        for word in unicodedata.normalize("NFKC", str(name)).split()  # also newlines, tabs
    )
    one_line = " ".join(word for word in words if word)
    return one_line.lstrip(_STARS + " ")[:MAX_NAME].rstrip() or fallback


def name_from_path(path: str) -> str | None:
    """The cleaned ``name`` query parameter of a request path, if it has one.

    >>> name_from_path("/chat?name=Alice&wslab_token=x")
    'Alice'
    """
    query = urllib.parse.urlsplit(path).query
    names = urllib.parse.parse_qs(query).get("name")
    if not names or not clean_name(names[0], ""):
        return None
    return clean_name(names[0])


def guest_name(number: int) -> str:
    """The name of the ``number``-th client that chose none."""
    return f"guest-{number}"


def joined(name: str) -> str:
    return f"{NOTICE}{name} joined"


def left(name: str) -> str:
    return f"{NOTICE}{name} left"


def renamed(old: str, new: str) -> str:
    return f"{NOTICE}{old} is now {new}"


def format_message(name: str, text: str) -> str:
    """A chat line as everyone sees it: ``Alice: hello``."""
    return f"{name}: {text}"


def parse_rename(text: str) -> str | None:
    """The cleaned new name if ``text`` is the ``/name`` command, else None.

    >>> parse_rename("/name  Bob "), parse_rename("hello")
    ('Bob', None)
    """
    if not text.startswith(NAME_COMMAND):
        return None
    return clean_name(text[len(NAME_COMMAND) :])


@dataclass(frozen=True)
class Delivery:
    """What to send after an event: ``message`` to every member but ``skip``."""

    message: str | bytes
    skip: Hashable | None = None


class Room:
    """Who is in the room, under which name; what each event sends, sans I/O.

    Members are whatever the handler uses to tell connections apart (a
    connection object, a peer). The handler serialises calls (one loop, or a
    lock), delivers each :class:`Delivery`, and decides what to do with a
    member that does not read.

    Example::

        room = Room()
        room.join(ws, "/chat?name=Ada")    # Delivery('* Ada joined')
        room.receive(ws, "hello")          # Delivery('Ada: hello')
        room.leave(ws)                     # Delivery('* Ada left')
    """

    def __init__(self) -> None:
        self.names: dict[Hashable, str] = {}
        self._numbers = itertools.count(1)

    def __repr__(self) -> str:
        return f"<chat Room with {len(self.names)} member(s)>"

    def join(self, member: Hashable, path: str = "") -> Delivery:
        """A member arrived with this request path (its ``?name=``, if any)."""
        name = name_from_path(path) or guest_name(next(self._numbers))
        self.names[member] = name
        return Delivery(joined(name))

    def receive(self, member: Hashable, message: str | bytes) -> Delivery:
        """A member sent a message: a rename, a chat line, or binary data."""
        if isinstance(message, bytes):
            return Delivery(message, skip=member)
        new = parse_rename(message)
        if new is not None:
            old, self.names[member] = self.names[member], new
            return Delivery(renamed(old, new))
        return Delivery(format_message(self.names[member], message))

    def leave(self, member: Hashable) -> Delivery | None:
        """A member left; None if it was not (or no longer) in the room."""
        name = self.names.pop(member, None)
        return None if name is None else Delivery(left(name))
