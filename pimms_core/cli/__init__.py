"""The `pimms` command line: list, exercise and check partner connectors.

Exit codes: 0 success; 1 the operation failed (one line on stderr a mediator can act on, never
a traceback); 2 usage error. `--json` prints data for machines on stdout; the SANDBOX notice
and errors go to stderr. Only click is imported at start-up: the core and the plugins are
loaded by the command that needs them, so `pimms --help` stays fast.

Each command lives in a module of this package named for what it does; they register on the
`cli` group defined in `pimms_core.cli.base`.
"""

from pimms_core.cli import check, demo, operations, sandbox, scaffold, scale, store
from pimms_core.cli.base import cli

__all__ = [
    "check",
    "cli",
    "demo",
    "main",
    "operations",
    "sandbox",
    "scaffold",
    "scale",
    "store",
]


def main() -> None:
    cli(prog_name="pimms")
