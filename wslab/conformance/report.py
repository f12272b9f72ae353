"""The results of a conformance run: a table in a notebook, plain text elsewhere."""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from ..rules import redact
from .cases import CATEGORIES, AnyCase, Case
from .grading import Grade, Verdict

__all__ = ["CaseResult", "Report"]

#: Cell colours, as in Autobahn's reports.
_COLOURS = {
    Grade.OK: "#c6efce",
    Grade.NON_STRICT: "#ffeb9c",
    Grade.FAILED: "#ffc7ce",
    Grade.INFORMATIONAL: "#ddebf7",
    Grade.UNIMPLEMENTED: "#e7e6e6",
}


@dataclass(frozen=True)
class CaseResult:
    """One case's outcome.

    Attributes:
        case: The case.
        verdict: Its grades: ``result``, and Autobahn's ``behavior`` and ``closing``.
        what: What happened, in one line.
        log: The frames (or HTTP heads) both ways.
        duration: Seconds the case took.
    """

    case: AnyCase
    verdict: Verdict
    what: str
    log: list[str]
    duration: float

    def __repr__(self) -> str:
        reason = f": {self.verdict.reason}" if self.verdict.reason else ""
        return f"<CaseResult {self.id} {self.result}{reason}>"

    @property
    def id(self) -> str:
        """The case id, e.g. ``"6.4.1"``."""
        return self.case.id

    @property
    def result(self) -> Grade:
        """The overall grade."""
        return self.verdict.result

    def __str__(self) -> str:
        """Every detail: the case, the expectation, the grades and the wire log."""
        case, verdict = self.case, self.verdict
        lines = [
            f"Case {case.id} ({case.category}, {_section(case.section)}): {verdict.result}",
            f"  Sent:     {case.description}",
            f"  Expected: {case.expect}",
            f"  Happened: {self.what}",
        ]
        if verdict.reason:
            lines.append(f"  Why:      {verdict.reason}")
        grades = f"behaviour {verdict.behavior}"
        if verdict.closing is not None:
            grades += f", closing {verdict.closing}"
        lines.append(
            f"  Autobahn: {grades}" + (f" (follows case {case.autobahn})" if case.autobahn else "")
        )
        lines.append(f"  Took:     {self.duration:.2f} s")
        lines.append("  Wire log:")
        lines += ["    " + redact(line).replace("\n", "\n    ") for line in self.log]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(str(self))}</pre>"


