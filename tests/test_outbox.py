"""The outbox through the facade: written before sending, kept when the partner cannot take it,
reconciled by each idempotency mechanism, never sent twice, refused claims never retried.

The fake partner `acme` (tests/fakes.py) answers through respx; variants add the `lookup` and
`unique_key` mechanisms, or none at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx

from pimms_core import hookimpl
from pimms_core.context import PartnerContext
from pimms_core.errors import (
    AccountNotFound,
    ClaimRejected,
    PartnerUnavailable,
    UnknownPartner,
)
from pimms_core.facade import Pimms
from pimms_core.http import raise_for_status
from pimms_core.models import Claim, ClaimRequest, ClaimState, OutboxState, QueuedClaim
from pimms_core.payload import Payload
from pimms_core.policy import NO_RETRY
from pimms_core.store import open_store
from pimms_core.store.delivery import Deliverer, settled_state
from pimms_core.store.lease import owner_id
from pimms_core.testing import live_pimms
from tests.fakes import ACME_BASE, AcmePlugin

ENV = {"ACME_KEY": "acme-secret-key"}
SETTINGS = {"api_key_env": "ACME_KEY"}
CREATED = {"id": "ACME-1", "status": "NEW", "at": "2026-03-01T09:00:00+00:00"}
DESCRIPTION = "Le compteur affiche un index impossible"


class LookupAcme(AcmePlugin):
    """Acme whose API stores the caller's key and finds claims by it (`lookup`)."""

    def __init__(self) -> None:
        super().__init__(idempotency="lookup")

    @hookimpl
    def pimms_find_claim(self, partner: PartnerContext, idempotency_key: str) -> Claim | None:
        response = partner.http.get("/claims", params={"key": idempotency_key})
        raise_for_status(response, partner.id)
        found = Payload.of(response, partner.id).objects("claims")
        if not found:
            return None
        return Claim(
            partner=partner.id,
            claim_ref=found[0].text("id"),
            state=partner.info.state_of(found[0].text("status")),
            partner_status=found[0].text("status"),
            opened_at=found[0].timestamp("at"),
        )


class UniqueKeyAcme(AcmePlugin):
    """Acme whose API refuses a second claim with the caller's key, naming the first (409)."""

    def __init__(self) -> None:
        super().__init__(idempotency="unique_key")

    @hookimpl
    def pimms_open_claim(self, partner: PartnerContext, request: ClaimRequest) -> Claim:
        response = partner.http.post(
            "/claims", json={"ref": request.account_ref, "key": request.idempotency_key}
        )
        replayed = response.status_code == 409
        if not replayed:
            raise_for_status(
                response,
                partner.id,
                not_found=AccountNotFound,
                rejected=lambda p: ClaimRejected(p, "the claim was refused"),
            )
        body = Payload.of(response, partner.id)
        return Claim(
            partner=partner.id,
            claim_ref=body.text("id"),
            state=partner.info.state_of(body.text("status")),
            partner_status=body.text("status"),
            opened_at=body.timestamp("at"),
            replayed=replayed,
        )


@pytest.fixture
def acme() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=ACME_BASE, assert_all_called=False) as router:
        yield router


def facade(plugin: Any = None) -> Pimms:
    return live_pimms(
        plugin or AcmePlugin(), ACME_BASE, settings=SETTINGS, env=ENV, policy=NO_RETRY
    )


def submit(pimms: Pimms, key: str | None = "key-1") -> Claim | QueuedClaim:
    return pimms.submit_claim("acme", "12345678", "billing", DESCRIPTION, idempotency_key=key)


def keys_sent(route: respx.Route) -> list[str]:
    return [call.request.headers.get("Idempotency-Key", "") for call in route.calls]


# --- delivered at once ----------------------------------------------------------------------------


