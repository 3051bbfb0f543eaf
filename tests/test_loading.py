"""Plugin loading and routing: broken plugins are reported and skipped, never fatal (unless
strict); duplicate ids are refused; one plugin answers each call, wrappers run around it."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import httpx
import pytest
import respx

from pimms_core import hookimpl
from pimms_core.config import Config
from pimms_core.errors import (
    AccountNotFound,
    PartnerUnavailable,
    PluginError,
    PluginLoadError,
    UnknownPartner,
)
from pimms_core.facade import Pimms
from pimms_core.models import Account, Claim, PluginRef
from pimms_core.plugins import PluginHost
from pimms_core.policy import NO_RETRY
from tests.fakes import ACCOUNT_BODY, ACME_BASE, AcmePlugin, install_plugin

ENV = {"ACME_KEY": "canary-key-5d1e"}


def live(host: PluginHost, *partners: str) -> Pimms:
    document = {
        "partners": {p: {"base_url": ACME_BASE, "api_key_env": "ACME_KEY"} for p in partners}
    }
    return Pimms(Config.from_document(document, env=ENV), host, env=ENV, policy=NO_RETRY)


def host_with(*plugins: tuple[object, str], strict: bool = False) -> PluginHost:
    refs = [(plugin, PluginRef(f"pimms-{name}", "1.0", name)) for plugin, name in plugins]
    return PluginHost(use_entry_points=False, plugins=refs, strict=strict, env={})


@pytest.fixture
def acme_api() -> Generator[respx.MockRouter, None, None]:
    with respx.mock(base_url=ACME_BASE) as router:
        yield router


BROKEN_IMPORT = """
raise RuntimeError("this plugin is broken on purpose")
"""

RAISES_IN_INFO = """
from pimms_core import hookimpl

@hookimpl
def pimms_partner_info():
    raise ValueError("no info today")
"""

MISSPELLED = """
from pimms_core import hookimpl

@hookimpl
def pimms_partner_info():
    return None

@hookimpl
def pimms_lookup_acount(partner, query):
    return None
"""


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "site-packages"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    return folder


def test_discovery_imports_no_plugin(site: Path) -> None:
    install_plugin(site, "pimms-broken", "pimms_broken_import", BROKEN_IMPORT)
    host = PluginHost(env={})
    # Constructing the host (as `pimms --help` would) must not import anything.
    assert "pimms_broken_import" not in __import__("sys").modules
    assert any(e.plugin.startswith("pimms-broken") for e in host.errors)


@pytest.mark.parametrize(
    ("module", "source", "words"),
    [
        ("pimms_broken_import", BROKEN_IMPORT, "failed to import: RuntimeError"),
        ("pimms_raises_info", RAISES_IN_INFO, "pimms_partner_info failed: ValueError"),
        ("pimms_misspelled", MISSPELLED, "pimms_lookup_acount"),
    ],
)
def test_a_broken_installed_plugin_is_reported_and_skipped(
    site: Path, module: str, source: str, words: str
) -> None:
    install_plugin(site, "pimms-broken", module, source)
    host = PluginHost(env={"PIMMS_LOAD_PLUGINS": "pimms-broken,edf"})
    assert "edf" in host.partners  # the installed EDF plugin still works beside it
    [error] = host.errors
    assert error.plugin == "pimms-broken 0.1.0"
    assert words in error.error


def test_strict_mode_makes_a_broken_plugin_fatal(site: Path) -> None:
    install_plugin(site, "pimms-broken", "pimms_broken_import", BROKEN_IMPORT)
    host = PluginHost(env={"PIMMS_STRICT_PLUGINS": "1"})
    with pytest.raises(PluginLoadError, match="pimms-broken"):
        host.load()


def test_load_plugins_limits_what_is_imported(site: Path) -> None:
    install_plugin(site, "pimms-broken", "pimms_broken_import", BROKEN_IMPORT)
    host = PluginHost(env={"PIMMS_LOAD_PLUGINS": "edf"})
    assert list(host.partners) == ["edf"]
    assert host.errors == []


def test_duplicate_partner_id_is_refused_naming_both() -> None:
    host = host_with((AcmePlugin(), "first"), (AcmePlugin(), "second"), (AcmePlugin("beta"), "b"))
    assert "acme" not in host.partners
    assert "beta" in host.partners
    messages = [e.error for e in host.errors]
    assert len(messages) == 2
    assert all("pimms-first 1.0" in m and "pimms-second 1.0" in m for m in messages)


def test_unknown_partner_lists_the_installed_ones() -> None:
    pimms = live(host_with((AcmePlugin(), "acme")), "acme")
    with pytest.raises(UnknownPartner, match="expected one of acme"):
        pimms.lookup_account("nope", "12345678")


class Recorder:
    """A cross-cutting plugin that declares no partner and wraps every lookup."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    @hookimpl(wrapper=True)
    def pimms_lookup_account(self, partner, query) -> Generator[None, Account, Account]:  # type: ignore[no-untyped-def]
        self.seen.append(f"before {partner.id}")
        result = yield
        self.seen.append(f"after {result.reference}")
        return result


def test_one_plugin_answers_while_wrappers_run_around_it(acme_api: respx.MockRouter) -> None:
    recorder = Recorder()
    host = host_with((AcmePlugin(), "acme"), (AcmePlugin("beta"), "beta"), (recorder, "recorder"))
    pimms = live(host, "acme", "beta")
    acme_api.get("/accounts/12345678").respond(200, json=ACCOUNT_BODY)
    account = pimms.lookup_account("beta", "12345678")
    assert account.partner == "beta"
    assert account.plugin == PluginRef("pimms-beta", "1.0", "beta")
    assert recorder.seen == ["before beta", "after 12345678"]
    assert acme_api.calls.last.request.headers["X-Api-Key"] == "canary-key-5d1e"


