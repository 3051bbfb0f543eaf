"""Configuration: secrets only from the environment, clear errors that never show a value."""

from __future__ import annotations

from pathlib import Path

import pytest

from pimms_core.config import Config, PartnerConfig, resolve_settings
from pimms_core.errors import ConfigError
from tests.fakes import acme_info

SECRET = "canary-secret-value-31f9"


def test_no_configuration_means_sandbox_everywhere(tmp_path: Path) -> None:
    config = Config.load(env={"PIMMS_DATA_DIR": str(tmp_path)})
    assert config.path is None
    assert config.partner("edf").sandbox
    assert config.data_dir == tmp_path


def test_file_from_environment_variable(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text(
        '[pimms]\nsite_id = "lyon-8"\ndata_dir = "state"\n'
        '[partners.acme]\nbase_url = "https://api.acme.test"\napi_key_env = "ACME_KEY"\n'
    )
    config = Config.load(env={"PIMMS_CONFIG": str(path)})
    assert config.site_id == "lyon-8"
    assert config.data_dir == tmp_path / "state"
    assert not config.partner("acme").sandbox
    settings = resolve_settings(acme_info(), config.partner("acme"), {"ACME_KEY": SECRET})
    assert settings.secret("api_key") == SECRET
    assert SECRET not in repr(settings)


def test_missing_environment_variable_is_named_not_valued() -> None:
    table = PartnerConfig("acme", {"base_url": "https://x.test", "api_key_env": "ACME_KEY"})
    with pytest.raises(ConfigError, match="ACME_KEY, which is not set"):
        resolve_settings(acme_info(), table, {})


def test_secret_written_in_the_file_is_refused_without_echoing_it() -> None:
    table = PartnerConfig("acme", {"base_url": "https://x.test", "api_key": SECRET})
    with pytest.raises(ConfigError, match="api_key_env") as caught:
        resolve_settings(acme_info(), table, {})
    assert SECRET not in str(caught.value)


def test_sandbox_takes_the_declared_sandbox_values() -> None:
    settings = resolve_settings(acme_info(), PartnerConfig("acme"), {})
    assert settings["api_key"] == "sbx"


def test_live_partner_without_its_secret_says_what_to_set() -> None:
    with pytest.raises(ConfigError, match="needs api_key_env"):
        resolve_settings(acme_info(), PartnerConfig("acme", {"base_url": "https://x.test"}), {})


def test_unknown_key_is_refused_with_the_expected_ones() -> None:
    table = PartnerConfig("acme", {"base_url": "https://x.test", "api_kee_env": "X"})
    with pytest.raises(ConfigError, match=r"unknown key.*api_kee_env.*expected.*api_key_env"):
        resolve_settings(acme_info(), table, {})


def test_malformed_file_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "pimms.toml"
    path.write_text('[partners.edf]\nbase_url = "https://x.test"\ntimeout = = 3\n')
    with pytest.raises(ConfigError, match=r"pimms.toml is not valid TOML.*line 3"):
        Config.load(path)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        Config.load(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://partenaires.api.edf.fr", True),
        ("http://127.0.0.1:8000/edf", True),
        ("http://localhost:8000", True),
        ("http://[::1]:8000", True),
        ("http://partenaires.api.edf.fr", False),
        ("http://10.0.0.1", False),
        ("ftp://x", False),
    ],
)
def test_plain_http_only_on_loopback(url: str, ok: bool) -> None:
    document = {"partners": {"edf": {"base_url": url}}}
    if ok:
        assert Config.from_document(document, env={}).partner("edf").base_url == url
    else:
        with pytest.raises(ConfigError, match="https"):
            Config.from_document(document, env={})


def test_timeout_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="timeout"):
        _ = PartnerConfig("edf", {"timeout": -1}).timeout