class Report:
    """The results of :func:`wslab.conformance.run`.

    In a notebook it shows as a table (the failures first); ``print(report)``
    gives the same as text. ``report["6.4.1"]`` is one case's
    :class:`CaseResult`, whose ``print()`` shows every detail.

    Attributes:
        url: The server checked.
        results: One :class:`CaseResult` per case, in case order.
        duration: Seconds the whole run took.
        echo_prefix: What the server put in front of echoed text.
        notes: Warnings about the run itself (a server that does not echo...).
    """

    def __init__(
        self,
        url: str,
        results: list[CaseResult],
        duration: float,
        echo_prefix: str = "",
        notes: list[str] | None = None,
    ) -> None:
        self.url = url
        self.results = results
        self.duration = duration
        self.echo_prefix = echo_prefix
        self.notes = notes or []

    # -- looking things up ------------------------------------------------------

    def __getitem__(self, case_id: str) -> CaseResult:
        for result in self.results:
            if result.id == case_id:
                return result
        raise KeyError(f"no case {case_id!r} in this report")

    def __iter__(self) -> Iterator[CaseResult]:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def with_result(self, grade: Grade | str) -> list[CaseResult]:
        """The cases graded ``grade`` (``"FAILED"``, ``Grade.OK``...)."""
        return [result for result in self.results if result.result == grade]

    @property
    def failed(self) -> list[CaseResult]:
        """The FAILED cases: rules of the RFC the server broke."""
        return self.with_result(Grade.FAILED)

    @property
    def non_strict(self) -> list[CaseResult]:
        """The NON-STRICT cases: allowed, but not what the RFC prefers."""
        return self.with_result(Grade.NON_STRICT)

    @property
    def ok(self) -> list[CaseResult]:
        """The OK cases."""
        return self.with_result(Grade.OK)

    @property
    def counts(self) -> dict[Grade, int]:
        """How many cases got each grade, in the order of :class:`Grade`."""
        counted = Counter(result.result for result in self.results)
        return {grade: counted[grade] for grade in Grade if counted[grade]}

    def by_category(self) -> dict[str, dict[Grade, int]]:
        """The counts of each grade in each category."""
        table: dict[str, Counter[Grade]] = {}
        for result in self.results:
            table.setdefault(result.case.category, Counter())[result.result] += 1
        order = {name: index for index, name in enumerate(CATEGORIES)}
        return {name: dict(table[name]) for name in sorted(table, key=lambda n: order.get(n, 99))}

    @property
    def summary(self) -> str:
        """One line: how many cases, of each grade, in how long."""
        counts = ", ".join(f"{count} {grade}" for grade, count in self.counts.items())
        # A private server's URL carries its token: never print it into a notebook.
        where = redact(self.url)
        return f"{len(self.results)} cases against {where}: {counts} ({self.duration:.1f} s)"

    # -- showing ------------------------------------------------------------------

    def _sorted(self) -> list[CaseResult]:
        """The failures first, then NON-STRICT, then the rest, each in case order."""
        rank = {Grade.FAILED: 0, Grade.NON_STRICT: 1}
        return sorted(self.results, key=lambda result: rank.get(result.result, 2))

    def __str__(self) -> str:
        lines = [self.summary, *(f"Note: {note}" for note in self.notes)]
        if self.echo_prefix:
            lines.append(f"(the server prefixes echoed text with {self.echo_prefix!r})")
        for result in self._sorted():
            line = f"{result.id:<8} {result.result!s:<14} {result.case.description}"
            lines.append(line)
            if result.result is not Grade.OK:
                lines.append(f"{'':23}{result.verdict.reason or result.what}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<Report {self.summary}>"

    def _repr_html_(self) -> str:
        rows = [
            "<tr>"
            f"<td>{html.escape(result.id)}</td>"
            f"<td>{html.escape(result.case.section)}</td>"
            f"<td style='text-align:left'>{html.escape(result.case.description)}</td>"
            f"<td style='background:{_COLOURS[result.result]}'><b>{result.result}</b></td>"
            f"<td style='text-align:left'>{_happened(result)}</td>"
            "</tr>"
            for result in self._sorted()
        ]
        notes = "".join(f"<p><b>Note:</b> {html.escape(note)}</p>" for note in self.notes)
        categories = " · ".join(
            f"{html.escape(name)}: "
            + ", ".join(
                f"<span style='background:{_COLOURS[grade]}'>{count}&nbsp;{grade}</span>"
                for grade, count in sorted(
                    counts.items(), key=lambda item: list(Grade).index(item[0])
                )
            )
            for name, counts in self.by_category().items()
        )
        head = (
            "<tr><th>Case</th><th>RFC 6455 §</th><th>Sent</th><th>Result</th>"
            "<th>What happened</th></tr>"
        )
        hint = (
            "<p style='font-size:smaller'>Details of one case: "
            '<code>print(report["6.4.1"])</code>. Results follow Autobahn|Testsuite\'s '
            "grading: NON-STRICT is allowed but not preferred; INFORMATIONAL means the RFC "
            "leaves it open.</p>"
        )
        return (
            f"<p><b>{html.escape(self.summary)}</b></p>{notes}"
            f"<p style='font-size:smaller'>{categories}</p>{hint}"
            "<div style='max-height:32em;overflow:auto'>"
            f"<table>{head}{''.join(rows)}</table></div>"
        )


def _section(section: str) -> str:
    """``"5.2"`` -> ``"RFC 6455 section 5.2"``; other RFCs are named already."""
    return section if section.startswith("RFC") else f"RFC 6455 section {section}"


def _happened(result: CaseResult) -> str:
    text = html.escape(result.what)
    if result.verdict.reason:
        text += f"<br><i>{html.escape(result.verdict.reason)}</i>"
    closing = result.verdict.closing
    if isinstance(result.case, Case) and closing is not None and closing.value != "OK":
        text += f"<br><small>Autobahn closing behaviour: {closing}</small>"
    return text
