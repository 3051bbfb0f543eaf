"""Site configuration: `pimms.toml`, one table per partner, secrets from the environment.

```toml
[pimms]
site_id = "lyon-8"
data_dir = "/var/lib/pimms"          # relative paths are relative to this file
database = "pimms.sqlite3"           # ledger, outbox, journal (default: <data_dir>/pimms.sqlite3)

[partners.edf]
base_url = "https://partenaires.api.edf.fr"
client_id_env = "EDF_CLIENT_ID"       # a secret names the variable that holds it
client_secret_env = "EDF_CLIENT_SECRET"
timeout = 10
max_concurrent = 4                    # requests in flight at once, per process
circuit_failures = 5                  # failures in a row before calls fail fast...
circuit_cooldown = 30                 # ...for this many seconds, then one probe
```

A partner with no `base_url` runs in sandbox mode against its simulator. Secret values are
never read from the file, printed, logged, or put in an exception: errors name the variable.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from attrs import field, frozen

from pimms_core.breaker import DEFAULT_COOLDOWN, DEFAULT_FAILURES
from pimms_core.errors import ConfigError
from pimms_core.models import PartnerInfo

CONFIG_ENV = "PIMMS_CONFIG"
DATA_DIR_ENV = "PIMMS_DATA_DIR"
DEFAULT_CONFIG_NAME = "pimms.toml"
DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_CONCURRENT = 4
"""Requests in flight to one partner from one process, when the configuration says nothing."""
DATABASE_NAME = "pimms.sqlite3"
_PARTNER_KEYS = {
    "base_url",
    "timeout",
    "sandbox",
    "max_concurrent",
    "circuit_failures",
    "circuit_cooldown",
    "proxy",
}


@frozen
class Settings:
    """A partner's resolved settings. Secret values are kept out of `repr()` and messages."""

    partner: str
    values: Mapping[str, str] = field(repr=False)
    secret_names: frozenset[str] = frozenset()

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.values.get(name, default)

    def __getitem__(self, name: str) -> str:
        try:
            return self.values[name]
        except KeyError:
            raise ConfigError(
                f"{self.partner}: setting {name!r} is not configured", partner=self.partner
            ) from None

    def secret(self, name: str) -> str:
        """A secret setting's value (the same as `settings[name]`, named for the reader)."""
        return self[name]

    def secret_values(self) -> list[str]:
        """Every secret value, so the core can make sure none of them is ever shown."""
        return [v for k, v in self.values.items() if k in self.secret_names and v]


@frozen
class PartnerConfig:
    """The configuration table of one partner, before its plugin's settings are resolved."""

    partner: str
    table: Mapping[str, Any] = field(factory=dict)

    @property
    def base_url(self) -> str | None:
        value = self.table.get("base_url")
        return str(value) if value else None

    @property
    def sandbox(self) -> bool:
        """Sandbox mode: no endpoint configured, or `sandbox = true` asked for."""
        return bool(self.table.get("sandbox", False)) or self.base_url is None

    @property
    def proxy(self) -> str | None:
        """An HTTP(S) proxy for this partner; else the usual `HTTPS_PROXY`/`NO_PROXY`
        environment variables apply."""
        value = self.table.get("proxy")
        return str(value) if value else None

    @property
    def timeout(self) -> float:
        """Seconds to wait for each step of an exchange (see `transport.DEADLINE_FACTOR`)."""
        return self._positive("timeout", DEFAULT_TIMEOUT)

    def _positive(self, key: str, default: float, *, integer: bool = False) -> float:
        value = self.table.get(key, default)
        valid = isinstance(value, int) if integer else isinstance(value, int | float)
        if isinstance(value, bool) or not valid or value <= 0:
            kind = "a whole number" if integer else "a number"
            raise ConfigError(
                f"[partners.{self.partner}] {key} must be {kind} greater than 0",
                partner=self.partner,
            )
        return float(value)

    @property
    def max_concurrent(self) -> int:
        """Requests in flight to this partner at once, from one process."""
        return int(self._positive("max_concurrent", DEFAULT_MAX_CONCURRENT, integer=True))

    @property
    def circuit_failures(self) -> int:
        """Transient failures in a row after which calls fail fast for a while."""
        return int(self._positive("circuit_failures", DEFAULT_FAILURES, integer=True))

    @property
    def circuit_cooldown(self) -> float:
        """Seconds calls fail fast once the circuit is open, before one probe goes through."""
        return self._positive("circuit_cooldown", DEFAULT_COOLDOWN)


