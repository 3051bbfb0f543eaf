"""Preparing a partner for the fault matrix: live settings, inputs that work, canaries.

The matrix runs a plugin in live mode against its own simulator served on loopback, so the
plugin's secret settings must be ones the simulator accepts: the sandbox values its
`SettingSpec`s declare, passed through environment variables as a site would. Those values
are then the canary secrets (they must never show), and the personal data sent with each
call is canary data. Which account to look up and which account and category a claim can be
opened on are found by trying the plugin's seeded sandbox accounts in sandbox mode first.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from attrs import frozen

from pimms_core.config import Config
from pimms_core.errors import AccountNotFound, ClaimRejected, InvalidInput
from pimms_core.facade import Pimms
from pimms_core.models import Category, Claim, Contact, Operation, PartnerInfo, SandboxAccount
from pimms_core.plugins import PluginHost
from pimms_core.policy import NO_RETRY, RetryPolicy
from pimms_core.sandbox import SandboxState
from pimms_core.testing.canary import CANARY, Canary

ENV_PREFIX = "PIMMS_FAULTS"


class PartnerNotReady(Exception):
    """The partner cannot be run through the matrix (no simulator, no sandbox value...)."""


@frozen
class PartnerSetup:
    """What the matrix needs to run one partner live against its simulator."""

    info: PartnerInfo
    table: Mapping[str, Any]
    """The partner's configuration table, without `base_url` and `timeout`."""
    env: Mapping[str, str]
    """The environment holding its secret settings (the simulator's sandbox credentials)."""
    lookup: SandboxAccount | None
    claim_account: SandboxAccount | None
    category: str | None
    canary: Canary

    @property
    def id(self) -> str:
        return self.info.id

    def last_name(self, account: SandboxAccount) -> str | None:
        """The seeded name where the reference needs one, else the canary name (sent along
        where a plugin passes it on, and looked for in every log)."""
        if self.info.reference.needs_last_name:
            return account.last_name
        return self.canary.last_name

    def facade(
        self,
        host: PluginHost,
        base_url: str,
        data_dir: Path,
        *,
        timeout: float,
        policy: RetryPolicy,
    ) -> Pimms:
        """A facade calling the partner live at `base_url`, keeping its store in `data_dir`."""
        table = {**self.table, "base_url": base_url, "timeout": timeout}
        document = {
            "pimms": {"data_dir": str(data_dir), "site_id": "fault-matrix"},
            "partners": {self.id: table},
        }
        config = Config.from_document(document, env=self.env)
        return Pimms(config, host, env=self.env, policy=policy, store=config.database_path)

    def open_claim(self, pimms: Pimms, key: str | None = None) -> Any:
        """Open the matrix's claim (canary description and contact) through `pimms`."""
        assert self.claim_account is not None and self.category is not None
        return pimms.open_claim(
            self.id,
            self.claim_account.reference,
            self.category,
            self.canary.description,
            contact=Contact(email=self.canary.email, phone=self.canary.phone),
            last_name=self.last_name(self.claim_account),
            idempotency_key=key or f"fault-{uuid.uuid4().hex}",
        )

    def lookup_account(self, pimms: Pimms) -> Any:
        assert self.lookup is not None
        return pimms.lookup_account(
            self.id, self.lookup.reference, last_name=self.last_name(self.lookup)
        )


def live_settings(info: PartnerInfo) -> tuple[dict[str, Any], dict[str, str]]:
    """The configuration table and environment that give the plugin its sandbox settings in
    live mode: secrets through `<name>_env` variables, other settings in the table."""
    table: dict[str, Any] = {}
    env: dict[str, str] = {}
    for spec in info.settings:
        if spec.sandbox_value is None:
            if spec.default is not None:
                continue
            raise PartnerNotReady(f"setting {spec.name!r} declares no sandbox value")
        if spec.secret:
            variable = f"{ENV_PREFIX}_{info.id}_{spec.name}".upper().replace("-", "_")
            table[f"{spec.name}_env"] = variable
            env[variable] = spec.sandbox_value
        else:
            table[spec.name] = spec.sandbox_value
    return table, env


def prepare(host: PluginHost, partner_id: str, data_dir: Path) -> PartnerSetup:
    """Find working inputs for `partner_id` on its simulator (in sandbox mode, in memory)."""
    info = host.partner(partner_id).info
    if partner_id not in host.sandbox_apps():
        raise PartnerNotReady("its plugin ships no simulator (pimms_sandbox)")
    if not info.sandbox_accounts:
        raise PartnerNotReady("its plugin declares no sandbox account")
    table, env = live_settings(info)
    canary = CANARY.with_values(
        **{f"secret {name}": value for name, value in env.items()},
    )
    document = {"pimms": {"data_dir": str(data_dir), "site_id": "fault-matrix-probe"}}
    config = Config.from_document(document, env={})
    probe = Pimms(
        config,
        host,
        sandbox=True,
        env={},
        sandbox_state=SandboxState(None),
        policy=NO_RETRY,
        store=config.database_path,
    )
    setup = PartnerSetup(info, table, env, None, None, None, canary)
    with probe:
        lookup = (
            _first_lookup(probe, setup) if Operation.LOOKUP_ACCOUNT in info.operations else None
        )
        claim: tuple[SandboxAccount, str] | None = None
        if Operation.OPEN_CLAIM in info.operations:
            claim = _first_claim(probe, setup)
    extra: dict[str, str | None] = {}
    for account in info.sandbox_accounts:
        extra[f"seeded last name {account.reference}"] = account.last_name
    if lookup is not None:
        # The holder's name and address are personal data, unless the partner gives the same
        # words in a field that is not (La Poste-like "holders" are carriers, not people).
        shown = repr(lookup[1])
        for what, value in (("holder name", lookup[1].holder_name), ("address", lookup[1].address)):
            if value and value not in shown:
                extra[what] = value
    return PartnerSetup(
        info,
        table,
        env,
        lookup[0] if lookup else None,
        claim[0] if claim else None,
        claim[1] if claim else None,
        canary.with_values(**{k.replace(" ", "_"): v for k, v in extra.items()}),
    )


def _first_lookup(probe: Pimms, setup: PartnerSetup) -> tuple[SandboxAccount, Any]:
    for account in setup.info.sandbox_accounts:
        try:
            found = probe.lookup_account(
                setup.id, account.reference, last_name=setup.last_name(account)
            )
            return account, found
        except (AccountNotFound, InvalidInput):
            continue
    raise PartnerNotReady("none of its sandbox accounts can be looked up on its simulator")


def _first_claim(probe: Pimms, setup: PartnerSetup) -> tuple[SandboxAccount, str]:
    categories = sorted(setup.info.categories, key=lambda c: c.category is not Category.OTHER)
    for account in setup.info.sandbox_accounts:
        for category in categories:
            trial = PartnerSetup(
                setup.info, setup.table, setup.env, None, account, category.code, setup.canary
            )
            try:
                result = trial.open_claim(probe)
            except (ClaimRejected, AccountNotFound, InvalidInput):
                continue
            if isinstance(result, Claim):
                return account, category.code
            raise PartnerNotReady("its simulator did not take a claim in sandbox mode")
    raise PartnerNotReady("its simulator refuses a claim on every sandbox account and category")
