"""A cross-cutting plugin: it wraps every partner's lookups, whichever plugin answers them.

Registered next to partner plugins (its own distribution, entry point in the group `pimms`),
it declares no partner; the core runs its wrapper around each partner's implementation.
(Tested by tests/test_docs.py.)
"""

from __future__ import annotations

import time
from collections.abc import Generator

from pimms_core import hookimpl
from pimms_core.context import PartnerContext
from pimms_core.models import Account, AccountQuery

DURATIONS: list[tuple[str, float]] = []
"""(partner id, seconds) of each lookup: no reference, no name."""


# [doc:wrapper]
@hookimpl(wrapper=True)
def pimms_lookup_account(
    partner: PartnerContext, query: AccountQuery
) -> Generator[None, Account, Account]:
    started = time.perf_counter()
    try:
        return (yield)  # the partner's plugin runs here; its result or error passes through
    finally:
        DURATIONS.append((partner.id, time.perf_counter() - started))


# [/doc:wrapper]
