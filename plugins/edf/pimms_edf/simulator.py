"""A simulator of EDF's partner API (contract: shared/partners/edf.md), for tests and the sandbox.

It answers like the real service would: OAuth2 client-credentials tokens, Enedis-style customer
accounts, the mediation claims API with `Idempotency-Key`, `{"error", "error_description"}`
bodies and a per-client quota. Claims and idempotency keys live in the `SandboxState` so that a
second process sees them; tokens live in memory, one store per app, as a real gateway's cache
would (a restarted gateway forgets them, which is what the plugin's refresh-once path is for).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import flask
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from pimms_core.sandbox import QuotaLimiter, SandboxState

from .seed import (
    CLAIM_CATEGORIES,
    CLAIM_RESPONSE_DAYS,
    CLAIM_STATUS_LABELS,
    CLAIM_STATUSES,
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    TOKEN_LIFETIME_SECONDS,
    account_by_customer_id,
    account_by_usage_point_id,
    usage_point_ids,
)

CLAIMS_ENTRY = "claims"
CLAIM_COUNTER_ENTRY = "claim_counter"
IDEMPOTENCY_ENTRY = "idempotency_keys"

PER_SECOND_QUOTA = 5
PER_HOUR_QUOTA = 1000
MAX_IDEMPOTENCY_KEY_LENGTH = 255

BAD_INPUT = "EDF-ERR0002"
NOT_FOUND = "EDF-ERR0404"
INITIAL_NOTE = "Réclamation reçue"

_CUSTOMER_ID = re.compile(r"\d{10}")
_USAGE_POINT_ID = re.compile(r"\d{14}")

View = Callable[..., ResponseReturnValue]


class EdfApiError(Exception):
    """An error answered in EDF's shape: `{"error": code, "error_description": text}`."""

    def __init__(
        self,
        status: int,
        error: str,
        description: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description
        self.headers = headers or {}

    def response(self) -> flask.Response:
        """The JSON response EDF's gateway sends for this error."""
        body = flask.jsonify({"error": self.error, "error_description": self.description})
        body.status_code = self.status
        body.headers.update(self.headers)
        return body


def bad_input(description: str) -> EdfApiError:
    """EDF's generic 400: the request is malformed or a field is invalid."""
    return EdfApiError(400, BAD_INPUT, description)


def not_found(description: str) -> EdfApiError:
    """EDF's 404 for an unknown customer, usage point, claim or route."""
    return EdfApiError(404, NOT_FOUND, description)


def invalid_token(description: str) -> EdfApiError:
    """The 401 that tells the client to fetch a new token once and retry."""
    headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
    return EdfApiError(401, "invalid_token", description, headers)


def to_utc(moment: datetime) -> datetime:
    """The state clock in UTC (a naive clock is taken as UTC, so tests may pass either)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def iso_timestamp(moment: datetime) -> str:
    """ISO-8601 with an explicit offset, to the second, as EDF stamps claims."""
    return to_utc(moment).isoformat(timespec="seconds")


def response_due_date(created: datetime, category: str) -> str:
    """The contract's deadline: 15 days after creation, 5 for a payment difficulty (UTC date)."""
    return (to_utc(created) + timedelta(days=CLAIM_RESPONSE_DAYS[category])).date().isoformat()


def json_object_body() -> dict[str, Any]:
    """The request body as a JSON object, whatever the Content-Type, or a 400."""
    raw = flask.request.get_data(cache=True)
    try:
        body = json.loads(raw) if raw.strip() else None
    except (UnicodeDecodeError, ValueError) as exc:
        raise bad_input("request body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise bad_input("request body must be a JSON object")
    return body


def body_fingerprint(body: dict[str, Any]) -> str:
    """A digest of the body's meaning (key order and spacing ignored), for idempotency checks."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def optional_string(body: dict[str, Any], field: str) -> str | None:
    """A field that may be absent or null, but is a string when given."""
    value = body.get(field)
    if value is not None and not isinstance(value, str):
        raise bad_input(f"{field} must be a string")
    return value


def required_string(body: dict[str, Any], field: str) -> str:
    """A field that must be present as a non-blank string."""
    value = optional_string(body, field)
    if value is None or not value.strip():
        raise bad_input(f"{field} is required")
    return value


@dataclass(frozen=True)
class ClaimRequest:
    """A validated `POST /claims/v1/claims` body."""

    customer_id: str
    usage_point_id: str | None
    category: str
    description: str
    contact: Any

    @classmethod
    def parse(cls, body: dict[str, Any]) -> ClaimRequest:
        """Check every field of the contract; any fault is EDF's 400."""
        customer_id = required_string(body, "customer_id")
        if not _CUSTOMER_ID.fullmatch(customer_id):
            raise bad_input("customer_id must be a 10-digit numéro client")
        usage_point_id = optional_string(body, "usage_point_id")
        if usage_point_id is not None and not _USAGE_POINT_ID.fullmatch(usage_point_id):
            raise bad_input("usage_point_id must be a 14-digit PDL")
        category = required_string(body, "category")
        if category not in CLAIM_CATEGORIES:
            raise bad_input(f"unknown category {category!r}")
        description = required_string(body, "description")
        contact = body.get("contact")
        if contact is not None and not isinstance(contact, dict | str):
            raise bad_input("contact must be an object or a string")
        return cls(customer_id, usage_point_id, category, description, contact)


@dataclass
class IssuedToken:
    """A bearer token held in the app's memory."""

    client_id: str
    expires_at: datetime


def claim_receipt(claim: dict[str, Any]) -> dict[str, Any]:
    """The body of a claim creation (201) or of its idempotent replay (200)."""
    return {
        "claim_id": claim["claim_id"],
        "status": claim["status"],
        "created_at": claim["created_at"],
        "response_due_date": claim["response_due_date"],
    }


def claim_view(claim: dict[str, Any]) -> dict[str, Any]:
    """The body of `GET /claims/v1/claims/{claim_id}`."""
    return {
        "claim_id": claim["claim_id"],
        "status": claim["status"],
        "status_label": CLAIM_STATUS_LABELS[claim["status"]],
        "updated_at": claim["updated_at"],
        "history": [dict(entry) for entry in claim["history"]],
    }


def next_claim_id(data: dict[str, Any]) -> str:
    """Reserve the next sequential id (`EDF-C-000001`, ...) in the shared state."""
    number = int(data.get(CLAIM_COUNTER_ENTRY, 0)) + 1
    data[CLAIM_COUNTER_ENTRY] = number
    return f"EDF-C-{number:06d}"


def new_claim(
    request: ClaimRequest, *, claim_id: str, client_id: str, now: datetime
) -> dict[str, Any]:
    """The stored record of a freshly opened claim, with its first history entry."""
    stamp = iso_timestamp(now)
    return {
        "claim_id": claim_id,
        "status": "OPEN",
        "customer_id": request.customer_id,
        "usage_point_id": request.usage_point_id,
        "category": request.category,
        "description": request.description,
        "contact": request.contact,
        "client_id": client_id,
        "created_at": stamp,
        "updated_at": stamp,
        "response_due_date": response_due_date(now, request.category),
        "history": [{"status": "OPEN", "at": stamp, "note": INITIAL_NOTE}],
    }


def check_claim_target(request: ClaimRequest) -> None:
    """The customer must exist (404), and a given PDL must be one of its delivery points (400)."""
    account = account_by_customer_id(request.customer_id)
    if account is None:
        raise not_found(f"customer {request.customer_id} not found")
    if request.usage_point_id is not None and request.usage_point_id not in usage_point_ids(
        account
    ):
        raise bad_input(
            f"usage_point_id {request.usage_point_id} is not a delivery point of "
            f"customer {request.customer_id}"
        )


class EdfSimulator:
    """The per-app state that is not shared: issued tokens and quota windows."""

    def __init__(
        self, state: SandboxState, *, quotas: bool, quota_clock: Callable[[], float]
    ) -> None:
        self.state = state
        self.tokens: dict[str, IssuedToken] = {}
        self.tokens_lock = threading.Lock()
        self.limiters = (
            [
                QuotaLimiter(PER_SECOND_QUOTA, 1, clock=quota_clock),
                QuotaLimiter(PER_HOUR_QUOTA, 3600, clock=quota_clock),
            ]
            if quotas
            else []
        )

    # -- auth ---------------------------------------------------------------------------------

    def issue_token(self) -> ResponseReturnValue:
        """`POST /oauth2/v3/token`: client credentials in, a one-hour bearer token out."""
        grant_type = flask.request.form.get("grant_type")
        if not grant_type:
            raise EdfApiError(400, "invalid_request", "grant_type is required")
        if grant_type != "client_credentials":
            raise EdfApiError(
                400, "unsupported_grant_type", f"grant_type {grant_type!r} is not supported"
            )
        client_id = self.verified_client()
        token = secrets.token_urlsafe(32)
        expires_at = to_utc(self.state.now()) + timedelta(seconds=TOKEN_LIFETIME_SECONDS)
        with self.tokens_lock:
            self.tokens[token] = IssuedToken(client_id, expires_at)
        body = {"access_token": token, "token_type": "Bearer", "expires_in": TOKEN_LIFETIME_SECONDS}
        return flask.jsonify(body), 200, {"Cache-Control": "no-store"}

    def verified_client(self) -> str:
        """The client id, if its secret matches (form fields or HTTP Basic), else 401."""
        form = flask.request.form
        client_id, secret = form.get("client_id"), form.get("client_secret")
        basic = flask.request.authorization
        if (client_id is None or secret is None) and basic is not None and basic.type == "basic":
            client_id, secret = basic.username, basic.password
        if client_id != SANDBOX_CLIENT_ID or not hmac.compare_digest(
            (secret or "").encode(), SANDBOX_CLIENT_SECRET.encode()
        ):
            raise EdfApiError(401, "invalid_client", "client authentication failed")
        return client_id

    def authenticated_client(self) -> str:
        """The client behind the request's bearer token; 401 invalid_token if none is valid."""
        scheme, _, token = flask.request.headers.get("Authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise invalid_token("a bearer token is required")
        now = to_utc(self.state.now())
        with self.tokens_lock:
            issued = self.tokens.get(token)
            if issued is not None and now >= issued.expires_at:
                del self.tokens[token]
                issued = None
        if issued is None:
            raise invalid_token("the access token is unknown or expired")
        return issued.client_id

    def expire_tokens(self) -> ResponseReturnValue:
        """Sandbox admin: forget every token, so tests can drive the refresh-once path."""
        with self.tokens_lock:
            count = len(self.tokens)
            self.tokens.clear()
        return flask.jsonify({"expired_tokens": count})

    def enforce_quota(self, client_id: str) -> None:
        """5 calls per second and 1000 per hour per client, else 429 with Retry-After."""
        for limiter in self.limiters:
            wait = limiter.hit(client_id)
            if wait is not None:
                raise EdfApiError(
                    429,
                    "too_many_requests",
                    f"quota of {limiter.calls} calls per {int(limiter.seconds)} s exceeded",
                    {"Retry-After": str(wait)},
                )

    def api(self, view: View) -> View:
        """Wrap an API view: bearer auth, then the quota of the token's client."""

        @functools.wraps(view)
        def guarded(**kwargs: Any) -> ResponseReturnValue:
            client_id = self.authenticated_client()
            self.enforce_quota(client_id)
            flask.g.edf_client_id = client_id
            return view(**kwargs)

        return guarded

    # -- accounts -----------------------------------------------------------------------------

    def get_account(self, customer_id: str) -> ResponseReturnValue:
        """`GET /customers/v1/accounts/{numero_client}`."""
        if not _CUSTOMER_ID.fullmatch(customer_id):
            raise bad_input("numero_client must be 10 digits")
        account = account_by_customer_id(customer_id)
        if account is None:
            raise not_found(f"customer {customer_id} not found")
        return flask.jsonify({"customer": account})

    def find_account(self) -> ResponseReturnValue:
        """`GET /customers/v1/accounts?usage_point_id={pdl}`."""
        usage_point_id = flask.request.args.get("usage_point_id")
        if usage_point_id is None:
            raise bad_input("usage_point_id query parameter is required")
        if not _USAGE_POINT_ID.fullmatch(usage_point_id):
            raise bad_input("usage_point_id must be 14 digits")
        account = account_by_usage_point_id(usage_point_id)
        if account is None:
            raise not_found(f"usage point {usage_point_id} not found")
        return flask.jsonify({"customer": account})

    # -- claims -------------------------------------------------------------------------------

    def create_claim(self) -> ResponseReturnValue:
        """`POST /claims/v1/claims`: open a claim once per Idempotency-Key."""
        key = idempotency_key()
        body = json_object_body()
        fingerprint = body_fingerprint(body)
        client_id: str = flask.g.edf_client_id
        with self.state.transaction() as data:
            known = data.get(IDEMPOTENCY_ENTRY, {}).get(client_id, {}).get(key)
            if known is not None:
                return replay(data, known, fingerprint)
            request = ClaimRequest.parse(body)
            check_claim_target(request)
            claim_id = next_claim_id(data)
            claim = new_claim(request, claim_id=claim_id, client_id=client_id, now=self.state.now())
            data.setdefault(CLAIMS_ENTRY, {})[claim_id] = claim
            keys = data.setdefault(IDEMPOTENCY_ENTRY, {}).setdefault(client_id, {})
            keys[key] = {"fingerprint": fingerprint, "claim_id": claim_id}
        return flask.jsonify(claim_receipt(claim)), 201

    def get_claim(self, claim_id: str) -> ResponseReturnValue:
        """`GET /claims/v1/claims/{claim_id}`."""
        claim = self.state.read().get(CLAIMS_ENTRY, {}).get(claim_id)
        if claim is None:
            raise not_found(f"claim {claim_id} not found")
        return flask.jsonify(claim_view(claim))

    def set_claim_status(self, claim_id: str) -> ResponseReturnValue:
        """Sandbox admin: move a claim to any contract status, with a history entry."""
        body = json_object_body()
        status = required_string(body, "status")
        if status not in CLAIM_STATUSES:
            raise bad_input(f"unknown status {status!r}; expected one of {list(CLAIM_STATUSES)}")
        note = optional_string(body, "note")
        stamp = iso_timestamp(self.state.now())
        with self.state.transaction() as data:
            claim = data.get(CLAIMS_ENTRY, {}).get(claim_id)
            if claim is None:
                raise not_found(f"claim {claim_id} not found")
            claim["status"] = status
            claim["updated_at"] = stamp
            claim["history"].append({"status": status, "at": stamp, "note": note})
            view = claim_view(claim)
        return flask.jsonify(view)


def idempotency_key() -> str:
    """The required `Idempotency-Key` header (1 to 255 characters), else 400."""
    key = flask.request.headers.get("Idempotency-Key", "")
    if not key.strip():
        raise bad_input("Idempotency-Key header is required")
    if len(key) > MAX_IDEMPOTENCY_KEY_LENGTH:
        raise bad_input(f"Idempotency-Key is longer than {MAX_IDEMPOTENCY_KEY_LENGTH} characters")
    return key


def replay(data: dict[str, Any], known: dict[str, Any], fingerprint: str) -> ResponseReturnValue:
    """A key seen before: the same body gets the original claim (200), another body a 422."""
    if known["fingerprint"] != fingerprint:
        raise EdfApiError(
            422,
            "idempotency_key_reused",
            "this Idempotency-Key was already used with a different request body",
        )
    claim = data[CLAIMS_ENTRY][known["claim_id"]]
    return flask.jsonify(claim_receipt(claim)), 200


def http_error(exc: HTTPException) -> flask.Response:
    """Flask's own errors (unknown route, wrong method, ...) in EDF's JSON shape."""
    status = exc.code or 500
    code = {400: BAD_INPUT, 404: NOT_FOUND}.get(status, f"EDF-ERR{status:04d}")
    error = EdfApiError(status, code, exc.description or exc.name)
    response = error.response()
    for name, value in exc.get_headers():
        if name == "Allow":
            response.headers[name] = value
    return response


def unexpected_error(exc: Exception) -> flask.Response:
    """A bug in the simulator still answers JSON, never Flask's HTML page."""
    return EdfApiError(500, "EDF-ERR0500", "internal error").response()


def create_app(
    state: SandboxState,
    *,
    quotas: bool = True,
    quota_clock: Callable[[], float] = time.monotonic,
) -> flask.Flask:
    """Build a fresh EDF simulator app on `state`.

    Timestamps and token lifetimes follow `state.now()`. The quota windows follow `quota_clock`
    (real elapsed time by default), so a client honouring Retry-After gets through even when the
    state clock is frozen; tests pass a manual clock to make the windows deterministic.
    """
    app = flask.Flask(__name__)
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    sim = EdfSimulator(state, quotas=quotas, quota_clock=quota_clock)

    app.register_error_handler(EdfApiError, lambda exc: exc.response())
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(Exception, unexpected_error)

    app.add_url_rule("/oauth2/v3/token", "token", sim.issue_token, methods=["POST"])
    app.add_url_rule("/customers/v1/accounts/<customer_id>", "account", sim.api(sim.get_account))
    app.add_url_rule("/customers/v1/accounts", "account_search", sim.api(sim.find_account))
    app.add_url_rule(
        "/claims/v1/claims", "create_claim", sim.api(sim.create_claim), methods=["POST"]
    )
    app.add_url_rule("/claims/v1/claims/<claim_id>", "claim", sim.api(sim.get_claim))
    app.add_url_rule(
        "/_sandbox/claims/<claim_id>/status",
        "sandbox_claim_status",
        sim.set_claim_status,
        methods=["POST"],
    )
    app.add_url_rule(
        "/_sandbox/tokens/expire", "sandbox_expire_tokens", sim.expire_tokens, methods=["POST"]
    )
    return app
