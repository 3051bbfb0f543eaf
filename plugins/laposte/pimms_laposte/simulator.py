"""A La Poste sandbox: the real "Suivi v2" tracking API plus the mediation claims API.

The plugin is developed and tested against this app instead of api.laposte.fr. It reproduces
the Okapi gateway's behaviour that a client must absorb: the X-Okapi-Key check, the 100 calls
per second quota, bare object versus array answers, JSON and non-JSON 404s, and claims that
have no idempotency header (the caller looks its `referenceExterne` up before re-sending).
"""

from __future__ import annotations

import hmac
import re
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from pimms_core.sandbox import QuotaLimiter, SandboxState

from .seed import (
    CLAIM_ID_PREFIX,
    DEFAULT_LANG,
    IDSHIP_PATTERN,
    INITIAL_STATUT,
    LANGS,
    MAX_IDSHIPS_PER_CALL,
    MOTIFS,
    QUOTA_CALLS,
    QUOTA_SECONDS,
    RESPONSE_DELAY,
    SANDBOX_OKAPI_KEY,
    SEED_IDSHIPS,
    STATUTS,
    iso,
    seed_shipments,
    to_paris,
)

JsonBody = dict[str, Any]
Answer = tuple[Response, int]

INVALID_IDSHIP_MESSAGE = (
    "Le numéro que vous avez saisi n'est pas valide. Nous vous invitons à vérifier votre saisie, "
    "en particulier le nombre de caractères."
)
INVALID_LANG_MESSAGE = "La langue demandée n'est pas disponible. Valeurs acceptées : " + ", ".join(
    LANGS
)
TOO_MANY_IDSHIPS_MESSAGE = (
    f"Vous ne pouvez pas suivre plus de {MAX_IDSHIPS_PER_CALL} envois en une seule demande."
)
TOO_MANY_REQUESTS_BODY = {
    "code": "TOO_MANY_REQUESTS",
    "message": (
        f"Rate limited, max quota reached ({QUOTA_CALLS} calls per {QUOTA_SECONDS}s) "
        "(TOO_MANY_REQUESTS)."
    ),
}
NO_IDSHIP_BODY = "404 page not found\n"
SANDBOX_PREFIX = "/_sandbox/"
CLAIMS_PATH = "/reclamation/v1/reclamations"


class ApiError(Exception):
    """An error answered in La Poste's `returnCode` / `returnMessage` shape."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def create_app(
    state: SandboxState,
    *,
    quotas: bool = True,
    quota_clock: Callable[[], float] | None = None,
) -> Flask:
    """Build a fresh simulator app on `state` (`quota_clock` lets tests drive the quota window)."""
    app = Flask(__name__)
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.json.sort_keys = False  # type: ignore[attr-defined]
    limiter = None
    if quotas:
        limiter = QuotaLimiter(QUOTA_CALLS, QUOTA_SECONDS, clock=quota_clock or time.monotonic)
    _register_gateway(app, limiter)
    _register_tracking(app, state)
    _register_claims(app, state)
    _register_admin(app, state)
    _register_errors(app)
    return app


# --- Gateway: authentication, quota, error pages ------------------------------------------------


def _error(status: int, message: str) -> Answer:
    return jsonify({"returnCode": status, "returnMessage": message}), status


def _key_is_valid(key: str | None) -> bool:
    return key is not None and hmac.compare_digest(key.encode(), SANDBOX_OKAPI_KEY.encode())


def _too_many_requests(retry_after: int) -> Answer:
    response = jsonify(TOO_MANY_REQUESTS_BODY)
    response.headers["Retry-After"] = str(retry_after)
    return response, 429


def _register_gateway(app: Flask, limiter: QuotaLimiter | None) -> None:
    """Every API call needs the Okapi key, then counts against that key's quota."""

    @app.before_request
    def _guard() -> Answer | None:
        if request.path.startswith(SANDBOX_PREFIX):
            return None
        key = request.headers.get("X-Okapi-Key")
        if not _key_is_valid(key):
            return _error(401, "Unauthorized")
        if limiter is not None:
            retry_after = limiter.hit(str(key))
            if retry_after is not None:
                return _too_many_requests(retry_after)
        return None


