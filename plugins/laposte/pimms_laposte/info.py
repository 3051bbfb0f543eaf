"""What the La Poste plugin declares: the tracking-number format, motifs, statuses and settings.

The "account" a mediator looks up at La Poste is a shipment, found by its tracking number
(idShip) through the public Suivi v2 API; claims (réclamations) are about a shipment.
"""

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
from pimms_laposte.seed import DEFAULT_LANG, LANGS, SANDBOX_OKAPI_KEY

PARTNER_ID = "laposte"

HOLDERS: dict[int, str] = {
    1: "Courrier national",
    2: "Courrier international",
    3: "Chronopost",
    4: "Colissimo",
}
"""Suivi v2 `holder`: which La Poste business carries the item."""

EVENT_STATUS: dict[str, str] = {
    "DR1": "announced",  # déclaratif réceptionné: announced by the sender, not handed over yet
    "PC1": "in_transit",  # pris en charge
    "PC2": "in_transit",  # pris en charge dans le pays d'expédition
    "ET1": "in_transit",  # en cours de traitement
    "ET2": "in_transit",  # en cours de traitement dans le pays d'expédition
    "ET3": "in_transit",  # en cours de traitement dans le pays de destination
    "ET4": "in_transit",  # en cours de traitement dans un pays de transit
    "EP1": "in_transit",  # en attente de présentation
    "DO1": "in_transit",  # entrée en douane
    "DO2": "in_transit",  # sortie de douane
    "DO3": "problem",  # retenu en douane
    "PB1": "problem",  # problème en cours
    "PB2": "in_transit",  # problème résolu
    "MD2": "out_for_delivery",  # mis en distribution
    "ND1": "problem",  # non distribuable
    "AG1": "awaiting_pickup",  # en attente d'être retiré au guichet
    "RE1": "returned",  # retourné à l'expéditeur
    "DI1": "delivered",  # distribué
    "DI2": "returned",  # distribué à l'expéditeur: the return is complete
}
"""The shipment's common status word, from the code of its latest event.

An undeclared code gives `in_transit` while the shipment is not final, `unknown` once it is:
La Poste adds codes, and a new one must never break a lookup.
"""

INFO = PartnerInfo(
    id=PARTNER_ID,
    name="La Poste",
    sector="postal",
    contract_version="1",
    reference=ReferenceFormat(
        pattern=r"[A-Za-z0-9]{11,15}",
        example="6A00000000001",
        hint=(
            "the tracking number (11 to 15 letters and digits) printed under the barcode of "
            "the deposit receipt"
        ),
    ),
    categories=[
        CategoryCode("COLIS_NON_RECU", "lost_or_damaged", "Colis non reçu"),
        CategoryCode("COLIS_ENDOMMAGE", "lost_or_damaged", "Colis endommagé"),
        CategoryCode("RETARD_LIVRAISON", "delivery_problem", "Retard de livraison"),
        CategoryCode(
            "AVIS_DE_PASSAGE_NON_DEPOSE", "delivery_problem", "Avis de passage non déposé"
        ),
        CategoryCode("AUTRE", "other", "Autre"),
    ],
    statuses=[
        StatusCode("ENREGISTREE", "received", "Enregistrée"),
        StatusCode("EN_COURS_DE_TRAITEMENT", "in_progress", "En cours de traitement"),
        StatusCode("ATTENTE_PIECES_CLIENT", "awaiting_customer", "En attente de pièces du client"),
        StatusCode("INDEMNISATION_ACCORDEE", "resolved", "Indemnisation accordée"),
        StatusCode("REJETEE", "rejected", "Rejetée"),
        StatusCode("CLOTUREE", "closed", "Clôturée"),
    ],
    operations=[Operation.LOOKUP_ACCOUNT, Operation.OPEN_CLAIM, Operation.CLAIM_STATUS],
    idempotency=Idempotency.LOOKUP,
    settings=[
        SettingSpec(
            "okapi_key",
            "the site's Okapi key (X-Okapi-Key, 64 characters) from developer.laposte.fr",
            secret=True,
            sandbox_value=SANDBOX_OKAPI_KEY,
        ),
        SettingSpec(
            "lang",
            "language of the tracking labels",
            default=DEFAULT_LANG,
            choices=LANGS,
        ),
    ],
    base_url="https://api.laposte.fr",
    quotas=[Quota(100, 1)],
    sandbox_accounts=[
        SandboxAccount("6A00000000001", note="Colissimo in transit, last event ET1"),
        SandboxAccount("6A00000000002", note="Colissimo delivered, last event DI1"),
        SandboxAccount("6A00000000003", note="Colissimo with a problem, last event PB1"),
        SandboxAccount("EW000000001FR", note="international item returned to sender (RE1)"),
    ],
)
