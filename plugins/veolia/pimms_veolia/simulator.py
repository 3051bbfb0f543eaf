"""A simulator of Veolia's partner API (auth, espace client, demandes) for the sandbox.

It follows `/work/shared/partners/veolia.md`: bearer tokens from a login call (401 and 403 both
mean "log in again"), abonnements found by numéro client, demandes opened with an
`Idempotency-Key` header, and French `{"erreur": {"code", "libelle"}}` error bodies. Demandes and
idempotency keys live in the `SandboxState` so that another process sees them; tokens are kept in
memory, per app, as a real token server would forget them on restart.

Choices where the contract is silent (documented so the plugin and its tests can rely on them):
- quota: 10 calls per second per login, on authenticated routes only (not on the login call);
- timestamps are ISO 8601 in UTC with seconds (`2026-10-01T09:30:00+00:00`), and
  `date_reponse_prevue` is a timestamp too (creation + 8 days, or + 2 days for a `FUITE`);
- an idempotency key is scoped to the login; reusing it returns the demande it created (with its
  current `etat`), whatever the new body says;
- this simulator never answers 204 (the contract allows it on some reads; the plugin is tested
  for it separately).
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from pimms_core.sandbox import QuotaLimiter, SandboxState

from .seed import (
    ETATS_DEMANDE,
    SANDBOX_LOGIN,
    SANDBOX_PASSWORD,
    STATUT_RESILIE,
    TOKEN_LIFETIME_SECONDS,
    TYPES_DEMANDE,
    Abonnement,
    abonnements_for,
    find_abonnement,
)

#: The documented quota: this many authenticated calls per window, per login.
QUOTA_CALLS = 10
QUOTA_SECONDS = 1.0

#: Response delays of the contract.
DELAI_REPONSE = timedelta(days=8)
DELAI_REPONSE_FUITE = timedelta(days=2)

#: Top-level entries of the SandboxState used by this simulator.
CLAIMS_KEY = "claims"
IDEMPOTENCY_KEY = "idempotency_keys"
SEQUENCES_KEY = "demande_sequences"

_NUMERO_CLIENT = re.compile(r"[0-9]{9}")

_MESSAGES_ETAT = {
    "NOUVELLE": "Demande enregistree",
    "EN_COURS": "Demande prise en charge par un conseiller",
    "EN_ATTENTE_CLIENT": "Informations complementaires attendues du client",
    "TRAITEE": "Demande traitee",
    "REJETEE": "Demande rejetee",
    "CLOSE": "Demande close",
}

_HTTP_CODES = {
    400: "REQUETE_INVALIDE",
    404: "RESSOURCE_INCONNUE",
    405: "METHODE_NON_AUTORISEE",
    415: "REQUETE_INVALIDE",
}


class ApiError(Exception):
    """An error answered with Veolia's `{"erreur": {"code", "libelle"}}` body."""

    def __init__(
        self,
        status: int,
        code: str,
        libelle: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {libelle}")
        self.status = status
        self.code = code
        self.libelle = libelle
        self.headers = headers or {}


def _invalid(libelle: str) -> ApiError:
    """The contract's 400 for any malformed request."""
    return ApiError(400, "REQUETE_INVALIDE", libelle)


def _error_response(error: ApiError) -> Response:
    response = jsonify({"erreur": {"code": error.code, "libelle": error.libelle}})
    response.status_code = error.status
    response.headers.update(error.headers)
    return response


def _timestamp(moment: datetime) -> str:
    """The simulator's one timestamp format: ISO 8601, UTC, seconds."""
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _json_object() -> dict[str, Any]:
    """The request body as a JSON object, or the contract's 400."""
    body = request.get_json(force=True, silent=True)
    if not isinstance(body, dict):
        raise _invalid("Le corps de la requete doit etre un objet JSON.")
    return body


def _required_text(body: dict[str, Any], field: str) -> str:
    """A required, non-blank string field of a JSON body."""
    value = body.get(field)
    if not isinstance(value, str) or not value.strip():
        raise _invalid(f"Le champ '{field}' est obligatoire.")
    return value


@dataclass
class _Token:
    login: str
    issued_at: datetime
    revoked: bool = False


class _TokenStore:
    """The app's issued jetons, in memory: they expire by `state.now()` or by the admin route."""

    def __init__(self, state: SandboxState) -> None:
        self._state = state
        self._tokens: dict[str, _Token] = {}
        self._lock = threading.Lock()

    def issue(self, login: str) -> str:
        jeton = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[jeton] = _Token(login=login, issued_at=self._state.now())
        return jeton

    def login_for(self, jeton: str) -> str:
        """The login behind a valid jeton; 401 if unknown, 403 if expired."""
        with self._lock:
            token = self._tokens.get(jeton)
        if token is None:
            raise _unknown_token()
        lifetime = timedelta(seconds=TOKEN_LIFETIME_SECONDS)
        if token.revoked or self._state.now() >= token.issued_at + lifetime:
            raise ApiError(403, "JETON_EXPIRE", "Le jeton a expire, veuillez vous reconnecter.")
        return token.login

    def expire_all(self) -> int:
        with self._lock:
            for token in self._tokens.values():
                token.revoked = True
            return len(self._tokens)


def _unknown_token() -> ApiError:
    return ApiError(
        401,
        "JETON_INVALIDE",
        "Jeton absent ou inconnu.",
        headers={"WWW-Authenticate": 'Bearer realm="veolia"'},
    )


def _bearer_token() -> str:
    """The jeton of the Authorization header, or 401."""
    scheme, _, jeton = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not jeton.strip():
        raise _unknown_token()
    return jeton.strip()


def _demande_summary(claim: dict[str, Any]) -> dict[str, Any]:
    """The creation answer's `demande` object."""
    return {
        "numero_demande": claim["numero_demande"],
        "etat": claim["etat"],
        "date_creation": claim["date_creation"],
        "date_reponse_prevue": claim["date_reponse_prevue"],
    }


def _demande_detail(claim: dict[str, Any]) -> dict[str, Any]:
    """The follow-up answer's `demande` object: everything known, suivi included."""
    detail = {
        "numero_demande": claim["numero_demande"],
        "id_abonnement": claim["id_abonnement"],
        "type_demande": claim["type_demande"],
        "description": claim["description"],
        "etat": claim["etat"],
        "date_creation": claim["date_creation"],
        "date_reponse_prevue": claim["date_reponse_prevue"],
        "date_maj": claim["date_maj"],
        "suivi": [dict(entry) for entry in claim["suivi"]],
    }
    if claim.get("contact") is not None:
        detail["contact"] = claim["contact"]
    return detail


@dataclass(frozen=True)
class _NewDemande:
    """A validated creation request."""

    id_abonnement: str
    type_demande: str
    description: str
    contact: str | dict[str, Any] | None


def _parse_new_demande(body: dict[str, Any]) -> _NewDemande:
    id_abonnement = _required_text(body, "id_abonnement")
    type_demande = _required_text(body, "type_demande")
    if type_demande not in TYPES_DEMANDE:
        raise _invalid(f"type_demande inconnu; valeurs admises : {', '.join(TYPES_DEMANDE)}.")
    description = _required_text(body, "description")
    contact = body.get("contact")
    if contact is not None and not isinstance(contact, str | dict):
        raise _invalid("Le champ 'contact' doit etre un texte ou un objet.")
    return _NewDemande(id_abonnement, type_demande, description, contact)


def _check_abonnement(new: _NewDemande, abonnement: Abonnement | None) -> None:
    """404 for an unknown abonnement, 409 for a non-`AUTRE` demande on a terminated one."""
    if abonnement is None:
        raise ApiError(404, "ABONNEMENT_INCONNU", f"Abonnement {new.id_abonnement} inconnu.")
    if abonnement.statut == STATUT_RESILIE and new.type_demande != "AUTRE":
        raise ApiError(
            409,
            "ABONNEMENT_RESILIE",
            f"L'abonnement {abonnement.id_abonnement} est resilie : seule une demande AUTRE "
            "peut etre ouverte.",
        )


def _next_numero(data: dict[str, Any], now: datetime) -> str:
    """The next `D-<year>-<5 digits>` id; one sequence per year, kept in the state."""
    year = str(now.astimezone(UTC).year)
    sequences = data.setdefault(SEQUENCES_KEY, {})
    sequences[year] = int(sequences.get(year, 0)) + 1
    return f"D-{year}-{sequences[year]:05d}"


def _new_claim(numero: str, new: _NewDemande, now: datetime) -> dict[str, Any]:
    delai = DELAI_REPONSE_FUITE if new.type_demande == "FUITE" else DELAI_REPONSE
    created = _timestamp(now)
    return {
        "numero_demande": numero,
        "id_abonnement": new.id_abonnement,
        "type_demande": new.type_demande,
        "description": new.description,
        "contact": new.contact,
        "etat": ETATS_DEMANDE[0],
        "date_creation": created,
        "date_reponse_prevue": _timestamp(now + delai),
        "date_maj": created,
        "suivi": [
            {"etat": ETATS_DEMANDE[0], "date": created, "message": _MESSAGES_ETAT["NOUVELLE"]}
        ],
    }


def _unknown_demande(numero: str) -> ApiError:
    return ApiError(404, "DEMANDE_INCONNUE", f"Demande {numero} inconnue.")


class _Simulator:
    """The views of one app, sharing its state, token store and quota limiter."""

    def __init__(self, state: SandboxState, limiter: QuotaLimiter | None) -> None:
        self.state = state
        self.tokens = _TokenStore(state)
        self.limiter = limiter

    # -- auth and quota ------------------------------------------------------------------------

    def authenticate(self) -> str:
        """The caller's login, after the token check and the quota."""
        login = self.tokens.login_for(_bearer_token())
        if self.limiter is not None:
            retry_after = self.limiter.hit(login)
            if retry_after is not None:
                raise ApiError(
                    429,
                    "TROP_DE_REQUETES",
                    f"Quota depasse ({QUOTA_CALLS} appels par seconde), reessayez plus tard.",
                    headers={"Retry-After": str(retry_after)},
                )
        return login

    def token(self) -> Response:
        body = _json_object()
        identifiant = _required_text(body, "identifiant")
        mot_de_passe = _required_text(body, "mot_de_passe")
        valid_login = secrets.compare_digest(identifiant, SANDBOX_LOGIN)
        valid_password = secrets.compare_digest(mot_de_passe, SANDBOX_PASSWORD)
        if not (valid_login and valid_password):
            raise ApiError(401, "IDENTIFIANTS_INVALIDES", "Identifiant ou mot de passe incorrect.")
        jeton = self.tokens.issue(identifiant)
        return jsonify({"jeton": jeton, "expire_dans": TOKEN_LIFETIME_SECONDS})

    # -- espace client -------------------------------------------------------------------------

    def abonnements(self) -> Response:
        self.authenticate()
        numero = request.args.get("numero_client", "")
        if not _NUMERO_CLIENT.fullmatch(numero):
            raise _invalid("numero_client doit comporter 9 chiffres.")
        found = abonnements_for(numero, self.state.now())
        return jsonify({"abonnements": [a.to_json() for a in found]})

    # -- demandes ------------------------------------------------------------------------------

    def create_demande(self) -> Response | tuple[Response, int]:
        login = self.authenticate()
        key = request.headers.get("Idempotency-Key", "").strip()
        if not key:
            raise _invalid("L'en-tete Idempotency-Key est obligatoire.")
        new = _parse_new_demande(_json_object())
        now = self.state.now()
        with self.state.transaction() as data:
            keys = data.setdefault(IDEMPOTENCY_KEY, {}).setdefault(login, {})
            claims = data.setdefault(CLAIMS_KEY, {})
            known = keys.get(key)
            if known is not None and known in claims:
                return jsonify({"demande": _demande_summary(claims[known])}), 200
            _check_abonnement(new, find_abonnement(new.id_abonnement, now))
            numero = _next_numero(data, now)
            claims[numero] = _new_claim(numero, new, now)
            keys[key] = numero
            return jsonify({"demande": _demande_summary(claims[numero])}), 201

    def get_demande(self, numero: str) -> Response:
        self.authenticate()
        claim = self.state.read().get(CLAIMS_KEY, {}).get(numero)
        if claim is None:
            raise _unknown_demande(numero)
        return jsonify({"demande": _demande_detail(claim)})

    # -- sandbox administration ----------------------------------------------------------------

    def set_status(self, claim_id: str) -> Response:
        body = _json_object()
        status = body.get("status")
        if status not in ETATS_DEMANDE:
            raise _invalid(f"status inconnu; valeurs admises : {', '.join(ETATS_DEMANDE)}.")
        note = body.get("note")
        if note is not None and not isinstance(note, str):
            raise _invalid("Le champ 'note' doit etre un texte.")
        date = _timestamp(self.state.now())
        with self.state.transaction() as data:
            claim = data.get(CLAIMS_KEY, {}).get(claim_id)
            if claim is None:
                raise _unknown_demande(claim_id)
            claim["etat"] = status
            claim["date_maj"] = date
            message = note if note else _MESSAGES_ETAT[status]
            claim["suivi"].append({"etat": status, "date": date, "message": message})
            return jsonify({"demande": _demande_detail(claim)})

    def expire_tokens(self) -> Response:
        return jsonify({"jetons_expires": self.tokens.expire_all()})


def _register_error_handlers(app: Flask) -> None:
    """Every error, routing ones included, in Veolia's JSON shape: never an HTML page."""

    @app.errorhandler(ApiError)
    def _api_error(error: ApiError) -> Response:
        return _error_response(error)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Response:
        status = error.code or 500
        code = _HTTP_CODES.get(status, "ERREUR_INTERNE" if status >= 500 else "REQUETE_INVALIDE")
        response = _error_response(ApiError(status, code, error.description or error.name))
        allowed = getattr(error, "valid_methods", None)
        if status == 405 and allowed:
            response.headers["Allow"] = ", ".join(allowed)
        return response

    @app.errorhandler(Exception)
    def _internal_error(error: Exception) -> Response:
        app.logger.exception("Erreur interne du simulateur Veolia", exc_info=error)
        return _error_response(ApiError(500, "ERREUR_INTERNE", "Erreur interne du service."))


def create_app(
    state: SandboxState,
    *,
    quotas: bool = True,
    quota_clock: Callable[[], float] | None = None,
) -> Flask:
    """A fresh Flask app simulating Veolia on `state`.

    `quotas=False` disables the 429s; `quota_clock` (seconds, monotonic) lets tests drive the
    quota window deterministically, and defaults to the real monotonic clock.
    """
    app = Flask(__name__)
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    limiter = (
        QuotaLimiter(QUOTA_CALLS, QUOTA_SECONDS, clock=quota_clock or time.monotonic)
        if quotas
        else None
    )
    sim = _Simulator(state, limiter)
    _register_error_handlers(app)
    app.add_url_rule("/auth/v1/token", view_func=sim.token, methods=["POST"])
    app.add_url_rule("/espace-client/v1/abonnements", view_func=sim.abonnements, methods=["GET"])
    app.add_url_rule("/demandes/v1/demandes", view_func=sim.create_demande, methods=["POST"])
    app.add_url_rule(
        "/demandes/v1/demandes/<numero>",
        endpoint="get_demande",
        view_func=sim.get_demande,
        methods=["GET"],
    )
    app.add_url_rule(
        "/_sandbox/claims/<claim_id>/status",
        endpoint="set_status",
        view_func=sim.set_status,
        methods=["POST"],
    )
    app.add_url_rule("/_sandbox/tokens/expire", view_func=sim.expire_tokens, methods=["POST"])
    return app
