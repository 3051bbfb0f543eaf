"""The typed host-side layer over the hooks: one function per operation.

It routes a call to the plugin of its partner (`PluginHost.caller`), checks what comes back,
and attributes every result and every error to the plugin that produced it. A plugin that
returns the wrong type or raises something that is not a `PimmsError` becomes a `PluginError`
naming the plugin; a transport failure that escaped the plugin becomes `PartnerUnavailable`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

import attrs
import httpx

from pimms_core.errors import PartnerUnavailable, PimmsError, PluginError
from pimms_core.models import (
    Account,
    AccountQuery,
    Claim,
    ClaimRequest,
    ClaimStatus,
    Idempotency,
)
from pimms_core.policy import RetryPolicy, call_with_retries

if TYPE_CHECKING:
    from wsgiref.types import WSGIApplication

    from pimms_core.config import Settings
    from pimms_core.context import PartnerContext
    from pimms_core.models import PluginRef
    from pimms_core.plugins import PluginHost
    from pimms_core.sandbox import SandboxState

T = TypeVar("T", Account, Claim, ClaimStatus)


def lookup_account(
    host: PluginHost, partner: PartnerContext, query: AccountQuery, policy: RetryPolicy
) -> Account:
    return call_with_retries(
        policy,
        lambda: _invoke(host, "pimms_lookup_account", partner, Account, query=query),
        deadline=partner.call.deadline,
    )


def open_claim(
    host: PluginHost, partner: PartnerContext, request: ClaimRequest, policy: RetryPolicy
) -> Claim:
    """Open a claim; re-sent on transient failures only where the partner makes it safe.

    For a partner whose mechanism is a lookup by the caller's key, the core asks for an
    existing claim with that key before every send, so a retried claim is never created twice.
    """
    mechanism = partner.info.idempotency

    def attempt() -> Claim:
        if mechanism is Idempotency.LOOKUP:
            existing = _invoke(
                host,
                "pimms_find_claim",
                partner,
                Claim,
                optional=True,
                idempotency_key=request.idempotency_key,
            )
            if existing is not None:
                return attrs.evolve(existing, replayed=True)
        return _invoke(host, "pimms_open_claim", partner, Claim, request=request)

    return call_with_retries(policy, attempt, idempotency=mechanism, deadline=partner.call.deadline)


def claim_status(
    host: PluginHost, partner: PartnerContext, claim_ref: str, policy: RetryPolicy
) -> ClaimStatus:
    return call_with_retries(
        policy,
        lambda: _invoke(host, "pimms_claim_status", partner, ClaimStatus, claim_ref=claim_ref),
        deadline=partner.call.deadline,
    )


def http_auth(host: PluginHost, partner_id: str, settings: Settings) -> httpx.Auth | None:
    ref = host.partner(partner_id).ref
    try:
        auth = host.caller("pimms_http_auth", partner_id)(partner_id=partner_id, settings=settings)
    except PimmsError as exc:
        exc.plugin = ref
        raise
    except Exception as exc:
        raise _plugin_error(
            ref, partner_id, f"pimms_http_auth raised {type(exc).__name__}"
        ) from exc
    if auth is not None and not isinstance(auth, httpx.Auth):
        raise _plugin_error(
            ref, partner_id, f"pimms_http_auth returned {type(auth).__name__}, expected httpx.Auth"
        )
    return auth


def sandbox_app(host: PluginHost, partner_id: str, state: SandboxState) -> WSGIApplication | None:
    ref = host.partner(partner_id).ref
    try:
        app: WSGIApplication | None = host.caller("pimms_sandbox", partner_id)(
            partner_id=partner_id, state=state
        )
    except Exception as exc:
        raise _plugin_error(ref, partner_id, f"pimms_sandbox raised {type(exc).__name__}") from exc
    if app is not None and not callable(app):
        raise _plugin_error(ref, partner_id, "pimms_sandbox returned something not a WSGI app")
    return app


def _plugin_error(ref: PluginRef, partner_id: str, detail: str) -> PluginError:
    error = PluginError(str(ref), detail, partner=partner_id)
    error.plugin = ref
    return error


@overload
def _invoke(
    host: PluginHost,
    hook_name: str,
    partner: PartnerContext,
    expected: type[T],
    *,
    optional: Literal[False] = False,
    **kwargs: Any,
) -> T: ...


@overload
def _invoke(
    host: PluginHost,
    hook_name: str,
    partner: PartnerContext,
    expected: type[T],
    *,
    optional: Literal[True],
    **kwargs: Any,
) -> T | None: ...


def _invoke(
    host: PluginHost,
    hook_name: str,
    partner: PartnerContext,
    expected: type[T],
    *,
    optional: bool = False,
    **kwargs: Any,
) -> T | None:
    """One call of one hook for one partner, its outcome checked and attributed."""
    ref = host.partner(partner.id).ref
    try:
        result = host.caller(hook_name, partner.id)(partner=partner, **kwargs)
    except PimmsError as exc:
        if exc.plugin is None:
            exc.plugin = ref
        if exc.partner is None:
            exc.partner = partner.id
        raise
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        error = PartnerUnavailable(
            partner.id, f"connection failed ({type(exc).__name__})", request_sent=False
        )
        raise _attributed(error, ref) from exc
    except httpx.TimeoutException as exc:
        raise _attributed(PartnerUnavailable(partner.id, "no answer in time"), ref) from exc
    except httpx.TransportError as exc:
        detail = f"connection failed ({type(exc).__name__})"
        raise _attributed(PartnerUnavailable(partner.id, detail), ref) from exc
    except Exception as exc:
        # The message of an unexpected exception may hold anything: keep only its type.
        raise _plugin_error(ref, partner.id, f"{hook_name} raised {type(exc).__name__}") from exc
    if result is None and optional:
        return None
    if not isinstance(result, expected):
        got = "nothing" if result is None else type(result).__name__
        raise _plugin_error(
            ref, partner.id, f"{hook_name} returned {got}, expected {expected.__name__}"
        )
    if result.partner != partner.id:
        raise _plugin_error(
            ref, partner.id, f"{hook_name} returned a result for partner {result.partner!r}"
        )
    return attrs.evolve(result, plugin=ref)


def _attributed(error: PimmsError, ref: PluginRef) -> PimmsError:
    error.plugin = ref
    return error
