"""Sandbox data of the Veolia (eau) simulator: credentials, code lists and seeded abonnements.

Kept free of Flask so that the plugin's light modules (and its tests) can import the sandbox
credentials and references without pulling in the simulator. Every name, address and number
here is fictional; the references and situations are exactly those of the partner contract.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

SANDBOX_LOGIN = "sandbox-veolia"
SANDBOX_PASSWORD = "sandbox-veolia-password"

#: Lifetime of a `jeton`, as announced by `expire_dans`.
TOKEN_LIFETIME_SECONDS = 900

#: Values of an abonnement's `statut`.
STATUT_ACTIF = "ACTIF"
STATUT_RESILIE = "RESILIE"
STATUT_EN_COURS_DE_RESILIATION = "EN_COURS_DE_RESILIATION"
STATUTS_ABONNEMENT = (STATUT_ACTIF, STATUT_RESILIE, STATUT_EN_COURS_DE_RESILIATION)

#: Values of a demande's `type_demande`, in the contract's order.
TYPES_DEMANDE = ("FACTURE_CONTESTEE", "ECHEANCIER", "RELEVE_INDEX", "FUITE", "RESILIATION", "AUTRE")

#: Values of a demande's `etat`, in the contract's order; a new demande starts at the first.
ETATS_DEMANDE = ("NOUVELLE", "EN_COURS", "EN_ATTENTE_CLIENT", "TRAITEE", "REJETEE", "CLOSE")

#: The seeded numéros client, in the contract's order.
NUMERO_CAMILLE_MARTIN = "100200300"
NUMERO_DEUX_ABONNEMENTS = "100200400"
NUMERO_KARIM_BENALI = "100200500"
SEED_NUMEROS_CLIENT = (NUMERO_CAMILLE_MARTIN, NUMERO_DEUX_ABONNEMENTS, NUMERO_KARIM_BENALI)


@dataclass(frozen=True)
class Abonnement:
    """One water subscription as the `abonnements` endpoint returns it."""

    id_abonnement: str
    numero_client: str
    titulaire: str
    statut: str
    libelle_contrat: str
    adresse_de_branchement: str
    numero_compteur: str
    solde: float
    mode_paiement: str
    dernier_index_releve: float
    date_index_releve: date

    def to_json(self) -> dict[str, Any]:
        """The contract's JSON shape (nested `facturation`, ISO date for the meter reading)."""
        return {
            "id_abonnement": self.id_abonnement,
            "numero_client": self.numero_client,
            "titulaire": self.titulaire,
            "statut": self.statut,
            "libelle_contrat": self.libelle_contrat,
            "adresse_de_branchement": self.adresse_de_branchement,
            "numero_compteur": self.numero_compteur,
            "facturation": {
                "solde": self.solde,
                "mode_paiement": self.mode_paiement,
                "dernier_index_releve": self.dernier_index_releve,
                "date_index_releve": self.date_index_releve.isoformat(),
            },
        }


def _days_before(now: datetime, days: int) -> date:
    """A past calendar date, so that meter readings always look recent whatever the clock."""
    return (now - timedelta(days=days)).date()


def seed_abonnements(now: datetime) -> tuple[Abonnement, ...]:
    """All seeded abonnements, with meter-reading dates relative to `now`."""
    return (
        Abonnement(
            id_abonnement="AB-778812",
            numero_client=NUMERO_CAMILLE_MARTIN,
            titulaire="Mme Camille MARTIN",
            statut=STATUT_ACTIF,
            libelle_contrat="Eau potable - particulier",
            adresse_de_branchement="12 rue des Lilas 69008 LYON",
            numero_compteur="I17VA012345",
            solde=132.4,
            mode_paiement="MENSUALISATION",
            dernier_index_releve=1532.0,
            date_index_releve=_days_before(now, 17),
        ),
        Abonnement(
            id_abonnement="AB-900001",
            numero_client=NUMERO_DEUX_ABONNEMENTS,
            titulaire="M. Lucien FICTIF",
            statut=STATUT_ACTIF,
            libelle_contrat="Eau potable - particulier",
            adresse_de_branchement="4 impasse des Tilleuls 38000 GRENOBLE",
            numero_compteur="I19VB054321",
            solde=0.0,
            mode_paiement="PRELEVEMENT",
            dernier_index_releve=842.5,
            date_index_releve=_days_before(now, 40),
        ),
        Abonnement(
            id_abonnement="AB-900002",
            numero_client=NUMERO_DEUX_ABONNEMENTS,
            titulaire="M. Lucien FICTIF",
            statut=STATUT_RESILIE,
            libelle_contrat="Eau potable - residence secondaire",
            adresse_de_branchement="27 chemin du Moulin 26110 NYONS",
            numero_compteur="I12VC098765",
            solde=0.0,
            mode_paiement="TIP",
            dernier_index_releve=2210.0,
            date_index_releve=_days_before(now, 400),
        ),
        Abonnement(
            id_abonnement="AB-555000",
            numero_client=NUMERO_KARIM_BENALI,
            titulaire="M. Karim BENALI",
            statut=STATUT_RESILIE,
            libelle_contrat="Eau potable - particulier",
            adresse_de_branchement="8 allee des Peupliers 13012 MARSEILLE",
            numero_compteur="I15VD011223",
            solde=0.0,
            mode_paiement="PRELEVEMENT",
            dernier_index_releve=967.0,
            date_index_releve=_days_before(now, 120),
        ),
    )


def abonnements_for(numero_client: str, now: datetime) -> list[Abonnement]:
    """The abonnements held by a numéro client (empty for anyone not seeded)."""
    return [a for a in seed_abonnements(now) if a.numero_client == numero_client]


def find_abonnement(id_abonnement: str, now: datetime) -> Abonnement | None:
    """The seeded abonnement with that id, or None."""
    return next((a for a in seed_abonnements(now) if a.id_abonnement == id_abonnement), None)
