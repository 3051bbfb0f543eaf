"""`Pimms`: the one object site software calls.

```python
from pimms_core import Pimms

with Pimms.from_config() as pimms:
    account = pimms.lookup_account("edf", "4001234567")
    claim = pimms.open_claim("edf", account.reference, "billing", "Disputed bill of March")
    status = pimms.claim_status("edf", claim.claim_ref)
```

It checks input before anything is sent, routes each call to the partner's plugin, and gives
each partner an HTTP client configured by the core: live when the configuration names an
endpoint, the partner's simulator (sandbox mode) when it does not. Every operation is
journaled; a claim is written to the outbox before it is sent (`submit_claim`), so a partner
that cannot take it now never loses it (`flush_outbox` sends it later, exactly once).
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import attrs
import httpx
from attrs import frozen

from pimms_core import calls, redaction
from pimms_core.config import (
    DEFAULT_TIMEOUT,
    Config,
    PartnerConfig,
    Settings,
    resolve_settings,
)
from pimms_core.context import Mode, PartnerContext
from pimms_core.errors import (
    InvalidInput,
    InvalidReference,
    PartnerUnavailable,
    PimmsError,
    UnsupportedOperation,
)
from pimms_core.models import (
    Account,
    AccountQuery,
    CallContext,
    Claim,
    ClaimRequest,
    ClaimStatus,
    Contact,
    Idempotency,
    Operation,
    OutboxState,
    PartnerInfo,
    PluginRef,
    QueuedClaim,
    new_correlation_id,
)
from pimms_core.plugins import LoadError, PluginHost
from pimms_core.policy import PartnerGuard, RetryPolicy
from pimms_core.quota import Budget
from pimms_core.redaction import REDACTOR
from pimms_core.sandbox import SandboxState
from pimms_core.store.base import Journal, Store
from pimms_core.store.delivery import (
    DEFINITIVE,
    Deliverer,
    DeliveryOutcome,
    ledger_entry,
    pending_reason,
    queued_claim,
)
from pimms_core.store.journaling import Journaled
from pimms_core.store.records import LedgerEntry, OutboxEntry, utc_now
from pimms_core.store.sqlite import SqliteStore
from pimms_core.transport import build_client, environment_proxy, sandbox_base_url

logger = redaction.logger("pimms.facade")

_CLAIM_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}")


@frozen
class PartnerEntry:
    """An installed partner as `partners()` lists it."""

    info: PartnerInfo
    plugin: PluginRef
    mode: Mode
    has_sandbox: bool


class Pimms:
    """The facade: partners, account lookup, claim opening and claim status."""

    def __init__(
        self,
        config: Config,
        host: PluginHost,
        *,
        sandbox: bool = False,
        env: Mapping[str, str] | None = None,
        sandbox_state: SandboxState | None = None,
        policy: RetryPolicy | None = None,
        store: Store | str | Path | None = None,
    ) -> None:
        """`sandbox=True` runs every partner against its simulator, whatever is configured.

        `sandbox_state` replaces the per-partner state files (tests pass an in-memory one).
        `store` is the ledger, outbox and journal: a `Store`, or the path of a SQLite file
        opened on first use; by default an in-memory one that lives as long as this object
        (`from_config` gives the site's database, `[pimms] database`).
        """
        self.config = config
        self.host = host
        self._force_sandbox = sandbox
        self._env = env
        self._sandbox_state = sandbox_state
        self.policy = policy or RetryPolicy()
        self._contexts: dict[str, PartnerContext] = {}
        self._guards: dict[str, PartnerGuard] = {}
        self._lock = threading.RLock()
        self._store: Store | None = None
        self._store_location: str | None = None
        self._owns_store = not (store is not None and not isinstance(store, str | Path))
        if isinstance(store, str | Path):
            self._store_location = str(store)
        else:
            self._store = store
        self._delivery: Deliverer | None = None
        redaction.install()

    @classmethod
    def from_config(
        cls,
        path: str | Path | None = None,
        *,
        sandbox: bool = False,
        plugins: Iterable[tuple[Any, PluginRef]] = (),
        use_entry_points: bool = True,
        env: Mapping[str, str] | None = None,
    ) -> Pimms:
        """Read the configuration (see `Config.load`) and discover installed plugins."""
        config = Config.load(path, env=env)
        host = PluginHost(use_entry_points=use_entry_points, plugins=plugins, env=env)
        return cls(config, host, sandbox=sandbox, env=env, store=config.database_path)

    # --- partners ---------------------------------------------------------------------------

    def partners(self) -> list[PartnerEntry]:
        """Installed partners, sorted by id, with their plugin and mode."""
        with_sandbox = self.host.sandbox_apps()
        return [
            PartnerEntry(loaded.info, loaded.ref, self.mode(partner_id), partner_id in with_sandbox)
            for partner_id, loaded in sorted(self.host.partners.items())
        ]

    @property
    def load_errors(self) -> list[LoadError]:
        """Plugins that could not be loaded, and why."""
        return self.host.errors

    def info(self, partner_id: str) -> PartnerInfo:
        return self.host.partner(partner_id).info

    def mode(self, partner_id: str) -> Mode:
        if self._force_sandbox or self.config.partner(partner_id).sandbox:
            return "sandbox"
        return "live"

    def sandbox_state(self, partner_id: str) -> SandboxState:
        """The simulator state of a partner, in the data directory."""
        if self._sandbox_state is not None:
            return self._sandbox_state
        return SandboxState(self.config.data_dir / "sandbox" / f"{partner_id}.json")

    # --- operations ---------------------------------------------------------------------------

    def lookup_account(
        self,
        partner: str,
        reference: str,
        *,
        last_name: str | None = None,
        call: CallContext | None = None,
    ) -> Account:
        """Find an account. Raises `InvalidReference` (nothing sent) if the format is wrong."""
        call = self._call(call)
        with self._journaled("lookup_account", partner, call, deferred=True) as record:
            if last_name:
                REDACTOR.add_personal([last_name])
            info = self._require(partner, Operation.LOOKUP_ACCOUNT)
            reference = self._check_reference(info, reference)
            record.account = reference
            query = AccountQuery(reference, self._check_name(info, last_name))
            account = calls.lookup_account(
                self.host, self._context(partner, call), query, self.policy, self._guard(partner)
            )
            REDACTOR.add_personal([account.holder_name, account.address])
            record.plugin = account.plugin
            return account

    def submit_claim(
        self,
        partner: str,
        account_ref: str,
        category: str,
        description: str,
        *,
        contact: Contact | None = None,
        last_name: str | None = None,
        service_id: str | None = None,
        idempotency_key: str | None = None,
        call: CallContext | None = None,
    ) -> Claim | QueuedClaim:
        """Open a claim through the outbox: the partner's `Claim`, or a `QueuedClaim`.

        The claim is written to the outbox (with its idempotency key, generated when none is
        given) before anything is sent. If the partner cannot take it now, the answer is a
        `QueuedClaim` with a local reference to give the resident; `flush_outbox` sends it
        later, exactly once. Input errors and the partner's refusals (`ClaimRejected`,
        `AccountNotFound`...) are raised. Sending the same key again never opens a second
        claim: it returns the first one (asking the partner again for its current state).
        """
        return self._submit(
            partner,
            account_ref,
            category,
            description,
            contact=contact,
            last_name=last_name,
            service_id=service_id,
            idempotency_key=idempotency_key,
            call=call,
        ).result()

    def open_claim(
        self,
        partner: str,
        account_ref: str,
        category: str,
        description: str,
        *,
        contact: Contact | None = None,
        last_name: str | None = None,
        service_id: str | None = None,
        idempotency_key: str | None = None,
        call: CallContext | None = None,
    ) -> Claim:
        """Open a claim. `category` is a common category or the partner's own code.

        Like `submit_claim`, but a claim the partner could not take now is an error: the one
        the partner gave (`PartnerUnavailable`...), whose `local_ref` names the claim kept in
        the outbox and whose message says so. Do not open it again with a new key:
        `flush_outbox` sends it. Sending the same `idempotency_key` again returns the same
        claim, never a second one. `service_id` names which of the account's services (a
        delivery point, a subscription) the claim is about, where it has several.
        """
        outcome = self._submit(
            partner,
            account_ref,
            category,
            description,
            contact=contact,
            last_name=last_name,
            service_id=service_id,
            idempotency_key=idempotency_key,
            call=call,
        )
        if outcome.claim is not None:
            return outcome.claim
        queued = outcome.queued
        error = outcome.error
        if queued is None:
            assert error is not None
            raise error
        if error is None:
            error = PartnerUnavailable(partner, queued.reason)
        error.local_ref = queued.local_ref
        error.message = f"{error.message}; {_kept_note(queued)}"
        error.args = (error.message,)
        raise error

    def claim_status(
        self, partner: str, claim_ref: str, *, call: CallContext | None = None
    ) -> ClaimStatus:
        """Where a claim stands now (recorded in the ledger when the claim is there)."""
        return self._claim_status(partner, claim_ref, self._call(call))

    def _claim_status(
        self,
        partner: str,
        claim_ref: str,
        call: CallContext,
        *,
        known: LedgerEntry | None = None,
    ) -> ClaimStatus:
        """`claim_status`; given the claim's ledger entry (`known`), the status is not written
        to the ledger: the caller writes it (a refresh, in batches)."""
        with self._journaled("claim_status", partner, call, deferred=True) as record:
            self._require(partner, Operation.CLAIM_STATUS)
            claim_ref = claim_ref.strip()
            if not _CLAIM_REF.fullmatch(claim_ref):
                raise InvalidInput(
                    f"{partner}: this claim reference is not valid: expected the reference the "
                    "partner gave when the claim was opened (letters, digits, - . _ : /)",
                    partner=partner,
                )
            status = calls.claim_status(
                self.host,
                self._context(partner, call),
                claim_ref,
                self.policy,
                self._guard(partner),
            )
            record.plugin = status.plugin
            if known is None:
                known = self._note_status(status)
            if known is not None:
                record.account, record.local_ref = known.account_ref, known.local_ref
            return status

    # --- the outbox -------------------------------------------------------------------------

    @property
    def store(self) -> Store:
        """The site's ledger, outbox and journal (`pimms_core.store`), opened on first use."""
        if self._store is None:
            with self._lock:
                if self._store is None:
                    self._store = SqliteStore(self._store_location or ":memory:")
        return self._store

    def flush_outbox(
        self, partner: str | None = None, *, call: CallContext | None = None
    ) -> list[DeliveryOutcome]:
        """Send the claims waiting in the outbox (all partners, or one), oldest first.

        Queued claims are sent; uncertain ones are reconciled by their partner's idempotency
        mechanism; ones left `sending` by a killed process are taken over as uncertain; ones
        needing a person's check are left alone (see `resolve_outbox`). One outcome per claim
        tried; each is journaled as a `flush` operation.
        """
        call = self._call(call)
        waiting = (OutboxState.QUEUED, OutboxState.UNCERTAIN, OutboxState.SENDING)
        return [
            self._flush_one(entry, call)
            for entry in self.store.outbox.list(states=waiting, partner=partner)
        ]

    def resolve_outbox(
        self,
        local_ref: str,
        *,
        claim_ref: str | None = None,
        resend: bool = False,
        cancel: bool = False,
        call: CallContext | None = None,
    ) -> OutboxEntry:
        """Settle a waiting claim after a person checked with the partner (one choice):

        - `claim_ref`: the partner has it under this reference (checked with the partner,
          then recorded as delivered, in the ledger);
        - `resend`: the partner does not have it: queue it for the next flush;
        - `cancel`: drop it (its personal data is removed).
        """
        call = self._call(call)
        if sum([claim_ref is not None, resend, cancel]) != 1:
            raise InvalidInput("say one thing: the partner's claim reference, resend or cancel")
        entry = self.store.outbox.get(local_ref.strip())
        if entry is None:
            raise InvalidInput(
                "no claim in the outbox has this local reference: expected one such as "
                "PIMMS-7K3M-Q9TD (see `pimms outbox`)"
            )
        with self._journaled("resolve", entry.partner, call) as record:
            record.account, record.local_ref = entry.account_ref, entry.local_ref
            if not entry.state.pending:
                raise InvalidInput(
                    f"claim {entry.local_ref} is {entry.state.value}: there is nothing to settle"
                )
            if entry.state is OutboxState.SENDING:
                raise InvalidInput(
                    f"claim {entry.local_ref} is being sent right now: settle it afterwards"
                )
            if cancel:
                return self.store.outbox.cancel(entry.local_ref, reason="cancelled by a person")
            if resend:
                return self.store.outbox.requeue(entry.local_ref)
            assert claim_ref is not None
            status = self.claim_status(entry.partner, claim_ref, call=call)
            ledger = ledger_entry(
                entry,
                Claim(
                    partner=status.partner,
                    claim_ref=status.claim_ref,
                    state=status.state,
                    partner_status=status.partner_status,
                    opened_at=status.updated_at or entry.created_at,
                    plugin=status.plugin,
                ),
                site_id=self.config.site_id,
            )
            return self.store.outbox.acknowledge(entry.local_ref, ledger=ledger)

    # --- plumbing ---------------------------------------------------------------------------

    def _submit(
        self,
        partner: str,
        account_ref: str,
        category: str,
        description: str,
        *,
        contact: Contact | None,
        last_name: str | None,
        service_id: str | None,
        idempotency_key: str | None,
        call: CallContext | None,
    ) -> DeliveryOutcome:
        """Check, write to the outbox, then deliver: the order that makes nothing lost."""
        call = self._call(call)
        with self._journaled("open_claim", partner, call) as record:
            REDACTOR.add_personal(
                [description, last_name, *((contact.email, contact.phone) if contact else ())]
            )
            info = self._require(partner, Operation.OPEN_CLAIM)
            code = info.category_code(category)
            request = ClaimRequest(
                account_ref=self._check_reference(info, account_ref),
                category=code.category,
                partner_category=code.code,
                description=description,
                idempotency_key=idempotency_key or uuid.uuid4().hex,
                contact=None if contact is None else contact.checked(),
                last_name=self._check_name(info, last_name),
                service_id=service_id,
            )
            record.account = request.account_ref
            context = self._context(partner, call)  # a configuration error: nothing is written
            entry, created = self.store.outbox.enqueue(request, partner=partner, call=call)
            record.local_ref = entry.local_ref
            if created:
                outcome = self._deliverer().deliver(
                    entry.local_ref, info.idempotency, self._sender(context)
                )
            else:
                outcome = self._resubmit(entry, request, info, context)
            record.settle(outcome)
            return outcome

    def _resubmit(
        self, entry: OutboxEntry, request: ClaimRequest, info: PartnerInfo, context: PartnerContext
    ) -> DeliveryOutcome:
        """A claim whose key is already in the outbox: never a second claim."""
        if entry.state is OutboxState.DELIVERED:
            return self._replay(entry, request, info, context)
        if entry.state is OutboxState.NEEDS_CHECK:
            return DeliveryOutcome(entry, queued=queued_claim(entry, pending_reason(entry)))
        if entry.state in (OutboxState.FAILED, OutboxState.CANCELLED):
            self.store.outbox.requeue(entry.local_ref, request)
        return self._deliverer().deliver(entry.local_ref, info.idempotency, self._sender(context))

    def _replay(
        self, entry: OutboxEntry, request: ClaimRequest, info: PartnerInfo, context: PartnerContext
    ) -> DeliveryOutcome:
        """The key of a delivered claim: the partner's mechanism returns the same claim (with
        its current state); with no mechanism, or the partner unreachable, the ledger's."""
        stored = self.store.ledger.get(entry.partner, entry.claim_ref) if entry.claim_ref else None
        known = _claim_of(stored) if stored is not None else None
        if info.idempotency is Idempotency.NONE:  # never sent twice, whatever else is known
            if known is not None:
                return DeliveryOutcome(entry, claim=known)
            already = InvalidInput(
                f"{entry.partner}: the claim with this key was already delivered "
                f"({entry.local_ref}): see `pimms claims`",
                partner=entry.partner,
            )
            already.local_ref = entry.local_ref
            return DeliveryOutcome(entry, error=already)
        try:
            claim = self._sender(context)(request)
        except PimmsError as exc:
            if known is not None and not isinstance(exc, DEFINITIVE):
                return DeliveryOutcome(entry, claim=known, error=exc)
            exc.local_ref = entry.local_ref
            return DeliveryOutcome(entry, error=exc)
        self.store.ledger.record(ledger_entry(entry, claim, site_id=self.config.site_id))
        return DeliveryOutcome(entry, claim=attrs.evolve(claim, local_ref=entry.local_ref))

    def _flush_one(self, entry: OutboxEntry, call: CallContext) -> DeliveryOutcome:
        with self._journaled("flush", entry.partner, call) as record:
            record.account, record.local_ref = entry.account_ref, entry.local_ref
            try:
                info = self.host.partner(entry.partner).info
                context = self._context(entry.partner, call)
                self._guard(entry.partner).breaker.fail_fast()  # nothing taken, nothing sent
            except PimmsError as exc:
                exc.local_ref = entry.local_ref
                outcome = DeliveryOutcome(
                    entry, queued=queued_claim(entry, exc.message, exc), error=exc
                )
            else:
                outcome = self._deliverer().deliver(
                    entry.local_ref, info.idempotency, self._sender(context)
                )
            record.settle(outcome)
            return outcome

    def _sender(self, context: PartnerContext) -> Callable[[ClaimRequest], Claim]:
        guard = self._guard(context.id)
        return lambda request: calls.open_claim(self.host, context, request, self.policy, guard)

    def _deliverer(self) -> Deliverer:
        if self._delivery is None:
            lease = self.policy.deadline + 2 * DEFAULT_TIMEOUT + 60.0
            self._delivery = Deliverer(self.store, lease_seconds=lease, site_id=self.config.site_id)
        return self._delivery

    def _note_status(self, status: ClaimStatus) -> LedgerEntry | None:
        """Record a fresh status in the ledger; a ledger that cannot be written is logged."""
        try:
            return self.store.ledger.update_status(
                status.partner,
                status.claim_ref,
                state=status.state,
                partner_status=status.partner_status,
                checked_at=utc_now(),
            )
        except PimmsError as exc:
            logger.error("the ledger could not record a status (%s)", exc.code)
        return None

    def _guard(self, partner_id: str) -> PartnerGuard:
        guard = self._guards.get(partner_id)
        if guard is None:
            with self._lock:
                guard = self._guards.get(partner_id)
                if guard is None:
                    table = self.config.partner(partner_id)
                    guard = PartnerGuard.for_partner(
                        partner_id,
                        max_concurrent=table.max_concurrent,
                        failures=table.circuit_failures,
                        cooldown=table.circuit_cooldown,
                    )
                    self._guards[partner_id] = guard
        return guard

    def _call(self, call: CallContext | None) -> CallContext:
        """The call's context, completed: this site's id, and a correlation id of its own."""
        if call is None:
            return CallContext(site_id=self.config.site_id, correlation_id=new_correlation_id())
        if not call.correlation_id:
            call = attrs.evolve(call, correlation_id=new_correlation_id())
        if call.site_id == "local" and self.config.site_id != "local":
            call = attrs.evolve(call, site_id=self.config.site_id)
        return call

    def _journaled(
        self, operation: str, partner: str | None, call: CallContext, *, deferred: bool = False
    ) -> Journaled:
        return Journaled(
            self._open_journal, operation, partner, call, plugin_of=self._ref, deferred=deferred
        )

    def _open_journal(self) -> Journal:
        return self.store.journal

    def _ref(self, partner_id: str) -> PluginRef | None:
        try:
            return self.host.partner(partner_id).ref
        except PimmsError:  # an unknown partner, or plugins that failed to load (strict)
            return None

    def _require(self, partner: str, operation: Operation) -> PartnerInfo:
        info = self.host.partner(partner).info
        if operation not in info.operations:
            raise UnsupportedOperation(partner, operation.value)
        return info

    @staticmethod
    def _check_reference(info: PartnerInfo, reference: str) -> str:
        cleaned = reference.strip() if isinstance(reference, str) else ""
        if not cleaned:
            raise InvalidReference(
                info.id, info.reference.hint, info.reference.example, reason="no reference given"
            )
        if not info.reference.matches(cleaned):
            raise InvalidReference(info.id, info.reference.hint, info.reference.example)
        return cleaned

    @staticmethod
    def _check_name(info: PartnerInfo, last_name: str | None) -> str | None:
        name = last_name.strip() if last_name else None
        if info.reference.needs_last_name and not name:
            raise InvalidInput(
                f"{info.id}: this reference is only found with the holder's last name: "
                "give it too (--name on the command line)",
                partner=info.id,
            )
        return name

    def _context(self, partner_id: str, call: CallContext) -> PartnerContext:
        """The partner's context (built once: settings, client), for this call."""
        context = self._contexts.get(partner_id)
        if context is None:
            with self._lock:
                context = self._contexts.get(partner_id) or self._build_context(partner_id)
                self._contexts[partner_id] = context
        return PartnerContext(context.info, context.settings, context.http, context.mode, call)

    def _build_context(self, partner_id: str) -> PartnerContext:
        info = self.host.partner(partner_id).info
        partner_config = self.config.partner(partner_id)
        mode = self.mode(partner_id)
        if mode == "sandbox":
            partner_config = PartnerConfig(partner_id, {**partner_config.table, "sandbox": True})
        settings = resolve_settings(info, partner_config, self._env)
        REDACTOR.add_secrets(settings.secret_values())
        redaction.install()  # the plugin is imported now: its loggers get the filter too
        client = self._build_client(info, partner_config, settings, mode)
        return PartnerContext(info, settings, client, mode)

    def _build_client(
        self, info: PartnerInfo, partner_config: PartnerConfig, settings: Settings, mode: Mode
    ) -> httpx.Client:
        auth = calls.http_auth(self.host, info.id, settings)
        budget = Budget.for_quotas(info.quotas)
        if mode == "sandbox":
            app = calls.sandbox_app(self.host, info.id, self.sandbox_state(info.id))
            if app is None:
                raise InvalidInput(
                    f"{info.id}: no endpoint is configured and its plugin ships no simulator: "
                    f"set base_url in [partners.{info.id}]",
                    partner=info.id,
                )
            return build_client(
                info.id,
                base_url=sandbox_base_url(info.id),
                timeout=partner_config.timeout,
                auth=auth,
                budget=budget,
                wsgi_app=app,
            )
        base_url = partner_config.base_url or info.base_url
        assert base_url is not None  # live mode means a base URL is configured
        return build_client(
            info.id,
            base_url=base_url,
            timeout=partner_config.timeout,
            auth=auth,
            budget=budget,
            proxy=partner_config.proxy or environment_proxy(base_url),
        )

    def close(self) -> None:
        """Close every partner's HTTP client, and the store if this facade opened it."""
        with self._lock:
            for context in self._contexts.values():
                context.http.close()
            self._contexts.clear()
            if self._store is not None and self._owns_store:
                self._store.close()
                self._store = None
                self._delivery = None

    def __enter__(self) -> Pimms:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _claim_of(entry: LedgerEntry) -> Claim:
    """The claim as the ledger knows it (for a replayed key when the partner cannot say)."""
    return Claim(
        partner=entry.partner,
        claim_ref=entry.claim_ref,
        state=entry.state,
        partner_status=entry.partner_status,
        opened_at=entry.opened_at,
        response_due_by=entry.response_due_by,
        replayed=True,
        plugin=entry.plugin_ref,
        local_ref=entry.local_ref,
    )


def _kept_note(queued: QueuedClaim) -> str:
    if queued.state is OutboxState.NEEDS_CHECK:
        return (
            f"the claim is kept in the outbox as {queued.local_ref}, but {queued.partner} may "
            "have received it: check with the partner before anything else (`pimms outbox`)"
        )
    return (
        f"the claim is kept in the outbox as {queued.local_ref} and `pimms outbox flush` will "
        "send it: do not open it again"
    )
