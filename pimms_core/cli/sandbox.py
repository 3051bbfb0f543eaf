"""`pimms sandbox ...`: the partners' simulators."""

from __future__ import annotations

from typing import TYPE_CHECKING

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
    from types import FrameType


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


@sandbox.command("serve")
@click.option(
    "--partner", "only", multiple=True, help="Only these partners (repeatable; default: all)."
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8765,
    show_default=True,
    help="Port to listen on (0: any free port). Every simulator shares it, under /PARTNER.",
)
@click.option(
    "--latency",
    "latency_ms",
    type=click.FloatRange(min=0),
    default=0.0,
    help="Delay every answer by this many milliseconds, as a distant partner would.",
)
@click.option(
    "--allow-non-loopback",
    is_flag=True,
    help="Accept a --host that other machines can reach (the simulators have no real security).",
)
@click.option(
    "--in-memory",
    is_flag=True,
    help="Keep the simulators' claims in memory, forgotten at stop (default: the data directory).",
)
@json_option
@pass_state
def sandbox_serve(
    state: State,
    only: tuple[str, ...],
    host: str,
    port: int,
    latency_ms: float,
    allow_non_loopback: bool,
    in_memory: bool,
    as_json: bool,
) -> None:
    """Serve the partners' simulators over HTTP on one port, each under /PARTNER.

    Prints each simulator's base URL and a pimms.toml fragment pointing partners at them (a
    partner so configured runs "live" against its simulator). Ctrl-C stops.
    """
    from pimms_core import serve
    from pimms_core.config import is_loopback

    if not allow_non_loopback and not is_loopback(host):
        raise click.BadParameter(
            f"{host} is not a loopback address: anyone reaching it could use the simulators; "
            "add --allow-non-loopback if you mean it",
            param_hint="--host",
        )
    with reported_errors():
        from pimms_core.sandbox import SandboxState

        pimms = state.pimms()
        server = serve.bind(
            pimms,
            partners=only,
            host=host,
            port=port,
            latency=latency_ms / 1000,
            allow_non_loopback=allow_non_loopback,
            state_for=(lambda _partner: SandboxState(None)) if in_memory else None,
        )
    infos = [pimms.info(partner) for partner in server.urls]
    snippet = serve.config_snippet(infos, server.urls)
    env = serve.sandbox_env(infos, server.urls)
    if as_json:
        print_json(
            {"base_url": server.base_url, "simulators": server.urls, "config": snippet, "env": env}
        )
    else:
        _show_served(server.base_url, server.urls, snippet, env, latency_ms)
    if not is_loopback(host):
        click.echo(
            f"warning: serving on {host}, not loopback; pimms accepts plain http:// only on "
            "loopback, so other machines need https in front",
            err=True,
        )
    _stop_on_signals()
    click.echo("Ctrl-C to stop.", err=True)
    server.serve_forever()
    click.echo("sandbox server stopped", err=True)


def _show_served(
    base_url: str, urls: dict[str, str], snippet: str, env: dict[str, str], latency_ms: float
) -> None:
    delay = f", answers delayed {latency_ms:g} ms" if latency_ms else ""
    click.echo(f"Serving {len(urls)} simulator(s) on {base_url}{delay}")
    table(("PARTNER", "BASE URL"), sorted(urls.items()))
    click.echo("\n# pimms.toml: these partners then run live against their simulators")
    click.echo(snippet.rstrip("\n"))
    if env:
        click.echo("\n# the simulators' published sandbox credentials, for the variables above")
        for name, value in env.items():
            import shlex

            click.echo(f"export {name}={shlex.quote(value)}")


def _stop_on_signals() -> None:
    """Ctrl-C, and a service manager's SIGTERM, stop the server: port released, exit 0.

    SIGINT is set explicitly because a shell starting a job in the background ignores it.
    """
    import signal

    def interrupt(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, interrupt)
