"""Every core test runs in isolation: its own data directory, no configuration, no env leaks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for name in ("PIMMS_CONFIG", "PIMMS_STRICT_PLUGINS", "PIMMS_LOAD_PLUGINS", "PIMMS_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    data = tmp_path / "data"
    monkeypatch.setenv("PIMMS_DATA_DIR", str(data))
    monkeypatch.chdir(tmp_path)
    yield data
