"""SNCF sandbox credentials and seed bookings (no Flask here: light plugin modules import this).

The seed table is the one of `/work/shared/partners/sncf.md`. Journeys are placed relative to
`now` (a few days ago, or 90 days ago for OLD001) so that the Garantie G30 rules give the same
answer whatever day the sandbox runs. All people and bookings are fictional.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

SANDBOX_API_KEY = "sandbox-sncf-key"
"""The sandbox API key: HTTP Basic user name, empty password."""

PARIS = ZoneInfo("Europe/Paris")
"""SNCF's public API gives local (Europe/Paris) times."""

SNCF_DATETIME_FORMAT = "%Y%m%dT%H%M%S"

G30_SERVICES = ("TGV INOUI", "Intercités")
"""Train services covered by the Garantie G30 (TER and others are not)."""


def to_paris(moment: datetime) -> datetime:
    """Local Paris time of an instant (a naive datetime is taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(PARIS)


def format_sncf_datetime(moment: datetime) -> str:
    """`YYYYMMDDTHHMMSS` in Europe/Paris local time, as SNCF's public API writes dates."""
    return to_paris(moment).strftime(SNCF_DATETIME_FORMAT)


def parse_sncf_datetime(text: str) -> datetime:
    """Inverse of `format_sncf_datetime`: an aware Europe/Paris datetime."""
    return datetime.strptime(text, SNCF_DATETIME_FORMAT).replace(tzinfo=PARIS)


def normalize_name(name: str) -> str:
    """Compare names without case or accents ("Nguyễn" == "NGUYEN"), as the contract requires."""
    decomposed = unicodedata.normalize("NFKD", name.strip())
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(stripped.casefold().split())


@dataclass(frozen=True)
class Trip:
    """One leg of a booking, with its real arrival (what G30 is computed on)."""

    service: str
    number: str
    origin: str
    destination: str
    departure: datetime
    scheduled_arrival: datetime
    delay_minutes: int

    @property
    def actual_arrival(self) -> datetime:
        return self.scheduled_arrival + timedelta(minutes=self.delay_minutes)

    @property
    def g30_service(self) -> bool:
        """Whether this train is covered by the Garantie G30."""
        return self.service in G30_SERVICES

    def to_json(self) -> dict[str, Any]:
        return {
            "train": f"{self.service} {self.number}",
            "origine": self.origin,
            "destination": self.destination,
            "depart_prevu": format_sncf_datetime(self.departure),
            "arrivee_prevue": format_sncf_datetime(self.scheduled_arrival),
            "arrivee_reelle": format_sncf_datetime(self.actual_arrival),
            "retard_minutes": self.delay_minutes,
        }


@dataclass(frozen=True)
class Booking:
    """A "dossier voyage": reference + holder name, travellers, trips and fare."""

    reference: str
    last_name: str
    travellers: tuple[tuple[str, str], ...]
    trips: tuple[Trip, ...]
    fare: float
    currency: str = "EUR"
    status: str = "confirme"

    def matches(self, reference: str, last_name: str) -> bool:
        """Both the reference and the name must match: the reference alone reveals nothing."""
        return reference.strip().upper() == self.reference and normalize_name(
            last_name
        ) == normalize_name(self.last_name)

    def to_json(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "nom": self.last_name.upper(),
            "statut": self.status,
            "voyageurs": [{"prenom": first, "nom": last} for first, last in self.travellers],
            "trajets": [trip.to_json() for trip in self.trips],
            "montant_total": {"valeur": self.fare, "devise": self.currency},
        }


def _local(day: date, hour: int, minute: int) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=PARIS)


def _trip(
    day: date,
    service: str,
    number: str,
    route: tuple[str, str],
    times: tuple[tuple[int, int], tuple[int, int]],
    delay: int,
) -> Trip:
    (dep_h, dep_m), (arr_h, arr_m) = times
    return Trip(
        service=service,
        number=number,
        origin=route[0],
        destination=route[1],
        departure=_local(day, dep_h, dep_m),
        scheduled_arrival=_local(day, arr_h, arr_m),
        delay_minutes=delay,
    )


def build_bookings(now: datetime) -> dict[str, Booking]:
    """The seed bookings, keyed by reference, with journeys dated relative to `now`.

    Journeys fall on whole local days before `now` at fixed local times, so the data is stable
    within a day: ABC123 10 days ago, XYZ789 8 days ago, QRS456 6 days ago, OLD001 90 days ago.
    """
    today = to_paris(now).date()

    def days_ago(n: int) -> date:
        return today - timedelta(days=n)

    bookings = [
        Booking(
            reference="ABC123",
            last_name="Martin",
            travellers=(("Camille", "MARTIN"),),
            trips=(
                _trip(
                    days_ago(10),
                    "TGV INOUI",
                    "6611",
                    ("Paris Gare de Lyon", "Lyon Part-Dieu"),
                    ((8, 10), (10, 10)),
                    65,
                ),
            ),
            fare=89.0,
        ),
        Booking(
            reference="XYZ789",
            last_name="Benali",
            travellers=(("Yasmine", "BENALI"),),
            trips=(
                _trip(
                    days_ago(8),
                    "Intercités",
                    "3631",
                    ("Paris Austerlitz", "Clermont-Ferrand"),
                    ((7, 56), (11, 20)),
                    130,
                ),
            ),
            fare=45.0,
        ),
        Booking(
            reference="QRS456",
            last_name="Nguyen",
            travellers=(("Linh", "NGUYEN"),),
            trips=(
                _trip(
                    days_ago(6),
                    "TER",
                    "886012",
                    ("Lyon Part-Dieu", "Grenoble"),
                    ((9, 14), (10, 36)),
                    40,
                ),
            ),
            fare=22.4,
        ),
        Booking(
            reference="OLD001",
            last_name="Martin",
            travellers=(("Louis", "MARTIN"),),
            trips=(
                _trip(
                    days_ago(90),
                    "TGV INOUI",
                    "8515",
                    ("Paris Montparnasse", "Bordeaux Saint-Jean"),
                    ((9, 52), (12, 0)),
                    80,
                ),
            ),
            fare=79.0,
        ),
    ]
    return {booking.reference: booking for booking in bookings}


SEED_REFERENCES: tuple[tuple[str, str], ...] = (
    ("ABC123", "Martin"),
    ("XYZ789", "Benali"),
    ("QRS456", "Nguyen"),
    ("OLD001", "Martin"),
)
"""(reference, last name) of every seed booking, for tests and documentation."""


def find_booking(reference: str, last_name: str, now: datetime) -> Booking | None:
    """The seed booking with this reference AND this name, else None (never one without other)."""
    booking = build_bookings(now).get(reference.strip().upper())
    if booking is None or not booking.matches(reference, last_name):
        return None
    return booking
