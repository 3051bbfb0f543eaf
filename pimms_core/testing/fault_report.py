"""The fault matrix's findings: one `Outcome` per case, and the `Report` whose last line
is the figures: `faults: tried N, passed N, lost N, duplicated N, leaks N`."""

from __future__ import annotations

from typing import Any

import attrs
from attrs import frozen


@frozen
class Outcome:
    """What became of one case."""

    partner: str
    operation: str
    fault: str
    got: str
    """`result`, `error <code>`, `queued <state>`, `hang` or `crash <type>`."""
    seconds: float
    problems: tuple[str, ...] = ()
    claims_at_partner: int | None = None
    """For a claim: how many the partner holds after the flush (exactly one is right)."""
    outbox_state: str | None = None
    """For a claim: its outbox entry's state after the flush."""
    lost: bool = False
    duplicated: bool = False
    leaks: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return not (self.problems or self.lost or self.duplicated or self.leaks)

    @property
    def key(self) -> str:
        return f"{self.partner}/{self.operation}/{self.fault}"


@frozen
class Report:
    outcomes: tuple[Outcome, ...]
    seconds: float
    workers: int
    not_ready: tuple[tuple[str, str], ...] = ()
    """Partners that could not be run, and why."""

    @property
    def tried(self) -> int:
        return len(self.outcomes)

    @property
    def passed(self) -> int:
        return sum(o.passed for o in self.outcomes)

    @property
    def lost(self) -> int:
        return sum(o.lost for o in self.outcomes)

    @property
    def duplicated(self) -> int:
        return sum(o.duplicated for o in self.outcomes)

    @property
    def leaks(self) -> int:
        return sum(len(o.leaks) for o in self.outcomes)

    @property
    def ok(self) -> bool:
        return self.passed == self.tried and not self.not_ready

    def figures(self) -> str:
        return (
            f"faults: tried {self.tried}, passed {self.passed}, lost {self.lost}, "
            f"duplicated {self.duplicated}, leaks {self.leaks}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "tried": self.tried,
            "passed": self.passed,
            "lost": self.lost,
            "duplicated": self.duplicated,
            "leaks": self.leaks,
            "seconds": round(self.seconds, 2),
            "workers": self.workers,
            "not_ready": [{"partner": p, "reason": r} for p, r in self.not_ready],
            "outcomes": [
                {**attrs.asdict(o), "passed": o.passed, "seconds": round(o.seconds, 3)}
                for o in self.outcomes
            ],
        }
