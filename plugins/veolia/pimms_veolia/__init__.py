"""pimms plugin for Veolia (eau): the hook implementations.

Declared in the entry-point group `pimms` as `veolia = "pimms_veolia"`. Importing this module is
cheap: the simulator (and Flask) is imported only when sandbox mode asks for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from pimms_core import hookimpl
from pimms_core.config import Settings
from pimms_core.context import PartnerContext
from pimms_core.models import Account, AccountQuery, Claim, ClaimRequest, ClaimStatus, PartnerInfo
from pimms_veolia import client
from pimms_veolia.auth import VeoliaTokenAuth
from pimms_veolia.info import INFO, PARTNER_ID

if TYPE_CHECKING:
    from wsgiref.types import WSGIApplication

    from pimms_core.sandbox import SandboxState

__version__ = "0.1.0"


@hookimpl
def pimms_partner_info() -> PartnerInfo:
    return INFO


@hookimpl
def pimms_http_auth(partner_id: str, settings: Settings) -> httpx.Auth:
    return VeoliaTokenAuth(
        partner_id, login=settings.secret("login"), password=settings.secret("password")
    )


@hookimpl
def pimms_lookup_account(partner: PartnerContext, query: AccountQuery) -> Account:
    return client.lookup_account(partner, query)


@hookimpl
def pimms_open_claim(partner: PartnerContext, request: ClaimRequest) -> Claim:
    return client.open_claim(partner, request)


@hookimpl
def pimms_claim_status(partner: PartnerContext, claim_ref: str) -> ClaimStatus:
    return client.claim_status(partner, claim_ref)


@hookimpl
def pimms_sandbox(partner_id: str, state: SandboxState) -> WSGIApplication | None:
    if partner_id != PARTNER_ID:
        return None
    from pimms_veolia.simulator import create_app

    return create_app(state)
