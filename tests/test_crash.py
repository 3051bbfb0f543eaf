"""Crash tests: a `pimms claim open` process is killed (SIGKILL), then `pimms outbox flush`.

Killed after the outbox write and before the request reached the partner, or after the
partner took the claim and before its answer came back: after the flush the partner holds
exactly one claim, none lost. A partner with no idempotency mechanism (`nokey`, a fake plugin
installed for real below) must have the claim marked for a person instead of sent again.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

from pimms_core.models import OutboxState
from pimms_core.plugins import PluginHost
from pimms_core.testing import plugin_ref
from pimms_core.testing.crash import KillPoint, crash_claim
from pimms_core.testing.fault_partner import prepare
from tests.fakes import install_plugin

NOKEY_SOURCE = '''
"""A fake partner with no idempotency mechanism at all, and its simulator (tests only)."""

from __future__ import annotations

from typing import Any

import flask
import httpx

from pimms_core import hookimpl
from pimms_core.auth import HeaderAuth
from pimms_core.errors import AccountNotFound, ClaimNotFound
from pimms_core.http import raise_for_status, url_path
from pimms_core.models import (
    Account,
    CategoryCode,
    Claim,
    ClaimStatus,
    PartnerInfo,
    ReferenceFormat,
    SandboxAccount,
    SettingSpec,
    StatusCode,
)
from pimms_core.payload import Payload

API_KEY = "sandbox-nokey-api-key"
REFERENCE = "12345678"

INFO = PartnerInfo(
    id="nokey",
    name="Nokey Eau",
    sector="water",
    contract_version="1",
    reference=ReferenceFormat(r"[0-9]{8}", REFERENCE, "8 digits, at the top of the bill"),
    categories=[CategoryCode("FACT", "billing"), CategoryCode("AUTRE", "other")],
    statuses=[StatusCode("NEW", "received", "Nouvelle"), StatusCode("DONE", "resolved")],
    operations=["lookup_account", "open_claim", "claim_status"],
    idempotency="none",
    settings=[SettingSpec("api_key", "the site key", secret=True, sandbox_value=API_KEY)],
    sandbox_accounts=[SandboxAccount(REFERENCE, note="fictional")],
)


@hookimpl
def pimms_partner_info() -> PartnerInfo:
    return INFO


@hookimpl
def pimms_http_auth(partner_id: str, settings: Any) -> httpx.Auth:
    return HeaderAuth("X-Api-Key", settings.secret("api_key"))


@hookimpl
def pimms_lookup_account(partner: Any, query: Any) -> Account:
    response = partner.http.get(url_path("/accounts/{}", query.reference))
    raise_for_status(response, partner.id, not_found=AccountNotFound)
    body = Payload.of(response, partner.id)
    return Account(
        partner=partner.id,
        reference=body.text("ref"),
        holder_name=body.text("name"),
        status="active" if body.text("status") == "ACTIVE" else "unknown",
        partner_status=body.text("status"),
        raw=body.data,
    )


def _claim(partner: Any, body: Payload) -> Claim:
    status = body.text("status")
    return Claim(
        partner=partner.id,
        claim_ref=body.text("id"),
        state=partner.info.state_of(status),
        partner_status=status,
        opened_at=body.timestamp("at"),
        raw=body.data,
    )


@hookimpl
def pimms_open_claim(partner: Any, request: Any) -> Claim:
    response = partner.http.post(
        "/claims",
        json={"ref": request.account_ref, "type": request.partner_category,
              "text": request.description},
    )
    raise_for_status(response, partner.id, not_found=AccountNotFound)
    return _claim(partner, Payload.of(response, partner.id))


@hookimpl
def pimms_claim_status(partner: Any, claim_ref: str) -> ClaimStatus:
    response = partner.http.get(url_path("/claims/{}", claim_ref))
    raise_for_status(response, partner.id, not_found=ClaimNotFound)
    body = Payload.of(response, partner.id)
    code = body.text("status")
    return ClaimStatus(
        partner=partner.id,
        claim_ref=body.text("id"),
        state=partner.info.state_of(code),
        partner_status=code,
        partner_label=partner.info.label_of(code),
        raw=body.data,
    )


@hookimpl
def pimms_sandbox(partner_id: str, state: Any) -> Any:
    return create_app(state) if partner_id == "nokey" else None


def create_app(state: Any) -> flask.Flask:
    """Every POST /claims opens a new claim: there is nothing to recognise a repeat by."""
    app = flask.Flask("pimms_nokey")

    @app.before_request
    def authenticate() -> Any:
        if flask.request.headers.get("X-Api-Key") != API_KEY:
            return flask.jsonify(error="unauthorized"), 401
        return None

    @app.get("/accounts/<ref>")
    def account(ref: str) -> Any:
        if ref != REFERENCE:
            return flask.jsonify(error="not found"), 404
        return flask.jsonify(ref=ref, name="Nokey Holder", status="ACTIVE")

    @app.post("/claims")
    def create() -> Any:
        body = flask.request.get_json(force=True)
        if body.get("ref") != REFERENCE:
            return flask.jsonify(error="not found"), 404
        with state.transaction() as data:
            claims = data.setdefault("claims", {})
            claim_id = f"NK-{len(claims) + 1:04d}"
            claims[claim_id] = {
                "id": claim_id,
                "status": "NEW",
                "at": state.now().isoformat(),
                "text": body.get("text"),
            }
            claim = dict(claims[claim_id])
        claim.pop("text")
        return flask.jsonify(claim), 201

    @app.get("/claims/<claim_id>")
    def read(claim_id: str) -> Any:
        claim = state.read().get("claims", {}).get(claim_id)
        if claim is None:
            return flask.jsonify(error="not found"), 404
        return flask.jsonify({k: v for k, v in claim.items() if k != "text"})

    return app
'''


def install_nokey(site: Path) -> ModuleType:
    """Install the `nokey` plugin for real in `site` (module and dist-info with its entry
    point) and import it here too, for the simulator this process serves."""
    install_plugin(site, "pimms-nokey", "pimms_nokey", NOKEY_SOURCE, entry_point="nokey")
    spec = importlib.util.spec_from_file_location("pimms_nokey", site / "pimms_nokey.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["pimms_nokey"] = module
    spec.loader.exec_module(module)
    return module


def _installed_partners() -> list[str]:
    host = PluginHost(env={})
    return sorted(host.sandbox_apps())


@pytest.mark.parametrize("kill_point", list(KillPoint))
@pytest.mark.parametrize("partner", _installed_partners())
def test_a_claim_killed_mid_send_reaches_the_partner_exactly_once_after_a_flush(
    partner: str, kill_point: KillPoint, tmp_path: Path
) -> None:
    host = PluginHost(env={})
    setup = prepare(host, partner, tmp_path / "probe")
    outcome = crash_claim(host, setup, kill_point, tmp_path / "crash")
    assert outcome.state_at_kill == OutboxState.SENDING.value
    assert outcome.claims_at_kill == (1 if kill_point is KillPoint.AFTER_SEND else 0)
    assert outcome.problems == ()
    assert outcome.leaks == ()
    assert (outcome.claims_after, outcome.lost, outcome.duplicated) == (1, False, False)
    assert outcome.state_after == OutboxState.DELIVERED.value


@pytest.mark.parametrize("kill_point", list(KillPoint))
def test_with_no_mechanism_a_claim_killed_mid_send_waits_for_a_person_not_resent(
    kill_point: KillPoint, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    module = install_nokey(site)
    host = PluginHost(use_entry_points=False, plugins=[(module, plugin_ref(module, "pimms-nokey"))])
    setup = prepare(host, "nokey", tmp_path / "probe")
    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    outcome = crash_claim(
        host, setup, kill_point, tmp_path / "crash", env={**os.environ, "PYTHONPATH": path}
    )
    assert outcome.problems == ()
    assert outcome.state_after == OutboxState.NEEDS_CHECK.value
    claims = 1 if kill_point is KillPoint.AFTER_SEND else 0
    assert (outcome.claims_at_kill, outcome.claims_after) == (claims, claims)
    assert not outcome.lost and not outcome.duplicated and outcome.leaks == ()