class WrongType(AcmePlugin):
    @hookimpl
    def pimms_lookup_account(self, partner, query):  # type: ignore[no-untyped-def]
        return {"not": "an account"}


class Crashes(AcmePlugin):
    @hookimpl
    def pimms_lookup_account(self, partner, query):  # type: ignore[no-untyped-def]
        raise KeyError("Canary Holder-Name")


class OtherPartner(AcmePlugin):
    @hookimpl
    def pimms_lookup_account(self, partner, query):  # type: ignore[no-untyped-def]
        return Account("someone-else", query.reference, "x", "active")


SHARED = Account("acme", "12345678", "x", "active")


class HandsOutOneObject(AcmePlugin):
    """A plugin that returns the same object every time (a constant, a cache)."""

    @hookimpl
    def pimms_lookup_account(self, partner, query):  # type: ignore[no-untyped-def]
        return SHARED


def test_a_result_is_attributed_to_each_plugin_that_hands_it_out() -> None:
    pimms = live(host_with((HandsOutOneObject(), "acme")), "acme")
    first = pimms.lookup_account("acme", "12345678")
    assert first.plugin == PluginRef("pimms-acme", "1.0", "acme")
    other_host = PluginHost(
        use_entry_points=False,
        plugins=[(HandsOutOneObject(), PluginRef("pimms-acme", "2.0", "acme"))],
        env={},
    )
    second = live(other_host, "acme").lookup_account("acme", "12345678")
    assert second.plugin == PluginRef("pimms-acme", "2.0", "acme")
    assert first.plugin == PluginRef("pimms-acme", "1.0", "acme")  # not restamped


@pytest.mark.parametrize(
    ("plugin", "words"),
    [
        (WrongType(), "returned dict, expected Account"),
        (Crashes(), "raised KeyError"),
        (OtherPartner(), "for partner 'someone-else'"),
    ],
)
def test_misbehaving_plugin_becomes_plugin_error_naming_it(plugin: AcmePlugin, words: str) -> None:
    pimms = live(host_with((plugin, "acme")), "acme")
    with pytest.raises(PluginError, match=words) as caught:
        pimms.lookup_account("acme", "12345678")
    assert "pimms-acme 1.0" in str(caught.value)
    assert "Canary" not in str(caught.value)  # an exception's own text is never shown


def test_errors_are_attributed_to_the_plugin(acme_api: respx.MockRouter) -> None:
    acme_api.get("/accounts/12345678").respond(404)
    pimms = live(host_with((AcmePlugin(), "acme")), "acme")
    with pytest.raises(AccountNotFound) as caught:
        pimms.lookup_account("acme", "12345678")
    assert caught.value.plugin == PluginRef("pimms-acme", "1.0", "acme")
    assert caught.value.to_dict()["plugin_version"] == "1.0"


@pytest.mark.parametrize(
    "failure",
    [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("x")],
)
def test_transport_failures_become_partner_unavailable(
    acme_api: respx.MockRouter, failure: Exception
) -> None:
    acme_api.get("/accounts/12345678").mock(side_effect=failure)
    pimms = live(host_with((AcmePlugin(), "acme")), "acme")
    with pytest.raises(PartnerUnavailable) as caught:
        pimms.lookup_account("acme", "12345678")
    assert caught.value.plugin is not None


def test_invalid_reference_sends_nothing() -> None:
    pimms = live(host_with((AcmePlugin(), "acme")), "acme")
    with respx.mock(base_url=ACME_BASE) as router:
        with pytest.raises(Exception, match="8 digits, at the top of the bill"):
            pimms.lookup_account("acme", "1234/../admin")
        assert not router.calls


def test_unsupported_operation_is_refused() -> None:
    class LookupOnly(AcmePlugin):
        def __init__(self) -> None:
            super().__init__()
            import attrs

            self.info = attrs.evolve(self.info, operations=["lookup_account"])

    pimms = live(host_with((LookupOnly(), "acme")), "acme")
    with pytest.raises(Exception, match="does not support open_claim"):
        pimms.open_claim("acme", "12345678", "billing", "x")


class LookupWithoutFinder(AcmePlugin):
    def __init__(self) -> None:
        super().__init__(idempotency="lookup")


class DeclaresMoreThanItDoes:
    @hookimpl
    def pimms_partner_info(self):  # type: ignore[no-untyped-def]
        return AcmePlugin().info


@pytest.mark.parametrize(
    ("plugin", "words"),
    [
        (LookupWithoutFinder(), "implements no pimms_find_claim"),
        (
            DeclaresMoreThanItDoes(),
            "declares claim_status, lookup_account, open_claim but does not implement it",
        ),
    ],
)
def test_a_plugin_must_implement_what_it_declares(plugin: object, words: str) -> None:
    host = host_with((plugin, "acme"))
    assert "acme" not in host.partners
    [error] = host.errors
    assert words in error.error


class WrongFieldType(AcmePlugin):
    @hookimpl
    def pimms_open_claim(self, partner, request):  # type: ignore[no-untyped-def]
        return Claim(partner.id, "C-1", "received", "NEW", "2026-11-02T09:30:00")  # type: ignore[arg-type]


def test_a_result_built_with_a_wrong_field_type_is_a_plugin_error() -> None:
    pimms = live(host_with((WrongFieldType(), "acme")), "acme")
    with pytest.raises(PluginError, match="pimms_open_claim raised TypeError"):
        pimms.open_claim("acme", "12345678", "billing", "x", idempotency_key="k")
    [entry] = pimms.store.outbox.list(states=None)
    assert entry.state.value != "sending"
