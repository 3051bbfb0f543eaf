"""`pimms_find_claim`, for a partner that stores the caller's key with a claim.

Declare `idempotency="lookup"` in the partner's info: the core then asks this hook for the
claim opened earlier with the key before every send, so a claim sent again after a timeout is
found rather than created twice. (Tested by tests/test_docs.py.)
"""

from __future__ import annotations

from pimms_core import hookimpl
from pimms_core.context import PartnerContext
from pimms_core.http import raise_for_status
from pimms_core.models import Claim
from pimms_core.payload import Payload


# [doc:find-claim]
@hookimpl
def pimms_find_claim(partner: PartnerContext, idempotency_key: str) -> Claim | None:
    response = partner.http.get("/v1/claims", params={"caller_ref": idempotency_key})
    raise_for_status(response, partner.id)
    found = Payload.of(response, partner.id).objects("claims")
    if not found:
        return None
    claim = found[0]
    status = claim.text("status")
    return Claim(
        partner=partner.id,
        claim_ref=claim.text("id"),
        state=partner.info.state_of(status),
        partner_status=status,
        opened_at=claim.timestamp("created_at"),
        replayed=True,
        raw=claim.data,
    )


# [/doc:find-claim]
