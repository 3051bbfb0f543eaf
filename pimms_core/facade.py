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
endpoint, the partner's simulator (sandbox mode) when it does not.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from attrs import frozen

from pimms_core import calls
from pimms_core.config import Config, PartnerConfig, Settings, resolve_settings
from pimms_core.context import Mode, PartnerContext
from pimms_core.errors import InvalidInput, InvalidReference, UnsupportedOperation
from pimms_core.models import (
    Account,
    AccountQuery,
    CallContext,
    Claim,
    ClaimRequest,
    ClaimStatus,
    Contact,
    Operation,
    PartnerInfo,
    PluginRef,
)
from pimms_core.plugins import LoadError, PluginHost
from pimms_core.policy import RetryPolicy
from pimms_core.quota import Budget, QuotaLimiter
from pimms_core.sandbox import SandboxState
from pimms_core.transport import build_client, sandbox_base_url

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
    ) -> None:
        """`sandbox=True` runs every partner against its simulator, whatever is configured.

        `sandbox_state` replaces the per-partner state files (tests pass an in-memory one).
        """
        self.config = config
        self.host = host
        self._force_sandbox = sandbox
        self._env = env
        self._sandbox_state = sandbox_state
        self.policy = policy or RetryPolicy()
        self._contexts: dict[str, PartnerContext] = {}
        self._lock = threading.Lock()

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
        return cls(config, host, sandbox=sandbox, env=env)

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
        if self._force_sandbox or self._partner_config(partner_id).sandbox:
            return "sandbox"
        return "live"

    def sandbox_state(self, partner_id: str) -> SandboxState:
        """The simulator state of a partner, in the data directory."""
        if self._sandbox_state is not None:
            return self._sandbox_state
        return SandboxState(self.config.data_dir / "sandbox" / f"{partner_id}.json")

    # --- operations -------------------------------------------------------------------------

    def lookup_account(
        self,
        partner: str,
        reference: str,
        *,
        last_name: str | None = None,
        call: CallContext | None = None,
    ) -> Account:
        """Find an account. Raises `InvalidReference` (nothing sent) if the format is wrong."""
        info = self._require(partner, Operation.LOOKUP_ACCOUNT)
        query = AccountQuery(
            self._check_reference(info, reference), self._check_name(info, last_name)
        )
        return calls.lookup_account(self.host, self._context(partner, call), query, self.policy)

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

        Sending the same `idempotency_key` again returns the same claim, never a second one
        (one is generated when none is given). `service_id` names which of the account's
        services (a delivery point, a subscription) the claim is about, where it has several.
        """
        info = self._require(partner, Operation.OPEN_CLAIM)
        code = info.category_code(category)
        request = ClaimRequest(
            account_ref=self._check_reference(info, account_ref),
            category=code.category,
            partner_category=code.code,
            description=description,
            idempotency_key=idempotency_key or uuid.uuid4().hex,
            contact=contact,
            last_name=self._check_name(info, last_name),
            service_id=service_id.strip() if service_id else None,
        )
        return calls.open_claim(self.host, self._context(partner, call), request, self.policy)

    def claim_status(
        self, partner: str, claim_ref: str, *, call: CallContext | None = None
    ) -> ClaimStatus:
        """Where a claim stands now."""
        self._require(partner, Operation.CLAIM_STATUS)
        claim_ref = claim_ref.strip()
        if not _CLAIM_REF.fullmatch(claim_ref):
            raise InvalidInput(
                f"{partner}: this claim reference is not valid: expected the reference the "
                "partner gave when the claim was opened (letters, digits, - . _ : /)",
                partner=partner,
            )
        return calls.claim_status(self.host, self._context(partner, call), claim_ref, self.policy)

    # --- plumbing ---------------------------------------------------------------------------

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

    def _partner_config(self, partner_id: str) -> PartnerConfig:
        return self.config.partner(partner_id)

    def _context(self, partner_id: str, call: CallContext | None) -> PartnerContext:
        context = self._contexts.get(partner_id)
        if context is None:
            with self._lock:
                context = self._contexts.get(partner_id) or self._build_context(partner_id)
                self._contexts[partner_id] = context
        if call is not None:
            return PartnerContext(context.info, context.settings, context.http, context.mode, call)
        return context

    def _build_context(self, partner_id: str) -> PartnerContext:
        info = self.host.partner(partner_id).info
        partner_config = self._partner_config(partner_id)
        mode = self.mode(partner_id)
        if mode == "sandbox":
            partner_config = PartnerConfig(partner_id, {**partner_config.table, "sandbox": True})
        settings = resolve_settings(info, partner_config, self._env)
        client = self._build_client(info, partner_config, settings, mode)
        call = CallContext(site_id=self.config.site_id)
        return PartnerContext(info, settings, client, mode, call)

    def _build_client(
        self, info: PartnerInfo, partner_config: PartnerConfig, settings: Settings, mode: Mode
    ) -> httpx.Client:
        auth = calls.http_auth(self.host, info.id, settings)
        budget = Budget([QuotaLimiter(q.calls, q.seconds) for q in info.quotas])
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
            info.id, base_url=base_url, timeout=partner_config.timeout, auth=auth, budget=budget
        )

    def close(self) -> None:
        """Close every partner's HTTP client."""
        with self._lock:
            for context in self._contexts.values():
                context.http.close()
            self._contexts.clear()

    def __enter__(self) -> Pimms:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
