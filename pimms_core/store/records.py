"""What the store keeps: ledger entries, outbox entries and journal entries.

Frozen attrs classes like the other models, so that the store's backends (SQLite now,
PostgreSQL later) and their callers share one typed vocabulary. Personal fields are masked in
`repr()`; a journal entry masks its account reference as it is built, so no code path can
write a full one.
"""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime
from typing import TypeAlias

from attrs import field, frozen

from pimms_core.models import (
    Category,
    ClaimRequest,
    ClaimState,
    Contact,
    OutboxState,
    PluginRef,
)
from pimms_core.redaction import mask_reference

LOCAL_REF_PREFIX = "PIMMS"
_LOCAL_REF_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
"""Crockford's base 32: no I, L, O or U, so a reference read aloud is not misheard."""


def _redacted(_value: object) -> str:
    return "'***'"


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_local_ref() -> str:
    """A reference a mediator can give a resident: `PIMMS-7K3M-Q9TD` (40 random bits)."""
    chars = "".join(secrets.choice(_LOCAL_REF_ALPHABET) for _ in range(8))
    return f"{LOCAL_REF_PREFIX}-{chars[:4]}-{chars[4:]}"


@frozen
class LedgerEntry:
    """A claim a partner acknowledged, opened through pimms: the basis of its follow-up."""

    partner: str
    claim_ref: str
    account_ref: str
    category: str
    """The common category (`billing`...), or the partner's code when it maps to none."""
    state: ClaimState = field(converter=ClaimState)
    partner_status: str
    opened_at: datetime
    last_checked: datetime
    """When pimms last heard from the partner about this claim (its opening, a status)."""
    response_due_by: date | None = None
    local_ref: str | None = None
    site_id: str = "local"
    plugin: str | None = None
    plugin_version: str | None = None

    @property
    def is_open(self) -> bool:
        return self.state.is_open

    @property
    def plugin_ref(self) -> PluginRef | None:
        if self.plugin is None:
            return None
        return PluginRef(self.plugin, self.plugin_version or "unknown")


@frozen
class OutboxEntry:
    """A claim written to the outbox before it is sent, with what sending it needs.

    The personal fields (description, last name, contact) are None once the claim is
    delivered, failed or cancelled: the database refuses any other combination.
    """

    local_ref: str
    partner: str
    idempotency_key: str
    account_ref: str
    category: Category = field(converter=Category)
    partner_category: str
    state: OutboxState = field(converter=OutboxState)
    created_at: datetime
    updated_at: datetime
    description: str | None = field(default=None, repr=_redacted)
    last_name: str | None = field(default=None, repr=_redacted)
    contact_email: str | None = field(default=None, repr=_redacted)
    contact_phone: str | None = field(default=None, repr=_redacted)
    service_id: str | None = None
    attempts: int = 0
    """How many times a process started sending it."""
    claim_ref: str | None = None
    """The partner's reference, once delivered."""
    error_code: str | None = None
    error_message: str | None = None
    """Why the last attempt did not deliver it (one line without personal data)."""
    owner: str | None = None
    """The process sending it (`host:pid`), while in state `sending`."""
    lease_until: datetime | None = None
    site_id: str = "local"
    agent_id: str = "unknown"
    correlation_id: str = ""

    @property
    def scrubbed(self) -> bool:
        return self.description is None

    def request(self) -> ClaimRequest:
        """The claim request as it was written, to send it (again) with the same key."""
        if self.description is None:
            raise ValueError(f"outbox entry {self.local_ref} holds no request any more")
        contact = None
        if self.contact_email or self.contact_phone:
            contact = Contact(email=self.contact_email, phone=self.contact_phone)
        return ClaimRequest(
            account_ref=self.account_ref,
            category=self.category,
            partner_category=self.partner_category,
            description=self.description,
            idempotency_key=self.idempotency_key,
            contact=contact,
            last_name=self.last_name,
            service_id=self.service_id,
        )


@frozen
class JournalEntry:
    """One operation, for the audit trail: who, what, at which partner, how it ended.

    No names, contact data or descriptions: there is no field for them. The account reference
    is masked as the entry is built (`4001234567` becomes `*******567`).
    """

    at: datetime
    operation: str
    """lookup_account, open_claim, claim_status, flush, resolve..."""
    outcome: str
    """ok, queued, uncertain, needs_check, failed, refused (bad input), error."""
    duration_ms: float
    site_id: str = "local"
    agent_id: str = "unknown"
    partner: str | None = None
    account: str | None = field(default=None, converter=mask_reference)
    error_type: str | None = None
    """The error's code (`partner_unavailable`, `invalid_reference`...), if it failed."""
    correlation_id: str = ""
    plugin: str | None = None
    plugin_version: str | None = None
    local_ref: str | None = None
    id: int | None = None
    """The row number the journal gave it (None before it is appended)."""


DeferredEntry: TypeAlias = tuple[
    float,  # at: when the operation ended, as a Unix time
    float,  # duration_ms
    str,  # site_id
    str,  # agent_id
    str | None,  # partner
    str,  # operation
    str | None,  # account (in full: masked when the row is made)
    str,  # outcome
    str | None,  # error_type
    str,  # correlation_id
    str | None,  # plugin
    str | None,  # plugin_version
    str | None,  # local_ref
]
"""A journal row handed to `Journal.defer`: its fields as a plain tuple of text and numbers,
in the order of the journal's columns.

Why not a `JournalEntry`: a deferred row waits up to a fraction of a second, long enough for
an object to outlive the garbage collector's young generation; thousands of them a second
promoted to the old one trigger its full collections, each a walk over every object of the
process (they cost a lookup more than the journal itself). A plain tuple of text and numbers
is dropped from the collector's lists the first time it looks at it."""


def deferred_entry(values: DeferredEntry) -> JournalEntry:
    """The `JournalEntry` of a deferred row (its account masked, as every entry's is)."""
    (
        ended_at,
        duration_ms,
        site_id,
        agent_id,
        partner,
        operation,
        account,
        outcome,
        error_type,
        correlation_id,
        plugin,
        plugin_version,
        local_ref,
    ) = values
    return JournalEntry(
        at=datetime.fromtimestamp(ended_at, UTC),
        operation=operation,
        outcome=outcome,
        duration_ms=duration_ms,
        site_id=site_id,
        agent_id=agent_id,
        partner=partner,
        account=account,
        error_type=error_type,
        correlation_id=correlation_id,
        plugin=plugin,
        plugin_version=plugin_version,
        local_ref=local_ref,
    )