def test_a_delivered_claim_is_in_the_ledger_and_its_text_left_the_outbox(
    acme: respx.MockRouter,
) -> None:
    acme.post("/claims").respond(201, json=CREATED)
    pimms = facade()
    claim = submit(pimms, key=None)
    assert isinstance(claim, Claim) and claim.claim_ref == "ACME-1"
    assert claim.local_ref is not None and claim.local_ref.startswith("PIMMS-")
    entry = pimms.store.outbox.get(claim.local_ref)
    assert entry is not None and entry.state is OutboxState.DELIVERED
    assert entry.description is None and entry.claim_ref == "ACME-1"
    assert len(entry.idempotency_key) == 32  # generated, since none was given
    [ledger] = pimms.store.ledger.list()
    assert (ledger.claim_ref, ledger.local_ref, ledger.category) == (
        "ACME-1",
        claim.local_ref,
        "billing",
    )
    assert claim.plugin is not None and ledger.plugin == claim.plugin.name
    assert pimms.store.outbox.list() == []


def test_the_outbox_row_is_written_before_the_partner_is_called(
    acme: respx.MockRouter,
) -> None:
    pimms = facade()
    seen: list[OutboxState] = []

    def answer(request: httpx.Request) -> httpx.Response:
        [entry] = pimms.store.outbox.list()
        seen.append(entry.state)
        assert entry.description == DESCRIPTION
        return httpx.Response(201, json=CREATED)

    acme.post("/claims").mock(side_effect=answer)
    submit(pimms)
    assert seen == [OutboxState.SENDING]


# --- the partner cannot be reached ----------------------------------------------------------------


def test_an_unreachable_partner_queues_the_claim_and_a_flush_sends_it_once(
    acme: respx.MockRouter,
) -> None:
    route = acme.post("/claims")
    route.side_effect = httpx.ConnectError("refused")
    pimms = facade()
    queued = submit(pimms)
    assert isinstance(queued, QueuedClaim)
    assert queued.state is OutboxState.QUEUED and queued.partner == "acme"
    assert "acme is unavailable: connection failed" in queued.reason
    [entry] = pimms.store.outbox.list()
    assert entry.local_ref == queued.local_ref and entry.description == DESCRIPTION
    assert pimms.store.ledger.list() == []

    route.side_effect = None
    route.respond(201, json=CREATED)
    [outcome] = pimms.flush_outbox()
    assert outcome.delivered and outcome.claim is not None
    assert outcome.claim.local_ref == queued.local_ref
    assert keys_sent(route) == ["key-1", "key-1"]
    assert pimms.flush_outbox() == []
    assert route.call_count == 2
    assert [e.claim_ref for e in pimms.store.ledger.list()] == ["ACME-1"]


def test_open_claim_raises_the_partner_error_naming_the_claim_kept(
    acme: respx.MockRouter,
) -> None:
    acme.post("/claims").mock(side_effect=httpx.ConnectError("refused"))
    pimms = facade()
    with pytest.raises(PartnerUnavailable) as caught:
        pimms.open_claim("acme", "12345678", "billing", DESCRIPTION, idempotency_key="k")
    error = caught.value
    assert error.local_ref is not None
    assert f"kept in the outbox as {error.local_ref}" in str(error)
    assert "do not open it again" in str(error)
    assert error.to_dict()["local_ref"] == error.local_ref
    assert [e.local_ref for e in pimms.store.outbox.list()] == [error.local_ref]


def test_the_same_key_while_queued_is_the_same_entry(acme: respx.MockRouter) -> None:
    route = acme.post("/claims")
    route.side_effect = httpx.ConnectError("refused")
    pimms = facade()
    first = submit(pimms)
    second = submit(pimms)
    assert isinstance(first, QueuedClaim) and isinstance(second, QueuedClaim)
    assert first.local_ref == second.local_ref
    assert len(pimms.store.outbox.list()) == 1


def test_a_circuit_open_at_flush_time_touches_nothing(acme: respx.MockRouter) -> None:
    route = acme.post("/claims")
    route.side_effect = httpx.ConnectError("refused")
    pimms = facade()
    queued = submit(pimms)
    assert isinstance(queued, QueuedClaim)
    breaker = pimms._guard("acme").breaker
    for _ in range(breaker.threshold):
        breaker.record_failure()
    [outcome] = pimms.flush_outbox()
    assert outcome.error is not None and outcome.error.code == "circuit_open"
    assert outcome.queued is not None and outcome.queued.retry_after is not None
    entry = pimms.store.outbox.get(queued.local_ref)
    assert entry is not None and entry.attempts == 1 and entry.state is OutboxState.QUEUED
    assert route.call_count == 1


