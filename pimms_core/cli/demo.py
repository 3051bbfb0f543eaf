"""`pimms demo`: the README's main job."""

from __future__ import annotations

import sys

import click

from pimms_core.cli.base import (
    State,
    cli,
    pass_state,
    reported_errors,
)


@cli.command()
@click.option("--partner", "only", multiple=True, help="Only these partners (repeatable).")
@pass_state
def demo(state: State, only: tuple[str, ...]) -> None:
    """Walk a mediation through every installed partner, in sandbox mode."""
    from pimms_core.demo import run_demo

    with reported_errors():
        ok = run_demo(state.pimms(sandbox=True), only=list(only), echo=click.echo)
    sys.exit(0 if ok else 1)
