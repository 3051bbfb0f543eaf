"""A small fake partner plugin ("acme") and helpers to install plugins for real in a test.

`acme` is a complete plugin in a few lines, used to test the core without any real partner:
the core's tests call it in live mode with respx answering for `https://api.acme.test`.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx

from pimms_core import hookimpl
from pimms_core.auth import HeaderAuth
from pimms_core.config import Settings
from pimms_core.context import PartnerContext
from pimms_core.errors import AccountNotFound, ClaimNotFound
from pimms_core.http import raise_for_status, url_path
from pimms_core.models import (
    Account,
    AccountQuery,
    CategoryCode,
    Claim,
    ClaimRequest,
    ClaimStatus,
    PartnerInfo,
    ReferenceFormat,
    SandboxAccount,
    SettingSpec,
    StatusCode,
)
from pimms_core.payload import Payload

ACME_BASE = "https://api.acme.test"


def acme_info(partner_id: str = "acme", idempotency: str = "header") -> PartnerInfo:
    return PartnerInfo(
        id=partner_id,
        name="Acme Eau",
        sector="water",
        contract_version="1",
        reference=ReferenceFormat(r"\d{8}", "12345678", "8 digits, at the top of the bill"),
        categories=[
            CategoryCode("FACT", "billing", "Facturation"),
            CategoryCode("AUTRE", "other", "Autre"),
        ],
        statuses=[StatusCode("NEW", "received", "Nouvelle"), StatusCode("DONE", "resolved")],
        operations=["lookup_account", "open_claim", "claim_status"],
        idempotency=idempotency,
        settings=[SettingSpec("api_key", "the site's key", secret=True, sandbox_value="sbx")],
        sandbox_accounts=[SandboxAccount("12345678", note="fictional")],
    )


class AcmePlugin:
    """The fake plugin, as an object so each test can build a fresh one (or a variant)."""

    def __init__(self, partner_id: str = "acme", idempotency: str = "header") -> None:
        self.info = acme_info(partner_id, idempotency)

    @hookimpl
    def pimms_partner_info(self) -> PartnerInfo:
        return self.info

    @hookimpl
    def pimms_http_auth(self, partner_id: str, settings: Settings) -> httpx.Auth:
        return HeaderAuth("X-Api-Key", settings.secret("api_key"))

    @hookimpl
    def pimms_lookup_account(self, partner: PartnerContext, query: AccountQuery) -> Account:
        response = partner.http.get(url_path("/accounts/{}", query.reference))
        raise_for_status(response, partner.id, not_found=AccountNotFound)
        body = Payload.of(response, partner.id)
        return Account(
            partner=partner.id,
            reference=body.text("ref"),
            holder_name=body.text("name"),
            status="active",
            raw=body.data,
        )

    @hookimpl
    def pimms_open_claim(self, partner: PartnerContext, request: ClaimRequest) -> Claim:
        response = partner.http.post(
            "/claims",
            json={
                "ref": request.account_ref,
                "type": request.partner_category,
                "text": request.description,
            },
            headers={"Idempotency-Key": request.idempotency_key},
        )
        raise_for_status(response, partner.id, not_found=AccountNotFound)
        body = Payload.of(response, partner.id)
        return Claim(
            partner=partner.id,
            claim_ref=body.text("id"),
            state=partner.info.state_of(body.text("status")),
            partner_status=body.text("status"),
            opened_at=body.timestamp("at"),
        )

    @hookimpl
    def pimms_claim_status(self, partner: PartnerContext, claim_ref: str) -> ClaimStatus:
        response = partner.http.get(url_path("/claims/{}", claim_ref))
        raise_for_status(response, partner.id, not_found=ClaimNotFound)
        body = Payload.of(response, partner.id)
        code = body.text("status")
        return ClaimStatus(
            partner=partner.id,
            claim_ref=claim_ref,
            state=partner.info.state_of(code),
            partner_status=code,
        )


ACCOUNT_BODY = {"ref": "12345678", "name": "Canary Holder-Name"}


def install_plugin(
    site: Path, dist: str, module: str, source: str, entry_point: str | None = None
) -> None:
    """Install a plugin for real, as pip would leave it: a module and its dist-info with an
    entry point in the group `pimms`, in `site` (a folder on sys.path / PYTHONPATH)."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist.replace('-', '_')}-0.1.0.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(f"[pimms]\n{entry_point or module} = {module}\n")


def forget_module(name: str) -> None:
    sys.modules.pop(name, None)


def as_module(name: str, **attrs: Any) -> ModuleType:
    module = ModuleType(name)
    for key, value in attrs.items():
        setattr(module, key, value)
    return module
