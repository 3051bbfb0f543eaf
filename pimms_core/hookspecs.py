"""The contract between the core and partner plugins: the plugin author's reference.

A plugin is a module (or object) with functions decorated with `@pimms_core.hookimpl` whose
names are the hooks below. The core calls a partner's operation hooks only on the plugin that
declared that partner in `pimms_partner_info`, so a plugin never has to check that a call is
meant for it; wrappers (`@hookimpl(wrapper=True)`) from other plugins run around every call.

Rules every operation hook follows:

- Use `partner.http` (an `httpx.Client` the core configured: base URL, auth, timeouts, user
  agent, sandbox or live) for every request; never build a client of your own.
- Build paths with `pimms_core.http.url_path`, so a reference can never change the path called.
- Turn an HTTP answer into the core's errors with `pimms_core.http.raise_for_status` and read
  JSON with `pimms_core.http.json_body` / `pimms_core.payload.Payload`, so a missing field or a
  body that is not JSON becomes `PartnerProtocolError` rather than a crash.
- Raise only `pimms_core.errors.PimmsError` subclasses; anything else is reported as
  `PluginError` naming your plugin. Return exactly the model named below.
- Put no secret and no personal data in an exception message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pimms_core.markers import hookspec

if TYPE_CHECKING:
    from wsgiref.types import WSGIApplication

    import httpx

    from pimms_core.config import Settings
    from pimms_core.context import PartnerContext
    from pimms_core.models import (
        Account,
        AccountQuery,
        Claim,
        ClaimRequest,
        ClaimStatus,
        PartnerInfo,
    )
    from pimms_core.sandbox import SandboxState


@hookspec
def pimms_partner_info() -> PartnerInfo | list[PartnerInfo] | None:
    """Declare the partner(s) this plugin serves.

    Called once, when the plugin is loaded. Return a `PartnerInfo` (or a list of them, for a
    plugin serving several partners; None for a plugin that only wraps calls). It declares the
    partner id, the account-reference format with a hint a mediator can read to a resident, the
    claim categories and statuses as data mapped onto the common ones, the settings (and which
    are secrets), the operations implemented, and the idempotency mechanism of claim creation.

    Errors: raising here makes the plugin fail to load; it is reported and skipped.

    Example::

        @hookimpl
        def pimms_partner_info():
            return PartnerInfo(
                id="acme", name="Acme Eau", sector="water", contract_version="1",
                reference=ReferenceFormat(r"\\d{8}", "12345678", "8 digits, on your bill"),
                categories=[CategoryCode("FACT", "billing", "Facturation")],
                statuses=[StatusCode("NEW", "received", "Nouvelle")],
                operations=["lookup_account", "open_claim", "claim_status"],
                idempotency="header",
            )
    """


@hookspec(firstresult=True)
def pimms_http_auth(partner_id: str, settings: Settings) -> httpx.Auth | None:
    """Return the `httpx.Auth` that signs this partner's requests, or None for none.

    Called once, when the core builds the partner's HTTP client. Read credentials from
    `settings` (secrets come from the environment, or the declared sandbox values); build the
    auth from `pimms_core.auth` (`HeaderAuth`, `httpx.BasicAuth`, `OAuth2ClientCredentials`,
    or a subclass of `TokenAuth` for a login endpoint of the partner's own), so that token
    reuse and the single refresh after an expired token are the core's code, not yours.

    Example::

        @hookimpl
        def pimms_http_auth(partner_id, settings):
            return HeaderAuth("X-Api-Key", settings.secret("api_key"))
    """


@hookspec(firstresult=True)
def pimms_lookup_account(partner: PartnerContext, query: AccountQuery) -> Account | None:
    """Find the resident's account at the partner.

    Arguments: `partner` (the context: `partner.http`, `partner.settings`, `partner.info`,
    `partner.call`); `query.reference`, already checked against the declared reference format
    and stripped of surrounding spaces; `query.last_name` where the format needs one.

    Return an `Account` whose `partner` is `partner.id`, with `raw` holding the payload.

    Errors: `AccountNotFound` (unknown reference, or a name that does not match),
    `InvalidReference` (the partner refused the reference's form), `PartnerAuthError`,
    `PartnerUnavailable`, `PartnerProtocolError`.

    Example::

        @hookimpl
        def pimms_lookup_account(partner, query):
            response = partner.http.get(url_path("/accounts/{}", query.reference))
            raise_for_status(response, partner.id, not_found=AccountNotFound)
            body = Payload.of(response, partner.id)
            return Account(partner=partner.id, reference=query.reference,
                           holder_name=body.text("name"), status="active", raw=body.data)
    """


@hookspec(firstresult=True)
def pimms_open_claim(partner: PartnerContext, request: ClaimRequest) -> Claim | None:
    """Open a claim for the resident at the partner.

    Arguments: `request.partner_category` is already resolved to the partner's own code;
    `request.idempotency_key` must travel with the request by the mechanism the plugin
    declared (`Idempotency-Key` header, a caller's-key field...), so that the core can send the
    same claim again safely. An answer saying the claim already exists for that key is a
    success: return that claim with `replayed=True`.

    Return a `Claim` (partner's claim reference, common state, partner status, opened at,
    response due by).

    Errors: `AccountNotFound`, `ClaimRejected` (the partner refused it for a reason of its own:
    say which, in words a mediator can repeat), `PartnerAuthError`, `PartnerUnavailable`,
    `PartnerProtocolError`.

    Example::

        @hookimpl
        def pimms_open_claim(partner, request):
            response = partner.http.post(
                "/claims",
                json={"account": request.account_ref, "type": request.partner_category,
                      "text": request.description},
                headers={"Idempotency-Key": request.idempotency_key},
            )
            raise_for_status(response, partner.id, not_found=AccountNotFound)
            body = Payload.of(response, partner.id)
            return Claim(partner=partner.id, claim_ref=body.text("id"),
                         state=partner.info.state_of(body.text("status")),
                         partner_status=body.text("status"), opened_at=body.timestamp("at"),
                         replayed=response.status_code == 200, raw=body.data)
    """


@hookspec(firstresult=True)
def pimms_find_claim(partner: PartnerContext, idempotency_key: str) -> Claim | None:
    """Find the claim opened earlier with this caller's key, or return None.

    Implement it when the partner stores the caller's key with a claim and can be asked for it,
    and declare `idempotency="lookup"`: the core then calls it before every send of a claim,
    so a claim sent again after a timeout is found rather than created twice.

    Errors: as `pimms_claim_status`.

    Example::

        @hookimpl
        def pimms_find_claim(partner, idempotency_key):
            response = partner.http.get("/claims", params={"callerRef": idempotency_key})
            raise_for_status(response, partner.id)
            found = Payload.of(response, partner.id).objects("claims")
            return claim_from(partner, found[0]) if found else None
    """


@hookspec(firstresult=True)
def pimms_claim_status(partner: PartnerContext, claim_ref: str) -> ClaimStatus | None:
    """Tell where a claim stands.

    Return a `ClaimStatus` whose `state` is `partner.info.state_of(code)` (which is
    `ClaimState.UNKNOWN` for a code the partner never declared: keep its raw code and label),
    with the history oldest first.

    Errors: `ClaimNotFound`, `PartnerAuthError`, `PartnerUnavailable`, `PartnerProtocolError`.

    Example::

        @hookimpl
        def pimms_claim_status(partner, claim_ref):
            response = partner.http.get(url_path("/claims/{}", claim_ref))
            raise_for_status(response, partner.id, not_found=ClaimNotFound)
            body = Payload.of(response, partner.id)
            code = body.text("status")
            return ClaimStatus(partner=partner.id, claim_ref=claim_ref,
                               state=partner.info.state_of(code), partner_status=code,
                               partner_label=partner.info.label_of(code), raw=body.data)
    """


@hookspec(firstresult=True)
def pimms_sandbox(partner_id: str, state: SandboxState) -> WSGIApplication | None:
    """Return a WSGI app simulating the partner's API, or None if `partner_id` is not yours.

    The core serves it in-process (sandbox mode) or on loopback (`pimms sandbox serve`). Keep
    its claims and idempotency keys in `state` (a `SandboxState`), so that a claim opened by
    one command can be followed by the next. Import the web framework inside this hook, so
    that loading the plugin stays cheap. Seed obviously fictional accounts.

    Example::

        @hookimpl
        def pimms_sandbox(partner_id, state):
            if partner_id != "acme":
                return None
            from pimms_acme.simulator import create_app

            return create_app(state)
    """
