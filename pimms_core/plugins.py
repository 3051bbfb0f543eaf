"""Finding, loading and checking plugins, and routing each call to the plugin of its partner.

Discovery reads entry points of the group `pimms` without importing anything; plugins are
imported only when a partner is first needed. A plugin that fails to import, fails pluggy's
validation (a misspelled hook), raises in `pimms_partner_info`, or declares a partner id that
another plugin declares too, is reported in `errors` and skipped: the host keeps working.
`PIMMS_STRICT_PLUGINS=1` makes any of these fatal, for CI. `PIMMS_LOAD_PLUGINS=a,b` loads only
the named entry points or distributions.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pluggy
from attrs import frozen

from pimms_core import hookspecs
from pimms_core.errors import PluginLoadError, UnknownPartner
from pimms_core.markers import ENTRY_POINT_GROUP, PROJECT_NAME
from pimms_core.models import Idempotency, PartnerInfo, PluginRef

STRICT_ENV = "PIMMS_STRICT_PLUGINS"
LOAD_ENV = "PIMMS_LOAD_PLUGINS"


@frozen
class LoadError:
    """A plugin that could not be used, and why (shown by `pimms partners`)."""

    plugin: str
    error: str


@frozen
class LoadedPartner:
    """A partner, the plugin object that serves it, and that plugin's distribution."""

    info: PartnerInfo
    plugin: Any
    ref: PluginRef


def discover(group: str = ENTRY_POINT_GROUP) -> list[EntryPoint]:
    """The installed plugins' entry points, read from package metadata: nothing is imported."""
    return sorted(entry_points(group=group), key=lambda ep: ep.name)


def _ref_of(entry_point: EntryPoint) -> PluginRef:
    dist = entry_point.dist
    if dist is None:
        return PluginRef(entry_point.name, "unknown", entry_point.name)
    return PluginRef(dist.metadata["Name"] or entry_point.name, dist.version, entry_point.name)