def _register_errors(app: Flask) -> None:
    """No Flask HTML page ever: API errors come in the returnCode shape."""

    @app.errorhandler(ApiError)
    def _api_error(error: ApiError) -> Answer:
        return _error(error.status, error.message)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Answer:
        status = error.code or 500
        return _error(status, error.name)

    @app.errorhandler(Exception)
    def _crash(error: Exception) -> Answer:
        return _error(500, "Internal Server Error")


# --- Tracking: Suivi v2 ---------------------------------------------------------------------------


def _tracking_body(status: int, message: str, id_ship: str, lang: str) -> JsonBody:
    return {
        "returnCode": status,
        "returnMessage": message,
        "idShip": id_ship,
        "lang": lang,
        "scope": "open",
    }


def _track_one(id_ship: str, lang: str, shipments: dict[str, JsonBody]) -> tuple[JsonBody, int]:
    """One unit answer of Suivi v2: 200 with the shipment, 400 if malformed, 404 if unknown."""
    if not IDSHIP_PATTERN.match(id_ship):
        return _tracking_body(400, INVALID_IDSHIP_MESSAGE, id_ship, lang), 400
    shipment = shipments.get(id_ship.upper())
    if shipment is None:
        return _tracking_body(404, "Not Found", id_ship, lang), 404
    return {"lang": lang, "scope": "open", "returnCode": 200, "shipment": shipment}, 200


def _batch_status(codes: list[int]) -> int:
    """A batch answers with its units' common status, or 207 Multi-Status when they differ."""
    distinct = set(codes)
    return distinct.pop() if len(distinct) == 1 else 207


def _register_tracking(app: Flask, state: SandboxState) -> None:
    @app.get("/suivi/v2/idships/<idships>")
    def track(idships: str) -> Answer:
        """One id gives a bare object; comma-joined ids give an array of unit answers."""
        lang = request.args.get("lang", DEFAULT_LANG)
        if lang not in LANGS:
            return jsonify(_tracking_body(400, INVALID_LANG_MESSAGE, idships, DEFAULT_LANG)), 400
        ids = idships.split(",")
        if len(ids) > MAX_IDSHIPS_PER_CALL:
            return jsonify(_tracking_body(400, TOO_MANY_IDSHIPS_MESSAGE, idships, lang)), 400
        shipments = seed_shipments(state.now())
        units = [_track_one(id_ship, lang, shipments) for id_ship in ids]
        if len(units) == 1:
            body, status = units[0]
            return jsonify(body), status
        return jsonify([body for body, _ in units]), _batch_status([s for _, s in units])

    @app.get("/suivi/v2/idships/")
    @app.get("/suivi/v2/idships")
    def track_without_id() -> Response:
        """The real gateway answers a missing id with a plain-text 404, not JSON."""
        return Response(NO_IDSHIP_BODY, status=404, mimetype="text/plain")


# --- Claims: mediation API --------------------------------------------------------------------


def _json_object() -> JsonBody:
    body = request.get_json(force=True, silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "Le corps de la requête doit être un objet JSON valide.")
    return body


def _required_text(body: JsonBody, field: str) -> str:
    value = body.get(field)
    if not isinstance(value, str) or not value.strip():
        raise ApiError(400, f"Le champ {field} est obligatoire.")
    return value


def _contact(body: JsonBody) -> dict[str, str]:
    """`contact` is optional; when given it is an object with optional email and telephone."""
    contact = body.get("contact", {})
    if contact is None:
        return {}
    if not isinstance(contact, dict):
        raise ApiError(400, "Le champ contact doit être un objet.")
    cleaned: dict[str, str] = {}
    for field in ("email", "telephone"):
        value = contact.get(field)
        if value is None:
            continue
        if not isinstance(value, str):
            raise ApiError(400, f"Le champ contact.{field} doit être une chaîne de caractères.")
        cleaned[field] = value
    return cleaned