def test_our_credentials_refused_keep_the_claim_queued(acme: respx.MockRouter) -> None:
    acme.post("/claims").respond(401)
    queued = submit(facade())
    assert isinstance(queued, QueuedClaim) and queued.state is OutboxState.QUEUED
    assert "credentials" in queued.reason


# --- the outcome is unknown: reconciled by the partner's mechanism --------------------------------


@pytest.mark.parametrize(
    "failure",
    [httpx.ReadTimeout("slow"), httpx.Response(503), httpx.Response(502, text="<html>")],
)
def test_header_partner_uncertain_claim_is_sent_again_with_the_same_key(
    acme: respx.MockRouter, failure: Any
) -> None:
    route = acme.post("/claims")
    route.side_effect = [failure, httpx.Response(200, json=CREATED)]
    pimms = facade()
    queued = submit(pimms)
    assert isinstance(queued, QueuedClaim) and queued.state is OutboxState.UNCERTAIN
    [outcome] = pimms.flush_outbox()
    assert outcome.delivered
    assert keys_sent(route) == ["key-1", "key-1"]
    assert len(pimms.store.ledger.list()) == 1


def test_lookup_partner_uncertain_claim_is_found_not_sent_again(acme: respx.MockRouter) -> None:
    find = acme.get("/claims")
    find.side_effect = [
        httpx.Response(200, json={"claims": []}),
        httpx.Response(200, json={"claims": [CREATED]}),
    ]
    create = acme.post("/claims")
    create.side_effect = httpx.ReadTimeout("the answer never came")
    pimms = facade(LookupAcme())
    queued = submit(pimms)
    assert isinstance(queued, QueuedClaim) and queued.state is OutboxState.UNCERTAIN
    [outcome] = pimms.flush_outbox()
    assert outcome.claim is not None and outcome.claim.replayed
    assert create.call_count == 1 and find.call_count == 2
    assert find.calls.last.request.url.params["key"] == "key-1"


def test_unique_key_partner_returns_the_existing_claim_on_the_second_send(
    acme: respx.MockRouter,
) -> None:
    create = acme.post("/claims")
    create.side_effect = [httpx.ReadTimeout("lost"), httpx.Response(409, json=CREATED)]
    pimms = facade(UniqueKeyAcme())
    assert isinstance(submit(pimms), QueuedClaim)
    [outcome] = pimms.flush_outbox()
    assert outcome.claim is not None and outcome.claim.replayed
    assert outcome.claim.claim_ref == "ACME-1"


def test_a_plugin_that_crashes_leaves_the_claim_uncertain(acme: respx.MockRouter) -> None:
    acme.post("/claims").respond(201, json={"unexpected": True})
    queued = submit(facade())
    assert isinstance(queued, QueuedClaim) and queued.state is OutboxState.UNCERTAIN


# --- no mechanism: never sent again blindly -------------------------------------------------------


def test_no_mechanism_and_an_unknown_outcome_needs_a_person(acme: respx.MockRouter) -> None:
    route = acme.post("/claims")
    route.side_effect = httpx.ReadTimeout("the answer never came")
    pimms = facade(AcmePlugin(idempotency="none"))
    queued = submit(pimms)
    assert isinstance(queued, QueuedClaim) and queued.state is OutboxState.NEEDS_CHECK
    assert "check with acme" in queued.reason
    outcomes = pimms.flush_outbox()
    assert outcomes == []  # a claim needing a check is not flushed
    assert route.call_count == 1
    again = submit(pimms)
    assert isinstance(again, QueuedClaim) and again.state is OutboxState.NEEDS_CHECK
    assert route.call_count == 1
    [listed] = pimms.store.outbox.list()
    assert listed.state is OutboxState.NEEDS_CHECK


