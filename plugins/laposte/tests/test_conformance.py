"""La Poste runs the pimms conformance suite: contract, errors, idempotency, no leaks."""

from __future__ import annotations

import pimms_laposte
from pimms_core.testing.conformance import ConformanceSuite


class TestConformance(ConformanceSuite):
    plugin = pimms_laposte
    partner_id = "laposte"
    known_reference = "6A00000000001"
    known_last_name = None
    unknown_reference = "6A99999999999"
    invalid_reference = "6A-0001"
    claim_category = "other"
