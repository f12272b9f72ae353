"""Check a WebSocket server against RFC 6455, in the spirit of the Autobahn|Testsuite.

Point it at any *echo* server (one that sends every message back) and it
plays over a hundred cases: frames of every length, pings and pongs,
reserved bits and opcodes, fragmentation, UTF-8, closing, masking, size
limits, the opening handshake and compression. Each case is graded as the
Autobahn|Testsuite grades it: OK, NON-STRICT (allowed, not preferred),
FAILED, INFORMATIONAL (the RFC leaves it open) or UNIMPLEMENTED (an optional
feature)::

    import wslab
    from wslab import conformance

    server = wslab.serve("echo", port=0)
    report = conformance.run(server.url)   # a table in a notebook
    report.failed                          # the cases that broke the RFC
    print(report["6.4.1"])                 # one case, with its wire log

    conformance.run(server.url, cases=["utf-8", "7.9"])   # some cases only

The package reads in layers: :mod:`~wslab.conformance.cases` (the cases, as
data), :mod:`~wslab.conformance.grading` (Autobahn's grading, pure),
:mod:`~wslab.conformance.wire` (forged frames), :mod:`~wslab.conformance.runner`
(the sockets) and :mod:`~wslab.conformance.report` (the table).
"""

from __future__ import annotations

from .cases import CASES, CATEGORIES, Case, Event, Expect, HandshakeCase, select
from .grading import Closing, Grade
from .report import CaseResult, Report
from .runner import run

__all__ = [
    "CASES",
    "CATEGORIES",
    "Case",
    "CaseResult",
    "Closing",
    "Event",
    "Expect",
    "Grade",
    "HandshakeCase",
    "Report",
    "run",
    "select",
]
