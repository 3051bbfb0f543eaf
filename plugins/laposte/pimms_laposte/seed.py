"""La Poste sandbox: credentials, contract constants and the seeded shipments.

Kept free of Flask so the plugin's light modules can import the sandbox key and the contract's
code lists without pulling in the simulator. Every name and event here is fictional; shipment
dates are relative to `now` so a fixed clock gives fixed payloads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# --- Credentials -------------------------------------------------------------------------------

SANDBOX_OKAPI_KEY = "sandbox-okapi-key-" + "0" * 46
"""The only X-Okapi-Key the simulator accepts (64 characters, like a real Okapi key)."""

# --- Contract constants ------------------------------------------------------------------------

LANGS: tuple[str, ...] = ("fr_FR", "de_DE", "en_GB", "es_ES", "it_IT", "nl_NL")
DEFAULT_LANG = "fr_FR"
IDSHIP_PATTERN = re.compile(r"^[A-Za-z0-9]{11,15}$")
MAX_IDSHIPS_PER_CALL = 10
TRACKING_URL = "https://www.laposte.fr/outils/suivre-vos-envois?code="

QUOTA_CALLS = 100
QUOTA_SECONDS = 1

MOTIFS: tuple[str, ...] = (
    "COLIS_NON_RECU",
    "COLIS_ENDOMMAGE",
    "RETARD_LIVRAISON",
    "AVIS_DE_PASSAGE_NON_DEPOSE",
    "AUTRE",
)
STATUTS: tuple[str, ...] = (
    "ENREGISTREE",
    "EN_COURS_DE_TRAITEMENT",
    "ATTENTE_PIECES_CLIENT",
    "INDEMNISATION_ACCORDEE",
    "REJETEE",
    "CLOTUREE",
)
INITIAL_STATUT = "ENREGISTREE"
RESPONSE_DELAY = timedelta(days=21)
CLAIM_ID_PREFIX = "RCL"


def paris_tz() -> tzinfo:
    """La Poste stamps its dates in French local time; fall back to CET without a tz database."""
    try:
        return ZoneInfo("Europe/Paris")
    except ZoneInfoNotFoundError:  # pragma: no cover - depends on the host
        return timezone(timedelta(hours=1))


def to_paris(moment: datetime) -> datetime:
    """An aware datetime in Paris time, to the second (the API never shows fractions)."""
    return moment.astimezone(paris_tz()).replace(microsecond=0)


def iso(moment: datetime) -> str:
    """ISO-8601 with offset, as every La Poste date: 2020-07-04T01:25:12+02:00."""
    return to_paris(moment).isoformat(timespec="seconds")


# --- Seed shipments ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SeedEvent:
    """One tracking event, `age` before now."""

    code: str
    label: str
    age: timedelta


@dataclass(frozen=True)
class SeedStep:
    """One of the five timeline steps; `event` indexes the event that reached it (None: not yet)."""

    short_label: str
    event: int | None = None
    country: str = "FR"
    type: int = 1
    long_label: str = ""


@dataclass(frozen=True)
class SeedShipment:
    """A shipment the sandbox knows; events are listed oldest first."""

    id_ship: str
    situation: str
    holder: int
    product: str
    events: tuple[SeedEvent, ...]
    steps: tuple[SeedStep, ...]
    is_final: bool = False
    delivered: bool = False
    estim_in: timedelta | None = None
    origin_country: str = "FR"
    arrival_country: str = "FR"
    delivery_choice: int = 0


_COLIS_STEPS = (
    "Pris en charge",
    "En cours d'acheminement",
    "Arrivé sur le site de distribution",
    "En cours de livraison",
    "Livré",
)


def _hours(value: float) -> timedelta:
    return timedelta(hours=value)


SEED_SHIPMENTS: tuple[SeedShipment, ...] = (
    SeedShipment(
        id_ship="6A00000000001",
        situation="Colissimo in transit, last event ET1",
        holder=4,
        product="colissimo",
        delivery_choice=1,
        estim_in=timedelta(days=1),
        events=(
            SeedEvent(
                "DR1",
                "Votre Colissimo va bientôt nous être confié ! Il est en cours de préparation "
                "chez l'expéditeur.",
                _hours(70.5),
            ),
            SeedEvent(
                "PC1", "Votre colis a été déposé et pris en charge par La Poste.", _hours(46)
            ),
            SeedEvent(
                "ET1",
                "Votre colis est en transit sur nos plateformes logistiques pour vous être livré "
                "le plus rapidement possible.",
                _hours(6),
            ),
        ),
        steps=(
            SeedStep(_COLIS_STEPS[0], event=1),
            SeedStep(
                _COLIS_STEPS[1],
                event=2,
                long_label="Votre colis est en cours d'acheminement vers son site de distribution.",
            ),
            SeedStep(_COLIS_STEPS[2]),
            SeedStep(_COLIS_STEPS[3]),
            SeedStep(_COLIS_STEPS[4]),
        ),
    ),
    SeedShipment(
        id_ship="6A00000000002",
        situation="Colissimo delivered, last event DI1",
        holder=4,
        product="colissimo",
        is_final=True,
        delivered=True,
        events=(
            SeedEvent(
                "PC1", "Votre colis a été déposé et pris en charge par La Poste.", _hours(98)
            ),
            SeedEvent(
                "ET1",
                "Votre colis est en transit sur nos plateformes logistiques pour vous être livré "
                "le plus rapidement possible.",
                _hours(80),
            ),
            SeedEvent(
                "EP1",
                "Votre colis est arrivé sur son site de distribution. Il est en attente de "
                "présentation.",
                _hours(33),
            ),
            SeedEvent("MD2", "Votre colis est en cours de livraison.", _hours(27.5)),
            SeedEvent(
                "DI1",
                "Votre colis est livré dans la boîte aux lettres de son destinataire.",
                _hours(24.25),
            ),
        ),
        steps=(
            SeedStep(_COLIS_STEPS[0], event=0),
            SeedStep(_COLIS_STEPS[1], event=1),
            SeedStep(_COLIS_STEPS[2], event=2),
            SeedStep(_COLIS_STEPS[3], event=3),
            SeedStep(
                _COLIS_STEPS[4],
                event=4,
                long_label="Votre colis a été livré. Bonne réception !",
            ),
        ),
    ),
    SeedShipment(
        id_ship="6A00000000003",
        situation="Colissimo with a problem, last event PB1",
        holder=4,
        product="colissimo",
        events=(
            SeedEvent(
                "PC1", "Votre colis a été déposé et pris en charge par La Poste.", _hours(96)
            ),
            SeedEvent(
                "ET1",
                "Votre colis est en transit sur nos plateformes logistiques pour vous être livré "
                "le plus rapidement possible.",
                _hours(75),
            ),
            SeedEvent(
                "PB1",
                "Votre colis a subi un incident lors de son acheminement. Nous mettons tout en "
                "œuvre pour vous le livrer dans les meilleurs délais.",
                _hours(26),
            ),
        ),
        steps=(
            SeedStep(_COLIS_STEPS[0], event=0),
            SeedStep(
                _COLIS_STEPS[1],
                event=2,
                type=0,
                long_label="Un incident retarde l'acheminement de votre colis.",
            ),
            SeedStep(_COLIS_STEPS[2]),
            SeedStep(_COLIS_STEPS[3]),
            SeedStep(_COLIS_STEPS[4]),
        ),
    ),
    SeedShipment(
        id_ship="EW000000001FR",
        situation="international item returned to sender, last event RE1",
        holder=2,
        product="Lettre suivie internationale",
        arrival_country="BE",
        events=(
            SeedEvent(
                "PC2",
                "Votre courrier a été pris en charge dans le pays d'expédition.",
                _hours(290),
            ),
            SeedEvent(
                "ET2",
                "Votre courrier est en cours de traitement dans le pays d'expédition.",
                _hours(266),
            ),
            SeedEvent(
                "ET4",
                "Votre courrier est en cours de traitement dans un pays de transit.",
                _hours(240),
            ),
            SeedEvent(
                "ET3",
                "Votre courrier est en cours de traitement dans le pays de destination.",
                _hours(196),
            ),
            SeedEvent(
                "ND1",
                "Votre courrier n'a pas pu être distribué : l'adresse est incomplète.",
                _hours(150),
            ),
            SeedEvent(
                "RE1",
                "Votre courrier est retourné à l'expéditeur.",
                _hours(122),
            ),
        ),
        steps=(
            SeedStep("Pris en charge", event=0),
            SeedStep("En cours d'acheminement", event=2),
            SeedStep("Arrivé dans le pays de destination", event=3, country="BE"),
            SeedStep(
                "Retourné à l'expéditeur",
                event=5,
                country="BE",
                type=-1,
                long_label="Votre courrier n'a pas pu être distribué et est retourné à "
                "l'expéditeur.",
            ),
            SeedStep("Distribué"),
        ),
    ),
)

SEED_IDSHIPS: tuple[str, ...] = tuple(s.id_ship for s in SEED_SHIPMENTS)


def _event_dates(seed: SeedShipment, now: datetime) -> list[str]:
    return [iso(now - event.age) for event in seed.events]


def _timeline(seed: SeedShipment, dates: list[str]) -> list[dict[str, Any]]:
    """The five steps; a step not reached yet has no date and no country, as on the real API."""
    steps: list[dict[str, Any]] = []
    for number, step in enumerate(seed.steps, start=1):
        reached = step.event is not None
        entry: dict[str, Any] = {
            "id": number,
            "shortLabel": step.short_label,
            "longLabel": step.long_label,
        }
        if step.event is not None:
            entry["date"] = dates[step.event]
        entry["country"] = step.country if reached else ""
        entry["status"] = reached
        entry["type"] = step.type
        steps.append(entry)
    return steps


def _events(seed: SeedShipment, dates: list[str]) -> list[dict[str, Any]]:
    """Events newest first; `order` grows with time (the oldest event is 100)."""
    listed = [
        {"order": 100 * (index + 1), "code": event.code, "label": event.label, "date": dates[index]}
        for index, event in enumerate(seed.events)
    ]
    return list(reversed(listed))


def shipment_payload(seed: SeedShipment, now: datetime) -> dict[str, Any]:
    """The Suivi v2 `shipment` object for one seeded shipment, as of `now`."""
    dates = _event_dates(seed, now)
    shipment: dict[str, Any] = {
        "idShip": seed.id_ship,
        "holder": seed.holder,
        "product": seed.product,
        "isFinal": seed.is_final,
        "entryDate": dates[0],
    }
    if seed.delivered:
        shipment["deliveryDate"] = dates[-1]
    if seed.estim_in is not None:
        shipment["estimDate"] = (to_paris(now) + seed.estim_in).date().isoformat()
    shipment["timeline"] = _timeline(seed, dates)
    shipment["event"] = _events(seed, dates)
    shipment["contextData"] = {
        "deliveryChoice": {"deliveryChoice": seed.delivery_choice},
        "originCountry": seed.origin_country,
        "arrivalCountry": seed.arrival_country,
    }
    shipment["url"] = TRACKING_URL + seed.id_ship
    return shipment


def seed_shipments(now: datetime) -> dict[str, dict[str, Any]]:
    """Every seeded shipment's Suivi v2 `shipment` object, keyed by idShip."""
    return {seed.id_ship: shipment_payload(seed, now) for seed in SEED_SHIPMENTS}
