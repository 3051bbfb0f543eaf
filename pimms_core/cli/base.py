"""The `pimms` group and what every command shares: state, JSON output, error reporting."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

if TYPE_CHECKING:
    from pimms_core.facade import Pimms
    from pimms_core.models import CallContext

F = TypeVar("F", bound=Callable[..., Any])
DEBUG_ENV = "PIMMS_DEBUG"
AGENT_ENV = "PIMMS_AGENT"


class State:
    """What the group's options say, handed to every command."""

    def __init__(self, config_path: str | None, agent: str | None = None) -> None:
        self.config_path = config_path
        self.agent = agent
        self._pimms: Pimms | None = None

    def call(self) -> CallContext:
        """Who is calling, for the journal: the site (from the configuration) and the agent."""
        from pimms_core.models import CallContext

        pimms = self.pimms()
        return CallContext(site_id=pimms.config.site_id, agent_id=self.agent or "cli")

    def pimms(self, *, sandbox: bool = False) -> Pimms:
        """The facade, opened on first use and closed when the command ends (which writes the
        journal rows still waiting to be written)."""
        from pimms_core.facade import Pimms

        if self._pimms is None or sandbox:
            if self._pimms is None:
                context = click.get_current_context(silent=True)
                if context is not None:
                    context.find_root().call_on_close(self.close)
            self.close()
            self._pimms = Pimms.from_config(self.config_path, sandbox=sandbox)
        return self._pimms

    def close(self) -> None:
        if self._pimms is not None:
            self._pimms.close()
            self._pimms = None


pass_state = click.make_pass_decorator(State)


def json_option(fn: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")(fn)


def fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


@contextmanager
def reported_errors() -> Iterator[None]:
    """Turn errors into one line on stderr and exit code 1."""
    from pimms_core.errors import PimmsError

    try:
        yield
    except PimmsError as exc:
        fail(exc.message)
    except click.exceptions.Exit:
        raise
    except Exception as exc:
        if os.environ.get(DEBUG_ENV):
            raise
        fail(f"internal error ({type(exc).__name__}); run again with {DEBUG_ENV}=1 for details")


def print_json(data: Any) -> None:
    import json

    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def announce(pimms: Pimms, partner: str) -> None:
    if pimms.mode(partner) == "sandbox":
        name = pimms.info(partner).name
        click.echo(
            f"SANDBOX {partner}: answers come from the {name} simulator; nothing is sent to {name}",
            err=True,
        )


def with_mode(pimms: Pimms, partner: str, model: Any) -> dict[str, Any]:
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
@click.option(
    "--agent",
    envvar=AGENT_ENV,
    help="Who is at the desk (the mediator's id), for the journal (default: $PIMMS_AGENT).",
)
@click.version_option(package_name="pimms-core", prog_name="pimms")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, verbose: bool, agent: str | None) -> None:
    """pimms: find a resident's account at a partner, open a claim, follow it."""
    if verbose:
        import logging

        from pimms_core import redaction

        logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s")
        # httpx logs each URL (a reference, a name in a query) at INFO: pimms.http says enough.
        for noisy in ("httpx", "httpcore"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
        redaction.install()
    ctx.obj = State(config_path, agent)


def table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    """Print aligned columns."""
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = zip(row, widths, strict=True)
        click.echo("  ".join(str(cell).ljust(width) for cell, width in cells).rstrip())
