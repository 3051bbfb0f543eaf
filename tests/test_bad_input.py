"""Bad input: a clear error naming what is wrong and what is expected, and nothing sent
(no request to the partner, nothing written to the outbox), through the facade and the CLI."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import respx
from click.testing import CliRunner, Result

from pimms_core.cli import cli
from pimms_core.errors import (
    ConfigError,
    InvalidInput,
    InvalidReference,
    PimmsError,
    UnknownCategory,
    UnknownPartner,
)
from pimms_core.facade import Pimms
from pimms_core.models import DESCRIPTION_MAX_CHARS, Contact
from pimms_core.policy import NO_RETRY
from pimms_core.testing import live_pimms
from tests.fakes import ACME_BASE, AcmePlugin


@pytest.fixture
def acme() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=ACME_BASE, assert_all_called=False) as router:
        yield router


@pytest.fixture
def pimms() -> Pimms:
    return live_pimms(
        AcmePlugin(), ACME_BASE, settings={"api_key_env": "K"}, env={"K": "k"}, policy=NO_RETRY
    )


def claim(pimms: Pimms, **changes: Any) -> Any:
    args: dict[str, Any] = {
        "partner": "acme",
        "account_ref": "12345678",
        "category": "billing",
        "description": "Facture contestée",
    }
    args.update(changes)
    return pimms.submit_claim(**args)


CASES: list[tuple[str, Callable[[Pimms], Any], type[PimmsError], list[str]]] = [
    (
        "reference of the wrong form",
        lambda p: p.lookup_account("acme", "1234"),
        InvalidReference,
        ["does not have the expected format", "8 digits, at the top of the bill", "12345678"],
    ),
    (
        "no reference at all",
        lambda p: claim(p, account_ref="   "),
        InvalidReference,
        ["no reference given", "8 digits"],
    ),
    (
        "reference with a control character",
        lambda p: p.lookup_account("acme", "1234\x005678"),
        InvalidReference,
        ["expected 8 digits"],
    ),
    (
        "unknown partner",
        lambda p: p.lookup_account("acmee", "12345678"),
        UnknownPartner,
        ["unknown partner 'acmee'", "expected one of acme"],
    ),
    (
        "unknown category",
        lambda p: claim(p, category="lottery"),
        UnknownCategory,
        ["unknown claim category 'lottery'", "billing, other, FACT, AUTRE"],
    ),
    (
        "empty description",
        lambda p: claim(p, description=" \n "),
        InvalidInput,
        ["the description is empty: expected some text"],
    ),
    (
        "over-long description",
        lambda p: claim(p, description="x" * (DESCRIPTION_MAX_CHARS + 1)),
        InvalidInput,
        [f"{DESCRIPTION_MAX_CHARS + 1} characters long: the limit is {DESCRIPTION_MAX_CHARS}"],
    ),
    (
        "control character in the description",
        lambda p: claim(p, description="Facture\x1b[31m"),
        InvalidInput,
        ["the description contains a control character (U+001B): expected printable text"],
    ),
    (
        "control character in the last name",
        lambda p: claim(p, last_name="Mar\x00tin"),
        InvalidInput,
        ["the last name contains a control character (U+0000)"],
    ),
    (
        "control character in the e-mail",
        lambda p: claim(p, contact=Contact(email="c@example.org\r\nBcc: x@y.z")),
        InvalidInput,
        ["the e-mail address contains a control character (U+000D)"],
    ),
    (
        "e-mail without a domain",
        lambda p: claim(p, contact=Contact(email="camille")),
        InvalidInput,
        ["the e-mail address is not valid: expected name@domain.example"],
    ),
    (
        "phone with letters",
        lambda p: claim(p, contact=Contact(phone="call me maybe")),
        InvalidInput,
        ["the phone number is not valid: expected digits"],
    ),
    (
        "over-long service id",
        lambda p: claim(p, service_id="S" * 65),
        InvalidInput,
        ["the service id is 65 characters long: the limit is 64"],
    ),
    (
        "over-long idempotency key",
        lambda p: claim(p, idempotency_key="k" * 256),
        InvalidInput,
        ["the idempotency key is 256 characters long: the limit is 255"],
    ),
    (
        "claim reference with a path in it",
        lambda p: p.claim_status("acme", "../admin?x=1"),
        InvalidInput,
        ["this claim reference is not valid: expected the reference the partner gave"],
    ),
]


@pytest.mark.parametrize(("what", "call", "error", "words"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_refused_before_anything_is_sent_or_stored(
    acme: respx.MockRouter,
    pimms: Pimms,
    what: str,
    call: Callable[[Pimms], Any],
    error: type[PimmsError],
    words: list[str],
) -> None:
    with pytest.raises(error) as caught:
        call(pimms)
    for word in words:
        assert word in str(caught.value), what
    assert not acme.calls
    assert pimms.store.outbox.list(states=list(_all_states())) == []
    [row] = pimms.store.journal.list()
    assert row.outcome == "refused" and row.error_type == caught.value.code


def _all_states() -> Any:
    from pimms_core.models import OutboxState

    return OutboxState


def test_a_missing_environment_variable_is_named_never_valued(tmp_path: Path) -> None:
    config = tmp_path / "pimms.toml"
    config.write_text(
        '[partners.acme]\nbase_url = "https://api.acme.test"\napi_key_env = "ACME_SITE_KEY"\n'
    )
    pimms = Pimms.from_config(
        config,
        plugins=[(AcmePlugin(), _ref())],
        use_entry_points=False,
        env={"OTHER": "value-never-shown"},
    )
    with respx.mock(base_url=ACME_BASE, assert_all_called=False) as router:
        with pytest.raises(ConfigError) as caught:
            claim(pimms)
        assert not router.calls
    message = str(caught.value)
    assert "ACME_SITE_KEY" in message and "not set" in message
    assert "value-never-shown" not in message
    assert pimms.store.outbox.list() == []


def test_a_malformed_configuration_names_the_file_and_the_line(tmp_path: Path) -> None:
    config = tmp_path / "pimms.toml"
    config.write_text('[pimms]\nsite_id = "lyon-8"\n[partners.edf\nbase_url = "x"\n')
    with pytest.raises(ConfigError) as caught:
        Pimms.from_config(config)
    assert str(config) in str(caught.value) and "line 3" in str(caught.value)


def test_a_database_setting_that_is_not_a_path_is_refused() -> None:
    from pimms_core.config import Config

    with pytest.raises(ConfigError, match=r"\[pimms\] database must be the path of a file"):
        Config.from_document({"pimms": {"database": 3}}, env={})


def _ref() -> Any:
    from pimms_core.models import PluginRef

    return PluginRef("pimms-acme", "0.1.0", "acme")


# --- the same through the command line -----------------------------------------------------------


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env={"PIMMS_LOAD_PLUGINS": "edf", **(env or {})})


def open_args(**changes: str) -> list[str]:
    options = {
        "--account": "4001234567",
        "--category": "billing",
        "--description": "Facture contestée",
    }
    options.update(changes)
    return ["claim", "open", "edf", *[part for pair in options.items() for part in pair]]


CLI_CASES: list[tuple[str, list[str], list[str]]] = [
    ("bad reference", ["lookup", "edf", "12345"], ["10-digit customer number", "4001234567"]),
    ("unknown partner", ["lookup", "gaz", "1"], ["unknown partner 'gaz'", "expected one of edf"]),
    (
        "unknown category",
        open_args(**{"--category": "lottery"}),
        ["unknown claim category 'lottery'", "billing", "FACTURATION", "COUPURE"],
    ),
    ("empty description", open_args(**{"--description": ""}), ["the description is empty"]),
    (
        "over-long description",
        open_args(**{"--description": "x" * 2001}),
        ["2001 characters long: the limit is 2000"],
    ),
    (
        "control character",
        open_args(**{"--description": "Facture\x07"}),
        ["control character (U+0007)"],
    ),
    ("bad e-mail", [*open_args(), "--email", "nobody"], ["the e-mail address is not valid"]),
    ("bad claim reference", ["claim", "status", "edf", "a b"], ["claim reference is not valid"]),
    (
        "resolve without a choice",
        ["outbox", "resolve", "PIMMS-AAAA-BBBB"],
        ["say one thing: the partner's claim reference, resend or cancel"],
    ),
    (
        "resolve an unknown claim",
        ["outbox", "resolve", "PIMMS-AAAA-BBBB", "--cancel"],
        ["no claim in the outbox has this local reference"],
    ),
]


@pytest.mark.parametrize(("what", "args", "words"), CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_the_cli_says_what_is_wrong_and_exits_1(
    what: str, args: list[str], words: list[str]
) -> None:
    result = run(*args)
    assert result.exit_code == 1, result.output
    [error] = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    for word in words:
        assert word in error, what
    assert "Traceback" not in result.output
    assert run("outbox", "--json").stdout.strip().endswith('"outbox": []\n}'.strip())
    assert run("claims", "--json").exit_code == 0


def test_the_cli_names_a_missing_variable_and_queues_nothing(tmp_path: Path) -> None:
    config = tmp_path / "pimms.toml"
    config.write_text(
        '[partners.edf]\nbase_url = "https://partenaires.api.edf.fr"\n'
        'client_id_env = "EDF_ID"\nclient_secret_env = "EDF_SECRET"\n'
    )
    result = run("--config", str(config), *open_args(), env={"EDF_ID": "id-never-shown"})
    assert result.exit_code == 1
    assert "EDF_SECRET" in result.stderr and "id-never-shown" not in result.output
    listed = run("--config", str(config), "outbox")
    assert "No claim waits in the outbox." in listed.stdout


def test_the_cli_names_the_file_and_line_of_a_malformed_configuration(tmp_path: Path) -> None:
    config = tmp_path / "pimms.toml"
    config.write_text("[pimms]\nsite_id = \n")
    result = run("--config", str(config), "claims")
    assert result.exit_code == 1
    assert str(config) in result.stderr and "line 2" in result.stderr
