"""The simulators side of measure 3, in a process of its own (so that the site's process has a
CPU to itself): open the claims at the four simulators, write them down, then serve the
simulators on loopback with latency until terminated.

    python benchmarks/refresh_simulators.py WORKDIR CLAIMS LATENCY_SECONDS

Prints one JSON line on stdout once serving: `{"urls", "snippet", "env"}`; the claims opened
are in `WORKDIR/claims.jsonl`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from common import quiet_logs, sandbox_facade

from pimms_core import serve
from pimms_core.models import Category, PartnerInfo


def category(info: PartnerInfo) -> str:
    codes = {code.category for code in info.categories}
    return Category.OTHER.value if Category.OTHER in codes else info.categories[0].code


def main(workdir: Path, claims: int, latency: float) -> None:
    simulators = sandbox_facade(workdir / "simulators", site_store=False)
    infos = [entry.info for entry in simulators.partners()]
    with quiet_logs(), (workdir / "claims.jsonl").open("w") as out:
        services: dict[str, str | None] = {}
        for info in infos:
            seeded = info.sandbox_accounts[0]
            account = simulators.lookup_account(
                info.id, seeded.reference, last_name=seeded.last_name
            )
            services[info.id] = account.services[0].id if len(account.services) > 1 else None
        for number in range(claims):
            info = infos[number % len(infos)]
            seeded = info.sandbox_accounts[0]
            claim = simulators.open_claim(
                info.id,
                seeded.reference,
                category(info),
                "Benchmark claim, please ignore.",
                last_name=seeded.last_name,
                service_id=services[info.id],
                idempotency_key=f"bench-{number}",
            )
            row = {
                "partner": claim.partner,
                "claim_ref": claim.claim_ref,
                "account_ref": seeded.reference,
                "category": category(info),
                "state": claim.state.value,
                "partner_status": claim.partner_status,
                "opened_at": claim.opened_at.isoformat(),
            }
            out.write(json.dumps(row) + "\n")
    server = serve.bind(simulators, port=0, latency=latency, state_for=simulators.sandbox_state)
    print(
        json.dumps(
            {
                "urls": server.urls,
                "snippet": serve.config_snippet(infos, server.urls),
                "env": serve.sandbox_env(infos, server.urls),
            }
        ),
        flush=True,
    )
    with quiet_logs():
        server.serve_forever()


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]))
