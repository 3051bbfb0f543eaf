"""The data that crosses the contract: what plugins declare, receive and return.

All models are frozen attrs classes with validators, so a malformed value is refused where it is
built, not three calls later. Fields that hold personal data (names, addresses, contact data,
free text) are shown as `'***'` in `repr()`, so a model logged by mistake leaks nothing.
Their JSON form comes from `pimms_core.serialization`.
"""

from __future__ import annotations

import functools
import random
import re
import unicodedata
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from enum import StrEnum
from typing import Any, TypeVar

import attrs
from attrs import field, frozen

from pimms_core.errors import InvalidInput

T = TypeVar("T")

DESCRIPTION_MAX_CHARS = 2000
IDEMPOTENCY_KEY_MAX_CHARS = 255


def _redacted(_value: object) -> str:
    return "'***'"


def _is(kind: type) -> Any:
    """A type check where a plugin builds a result, so a wrong type is caught at its source."""
    return attrs.validators.instance_of(kind)


def _optional(kind: type) -> Any:
    return attrs.validators.optional(attrs.validators.instance_of(kind))


def _tuple(items: Iterable[T]) -> tuple[T, ...]:
    """A typed converter (plain `tuple` would lose the item type for type checkers)."""
    return tuple(items)


def _dict(items: Mapping[str, str]) -> dict[str, str]:
    return dict(items)


class ClaimState(StrEnum):
    """The common claim states every partner's statuses map onto."""

    RECEIVED = "received"
    IN_PROGRESS = "in_progress"
    AWAITING_CUSTOMER = "awaiting_customer"
    RESOLVED = "resolved"
    REJECTED = "rejected"
    CLOSED = "closed"
    UNKNOWN = "unknown"
    """The partner sent a status code it never declared: its raw code is kept beside."""

    @property
    def is_open(self) -> bool:
        """Whether a claim in this state still needs following."""
        return self not in {ClaimState.RESOLVED, ClaimState.REJECTED, ClaimState.CLOSED}


class Category(StrEnum):
    """The common claim categories; each partner maps its own codes onto these."""

    BILLING = "billing"
    PAYMENT_DIFFICULTY = "payment_difficulty"
    METER_READING = "meter_reading"
    CONTRACT_CHANGE = "contract_change"
    SERVICE_OUTAGE = "service_outage"
    DELIVERY_PROBLEM = "delivery_problem"
    LOST_OR_DAMAGED = "lost_or_damaged"
    DELAY_COMPENSATION = "delay_compensation"
    REFUND = "refund"
    ACCESSIBILITY = "accessibility"
    OTHER = "other"


class Operation(StrEnum):
    """The operations of the contract, one hook each."""

    LOOKUP_ACCOUNT = "lookup_account"
    OPEN_CLAIM = "open_claim"
    CLAIM_STATUS = "claim_status"


class Idempotency(StrEnum):
    """How a partner lets a claim be sent again without creating it twice."""

    HEADER = "header"
    """The partner honours an idempotency key header: re-sending the same key is safe."""
    UNIQUE_KEY = "unique_key"
    """The partner refuses a second claim with the caller's key and names the existing one."""
    LOOKUP = "lookup"
    """The partner stores the caller's key and can be asked for claims carrying it."""
    NONE = "none"
    """No mechanism: a claim whose outcome is unknown must never be re-sent blindly."""


# --- What a plugin declares -------------------------------------------------------------------


def _check_pattern(_inst: object, _attr: attrs.Attribute[str], value: str) -> None:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(
            f"reference pattern {value!r} is not a valid regular expression: {exc}"
        ) from None


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


@frozen
class ReferenceFormat:
    """How a partner identifies an account, and how to tell a resident where to find it."""

    pattern: str = field(validator=_check_pattern)
    """A regular expression the whole reference must match (after surrounding spaces are cut)."""
    example: str
    hint: str
    """Words a mediator can read to a resident: "10 digits, top right of your bill"."""
    needs_last_name: bool = False
    """True where the reference alone must not reveal the account (a booking, say)."""

    def __attrs_post_init__(self) -> None:
        if not self.matches(self.example):
            raise ValueError(f"example {self.example!r} does not match pattern {self.pattern!r}")

    def matches(self, reference: str) -> bool:
        return _compiled(self.pattern).fullmatch(reference) is not None


@frozen
class CategoryCode:
    """One of a partner's own claim categories, and the common category it means."""

    code: str
    category: Category = field(converter=Category)
    label: str = ""


