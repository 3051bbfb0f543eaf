"""SNCF runs the pimms conformance suite: contract, errors, idempotency, no leaks."""

from __future__ import annotations

import pimms_sncf
from pimms_core.testing.conformance import ConformanceSuite


class TestConformance(ConformanceSuite):
    plugin = pimms_sncf
    partner_id = "sncf"
    known_reference = "ABC123"
    known_last_name = "Martin"
    unknown_reference = "ZZZ999"
    invalid_reference = "AB-12"
    claim_category = "other"
