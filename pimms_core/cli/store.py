"""`pimms claims`, `pimms outbox`, `pimms journal`: the site's ledger, outbox and journal.

`claims` is a group whose default action is the list, so that other commands on claims
(`pimms claims refresh`) can be added to it: `from pimms_core.cli.store import claims`, then
`@claims.command()`.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from pimms_core.cli.base import (
    State,
    cli,
    json_option,
    pass_state,
    print_json,
    reported_errors,
    table,
)

if TYPE_CHECKING:
    from pimms_core.store.delivery import DeliveryOutcome
    from pimms_core.store.records import LedgerEntry, OutboxEntry


def _when(value: datetime | None) -> str:
    """A timestamp for a table: to the second, UTC ones marked Z."""
    if value is None:
        return ""
    if value.tzinfo is not None:
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    return value.strftime("%Y-%m-%d %H:%M:%S")


def _json(record: Any) -> dict[str, Any]:
    from pimms_core.serialization import converter

    data: dict[str, Any] = converter.unstructure(record)
    return data


# --- the ledger -------------------------------------------------------------------------------


@cli.group(invoke_without_command=True)
@click.option("--open", "open_only", is_flag=True, help="Only claims not resolved nor closed.")
@click.option("--partner", help="Only this partner's claims.")
@json_option
@click.pass_context
def claims(ctx: click.Context, open_only: bool, partner: str | None, as_json: bool) -> None:
    """List the claims opened through pimms (the ledger), oldest first."""
    if ctx.invoked_subcommand is not None:
        return
    state = ctx.find_object(State)
    assert state is not None
    with reported_errors():
        store = state.pimms().store
        entries = store.ledger.list(open_only=open_only, partner=partner)
        waiting = len(store.outbox.list(partner=partner))
    if as_json:
        print_json({"claims": [_json(e) for e in entries], "waiting_in_outbox": waiting})
        return
    if not entries:
        click.echo("No claim in the ledger." if not open_only else "No open claim.")
    else:
        table(_CLAIMS_HEADER, [_claim_row(e) for e in entries])
    if waiting:
        click.echo(f"\n{waiting} claim(s) waiting in the outbox: see `pimms outbox`.")


_CLAIMS_HEADER = (
    "LOCAL REF",
    "PARTNER",
    "CLAIM REF",
    "ACCOUNT",
    "CATEGORY",
    "STATE",
    "OPENED",
    "ANSWER BY",
    "LAST CHECKED",
)


def _claim_row(entry: LedgerEntry) -> tuple[str, ...]:
    return (
        entry.local_ref or "",
        entry.partner,
        entry.claim_ref,
        entry.account_ref,
        entry.category,
        f"{entry.state.value} ({entry.partner_status})",
        _when(entry.opened_at),
        entry.response_due_by.isoformat() if entry.response_due_by else "",
        _when(entry.last_checked),
    )


# --- the outbox -------------------------------------------------------------------------------


def _outbox_row(entry: OutboxEntry) -> tuple[str, ...]:
    return (
        entry.local_ref,
        entry.partner,
        entry.account_ref,
        entry.state.value,
        str(entry.attempts),
        _when(entry.created_at),
        entry.error_message or "",
    )


_OUTBOX_HEADER = ("LOCAL REF", "PARTNER", "ACCOUNT", "STATE", "TRIES", "QUEUED AT", "LAST ERROR")


def _outbox_json(entry: OutboxEntry) -> dict[str, Any]:
    """An outbox entry for machines: never its description, name or contact data."""
    data = _json(entry)
    for personal in ("description", "last_name", "contact_email", "contact_phone"):
        data.pop(personal, None)
    return data


@cli.group(invoke_without_command=True)
@click.option("--partner", help="Only this partner's claims.")
@click.option(
    "--all", "show_all", is_flag=True, help="Also the delivered, failed and cancelled ones."
)
@json_option
@click.pass_context
def outbox(ctx: click.Context, partner: str | None, show_all: bool, as_json: bool) -> None:
    """List the claims waiting in the outbox: queued, being sent, uncertain, needing a check."""
    if ctx.invoked_subcommand is not None:
        return
    state = ctx.find_object(State)
    assert state is not None
    with reported_errors():
        from pimms_core.models import OutboxState

        states = list(OutboxState) if show_all else None
        entries = state.pimms().store.outbox.list(states=states, partner=partner)
    if as_json:
        print_json({"outbox": [_outbox_json(e) for e in entries]})
        return
    if not entries:
        click.echo("The outbox is empty." if show_all else "No claim waits in the outbox.")
        return
    table(_OUTBOX_HEADER, [_outbox_row(e) for e in entries])
    checks = [e for e in entries if e.state.value == "needs_check"]
    if checks:
        click.echo(
            f"\n{len(checks)} claim(s) need a person to check with the partner, then "
            "`pimms outbox resolve LOCAL_REF --claim-ref REF | --resend | --cancel`."
        )


@outbox.command("flush")
@click.option("--partner", help="Only this partner's claims.")
@json_option
@pass_state
def outbox_flush(state: State, partner: str | None, as_json: bool) -> None:
    """Send the claims waiting in the outbox. Exit code 1 if some still wait."""
    with reported_errors():
        pimms = state.pimms()
        outcomes = pimms.flush_outbox(partner, call=state.call())
    if as_json:
        print_json({"flushed": [_outcome_json(o) for o in outcomes]})
    else:
        _show_flush(outcomes)
    if any(not o.delivered for o in outcomes):
        sys.exit(1)


def _outcome_json(outcome: DeliveryOutcome) -> dict[str, Any]:
    data: dict[str, Any] = {
        "local_ref": outcome.entry.local_ref,
        "partner": outcome.entry.partner,
        "state": outcome.entry.state.value,
        "claim_ref": outcome.claim.claim_ref if outcome.claim else outcome.entry.claim_ref,
        "delivered": outcome.delivered,
    }
    if outcome.error is not None:
        data["error"] = outcome.error.to_dict()
    return data


def _show_flush(outcomes: list[DeliveryOutcome]) -> None:
    if not outcomes:
        click.echo("Nothing to send: the outbox holds no queued claim.")
        return
    counts: dict[str, int] = {}
    for outcome in outcomes:
        entry = outcome.entry
        if outcome.claim is not None:
            what = f"delivered as {outcome.claim.claim_ref}"
            counts["delivered"] = counts.get("delivered", 0) + 1
        else:
            reason = outcome.queued.reason if outcome.queued else ""
            if outcome.error is not None and not reason:
                reason = outcome.error.message
            what = f"{entry.state.value}: {reason}"
            counts[entry.state.value] = counts.get(entry.state.value, 0) + 1
        click.echo(f"{entry.local_ref}  {entry.partner}  {what}")
    summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    click.echo(f"\nflushed {len(outcomes)}: {summary}")


@outbox.command("resolve")
@click.argument("local_ref")
@click.option("--claim-ref", help="The partner has the claim, under this reference.")
@click.option("--resend", is_flag=True, help="The partner does not have it: send it again.")
@click.option("--cancel", is_flag=True, help="Drop it (its personal data is removed).")
@json_option
@pass_state
def outbox_resolve(
    state: State,
    local_ref: str,
    claim_ref: str | None,
    resend: bool,
    cancel: bool,
    as_json: bool,
) -> None:
    """Settle the claim LOCAL_REF after checking with its partner."""
    with reported_errors():
        pimms = state.pimms()
        entry = pimms.resolve_outbox(
            local_ref, claim_ref=claim_ref, resend=resend, cancel=cancel, call=state.call()
        )
    if as_json:
        print_json(_outbox_json(entry))
    else:
        done = f" as {entry.claim_ref}" if entry.claim_ref else ""
        click.echo(f"{entry.local_ref}  {entry.partner}  {entry.state.value}{done}")


# --- the journal ------------------------------------------------------------------------------


_JOURNAL_HEADER = (
    "AT",
    "SITE",
    "AGENT",
    "PARTNER",
    "OPERATION",
    "ACCOUNT",
    "OUTCOME",
    "ERROR",
    "MS",
    "CORRELATION",
    "PLUGIN",
    "LOCAL REF",
)


def _since(value: str | None) -> datetime | None:
    """An ISO date or date-time; without a time zone, the machine's local time."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise click.BadParameter(
            "expected an ISO date or date-time, such as 2026-03-01 or 2026-03-01T14:30"
        ) from None
    return parsed.astimezone(UTC) if parsed.tzinfo is None else parsed


@cli.command()
@click.option("--since", "since_text", metavar="ISO-DATE", help="Only operations from then on.")
@click.option("--partner", help="Only this partner's operations.")
@click.option("--limit", type=click.IntRange(min=1), help="Only the last N operations.")
@json_option
@pass_state
def journal(
    state: State, since_text: str | None, partner: str | None, limit: int | None, as_json: bool
) -> None:
    """Show the journal: one line per operation, oldest first (account references masked)."""
    since = _since(since_text)
    with reported_errors():
        rows = state.pimms().store.journal.list(since=since, partner=partner, limit=limit)
    if as_json:
        print_json({"journal": [_json(row) for row in rows]})
        return
    if not rows:
        click.echo("No operation in the journal" + (" since then." if since else "."))
        return
    table(
        _JOURNAL_HEADER,
        [
            (
                _when(row.at),
                row.site_id,
                row.agent_id,
                row.partner or "",
                row.operation,
                row.account or "",
                row.outcome,
                row.error_type or "",
                f"{row.duration_ms:.0f}",
                row.correlation_id,
                f"{row.plugin} {row.plugin_version}" if row.plugin else "",
                row.local_ref or "",
            )
            for row in rows
        ],
    )
