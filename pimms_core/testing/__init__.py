"""Helpers for testing plugins: a facade on a fresh plugin manager, in sandbox or live mode.

```python
import pimms_edf
from pimms_core.testing import live_pimms, sandbox_pimms

pimms = sandbox_pimms(pimms_edf)                         # the plugin's simulator, in memory
pimms = live_pimms(pimms_edf, "https://partenaires.api.edf.fr",
                   env={"EDF_ID": "id", "EDF_SECRET": "s"},
                   settings={"client_id_env": "EDF_ID", "client_secret_env": "EDF_SECRET"})
```

Only the plugins passed are registered (installed entry points are ignored), so a test sees
exactly the plugins it names.

The conformance kit builds on these (its parts that need respx are imported on use):

- `pimms_core.testing.conformance.ConformanceSuite`: the suite every plugin subclasses;
- `pimms_core.testing.partner_mock.PartnerMock` and `faults`: respx in front of a partner's
  base URL, answering from its simulator, with faults injected on demand;
- `pimms_core.testing.canary.CANARY`: the canary secret and personal data, and `leaks()`;
- the pytest plugin (`pimms_core.testing.pytest_plugin`, loaded by pytest on its own):
  fixtures `pimms_host`, `pimms_sandbox`, `pimms_simulator`, `pimms_partner_mock` and
  `pimms_canary`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from types import ModuleType
from typing import Any

from pimms_core.config import Config
from pimms_core.facade import Pimms
from pimms_core.models import PluginRef
from pimms_core.plugins import PluginHost
from pimms_core.policy import NO_RETRY, RetryPolicy
from pimms_core.sandbox import SandboxState, utc_now


def plugin_ref(module: ModuleType | Any, distribution: str | None = None) -> PluginRef:
    """A `PluginRef` for a plugin module: `pimms_edf` is distribution `pimms-edf`."""
    name = distribution or getattr(module, "__name__", type(module).__name__).replace("_", "-")
    try:
        dist_version = version(name)
    except PackageNotFoundError:
        dist_version = str(getattr(module, "__version__", "0"))
    entry_point = name.removeprefix("pimms-")
    return PluginRef(name, dist_version, entry_point)


def fresh_host(*plugins: Any) -> PluginHost:
    """A plugin manager with exactly these plugins registered, strict about load errors."""
    return PluginHost(
        use_entry_points=False, plugins=[(p, plugin_ref(p)) for p in plugins], strict=True, env={}
    )


def release(host: PluginHost) -> None:
    """Unregister every plugin of `host` (it closes nothing else)."""
    for plugin in list(host.pm.get_plugins()):
        host.pm.unregister(plugin)


def sandbox_pimms(
    *plugins: Any,
    state: SandboxState | None = None,
    clock: Callable[[], datetime] = utc_now,
    policy: RetryPolicy = NO_RETRY,
) -> Pimms:
    """A facade running the plugins against their simulators, with in-memory state."""
    return Pimms(
        Config.from_document({}, env={}),
        fresh_host(*plugins),
        sandbox=True,
        env={},
        sandbox_state=state or SandboxState(None, clock=clock),
        policy=policy,
    )


def live_pimms(
    plugin: Any,
    base_url: str,
    *,
    settings: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    policy: RetryPolicy = NO_RETRY,
    extra_plugins: tuple[Any, ...] = (),
) -> Pimms:
    """A facade calling `base_url` for real (mock it with respx), with the given settings."""
    host = fresh_host(plugin, *extra_plugins)
    partner_id = next(pid for pid, loaded in host.partners.items() if loaded.plugin is plugin)
    document = {"partners": {partner_id: {"base_url": base_url, **(settings or {})}}}
    return Pimms(
        Config.from_document(document, env=env or {}),
        host,
        env=env or {},
        policy=policy,
    )
