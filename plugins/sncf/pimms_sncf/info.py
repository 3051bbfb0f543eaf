"""What the SNCF plugin declares: booking reference format, motifs, statuses and settings."""

from __future__ import annotations

from pimms_core.models import (
    CategoryCode,
    Idempotency,
    Operation,
    PartnerInfo,
    Quota,
    ReferenceFormat,
    SandboxAccount,
    SettingSpec,
    StatusCode,
)
from pimms_sncf.seed import SANDBOX_API_KEY

PARTNER_ID = "sncf"
G30_DEADLINE_DAYS = 60
"""A Garantie G30 claim must be filed within this many days of the journey."""

INFO = PartnerInfo(
    id=PARTNER_ID,
    name="SNCF Voyageurs",
    sector="rail",
    contract_version="1",
    reference=ReferenceFormat(
        # Lowercase is accepted as typed: the plugin sends the reference in upper case.
        pattern=r"[A-Za-z0-9]{6}",
        example="ABC123",
        hint=(
            "the 6-letter-or-digit booking reference (référence de dossier, on the e-ticket "
            "and the confirmation email), with the traveller's last name"
        ),
        needs_last_name=True,
    ),
    categories=[
        CategoryCode("G30_RETARD", "delay_compensation", "Garantie G30 : retard"),
        CategoryCode("ANNULATION", "refund", "Annulation et remboursement"),
        CategoryCode("BAGAGE", "lost_or_damaged", "Bagage perdu ou endommagé"),
        CategoryCode("ACCESSIBILITE", "accessibility", "Accessibilité"),
        CategoryCode("TARIF", "billing", "Tarif"),
        CategoryCode("AUTRE", "other", "Autre"),
    ],
    statuses=[
        StatusCode("recue", "received", "Reçue"),
        StatusCode("en_cours", "in_progress", "En cours de traitement"),
        StatusCode("complement_demande", "awaiting_customer", "Complément demandé"),
        StatusCode("acceptee", "resolved", "Acceptée"),
        StatusCode("refusee", "rejected", "Refusée"),
        StatusCode("close", "closed", "Close"),
    ],
    operations=[Operation.LOOKUP_ACCOUNT, Operation.OPEN_CLAIM, Operation.CLAIM_STATUS],
    # `external_id` is unique at SNCF: a second send answers 409 naming the existing claim.
    idempotency=Idempotency.UNIQUE_KEY,
    settings=[
        SettingSpec(
            "api_key",
            "SNCF API key of the site (HTTP Basic user name, empty password)",
            secret=True,
            sandbox_value=SANDBOX_API_KEY,
        ),
    ],
    base_url="https://api.sncf.com",
    quotas=[Quota(20, 1)],
    sandbox_accounts=[
        SandboxAccount(
            "ABC123", last_name="Martin", note="TGV INOUI Paris → Lyon, 65 min late: G30 25%"
        ),
        SandboxAccount(
            "XYZ789", last_name="Benali", note="Intercités, 2h10 late, 45.00 EUR: G30 50%"
        ),
        SandboxAccount("QRS456", last_name="Nguyen", note="TER, 40 min late: not eligible for G30"),
        SandboxAccount(
            "OLD001", last_name="Martin", note="journey 90 days ago: G30 refused as too late"
        ),
    ],
)
