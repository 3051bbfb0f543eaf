"""Models: validation at construction, redacted repr, and the JSON form the CLI prints."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from pimms_core.errors import InvalidInput, UnknownCategory
from pimms_core.models import (
    Account,
    AccountQuery,
    Category,
    Claim,
    ClaimRequest,
    ClaimState,
    ClaimStatus,
    Contact,
    PluginRef,
    ReferenceFormat,
)
from pimms_core.serialization import from_json_dict, to_json_dict
from tests.fakes import acme_info

NOW = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


def request(**overrides: object) -> ClaimRequest:
    fields: dict[str, object] = {
        "account_ref": "12345678",
        "category": "billing",
        "partner_category": "FACT",
        "description": "Facture contestée",
        "idempotency_key": "k1",
    }
    fields.update(overrides)
    return ClaimRequest(**fields)  # type: ignore[arg-type]


def test_reference_format_example_must_match_its_pattern() -> None:
    with pytest.raises(ValueError, match="does not match"):
        ReferenceFormat(r"\d{8}", "1234", "8 digits")


def test_reference_format_pattern_must_compile() -> None:
    with pytest.raises(ValueError, match="not a valid regular expression"):
        ReferenceFormat(r"(\d", "1", "x")


def test_partner_id_is_checked() -> None:
    with pytest.raises(ValueError, match="partner id"):
        acme_info("Bad Id")


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"description": "   "}, "the description is empty"),
        ({"description": "x" * 2001}, "limit is 2000"),
        ({"description": "ok\x00bad"}, "control character"),
        ({"idempotency_key": "k" * 256}, "limit is 255"),
        ({"account_ref": ""}, "account reference is empty"),
        ({"last_name": "Mar\x1btin"}, "control character"),
    ],
)
def test_claim_request_refuses_bad_input_with_a_clear_message(overrides, words) -> None:
    with pytest.raises(InvalidInput, match=words):
        request(**overrides)


def test_description_may_hold_newlines() -> None:
    assert request(description="line one\nline two").description.count("\n") == 1


def test_unknown_category_lists_the_accepted_ones() -> None:
    info = acme_info()
    assert info.category_code("billing").code == "FACT"
    assert info.category_code("autre").category is Category.OTHER
    with pytest.raises(UnknownCategory) as caught:
        info.category_code("refund")
    assert "billing, other, FACT, AUTRE" in str(caught.value)


def test_unknown_status_maps_to_unknown_state() -> None:
    info = acme_info()
    assert info.state_of("NEW") is ClaimState.RECEIVED
    assert info.state_of("ESCALATED") is ClaimState.UNKNOWN
    assert ClaimState.RECEIVED.is_open and not ClaimState.CLOSED.is_open


def test_personal_data_is_redacted_in_repr() -> None:
    account = Account("acme", "12345678", "Canary Name", "active", address="1 Canary Street")
    query = AccountQuery("ABC123", last_name="Canaryname")
    claim_request = request(
        description="Canary description", contact=Contact("canary@example.org", "0699999999")
    )
    shown = repr(account) + repr(query) + repr(claim_request)
    for secret in (
        "Canary Name",
        "Canary Street",
        "Canaryname",
        "Canary description",
        "canary@example.org",
        "0699999999",
    ):
        assert secret not in shown


def test_models_are_frozen() -> None:
    account = Account("acme", "12345678", "x", "active")
    with pytest.raises(AttributeError):
        account.status = "terminated"  # type: ignore[misc]


def test_json_forms_carry_the_documented_keys() -> None:
    ref = PluginRef("pimms-acme", "1.2.3")
    account = Account("acme", "12345678", "Holder", "active", plugin=ref, raw={"x": 1})
    claim = Claim("acme", "C-1", "received", "NEW", NOW, date(2026, 11, 17), plugin=ref)
    status = ClaimStatus("acme", "C-1", "resolved", "DONE", updated_at=NOW, plugin=ref)
    account_json = to_json_dict(account)
    assert {"partner", "reference", "holder_name", "status"} <= account_json.keys()
    assert "raw" not in account_json
    assert account_json["plugin"] == "pimms-acme" and account_json["plugin_version"] == "1.2.3"
    claim_json = to_json_dict(claim)
    assert claim_json["state"] == "received"
    assert claim_json["opened_at"] == "2026-11-02T09:30:00+00:00"
    assert claim_json["response_due_by"] == "2026-11-17"
    status_json = to_json_dict(status)
    assert {"partner", "claim_ref", "state", "partner_status", "updated_at"} <= status_json.keys()
    assert status_json["state"] == "resolved"


def test_json_form_reads_back() -> None:
    claim = Claim("acme", "C-1", "received", "NEW", NOW, date(2026, 11, 17))
    assert from_json_dict(Claim, to_json_dict(claim)) == claim
