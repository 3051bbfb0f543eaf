"""One hierarchy of errors under `PimmsError`.

Every message is one line a mediator can act on, and carries no secret and no personal data: an
error names the partner, the operation and what was expected, never the resident's name, contact
data, description, or a credential. Machine-readable fields ride beside the message; `to_dict()`
gives the JSON form the CLI prints.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pimms_core.models import PluginRef


class PimmsError(Exception):
    """Base of every error pimms raises on purpose."""

    code = "pimms_error"

    def __init__(self, message: str, *, partner: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.partner = partner
        self.plugin: PluginRef | None = None
        """Set by the core: the plugin distribution that raised it, if any."""
        self.local_ref: str | None = None
        """Set by the core when the claim this error is about is kept in the outbox."""

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.partner:
            data["partner"] = self.partner
        if self.plugin is not None:
            data["plugin"] = self.plugin.name
            data["plugin_version"] = self.plugin.version
        if self.local_ref is not None:
            data["local_ref"] = self.local_ref
        data.update(self._fields())
        return data

    def _fields(self) -> dict[str, Any]:
        return {}


class ConfigError(PimmsError):
    """The configuration file or environment is wrong; nothing was sent."""

    code = "config_error"


class PluginLoadError(PimmsError):
    """A plugin could not be loaded (raised only in strict mode; reported otherwise)."""

    code = "plugin_load_error"


class UnknownPartner(PimmsError):
    code = "unknown_partner"

    def __init__(self, partner: str, known: list[str]) -> None:
        listed = ", ".join(sorted(known)) or "none installed"
        super().__init__(f"unknown partner {partner!r}: expected one of {listed}", partner=None)
        self.requested = partner
        self.known = sorted(known)

    def _fields(self) -> dict[str, Any]:
        return {"known": self.known}


class UnsupportedOperation(PimmsError):
    code = "unsupported_operation"

    def __init__(self, partner: str, operation: str) -> None:
        super().__init__(f"{partner} does not support {operation}", partner=partner)
        self.operation = operation


class InvalidInput(PimmsError):
    """Input refused locally, before any request: says what is wrong and what is expected."""

    code = "invalid_input"


class InvalidReference(InvalidInput):
    code = "invalid_reference"

    def __init__(self, partner: str, hint: str, example: str, *, reason: str = "") -> None:
        what = reason or "this reference does not have the expected format"
        super().__init__(
            f"{partner}: {what}: expected {hint} (for example {example})", partner=partner
        )
        self.hint = hint
        self.example = example

    def _fields(self) -> dict[str, Any]:
        return {"expected": self.hint, "example": self.example}


class UnknownCategory(InvalidInput):
    code = "unknown_category"

    def __init__(self, partner: str, category: str, accepted: list[str]) -> None:
        shown = category if len(category) <= 40 else category[:40] + "..."
        super().__init__(
            f"{partner}: unknown claim category {shown!r}: expected one of {', '.join(accepted)}",
            partner=partner,
        )
        self.accepted = accepted

    def _fields(self) -> dict[str, Any]:
        return {"accepted": self.accepted}


class AccountNotFound(PimmsError):
    code = "account_not_found"

    def __init__(self, partner: str, message: str = "") -> None:
        super().__init__(
            message or f"{partner}: no account matches this reference; check it with the resident",
            partner=partner,
        )


class ClaimNotFound(PimmsError):
    code = "claim_not_found"

    def __init__(self, partner: str, message: str = "") -> None:
        super().__init__(
            message or f"{partner}: no claim matches this claim reference", partner=partner
        )


class ClaimRejected(PimmsError):
    """The partner refused the claim for a reason of its own (delay passed, account closed...)."""

    code = "claim_rejected"

    def __init__(self, partner: str, reason: str, *, partner_code: str | None = None) -> None:
        super().__init__(f"{partner} refused the claim: {reason}", partner=partner)
        self.reason = reason
        self.partner_code = partner_code

    def _fields(self) -> dict[str, Any]:
        return {"partner_code": self.partner_code} if self.partner_code else {}


class PartnerAuthError(PimmsError):
    """The partner refused our credentials: a configuration matter for the site, not a retry."""

    code = "partner_auth_error"

    def __init__(self, partner: str, detail: str = "credentials refused") -> None:
        super().__init__(
            f"{partner}: {detail}; check this partner's credentials in the site configuration",
            partner=partner,
        )


class PartnerUnavailable(PimmsError):
    """The partner cannot answer now (timeout, 5xx, rate limit, circuit open): try later."""

    code = "partner_unavailable"

    def __init__(
        self,
        partner: str,
        detail: str,
        *,
        retry_after: float | None = None,
        status: int | None = None,
        request_sent: bool | None = None,
    ) -> None:
        when = f"; retry in {retry_after:g} s" if retry_after is not None else "; try again later"
        super().__init__(f"{partner} is unavailable: {detail}{when}", partner=partner)
        self.retry_after = retry_after
        self.detail = detail
        self.status = status
        """The HTTP status the partner answered, if it answered."""
        self.request_sent = request_sent
        """False when the request surely never reached the partner (connection refused)."""

    def _fields(self) -> dict[str, Any]:
        return {"retry_after": self.retry_after}


class PartnerProtocolError(PimmsError):
    """The partner answered something we cannot read (not JSON, missing field, odd status)."""

    code = "partner_protocol_error"

    def __init__(self, partner: str, detail: str) -> None:
        super().__init__(f"{partner} answered something unexpected: {detail}", partner=partner)
        self.detail = detail


class PluginError(PimmsError):
    """A plugin misbehaved: raised something unexpected or returned the wrong type."""

    code = "plugin_error"

    def __init__(self, plugin: str, detail: str, *, partner: str | None = None) -> None:
        super().__init__(f"plugin {plugin} misbehaved: {detail}", partner=partner)
        self.plugin_name = plugin


class CircuitOpen(PartnerUnavailable):
    """The partner failed repeatedly: calls fail fast, without a request, until a probe works."""

    code = "circuit_open"

    def __init__(self, partner: str, failures: int, retry_after: float) -> None:
        super().__init__(
            partner,
            f"it failed {failures} times in a row, so pimms stopped calling it for a while",
            retry_after=round(max(retry_after, 0.0), 1),
            request_sent=False,
        )
        self.failures = failures


class StoreError(PimmsError):
    """The site's database (ledger, outbox, journal) cannot be used: nothing was sent."""

    code = "store_error"
