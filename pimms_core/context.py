"""What a plugin receives with every call: the partner's context."""

from __future__ import annotations

from typing import Literal

import httpx
from attrs import field, frozen

from pimms_core.config import Settings
from pimms_core.models import CallContext, PartnerInfo

Mode = Literal["sandbox", "live"]


@frozen
class PartnerContext:
    """The partner a call is for, and the means the core gives the plugin to reach it.

    `http` is the core's client for this partner (base URL, auth, timeouts, user agent; the
    simulator in sandbox mode): plugins send every request through it and build none of
    their own. `call` says who is calling (site, agent, correlation id, deadline).
    """

    info: PartnerInfo
    settings: Settings
    http: httpx.Client = field(repr=False)
    mode: Mode = "live"
    call: CallContext = field(factory=CallContext)

    @property
    def id(self) -> str:
        return self.info.id
