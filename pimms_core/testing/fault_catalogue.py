"""The faults the matrix injects, and what a partner plugin must do under each.

Every fault applies to the partner's API calls once the client holds its token (so a login
goes through), except the `cold_*` ones, which hit the first call of a fresh client, login
included. Timings are relative to the partner's read `timeout`, so the whole catalogue keeps
its meaning when the timeout is changed.
"""

from __future__ import annotations

from enum import StrEnum

from attrs import frozen

from pimms_core.errors import PartnerProtocolError, PartnerUnavailable, PimmsError
from pimms_core.testing.fault_bodies import (
    malformed_json,
    renamed_fields,
    truncated_json,
    unknown_status,
)
from pimms_core.testing.fault_server import Fault

UNAVAILABLE: tuple[type[PimmsError], ...] = (PartnerUnavailable,)
PROTOCOL: tuple[type[PimmsError], ...] = (PartnerProtocolError,)


class Expect(StrEnum):
    ERROR = "error"
    """A typed error among `FaultCase.errors` (for a claim: or the claim kept in the outbox)."""
    RESULT = "result"
    """The right result (the retry policy gets through a transient fault)."""
    UNKNOWN_STATE = "unknown_state"
    """A status the partner never declared: a claim or status in state `unknown` with the
    raw code kept; for a lookup, the account (or `PartnerProtocolError`)."""


@frozen
class FaultCase:
    """One row of the catalogue: a fault, how it is applied, and what must come of it."""

    name: str
    fault: Fault
    expect: Expect
    summary: str
    errors: tuple[type[PimmsError], ...] = UNAVAILABLE
    times: int | None = None
    """Apply the fault to this many requests, then answer normally (None: to every one)."""
    cold: bool = False
    """Apply it from the first request of a fresh client (its login too)."""
    retry_after: float | None = None
    """The error (or the queued claim) must carry this Retry-After."""
    min_seconds: float = 0.0
    """The call must take at least this long (it honoured a Retry-After)."""
    single_request: bool = False
    """The fault must be met once only: an unmapped answer fails at once, unretried."""


def catalogue(timeout: float) -> list[FaultCase]:
    """Every fault of the matrix, for a partner whose read timeout is `timeout` seconds."""
    gap = timeout / 4
    later = (("Retry-After", "120"),)
    soon = (("Retry-After", "1"),)
    return [
        FaultCase("refused", Fault.refuse(), Expect.ERROR, "connection refused"),
        FaultCase("silence", Fault.silence(), Expect.ERROR, "accepted, then nothing at all"),
        FaultCase(
            "timeout_unforwarded",
            Fault.hold(forward=False),
            Expect.ERROR,
            "request read, never forwarded, never answered",
        ),
        FaultCase(
            "timeout_forwarded",
            Fault.hold(forward=True),
            Expect.ERROR,
            "request forwarded to the partner, its answer withheld",
        ),
        FaultCase("reset_mid_body", Fault.reset(), Expect.ERROR, "TCP reset halfway through"),
        FaultCase(
            "stall_mid_body", Fault.stall(), Expect.ERROR, "answer stops halfway, line stays open"
        ),
        FaultCase(
            "http_500_html",
            Fault.respond(500, forward=True, name="http_500_html"),
            Expect.ERROR,
            "partner acted, then an HTML 500 page",
        ),
        FaultCase(
            "http_502_html",
            Fault.respond(502, name="http_502_html"),
            Expect.ERROR,
            "gateway's HTML 502 page",
        ),
        FaultCase(
            "http_503_html",
            Fault.respond(503, name="http_503_html"),
            Expect.ERROR,
            "HTML 503 page",
        ),
        FaultCase(
            "http_429_retry_after",
            Fault.respond(429, headers=later, name="http_429_retry_after"),
            Expect.ERROR,
            "429 with Retry-After: 120 (beyond the policy's cap)",
            retry_after=120.0,
        ),
        FaultCase(
            "unknown_http_status",
            Fault.respond(461, name="unknown_http_status"),
            Expect.ERROR,
            "an HTTP status nobody defined (461)",
            errors=PROTOCOL,
            single_request=True,
        ),
        FaultCase(
            "malformed_json",
            Fault.rewritten("malformed_json", malformed_json),
            Expect.ERROR,
            "the partner's answer replaced by broken JSON",
            errors=PROTOCOL,
        ),
        FaultCase(
            "truncated_json",
            Fault.rewritten("truncated_json", truncated_json),
            Expect.ERROR,
            "the first half of the partner's JSON, as if complete",
            errors=PROTOCOL,
        ),
        FaultCase(
            "renamed_fields",
            Fault.rewritten("renamed_fields", renamed_fields),
            Expect.ERROR,
            "every JSON key renamed",
            errors=PROTOCOL,
        ),
        FaultCase(
            "unknown_status",
            Fault.rewritten("unknown_status", unknown_status),
            Expect.UNKNOWN_STATE,
            "every status field set to an undeclared code",
            errors=PROTOCOL,
        ),
        FaultCase(
            "slow_drip",
            Fault.drip(chunks=6, gap=gap),
            Expect.RESULT,
            f"the answer in 6 pieces {gap:g} s apart",
        ),
        FaultCase(
            "endless_drip",
            Fault.drip(chunks=0, gap=gap, endless=True),
            Expect.ERROR,
            f"a byte every {gap:g} s, never ending",
        ),
        FaultCase(
            "silence_once",
            Fault.silence(),
            Expect.RESULT,
            "silence, then a normal answer",
            times=1,
        ),
        FaultCase(
            "timeout_forwarded_once",
            Fault.hold(forward=True),
            Expect.RESULT,
            "answer withheld once, then a normal answer",
            times=1,
        ),
        FaultCase(
            "reset_once",
            Fault.reset(),
            Expect.RESULT,
            "reset once, then a normal answer",
            times=1,
        ),
        FaultCase(
            "http_503_once",
            Fault.respond(503, name="http_503_once"),
            Expect.RESULT,
            "a 503 once, then a normal answer",
            times=1,
        ),
        FaultCase(
            "http_429_once",
            Fault.respond(429, headers=soon, name="http_429_once"),
            Expect.RESULT,
            "a 429 with Retry-After: 1 once, then a normal answer",
            times=1,
            min_seconds=1.0,
        ),
        FaultCase(
            "cold_http_503",
            Fault.respond(503, name="cold_http_503"),
            Expect.ERROR,
            "HTML 503 from the first request of a fresh client (its login)",
            cold=True,
        ),
        FaultCase(
            "cold_malformed_json",
            Fault.rewritten("cold_malformed_json", malformed_json),
            Expect.ERROR,
            "broken JSON from the first request of a fresh client (its login)",
            errors=PROTOCOL,
            cold=True,
        ),
    ]
