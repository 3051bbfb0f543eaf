"""What the EDF plugin declares: EDF's reference format, categories, statuses and settings."""

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
from pimms_edf.seed import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET

PARTNER_ID = "edf"
USAGE_POINT_DIGITS = 14

INFO = PartnerInfo(
    id=PARTNER_ID,
    name="EDF",
    sector="electricity",
    contract_version="1",
    reference=ReferenceFormat(
        pattern=r"\d{10}|\d{14}",
        example="4001234567",
        hint=(
            "the 10-digit customer number (numéro client, top right of every EDF bill) "
            "or the 14-digit PDL of the meter"
        ),
    ),
    categories=[
        CategoryCode("FACTURATION", "billing", "Facturation"),
        CategoryCode("DIFFICULTE_PAIEMENT", "payment_difficulty", "Difficulté de paiement"),
        CategoryCode("RELEVE", "meter_reading", "Relevé de compteur"),
        CategoryCode("CONTRAT", "contract_change", "Contrat"),
        CategoryCode("COUPURE", "service_outage", "Coupure"),
        CategoryCode("AUTRE", "other", "Autre"),
    ],
    statuses=[
        StatusCode("OPEN", "received", "Reçue"),
        StatusCode("IN_PROGRESS", "in_progress", "En cours de traitement"),
        StatusCode("WAITING_CUSTOMER", "awaiting_customer", "En attente de votre retour"),
        StatusCode("SOLVED", "resolved", "Résolue"),
        StatusCode("REFUSED", "rejected", "Refusée"),
        StatusCode("CLOSED", "closed", "Clôturée"),
    ],
    operations=[Operation.LOOKUP_ACCOUNT, Operation.OPEN_CLAIM, Operation.CLAIM_STATUS],
    idempotency=Idempotency.HEADER,
    settings=[
        SettingSpec(
            "client_id",
            "OAuth2 client id of the site",
            secret=True,
            sandbox_value=SANDBOX_CLIENT_ID,
        ),
        SettingSpec(
            "client_secret",
            "OAuth2 client secret of the site",
            secret=True,
            sandbox_value=SANDBOX_CLIENT_SECRET,
        ),
    ],
    base_url="https://partenaires.api.edf.fr",
    quotas=[Quota(5, 1), Quota(1000, 3600)],
    sandbox_accounts=[
        SandboxAccount("4001234567", note="Camille Martin, active, Tarif Bleu 6 kVA"),
        SandboxAccount("24115050654321", note="Karim Benali by PDL, on a payment plan"),
        SandboxAccount("4009999999", note="terminated account"),
    ],
)
