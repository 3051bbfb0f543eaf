"""pimms benchmarks: `python benchmarks/run.py` (from the repository, in its virtualenv).

Prints the machine's details, then one line per measure, `<measure>: <ratio>x (floor
<floor>x)`: each ratio is pimms' time over a yardstick's, and the floor is the most it may be.
The raw figures behind each ratio go to stderr. Exit code 1 if a measure is above its floor.

    lookup_account through the facade   vs a bare httpx.Client on the same in-process
                                        simulator, parsed with json              <= 1.2x
    fan-out over the 4 partners         vs the slowest partner alone, simulators on
                                        loopback answering 100 ms late           <= 1.2x
    refresh of 10,000 ledger claims     vs 10,000 x 50 ms / 32 (loopback, 50 ms latency,
                                        concurrency 32, budgets not binding)     <= 1.3x,
                                                                      peak RSS < 200 MB
    pimms --help                        vs python -c "import click"              <= 1.5x

`--only NAME` runs one measure (lookup, fanout, refresh, startup).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import bench_fanout
import bench_lookup
import bench_refresh
import bench_startup
from common import machine

MEASURES = {
    "lookup": bench_lookup,
    "fanout": bench_fanout,
    "refresh": bench_refresh,
    "startup": bench_startup,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(MEASURES), action="append")
    args = parser.parse_args(argv)
    chosen = [name for name in MEASURES if not args.only or name in args.only]
    for line in machine():
        print(line, flush=True)
    above = []
    with tempfile.TemporaryDirectory(prefix="pimms-bench-") as workdir:
        for name in chosen:
            result = MEASURES[name].measure(Path(workdir) / name)
            print(result.line(), flush=True)
            print(f"  ({result.detail})", file=sys.stderr, flush=True)
            if not result.ok:
                above.append(result.measure)
    if above:
        print(f"above the floor: {', '.join(above)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