def test_a_person_settles_a_claim_found_at_the_partner(acme: respx.MockRouter) -> None:
    acme.post("/claims").mock(side_effect=httpx.ReadTimeout("lost"))
    acme.get("/claims/ACME-1").respond(200, json={"status": "NEW"})
    pimms = facade(AcmePlugin(idempotency="none"))
    queued = submit(pimms)
    assert isinstance(queued, QueuedClaim)
    settled = pimms.resolve_outbox(queued.local_ref, claim_ref="ACME-1")
    assert settled.state is OutboxState.DELIVERED and settled.description is None
    [ledger] = pimms.store.ledger.list()
    assert ledger.claim_ref == "ACME-1" and ledger.state is ClaimState.RECEIVED
    assert ledger.local_ref == queued.local_ref


def test_a_person_sends_again_a_claim_the_partner_does_not_have(acme: respx.MockRouter) -> None:
    route = acme.post("/claims")
    route.side_effect = [httpx.ReadTimeout("lost"), httpx.Response(201, json=CREATED)]
    pimms = facade(AcmePlugin(idempotency="none"))
    queued = submit(pimms)
    assert isinstance(queued, QueuedClaim)
    assert pimms.resolve_outbox(queued.local_ref, resend=True).state is OutboxState.QUEUED
    [outcome] = pimms.flush_outbox()
    assert outcome.delivered and route.call_count == 2


def test_no_mechanism_but_surely_not_received_is_sent_again(acme: respx.MockRouter) -> None:
    route = acme.post("/claims")
    route.side_effect = [httpx.ConnectError("refused"), httpx.Response(201, json=CREATED)]
    pimms = facade(AcmePlugin(idempotency="none"))
    queued = submit(pimms)
    assert isinstance(queued, QueuedClaim) and queued.state is OutboxState.QUEUED
    assert pimms.flush_outbox()[0].delivered


def test_no_mechanism_and_a_process_killed_while_sending_needs_a_person(
    acme: respx.MockRouter,
) -> None:
    route = acme.post("/claims").respond(201, json=CREATED)
    pimms = facade(AcmePlugin(idempotency="none"))
    entry, _ = pimms.store.outbox.enqueue(
        ClaimRequest("12345678", "billing", "FACT", DESCRIPTION, "key-9"),
        partner="acme",
        call=pimms._call(None),
    )
    assert pimms.store.outbox.take(entry.local_ref, owner="far-away:1", lease_seconds=-1)
    [outcome] = pimms.flush_outbox()
    assert outcome.entry.state is OutboxState.NEEDS_CHECK
    assert not route.called


def test_no_mechanism_and_the_key_of_a_delivered_claim_returns_the_ledger_claim(
    acme: respx.MockRouter,
) -> None:
    route = acme.post("/claims").respond(201, json=CREATED)
    pimms = facade(AcmePlugin(idempotency="none"))
    first = submit(pimms)
    again = submit(pimms)
    assert isinstance(first, Claim) and isinstance(again, Claim)
    assert again.replayed and again.claim_ref == first.claim_ref
    assert again.local_ref == first.local_ref
    assert route.call_count == 1


# --- refusals: failed, never retried --------------------------------------------------------------


@pytest.mark.parametrize(("status", "error"), [(404, AccountNotFound)])
def test_a_refused_claim_is_failed_and_not_retried(
    acme: respx.MockRouter, status: int, error: type[Exception]
) -> None:
    route = acme.post("/claims").respond(status)
    pimms = facade()
    with pytest.raises(error) as caught:
        submit(pimms)
    local_ref = getattr(caught.value, "local_ref", None)
    assert local_ref is not None
    entry = pimms.store.outbox.get(local_ref)
    assert entry is not None and entry.state is OutboxState.FAILED and entry.scrubbed
    assert pimms.flush_outbox() == []
    assert route.call_count == 1


def test_a_refused_claim_opened_again_with_its_key_is_sent_again(acme: respx.MockRouter) -> None:
    route = acme.post("/claims")
    route.side_effect = [httpx.Response(404), httpx.Response(201, json=CREATED)]
    pimms = facade()
    with pytest.raises(AccountNotFound):
        submit(pimms)
    claim = submit(pimms)
    assert isinstance(claim, Claim) and route.call_count == 2


