"""Nothing leaked: canary values pushed through every operation and every error path.

A canary secret and canary personal data (last name, description, e-mail, phone; the holder
name a partner returns) go through the fake partner (respx: every answer, every failure,
partners that echo what they received in their error bodies) and through each real plugin
(sandbox mode, and live against its simulator on loopback with canary credentials). None may
appear in a log record (DEBUG, all loggers, tracebacks included), an exception's text (its
message, its dict, its whole chained traceback), a journal row, a settled outbox row, or the
CLI's output other than the result asked for.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs
import httpx
import pytest
import respx
from click.testing import CliRunner

import pimms_edf
import pimms_laposte
import pimms_sncf
import pimms_veolia
from pimms_core import calls, redaction
from pimms_core.cli import cli
from pimms_core.config import Config
from pimms_core.errors import PimmsError
from pimms_core.facade import Pimms
from pimms_core.models import Contact, OutboxState, QueuedClaim
from pimms_core.policy import NO_RETRY, RetryPolicy
from pimms_core.redaction import REDACTOR, RedactingFilter, Redactor, mask_reference
from pimms_core.sandbox import SandboxState
from pimms_core.serve import serve_app
from pimms_core.testing import fresh_host, live_pimms, sandbox_pimms
from tests.fakes import ACCOUNT_BODY, ACME_BASE, AcmePlugin

SECRET = "canary-secret-4b1d9e77"
LAST_NAME = "Canarynamezq"
DESCRIPTION = "Canary description 7e2f: la facture de mars est contestée"
EMAIL = "canary.7e2f@example.org"
PHONE = "0699881234"
HOLDER = ACCOUNT_BODY["name"]  # "Canary Holder-Name", returned by the fake partner
PERSONAL = {"last name": LAST_NAME, "description": DESCRIPTION, "email": EMAIL, "phone": PHONE}
CANARIES = {"secret": SECRET, "holder name": HOLDER, **PERSONAL}
CONTACT = Contact(email=EMAIL, phone=PHONE)


class Evidence:
    """Everything a site operator could read, gathered as (where, text) pairs."""

    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        self.caplog = caplog
        self.texts: list[tuple[str, str]] = []

    def error(self, exc: BaseException) -> None:
        whole = "".join(traceback.format_exception(exc))
        self.texts.append(("exception", whole))
        if isinstance(exc, PimmsError):
            self.texts.append(("error dict", json.dumps(exc.to_dict(), default=str)))

    def attempt(self, fn: Callable[[], Any]) -> Any:
        try:
            result = fn()
        except PimmsError as exc:
            self.error(exc)
            return exc
        if isinstance(result, QueuedClaim):
            self.texts.append(("queued claim", repr(result) + result.reason))
        return result

    def store(self, pimms: Pimms) -> None:
        for row in pimms.store.journal.list():
            self.texts.append(("journal row", json.dumps(attrs.asdict(row), default=str)))
        settled = [OutboxState.DELIVERED, OutboxState.FAILED, OutboxState.CANCELLED]
        for entry in pimms.store.outbox.list(states=settled):
            self.texts.append(("settled outbox row", json.dumps(attrs.asdict(entry), default=str)))
        for claim in pimms.store.ledger.list():
            self.texts.append(("ledger row", json.dumps(attrs.asdict(claim), default=str)))

    def logs(self) -> list[tuple[str, str]]:
        formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
        # werkzeug's records are the loopback simulator's access log: the partner's, not ours.
        return [
            ("log record", formatter.format(r))
            for r in self.caplog.records
            if not r.name.startswith("werkzeug")
        ]

    def leaks(self, canaries: dict[str, str]) -> list[str]:
        found = []
        for where, text in [*self.texts, *self.logs()]:
            folded = text.casefold()
            for what, value in canaries.items():
                at = min(
                    (i for form in _forms(value) if (i := folded.find(form.casefold())) >= 0),
                    default=-1,
                )
                if at >= 0:
                    found.append(f"{what} in {where}: ...{text[max(at - 300, 0) : at + 100]!r}")
        return found


def _forms(value: str) -> set[str]:
    from pimms_core.redaction import written_forms

    return written_forms(value)


@pytest.fixture
def evidence(caplog: pytest.LogCaptureFixture) -> Iterator[Evidence]:
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore"):  # `pimms -v`, run by other tests, quiets them
        caplog.set_level(logging.DEBUG, logger=name)
    yield Evidence(caplog)
    REDACTOR.clear()


# --- the filter itself ----------------------------------------------------------------------------


def test_the_filter_masks_registered_values_in_messages_arguments_and_tracebacks() -> None:
    redactor = Redactor()
    redactor.add_secrets([SECRET])
    redactor.add_personal([DESCRIPTION, "ab", None])
    record = logging.LogRecord("pimms.x", logging.INFO, __file__, 1, "sent %s", (SECRET,), None)
    try:
        raise ValueError(f"partner said: {DESCRIPTION}")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    assert RedactingFilter(redactor).filter(record)
    shown = logging.Formatter().format(record)
    assert SECRET not in shown and DESCRIPTION not in shown
    assert "sent ***" in shown and "partner said: ***" in shown
    assert "ab" in redactor.redact("ab")  # too short to be masked everywhere


def test_the_filter_knows_url_quoted_forms_and_forgets_the_oldest_values() -> None:
    redactor = Redactor(capacity=8)
    redactor.add_personal(["Le Guen d'Arc"])
    assert redactor.redact("GET /b?nom=Le+Guen+d%27Arc") == "GET /b?nom=***"
    for index in range(10):
        redactor.add_personal([f"value-{index}"])
    assert "Le Guen" in redactor.redact("Le Guen d'Arc")


def _logged(redactor: Redactor, message: str, *args: object) -> str:
    """What a handler would write for this record, once through the filter."""
    record = logging.LogRecord("pimms.x", logging.DEBUG, __file__, 1, message, args, None)
    assert RedactingFilter(redactor).filter(record)
    return logging.Formatter().format(record)


def test_registering_does_no_work_until_a_record_is_filtered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    worked_out: list[str] = []

    def counting_forms(value: str) -> set[str]:
        worked_out.append(value)
        return redaction_forms(value)

    redaction_forms = redaction.written_forms
    monkeypatch.setattr(redaction, "written_forms", counting_forms)
    redactor = Redactor()
    for index in range(100):
        redactor.add_personal([f"Dupont-{index}"])
    assert worked_out == []  # the facade's calls pay for no form when nothing is logged
    assert _logged(redactor, "for %s", "Dupont-42") == "for ***"
    assert len(worked_out) == 100
    redactor.add_personal(["Jean Martin"])
    assert _logged(redactor, "for %s", "Jean Martin") == "for ***"
    assert worked_out[100:] == ["Jean Martin"]  # only the values added since the last record


def test_re_registering_a_known_value_keeps_it_masked_and_grows_nothing() -> None:
    redactor = Redactor()
    redactor.add_personal(["Jean Dupont", "12 rue des Lilas"])
    known = redactor.values()
    for _ in range(50):
        redactor.add_personal(["Jean Dupont"])
        redactor.add_personal(["12 rue des Lilas", "Jean Dupont"])
    assert redactor.values() is known  # the same forms: not even sorted again
    assert _logged(redactor, "GET /a?nom=%s", "Jean+Dupont") == "GET /a?nom=***"


def test_a_value_registered_after_a_record_is_masked_in_the_next_one() -> None:
    redactor = Redactor()
    redactor.add_personal(["Dupont"])
    assert _logged(redactor, "%s / %s", "Dupont", "Jean Martin") == "*** / Jean Martin"
    redactor.add_personal(["Jean Martin"])
    assert _logged(redactor, "%s / %s", "Dupont", "Jean Martin") == "*** / ***"
    assert _logged(redactor, "q=%s", "Jean%20Martin") == "q=***"


def test_the_oldest_personal_values_are_forgotten_but_never_a_secret() -> None:
    redactor = Redactor(capacity=3)
    redactor.add_secrets([SECRET])
    redactor.add_personal(["oldest", "older", SECRET])
    assert _logged(redactor, "oldest/older/%s", SECRET) == "***/***/***"
    redactor.add_personal(["oldest"])  # registered again: the most recent now
    redactor.add_personal([" shared "])  # "older" goes
    assert _logged(redactor, "older/oldest/shared/%s", SECRET) == "older/***/***/***"
    redactor.add_personal(["shared"])  # the personal copy of the secret goes: the secret stays
    assert _logged(redactor, "shared/%s", SECRET) == "***/***"
    redactor.add_personal(["newest"])  # "oldest" goes
    redactor.add_personal(["a1b"])  # " shared " goes, but "shared" still has that form
    shown = _logged(redactor, "oldest/shared/newest/a1b/%s", SECRET)
    assert shown == "oldest/***/***/***/***"
    redactor.clear()
    assert _logged(redactor, "a1b/%s", SECRET) == f"a1b/{SECRET}"


@pytest.fixture
def frequent_switches() -> Iterator[None]:
    """Threads take turns every microsecond: a race, if there is one, shows up."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


