"""The `pimms` command line: list, exercise and check partner connectors.

Exit codes: 0 success; 1 the operation failed (one line on stderr a mediator can act on, never
a traceback); 2 usage error. `--json` prints data for machines on stdout; the SANDBOX notice
and errors go to stderr. Only click is imported at start-up: the core and the plugins are
loaded by the command that needs them, so `pimms --help` stays fast.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

if TYPE_CHECKING:
    from pimms_core.facade import Pimms
    from pimms_core.models import Account, Claim, ClaimStatus

F = TypeVar("F", bound=Callable[..., Any])
DEBUG_ENV = "PIMMS_DEBUG"


class State:
    """What the group's options say, handed to every command."""

    def __init__(self, config_path: str | None) -> None:
        self.config_path = config_path
        self._pimms: Pimms | None = None

    def pimms(self, *, sandbox: bool = False) -> Pimms:
        from pimms_core.facade import Pimms

        if self._pimms is None or sandbox:
            self._pimms = Pimms.from_config(self.config_path, sandbox=sandbox)
        return self._pimms


pass_state = click.make_pass_decorator(State)


def json_option(fn: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")(fn)


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


@contextmanager
def reported_errors() -> Iterator[None]:
    """Turn errors into one line on stderr and exit code 1."""
    from pimms_core.errors import PimmsError

    try:
        yield
    except PimmsError as exc:
        _fail(exc.message)
    except click.exceptions.Exit:
        raise
    except Exception as exc:
        if os.environ.get(DEBUG_ENV):
            raise
        _fail(f"internal error ({type(exc).__name__}); run again with {DEBUG_ENV}=1 for details")


def _print_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def _announce(pimms: Pimms, partner: str) -> None:
    if pimms.mode(partner) == "sandbox":
        name = pimms.info(partner).name
        click.echo(
            f"SANDBOX {partner}: answers come from the {name} simulator; nothing is sent to {name}",
            err=True,
        )


def _with_mode(pimms: Pimms, partner: str, model: Any) -> dict[str, Any]:
    from pimms_core.serialization import to_json_dict

    data = to_json_dict(model)
    data["mode"] = pimms.mode(partner)
    return data


@click.group()
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="PIMMS_CONFIG",
    help="Configuration file (default: $PIMMS_CONFIG, else ./pimms.toml if present).",
)
@click.option("-v", "--verbose", is_flag=True, help="Log each exchange with partners to stderr.")
@click.version_option(package_name="pimms-core", prog_name="pimms")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, verbose: bool) -> None:
    """pimms: find a resident's account at a partner, open a claim, follow it."""
    if verbose:
        import logging

        logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s")
    ctx.obj = State(config_path)


@cli.command()
@json_option
@pass_state
def partners(state: State, as_json: bool) -> None:
    """List installed partners, their plugin and version, and plugins that failed to load."""
    with reported_errors():
        pimms = state.pimms()
        entries = pimms.partners()
        errors = pimms.load_errors
    if as_json:
        _print_json(
            {
                "partners": [
                    {
                        "id": e.info.id,
                        "name": e.info.name,
                        "sector": e.info.sector,
                        "plugin": e.plugin.name,
                        "version": e.plugin.version,
                        "operations": sorted(op.value for op in e.info.operations),
                        "mode": e.mode,
                        "idempotency": e.info.idempotency.value,
                    }
                    for e in entries
                ],
                "errors": [{"plugin": e.plugin, "error": e.error} for e in errors],
            }
        )
        return
    if not entries:
        click.echo("No partner plugin is installed.")
    rows = [
        (
            e.info.id,
            e.info.name,
            e.plugin.name,
            e.plugin.version,
            e.mode.upper(),
            ", ".join(sorted(op.value for op in e.info.operations)),
        )
        for e in entries
    ]
    _table(("ID", "NAME", "PLUGIN", "VERSION", "MODE", "OPERATIONS"), rows)
    if errors:
        click.echo("\nPlugins that failed to load (skipped):")
        for error in errors:
            click.echo(f"  {error.plugin}: {error.error}")


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo(
            "  ".join(
                str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)
            ).rstrip()
        )


@cli.command()
@click.argument("partner")
@click.argument("reference")
@click.option("--name", "last_name", help="The holder's last name, where the partner needs it.")
@json_option
@pass_state
def lookup(
    state: State, partner: str, reference: str, last_name: str | None, as_json: bool
) -> None:
    """Find the account REFERENCE at PARTNER."""
    with reported_errors():
        pimms = state.pimms()
        _announce(pimms, partner)
        account = pimms.lookup_account(partner, reference, last_name=last_name)
    if as_json:
        _print_json(_with_mode(pimms, partner, account))
    else:
        _show_account(account)