def test_the_key_of_a_delivered_claim_asks_the_partner_again(acme: respx.MockRouter) -> None:
    route = acme.post("/claims")
    route.side_effect = [
        httpx.Response(201, json=CREATED),
        httpx.Response(200, json={**CREATED, "status": "DONE"}),
    ]
    pimms = facade()
    first = submit(pimms)
    again = submit(pimms)
    assert isinstance(first, Claim) and isinstance(again, Claim)
    assert again.state is ClaimState.RESOLVED and again.local_ref == first.local_ref
    assert keys_sent(route) == ["key-1", "key-1"]
    [ledger] = pimms.store.ledger.list()
    assert ledger.state is ClaimState.RESOLVED


def test_the_key_of_a_delivered_claim_while_the_partner_is_down(acme: respx.MockRouter) -> None:
    route = acme.post("/claims")
    route.side_effect = [httpx.Response(201, json=CREATED), httpx.ConnectError("down")]
    pimms = facade()
    first = submit(pimms)
    again = submit(pimms)
    assert isinstance(again, Claim) and again.replayed
    assert isinstance(first, Claim) and again.claim_ref == first.claim_ref
    assert pimms.store.outbox.list() == []


# --- flush edge cases -----------------------------------------------------------------------------


def test_a_partner_no_longer_installed_leaves_its_claims_waiting(tmp_path: Any) -> None:
    path = tmp_path / "pimms.sqlite3"
    with open_store(path) as store:
        store.outbox.enqueue(
            ClaimRequest("12345678", "billing", "FACT", DESCRIPTION, "key-1"),
            partner="gone",
            call=facade()._call(None),
        )
    pimms = live_pimms(AcmePlugin(), ACME_BASE, settings=SETTINGS, env=ENV, policy=NO_RETRY)
    pimms._store_location, pimms._store = str(path), None
    [outcome] = pimms.flush_outbox()
    assert isinstance(outcome.error, UnknownPartner)
    assert outcome.entry.state is OutboxState.QUEUED
    assert outcome.queued is not None and "unknown partner" in outcome.queued.reason


def test_an_entry_taken_by_another_live_process_is_left_to_it(acme: respx.MockRouter) -> None:
    route = acme.post("/claims").respond(201, json=CREATED)
    pimms = facade()
    entry, _ = pimms.store.outbox.enqueue(
        ClaimRequest("12345678", "billing", "FACT", DESCRIPTION, "key-1"),
        partner="acme",
        call=pimms._call(None),
    )
    pimms.store.outbox.take(entry.local_ref, owner=owner_id(), lease_seconds=600)
    other = Deliverer(pimms.store)
    other.owner = "far-away-host:99"
    outcome = other.deliver(entry.local_ref, pimms.info("acme").idempotency, lambda r: None)  # type: ignore[arg-type,return-value]
    assert outcome.queued is not None and "another process" in outcome.queued.reason
    assert not route.called


@pytest.mark.parametrize(
    ("error", "mechanism", "before", "state"),
    [
        (AccountNotFound("a"), "header", "queued", "failed"),
        (ClaimRejected("a", "no"), "none", "queued", "failed"),
        (PartnerUnavailable("a", "refused", request_sent=False), "none", "queued", "queued"),
        (PartnerUnavailable("a", "refused", request_sent=False), "none", "sending", "needs_check"),
        (
            PartnerUnavailable("a", "refused", request_sent=False),
            "header",
            "uncertain",
            "uncertain",
        ),
        (PartnerUnavailable("a", "429", status=429), "none", "queued", "queued"),
        (PartnerUnavailable("a", "timeout"), "header", "queued", "uncertain"),
        (PartnerUnavailable("a", "timeout"), "lookup", "queued", "uncertain"),
        (PartnerUnavailable("a", "timeout"), "none", "queued", "needs_check"),
    ],
)
def test_settled_state(error: Exception, mechanism: str, before: str, state: str) -> None:
    from pimms_core.models import Idempotency

    assert settled_state(error, Idempotency(mechanism), OutboxState(before)).value == state