@pytest.mark.usefixtures("frequent_switches")
def test_concurrent_registrations_lose_no_value() -> None:
    redactor = Redactor(capacity=2000)
    start = threading.Barrier(9)
    done = threading.Event()
    failures: list[BaseException] = []

    def register(worker: int) -> None:
        for index in range(200):
            redactor.add_personal([f"name-{worker}-{index}", "Dupont"])

    def log_meanwhile() -> None:  # records filtered while the values arrive
        while not done.is_set():
            redactor.redact("name-0-0")

    def run(work: Callable[..., None], *args: int) -> None:
        start.wait()
        try:
            work(*args)
        except BaseException as exc:  # a thread's exception would not fail the test
            failures.append(exc)

    reader = threading.Thread(target=run, args=(log_meanwhile,))
    workers = [threading.Thread(target=run, args=(register, worker)) for worker in range(8)]
    for thread in [reader, *workers]:
        thread.start()
    for thread in workers:
        thread.join()
    done.set()
    reader.join()
    assert failures == []
    every = [f"name-{worker}-{index}" for worker in range(8) for index in range(200)]
    assert redactor.redact(" ".join([*every, "Dupont"])) == " ".join(["***"] * 1601)


def test_account_references_are_masked_to_their_last_three_characters() -> None:
    assert mask_reference("4001234567") == "*******567"
    assert mask_reference("AB") == "**"
    assert mask_reference(None) is None


