"""Veolia's login: a `jeton` from `POST /auth/v1/token`, refreshed once on 401 or 403.

Only the shape of Veolia's login is here; caching, the single re-login and the single retry of
the call are the core's `TokenAuth`.
"""

from __future__ import annotations

import httpx

from pimms_core.auth import TokenAuth
from pimms_core.payload import Payload

TOKEN_PATH = "/auth/v1/token"
DEFAULT_LIFETIME = 900.0
"""The contract's announced lifetime, used if a login answer ever omits `expire_dans`."""


class VeoliaTokenAuth(TokenAuth):
    """Bearer `jeton` from an identifiant / mot de passe login."""

    def __init__(self, partner: str, *, login: str, password: str) -> None:
        super().__init__(partner)
        self._login = login
        self._password = password

    def token_request(self, request: httpx.Request) -> httpx.Request:
        return httpx.Request(
            "POST",
            self.url_for(request, TOKEN_PATH),
            json={"identifiant": self._login, "mot_de_passe": self._password},
            headers={"Accept": "application/json"},
        )

    def read_token(self, payload: Payload) -> tuple[str, float]:
        # A missing lifetime is harmless (an expired jeton is answered 401/403 and renewed), so
        # only the jeton itself is required.
        lifetime = payload.opt_number("expire_dans")
        return payload.text("jeton"), DEFAULT_LIFETIME if lifetime is None else lifetime

    def is_expired(self, response: httpx.Response) -> bool:
        """Veolia answers an expired jeton with 401 or 403: both mean "log in again"."""
        return response.status_code in (401, 403)