@frozen
class Config:
    """The whole configuration of a site."""

    path: Path | None
    data_dir: Path
    site_id: str = "local"
    partners: Mapping[str, PartnerConfig] = field(factory=dict)
    database: Path | None = None
    """The store's file as configured (`[pimms] database`); see `database_path`."""

    @property
    def database_path(self) -> Path:
        """The SQLite file of the ledger, outbox and journal: `<data_dir>/pimms.sqlite3`
        unless `[pimms] database` names another."""
        return self.database or self.data_dir / DATABASE_NAME

    @classmethod
    def load(
        cls, path: str | Path | None = None, *, env: Mapping[str, str] | None = None
    ) -> Config:
        """Read the configuration: `path`, else `$PIMMS_CONFIG`, else `./pimms.toml` if present.

        With none of them, every partner runs in sandbox mode.
        """
        env = os.environ if env is None else env
        chosen = path or env.get(CONFIG_ENV)
        if chosen is None and Path(DEFAULT_CONFIG_NAME).is_file():
            chosen = DEFAULT_CONFIG_NAME
        document: dict[str, Any] = {}
        config_path: Path | None = None
        if chosen:
            config_path = Path(chosen).expanduser()
            document = _read_toml(config_path)
        return cls.from_document(document, path=config_path, env=env)

    @classmethod
    def from_document(
        cls,
        document: Mapping[str, Any],
        *,
        path: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Config:
        env = os.environ if env is None else env
        where = str(path) if path else "the configuration"
        main = document.get("pimms", {})
        if not isinstance(main, dict):
            raise ConfigError(f"{where}: [pimms] must be a table")
        partners_table = document.get("partners", {})
        if not isinstance(partners_table, dict):
            raise ConfigError(f"{where}: [partners] must hold one table per partner")
        partners = {}
        for name, table in partners_table.items():
            if not isinstance(table, dict):
                raise ConfigError(f"{where}: [partners.{name}] must be a table")
            partners[name] = PartnerConfig(name, table)
            if partners[name].base_url:
                check_base_url(name, partners[name].base_url or "")
        return cls(
            path=path,
            data_dir=_data_dir(main, path, env),
            site_id=str(main.get("site_id", "local")),
            partners=partners,
            database=_database(main, path, where),
        )

    def partner(self, partner_id: str) -> PartnerConfig:
        return self.partners.get(partner_id) or PartnerConfig(partner_id)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"configuration file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        # The decoder's message names the line and column ("... (at line 3, column 7)").
        raise ConfigError(f"configuration file {path} is not valid TOML: {exc}") from None


def _data_dir(main: Mapping[str, Any], path: Path | None, env: Mapping[str, str]) -> Path:
    if "data_dir" in main:
        configured = Path(str(main["data_dir"])).expanduser()
        if not configured.is_absolute() and path is not None:
            configured = path.parent / configured
        return configured
    if env.get(DATA_DIR_ENV):
        return Path(env[DATA_DIR_ENV]).expanduser()
    xdg = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "pimms"


def _database(main: Mapping[str, Any], path: Path | None, where: str) -> Path | None:
    if "database" not in main:
        return None
    value = main["database"]
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: [pimms] database must be the path of a file")
    configured = Path(value).expanduser()
    if not configured.is_absolute() and path is not None:
        configured = path.parent / configured
    return configured


def check_base_url(partner: str, url: str) -> None:
    """Refuse a base URL that is not https, except plain http on loopback (a local simulator)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme == "https" and host:
        return
    if parts.scheme == "http" and is_loopback(host):
        return
    raise ConfigError(
        f"[partners.{partner}] base_url must be an https:// URL "
        "(plain http:// is accepted only for a loopback address such as 127.0.0.1)",
        partner=partner,
    )


def is_loopback(host: str) -> bool:
    """Whether `host` names this machine (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def resolve_settings(
    info: PartnerInfo, partner_config: PartnerConfig, env: Mapping[str, str] | None = None
) -> Settings:
    """Resolve the settings a plugin declared from the partner's table and the environment.

    In sandbox mode, a setting not configured takes its declared sandbox value.
    """
    env = os.environ if env is None else env
    table = partner_config.table
    section = f"[partners.{info.id}]"
    known = set(_PARTNER_KEYS)
    for spec in info.settings:
        known.update({spec.name, f"{spec.name}_env"})
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(
            f"{section} has unknown key(s) {', '.join(unknown)}: "
            f"expected some of {', '.join(sorted(known))}",
            partner=info.id,
        )
    values: dict[str, str] = {}
    secrets = frozenset(spec.name for spec in info.settings if spec.secret)
    for spec in info.settings:
        if spec.secret and spec.name in table:
            raise ConfigError(
                f"{section} {spec.name} is a secret and must not be written in the file: "
                f"set {spec.name}_env to the name of the environment variable holding it",
                partner=info.id,
            )
        env_key = f"{spec.name}_env"
        if env_key in table:
            variable = str(table[env_key])
            if variable not in env:
                raise ConfigError(
                    f"{section} {env_key} names the environment variable {variable}, "
                    "which is not set",
                    partner=info.id,
                )
            values[spec.name] = env[variable]
        elif spec.name in table:
            values[spec.name] = str(table[spec.name])
        elif partner_config.sandbox and spec.sandbox_value is not None:
            values[spec.name] = spec.sandbox_value
        elif spec.default is not None:
            values[spec.name] = spec.default
        else:
            how = f"{spec.name}_env" if spec.secret else spec.name
            raise ConfigError(f"{section} needs {how} ({spec.description})", partner=info.id)
    for spec in info.settings:
        if spec.choices and values.get(spec.name) not in spec.choices:
            raise ConfigError(
                f"{section} {spec.name} must be one of {', '.join(spec.choices)}",
                partner=info.id,
            )
    return Settings(info.id, values, secrets)