@frozen
class StatusCode:
    """One of a partner's own claim statuses, and the common state it means."""

    code: str
    state: ClaimState = field(converter=ClaimState)
    label: str = ""


@frozen
class SettingSpec:
    """A setting a plugin needs. Secret ones only ever come from the environment."""

    name: str = field(validator=attrs.validators.matches_re(r"[a-z][a-z0-9_]*"))
    description: str
    secret: bool = False
    sandbox_value: str | None = None
    """The value used in sandbox mode, where the simulator accepts it."""
    default: str | None = None
    choices: tuple[str, ...] = field(default=(), converter=_tuple)
    """The values accepted, where there is a closed list (checked when settings load)."""


@frozen
class Quota:
    """A request budget the partner enforces: `calls` per `seconds`."""

    calls: int = field(validator=attrs.validators.gt(0))
    seconds: float = field(validator=attrs.validators.gt(0))


@frozen
class SandboxAccount:
    """A seeded account of the partner's simulator, for demos and conformance tests."""

    reference: str
    last_name: str | None = field(default=None, repr=_redacted)
    note: str = ""


def _operations(ops: Iterable[str]) -> frozenset[Operation]:
    return frozenset(Operation(op) for op in ops)


def _partner_id(_inst: object, _attr: attrs.Attribute[str], value: str) -> None:
    if not re.fullmatch(r"[a-z][a-z0-9_-]{1,31}", value):
        raise ValueError(
            f"partner id {value!r} is invalid: expected 2-32 lowercase letters, digits, - or _, "
            "starting with a letter"
        )


@frozen
class PartnerInfo:
    """Everything a plugin declares about the partner it serves (the `pimms_partner_info` hook)."""

    id: str = field(validator=_partner_id)
    name: str
    sector: str
    contract_version: str
    reference: ReferenceFormat
    categories: tuple[CategoryCode, ...] = field(converter=_tuple)
    statuses: tuple[StatusCode, ...] = field(converter=_tuple)
    operations: frozenset[Operation] = field(converter=_operations)
    idempotency: Idempotency = field(converter=Idempotency)
    settings: tuple[SettingSpec, ...] = field(default=(), converter=_tuple)
    base_url: str | None = None
    """The production endpoint, used when the configuration names none and sandbox is off."""
    quotas: tuple[Quota, ...] = field(default=(), converter=_tuple)
    sandbox_accounts: tuple[SandboxAccount, ...] = field(default=(), converter=_tuple)

    def __attrs_post_init__(self) -> None:
        codes = [c.code for c in self.categories]
        if len(set(codes)) != len(codes):
            raise ValueError(f"partner {self.id!r} declares a category code twice")
        statuses = [s.code for s in self.statuses]
        if len(set(statuses)) != len(statuses):
            raise ValueError(f"partner {self.id!r} declares a status code twice")

    def state_of(self, partner_status: str) -> ClaimState:
        """The common state of one of this partner's status codes (UNKNOWN if undeclared)."""
        for status in self.statuses:
            if status.code == partner_status:
                return status.state
        return ClaimState.UNKNOWN

    def label_of(self, partner_status: str) -> str:
        for status in self.statuses:
            if status.code == partner_status:
                return status.label
        return ""

    def category_code(self, category: str) -> CategoryCode:
        """Resolve a common category or one of the partner's own codes to the partner's code.

        A common category that several codes share resolves to the first one declared.
        Raises `UnknownCategory` listing what is accepted.
        """
        wanted = category.strip()
        for code in self.categories:
            if code.code.lower() == wanted.lower():
                return code
        for code in self.categories:
            if code.category.value == wanted.lower():
                return code
        from pimms_core.errors import UnknownCategory

        raise UnknownCategory(self.id, category, self.accepted_categories())

    def accepted_categories(self) -> list[str]:
        """Common categories first, then the partner's own codes, each once."""
        common = list(dict.fromkeys(c.category.value for c in self.categories))
        return common + [c.code for c in self.categories]


# --- What goes into a call ---------------------------------------------------------------------


def _no_control_chars(what: str, value: str, *, allow_newlines: bool) -> None:
    if value.isprintable():  # no Cc or Cf character (checked in C): the common case
        return
    for char in value:
        if allow_newlines and char in "\n\t":
            continue
        if unicodedata.category(char) in {"Cc", "Cf"}:
            raise InvalidInput(
                f"{what} contains a control character (U+{ord(char):04X}): "
                "expected printable text only"
            )


