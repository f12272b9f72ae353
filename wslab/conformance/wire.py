"""Bytes for the conformance checker to send, including the ones the RFC forbids.

:func:`wslab.frames.encode` refuses to build a frame that breaks a rule of
section 5 (a reserved opcode, a reserved bit, a 126-byte ping...), which is
what a normal client wants. A conformance checker wants exactly those frames,
to see whether the server notices, so :func:`forge` writes the header by hand
from the diagram of section 5.2 and checks nothing but the sizes of the fields.

Everything here is pure: values in, bytes out.
"""

from __future__ import annotations

import struct
import zlib

from ..frames import new_mask_key
from ..utils import apply_mask

__all__ = ["DEFLATE_TAIL", "deflate", "forge", "inflater"]

#: The 4 bytes that end every message compressed with a sync flush; RFC 7692
#: section 7.2.1 removes them before sending and section 7.2.2 adds them back.
DEFLATE_TAIL = b"\x00\x00\xff\xff"


def forge(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    masked: bool = True,
    mask_key: bytes | None = None,
    length_bits: int | None = None,
    length_field: int | None = None,
) -> bytes:
    """Build the bytes of one client frame, valid or not (section 5.2).

    Args:
        opcode: 0 to 15, reserved values included.
        payload: The application data, before masking.
        fin: The FIN bit.
        rsv: The three reserved bits as a number from 0 to 7, as the
            Autobahn|Testsuite writes them: 4 is RSV1, 2 is RSV2, 1 is RSV3.
        masked: Whether to set the MASK bit and mask the payload. A client
            must (section 5.1); False makes a frame the server must refuse.
        mask_key: A fixed 4-byte key; a fresh random one if None.
        length_bits: 16 or 64 to write the length in a longer form than
            needed (section 5.2 asks senders for the shortest one).
        length_field: A length to announce instead of ``len(payload)``, for a
            header that promises more bytes than follow.

    Raises:
        ValueError: A field does not fit in its bits.
    """
    if not 0 <= opcode <= 0x0F:
        raise ValueError(f"opcode must be 0 to 15 (4 bits), got {opcode}")
    if not 0 <= rsv <= 7:
        raise ValueError(f"rsv must be 0 to 7 (3 bits), got {rsv}")
    if length_bits not in (None, 7, 16, 64):
        raise ValueError(f"length_bits must be 7, 16 or 64, got {length_bits}")
    first = (0x80 if fin else 0) | rsv << 4 | opcode
    length = len(payload) if length_field is None else length_field
    if length_bits is None:
        length_bits = 7 if length < 126 else 16 if length < 2**16 else 64
    mask_bit = 0x80 if masked else 0
    if length_bits == 7:
        if length > 125:
            raise ValueError(f"a length of {length} does not fit in 7 bits")
        header = struct.pack("!BB", first, mask_bit | length)
    elif length_bits == 16:
        if length >= 2**16:
            raise ValueError(f"a length of {length} does not fit in 16 bits")
        header = struct.pack("!BBH", first, mask_bit | 126, length)
    else:
        header = struct.pack("!BBQ", first, mask_bit | 127, length)
    if not masked:
        return header + payload
    key = new_mask_key() if mask_key is None else mask_key
    return header + key + apply_mask(payload, key)


def deflate(data: bytes) -> bytes:
    """Compress one message for permessage-deflate (RFC 7692 section 7.2.1).

    A fresh compressor for every message never refers back to an earlier
    one, which every server must accept: "no context takeover" is always
    allowed to the sender.
    """
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    data = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return data[: -len(DEFLATE_TAIL)] if data.endswith(DEFLATE_TAIL) else data


def inflater() -> zlib._Decompress:
    """A decompressor for the server's messages (RFC 7692 section 7.2.2).

    Feed it every compressed fragment of a message, then :data:`DEFLATE_TAIL`
    after the last one. Keep it for the whole connection: the server may
    refer back to its earlier messages (context takeover).
    """
    return zlib.decompressobj(wbits=-zlib.MAX_WBITS)
