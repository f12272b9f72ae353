"""Close frames and close codes (RFC 6455 sections 5.5.1, 7.1 and 7.4).

A close frame's payload is either empty, or a 2-byte big-endian status code
followed by a UTF-8 reason. Everything here is pure: bytes in, values out.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from .errors import ProtocolError

__all__ = [
    "MAX_REASON_BYTES",
    "Close",
    "CloseCode",
    "is_valid_wire_code",
    "parse_close",
    "serialize_close",
]

#: A control frame carries at most 125 bytes (section 5.5); 2 go to the code.
MAX_REASON_BYTES = 123


class CloseCode(IntEnum):
    """The status codes of RFC 6455 section 7.4.1 (and the IANA registry, 11.7).

    ``CloseCode(1009).description`` quotes what the RFC says the code means.
    """

    NORMAL_CLOSURE = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    RESERVED = 1004
    NO_STATUS_RCVD = 1005
    ABNORMAL_CLOSURE = 1006
    INVALID_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_GATEWAY = 1014
    TLS_HANDSHAKE = 1015

    @property
    def meaning(self) -> str:
        """A short human name, e.g. ``'normal closure'``."""
        return self.name.replace("_", " ").lower()

    @property
    def description(self) -> str:
        """What section 7.4.1 (or the IANA registry) says the code means."""
        return _DESCRIPTIONS[self]


# What section 7.4.1 says, word for word (codes 1012-1014 are not in RFC 6455:
# they were added later to the IANA registry that section 11.7 created).
_DESCRIPTIONS: dict[int, str] = {
    1000: (
        "1000 indicates a normal closure, meaning that the purpose for which "
        "the connection was established has been fulfilled."
    ),
    1001: (
        '1001 indicates that an endpoint is "going away", such as a server going '
        "down or a browser having navigated away from a page."
    ),
    1002: "1002 indicates that an endpoint is terminating the connection due to a protocol error.",
    1003: (
        "1003 indicates that an endpoint is terminating the connection because it "
        "has received a type of data it cannot accept (e.g., an endpoint that "
        "understands only text data MAY send this if it receives a binary message)."
    ),
    1004: "Reserved. The specific meaning might be defined in the future.",
    1005: (
        "1005 is a reserved value and MUST NOT be set as a status code in a Close "
        "control frame by an endpoint. It is designated for use in applications "
        "expecting a status code to indicate that no status code was actually present."
    ),
    1006: (
        "1006 is a reserved value and MUST NOT be set as a status code in a Close "
        "control frame by an endpoint. It is designated for use in applications "
        "expecting a status code to indicate that the connection was closed "
        "abnormally, e.g., without sending or receiving a Close control frame."
    ),
    1007: (
        "1007 indicates that an endpoint is terminating the connection because it "
        "has received data within a message that was not consistent with the type of "
        "the message (e.g., non-UTF-8 [RFC3629] data within a text message)."
    ),
    1008: (
        "1008 indicates that an endpoint is terminating the connection because it "
        "has received a message that violates its policy. This is a generic status "
        "code that can be returned when there is no other more suitable status code "
        "(e.g., 1003 or 1009) or if there is a need to hide specific details about "
        "the policy."
    ),
    1009: (
        "1009 indicates that an endpoint is terminating the connection because it "
        "has received a message that is too big for it to process."
    ),
    1010: (
        "1010 indicates that an endpoint (client) is terminating the connection "
        "because it has expected the server to negotiate one or more extension, but "
        "the server didn't return them in the response message of the WebSocket "
        "handshake."
    ),
    1011: (
        "1011 indicates that a server is terminating the connection because it "
        "encountered an unexpected condition that prevented it from fulfilling the "
        "request."
    ),
    1012: 'IANA registry (not RFC 6455): "Service Restart".',
    1013: 'IANA registry (not RFC 6455): "Try Again Later".',
    1014: 'IANA registry (not RFC 6455): "Bad Gateway".',
    1015: (
        "1015 is a reserved value and MUST NOT be set as a status code in a Close "
        "control frame by an endpoint. It is designated for use in applications "
        "expecting a status code to indicate that the connection was closed due to a "
        "failure to perform a TLS handshake (e.g., the server certificate can't be "
        "verified)."
    ),
}


#: Codes that describe what happened locally and never travel on the wire.
NEVER_SENT = frozenset({1005, 1006, 1015})


def is_valid_wire_code(code: int) -> bool:
    """Return whether ``code`` may appear in a close frame on the wire.

    Section 7.4.2: 0-999 are unused, 1000-2999 are for the protocol (only the
    defined ones are valid, never 1004, 1005, 1006 or 1015), 3000-3999 are
    "for use by libraries, frameworks, and applications", registered with
    IANA, and 4000-4999 are "reserved for private use".
    """
    _require_int(code, "code")
    if 1000 <= code <= 2999:
        return code in CloseCode.__members__.values() and code not in NEVER_SENT | {1004}
    return 3000 <= code <= 4999


@dataclass(frozen=True)
class Close:
    """The content of a close frame: a status code and a reason.

    ``Close(1005, "")`` stands for an empty close frame, which is how the
    RFC reports "no status code was present" (section 7.1.5).
    """

    code: int = CloseCode.NORMAL_CLOSURE
    reason: str = ""

    def __str__(self) -> str:
        try:
            name = f" ({CloseCode(self.code).meaning})"
        except ValueError:
            name = " (registered)" if 3000 <= self.code <= 3999 else " (private)"
        return f"{self.code}{name}" + (f" {self.reason}" if self.reason else "")


def serialize_close(code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> bytes:
    """Build the payload of a close frame (section 5.5.1).

    Args:
        code: A status code that is valid on the wire (see
            :func:`is_valid_wire_code`). Pass ``1005`` to build the empty
            payload, which means "no status code" (then ``reason`` must be empty).
        reason: At most 123 bytes once UTF-8 encoded. Section 5.5.1: it is
            "not necessarily human readable but may be useful for debugging",
            and "clients MUST NOT show it to end users".

    Raises:
        ValueError: The code may not be sent, or the reason is too long.
        TypeError: ``code`` is not an int or ``reason`` not a str.
    """
    _require_int(code, "code")
    if not isinstance(reason, str):
        raise TypeError(f"reason must be a str, got {type(reason).__name__}")
    if code == CloseCode.NO_STATUS_RCVD:
        if reason:
            raise ValueError("a close frame without a code cannot carry a reason (5.5.1)")
        return b""
    if not is_valid_wire_code(code):
        raise ValueError(
            f"close code {code} may not be sent: use 1000-1003, 1007-1014 "
            "or 3000-4999 (RFC 6455 section 7.4)"
        )
    encoded = reason.encode()
    if len(encoded) > MAX_REASON_BYTES:
        raise ValueError(
            f"close reason is {len(encoded)} bytes once UTF-8 encoded; "
            f"the limit is {MAX_REASON_BYTES} (125-byte control frame, section 5.5)"
        )
    return struct.pack("!H", code) + encoded


def parse_close(payload: bytes) -> Close:
    """Read the payload of a close frame received from the peer.

    Returns:
        The code and reason; ``Close(1005, "")`` for an empty payload.

    Raises:
        ProtocolError: 1002 for a 1-byte payload or a code that is invalid on
            the wire, 1007 for a reason that is not UTF-8.
    """
    payload = _require_bytes(payload, "payload")
    if len(payload) == 0:
        return Close(CloseCode.NO_STATUS_RCVD, "")
    if len(payload) == 1:
        raise ProtocolError("close frame payload of 1 byte: a code takes 2 bytes (5.5.1)")
    (code,) = struct.unpack("!H", payload[:2])
    if not is_valid_wire_code(code):
        raise ProtocolError(f"close code {code} is not valid on the wire (7.4)")
    try:
        reason = payload[2:].decode()
    except UnicodeDecodeError:
        raise ProtocolError("close reason is not valid UTF-8 (5.5.1)", 1007) from None
    return Close(code, reason)


def _require_int(value: object, name: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")


def _require_bytes(value: object, name: str) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise TypeError(f"{name} must be bytes, got {type(value).__name__}")
    return bytes(value)
