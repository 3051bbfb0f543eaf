"""`pimms check`: run the connector checks against a partner's endpoint, print a table."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

import click

from pimms_core.cli.base import (
    DEBUG_ENV,
    State,
    announce,
    cli,
    json_option,
    pass_state,
    print_json,
    reported_errors,
    table,
)

if TYPE_CHECKING:
    from pimms_core.checks import PartnerReport


@cli.command()
@click.argument("partner", required=False)
@click.option("--all", "check_all", is_flag=True, help="Check every installed partner.")
@click.option(
    "--allow-writes/--read-only",
    default=None,
    help="Open a test claim (and send it again) at the partner. Default: allowed in sandbox "
    "mode, where nothing is kept; read-only against a live endpoint.",
)
@click.option("--reference", help="A known account to look up (needed on a live endpoint).")
@click.option("--name", "last_name", help="The holder's last name, where the partner needs it.")
@click.option("--unknown-reference", help="A reference of the right form that has no account.")
@click.option(
    "--unknown-claim", help="A claim reference that does not exist (default: a made-up one)."
)
@json_option
@pass_state
def check(
    state: State,
    partner: str | None,
    check_all: bool,
    allow_writes: bool | None,
    reference: str | None,
    last_name: str | None,
    unknown_reference: str | None,
    unknown_claim: str | None,
    as_json: bool,
) -> None:
    """Check PARTNER's connector against its endpoint (the sandbox unless one is configured).

    Reads only, unless writes are allowed. Exit 0 only when no check fails.
    """
    if check_all == bool(partner):
        raise click.UsageError("name one PARTNER, or pass --all")
    if check_all and (reference or last_name or unknown_reference):
        raise click.UsageError("--reference, --name and --unknown-reference need one PARTNER")
    from pimms_core.checks import UNKNOWN_CLAIM_REF, CheckOptions, run_checks
    from pimms_core.facade import Pimms
    from pimms_core.sandbox import SandboxState

    options = CheckOptions(
        allow_writes=allow_writes,
        reference=reference,
        last_name=last_name,
        unknown_reference=unknown_reference,
        unknown_claim=unknown_claim or UNKNOWN_CLAIM_REF,
    )
    reports: list[PartnerReport] = []
    with reported_errors():
        base = state.pimms()
        targets = sorted(base.host.partners) if check_all else [str(partner)]
        load_errors = base.load_errors if check_all else []
        for partner_id in targets:
            base.host.partner(partner_id)  # an unknown partner is an error, listing the known
            if not as_json:
                announce(base, partner_id)
            # Sandbox mode runs on a fresh in-memory simulator state: the test claims vanish.
            pimms = Pimms(base.config, base.host, sandbox_state=SandboxState(None))
            try:
                debug = bool(os.environ.get(DEBUG_ENV))
                reports.append(run_checks(pimms, partner_id, options, debug=debug))
            finally:
                pimms.close()
    ok = all(report.ok for report in reports) and not load_errors
    if as_json:
        print_json(
            {
                "ok": ok,
                "partners": [report.to_dict() for report in reports],
                "load_errors": [{"plugin": e.plugin, "error": e.error} for e in load_errors],
            }
        )
    else:
        for index, report in enumerate(reports):
            if index:
                click.echo()
            _show(report)
        _summary(reports, load_errors_text=[f"{e.plugin}: {e.error}" for e in load_errors])
    sys.exit(0 if ok else 1)


def _writes(report: PartnerReport) -> str:
    if report.mode == "sandbox":
        if report.writes:
            return "writes allowed (sandbox: the test claims are dropped afterwards)"
        return "read-only"
    if report.writes:
        return "writes allowed (--allow-writes): a test claim is opened at the partner"
    return "read-only (pass --allow-writes to open a test claim)"


def _show(report: PartnerReport) -> None:
    click.echo(
        f"{report.partner} ({report.name}): {report.mode.upper()}, {report.endpoint}; "
        f"{_writes(report)}"
    )
    rows = [
        (r.name, r.result.upper(), f"{r.seconds * 1000:8.1f} ms", r.detail) for r in report.results
    ]
    table(("CHECK", "RESULT", "TIME", "DETAIL"), rows)
    counts = report.counts()
    click.echo(
        f"{report.partner}: {counts['pass']} passed, {counts['fail']} failed, "
        f"{counts['skip']} skipped"
    )


def _summary(reports: list[PartnerReport], *, load_errors_text: list[str]) -> None:
    for line in load_errors_text:
        click.echo(f"\nplugin failed to load: {line}")
    if len(reports) < 2 and not load_errors_text:
        return
    failed = [report.partner for report in reports if not report.ok]
    if failed:
        click.echo(f"\n{len(failed)} of {len(reports)} partners failed: {', '.join(failed)}")
    elif not load_errors_text:
        click.echo(f"\nall {len(reports)} partners passed")