def test_httpx_url_logs_of_a_name_in_a_query_are_masked(evidence: Evidence) -> None:
    pimms = sandbox_pimms(pimms_sncf)
    evidence.attempt(lambda: pimms.lookup_account("sncf", "ABC123", last_name=LAST_NAME))
    urls = [text for _, text in evidence.logs() if "HTTP Request" in text]
    assert urls, "httpx logs each request at INFO: the filter must see them"
    assert not (leaks := evidence.leaks(CANARIES)), "\n".join(leaks)


# --- the fake partner: every operation, every error path ------------------------------------------


ECHO = {"error": f"refused {DESCRIPTION} {EMAIL} {PHONE} {LAST_NAME} key={SECRET}"}
"""A partner that echoes what it received in its error bodies, as some do."""
LOOKUP_ECHO = {"error": f"refused {LAST_NAME} key={SECRET}"}
"""The same for a lookup, which carries only a reference, a last name and credentials (a
value is masked in logs once the facade has seen it: a lookup has not seen a description)."""

LOOKUP_ANSWERS: list[Any] = [
    httpx.Response(200, json=ACCOUNT_BODY),
    httpx.Response(404, json=LOOKUP_ECHO),
    httpx.Response(401, json=LOOKUP_ECHO),
    httpx.Response(500, text=f"<html>{LOOKUP_ECHO}</html>"),
    httpx.Response(429, json=LOOKUP_ECHO, headers={"Retry-After": "1"}),
    httpx.Response(200, text=f"not json {LOOKUP_ECHO}"),
    httpx.Response(200, json={"ref": "12345678", "detail": LOOKUP_ECHO}),
    httpx.ConnectError(f"refused {SECRET}"),
    httpx.ReadTimeout(f"slow {LAST_NAME}"),
]
CLAIM_ANSWERS: list[Any] = [
    httpx.Response(201, json={"id": "C-1", "status": "NEW", "at": "2026-03-01T09:00:00"}),
    httpx.Response(404, json=ECHO),
    httpx.Response(401, json=ECHO),
    httpx.Response(422, json=ECHO),
    httpx.Response(503, text=f"<html>{ECHO}</html>"),
    httpx.Response(201, text=f"{ECHO}"),
    httpx.ConnectError(f"refused {EMAIL}"),
    httpx.ReadTimeout(f"slow {PHONE}"),
]


