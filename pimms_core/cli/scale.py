"""Commands that work at scale: several lookups at once, and the ledger's batch refresh.

`pimms lookup-many edf:4001234567 veolia:100200300 sncf:ABC123:Martin [--json]` looks every
target up at once; each line says which partner it is about. `pimms claims refresh [--partner
P] [--json]` asks the partners about every open claim of the ledger. The core and the plugins
are imported inside the commands, so that `pimms --help` stays fast.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import click

from pimms_core.cli.base import (
    State,
    announce,
    cli,
    json_option,
    pass_state,
    print_json,
    reported_errors,
)
from pimms_core.cli.store import claims

if TYPE_CHECKING:
    from pimms_core.facade import Pimms
    from pimms_core.fanout import LookupTarget, Outcome
    from pimms_core.models import Account
    from pimms_core.refresh import RefreshSummary


def _targets(
    _ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
) -> list[LookupTarget]:
    from pimms_core.errors import InvalidInput
    from pimms_core.fanout import LookupTarget

    try:
        return [LookupTarget.parse(value) for value in values]
    except InvalidInput as exc:
        raise click.BadParameter(exc.message) from None


@cli.command("lookup-many")
@click.argument("targets", nargs=-1, required=True, callback=_targets)
@click.option(
    "--per-partner",
    type=click.IntRange(min=1),
    help="Lookups in flight at once for one partner (default: its max_concurrent setting).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds to wait in all; lookups not finished by then are reported unavailable.",
)
@json_option
@pass_state
def lookup_many(
    state: State,
    targets: list[LookupTarget],
    per_partner: int | None,
    timeout: float | None,
    as_json: bool,
) -> None:
    """Look up several accounts at once, across partners.

    Each TARGET is PARTNER:REFERENCE, or PARTNER:REFERENCE:LAST_NAME where the partner needs
    the holder's last name (sncf:ABC123:Martin). Results are printed as they arrive, each
    naming its partner; a failed lookup never hides the others. Exit code 1 if any failed.
    """
    from pimms_core.fanout import iter_lookups

    with reported_errors():
        pimms = state.pimms()
        for partner in dict.fromkeys(target.partner for target in targets):
            if partner in pimms.host.partners:
                announce(pimms, partner)
        outcomes: list[Outcome[Account]] = []
        for outcome in iter_lookups(pimms, targets, per_partner=per_partner, timeout=timeout):
            outcomes.append(outcome)
            if not as_json:
                _show(targets[outcome.index], outcome)
    outcomes.sort(key=lambda outcome: outcome.index)
    failed = sum(not outcome.ok for outcome in outcomes)
    if as_json:
        print_json({"results": [_as_json(pimms, targets[o.index], o) for o in outcomes]})
    if failed:
        click.echo(f"error: {failed} of {len(outcomes)} lookup(s) failed", err=True)
        sys.exit(1)


def _show(target: LookupTarget, outcome: Outcome[Account]) -> None:
    where = f"[{outcome.index + 1}] {outcome.partner}"
    if outcome.error is not None:
        hint = ""
        if outcome.error.code == "invalid_input" and target.last_name is None:
            hint = " (here, give it as PARTNER:REFERENCE:LAST_NAME)"
        click.echo(f"{where}: FAILED ({outcome.error.code}) {outcome.error.message}{hint}")
        return
    account = outcome.value
    assert account is not None
    plugin = f", {account.plugin}" if account.plugin else ""
    click.echo(
        f"{where} {account.reference}: {account.holder_name}, {account.status}"
        f" ({account.partner_status}), {len(account.services)} service(s)"
        f"  [{outcome.seconds:.2f} s{plugin}]"
    )


def _as_json(pimms: Pimms, target: LookupTarget, outcome: Outcome[Account]) -> dict[str, Any]:
    from pimms_core.serialization import to_json_dict

    data: dict[str, Any] = {
        "partner": outcome.partner,
        "reference": target.reference,
        "ok": outcome.ok,
        "seconds": round(outcome.seconds, 4),
    }
    if outcome.error is not None:
        data["error"] = outcome.error.to_dict()
    else:
        data["account"] = to_json_dict(outcome.value)
        data["mode"] = pimms.mode(outcome.partner)
    return data


# --- the ledger's batch refresh ----------------------------------------------------------------


@claims.command("refresh")
@click.option("--partner", help="Only this partner's claims.")
@click.option(
    "--older-than",
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="Only claims not heard of for this long (to resume a run that was interrupted).",
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=32,
    show_default=True,
    help="Checks in flight at once, all partners together.",
)
@click.option(
    "--per-partner",
    type=click.IntRange(min=1),
    help="Checks in flight at once for one partner (default: its max_concurrent setting).",
)
@json_option
@pass_state
def claims_refresh(
    state: State,
    partner: str | None,
    older_than: float | None,
    concurrency: int,
    per_partner: int | None,
    as_json: bool,
) -> None:
    """Ask the partners where every open claim of the ledger stands, and record it.

    Partners are asked concurrently, each within its budget; the ledger and the journal are
    updated claim by claim, so the run can be interrupted (Ctrl-C) and run again without harm.
    Ends with a summary: checked, changed, failed by error type. Exit code 1 if some checks
    failed, 130 if interrupted.
    """
    from pimms_core.refresh import Refresh

    with reported_errors():
        pimms = state.pimms()
        refresh = Refresh(
            pimms,
            partner=partner,
            older_than=older_than,
            concurrency=concurrency,
            per_partner=per_partner,
        )
        for name in sorted({entry.partner for entry in refresh.claims}):
            if name in pimms.host.partners:
                announce(pimms, name)
    stderr = sys.stderr
    try:
        with reported_errors():
            if stderr.isatty() and refresh.summary.selected:
                with click.progressbar(
                    length=refresh.summary.selected,
                    label="Checking claims",
                    file=stderr,
                    show_pos=True,
                ) as bar:
                    for _check in refresh.run():
                        bar.update(1)
            else:
                for _check in refresh.run():
                    pass
    except KeyboardInterrupt:
        refresh.summary.interrupted = True
    summary = refresh.summary
    if as_json:
        print_json(summary.to_json())
    else:
        _show_summary(summary)
    if summary.interrupted:
        sys.exit(130)
    if summary.failed_total:
        sys.exit(1)


def _failures(failed: Mapping[str, int]) -> str:
    return ", ".join(f"{code} {count}" for code, count in sorted(failed.items()))


def _show_summary(summary: RefreshSummary) -> None:
    failed = f" ({_failures(summary.failed)})" if summary.failed else ""
    click.echo(
        f"Checked {summary.checked} of {summary.selected} open claim(s) in"
        f" {summary.seconds:.1f} s: {summary.changed} changed, {summary.unchanged} unchanged,"
        f" {summary.failed_total} failed{failed}"
    )
    for name, tally in sorted(summary.partners.items()):
        failures = f" ({_failures(tally.failed)})" if tally.failed else ""
        click.echo(
            f"  {name}: {tally.checked} checked, {tally.changed} changed,"
            f" {tally.failed_total} failed{failures}"
        )
    for check in summary.changes:
        if check.status is not None:
            click.echo(
                f"  changed: {check.partner} {check.claim_ref}: {check.before.value} -> "
                f"{check.status.state.value} ({check.status.partner_status})"
            )
    if summary.interrupted:
        click.echo(
            f"Interrupted: {summary.selected - summary.checked} claim(s) not checked; run "
            "again (with --older-than 600 to skip the ones just checked)."
        )
