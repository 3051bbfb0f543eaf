"""Commands on partners: list them, look up an account, open and follow a claim."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from pimms_core.cli.base import (
    State,
    announce,
    cli,
    json_option,
    pass_state,
    print_json,
    reported_errors,
    table,
    with_mode,
)

if TYPE_CHECKING:
    from pimms_core.models import Account, Claim, ClaimStatus, QueuedClaim


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
        print_json(
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
    table(("ID", "NAME", "PLUGIN", "VERSION", "MODE", "OPERATIONS"), rows)
    if errors:
        click.echo("\nPlugins that failed to load (skipped):")
        for error in errors:
            click.echo(f"  {error.plugin}: {error.error}")


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
        announce(pimms, partner)
        account = pimms.lookup_account(partner, reference, last_name=last_name, call=state.call())
    if as_json:
        print_json(with_mode(pimms, partner, account))
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
    """Open a claim at PARTNER for an account.

    The claim is written to the outbox before it is sent: if PARTNER cannot take it now, it
    is QUEUED (exit code 0) with a local reference to give the resident, and
    `pimms outbox flush` sends it later, exactly once.
    """
    with reported_errors():
        from pimms_core.models import Claim, Contact

        pimms = state.pimms()
        announce(pimms, partner)
        contact = Contact(email=email, phone=phone) if (email or phone) else None
        opened = pimms.submit_claim(
            partner,
            account_ref,
            category,
            description,
            contact=contact,
            last_name=last_name,
            service_id=service_id,
            idempotency_key=idempotency_key,
            call=state.call(),
        )
    if isinstance(opened, Claim):
        if as_json:
            print_json({**with_mode(pimms, partner, opened), "queued": False})
        else:
            _show_claim(opened)
    elif as_json:
        print_json({**with_mode(pimms, partner, opened), "queued": True})
    else:
        _show_queued(opened)


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
    if opened.local_ref:
        click.echo(f"  local ref: {opened.local_ref}")


def _show_queued(queued: QueuedClaim) -> None:
    """A claim kept in the outbox, said plainly: what happened, what to tell the resident."""
    from pimms_core.models import OutboxState

    if queued.state is OutboxState.NEEDS_CHECK:
        click.echo(f"NEEDS A CHECK: {queued.partner} may or may not have received this claim.")
        click.echo(f"  why:       {queued.reason}")
        click.echo(f"  local ref: {queued.local_ref}  (give this reference to the resident)")
        click.echo(
            f"  next:      check with {queued.partner}, then `pimms outbox resolve "
            f"{queued.local_ref}`; it will not be sent again by itself"
        )
        return
    click.echo(f"QUEUED: {queued.partner} cannot take the claim now; pimms keeps it safely.")
    click.echo(f"  why:       {queued.reason}")
    click.echo(f"  local ref: {queued.local_ref}  (give this reference to the resident)")
    click.echo(
        "  next:      `pimms outbox flush` sends it once the partner answers again, "
        "exactly once; do not open it again"
    )


@claim.command("status")
@click.argument("partner")
@click.argument("claim_ref")
@json_option
@pass_state
def claim_status(state: State, partner: str, claim_ref: str, as_json: bool) -> None:
    """Show where the claim CLAIM_REF stands at PARTNER."""
    with reported_errors():
        pimms = state.pimms()
        announce(pimms, partner)
        status = pimms.claim_status(partner, claim_ref, call=state.call())
    if as_json:
        print_json(with_mode(pimms, partner, status))
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