def _text_validator(what: str, max_chars: int, *, allow_newlines: bool = False) -> Any:
    def check(_inst: object, _attr: object, value: object) -> None:
        if not isinstance(value, str) or not value.strip():
            raise InvalidInput(f"{what} is empty: expected some text")
        if len(value) > max_chars:
            raise InvalidInput(f"{what} is {len(value)} characters long: the limit is {max_chars}")
        _no_control_chars(what, value, allow_newlines=allow_newlines)

    return check


def _optional_name(_inst: object, _attr: object, value: str | None) -> None:
    if value is not None:
        _text_validator("the last name", 100)(None, None, value)


def _trimmed_or_none(value: object) -> str | None:
    """Optional text: surrounding spaces cut, and empty text is no text."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _optional_text(
    what: str, max_chars: int, pattern: re.Pattern[str] | None = None, expected: str = ""
) -> Any:
    """A check for optional text: within `max_chars`, printable, and matching `pattern`."""

    def check(_inst: object, _attr: object, value: str | None) -> None:
        if value is None:
            return
        _text_validator(what, max_chars)(None, None, value)
        if pattern is not None and not pattern.fullmatch(value):
            raise InvalidInput(f"{what} is not valid: expected {expected}")

    return check


_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_PHONE = re.compile(r"\+?[0-9 .()-]{6,30}")
EMAIL_MAX_CHARS = 254
PHONE_MAX_CHARS = 32
SERVICE_ID_MAX_CHARS = 64
_EMAIL_CHECK = _optional_text("the e-mail address", EMAIL_MAX_CHARS, _EMAIL, "name@domain.example")
_PHONE_CHECK = _optional_text(
    "the phone number",
    PHONE_MAX_CHARS,
    _PHONE,
    "digits, spaces, dots, dashes, parentheses and a leading + only, "
    "such as 06 12 34 56 78 or +33 6 12 34 56 78",
)


def new_correlation_id() -> str:
    """16 hex digits tying together what one call did (journal rows, logs). Not a secret, so
    not from the OS's entropy source, which costs ~10 µs a call on some virtual machines."""
    return f"{random.getrandbits(64):016x}"


@frozen
class CallContext:
    """Who is calling and why: carried into every hook call and the journal."""

    site_id: str = "local"
    agent_id: str = "unknown"
    correlation_id: str = ""
    deadline: float | None = None
    """An absolute `time.monotonic()` value after which the call should give up."""


@frozen
class AccountQuery:
    """What identifies an account: the reference, and the holder's last name where needed."""

    reference: str = field(validator=_text_validator("the account reference", 64))
    last_name: str | None = field(default=None, validator=_optional_name, repr=_redacted)


@frozen
class Contact:
    """How the partner may reach the resident about a claim (personal data: never shown)."""

    email: str | None = field(default=None, repr=_redacted)
    phone: str | None = field(default=None, repr=_redacted)

    def checked(self) -> Contact | None:
        """This contact trimmed and checked (`InvalidInput` naming what is wrong), or None
        when it holds nothing. The facade calls it where the refusal is journaled."""
        email, phone = _trimmed_or_none(self.email), _trimmed_or_none(self.phone)
        _EMAIL_CHECK(None, None, email)
        _PHONE_CHECK(None, None, phone)
        return None if email is None and phone is None else Contact(email, phone)


@frozen
class ClaimRequest:
    """A claim to open. `partner_category` is the partner's own code for `category`."""

    account_ref: str = field(validator=_text_validator("the account reference", 64))
    category: Category = field(converter=Category)
    partner_category: str
    description: str = field(
        validator=_text_validator("the description", DESCRIPTION_MAX_CHARS, allow_newlines=True),
        repr=_redacted,
    )
    idempotency_key: str = field(
        validator=_text_validator("the idempotency key", IDEMPOTENCY_KEY_MAX_CHARS)
    )
    contact: Contact | None = None
    last_name: str | None = field(default=None, validator=_optional_name, repr=_redacted)
    service_id: str | None = field(
        default=None,
        converter=_trimmed_or_none,
        validator=_optional_text("the service id", SERVICE_ID_MAX_CHARS),
    )
    """Which of the account's services the claim is about (see `Account.services`)."""


# --- What comes back ----------------------------------------------------------------------------


@frozen
class PluginRef:
    """The plugin distribution (and version) that produced a result or an error."""

    name: str
    version: str
    entry_point: str = ""

    def __str__(self) -> str:
        return f"{self.name} {self.version}"


@frozen
class Money:
    amount: float
    currency: str = "EUR"


@frozen
class Service:
    """Something the account holds: a delivery point, a subscription, a journey, a parcel."""

    id: str
    label: str
    status: str = ""
    details: Mapping[str, str] = field(factory=dict, converter=_dict, repr=False)