class PluginHost:
    """The plugin manager of one host, with the partners its plugins declare."""

    def __init__(
        self,
        *,
        use_entry_points: bool = True,
        plugins: Iterable[tuple[Any, PluginRef]] = (),
        strict: bool | None = None,
        only: Iterable[str] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        env = os.environ if env is None else env
        self.pm = pluggy.PluginManager(PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.strict = env.get(STRICT_ENV, "") not in ("", "0") if strict is None else strict
        only_env = env.get(LOAD_ENV)
        if only is None and only_env is not None:
            only = [name.strip() for name in only_env.split(",") if name.strip()]
        self._only = set(only) if only is not None else None
        self._use_entry_points = use_entry_points
        self._explicit = list(plugins)
        self._loaded = False
        self._load_lock = threading.Lock()
        self._partners: dict[str, LoadedPartner] = {}
        self._errors: list[LoadError] = []
        self._callers: dict[tuple[str, str], Any] = {}

    # --- loading ----------------------------------------------------------------------------

    @property
    def partners(self) -> dict[str, LoadedPartner]:
        self.load()
        return dict(self._partners)

    @property
    def errors(self) -> list[LoadError]:
        self.load()
        return list(self._errors)

    def load(self) -> None:
        """Import and check every plugin, once. Idempotent, and safe when several threads
        make their first call at once: the others wait until loading is complete."""
        if self._loaded:
            return
        with self._load_lock:
            if self._loaded:
                return
            try:
                self._load()
            finally:
                self._loaded = True

    def _load(self) -> None:
        candidates: list[tuple[Any, PluginRef]] = list(self._explicit)
        if self._use_entry_points:
            for entry_point in discover():
                ref = _ref_of(entry_point)
                if self._only is not None and not ({ref.name, ref.entry_point} & self._only):
                    continue
                try:
                    module = entry_point.load()
                except Exception as exc:
                    self._fail(ref, f"failed to import: {type(exc).__name__}: {exc}")
                    continue
                candidates.append((module, ref))
        declared: dict[str, list[tuple[PartnerInfo, Any, PluginRef]]] = {}
        for plugin, ref in candidates:
            infos = self._register(plugin, ref)
            for info in infos or []:
                declared.setdefault(info.id, []).append((info, plugin, ref))
        for partner_id, claimants in sorted(declared.items()):
            if len(claimants) == 1:
                info, plugin, ref = claimants[0]
                self._partners[partner_id] = LoadedPartner(info, plugin, ref)
                continue
            names = " and ".join(
                f"{ref} (entry point {ref.entry_point})" for _, _, ref in claimants
            )
            for _, plugin, ref in claimants:
                self._fail(ref, f"partner id {partner_id!r} is declared by {names}: uninstall one")
                if self.pm.is_registered(plugin):
                    self.pm.unregister(plugin)
        if self.strict and self._errors:
            details = "; ".join(f"{e.plugin}: {e.error}" for e in self._errors)
            raise PluginLoadError(f"plugins failed to load (strict mode): {details}")

    def _register(self, plugin: Any, ref: PluginRef) -> list[PartnerInfo] | None:
        """Register one plugin and read its partner info; report and undo on any failure."""
        try:
            self.pm.register(plugin, name=ref.entry_point or ref.name)
        except Exception as exc:
            self._fail(ref, f"rejected by the plugin manager: {exc}")
            return None
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            self.pm.unregister(plugin)
            self._fail(ref, f"implements a hook that does not exist (misspelled?): {exc}")
            return None
        try:
            infos = self._partner_infos(plugin)
            self._check_declarations(plugin, infos)
        except Exception as exc:
            self.pm.unregister(plugin)
            self._fail(ref, f"pimms_partner_info failed: {type(exc).__name__}: {exc}")
            return None
        return infos

    def _check_declarations(self, plugin: Any, infos: list[PartnerInfo]) -> None:
        """What a plugin declares, it must implement: each operation, and the lookup hook
        its idempotency mechanism relies on (else every retry would create a new claim)."""
        implemented = {caller.name for caller in self.pm.get_hookcallers(plugin) or []}
        for info in infos:
            missing = sorted(
                op.value for op in info.operations if f"pimms_{op.value}" not in implemented
            )
            if missing:
                raise TypeError(f"declares {', '.join(missing)} but does not implement it")
            if info.idempotency is Idempotency.LOOKUP and "pimms_find_claim" not in implemented:
                raise TypeError("declares idempotency 'lookup' but implements no pimms_find_claim")

    def _partner_infos(self, plugin: Any) -> list[PartnerInfo]:
        infos: list[PartnerInfo] = []
        for impl in self.pm.hook.pimms_partner_info.get_hookimpls():
            if impl.plugin is not plugin:
                continue
            returned = impl.function()
            items = returned if isinstance(returned, list | tuple) else [returned]
            for item in items:
                if item is None:
                    continue
                if not isinstance(item, PartnerInfo):
                    raise TypeError(f"returned {type(item).__name__}, expected PartnerInfo")
                infos.append(item)
        return infos

    def _fail(self, ref: PluginRef, message: str) -> None:
        self._errors.append(LoadError(str(ref), message))

    # --- routing ----------------------------------------------------------------------------

    def partner(self, partner_id: str) -> LoadedPartner:
        """The loaded partner, or `UnknownPartner` listing the installed ones."""
        self.load()
        try:
            return self._partners[partner_id]
        except KeyError:
            raise UnknownPartner(partner_id, list(self._partners)) from None

    def caller(self, hook_name: str, partner_id: str) -> Any:
        """The hook caller for one partner: its plugin's implementation, other plugins' wrappers.

        Implementations of the same hook by other plugins that are not wrappers are left out,
        so exactly one plugin answers, while cross-cutting wrappers still run around it.
        """
        key = (hook_name, partner_id)
        cached = self._callers.get(key)
        if cached is not None:
            return cached
        target = self.partner(partner_id).plugin
        hook = getattr(self.pm.hook, hook_name)
        others = {
            id(impl.plugin): impl.plugin
            for impl in hook.get_hookimpls()
            if impl.plugin is not target and not (impl.wrapper or impl.hookwrapper)
        }
        caller = self.pm.subset_hook_caller(hook_name, remove_plugins=others.values())
        self._callers[key] = caller
        return caller

    def sandbox_apps(self) -> dict[str, LoadedPartner]:
        """The partners whose plugin ships a simulator (`pimms_sandbox` implemented)."""
        self.load()
        with_sandbox = {id(impl.plugin) for impl in self.pm.hook.pimms_sandbox.get_hookimpls()}
        return {
            pid: loaded
            for pid, loaded in self._partners.items()
            if id(loaded.plugin) in with_sandbox
        }
