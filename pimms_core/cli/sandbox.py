"""`pimms sandbox ...`: the partners' simulators."""

from __future__ import annotations

import click

from pimms_core.cli.base import (
    State,
    cli,
    pass_state,
    reported_errors,
)


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
