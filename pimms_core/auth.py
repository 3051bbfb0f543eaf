"""Partner authentication, built on httpx's `Auth` interface so the core's client owns it.

A plugin returns one of these from `pimms_http_auth`. Stateful schemes (a token from a login
call, reused until it expires, fetched again once when the partner says it has expired) are
written once here, in `TokenAuth`, and a plugin only says how to ask for a token and read it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator

import httpx

from pimms_core.errors import PartnerAuthError, PartnerProtocolError
from pimms_core.http import json_or_none, raise_for_status
from pimms_core.payload import Payload


class HeaderAuth(httpx.Auth):
    """A static key in a header (an API key gateway, say)."""

    def __init__(self, header: str, value: str) -> None:
        self._header = header
        self._value = value

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers[self._header] = self._value
        yield request

    def __repr__(self) -> str:
        return f"HeaderAuth({self._header!r}, '***')"


class TokenAuth(httpx.Auth):
    """A bearer token obtained from a login endpoint, reused until it expires.

    Subclasses say how to build the login request (`token_request`) and read its answer
    (`read_token`). When the partner answers a call with an expired-token status
    (`is_expired`, by default 401), the token is fetched again once and the call sent again
    once; a second refusal is returned to the plugin, which maps it to `PartnerAuthError`.
    """

    requires_response_body = True
    expiry_margin = 30.0
    """Seconds before the announced expiry at which a token is no longer used."""

    def __init__(self, partner: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.partner = partner
        self._clock = clock
        self._session: tuple[str | None, float] = (None, 0.0)
        """The token and when it stops being used: one tuple, replaced whole."""
        self._lock = threading.Lock()
        self.logins = 0
        """How many times a token was fetched (tests check that tokens are reused)."""
        self.base_url: httpx.URL | None = None
        """Set by the core to the client's base URL, so login paths follow its prefix."""

    def url_for(self, request: httpx.Request, path: str) -> httpx.URL:
        """An absolute URL for a login path, under the client's base URL (prefix included)."""
        base = self.base_url or request.url.copy_with(raw_path=b"/")
        return base.copy_with(raw_path=base.raw_path.rstrip(b"/") + path.encode("ascii"))

    def token_request(self, request: httpx.Request) -> httpx.Request:
        """The login request; `request` is the call being signed (for its base URL)."""
        raise NotImplementedError

    def read_token(self, payload: Payload) -> tuple[str, float]:
        """The token and its lifetime in seconds, from the login answer's JSON."""
        raise NotImplementedError

    def is_expired(self, response: httpx.Response) -> bool:
        """Whether the partner's answer means "this token is no longer valid"."""
        return response.status_code == 401

    def sign(self, request: httpx.Request, token: str) -> None:
        request.headers["Authorization"] = f"Bearer {token}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self._current()
        if token is None:
            token = self._store((yield self.token_request(request)))
        self.sign(request, token)
        response = yield request
        if self.is_expired(response):
            with self._lock:
                if self._session[0] == token:
                    self._session = (None, 0.0)
            self.sign(request, self._store((yield self.token_request(request))))
            yield request

    def _current(self) -> str | None:
        # Read without the lock: a stale read only means one more login. Both values come
        # from one tuple, so a token is never paired with another token's expiry.
        token, expires_at = self._session
        if token is not None and self._clock() < expires_at:
            return token
        return None

    def _store(self, response: httpx.Response) -> str:
        """Read a login answer; refused credentials are `PartnerAuthError`, never retried."""
        raise_for_status(
            response,
            self.partner,
            by_status={
                400: lambda p: PartnerAuthError(p, "the login was refused"),
                401: lambda p: PartnerAuthError(p, "the login was refused"),
                403: lambda p: PartnerAuthError(p, "the login was refused"),
            },
        )
        token, lifetime = self.read_token(Payload.of(response, self.partner))
        if not token:
            raise PartnerProtocolError(self.partner, "the login answer holds no token")
        with self._lock:
            self._session = (token, self._clock() + max(lifetime - self.expiry_margin, 0.0))
            self.logins += 1
        return token

    def __repr__(self) -> str:
        return f"{type(self).__name__}(partner={self.partner!r})"


class OAuth2ClientCredentials(TokenAuth):
    """OAuth 2.0 client-credentials grant (RFC 6749 section 4.4), client secret in the form.

    An expired token is a 401 whose body says `invalid_token` (RFC 6750); any other 401 is
    not retried with a new token.
    """

    def __init__(
        self,
        partner: str,
        *,
        token_path: str,
        client_id: str,
        client_secret: str,
        scope: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(partner, clock=clock)
        self._token_path = token_path
        self._client_id = client_id
        self._client_secret = client_secret
        self._scope = scope

    def token_request(self, request: httpx.Request) -> httpx.Request:
        form = {
            "grant_type": "client_credentials",
            "client_id": self._client_id,
            "client_secret": self._client_secret,
        }
        if self._scope:
            form["scope"] = self._scope
        return httpx.Request(
            "POST",
            self.url_for(request, self._token_path),
            data=form,
            headers={"Accept": "application/json"},
        )

    def read_token(self, payload: Payload) -> tuple[str, float]:
        lifetime = payload.opt_number("expires_in")
        return payload.text("access_token"), 3600.0 if lifetime is None else lifetime

    def is_expired(self, response: httpx.Response) -> bool:
        if response.status_code != 401:
            return False
        challenge = response.headers.get("WWW-Authenticate", "")
        if "invalid_token" in challenge:
            return True
        body = json_or_none(response)
        return isinstance(body, dict) and body.get("error") == "invalid_token"
