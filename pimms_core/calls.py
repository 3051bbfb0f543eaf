"""The typed host-side layer over the hooks: one function per operation.

It routes a call to the plugin of its partner (`PluginHost.caller`), checks what comes back,
and attributes every result and every error to the plugin that produced it. Each request goes
through the partner's `PartnerGuard` (circuit breaker, concurrency limit) when one is given,
inside the retry policy, so every attempt is counted and limited. A plugin that
returns the wrong type or raises something that is not a `PimmsError` becomes a `PluginError`
naming the plugin; a transport failure that escaped the plugin becomes `PartnerUnavailable`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast, overload

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
from pimms_core.policy import PartnerGuard, RetryPolicy, call_with_retries
from pimms_core.redaction import logger as redacted_logger

if TYPE_CHECKING:
    from wsgiref.types import WSGIApplication

    from pimms_core.config import Settings
    from pimms_core.context import PartnerContext
    from pimms_core.models import PluginRef
    from pimms_core.plugins import PluginHost
    from pimms_core.sandbox import SandboxState

T = TypeVar("T", Account, Claim, ClaimStatus)

logger = redacted_logger("pimms.calls")


def lookup_account(
    host: PluginHost,
    partner: PartnerContext,
    query: AccountQuery,
    policy: RetryPolicy,
    guard: PartnerGuard | None = None,
) -> Account:
    attempt: Callable[[], Account] = partial(
        _invoke, host, "pimms_lookup_account", partner, Account, guard=guard, query=query
    )  # a partial rather than a lambda: one Python frame less on every lookup
    return call_with_retries(policy, attempt, deadline=partner.call.deadline)


def open_claim(
    host: PluginHost,
    partner: PartnerContext,
    request: ClaimRequest,
    policy: RetryPolicy,
    guard: PartnerGuard | None = None,
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
                guard=guard,
                idempotency_key=request.idempotency_key,
            )
            if existing is not None:
                return attrs.evolve(existing, replayed=True)
        return _invoke(host, "pimms_open_claim", partner, Claim, guard=guard, request=request)

    return call_with_retries(policy, attempt, idempotency=mechanism, deadline=partner.call.deadline)


def claim_status(
    host: PluginHost,
    partner: PartnerContext,
    claim_ref: str,
    policy: RetryPolicy,
    guard: PartnerGuard | None = None,
) -> ClaimStatus:
    attempt: Callable[[], ClaimStatus] = partial(
        _invoke, host, "pimms_claim_status", partner, ClaimStatus, guard=guard, claim_ref=claim_ref
    )
    return call_with_retries(policy, attempt, deadline=partner.call.deadline)


def http_auth(host: PluginHost, partner_id: str, settings: Settings) -> httpx.Auth | None:
    auth = _setup_hook(host, "pimms_http_auth", partner_id, settings=settings)
    if auth is not None and not isinstance(auth, httpx.Auth):
        got = type(auth).__name__
        raise _plugin_error(
            host.partner(partner_id).ref,
            partner_id,
            f"pimms_http_auth returned {got}, expected httpx.Auth",
        )
    return auth


def sandbox_app(host: PluginHost, partner_id: str, state: SandboxState) -> WSGIApplication | None:
    app = _setup_hook(host, "pimms_sandbox", partner_id, state=state)
    if app is not None and not callable(app):
        raise _plugin_error(
            host.partner(partner_id).ref,
            partner_id,
            "pimms_sandbox returned something not a WSGI app",
        )
    return cast("WSGIApplication | None", app)


def _setup_hook(host: PluginHost, hook_name: str, partner_id: str, **kwargs: Any) -> Any:
    """Call a hook the core uses to set a partner up (not an operation: no retry, no guard):
    its own errors are attributed to the plugin, anything else becomes a `PluginError`."""
    ref = host.partner(partner_id).ref
    try:
        return host.caller(hook_name, partner_id)(partner_id=partner_id, **kwargs)
    except PimmsError as exc:
        exc.plugin = ref
        raise
    except Exception as exc:
        raise _plugin_error(ref, partner_id, f"{hook_name} raised {type(exc).__name__}") from exc


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
    guard: PartnerGuard | None = None,
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
    guard: PartnerGuard | None = None,
    **kwargs: Any,
) -> T | None: ...


def _invoke(
    host: PluginHost,
    hook_name: str,
    partner: PartnerContext,
    expected: type[T],
    *,
    optional: bool = False,
    guard: PartnerGuard | None = None,
    **kwargs: Any,
) -> T | None:
    """One call of one hook for one partner, through its guard, checked and attributed."""
    if guard is None:
        return _invoke_once(host, hook_name, partner, expected, optional=optional, **kwargs)
    guard.enter(partner.call.deadline)
    try:
        result = _invoke_once(host, hook_name, partner, expected, optional=optional, **kwargs)
    except BaseException as exc:
        guard.leave(exc)
        raise
    guard.leave(None)
    return result


def _invoke_once(
    host: PluginHost,
    hook_name: str,
    partner: PartnerContext,
    expected: type[T],
    *,
    optional: bool,
    **kwargs: Any,
) -> T | None:
    ref = host.partner(partner.id).ref
    failure: PimmsError | None = None
    try:
        result = host.caller(hook_name, partner.id)(partner=partner, **kwargs)
    except PimmsError as exc:
        if exc.plugin is None:
            exc.plugin = ref
        if exc.partner is None:
            exc.partner = partner.id
        raise
    except Exception as exc:
        failure = _translated(exc, hook_name, partner.id, ref)
        # The original may hold anything (a URL, a body): it goes to the debug log, which the
        # redacting filter watches, and is not chained to the error the caller sees.
        logger.debug("%s: %s raised %s", partner.id, hook_name, type(exc).__name__, exc_info=exc)
    if failure is not None:
        raise failure
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
    return _attributed(result, ref)


def _attributed(result: T, ref: PluginRef) -> T:
    """`result`, naming the plugin that made it.

    A result the plugin has just built for this call, and left unattributed, is stamped in
    place: nobody else has seen it yet, and a copy (`attrs.evolve`, which also runs every
    validator again) would cost more than the rest of the core's routing. One that already
    names a plugin (a constant the plugin hands out, stamped by an earlier call) is copied.
    """
    if result.plugin is None:
        object.__setattr__(result, "plugin", ref)
        return result
    if result.plugin == ref:
        return result
    return attrs.evolve(result, plugin=ref)


def _translated(exc: Exception, hook_name: str, partner_id: str, ref: PluginRef) -> PimmsError:
    """The core's error for an exception that escaped a plugin: only its type is kept."""
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        detail = f"connection failed ({type(exc).__name__})"
        error = PartnerUnavailable(partner_id, detail, request_sent=False)
    elif isinstance(exc, httpx.TimeoutException):
        error = PartnerUnavailable(partner_id, "no answer in time")
    elif isinstance(exc, httpx.TransportError):
        error = PartnerUnavailable(partner_id, f"connection failed ({type(exc).__name__})")
    else:
        return _plugin_error(ref, partner_id, f"{hook_name} raised {type(exc).__name__}")
    error.plugin = ref
    return error