@frozen
class AccountEvent:
    """A dated event on the account (a parcel scan, say), newest first."""

    code: str
    label: str
    at: datetime | None = field(default=None, validator=_optional(datetime))


@frozen
class Account:
    """An account found at a partner. `raw` keeps the partner's payload, unparsed."""

    partner: str
    reference: str
    holder_name: str = field(repr=_redacted)
    status: str
    """A short common word: active, terminated, closing, in_transit, delivered, problem..."""
    partner_status: str = ""
    address: str | None = field(default=None, repr=_redacted)
    services: tuple[Service, ...] = field(default=(), converter=_tuple)
    events: tuple[AccountEvent, ...] = field(default=(), converter=_tuple)
    balance: Money | None = None
    raw: Mapping[str, Any] = field(factory=dict, repr=False, eq=False)
    plugin: PluginRef | None = None


@frozen
class Claim:
    """A claim the partner has acknowledged."""

    partner: str
    claim_ref: str = field(validator=_is(str))
    state: ClaimState = field(converter=ClaimState)
    partner_status: str = field(validator=_is(str))
    opened_at: datetime = field(validator=_is(datetime))
    response_due_by: date | None = field(default=None, validator=_optional(date))
    compensation: Money | None = None
    replayed: bool = False
    """True when the partner answered with a claim it already had for this idempotency key."""
    raw: Mapping[str, Any] = field(factory=dict, repr=False, eq=False)
    plugin: PluginRef | None = None
    local_ref: str | None = field(default=None, eq=False)
    """The reference pimms gave this claim in its outbox (set by the core, never by a plugin)."""


@frozen
class StatusChange:
    """One step of a claim's history, oldest first."""

    state: ClaimState = field(converter=ClaimState)
    partner_status: str = field(validator=_is(str))
    at: datetime | None = field(default=None, validator=_optional(datetime))
    note: str = field(default="", repr=_redacted)


@frozen
class ClaimStatus:
    """Where a claim stands now, in common terms and in the partner's own."""

    partner: str
    claim_ref: str = field(validator=_is(str))
    state: ClaimState = field(converter=ClaimState)
    partner_status: str = field(validator=_is(str))
    partner_label: str = ""
    updated_at: datetime | None = field(default=None, validator=_optional(datetime))
    history: tuple[StatusChange, ...] = field(default=(), converter=_tuple)
    compensation: Money | None = None
    raw: Mapping[str, Any] = field(factory=dict, repr=False, eq=False)
    plugin: PluginRef | None = None


Result = Account | Claim | ClaimStatus


# --- The outbox: a claim kept until its partner acknowledges it ---------------------------------


class OutboxState(StrEnum):
    """Where a claim written to the outbox stands (see `pimms_core.store`)."""

    QUEUED = "queued"
    """Written, and surely not received by the partner yet: the next flush sends it."""
    SENDING = "sending"
    """A process is sending it now (a row left so by a killed process is taken over)."""
    UNCERTAIN = "uncertain"
    """It may have reached the partner: reconciled by the partner's idempotency mechanism."""
    NEEDS_CHECK = "needs_check"
    """It may have reached a partner that offers no safe way to send it again: a person checks."""
    DELIVERED = "delivered"
    """The partner acknowledged it: it is in the ledger, its personal data left the outbox."""
    FAILED = "failed"
    """The partner refused it for good (or the input was wrong): never sent again by itself."""
    CANCELLED = "cancelled"
    """A person dropped it after checking."""

    @property
    def pending(self) -> bool:
        """Whether the claim still waits for something (a flush, a process, a person)."""
        return self in {
            OutboxState.QUEUED,
            OutboxState.SENDING,
            OutboxState.UNCERTAIN,
            OutboxState.NEEDS_CHECK,
        }


@frozen
class QueuedClaim:
    """A claim kept in the outbox because its partner could not take it now.

    The resident's claim is not lost: give them `local_ref`; `pimms outbox flush` (or
    `Pimms.flush_outbox`) sends it once the partner answers again, exactly once. In state
    `needs_check` nothing is sent again until a person has checked with the partner.
    """

    partner: str
    local_ref: str
    state: OutboxState = field(converter=OutboxState)
    reason: str
    """Why it is not delivered yet: one line, no personal data."""
    queued_at: datetime
    idempotency_key: str = ""
    retry_after: float | None = None
    """Seconds after which the partner may answer again, when known."""
    plugin: PluginRef | None = None