@pytest.fixture
def acme() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=ACME_BASE, assert_all_called=False) as router:
        yield router


@pytest.mark.parametrize("mechanism", ["header", "none"])
def test_fake_partner_every_path_leaks_nothing(
    acme: respx.MockRouter, evidence: Evidence, mechanism: str
) -> None:
    pimms = live_pimms(
        AcmePlugin(idempotency=mechanism),
        ACME_BASE,
        settings={"api_key_env": "ACME_KEY"},
        env={"ACME_KEY": SECRET},
        policy=RetryPolicy(attempts=2, backoff=0.0, max_backoff=0.0),
    )
    lookup = acme.get("/accounts/12345678")
    for answer in LOOKUP_ANSWERS:
        lookup.side_effect = [answer, answer]
        evidence.attempt(lambda: pimms.lookup_account("acme", "12345678", last_name=LAST_NAME))
    create = acme.post("/claims")
    for index, answer in enumerate(CLAIM_ANSWERS):
        create.side_effect = [answer, answer]
        evidence.attempt(
            lambda i=index: pimms.submit_claim(
                "acme",
                "12345678",
                "billing",
                DESCRIPTION,
                contact=CONTACT,
                last_name=LAST_NAME,
                idempotency_key=f"key-{i}",
            )
        )
        evidence.attempt(
            lambda i=index: pimms.open_claim(
                "acme", "12345678", "billing", DESCRIPTION, contact=CONTACT, idempotency_key=f"k{i}"
            )
        )
    status = acme.get("/claims/C-1")
    for answer in [httpx.Response(200, json={"status": "NEW"}), *LOOKUP_ANSWERS[1:]]:
        status.side_effect = [answer, answer]
        evidence.attempt(lambda: pimms.claim_status("acme", "C-1"))
    create.side_effect = None
    create.respond(201, json={"id": "C-2", "status": "NEW", "at": "2026-03-01T09:00:00"})
    for outcome in pimms.flush_outbox():
        if outcome.error is not None:
            evidence.error(outcome.error)
    for entry in pimms.store.outbox.list(states=[OutboxState.NEEDS_CHECK]):
        pimms.resolve_outbox(entry.local_ref, cancel=True)
    bad_inputs: list[Callable[[], Any]] = [
        lambda: pimms.lookup_account("acme", LAST_NAME),
        lambda: pimms.lookup_account("acme", "12345678", last_name=LAST_NAME + "\x07"),
        lambda: pimms.open_claim("acme", "12345678", "billing", DESCRIPTION * 60),
        lambda: pimms.open_claim("acme", "12345678", "billing", DESCRIPTION + "\x00"),
        lambda: pimms.open_claim("acme", PHONE + EMAIL, "billing", DESCRIPTION),
        lambda: pimms.claim_status("acme", f"{EMAIL} {DESCRIPTION}"),
        lambda: pimms.resolve_outbox(LAST_NAME, cancel=True),
    ]
    for bad in bad_inputs:
        assert isinstance(evidence.attempt(bad), PimmsError)
    evidence.store(pimms)
    assert len(pimms.store.journal.list()) > 40
    assert any(entry for entry in pimms.store.outbox.list(states=[OutboxState.DELIVERED]))
    assert any(name == "log record" for name, _ in evidence.logs())
    assert not (leaks := evidence.leaks(CANARIES)), "\n".join(leaks)


# --- each real plugin -----------------------------------------------------------------------------


PLUGINS = [pimms_edf, pimms_laposte, pimms_sncf, pimms_veolia]


def _mediation(pimms: Pimms, partner: str, evidence: Evidence) -> None:
    info = pimms.info(partner)
    seeded = info.sandbox_accounts[0]
    account = evidence.attempt(
        lambda: pimms.lookup_account(partner, seeded.reference, last_name=seeded.last_name)
    )
    services = getattr(account, "services", ())
    service_id = services[0].id if len(services) > 1 else None
    code = info.categories[0].code
    for key in ("canary-1", "canary-1", "canary-2"):
        evidence.attempt(
            lambda key=key: pimms.submit_claim(
                partner,
                seeded.reference,
                code,
                DESCRIPTION,
                contact=CONTACT,
                last_name=seeded.last_name,
                service_id=service_id,
                idempotency_key=key,
            )
        )
    evidence.attempt(lambda: pimms.lookup_account(partner, seeded.reference, last_name=LAST_NAME))
    evidence.attempt(
        lambda: pimms.submit_claim(
            partner, seeded.reference, code, DESCRIPTION, last_name=LAST_NAME, contact=CONTACT
        )
    )
    for claim in pimms.store.ledger.list(partner=partner):
        evidence.attempt(lambda ref=claim.claim_ref: pimms.claim_status(partner, ref))
    evidence.attempt(lambda: pimms.claim_status(partner, "UNKNOWN-CLAIM-1"))
    evidence.attempt(lambda: pimms.lookup_account(partner, LAST_NAME))
    evidence.attempt(lambda: pimms.submit_claim(partner, seeded.reference, code, DESCRIPTION * 60))


