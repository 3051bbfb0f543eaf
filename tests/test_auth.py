"""Token auth: reuse until expiry, one refresh on an expired token, refusals never retried."""

from __future__ import annotations

from urllib.parse import parse_qs

import httpx
import pytest

from pimms_core.auth import HeaderAuth, OAuth2ClientCredentials
from pimms_core.errors import PartnerAuthError, PartnerUnavailable


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_client(handler, auth: httpx.Auth, base: str = "https://api.test/prefix") -> httpx.Client:  # type: ignore[no-untyped-def]
    client = httpx.Client(base_url=base, auth=auth, transport=httpx.MockTransport(handler))
    if isinstance(auth, OAuth2ClientCredentials):
        auth.base_url = client.base_url
    return client


def oauth(clock: Clock) -> OAuth2ClientCredentials:
    return OAuth2ClientCredentials(
        "acme", token_path="/token", client_id="id", client_secret="s3cret", clock=clock
    )


def test_token_is_fetched_once_reused_and_renewed_after_expiry() -> None:
    clock, seen = Clock(), []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        if request.url.path == "/prefix/token":
            form = parse_qs(request.content.decode())
            assert form["grant_type"] == ["client_credentials"]
            return httpx.Response(200, json={"access_token": f"t{len(seen)}", "expires_in": 100})
        return httpx.Response(200, json={"auth": request.headers["Authorization"]})

    auth = oauth(clock)
    client = make_client(handler, auth)
    assert client.get("/a").json() == {"auth": "Bearer t1"}
    assert client.get("/a").json() == {"auth": "Bearer t1"}
    clock.now += 80  # past expiry minus the safety margin
    assert client.get("/a").json() == {"auth": "Bearer t4"}
    assert auth.logins == 2
    assert seen.count("/prefix/token") == 2


def test_expired_token_answer_refreshes_once_then_gives_up() -> None:
    calls = {"token": 0, "api": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/token"):
            calls["token"] += 1
            return httpx.Response(200, json={"access_token": "t", "expires_in": 3600})
        calls["api"] += 1
        return httpx.Response(401, json={"error": "invalid_token"})

    response = make_client(handler, oauth(Clock())).get("/a")
    assert response.status_code == 401
    assert calls == {"token": 2, "api": 2}


def test_other_401_is_not_retried() -> None:
    calls = {"api": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/token"):
            return httpx.Response(200, json={"access_token": "t", "expires_in": 3600})
        calls["api"] += 1
        return httpx.Response(401, json={"error": "insufficient_scope"})

    assert make_client(handler, oauth(Clock())).get("/a").status_code == 401
    assert calls["api"] == 1


@pytest.mark.parametrize(
    ("status", "error"),
    [(401, PartnerAuthError), (400, PartnerAuthError), (503, PartnerUnavailable)],
)
def test_login_failures_are_typed_and_name_no_secret(status: int, error: type[Exception]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"error": "invalid_client"})

    with pytest.raises(error) as caught:
        make_client(handler, oauth(Clock())).get("/a")
    assert "s3cret" not in str(caught.value)


def test_header_auth_sets_the_header_and_hides_it_in_repr() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"key": request.headers["X-Key"]})

    auth = HeaderAuth("X-Key", "k-canary")
    assert make_client(handler, auth).get("/a").json() == {"key": "k-canary"}
    assert "k-canary" not in repr(auth)
