"""What the Veolia plugin declares: its reference format, demande types and états, settings."""

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
from pimms_veolia.seed import (
    NUMERO_CAMILLE_MARTIN,
    NUMERO_DEUX_ABONNEMENTS,
    NUMERO_KARIM_BENALI,
    SANDBOX_LOGIN,
    SANDBOX_PASSWORD,
)

PARTNER_ID = "veolia"

INFO = PartnerInfo(
    id=PARTNER_ID,
    name="Veolia (eau)",
    sector="water",
    contract_version="1",
    reference=ReferenceFormat(
        # [0-9], not \d: Python's \d also matches non-ASCII digits, which Veolia refuses.
        pattern=r"[0-9]{9}",
        example=NUMERO_CAMILLE_MARTIN,
        hint="the 9-digit customer number (numéro client) at the top of your water bill",
    ),
    categories=[
        CategoryCode("FACTURE_CONTESTEE", "billing", "Facture contestée"),
        CategoryCode("ECHEANCIER", "payment_difficulty", "Échéancier"),
        CategoryCode("RELEVE_INDEX", "meter_reading", "Relevé d'index"),
        CategoryCode("FUITE", "service_outage", "Fuite"),
        CategoryCode("RESILIATION", "contract_change", "Résiliation"),
        CategoryCode("AUTRE", "other", "Autre"),
    ],
    statuses=[
        StatusCode("NOUVELLE", "received", "Nouvelle"),
        StatusCode("EN_COURS", "in_progress", "En cours"),
        StatusCode("EN_ATTENTE_CLIENT", "awaiting_customer", "En attente du client"),
        StatusCode("TRAITEE", "resolved", "Traitée"),
        StatusCode("REJETEE", "rejected", "Rejetée"),
        StatusCode("CLOSE", "closed", "Close"),
    ],
    operations=[Operation.LOOKUP_ACCOUNT, Operation.OPEN_CLAIM, Operation.CLAIM_STATUS],
    idempotency=Idempotency.HEADER,
    settings=[
        SettingSpec(
            "login",
            "identifiant of the site's Veolia partner account",
            secret=True,
            sandbox_value=SANDBOX_LOGIN,
        ),
        SettingSpec(
            "password",
            "mot de passe of the site's Veolia partner account",
            secret=True,
            sandbox_value=SANDBOX_PASSWORD,
        ),
    ],
    base_url="https://api.partenaires.eau.veolia.fr",
    # The contract names no figure (only that 429 comes with Retry-After); 10 calls per second
    # is the simulator's documented quota, so the core's budget keeps us clear of its 429s.
    quotas=[Quota(10, 1)],
    sandbox_accounts=[
        SandboxAccount(
            NUMERO_CAMILLE_MARTIN,
            note="Camille Martin, one active abonnement AB-778812, 132.40 EUR due",
        ),
        SandboxAccount(
            NUMERO_DEUX_ABONNEMENTS,
            note="two abonnements: AB-900001 active, AB-900002 terminated",
        ),
        SandboxAccount(NUMERO_KARIM_BENALI, note="Karim Benali, terminated abonnement AB-555000"),
    ],
)