def _validated_claim_request(body: JsonBody) -> JsonBody:
    """Check a POST body field by field (400), then that the shipment exists (404)."""
    id_ship = _required_text(body, "idShip")
    if not IDSHIP_PATTERN.match(id_ship):
        raise ApiError(400, INVALID_IDSHIP_MESSAGE)
    motif = _required_text(body, "motif")
    if motif not in MOTIFS:
        raise ApiError(
            400, f"Le motif {motif} n'est pas valide. Valeurs acceptées : " + ", ".join(MOTIFS)
        )
    description = _required_text(body, "description")
    reference = _required_text(body, "referenceExterne")
    contact = _contact(body)
    if id_ship.upper() not in SEED_IDSHIPS:
        raise ApiError(404, "Not Found")
    return {
        "idShip": id_ship.upper(),
        "motif": motif,
        "description": description,
        "referenceExterne": reference,
        "contact": contact,
    }


def _next_claim_id(claims: dict[str, JsonBody], year: int) -> str:
    """RCL-<year>-<6 digits>, sequential within the year of the simulator's clock."""
    prefix = f"{CLAIM_ID_PREFIX}-{year}-"
    pattern = re.compile(re.escape(prefix) + r"(\d{6})$")
    numbers = [int(m.group(1)) for claim_id in claims if (m := pattern.match(claim_id))]
    return f"{prefix}{max(numbers, default=0) + 1:06d}"


def _new_claim(claim_id: str, fields: JsonBody, now: datetime) -> JsonBody:
    created = to_paris(now)
    return {
        "id": claim_id,
        **fields,
        "statut": INITIAL_STATUT,
        "dateCreation": iso(created),
        "dateReponseAttendue": iso(created + RESPONSE_DELAY),
        "historique": [
            {
                "statut": INITIAL_STATUT,
                "date": iso(created),
                "commentaire": "Réclamation enregistrée.",
            }
        ],
    }


def _creation_summary(claim: JsonBody) -> JsonBody:
    keys = ("id", "statut", "dateCreation", "dateReponseAttendue")
    return {key: claim[key] for key in keys}


def _register_claims(app: Flask, state: SandboxState) -> None:
    @app.post(CLAIMS_PATH)
    def create_claim() -> Answer:
        """Every POST creates a claim: La Poste has no idempotency header."""
        fields = _validated_claim_request(_json_object())
        now = state.now()
        with state.transaction() as data:
            claims = data.setdefault("claims", {})
            claim = _new_claim(_next_claim_id(claims, now.year), fields, now)
            claims[claim["id"]] = claim
        return jsonify({"returnCode": 201, "reclamation": _creation_summary(claim)}), 201

    @app.get(CLAIMS_PATH)
    def find_claims() -> Answer:
        """Claims carrying the caller's own key, so it can check before re-sending."""
        reference = request.args.get("referenceExterne", "")
        if not reference:
            raise ApiError(400, "Le paramètre referenceExterne est obligatoire.")
        claims = state.read().get("claims", {})
        found = [c for _, c in sorted(claims.items()) if c.get("referenceExterne") == reference]
        return jsonify({"reclamations": found}), 200

    @app.get(f"{CLAIMS_PATH}/<claim_id>")
    def get_claim(claim_id: str) -> Answer:
        claim = state.read().get("claims", {}).get(claim_id)
        if claim is None:
            raise ApiError(404, "Not Found")
        return jsonify({"returnCode": 200, "reclamation": claim}), 200


# --- Sandbox administration -------------------------------------------------------------------


def _register_admin(app: Flask, state: SandboxState) -> None:
    @app.post(f"{SANDBOX_PREFIX}claims/<claim_id>/status")
    def set_claim_status(claim_id: str) -> Answer:
        """Let tests move a claim to any status, recording it in `historique`."""
        body = _json_object()
        status = body.get("status")
        note = body.get("note")
        if note is not None and not isinstance(note, str):
            raise ApiError(400, "Le champ note doit être une chaîne de caractères.")
        with state.transaction() as data:
            claim = data.get("claims", {}).get(claim_id)
            if claim is None:
                raise ApiError(404, "Not Found")
            if status not in STATUTS:
                raise ApiError(400, f"Statut inconnu : {status}. Valeurs : " + ", ".join(STATUTS))
            claim["statut"] = status
            claim["historique"].append(
                {
                    "statut": status,
                    "date": iso(state.now()),
                    "commentaire": note or f"Statut passé à {status}.",
                }
            )
        return jsonify({"returnCode": 200, "reclamation": claim}), 200