def _show_account(account: Account) -> None:
    click.echo(f"Account {account.reference} at {account.partner}")
    click.echo(f"  holder:   {account.holder_name}")
    click.echo(f"  status:   {account.status} ({account.partner_status})")
    if account.address:
        click.echo(f"  address:  {account.address}")
    if account.balance is not None:
        click.echo(f"  balance:  {account.balance.amount:.2f} {account.balance.currency}")
    for service in account.services:
        status = f"  [{service.status}]" if service.status else ""
        click.echo(f"  service:  {service.id}  {service.label}{status}")
    for event in account.events[:3]:
        when = event.at.isoformat() if event.at else ""
        click.echo(f"  event:    {when}  {event.code}  {event.label}")
    if account.plugin:
        click.echo(f"  plugin:   {account.plugin}")


@cli.group()
def claim() -> None:
    """Open a claim, or check where one stands."""


@claim.command("open")
@click.argument("partner")
@click.option("--account", "account_ref", required=True, help="The account reference.")
@click.option(
    "--category",
    required=True,
    help="A common category (billing, payment_difficulty, ...) or the partner's own code.",
)
@click.option("--description", required=True, help="What the resident asks for, in a few lines.")
@click.option("--name", "last_name", help="The holder's last name, where the partner needs it.")
@click.option("--service", "service_id", help="Which service of the account (if several).")
@click.option("--email", help="The resident's e-mail, if they want the partner to write.")
@click.option("--phone", help="The resident's phone number.")
@click.option(
    "--idempotency-key",
    help="Your key for this claim: sending it again returns the same claim, never a second one.",
)
@json_option
@pass_state
def claim_open(
    state: State,
    partner: str,
    account_ref: str,
    category: str,
    description: str,
    last_name: str | None,
    service_id: str | None,
    email: str | None,
    phone: str | None,
    idempotency_key: str | None,
    as_json: bool,
) -> None:
    """Open a claim at PARTNER for an account."""
    with reported_errors():
        from pimms_core.models import Contact

        pimms = state.pimms()
        _announce(pimms, partner)
        contact = Contact(email=email, phone=phone) if (email or phone) else None
        opened = pimms.open_claim(
            partner,
            account_ref,
            category,
            description,
            contact=contact,
            last_name=last_name,
            service_id=service_id,
            idempotency_key=idempotency_key,
        )
    if as_json:
        _print_json(_with_mode(pimms, partner, opened))
    else:
        _show_claim(opened)


def _show_claim(opened: Claim) -> None:
    again = " (already opened with this key: same claim)" if opened.replayed else ""
    click.echo(f"Claim {opened.claim_ref} at {opened.partner}{again}")
    click.echo(f"  state:    {opened.state.value} ({opened.partner_status})")
    click.echo(f"  opened:   {opened.opened_at.isoformat()}")
    if opened.response_due_by:
        click.echo(f"  answer by: {opened.response_due_by.isoformat()}")
    if opened.compensation:
        amount = opened.compensation
        click.echo(f"  compensation: {amount.amount:.2f} {amount.currency}")


@claim.command("status")
@click.argument("partner")
@click.argument("claim_ref")
@json_option
@pass_state
def claim_status(state: State, partner: str, claim_ref: str, as_json: bool) -> None:
    """Show where the claim CLAIM_REF stands at PARTNER."""
    with reported_errors():
        pimms = state.pimms()
        _announce(pimms, partner)
        status = pimms.claim_status(partner, claim_ref)
    if as_json:
        _print_json(_with_mode(pimms, partner, status))
    else:
        _show_status(status)


def _show_status(status: ClaimStatus) -> None:
    label = f", {status.partner_label}" if status.partner_label else ""
    click.echo(f"Claim {status.claim_ref} at {status.partner}")
    click.echo(f"  state:    {status.state.value} ({status.partner_status}{label})")
    if status.updated_at:
        click.echo(f"  updated:  {status.updated_at.isoformat()}")
    for step in status.history:
        when = step.at.isoformat() if step.at else ""
        click.echo(f"  history:  {when}  {step.state.value} ({step.partner_status})")


@cli.command()
@click.option("--partner", "only", multiple=True, help="Only these partners (repeatable).")
@pass_state
def demo(state: State, only: tuple[str, ...]) -> None:
    """Walk a mediation through every installed partner, in sandbox mode."""
    from pimms_core.demo import run_demo

    with reported_errors():
        ok = run_demo(state.pimms(sandbox=True), only=list(only), echo=click.echo)
    sys.exit(0 if ok else 1)


@cli.group()
def sandbox() -> None:
    """The partners' simulators."""


@sandbox.command("reset")
@click.option("--partner", "only", multiple=True, help="Only these partners (repeatable).")
@pass_state
def sandbox_reset(state: State, only: tuple[str, ...]) -> None:
    """Forget the claims opened in sandbox mode: the simulators' seed data comes back."""
    with reported_errors():
        pimms = state.pimms()
        targets = list(only) or [entry.info.id for entry in pimms.partners()]
        for partner in targets:
            pimms.info(partner)  # an unknown partner is an error, not a silent no-op
            pimms.sandbox_state(partner).reset()
            click.echo(f"{partner}: sandbox state cleared")


def main() -> None:
    cli(prog_name="pimms")
