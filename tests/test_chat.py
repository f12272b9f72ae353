"""The chat rules (wslab.chat), sans I/O: names, notices, commands and the Room."""

from __future__ import annotations

import pytest

from wslab import chat
from wslab.chat import Delivery, Room


class TestNames:
    """A name is one line, never starts like a notice, and has a limit (issue #9 1)."""

    @pytest.mark.parametrize(
        ("raw", "clean"),
        [
            ("Alice", "Alice"),
            ("  Alice  ", "Alice"),
            ("* Admin", "Admin"),
            ("**Admin", "Admin"),
            ("Eve\n* Admin joined", "Eve * Admin joined"),
            ("a\tb\r\nc", "a b c"),
            ("x" * 100, "x" * chat.MAX_NAME),
            ("*", "guest"),
            ("", "guest"),
            # Invisible characters could hide a leading star or reverse the line.
            ("\u200b* Admin", "Admin"),
            ("\ufeff\u2060*Admin", "Admin"),
            ("\u202enimdA", "nimdA"),
            ("Ev\u2066e\u2069", "Eve"),
            ("Ev\x1b[2Je\x00\x7f", "Ev[2Je"),
            ("\u200b \u200b", "guest"),
            ("Zoë Ünal 李", "Zoë Ünal 李"),
            ("\uff0a Admin", "Admin"),  # a fullwidth star: "*" once normalised
            ("\u2217 Admin", "Admin"),  # the asterisk operator
            ("\u204e\u2731 Admin", "Admin"),  # low and heavy asterisks
        ],
    )
    def test_clean_name(self, raw: str, clean: str) -> None:
        assert chat.clean_name(raw) == clean
        assert not chat.clean_name(raw).startswith("*")
        assert len(chat.clean_name(raw)) <= chat.MAX_NAME

    def test_no_trailing_space_after_cutting(self) -> None:
        assert chat.clean_name("a" * (chat.MAX_NAME - 1) + " b") == "a" * (chat.MAX_NAME - 1)

    @pytest.mark.parametrize(
        ("path", "name"),
        [
            ("/chat?name=Ada", "Ada"),
            ("/chat?wslab_token=x&name=Ada%20L", "Ada L"),
            ("/chat?name=%2A%20Admin", "Admin"),
            ("/chat?name=", None),
            ("/chat?name=**", None),
            ("/chat", None),
        ],
    )
    def test_name_from_path(self, path: str, name: str | None) -> None:
        assert chat.name_from_path(path) == name


class TestNotices:
    def test_every_notice_starts_with_a_star(self) -> None:
        for notice in (chat.joined("A"), chat.left("A"), chat.renamed("A", "B")):
            assert notice.startswith(chat.NOTICE)
        assert chat.renamed("guest-3", "Alice") == "* guest-3 is now Alice"
        assert chat.format_message("Ada", "hi") == "Ada: hi"

    def test_parse_rename(self) -> None:
        assert chat.parse_rename("/name Bob") == "Bob"
        assert chat.parse_rename("/name * Root") == "Root"
        assert chat.parse_rename("/name ") == "guest"
        assert chat.parse_rename("/names") is None
        assert chat.parse_rename("hello /name x") is None


class TestRoom:
    def test_a_conversation(self) -> None:
        room = Room()
        assert room.join("a", "/chat?name=Ada") == Delivery("* Ada joined")
        assert room.join("b", "/chat") == Delivery("* guest-1 joined")
        assert room.receive("b", "/name Bob") == Delivery("* guest-1 is now Bob")
        assert room.receive("a", "hi") == Delivery("Ada: hi")
        assert room.receive("a", b"\x00") == Delivery(b"\x00", skip="a")
        assert room.leave("a") == Delivery("* Ada left")
        assert room.leave("a") is None
        assert room.names == {"b": "Bob"}
