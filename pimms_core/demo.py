"""`pimms demo`: one mediation walked through at every installed partner, in sandbox mode.

For each partner: find a seeded account, open a claim, send it again with the same key (the
partner must answer with the same claim), and follow its status. It shows a person what pimms
does, and proves on any machine that the installed plugins work end to end.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from pimms_core.errors import PimmsError
from pimms_core.facade import Pimms
from pimms_core.models import Category, PartnerInfo, SandboxAccount

DEMO_DESCRIPTION = "Demo claim opened by `pimms demo` in the sandbox: please ignore."


def _demo_category(info: PartnerInfo) -> str:
    codes = {code.category for code in info.categories}
    return Category.OTHER.value if Category.OTHER in codes else info.categories[0].code


def run_demo(pimms: Pimms, *, only: list[str], echo: Callable[[str], None]) -> bool:
    """Run the walk-through; True when every partner's mediation went through."""
    entries = [e for e in pimms.partners() if not only or e.info.id in only]
    for error in pimms.load_errors:
        echo(f"(skipped plugin {error.plugin}: {error.error})")
    if not entries:
        echo("No partner plugin with a simulator is installed: nothing to show.")
        return False
    failures = 0
    for entry in entries:
        info = entry.info
        echo(f"\n=== {info.name} ({info.id}, {entry.plugin}) — SANDBOX: the {info.name} simulator")
        if not info.sandbox_accounts:
            echo("  this plugin declares no sandbox account: skipped")
            continue
        try:
            _mediation(pimms, info, info.sandbox_accounts[0], echo)
        except PimmsError as exc:
            failures += 1
            echo(f"  FAILED: {exc.message}")
    echo(f"\n{len(entries) - failures} of {len(entries)} partner(s) went through.")
    return failures == 0


def _mediation(
    pimms: Pimms, info: PartnerInfo, seeded: SandboxAccount, echo: Callable[[str], None]
) -> None:
    echo(f"1. Find the account {seeded.reference} ({seeded.note})")
    account = pimms.lookup_account(info.id, seeded.reference, last_name=seeded.last_name)
    echo(f"   found: {account.holder_name}, status {account.status}")
    for service in account.services[:3]:
        echo(f"   service {service.id}: {service.label}")
    category = _demo_category(info)
    key = f"demo-{uuid.uuid4().hex}"
    echo(f"2. Open a claim (category {category})")
    claim = pimms.open_claim(
        info.id,
        seeded.reference,
        category,
        DEMO_DESCRIPTION,
        last_name=seeded.last_name,
        service_id=account.services[0].id if len(account.services) > 1 else None,
        idempotency_key=key,
    )
    due = claim.response_due_by.isoformat() if claim.response_due_by else "not given"
    echo(f"   opened {claim.claim_ref}: {claim.state.value}, answer due by {due}")
    echo("3. Send it again with the same key (a retry after a lost answer)")
    again = pimms.open_claim(
        info.id,
        seeded.reference,
        category,
        DEMO_DESCRIPTION,
        last_name=seeded.last_name,
        service_id=account.services[0].id if len(account.services) > 1 else None,
        idempotency_key=key,
    )
    same = (
        "the same claim, not a second one" if again.claim_ref == claim.claim_ref else "A NEW CLAIM"
    )
    echo(f"   answer: {again.claim_ref}: {same}")
    if again.claim_ref != claim.claim_ref:
        raise PimmsError(f"{info.id} created a second claim for the same key", partner=info.id)
    echo("4. Follow it")
    status = pimms.claim_status(info.id, claim.claim_ref)
    label = f" — {status.partner_label}" if status.partner_label else ""
    echo(f"   {status.claim_ref}: {status.state.value} ({status.partner_status}{label})")
