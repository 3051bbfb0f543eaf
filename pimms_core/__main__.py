"""`python -m pimms_core` runs the `pimms` command line."""

from pimms_core.cli import main

main()
