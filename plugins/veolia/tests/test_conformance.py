"""Veolia runs the pimms conformance suite: contract, errors, idempotency, no leaks."""

from __future__ import annotations

import pimms_veolia
from pimms_core.testing.conformance import ConformanceSuite


class TestConformance(ConformanceSuite):
    plugin = pimms_veolia
    partner_id = "veolia"
    known_reference = "100200300"
    known_last_name = None
    unknown_reference = "999999999"
    invalid_reference = "1002003"
    claim_category = "other"
