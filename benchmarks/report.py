"""The results table."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field


@dataclass
class Row:
    """One line of the results table."""

    measurement: str
    value: str
    rss: str = ""
    ratio: str = ""
    target: str = ""
    ok: bool | None = None

    @property
    def verdict(self) -> str:
        return "" if self.ok is None else ("pass" if self.ok else "**FAIL**")


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)
    errors: int = 0

    def run(self, line: str) -> None:
        """Keep one run's line for RESULTS.md and show it now (on stderr)."""
        self.runs.append(line)
        print(line, file=sys.stderr, flush=True)

    def table(self) -> str:
        lines = [
            "| measurement | median | peak RSS | ratio | target | result |",
            "|---|---|---|---|---|---|",
        ]
        for r in self.rows:
            lines.append(
                f"| {r.measurement} | {r.value} | {r.rss} | {r.ratio} | {r.target} | {r.verdict} |"
            )
        return "\n".join(lines)
