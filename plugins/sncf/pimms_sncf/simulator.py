"""A simulator of SNCF's relation-client API (bookings and réclamations), for the sandbox.

It follows `/work/shared/partners/sncf.md`: HTTP Basic with the API key as user name, errors
shaped `{"error": {"id", "message"}}` (except the bare 401/403 bodies of SNCF's public API),
Garantie G30 rules, `external_id` uniqueness (409), and a per-key quota. Claims live in the
`SandboxState`, so several processes sharing a state file see the same réclamations.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import json
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from pimms_core.sandbox import QuotaLimiter, SandboxState
from pimms_sncf.seed import (
    SANDBOX_API_KEY,
    Booking,
    find_booking,
    format_sncf_datetime,
    to_paris,
)

QUOTA_CALLS = 20
QUOTA_SECONDS = 1.0
"""The documented quota: 20 calls per second per API key, on every `/v1/` route."""

G30_DEADLINE_DAYS = 60
"""A G30 claim must be filed within 60 days of the journey."""

G30_MIN_DELAY = 30

CLAIM_STATUSES = ("recue", "en_cours", "complement_demande", "acceptee", "refusee", "close")
MOTIFS = ("G30_RETARD", "ANNULATION", "BAGAGE", "ACCESSIBILITE", "TARIF", "AUTRE")
COMPENSATION_FORMS = ("virement", "bon_voyage")
REQUIRED_CLAIM_FIELDS = ("reference_dossier", "nom", "motif", "description", "external_id")

CLAIMS_KEY = "claims"
EXTERNAL_IDS_KEY = "sncf_external_ids"
SEQUENCE_KEY = "sncf_claim_sequence"

_UNKNOWN_BOOKING = "Aucun dossier ne correspond à cette référence et à ce nom."


class ApiError(Exception):
    """An answer in SNCF's error shape; raised from helpers, rendered by the app."""

    def __init__(self, status: int, error_id: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.error_id = error_id
        self.message = message
        self.extra = extra

    def response(self) -> tuple[Response, int]:
        return jsonify({"error": {"id": self.error_id, "message": self.message, **self.extra}}), (
            self.status
        )


def _bad_request(message: str) -> ApiError:
    return ApiError(400, "unable_to_parse", message)


# --- time rules -------------------------------------------------------------------------------


def add_one_month(moment: datetime) -> datetime:
    """Same local time one calendar month later (31 January → 28/29 February)."""
    local = to_paris(moment)
    year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
    day = min(local.day, calendar.monthrange(year, month)[1])
    return local.replace(year=year, month=month, day=day)


def g30_rate(delay_minutes: int) -> float:
    """Share of the fare refunded by the Garantie G30 (0 under 30 minutes)."""
    if delay_minutes >= 180:
        return 0.75
    if delay_minutes >= 120:
        return 0.5
    if delay_minutes >= G30_MIN_DELAY:
        return 0.25
    return 0.0


def g30_compensation(booking: Booking, now: datetime) -> dict[str, Any]:
    """The G30 compensation of a booking, or ApiError 422 (too late, or not eligible)."""
    today = to_paris(now).date()
    recent = [
        trip
        for trip in booking.trips
        if (today - to_paris(trip.departure).date()).days <= G30_DEADLINE_DAYS
    ]
    if not recent:
        raise ApiError(
            422,
            "delai_depasse",
            f"Une demande G30 doit être déposée dans les {G30_DEADLINE_DAYS} jours suivant le "
            "voyage.",
        )
    rates = [g30_rate(trip.delay_minutes) for trip in recent if trip.g30_service]
    best = max(rates, default=0.0)
    if best == 0.0:
        raise ApiError(
            422,
            "non_eligible",
            "La Garantie G30 couvre les TGV INOUI et Intercités arrivés avec 30 minutes de "
            "retard ou plus.",
        )
    return {
        "montant": round(booking.fare * best, 2),
        "devise": booking.currency,
        "forme": "bon_voyage",
    }


# --- request parsing --------------------------------------------------------------------------


def _json_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise _bad_request("Le corps de la requête doit être un objet JSON.")
    return body


def _valid_reference(reference: str) -> str:
    """A booking reference is 6 letters or digits; answer 400 otherwise."""
    candidate = reference.strip().upper()
    if len(candidate) != 6 or not (candidate.isascii() and candidate.isalnum()):
        raise _bad_request("La référence de dossier doit comporter 6 caractères alphanumériques.")
    return candidate


def _parse_claim_request(body: dict[str, Any]) -> dict[str, Any]:
    """Check the réclamation body's fields and types (400 unable_to_parse otherwise)."""
    for field in REQUIRED_CLAIM_FIELDS:
        value = body.get(field)
        if not isinstance(value, str) or not value.strip():
            raise _bad_request(f"Le champ '{field}' est obligatoire (texte non vide).")
    if body["motif"] not in MOTIFS:
        raise _bad_request(f"Motif inconnu: {body['motif']!r}. Motifs: {', '.join(MOTIFS)}.")
    contact = body.get("contact")
    if contact is not None and not isinstance(contact, dict | str):
        raise _bad_request("Le champ 'contact' doit être un objet ou un texte.")
    return {
        "reference_dossier": _valid_reference(body["reference_dossier"]),
        "nom": body["nom"].strip(),
        "motif": body["motif"],
        "description": body["description"],
        "external_id": body["external_id"],
        "contact": contact,
    }


# --- claims -----------------------------------------------------------------------------------


def _next_claim_id(data: dict[str, Any], now: datetime) -> str:
    sequence = int(data.get(SEQUENCE_KEY, 0)) + 1
    data[SEQUENCE_KEY] = sequence
    return f"R-{to_paris(now).year % 100:02d}-{sequence:07d}"


def _creation_view(claim: dict[str, Any]) -> dict[str, Any]:
    view = {key: claim[key] for key in ("id", "statut", "cree_le", "reponse_attendue_le")}
    if claim.get("compensation"):
        view["compensation"] = claim["compensation"]
    return {"reclamation": view}


def _claim_view(claim: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "statut", "maj_le", "historique", "cree_le", "reponse_attendue_le")
    view = {key: claim[key] for key in keys}
    view.update({key: claim[key] for key in ("reference_dossier", "motif", "external_id")})
    if claim.get("compensation"):
        view["compensation"] = claim["compensation"]
    return {"reclamation": view}


def create_claim(state: SandboxState, fields: dict[str, Any]) -> dict[str, Any]:
    """Validate against the booking and G30 rules, then store the réclamation once."""
    now = state.now()
    with state.transaction() as data:
        existing = data.get(EXTERNAL_IDS_KEY, {}).get(fields["external_id"])
        if existing is not None:
            raise ApiError(
                409,
                "duplicate_external_id",
                "Une réclamation existe déjà avec cet external_id.",
                existing_id=existing,
            )
        booking = find_booking(fields["reference_dossier"], fields["nom"], now)
        if booking is None:
            raise ApiError(404, "unknown_object", _UNKNOWN_BOOKING)
        compensation = g30_compensation(booking, now) if fields["motif"] == "G30_RETARD" else None
        claim_id = _next_claim_id(data, now)
        stamp = format_sncf_datetime(now)
        claim = {
            **fields,
            "id": claim_id,
            "statut": "recue",
            "cree_le": stamp,
            "maj_le": stamp,
            "reponse_attendue_le": format_sncf_datetime(add_one_month(now)),
            "historique": [{"statut": "recue", "le": stamp, "commentaire": "Réclamation reçue."}],
            "compensation": compensation,
        }
        data.setdefault(CLAIMS_KEY, {})[claim_id] = claim
        data.setdefault(EXTERNAL_IDS_KEY, {})[fields["external_id"]] = claim_id
    return claim


def _load_claim(state: SandboxState, claim_id: str) -> dict[str, Any]:
    claim = state.read().get(CLAIMS_KEY, {}).get(claim_id)
    if claim is None:
        raise ApiError(404, "unknown_object", f"Réclamation inconnue: {claim_id}.")
    return claim


def _parse_compensation(value: Any) -> dict[str, Any]:
    """The admin route's optional compensation: {"montant", "devise"?, "forme"}."""
    if not isinstance(value, dict):
        raise _bad_request("'compensation' doit être un objet.")
    amount, form = value.get("montant"), value.get("forme")
    if isinstance(amount, bool) or not isinstance(amount, int | float) or amount < 0:
        raise _bad_request("'compensation.montant' doit être un nombre positif.")
    if form not in COMPENSATION_FORMS:
        raise _bad_request(f"'compensation.forme' doit valoir {' ou '.join(COMPENSATION_FORMS)}.")
    currency = value.get("devise", "EUR")
    if not isinstance(currency, str):
        raise _bad_request("'compensation.devise' doit être un texte.")
    return {"montant": round(float(amount), 2), "devise": currency, "forme": form}


def set_claim_status(state: SandboxState, claim_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Sandbox-only: move a claim to any status, with a history entry."""
    status, note = body.get("status"), body.get("note")
    if status not in CLAIM_STATUSES:
        raise _bad_request(f"Statut inconnu: {status!r}. Statuts: {', '.join(CLAIM_STATUSES)}.")
    if note is not None and not isinstance(note, str):
        raise _bad_request("'note' doit être un texte.")
    compensation = _parse_compensation(body["compensation"]) if "compensation" in body else None
    stamp = format_sncf_datetime(state.now())
    with state.transaction() as data:
        claim = data.get(CLAIMS_KEY, {}).get(claim_id)
        if claim is None:
            raise ApiError(404, "unknown_object", f"Réclamation inconnue: {claim_id}.")
        claim["statut"] = status
        claim["maj_le"] = stamp
        claim["historique"].append(
            {"statut": status, "le": stamp, "commentaire": note or f"Statut: {status}."}
        )
        if compensation is not None:
            claim["compensation"] = compensation
        return json_copy(claim)


def json_copy(value: dict[str, Any]) -> dict[str, Any]:
    """A detached copy of state data (the transaction's dict must not leak out)."""
    return json.loads(json.dumps(value))


# --- auth and quota ---------------------------------------------------------------------------


def _basic_user() -> str | None:
    """The API key from `Authorization: Basic base64(key:)`, or None when unreadable."""
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[0]


def _check_access(limiter: QuotaLimiter | None) -> Response | tuple[Response, int] | None:
    """Auth as SNCF's public API (bare 401/403 bodies), then the per-key quota."""
    if not request.headers.get("Authorization", "").strip():
        return jsonify({"message": "no token"}), 401
    key = _basic_user()
    if key != SANDBOX_API_KEY:
        return jsonify({"message": "You are not authorized to access this resource"}), 403
    if limiter is not None:
        retry_after = limiter.hit(key)
        if retry_after is not None:
            response, status = ApiError(
                429,
                "too_many_requests",
                f"Quota dépassé: {QUOTA_CALLS} appels par seconde et par clé.",
            ).response()
            response.headers["Retry-After"] = str(retry_after)
            return response, status
    return None


# --- app --------------------------------------------------------------------------------------


def _register_error_handlers(app: Flask) -> None:
    """Every error in SNCF's JSON shape: never a Flask HTML page."""
    http_ids = {404: "unknown_object", 405: "method_not_allowed", 400: "unable_to_parse"}

    @app.errorhandler(ApiError)
    def api_error(error: ApiError) -> tuple[Response, int]:
        return error.response()

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> tuple[Response, int]:
        status = error.code or 500
        error_id = http_ids.get(status, "internal_error" if status >= 500 else "bad_request")
        return ApiError(status, error_id, error.description or error.name).response()

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> tuple[Response, int]:
        return ApiError(500, "internal_error", "Erreur interne du simulateur.").response()


def _register_api(app: Flask, state: SandboxState) -> None:
    @app.get("/v1/relation-client/dossiers/<reference>")
    def get_booking(reference: str) -> Response:
        """A booking is revealed only with its reference AND its holder's name."""
        reference = _valid_reference(reference)
        name = request.args.get("nom", "").strip()
        if not name:
            raise _bad_request("Le paramètre 'nom' est obligatoire.")
        booking = find_booking(reference, name, state.now())
        if booking is None:
            raise ApiError(404, "unknown_object", _UNKNOWN_BOOKING)
        return jsonify({"dossier": booking.to_json()})

    @app.post("/v1/relation-client/reclamations")
    def post_claim() -> tuple[Response, int]:
        claim = create_claim(state, _parse_claim_request(_json_body()))
        return jsonify(_creation_view(claim)), 201

    @app.get("/v1/relation-client/reclamations/<claim_id>")
    def get_claim(claim_id: str) -> Response:
        return jsonify(_claim_view(_load_claim(state, claim_id)))

    @app.post("/_sandbox/claims/<claim_id>/status")
    def admin_status(claim_id: str) -> Response:
        """Sandbox only, no auth: lets tests drive a claim through every status."""
        claim = set_claim_status(state, claim_id, _json_body())
        return jsonify(_claim_view(claim))


def create_app(
    state: SandboxState,
    *,
    quotas: bool = True,
    quota_clock: Callable[[], float] | None = None,
) -> Flask:
    """A fresh simulator app on `state` (`quota_clock` lets tests make the quota deterministic)."""
    app = Flask(__name__)
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    limiter = (
        QuotaLimiter(QUOTA_CALLS, QUOTA_SECONDS, clock=quota_clock or time.monotonic)
        if quotas
        else None
    )

    @app.before_request
    def guard() -> Response | tuple[Response, int] | None:
        if request.path.startswith("/v1/"):
            return _check_access(limiter)
        return None

    _register_error_handlers(app)
    _register_api(app, state)
    return app
