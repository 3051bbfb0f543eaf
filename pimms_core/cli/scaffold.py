"""`pimms new-plugin NAME`: start a partner plugin from a working template."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import click

from pimms_core.cli.base import cli, json_option, print_json, reported_errors

if TYPE_CHECKING:
    from pathlib import Path


@cli.command("new-plugin")
@click.argument("name")
@click.option(
    "--directory",
    type=click.Path(file_okay=False),
    default=".",
    show_default=True,
    help="Where to create the pimms-NAME folder.",
)
@json_option
def new_plugin(name: str, directory: str, as_json: bool) -> None:
    """Generate the plugin distribution pimms-NAME for the partner NAME (e.g. keolis-demo).

    It installs, is listed by `pimms partners` and passes the conformance suite against its
    own simulator as generated; then make it talk to your partner's API.
    """
    from pimms_core.scaffold import create_plugin

    with reported_errors():
        created = create_plugin(name, directory)
    where = _shown(created.path)
    if as_json:
        print_json(
            {
                "path": str(created.path.resolve()),
                "distribution": created.names.distribution,
                "package": created.names.package,
                "partner_id": created.names.partner_id,
                "files": list(created.files),
            }
        )
        return
    names = created.names
    click.echo(
        f"Created {names.distribution} in {where} "
        f"(partner id {names.partner_id}, package {names.package}):"
    )
    for path in created.files:
        click.echo(f"  {path}")
    click.echo("\nNext:")
    click.echo(f"  pip install -e '{where}[test]'")
    click.echo(f"  pimms partners            # lists {names.partner_id}, in SANDBOX mode")
    click.echo(f"  pytest {where}     # conformance suite and unit tests, on the simulator")
    click.echo(
        f"Then make {names.package}/info.py, client.py and simulator.py speak your partner's "
        "API (docs/writing-a-plugin.md)."
    )


def _shown(path: Path) -> str:
    """The folder as the user would type it: relative to here when it is below here."""
    try:
        from pathlib import Path

        relative = path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return str(path.resolve())
    return f".{os.sep}{relative}"