@pytest.mark.parametrize("plugin", PLUGINS, ids=lambda p: p.__name__)
def test_each_real_plugin_in_sandbox_mode_leaks_nothing(
    plugin: ModuleType, evidence: Evidence
) -> None:
    pimms = sandbox_pimms(plugin)
    [partner] = pimms.host.partners
    _mediation(pimms, partner, evidence)
    evidence.store(pimms)
    assert pimms.store.ledger.list(), "the mediation must have opened a claim"
    seeded_names = {
        f"seeded name {a.last_name}": a.last_name
        for a in pimms.info(partner).sandbox_accounts
        if a.last_name
    }
    assert not (leaks := evidence.leaks(CANARIES)), "\n".join(leaks)
    logs_only = Evidence(evidence.caplog)
    assert logs_only.leaks(seeded_names) == []  # registered as they passed: masked in logs


@pytest.mark.parametrize("plugin", PLUGINS, ids=lambda p: p.__name__)
def test_each_real_plugin_live_with_canary_credentials_leaks_nothing(
    plugin: ModuleType, evidence: Evidence, tmp_path: Path
) -> None:
    probe = fresh_host(plugin)
    [(partner, loaded)] = probe.partners.items()
    state = SandboxState(tmp_path / f"{partner}.json")
    app = calls.sandbox_app(probe, partner, state)
    assert app is not None
    env: dict[str, str] = {}
    with serve_app(app, quiet=True).start() as server:
        table: dict[str, Any] = {"base_url": server.base_url, "timeout": 2}
        for spec in loaded.info.settings:
            if spec.secret:
                env[f"CANARY_{spec.name.upper()}"] = f"{SECRET}-{spec.name}"
                table[f"{spec.name}_env"] = f"CANARY_{spec.name.upper()}"
        config = Config.from_document({"partners": {partner: table}}, env=env)
        pimms = Pimms(config, fresh_host(plugin), env=env, policy=NO_RETRY)
        _mediation(pimms, partner, evidence)
        for outcome in pimms.flush_outbox():
            if outcome.error is not None:
                evidence.error(outcome.error)
        evidence.store(pimms)
    secrets = {f"secret {k}": v for k, v in env.items()}
    assert len(pimms.store.journal.list()) >= 8
    assert not (leaks := evidence.leaks({**CANARIES, **secrets})), "\n".join(leaks)


# --- the command line -----------------------------------------------------------------------------


def test_the_cli_shows_the_result_asked_for_and_nothing_else(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"PIMMS_LOAD_PLUGINS": "edf"}
    opened = runner.invoke(
        cli,
        [
            "-v",
            "claim",
            "open",
            "edf",
            "--account",
            "4001234567",
            "--category",
            "billing",
            "--description",
            DESCRIPTION,
            "--email",
            EMAIL,
            "--phone",
            PHONE,
        ],
        env=env,
    )
    assert opened.exit_code == 0, opened.output
    outputs = [("claim open", opened.output)]
    for args in (
        ["claims"],
        ["claims", "--json"],
        ["outbox", "--json"],
        ["journal"],
        ["journal", "--json"],
        ["-v", "lookup", "edf", LAST_NAME],
        [
            "-v",
            "claim",
            "open",
            "edf",
            "--account",
            "4001234567",
            "--category",
            "billing",
            "--description",
            DESCRIPTION + "\x01",
        ],
    ):
        result = runner.invoke(cli, args, env=env)
        outputs.append((" ".join(args), result.output))
    found = [
        f"{what} in `pimms {where}`"
        for where, text in outputs
        for what, value in PERSONAL.items()
        if value in text
    ]
    assert found == []
