"""EDF sandbox seed: the sandbox credentials and the accounts of the contract's seed table.

No Flask here: the plugin's light modules and anyone's tests import these references and
credentials without pulling in the simulator. All people, addresses and numbers are fictional.
The contract's EDF seed has no time-relative data, so the accounts are static; accessors hand out
deep copies so no caller can alter the table another caller relies on.
"""

from __future__ import annotations

import copy
from typing import Any

SANDBOX_CLIENT_ID = "sandbox-edf-client"
SANDBOX_CLIENT_SECRET = "sandbox-edf-secret"

TOKEN_LIFETIME_SECONDS = 3600

CAMILLE_MARTIN_CUSTOMER_ID = "4001234567"
CAMILLE_MARTIN_USAGE_POINT_ID = "24115050123456"
KARIM_BENALI_CUSTOMER_ID = "4007654321"
KARIM_BENALI_USAGE_POINT_ID = "24115050654321"
TERMINATED_CUSTOMER_ID = "4009999999"
TERMINATED_USAGE_POINT_ID = "24115050999999"

# Claim vocabulary of the EDF mediation API: category code -> days to answer.
CLAIM_RESPONSE_DAYS: dict[str, int] = {
    "FACTURATION": 15,
    "DIFFICULTE_PAIEMENT": 5,
    "RELEVE": 15,
    "CONTRAT": 15,
    "COUPURE": 15,
    "AUTRE": 15,
}
CLAIM_CATEGORIES: tuple[str, ...] = tuple(CLAIM_RESPONSE_DAYS)

# Claim status code -> the French label EDF shows next to it.
CLAIM_STATUS_LABELS: dict[str, str] = {
    "OPEN": "Reçue",
    "IN_PROGRESS": "En cours de traitement",
    "WAITING_CUSTOMER": "En attente de votre retour",
    "SOLVED": "Résolue",
    "REFUSED": "Refusée",
    "CLOSED": "Clôturée",
}
CLAIM_STATUSES: tuple[str, ...] = tuple(CLAIM_STATUS_LABELS)


def _usage_point(
    usage_point_id: str,
    *,
    status: str,
    address: dict[str, str],
    offer: str,
    power: str,
    contract_status: str,
    activation: str,
) -> dict[str, Any]:
    """One delivery point shaped as the Enedis Data Connect customer API shows it."""
    return {
        "usage_point": {
            "usage_point_id": usage_point_id,
            "usage_point_status": status,
            "meter_type": "AMM",
        },
        "usage_point_addresses": {**address, "country": "France"},
        "contracts": {
            "offer": offer,
            "subscribed_power": power,
            "contract_status": contract_status,
            "last_activation_date": activation,
        },
    }


def _camille_martin() -> dict[str, Any]:
    """Seed row 1: exactly the contract's example account."""
    return {
        "customer_id": CAMILLE_MARTIN_CUSTOMER_ID,
        "status": "active",
        "identity": {
            "natural_person": {"title": "Mme", "firstname": "Camille", "lastname": "Martin"}
        },
        "contact_data": {"phone": "0600000000", "email": "camille.martin@example.org"},
        "usage_points": [
            _usage_point(
                CAMILLE_MARTIN_USAGE_POINT_ID,
                status="com",
                address={
                    "street": "12 rue des Lilas",
                    "postal_code": "69008",
                    "insee_code": "69388",
                    "city": "Lyon",
                },
                offer="TARIF_BLEU",
                power="6 kVA",
                contract_status="SERVC",
                activation="2017-07-15+02:00",
            )
        ],
        "balance": {"amount": -84.20, "currency": "EUR", "payment_plan": False},
    }


def _karim_benali() -> dict[str, Any]:
    """Seed row 2: a Tempo customer on a payment plan (the payment-difficulty case)."""
    return {
        "customer_id": KARIM_BENALI_CUSTOMER_ID,
        "status": "active",
        "identity": {"natural_person": {"title": "M.", "firstname": "Karim", "lastname": "Benali"}},
        "contact_data": {"phone": "0600000001", "email": "karim.benali@example.org"},
        "usage_points": [
            _usage_point(
                KARIM_BENALI_USAGE_POINT_ID,
                status="com",
                address={
                    "street": "7 allée des Platanes",
                    "postal_code": "69100",
                    "insee_code": "69266",
                    "city": "Villeurbanne",
                },
                offer="TEMPO",
                power="9 kVA",
                contract_status="SERVC",
                activation="2019-03-01+01:00",
            )
        ],
        "balance": {"amount": -312.45, "currency": "EUR", "payment_plan": True},
    }


def _terminated_account() -> dict[str, Any]:
    """Seed row 3: a terminated account, held by a company so `legal_entity` is exercised.

    It also carries a field the contract does not list (`termination_date`), since the contract
    warns that unknown fields may appear.
    """
    return {
        "customer_id": TERMINATED_CUSTOMER_ID,
        "status": "terminated",
        "identity": {"legal_entity": {"name": "Atelier Imaginaire SARL"}},
        "contact_data": {"phone": "0400000000", "email": "contact@atelier-imaginaire.example.org"},
        "usage_points": [
            _usage_point(
                TERMINATED_USAGE_POINT_ID,
                status="no com",
                address={
                    "street": "3 place de l'Exemple",
                    "postal_code": "69003",
                    "insee_code": "69383",
                    "city": "Lyon",
                },
                offer="TARIF_BLEU",
                power="12 kVA",
                contract_status="RESIL",
                activation="2015-02-01+01:00",
            )
        ],
        "balance": {"amount": 0.0, "currency": "EUR", "payment_plan": False},
        "termination_date": "2024-01-31",
    }


_ACCOUNTS: dict[str, dict[str, Any]] = {
    account["customer_id"]: account
    for account in (_camille_martin(), _karim_benali(), _terminated_account())
}


def all_accounts() -> list[dict[str, Any]]:
    """Every seeded account (copies), in the contract's table order."""
    return [copy.deepcopy(account) for account in _ACCOUNTS.values()]


def account_by_customer_id(customer_id: str) -> dict[str, Any] | None:
    """The account with this numéro client (a copy), or None."""
    account = _ACCOUNTS.get(customer_id)
    return copy.deepcopy(account) if account is not None else None


def account_by_usage_point_id(usage_point_id: str) -> dict[str, Any] | None:
    """The account owning this PDL (a copy), or None."""
    for account in _ACCOUNTS.values():
        if usage_point_id in usage_point_ids(account):
            return copy.deepcopy(account)
    return None


def usage_point_ids(account: dict[str, Any]) -> list[str]:
    """The PDLs of an account, in order."""
    return [entry["usage_point"]["usage_point_id"] for entry in account["usage_points"]]
