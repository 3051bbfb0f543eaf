"""EDF runs the pimms conformance suite: contract, errors, idempotency, no leaks."""

from __future__ import annotations

import pimms_edf
from pimms_core.testing.conformance import ConformanceSuite


class TestConformance(ConformanceSuite):
    plugin = pimms_edf
    partner_id = "edf"
    known_reference = "4001234567"
    known_last_name = None
    unknown_reference = "4000000000"
    invalid_reference = "12"
    claim_category = "other"
